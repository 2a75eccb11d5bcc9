//! `push-local` against the fake Engage over loopback HTTP, driving the real binary: offline
//! then online, a fault at every step of a push, a push killed mid-request, the intelligent
//! buffer, bulk sizes, rejections, changed-fields-only updates, deletes, purge, dry run.
//!
//! Exactly-once is checked with the fake's counters: contacts created per key (with the fake's
//! uniqueness off where a double create must show up), receipts stored per uniqueReceiptId.

use crate::common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::*;
use fake_engage::{FakeConfig, FakeEngage, Fault, FaultKind, Matcher};
use serde_json::{json, Value};

const BULK: &str = "/api/v3/contacts/bulk";
const STATUS: &str = "/api/v2/contacts/bulk/status";
const RECEIPTS: &str = "/api/v3/receipts";
const LOOKUP: &str = "/api/v3/contacts/id";

/// A workspace pointed at `fake`, with test-sized waits; `local` adds `[local]` keys.
fn workspace_for(fake: &FakeEngage, local: &str) -> Workspace {
    let engage = format!("{FAKE_ENGAGE_WAITS}max_retries = 3\n");
    Workspace::pointed_at(fake, &engage, &format!("{FAST_PUSH}{local}"))
}

fn sync(ws: &Workspace, fake: &FakeEngage, args: &[&str]) -> Output {
    ws.engage_cmd(fake).args(args).output().expect("runs")
}

fn sync_stdin(ws: &Workspace, args: &[&str], stdin: &str) -> Output {
    ws.cmd()
        .args(args)
        .write_stdin(stdin)
        .output()
        .expect("runs")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout_of(out)))
}

/// Runs push-local until it exits 0 (at most `runs` times); returns every run's output.
fn push_until_done(ws: &Workspace, fake: &FakeEngage, runs: usize) -> Vec<Output> {
    let mut outs = Vec::new();
    for _ in 0..runs {
        let out = sync(ws, fake, &["--json", "push-local"]);
        let done = out.status.success();
        outs.push(out);
        if done {
            return outs;
        }
    }
    let last = outs.last().expect("ran");
    panic!(
        "push-local did not finish in {runs} runs; last exit {:?}: {}\n{}",
        last.status.code(),
        stdout_of(last),
        stderr_of(last)
    );
}

fn add_contact(ws: &Workspace, email: &str, mobile: &str) -> String {
    let out = ws
        .cmd()
        .args([
            "--json", "contact", "add", "--email", email, "--mobile", mobile,
        ])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    json_of(&out)["contacts"][0]["local_key"]
        .as_str()
        .expect("key")
        .to_string()
}

fn add_receipt(ws: &Workspace, r: &Value) {
    let out = sync_stdin(ws, &["receipt", "add"], &r.to_string());
    assert!(out.status.success(), "{}", stderr_of(&out));
}

/// Three local contacts and four receipts (by local key, by contact data of a fourth
/// customer, by the phone of the first); returns the contacts' e-mails.
fn till_day(ws: &Workspace) -> Vec<String> {
    let mut emails = Vec::new();
    for i in 1..=3 {
        let email = format!("member{i}@example.com");
        let key = add_contact(ws, &email, &format!("070-000 00 0{i}"));
        add_receipt(
            ws,
            &receipt(
                &format!("R-{i}"),
                json!({"matchKeyType": "localKey", "matchKey": key}),
            ),
        );
        emails.push(email);
    }
    add_receipt(
        ws,
        &receipt(
            "R-4",
            json!({"email": "walkin@example.com", "firstName": "Walk"}),
        ),
    );
    add_receipt(
        ws,
        &receipt(
            "R-5",
            json!({"matchKeyType": "mobilePhone", "matchKey": "0700000001"}),
        ),
    );
    emails.push("walkin@example.com".into());
    emails
}

