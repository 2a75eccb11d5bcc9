//! What the till store says about an item while it waits, and how a waiting item gets out:
//! SPEC §6 — every outbox item has a state and an attempt count, a transient failure leaves it
//! pending for the next run, and an item sent without a settled answer is checked in Engage
//! by key before anything is sent again. An operator reads these rows (and `status`) to know
//! why a till's purchases have not reached Engage.

use super::*;

/// One outbox row as an operator reads it: (item, state, reason, attempts).
type Row = (String, String, Option<String>, i64);

fn rows(ws: &Workspace, sql: &str) -> Vec<Row> {
    let conn = ws.till_conn();
    let mut stmt = conn.prepare(sql).expect("prepare");
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    rows
}

fn receipt_rows(ws: &Workspace) -> Vec<Row> {
    rows(
        ws,
        "SELECT unique_receipt_id, state, reason, attempts FROM receipt_outbox ORDER BY id",
    )
}

fn contact_rows(ws: &Workspace) -> Vec<Row> {
    rows(
        ws,
        "SELECT local_key, state, reason, attempts FROM contact_outbox ORDER BY id",
    )
}

/// `status --json`'s outbox depth as (kind, state, count), summed over ops.
fn depth(ws: &Workspace) -> Vec<(String, String, u64)> {
    let out = ws
        .cmd()
        .args(["--json", "status"])
        .output()
        .expect("status");
    let mut by: std::collections::BTreeMap<(String, String), u64> = Default::default();
    for d in json_of(&out)["outbox"]["depth"].as_array().expect("depth") {
        let key = (
            d["kind"].as_str().expect("kind").to_string(),
            d["state"].as_str().expect("state").to_string(),
        );
        *by.entry(key).or_default() += d["count"].as_u64().expect("count");
    }
    by.into_iter().map(|((k, s), n)| (k, s, n)).collect()
}

/// Receipts whose posts failed for now (Engage answered 503 to every attempt) go back to
/// pending, each with the failure as its reason and one attempt counted, and `status` shows
/// them pending, not in flight; the next run delivers each once.
#[test]
fn a_receipt_that_failed_for_now_waits_pending_with_its_reason() {
    let fake = FakeEngage::start(FakeConfig::default());
    let id = fake.add_contact(json!({"email": "regular@example.com"}));
    let ws = workspace_for(&fake, "");
    let ids = ["W-1", "W-2", "W-3"];
    for r in ids {
        add_receipt(
            &ws,
            &receipt(r, json!({"matchKeyType": "contactId", "matchKey": id})),
        );
    }
    fake.inject(Fault::on("POST", RECEIPTS, FaultKind::Status(503)).times(1000));
    let out = sync(&ws, &fake, &["--json", "push-local"]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr_of(&out));
    assert!(fake.receipts().is_empty(), "nothing was applied");
    let waiting = receipt_rows(&ws);
    assert_eq!(waiting.len(), ids.len());
    for (item, state, reason, attempts) in &waiting {
        assert_eq!(state, "pending", "{item} waits for the next run");
        assert!(
            reason.as_deref().is_some_and(|r| r.contains("503")),
            "{item}: the reason names Engage's answer: {reason:?}"
        );
        assert_eq!(*attempts, 1, "{item}: one attempt (a run, not its retries)");
    }
    assert_eq!(
        depth(&ws),
        vec![("receipt".to_string(), "pending".to_string(), 3)]
    );
    fake.clear_faults();
    push_until_done(&ws, &fake, 1);
    for r in ids {
        assert_eq!(fake.receipt_post_count(r), 1, "{r} posted once");
    }
    for (item, state, reason, _) in receipt_rows(&ws) {
        assert_eq!((state.as_str(), reason), ("delivered", None), "{item}");
    }
}