/// Exactly once: every contact created once, every receipt stored once for the right customer
/// and posted again after Engage's answer had gone out only if a kill left it unsettled
/// (answered, not yet recorded: `unsettled`), and then only once.
fn assert_exactly_once(
    ws: &Workspace,
    fake: &FakeEngage,
    emails: &[String],
    receipts: usize,
    unsettled: &[String],
) {
    for email in emails {
        assert_eq!(fake.creates_for("email", email), 1, "{email} created once");
    }
    let stored = fake.receipts();
    assert_eq!(stored.len(), receipts, "every receipt stored");
    assert_reposts_only_unsettled(fake, unsettled, "push");
    // Posted once, or again only after its answer was lost (the fake counts a post after a
    // whole answer as a repost, checked above): a receipt's post count alone says nothing.
    for r in &stored {
        assert_eq!(
            r.body["contact"]["matchKeyType"], "contactId",
            "{:?}",
            r.body["contact"]
        );
    }
    let by_id = |id: &str| stored.iter().find(|r| r.unique_receipt_id == id).expect(id);
    assert_eq!(
        by_id("R-1").contact_id,
        by_id("R-5").contact_id,
        "same customer"
    );
    assert_eq!(
        fake.find_contacts("email", "walkin@example.com"),
        vec![by_id("R-4").contact_id.clone()]
    );
    assert_eq!(
        ws.count("SELECT count(*) FROM contacts WHERE contact_id IS NULL"),
        0,
        "all linked"
    );
    assert_eq!(
        ws.count("SELECT count(*) FROM contact_outbox WHERE state != 'delivered'")
            + ws.count("SELECT count(*) FROM receipt_outbox WHERE state != 'delivered'"),
        0
    );
}