/// A receipt of a contact registered at the till waits while that contact cannot be created
/// (Engage answers 429 to every try of the bulk create, so it was certainly not processed and
/// the contact is pending again): the till store says which contact the receipt waits for,
/// and once the contact is created the receipt follows, tagged with Engage's contact id.
#[test]
fn a_receipt_waiting_for_its_contact_says_which_in_the_till_store() {
    let fake = FakeEngage::start(FakeConfig::default());
    let ws = workspace_for(&fake, "lookup_before_create = false\n");
    let key = add_contact(&ws, "waits@example.com", "070-000 00 09");
    add_receipt(
        &ws,
        &receipt("WC-1", json!({"matchKeyType": "localKey", "matchKey": key})),
    );
    let limited = FaultKind::Status429 { retry_after: None };
    fake.inject(Fault::on("POST", BULK, limited).times(1000));
    let out = sync(&ws, &fake, &["--json", "push-local"]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr_of(&out));
    let contact = contact_rows(&ws);
    assert_eq!(contact.len(), 1);
    assert_eq!(
        (contact[0].0.as_str(), contact[0].1.as_str()),
        (key.as_str(), "pending")
    );
    let waiting = receipt_rows(&ws);
    assert_eq!(waiting.len(), 1);
    let (item, state, reason, attempts) = &waiting[0];
    assert_eq!(
        (item.as_str(), state.as_str(), *attempts),
        ("WC-1", "pending", 0)
    );
    assert_eq!(
        reason.as_deref(),
        Some(format!("waiting for its contact {key} to be created in Engage").as_str()),
        "the till store names the contact the receipt waits for"
    );
    fake.clear_faults();
    push_until_done(&ws, &fake, 2);
    let stored = fake.receipts();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        fake.find_contacts("email", "waits@example.com"),
        vec![stored[0].contact_id.clone()]
    );
    assert_eq!(receipt_rows(&ws)[0].2, None, "delivered: no reason left");
}

/// Engage no longer knows a bulk batch (its status answers 404): the batch's contacts leave
/// it, so the next run checks them in Engage by key (the create had been applied), links
/// them and never creates them again. An item still tied to the lost batch would wait in
/// flight for ever: nothing polls a lost batch, and a contact waiting for its batch is never
/// checked by key.
#[test]
fn contacts_of_a_batch_engage_no_longer_knows_are_checked_by_key_and_delivered_once() {
    let fake = lenient_fake();
    let ws = workspace_for(&fake, "lookup_before_create = false\n");
    let emails = till_day(&ws);
    fake.inject(Fault::on("GET", STATUS, FaultKind::Status(404)));
    let first = sync(&ws, &fake, &["--json", "push-local"]);
    assert_eq!(first.status.code(), Some(75), "{}", stderr_of(&first));
    assert!(
        ws.count("SELECT count(*) FROM outbox_batch WHERE state = 'lost'") == 1,
        "the batch is recorded as lost"
    );
    push_until_done(&ws, &fake, 3);
    assert_exactly_once(&ws, &fake, &emails, 5, &[]);
}

/// A completed batch whose answer settles none of its contacts (no per-row results) sends
/// them to be checked in Engage by key; when those checks fail too (503 to every lookup), the
/// contacts wait in flight and a later run checks them again and delivers each once.
#[test]
fn contacts_a_batch_answer_left_unsettled_are_checked_again_by_a_later_run() {
    let fake = FakeEngage::start(FakeConfig {
        unique_keys: Vec::new(),
        bulk_status_results: false,
        ..FakeConfig::default()
    });
    let ws = workspace_for(&fake, "lookup_before_create = false\n");
    let emails = till_day(&ws);
    fake.inject(Fault::on("GET", LOOKUP, FaultKind::Status(503)).times(1000));
    let first = sync(&ws, &fake, &["--json", "push-local"]);
    assert_eq!(first.status.code(), Some(75), "{}", stderr_of(&first));
    let unsettled = contact_rows(&ws);
    assert_eq!(unsettled.len(), emails.len());
    for (item, state, _, _) in &unsettled {
        assert_eq!(state, "in_flight", "{item}: sent, outcome not known yet");
    }
    fake.clear_faults();
    push_until_done(&ws, &fake, 3);
    assert_exactly_once(&ws, &fake, &emails, 5, &[]);
}

/// Engage refuses the API key (401) to the first receipt post: no further post starts in
/// that run (posted one at a time, `max_concurrency = 1`, so none was under way), the run
/// ends 77, and every receipt waits pending; those never sent count no attempt. With the key
/// accepted again, the next run delivers each once.
#[test]
fn a_refused_key_stops_new_posts_and_the_rest_wait_unsent() {
    let fake = FakeEngage::start(FakeConfig::default());
    let id = fake.add_contact(json!({"email": "regular@example.com"}));
    let engage = format!("{FAKE_ENGAGE_WAITS}max_retries = 3\nmax_concurrency = 1\n");
    let ws = Workspace::pointed_at(&fake, &engage, FAST_PUSH);
    let ids: Vec<String> = (0..6).map(|i| format!("K-{i}")).collect();
    for r in &ids {
        add_receipt(
            &ws,
            &receipt(r, json!({"matchKeyType": "contactId", "matchKey": id})),
        );
    }
    fake.inject(Fault::on("POST", RECEIPTS, FaultKind::Status(401)));
    let out = sync(&ws, &fake, &["--json", "push-local"]);
    assert_eq!(out.status.code(), Some(77), "{}", stderr_of(&out));
    let posts = fake.requests_per_endpoint();
    assert_eq!(posts.get("POST /receipts"), Some(&1), "{posts:?}");
    let waiting = receipt_rows(&ws);
    assert_eq!(waiting.len(), ids.len());
    for (item, state, reason, attempts) in &waiting {
        assert_eq!(state, "pending", "{item}");
        assert!(reason.is_some(), "{item} says why it waits");
        let sent = item == &ids[0];
        assert_eq!(*attempts, i64::from(sent), "{item}: attempts");
    }
    push_until_done(&ws, &fake, 1);
    for r in &ids {
        assert_eq!(fake.receipt_post_count(r), 1, "{r} reached Engage once");
    }
    assert_eq!(
        fake.requests_per_endpoint().get("POST /receipts"),
        Some(&(ids.len() + 1)),
        "the refused post, then one post each"
    );
    assert_eq!(fake.receipts().len(), ids.len());
}

/// A receipt Engage refuses as invalid (400) is rejected with Engage's answer as its reason,
/// the run ends 65 (data), and it is not posted again by later runs: posting the same receipt
/// cannot help until someone fixes it (`--retry-rejected`).
#[test]
fn a_receipt_engage_refuses_as_invalid_is_rejected_not_retried() {
    let fake = FakeEngage::start(FakeConfig::default());
    let id = fake.add_contact(json!({"email": "regular@example.com"}));
    let ws = workspace_for(&fake, "");
    add_receipt(
        &ws,
        &receipt(
            "BAD-1",
            json!({"matchKeyType": "contactId", "matchKey": id}),
        ),
    );
    fake.inject(Fault::on("POST", RECEIPTS, FaultKind::Status(400)));
    let out = sync(&ws, &fake, &["--json", "push-local"]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr_of(&out));
    let rows = receipt_rows(&ws);
    assert_eq!(rows.len(), 1);
    let (_, state, reason, _) = &rows[0];
    assert_eq!(state, "rejected");
    assert!(
        reason.as_deref().is_some_and(|r| r.contains("400")),
        "{reason:?}"
    );
    let again = sync(&ws, &fake, &["--json", "push-local"]);
    assert!(again.status.success(), "{}", stderr_of(&again));
    assert_eq!(
        fake.requests_per_endpoint().get("POST /receipts"),
        Some(&1),
        "not posted again"
    );
    assert!(fake.receipts().is_empty());
}

/// Engage reports a bulk create batch as failed, although it created the contacts (its word
/// does not say what a failed batch did): the contacts go back to pending, and before they
/// are sent again each is looked up by key, found and linked, so none is created twice
/// (the fake's uniqueness is off, so a second create would show).
#[test]
fn contacts_of_a_batch_reported_failed_are_looked_up_before_they_are_sent_again() {
    let fake = lenient_fake();
    let ws = workspace_for(&fake, "lookup_before_create = false\n");
    let emails = till_day(&ws);
    fake.fail_next_bulk_batches(1);
    let first = sync(&ws, &fake, &["--json", "push-local"]);
    assert_eq!(first.status.code(), Some(75), "{}", stderr_of(&first));
    for (item, state, reason, attempts) in contact_rows(&ws) {
        assert_eq!((state.as_str(), attempts), ("pending", 1), "{item}");
        assert!(
            reason.as_deref().is_some_and(|r| r.contains("as failed")),
            "{item}: {reason:?}"
        );
    }
    let outs = push_until_done(&ws, &fake, 3);
    assert_exactly_once(&ws, &fake, &emails, 5, &[]);
    // Found before the re-send, after a send that may have made them: whether it did, no
    // answer says, so they are "created or linked", not "linked existing".
    let total = |key: &str| {
        outs.iter()
            .map(|o| json_of(o)[key].as_u64().expect(key))
            .sum::<u64>()
    };
    let creates = ws.count("SELECT count(*) FROM contact_outbox WHERE op = 'create'") as u64;
    assert_eq!(total("contacts_created_or_linked"), creates);
    assert_eq!(total("contacts_linked_existing"), 0);
}