#[test]
fn offline_then_online_everything_is_delivered_exactly_once() {
    let fake = lenient_fake();
    let ws = workspace_for(&fake, "");
    fake.refuse_connections(true).expect("offline");
    let emails = till_day(&ws);
    let out = sync(&ws, &fake, &["--json", "push-local"]);
    assert_eq!(
        out.status.code(),
        Some(69),
        "Engage unreachable: {}",
        stderr_of(&out)
    );
    assert_eq!(json_of(&out)["receipts_left"], 5);
    assert_eq!(
        ws.count("SELECT count(*) FROM contact_outbox WHERE state = 'pending'"),
        4
    );
    // The till keeps working meanwhile: lookups answer from the replica.
    let out = ws
        .cmd()
        .args(["--json", "lookup", "--email", "member1@example.com"])
        .output()
        .expect("runs");
    assert_eq!(json_of(&out)["match_key_type"], "localKey");

    fake.refuse_connections(false).expect("online");
    let outs = push_until_done(&ws, &fake, 1);
    // The push leaves the till store's WAL empty: no page images of what it changed stay in
    // it (till commands do not checkpoint; the push does, at its end).
    let wal = ws.path().join("replica.db.till-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_len, 0, "{} after push-local", wal.display());
    let summary = json_of(&outs[0]);
    assert_eq!(summary["contacts_created"], 4);
    assert_eq!(summary["receipts_delivered"], 5);
    assert_exactly_once(&ws, &fake, &emails, 5, &[]);
    let out = ws
        .cmd()
        .args(["--json", "lookup", "--local-key", "L0600-000001"])
        .output()
        .expect("runs");
    let doc = json_of(&out);
    assert_eq!(doc["match_key_type"], "contactId");
    assert_eq!(doc["contact"]["local_key"], "L0600-000001");
    let id = doc["match_key"].as_str().expect("id").to_string();
    let out = ws
        .cmd()
        .args(["--json", "lookup", "--contact-id", &id])
        .output()
        .expect("runs");
    assert_eq!(json_of(&out)["contact"]["local_key"], "L0600-000001");
    // Nothing left: a further push sends nothing.
    fake.clear_requests();
    assert!(sync(&ws, &fake, &["push-local"]).status.success());
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

#[test]
fn a_fault_at_every_step_of_a_push_never_duplicates_or_loses() {
    let scenarios: Vec<(&str, Fault)> = vec![
        (
            "bulk create dropped before the answer",
            Fault::on("POST", BULK, FaultKind::DropBeforeResponse),
        ),
        (
            "bulk create applied, answer lost",
            Fault::on("POST", BULK, FaultKind::ApplyThenDrop),
        ),
        (
            "bulk create answer cut off",
            Fault::on("POST", BULK, FaultKind::TruncatedBody),
        ),
        (
            "bulk create 503",
            Fault::on("POST", BULK, FaultKind::Status(503)),
        ),
        (
            "bulk create 429",
            Fault::on("POST", BULK, FaultKind::Status429 { retry_after: None }).times(2),
        ),
        (
            "status poll dropped",
            Fault::on("GET", STATUS, FaultKind::DropBeforeResponse).times(6),
        ),
        (
            "status poll 500s",
            Fault::on("GET", STATUS, FaultKind::Status(500)).times(6),
        ),
        (
            "lookup dropped",
            Fault::on("GET", LOOKUP, FaultKind::DropBeforeResponse).times(6),
        ),
        (
            "receipt applied, answer lost",
            Fault::on("POST", RECEIPTS, FaultKind::ApplyThenDrop).times(2),
        ),
        (
            "receipt dropped before the answer",
            Fault::on("POST", RECEIPTS, FaultKind::DropBeforeResponse),
        ),
        (
            "receipt 503",
            Fault::on("POST", RECEIPTS, FaultKind::Status(503)).times(2),
        ),
        (
            "receipt answer cut off",
            Fault::on("POST", RECEIPTS, FaultKind::TruncatedBody),
        ),
    ];
    for (name, fault) in scenarios {
        for lookup_first in [false, true] {
            let fake = lenient_fake();
            let ws = workspace_for(&fake, &format!("lookup_before_create = {lookup_first}\n"));
            let emails = till_day(&ws);
            fake.inject(fault.clone());
            let outs = push_until_done(&ws, &fake, 4);
            let lookups_only = name.starts_with("lookup");
            if lookup_first || !lookups_only {
                assert!(
                    fake.pending_faults().is_empty(),
                    "{name}: the fault was hit"
                );
            }
            for out in &outs[..outs.len() - 1] {
                assert_eq!(out.status.code(), Some(75), "{name}: {}", stderr_of(out));
            }
            assert_exactly_once(&ws, &fake, &emails, 5, &[]);
        }
    }
}

#[test]
fn a_push_killed_mid_request_neither_duplicates_nor_loses() {
    for (path, what) in [(BULK, "bulk create"), (RECEIPTS, "receipt")] {
        let fake = lenient_fake();
        let ws = workspace_for(&fake, "lookup_before_create = false\n");
        let emails = till_day(&ws);
        fake.inject(Fault::on(
            "POST",
            path,
            FaultKind::Delay(Duration::from_millis(1500)),
        ));
        let mut child = ws
            .std_cmd()
            .env("ENGAGE_API_KEY", fake.api_key())
            .args(["-q", "push-local"])
            .spawn()
            .expect("spawn");
        // Killed once the request is in the fake's hands (its delay fault taken), before the
        // answer, which the delay holds back for 1.5 s.
        let until = Instant::now() + Duration::from_secs(60);
        while !fake.pending_faults().is_empty() {
            assert!(Instant::now() < until, "{what}: the request never arrived");
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        // The fake applies the delayed request although nobody waits for its answer any more.
        let until = Instant::now() + Duration::from_secs(5);
        while fake.pending_faults().len()
            + usize::from(fake.requests().iter().all(|r| r.fault.is_none()))
            > 0
        {
            assert!(
                Instant::now() < until,
                "{what}: the delayed request never arrived"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let in_flight = ws.count("SELECT count(*) FROM contact_outbox WHERE state = 'in_flight'")
            + ws.count("SELECT count(*) FROM receipt_outbox WHERE state = 'in_flight'");
        assert!(in_flight > 0, "{what}: the kill left items in flight");
        // Receipts sent beside the delayed request may have been answered, but not recorded,
        // before the kill: those, and only those, may be posted once more.
        let unsettled = receipts_in_flight(&ws);
        push_until_done(&ws, &fake, 3);
        assert_exactly_once(&ws, &fake, &emails, 5, &unsettled);
    }
}

#[test]
fn a_customer_who_signed_up_at_the_till_but_exists_in_engage_is_not_created_twice() {
    // With the lookup before create (the default), and relying on bulk's "already exists".
    for (lookup_first, fake) in [
        (true, lenient_fake()),
        (false, FakeEngage::start(FakeConfig::default())),
    ] {
        let existing = fake.add_contact(json!({"email": "anna@example.com", "firstName": "Anna"}));
        // The tenant's contact key is e-mail: the lookup before create uses it.
        let ws = workspace_for(
            &fake,
            &format!("lookup_before_create = {lookup_first}\nsecondary_key = \"email\"\n"),
        );
        let r = receipt(
            "R-1",
            json!({"email": "Anna@Example.com", "firstName": "Anna", "mobilePhone": "0701234567"}),
        );
        add_receipt(&ws, &r);
        let outs = push_until_done(&ws, &fake, 1);
        let summary = json_of(&outs[0]);
        assert_eq!(summary["contacts_linked_existing"], 1, "{summary}");
        assert_eq!(summary["contacts_created"], 0);
        assert_eq!(
            fake.creates_for("email", "anna@example.com"),
            0,
            "not created again"
        );
        assert_eq!(fake.contact_count(), 1);
        let stored = fake.receipts();
        assert_eq!(stored.len(), 1);
        assert_eq!(
            stored[0].contact_id, existing,
            "tagged to the existing contact"
        );
        assert_eq!(stored[0].body["contact"]["matchKey"], existing);
        let out = ws
            .cmd()
            .args(["--json", "lookup", "--local-key", "L0600-000001"])
            .output()
            .expect("runs");
        assert_eq!(json_of(&out)["match_key"], existing);
    }
}

#[test]
fn ten_thousand_and_one_local_contacts_go_in_exactly_three_bulk_requests() {
    let fake = FakeEngage::start(FakeConfig::default());
    let ws = workspace_for(&fake, "lookup_before_create = false\n");
    let lines: String = (0..10_001)
        .map(|i| format!("{{\"email\": \"bulk{i}@example.com\", \"firstName\": \"B{i}\"}}\n"))
        .collect();
    let file = ws.path().join("contacts.jsonl");
    std::fs::write(&file, lines).expect("write");
    let out = ws
        .cmd()
        .args(["contact", "add", "--from"])
        .arg(&file)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let outs = push_until_done(&ws, &fake, 1);
    assert_eq!(json_of(&outs[0])["contacts_created"], 10_001);
    let sizes: Vec<usize> = fake
        .bulk_requests()
        .iter()
        .filter(|b| b.method == "POST")
        .map(|b| b.size)
        .collect();
    assert_eq!(sizes, [4000, 4000, 2001]);
    assert_eq!(fake.contact_count(), 10_001);
    assert_eq!(
        ws.count("SELECT count(*) FROM contacts WHERE contact_id IS NULL"),
        0
    );
    assert_eq!(ws.count("SELECT count(*) FROM local_key_link"), 10_001);
}

#[test]
fn rejected_items_are_kept_with_engages_reason_and_fixed_ones_go_through() {
    let fake = FakeEngage::start(FakeConfig::default());
    let ws = workspace_for(&fake, "");
    let out = ws
        .cmd()
        .args([
            "contact",
            "add",
            "--email",
            "bad@example.com",
            "--ssn",
            "12345678",
        ])
        .output()
        .expect("runs");
    assert!(out.status.success());
    add_receipt(
        &ws,
        &receipt(
            "R-waits",
            json!({"matchKeyType": "localKey", "matchKey": "L0600-000001"}),
        ),
    );
    add_receipt(
        &ws,
        &receipt(
            "R-unknown",
            json!({"matchKeyType": "memberNumber", "matchKey": "M-404"}),
        ),
    );
    let out = sync(&ws, &fake, &["--json", "push-local"]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr_of(&out));
    let summary = json_of(&out);
    let rejected = summary["rejected"].as_array().expect("list").clone();
    assert_eq!(rejected.len(), 2, "{summary}");
    let reasons = serde_json::to_string(&rejected).expect("json");
    assert!(reasons.contains("InvalidSocialSecurityNumber"), "{reasons}");
    assert!(reasons.contains("ContactNotFound"), "{reasons}");
    assert!(
        !reasons.contains("12345678"),
        "Engage's echo of the value is masked: {reasons}"
    );
    assert!(
        stderr_of(&out).contains("rejected 2 item(s)"),
        "{}",
        stderr_of(&out)
    );
    let text = stdout_of(&ws.cmd().arg("status").output().expect("runs"));
    assert!(
        text.contains("rejected receipt post R-unknown") && text.contains("ContactNotFound"),
        "{text}"
    );
    // Rejections are not retried on their own; the receipt of the rejected contact waits.
    let out = sync(&ws, &fake, &["--json", "push-local"]);
    assert_eq!(out.status.code(), Some(75));
    assert_eq!(fake.receipt_post_count("R-unknown"), 1);
    assert!(
        stdout_of(&out).contains("was rejected by Engage"),
        "{}",
        stdout_of(&out)
    );
    // Fixing the contact queues it again, and its receipt follows.
    let out = ws
        .cmd()
        .args([
            "contact",
            "update",
            "--local-key",
            "L0600-000001",
            "--ssn",
            "19800101-1234",
        ])
        .output()
        .expect("runs");
    assert!(
        stdout_of(&out).contains("rejected create, which is queued again"),
        "{}",
        stdout_of(&out)
    );
    let out = sync(&ws, &fake, &["--json", "push-local"]);
    assert!(out.status.success(), "{}", stdout_of(&out));
    assert_eq!(fake.receipts().len(), 1);
    // --retry-rejected sends the rejected receipt once more (and Engage refuses it again), and
    // its report counts what it queued again.
    let rejected = ws.count("SELECT count(*) FROM receipt_outbox WHERE state = 'rejected'")
        + ws.count("SELECT count(*) FROM contact_outbox WHERE state = 'rejected'");
    assert_eq!(rejected, 1, "R-unknown");
    let out = sync(&ws, &fake, &["--json", "push-local", "--retry-rejected"]);
    assert_eq!(out.status.code(), Some(65));
    assert_eq!(json_of(&out)["retried_rejected"], rejected);
    assert_eq!(fake.receipt_post_count("R-unknown"), 2);
}

/// A replica that knows the fake's contact (imported from an export file naming its id).
fn replica_with(fake: &FakeEngage, ws: &Workspace, attrs: Value) -> String {
    let id = fake.add_contact(attrs.clone());
    let fields: String = attrs
        .as_object()
        .expect("object")
        .iter()
        .map(|(k, v)| format!("<{k}>{}</{k}>", v.as_str().expect("text")))
        .collect();
    let member = format!("<member><contactId>{id}</contactId>{fields}</member>");
    ws.write_export("20260101100000_0_c.xml", &export(&[member], &[], &[]));
    assert!(ws
        .cmd()
        .args(["delta", "inbox"])
        .output()
        .expect("runs")
        .status
        .success());
    id
}

#[test]
fn an_update_sends_only_the_changed_fields() {
    let fake = FakeEngage::start(FakeConfig::default());
    let ws = workspace_for(&fake, "");
    let id = replica_with(
        &fake,
        &ws,
        json!({"email": "anna@example.com", "firstName": "Anna", "city": "Umeå"}),
    );
    // Engage changes the city after the replica's copy was taken.
    assert!(fake.update_contact(&id, json!({"city": "Berlin"})));
    let out = ws
        .cmd()
        .args([
            "contact",
            "update",
            "--contact-id",
            &id,
            "--first-name",
            "Annie",
            "--field",
            "city=Umeå",
        ])
        .output()
        .expect("runs");
    assert!(
        stdout_of(&out).contains("changed firstName;"),
        "city is unchanged locally: {}",
        stdout_of(&out)
    );
    let outs = push_until_done(&ws, &fake, 1);
    assert_eq!(json_of(&outs[0])["contacts_updated"], 1);
    let c = fake.contact(&id).expect("live");
    assert_eq!(c["firstName"], "Annie");
    assert_eq!(
        c["city"], "Berlin",
        "a field not changed at the till is not overwritten"
    );
    let patches: Vec<_> = fake
        .bulk_requests()
        .into_iter()
        .filter(|b| b.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].size, 1);
}

#[test]
fn an_update_of_a_contact_deleted_in_engage_meanwhile_is_dropped_with_its_reason() {
    let fake = FakeEngage::start(FakeConfig::default());
    let ws = workspace_for(&fake, "");
    let id = replica_with(
        &fake,
        &ws,
        json!({"email": "gone@example.com", "firstName": "Gone"}),
    );
    let out = ws
        .cmd()
        .args([
            "contact",
            "update",
            "--contact-id",
            &id,
            "--first-name",
            "Still",
        ])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let deletion = format!("<member><contactId>{id}</contactId></member>");
    // Exported after the change at the till (the till's change is versioned with its time).
    ws.write_export("20991231100000_0_c.xml", &export(&[], &[], &[deletion]));
    assert!(ws
        .cmd()
        .args(["delta", "inbox"])
        .output()
        .expect("runs")
        .status
        .success());
    let out = sync(&ws, &fake, &["--json", "push-local"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let summary = json_of(&out);
    assert_eq!(summary["contacts_dropped"], 1);
    assert!(summary["dropped"][0]["reason"]
        .as_str()
        .expect("reason")
        .contains("deleted in Engage"));
    assert!(
        stderr_of(&out).contains("update dropped"),
        "logged: {}",
        stderr_of(&out)
    );
    assert!(fake.bulk_requests().is_empty(), "nothing pushed");
    assert_eq!(
        ws.count("SELECT count(*) FROM contact_outbox WHERE state = 'dropped'"),
        1
    );
}

const SECRETS: [&str; 4] = [
    "Zebulon",
    "zebulon.secret@example.com",
    "+46701112233",
    "Xylophone",
];

#[test]
fn purged_outbox_rows_leave_no_personal_data_in_the_database_files() {
    let fake = FakeEngage::start(FakeConfig::default());
    let ws = workspace_for(&fake, "");
    let out = ws
        .cmd()
        .args([
            "contact",
            "add",
            "--email",
            "zebulon.secret@example.com",
            "--mobile",
            "+46701112233",
            "--first-name",
            "Zebulon",
        ])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let mut r = receipt(
        "R-1",
        json!({"matchKeyType": "localKey", "matchKey": "L0600-000001"}),
    );
    r["extraData"] = json!([{"name": "note", "value": "Xylophone"}]);
    add_receipt(&ws, &r);
    push_until_done(&ws, &fake, 1);
    for secret in SECRETS {
        assert!(
            !holding(&ws, secret).is_empty(),
            "{secret} is in the outbox before the purge"
        );
    }
    // Engage deletes the contact; the delta removes it from the replica.
    let id: String = ws
        .conn()
        .query_row("SELECT contact_id FROM local_key_link", [], |r| r.get(0))
        .expect("linked");
    let deletion = format!("<member><contactId>{id}</contactId></member>");
    ws.write_export("20991231100000_0_c.xml", &export(&[], &[], &[deletion]));
    assert!(ws
        .cmd()
        .args(["delta", "inbox"])
        .output()
        .expect("runs")
        .status
        .success());
    // A young purge keeps the delivered rows; an old enough one removes them.
    let out = ws
        .cmd()
        .args(["--json", "purge", "--older-than", "30d"])
        .output()
        .expect("runs");
    assert_eq!(json_of(&out)["outbox_receipts"], 0);
    ws.conn()
        .execute_batch(
            "UPDATE contact_outbox SET finished_at = '2020-01-01T00:00:00.000Z'; \
             UPDATE receipt_outbox SET finished_at = '2020-01-01T00:00:00.000Z';",
        )
        .expect("age");
    let out = ws
        .cmd()
        .args(["--json", "purge", "--older-than", "30d"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let summary = json_of(&out);
    assert_eq!(summary["outbox_contacts"], 1);
    assert_eq!(summary["outbox_receipts"], 1);
    let printed = format!("{}{}", stdout_of(&out), stderr_of(&out));
    for secret in SECRETS {
        assert!(!printed.contains(secret), "purge printed {secret}");
        assert!(
            holding(&ws, secret).is_empty(),
            "{secret} still in {:?}",
            holding(&ws, secret)
        );
    }
    assert_eq!(
        ws.count("SELECT count(*) FROM local_key_link"),
        1,
        "ids only, kept"
    );
}

#[test]
fn pending_items_are_never_purged() {
    let fake = FakeEngage::start(FakeConfig::default());
    let ws = workspace_for(&fake, "");
    add_contact(&ws, "keep@example.com", "0701231231");
    ws.conn()
        .execute_batch("UPDATE contact_outbox SET created_at = '2020-01-01T00:00:00.000Z', finished_at = '2020-01-01T00:00:00.000Z'")
        .expect("age");
    let out = ws
        .cmd()
        .args(["--json", "purge", "--older-than", "1d"])
        .output()
        .expect("runs");
    assert_eq!(json_of(&out)["outbox_contacts"], 0);
    assert_eq!(ws.count("SELECT count(*) FROM contact_outbox"), 1);
}

#[test]
fn a_dry_run_reports_per_item_and_contacts_no_one() {
    let fake = FakeEngage::start(FakeConfig::default());
    let ws = workspace_for(&fake, "");
    till_day(&ws);
    let out = sync(&ws, &fake, &["push-local", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = stdout_of(&out);
    assert!(
        text.contains(
            "contact create L0600-000001: looked up in Engage by mobilePhone +4670*****01 first"
        ),
        "{text}"
    );
    assert!(text.contains("created in bulk create request 1"), "{text}");
    assert!(
        text.contains("receipt post R-5: posted after its contact is created"),
        "{text}"
    );
    assert!(!text.contains("member1@"), "masked: {text}");
    assert!(fake.requests().is_empty());
    assert_eq!(
        ws.count("SELECT count(*) FROM contact_outbox WHERE state = 'pending'"),
        4
    );
    let out = sync(&ws, &fake, &["--json", "push-local", "--dry-run"]);
    assert_eq!(json_of(&out)["items"].as_array().expect("items").len(), 9);
}

#[test]
fn a_passed_deadline_sends_nothing_and_leaves_everything_queued() {
    let fake = FakeEngage::start(FakeConfig::default());
    let ws = workspace_for(&fake, "");
    till_day(&ws);
    let out = sync(&ws, &fake, &["--json", "push-local", "--deadline", "1ns"]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr_of(&out));
    assert!(json_of(&out)["stopped"]
        .as_str()
        .expect("why")
        .contains("deadline"));
    assert!(fake.requests().is_empty());
    assert_eq!(
        ws.count("SELECT count(*) FROM contact_outbox WHERE state = 'pending'"),
        4
    );
    assert_eq!(
        ws.count("SELECT count(*) FROM receipt_outbox WHERE state = 'pending'"),
        5
    );
    push_until_done(&ws, &fake, 1);
}

#[test]
fn receipts_reach_engage_within_the_rate_limit_in_every_second() {
    // The limit as Engage sees it: arrivals at the fake, in any sliding second, with every
    // answer taking 30 ms (so several posts are in flight at once).
    let fake = FakeEngage::start(FakeConfig::default());
    fake.set_latency(Matcher::Any, Duration::from_millis(30));
    let id = fake.add_contact(json!({"email": "regular@example.com"}));
    let ws = Workspace::new();
    std::fs::write(
        ws.path().join("engage-sync.toml"),
        format!(
            "[engage]\nbase_url = \"{}\"\nrate_limit = 50\nmax_concurrency = 8\n\
             [local]\nstore_external_id = \"0600\"\n",
            fake.base_url()
        ),
    )
    .expect("config");
    ws.init();
    let n = 260;
    let lines = receipt_lines("RL", n, &id);
    let out = sync_stdin(&ws, &["receipt", "add", "-"], &lines);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let began = Instant::now();
    let out = sync(&ws, &fake, &["push-local"]);
    let took = began.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(fake.receipts().len(), n);
    let peak = fake.max_requests_in_any_window(Duration::from_secs(1));
    eprintln!("{n} receipts at 50/s: {took:.2} s, at most {peak} in any second at the fake");
    assert!(peak <= 50, "{peak} requests in one second");
    // 260 posts at (1 s + 50 ms) / 50 apart take at least 5.4 s: the limiter spaced them. How
    // much longer a busy machine takes is not a correctness question (bench/push.sh).
    assert!(took >= 5.0, "{took:.2} s");
}

/// Two pushes never run at once: while one is frozen with its items claimed, a second one
/// exits 75 without sending a request, and the first then delivers everything exactly once.
#[test]
fn a_second_push_waits_for_the_first_and_sends_nothing() {
    let fake = FakeEngage::start(FakeConfig::default());
    let ws = workspace_for(&fake, "");
    let emails = till_day(&ws);
    let mut first = ws.std_cmd();
    first
        .env("ENGAGE_API_KEY", fake.api_key())
        .env_remove("ENGAGE_BASE_URL")
        .arg("push-local");
    let frozen = Frozen::start(first, "push.claimed");
    let before = fake.requests().len();
    let out = sync(&ws, &fake, &["push-local"]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr_of(&out));
    assert_eq!(
        fake.requests().len(),
        before,
        "the second push sent nothing"
    );
    frozen.finish("the first push");
    push_until_done(&ws, &fake, 3);
    assert_exactly_once(&ws, &fake, &emails, 5, &[]);
}

/// A contact sent without a usable answer waits in flight and says why in the till store (what
/// an operator reading the outbox sees), until it is checked in Engage; then it is delivered
/// once and the reason goes.
#[test]
fn a_contact_sent_without_a_usable_answer_says_why_it_waits() {
    let fake = lenient_fake();
    let engage = format!("{FAKE_ENGAGE_WAITS}max_retries = 3\n");
    let local = |recheck: &str| {
        FAST_PUSH.replace(
            "recheck_after = \"0s\"",
            &format!("recheck_after = \"{recheck}\""),
        ) + "lookup_before_create = false\n"
    };
    let ws = Workspace::pointed_at(&fake, &engage, &local("1h"));
    let emails = till_day(&ws);
    fake.inject(Fault::on("POST", BULK, FaultKind::ApplyThenDrop));
    let first = sync(&ws, &fake, &["--json", "push-local"]);
    assert_eq!(first.status.code(), Some(75), "{}", stderr_of(&first));
    let waiting = contact_states(&ws, "state != 'delivered'");
    assert_eq!(waiting.len(), emails.len(), "{waiting:?}");
    for (state, reason) in &waiting {
        assert_eq!(state, "in_flight");
        assert!(
            reason
                .as_deref()
                .is_some_and(|r| r.starts_with("sent without a usable answer")),
            "{reason:?}"
        );
    }
    let oldest_undelivered = || {
        let out = ws
            .cmd()
            .args(["--json", "status"])
            .output()
            .expect("status");
        json_of(&out)["outbox"]["oldest_undelivered_queued_at"].clone()
    };
    assert!(oldest_undelivered().is_string(), "in flight is undelivered");
    // Before `recheck_after` (1 h) has passed, a run leaves them waiting: no lookup, no
    // resend, and it says when they will be checked.
    fake.clear_requests();
    let early = sync(&ws, &fake, &["--json", "push-local"]);
    assert_eq!(early.status.code(), Some(75), "{}", stderr_of(&early));
    assert_eq!(
        fake.requests_per_endpoint().get("GET /contacts/id"),
        None,
        "not checked before recheck_after"
    );
    let notes = json_of(&early)["waiting"].clone();
    let contacts_waiting = notes
        .as_array()
        .expect("notes")
        .iter()
        .filter(|n| {
            n["kind"] == "contact"
                && n["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("recheck_after has passed"))
        })
        .count();
    assert_eq!(contacts_waiting, emails.len(), "{notes}");
    assert_eq!(
        ws.count("SELECT count(*) FROM contact_outbox WHERE state = 'in_flight'"),
        emails.len() as i64
    );
    // Checked in Engage at once from now on: found there, delivered, never created twice.
    let config = std::fs::read_to_string(ws.path().join("engage-sync.toml")).expect("config");
    std::fs::write(
        ws.path().join("engage-sync.toml"),
        config.replace("recheck_after = \"1h\"", "recheck_after = \"0s\""),
    )
    .expect("config");
    push_until_done(&ws, &fake, 3);
    assert_exactly_once(&ws, &fake, &emails, 5, &[]);
    assert_eq!(
        ws.count("SELECT count(*) FROM contact_outbox WHERE reason IS NOT NULL"),
        0,
        "delivered items keep no reason"
    );
    assert_eq!(
        oldest_undelivered(),
        Value::Null,
        "everything was delivered"
    );
}

mod read_back;
mod waiting;