/// A push killed after claiming its contacts but before sending them (failpoint
/// `push.claimed`) leaves them in flight with no send recorded: the next run puts them back
/// to pending (no attempt counted: nothing was sent), sends each once and delivers everything.
#[test]
fn contacts_claimed_by_a_killed_run_but_never_sent_are_sent_by_the_next() {
    let fake = lenient_fake();
    let ws = workspace_for(&fake, "lookup_before_create = false\n");
    let emails = till_day(&ws);
    let killed = ws
        .engage_cmd(&fake)
        .env("ENGAGE_SYNC_FAILPOINT", "push.claimed")
        .args(["--json", "push-local"])
        .output()
        .expect("runs");
    assert_eq!(killed.status.code(), None, "killed: {}", stderr_of(&killed));
    assert!(fake.requests().is_empty(), "nothing was sent");
    assert_eq!(
        ws.count(
            "SELECT count(*) FROM contact_outbox WHERE state = 'in_flight' AND sent_at IS NULL"
        ),
        emails.len() as i64
    );
    push_until_done(&ws, &fake, 2);
    assert_exactly_once(&ws, &fake, &emails, 5, &[]);
    let sent = fake.requests_per_endpoint();
    assert_eq!(sent.get("POST /contacts/bulk"), Some(&1), "{sent:?}");
}

/// With a deadline far off, `push-local --deadline` delivers everything like a run without
/// one: the deadline stops a run only once it has come.
#[test]
fn a_deadline_not_yet_come_stops_nothing() {
    let fake = lenient_fake();
    let ws = workspace_for(&fake, "");
    let emails = till_day(&ws);
    let out = sync(&ws, &fake, &["--json", "push-local", "--deadline", "10m"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(json_of(&out)["stopped"], Value::Null);
    assert_exactly_once(&ws, &fake, &emails, 5, &[]);
}

/// With `secondary_key` set to a personal number or a member number, a till contact is looked
/// up in Engage by that key before it is created (`socialSecurityNumber`, or `customKey`,
/// Engage's parameter for the tenant's custom key): Engage knows the person under another
/// e-mail, so the till contact is linked to it, not created (the fake's uniqueness is off,
/// so a create would show).
#[test]
fn a_till_contact_is_looked_up_by_the_configured_secondary_key() {
    for (key, flag, value, param) in [
        (
            "socialSecurityNumber",
            "--ssn",
            "198112189876",
            "socialSecurityNumber=",
        ),
        ("memberNumber", "--member-number", "M-4711", "customKey="),
    ] {
        let fake = lenient_fake();
        let known = fake.add_contact(json!({"email": "known@example.com", key: value}));
        let ws = workspace_for(&fake, &format!("secondary_key = \"{key}\"\n"));
        let out = ws
            .cmd()
            .args(["contact", "add", "--email", "till@example.com", flag, value])
            .output()
            .expect("runs");
        assert!(out.status.success(), "{key}: {}", stderr_of(&out));
        let out = sync(&ws, &fake, &["--json", "push-local"]);
        assert!(out.status.success(), "{key}: {}", stderr_of(&out));
        assert_eq!(json_of(&out)["contacts_linked_existing"], 1, "{key}");
        assert_eq!(fake.contact_count(), 1, "{key}: nobody created");
        let lookups: Vec<String> = fake
            .requests()
            .into_iter()
            .filter(|r| r.path.starts_with(LOOKUP))
            .map(|r| r.path)
            .collect();
        assert_eq!(lookups.len(), 1, "{key}: {lookups:?}");
        assert!(lookups[0].contains(param), "{key}: {lookups:?}");
        let doc = json_of(
            &ws.cmd()
                .args(["--json", "lookup", "--email", "till@example.com"])
                .output()
                .expect("runs"),
        );
        assert_eq!(
            doc["match_key"],
            known.as_str(),
            "{key}: linked to Engage's contact"
        );
    }
}

/// What `push-local --dry-run` says about the items an earlier run left behind, per item.
fn planned(ws: &Workspace, fake: &FakeEngage) -> Vec<(String, String, String)> {
    let out = sync(ws, fake, &["--json", "push-local", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    json_of(&out)["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            let text = |k: &str| i[k].as_str().expect(k).to_string();
            (text("kind"), text("item"), text("action"))
        })
        .collect()
}

/// A dry run tells, for items an earlier run left behind, what the next run will do: creates
/// that already went once are looked up first (with `lookup_before_create = false`, fresh ones
/// are not), all
/// in the first bulk request; contacts sent without an answer are checked in Engage; receipts
/// of a contact Engage rejected wait and say so.
#[test]
fn a_dry_run_says_what_happens_to_items_an_earlier_run_left() {
    let cases: [(FaultKind, &str, &str); 3] = [
        (
            FaultKind::Status429 { retry_after: None },
            "contact",
            "looked up in Engage by ",
        ),
        (FaultKind::ApplyThenDrop, "contact", "sent at "),
        (
            FaultKind::Status(400),
            "receipt",
            "waits: its contact L0600-00000",
        ),
    ];
    for (fault, kind, starts) in cases {
        let fake = lenient_fake();
        let ws = workspace_for(&fake, "lookup_before_create = false\n");
        till_day(&ws);
        // Before any run, with `lookup_before_create = false`, creates go without a lookup.
        let fresh = planned(&ws, &fake);
        let direct = fresh
            .iter()
            .filter(|(k, _, a)| k == "contact" && a.starts_with("created in bulk create request 1"))
            .count();
        assert_eq!(direct, 4, "{fresh:#?}");
        fake.inject(Fault::on("POST", BULK, fault.clone()).times(1000));
        let out = sync(&ws, &fake, &["--json", "push-local"]);
        assert_ne!(out.status.code(), Some(0), "{fault:?}: {}", stderr_of(&out));
        fake.clear_faults();
        if matches!(fault, FaultKind::ApplyThenDrop) {
            // A change made at the till while the create is in flight is queued as an update
            // that goes once the contact is known.
            let out = ws
                .cmd()
                .args([
                    "contact",
                    "update",
                    "--local-key",
                    "L0600-000001",
                    "--last-name",
                    "Later",
                ])
                .output()
                .expect("runs");
            assert!(out.status.success(), "{}", stderr_of(&out));
            let plan = planned(&ws, &fake);
            assert!(
                plan.contains(&(
                    "contact".to_string(),
                    "L0600-000001".to_string(),
                    "bulk update of lastName, once L0600-000001 is created in Engage".to_string()
                )),
                "{plan:#?}"
            );
        }
        let plan = planned(&ws, &fake);
        // Every create (four: three registered, one from a walk-in receipt's contact data) or
        // every receipt (five) the till store holds.
        let held = ws.count(if kind == "contact" {
            "SELECT count(*) FROM contact_outbox WHERE op = 'create'"
        } else {
            "SELECT count(*) FROM receipt_outbox"
        }) as usize;
        let matching = plan
            .iter()
            .filter(|(k, _, a)| k == kind && a.starts_with(starts))
            .count();
        assert_eq!(matching, held, "{fault:?}: {plan:#?}");
        for (_, item, action) in &plan {
            assert!(
                !action.contains("bulk create request 2"),
                "{fault:?}: {item}: three creates fit one request: {action}"
            );
        }
    }
}

/// Lookups before create (one at a time) that fail with 503 each leave their contact for a
/// later run and do not stop the run: every contact is tried, none is created unchecked, and
/// a receipt that needs none of them (tagged with a contact Engage has) is still delivered.
/// A refused key (401) instead stops the lookups at once: one request, nothing created, exit
/// 77. Either way the next run delivers everything once.
#[test]
fn failed_lookups_leave_their_contacts_and_a_refused_key_stops_them() {
    for (fault, code, lookups) in [
        (FaultKind::Status(503), 75, 3 * 4), // max_retries = 3: four tries each
        (FaultKind::Status(401), 77, 1),
    ] {
        let fake = lenient_fake();
        let known = fake.add_contact(json!({"email": "regular@example.com"}));
        let engage = format!("{FAKE_ENGAGE_WAITS}max_retries = 3\nmax_concurrency = 1\n");
        let ws = Workspace::pointed_at(&fake, &engage, FAST_PUSH);
        let emails: Vec<String> = (1..=3).map(|i| format!("look{i}@example.com")).collect();
        for (i, email) in emails.iter().enumerate() {
            add_contact(&ws, email, &format!("070-000 00 1{i}"));
        }
        add_receipt(
            &ws,
            &receipt(
                "LK-1",
                json!({"matchKeyType": "contactId", "matchKey": known}),
            ),
        );
        fake.inject(
            Fault::on("GET", LOOKUP, fault.clone()).times(if code == 75 { 1000 } else { 1 }),
        );
        let out = sync(&ws, &fake, &["--json", "push-local"]);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{fault:?}: {}",
            stderr_of(&out)
        );
        let sent = fake.requests_per_endpoint();
        assert_eq!(
            sent.get("GET /contacts/id"),
            Some(&lookups),
            "{fault:?}: {sent:?}"
        );
        assert_eq!(
            sent.get("POST /contacts/bulk"),
            None,
            "{fault:?}: nothing created unchecked"
        );
        let delivered = usize::from(code == 75);
        assert_eq!(fake.receipts().len(), delivered, "{fault:?}: {sent:?}");
        fake.clear_faults();
        push_until_done(&ws, &fake, 2);
        for email in &emails {
            assert_eq!(fake.creates_for("email", email), 1, "{fault:?}: {email}");
        }
        assert_eq!(fake.receipt_post_count("LK-1"), 1, "{fault:?}");
    }
}

/// `bulk_poll_timeout = "0s"` never waits for a batch, but each run still polls the batches
/// earlier runs left open, once, at its start: runs from cron get a processing batch done.
/// And a deadline far off is not what ends such a run: it reports no deadline.
#[test]
fn with_no_poll_wait_each_run_polls_open_batches_once_and_no_deadline_is_blamed() {
    let fake = lenient_fake();
    let local = format!(
        "{}lookup_before_create = false\n",
        FAST_PUSH.replace("bulk_poll_timeout = \"5s\"", "bulk_poll_timeout = \"0s\"")
    );
    let engage = format!("{FAKE_ENGAGE_WAITS}max_retries = 3\n");
    let ws = Workspace::pointed_at(&fake, &engage, &local);
    let emails = till_day(&ws);
    let mut runs = Vec::new();
    for _ in 0..5 {
        let out = sync(&ws, &fake, &["--json", "push-local", "--deadline", "10m"]);
        let done = out.status.success();
        assert!(done || out.status.code() == Some(75), "{}", stderr_of(&out));
        runs.push(json_of(&out));
        if done {
            break;
        }
    }
    assert!(
        runs.last()
            .is_some_and(|r| r["stopped"].is_null() && r["contacts_left"] == 0),
        "{runs:#?}"
    );
    for r in &runs {
        let stopped = r["stopped"].as_str().unwrap_or_default();
        assert!(!stopped.contains("deadline"), "{r}");
    }
    // Run 1 sends without polling, run 2 polls once ("Processing"), run 3 once (done).
    let polls: Vec<u64> = runs
        .iter()
        .map(|r| r["requests"]["status_polls"].as_u64().expect("polls"))
        .collect();
    assert_eq!(polls[..3], [0, 1, 1], "{runs:#?}");
    assert_exactly_once(&ws, &fake, &emails, 5, &[]);
}

/// A refused key (401) to a status poll ends the run at once (exit 77, no further poll);
/// the batch stays open, and the next run polls it and records its outcome.
#[test]
fn a_refused_key_to_a_status_poll_ends_the_run() {
    let fake = lenient_fake();
    let ws = workspace_for(&fake, "lookup_before_create = false\n");
    let emails = till_day(&ws);
    fake.inject(Fault::on("GET", STATUS, FaultKind::Status(401)));
    let out = sync(&ws, &fake, &["--json", "push-local"]);
    assert_eq!(out.status.code(), Some(77), "{}", stderr_of(&out));
    let sent = fake.requests_per_endpoint();
    assert_eq!(sent.get("GET /contacts/bulk/status"), Some(&1), "{sent:?}");
    assert_eq!(
        ws.count("SELECT count(*) FROM outbox_batch WHERE state = 'sent'"),
        1
    );
    push_until_done(&ws, &fake, 2);
    assert_exactly_once(&ws, &fake, &emails, 5, &[]);
}
