//! The till commands, offline: `contact add`, `contact update`, `receipt add`, what the replica
//! shows at once and what is queued; plus the outbox part of `status`. The real binary against
//! temp folders; Engage is never contacted here (see tests/push.rs for that).

use crate::common;

use common::*;
use serde_json::{json, Value};

/// A workspace whose config sets the store (so local keys are `L0600-…`).
fn till() -> Workspace {
    let ws = Workspace::new();
    std::fs::write(
        ws.path().join("engage-sync.toml"),
        "[local]\nstore_external_id = \"0600\"\n",
    )
    .expect("config");
    ws.init();
    ws
}

fn run(ws: &Workspace, args: &[&str]) -> std::process::Output {
    ws.cmd().args(args).output().expect("runs")
}

fn run_stdin(ws: &Workspace, args: &[&str], stdin: &str) -> std::process::Output {
    ws.cmd()
        .args(args)
        .write_stdin(stdin)
        .output()
        .expect("runs")
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout_of(out)))
}

fn outbox_rows(ws: &Workspace) -> Vec<(String, Option<String>, String, Value)> {
    let conn = ws.conn();
    let mut stmt = conn
        .prepare("SELECT op, local_key, state, fields FROM contact_outbox ORDER BY id")
        .expect("prepare");
    let rows = stmt
        .query_map([], |r| {
            let fields: String = r.get(3)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                serde_json::from_str(&fields).expect("json"),
            ))
        })
        .expect("query");
    rows.map(|r| r.expect("row")).collect()
}

#[test]
fn an_added_contact_is_found_by_every_key_at_once_and_queued() {
    let ws = till();
    let out = run(
        &ws,
        &[
            "--json",
            "contact",
            "add",
            "--email",
            " Anna@Example.com",
            "--mobile",
            "070-123 45 67",
            "--first-name",
            "Anna",
            "--field",
            "city=Umeå",
        ],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let doc = json_of(&out);
    assert_eq!(doc["contacts"][0]["local_key"], "L0600-000001");
    assert!(
        !stdout_of(&out).contains("anna@"),
        "keys are masked in the output"
    );
    for args in [
        ["--local-key", "L0600-000001"],
        ["--email", "ANNA@example.com"],
        ["--mobile", "+46 70 123 45 67"],
    ] {
        let out = run(&ws, &["--json", "lookup", args[0], args[1]]);
        assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
        let doc = json_of(&out);
        assert_eq!(doc["match_key_type"], "localKey");
        assert_eq!(doc["match_key"], "L0600-000001");
        assert_eq!(doc["contact"]["contact_id"], Value::Null);
    }
    let rows = outbox_rows(&ws);
    assert_eq!(rows.len(), 1);
    let (op, key, state, fields) = &rows[0];
    assert_eq!(
        (op.as_str(), key.as_deref(), state.as_str()),
        ("create", Some("L0600-000001"), "pending")
    );
    assert_eq!(
        fields,
        &json!({"email": "anna@example.com", "mobilePhone": "+46701234567", "firstName": "Anna",
                "city": "Umeå", "contactType": "Member", "createdInStore": "0600"})
    );
}

/// A change at the till to a key another contact holds is refused (exit 65, naming the
/// other contact, nothing queued or changed), whichever kinds the two contacts are: two
/// Engage contacts, a local one taking an Engage contact's key, two local ones.
#[test]
fn a_change_to_a_key_another_contact_holds_is_refused() {
    let ws = till();
    ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(1, "a"), member(2, "a")], &[], &[]),
    );
    assert!(run(&ws, &["delta", "inbox"]).status.success());
    for email in ["local1@example.com", "local2@example.com"] {
        assert!(run(&ws, &["contact", "add", "--email", email])
            .status
            .success());
    }
    let queued = outbox_rows(&ws);
    let before = ws.contacts();
    for (selector, value, taken, holder) in [
        ("--contact-id", guid(1), "user2@example.com", guid(2)),
        (
            "--local-key",
            "L0600-000001".to_string(),
            "user1@example.com",
            guid(1),
        ),
        (
            "--local-key",
            "L0600-000001".to_string(),
            "local2@example.com",
            "L0600-000002".to_string(),
        ),
    ] {
        let out = run(
            &ws,
            &["contact", "update", selector, &value, "--new-email", taken],
        );
        assert_eq!(
            out.status.code(),
            Some(65),
            "{value} -> {taken}: {}",
            stderr_of(&out)
        );
        assert!(
            stderr_of(&out).contains(&holder),
            "{value} -> {taken}: names {holder}: {}",
            stderr_of(&out)
        );
    }
    assert_eq!(outbox_rows(&ws), queued, "nothing queued");
    assert_eq!(ws.contacts(), before, "nothing changed");
    // A key nobody holds goes through.
    let out = run(
        &ws,
        &[
            "contact",
            "update",
            "--local-key",
            "L0600-000001",
            "--new-email",
            "free@example.com",
        ],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
}

#[test]
fn a_key_already_in_the_replica_is_refused_with_the_existing_contact() {
    let ws = till();
    assert!(run(&ws, &["contact", "add", "--email", "anna@example.com"])
        .status
        .success());
    let out = run(
        &ws,
        &[
            "contact",
            "add",
            "--email",
            "ANNA@example.com",
            "--first-name",
            "A",
        ],
    );
    assert_eq!(out.status.code(), Some(65));
    let err = stderr_of(&out);
    assert!(
        err.contains("L0600-000001") && err.contains("contact update --local-key"),
        "{err}"
    );
    assert!(!err.contains("anna@"), "masked: {err}");
    // An export contact with the same phone number is refused too.
    ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(7, "a")], &[], &[]),
    );
    assert!(run(&ws, &["delta", "inbox"]).status.success());
    let out = run(&ws, &["contact", "add", "--mobile", "070 000 00 07"]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains(&guid(7)), "{}", stderr_of(&out));
    assert_eq!(outbox_rows(&ws).len(), 1);
}

#[test]
fn invalid_contacts_are_refused_naming_the_field_and_a_batch_is_all_or_nothing() {
    let ws = till();
    for (args, field) in [
        (vec!["--email", "anna.example.com"], "email"),
        (vec!["--mobile", "call me"], "mobilePhone"),
        (vec!["--first-name", "NoKey"], "email/mobilePhone"),
        (
            vec!["--email", "a@b.se", "--contact-type", "Vip"],
            "contactType",
        ),
    ] {
        let mut all = vec!["contact", "add"];
        all.extend(args);
        let out = run(&ws, &all);
        assert_eq!(out.status.code(), Some(65), "{all:?}");
        assert!(
            stderr_of(&out).contains(field),
            "{all:?}: {}",
            stderr_of(&out)
        );
    }
    let batch =
        "{\"email\": \"a@example.com\"}\n{\"email\": \"b@example.com\"}\n{\"email\": \"bad\"}\n";
    let out = run_stdin(&ws, &["contact", "add", "--from", "-"], batch);
    assert_eq!(out.status.code(), Some(65));
    assert!(
        stderr_of(&out).contains("contact #3: email"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(
        ws.count("SELECT count(*) FROM contacts"),
        0,
        "nothing of the batch"
    );
    let out = run_stdin(
        &ws,
        &["contact", "add", "--from", "-"],
        "[{\"email\": \"a@example.com\"}, {\"mobilePhone\": \"0701112233\"}]",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        ws.count("SELECT count(*) FROM contacts WHERE local_key IS NOT NULL"),
        2
    );
    let out = run(&ws, &["contact", "add"]);
    assert_eq!(out.status.code(), Some(64), "no fields is a usage error");
}

#[test]
fn local_keys_are_never_reused() {
    let ws = till();
    assert!(run(&ws, &["contact", "add", "--email", "a@example.com"])
        .status
        .success());
    assert!(run(&ws, &["contact", "add", "--email", "b@example.com"])
        .status
        .success());
    // The contacts and their queue items vanish (as after a delivered push and a purge).
    let conn = ws.conn();
    conn.execute_batch("DELETE FROM till_contact; DELETE FROM contact_outbox;")
        .expect("wipe");
    drop(conn);
    let out = run(
        &ws,
        &["--json", "contact", "add", "--email", "c@example.com"],
    );
    assert_eq!(json_of(&out)["contacts"][0]["local_key"], "L0600-000003");
    // A dry run validates and shows the key it would take, but writes nothing.
    let out = run(
        &ws,
        &[
            "--json",
            "contact",
            "add",
            "--email",
            "d@example.com",
            "--dry-run",
        ],
    );
    assert!(out.status.success());
    assert_eq!(json_of(&out)["dry_run"], true);
    assert_eq!(ws.count("SELECT count(*) FROM till_contact"), 1);
    let out = run(
        &ws,
        &["--json", "contact", "add", "--email", "d@example.com"],
    );
    assert_eq!(json_of(&out)["contacts"][0]["local_key"], "L0600-000004");
}

#[test]
fn changes_to_a_local_contact_merge_into_its_queued_create() {
    let ws = till();
    assert!(run(
        &ws,
        &[
            "contact",
            "add",
            "--email",
            "anna@example.com",
            "--first-name",
            "Anna"
        ]
    )
    .status
    .success());
    let out = run(
        &ws,
        &[
            "contact",
            "update",
            "--local-key",
            "L0600-000001",
            "--new-mobile",
            "0701234567",
            "--first-name",
            "Anna",
        ],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains("changed mobilePhone; merged into its queued create"),
        "{}",
        stdout_of(&out)
    );
    let rows = outbox_rows(&ws);
    assert_eq!(rows.len(), 1, "still one item");
    assert_eq!(rows[0].3["mobilePhone"], "+46701234567");
    let out = run(&ws, &["--json", "lookup", "--mobile", "070-123 45 67"]);
    assert!(out.status.success(), "the replica shows the change at once");
    // Clearing the only key the create has left is refused.
    let out = run_stdin(
        &ws,
        &[
            "contact",
            "update",
            "--local-key",
            "L0600-000001",
            "--from",
            "-",
        ],
        "{\"email\": null, \"mobilePhone\": \"\"}",
    );
    assert_eq!(out.status.code(), Some(65), "{}", stderr_of(&out));
}

#[test]
fn an_update_of_an_engage_contact_queues_only_the_changed_fields() {
    let ws = till();
    ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(1, "a")], &[], &[]),
    );
    assert!(run(&ws, &["delta", "inbox"]).status.success());
    let id = guid(1);
    // firstName and email as stored: not a change. city differs, street is cleared (was unset).
    let out = run_stdin(
        &ws,
        &["--json", "contact", "update", "--contact-id", &id.to_uppercase(), "--from", "-"],
        "{\"firstName\": \"Åsaa\", \"email\": \"USER1@example.com\", \"city\": \"Luleå\", \"street\": null}",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(json_of(&out)["fields"], json!(["city"]));
    let out = run(
        &ws,
        &[
            "contact",
            "update",
            "--email",
            "user1@example.com",
            "--first-name",
            "Åsa",
        ],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains("merged into its queued update"),
        "{}",
        stdout_of(&out)
    );
    let rows = outbox_rows(&ws);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "update");
    assert_eq!(rows[0].3, json!({"city": "Luleå", "firstName": "Åsa"}));
    let attrs: String = ws
        .conn()
        .query_row(
            "SELECT attributes FROM contacts WHERE contact_id = ?1",
            [&id],
            |r| r.get(0),
        )
        .expect("row");
    let attrs: Value = serde_json::from_str(&attrs).expect("json");
    assert_eq!(attrs["city"], "Luleå");
    assert_eq!(attrs["firstName"], "Åsa");
    // The same values again: nothing to queue.
    let out = run(
        &ws,
        &[
            "contact",
            "update",
            "--contact-id",
            &id,
            "--first-name",
            "Åsa",
        ],
    );
    assert!(
        stdout_of(&out).contains("nothing changed"),
        "{}",
        stdout_of(&out)
    );
    // An older export file cannot roll the till's change back.
    let old = export(&[], &[member(1, "old")], &[]);
    ws.write_export("20251231100000_0_c.xml", &old);
    assert!(run(&ws, &["delta", "inbox"]).status.success());
    let out = run(&ws, &["--json", "lookup", "--contact-id", &id]);
    assert_eq!(json_of(&out)["contact"]["first_name"], "Åsa");
    let out = run(
        &ws,
        &[
            "contact",
            "update",
            "--email",
            "nobody@example.com",
            "--first-name",
            "X",
        ],
    );
    assert_eq!(out.status.code(), Some(65));
    assert!(
        stderr_of(&out).contains("no contact in the replica matches email n***@example.com"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn a_receipt_is_buffered_once_and_its_date_kept_as_given() {
    let ws = till();
    assert!(run(&ws, &["contact", "add", "--email", "anna@example.com"])
        .status
        .success());
    let r1 = receipt(
        "R-1",
        json!({"matchKeyType": "LocalKey", "matchKey": "L0600-000001"}),
    );
    let out = run_stdin(&ws, &["receipt", "add"], &r1.to_string());
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = run_stdin(&ws, &["--json", "receipt", "add", "-"], &r1.to_string());
    assert!(out.status.success());
    assert_eq!(json_of(&out)["already_buffered"], 1);
    let mut changed = r1.clone();
    changed["totalGrossPrice"] = json!(201.0);
    let out = run_stdin(&ws, &["receipt", "add"], &changed.to_string());
    assert_eq!(out.status.code(), Some(65));
    assert!(stderr_of(&out).contains("R-1"), "{}", stderr_of(&out));
    let (body, ref_type): (String, String) = ws
        .conn()
        .query_row("SELECT body, ref_type FROM receipt_outbox", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("one receipt");
    assert_eq!(ref_type, "localKey");
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["createdDate"], "2026-11-25T15:55:54+01:00");
    assert_eq!(ws.count("SELECT count(*) FROM receipt_outbox"), 1);
}

#[test]
fn invalid_receipts_name_the_receipt_and_field_and_nothing_is_buffered() {
    let ws = till();
    let mut no_offset = receipt(
        "R-2",
        json!({"matchKeyType": "contactId", "matchKey": guid(1)}),
    );
    no_offset["createdDate"] = json!("2026-11-25T15:55:54");
    let mut no_sku = receipt(
        "R-3",
        json!({"matchKeyType": "email", "matchKey": "a@example.com"}),
    );
    no_sku["items"][0]
        .as_object_mut()
        .expect("item")
        .remove("sku");
    let unknown_local = receipt(
        "R-4",
        json!({"matchKeyType": "localKey", "matchKey": "L0600-999999"}),
    );
    let bad_key_type = receipt("R-5", json!({"matchKeyType": "shoeSize", "matchKey": "42"}));
    for (r, field) in [
        (&no_offset, "receipt R-2: createdDate"),
        (&no_sku, "receipt R-3: items[0].sku"),
        (&unknown_local, "receipt R-4: contact.matchKey"),
        (&bad_key_type, "receipt R-5: contact.matchKeyType"),
    ] {
        let out = run_stdin(&ws, &["receipt", "add"], &r.to_string());
        assert_eq!(out.status.code(), Some(65), "{field}");
        assert!(
            stderr_of(&out).contains(field),
            "{field}: {}",
            stderr_of(&out)
        );
    }
    let good = receipt(
        "R-6",
        json!({"matchKeyType": "mobilePhone", "matchKey": "070-123 45 67"}),
    );
    let both = format!("{good}\n{no_offset}\n");
    assert_eq!(
        run_stdin(&ws, &["receipt", "add"], &both).status.code(),
        Some(65)
    );
    let out = run_stdin(&ws, &["receipt", "add"], "{\"uniqueReceiptId\": ");
    assert_eq!(out.status.code(), Some(65), "malformed JSON");
    assert!(
        stderr_of(&out).contains("not valid JSON"),
        "{}",
        stderr_of(&out)
    );
    assert!(!ws.db().exists() || ws.count("SELECT count(*) FROM receipt_outbox") == 0);
}

#[test]
fn a_receipt_with_contact_data_registers_the_customer_or_uses_the_known_one() {
    let ws = till();
    ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(1, "a")], &[], &[]),
    );
    assert!(run(&ws, &["delta", "inbox"]).status.success());
    let known = receipt(
        "R-1",
        json!({"email": "User1@Example.com", "firstName": "Åsa"}),
    );
    let new = receipt(
        "R-2",
        json!({"mobilePhone": "0709876543", "firstName": "Bo"}),
    );
    let out = run_stdin(
        &ws,
        &["--json", "receipt", "add"],
        &format!("[{known},{new}]"),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let doc = json_of(&out);
    assert_eq!(
        doc["receipts"][0]["contact"],
        format!("contactId {}", guid(1))
    );
    assert_eq!(doc["receipts"][1]["registered_local_key"], "L0600-000001");
    let out = run(&ws, &["--json", "lookup", "--mobile", "0709876543"]);
    assert_eq!(json_of(&out)["match_key"], "L0600-000001");
    assert_eq!(
        outbox_rows(&ws).len(),
        1,
        "one create queued for the new customer"
    );
}

#[test]
fn status_shows_the_outbox_and_check_fails_on_old_pending_items() {
    let ws = till();
    assert!(run(&ws, &["contact", "add", "--email", "anna@example.com"])
        .status
        .success());
    let r = receipt(
        "R-1",
        json!({"matchKeyType": "localKey", "matchKey": "L0600-000001"}),
    );
    assert!(run_stdin(&ws, &["receipt", "add"], &r.to_string())
        .status
        .success());
    let out = run(&ws, &["--json", "status"]);
    let doc = json_of(&out);
    let depth = doc["outbox"]["depth"].as_array().expect("depth").clone();
    assert_eq!(depth.len(), 2, "{depth:?}");
    assert_eq!(depth[0]["kind"], "contact");
    assert_eq!(depth[0]["state"], "pending");
    assert_eq!(depth[1]["kind"], "receipt");
    let text = stdout_of(&run(&ws, &["status"]));
    assert!(
        text.contains("outbox:       receipt post pending: 1"),
        "{text}"
    );
    ws.conn()
        .execute_batch(
            "UPDATE receipt_outbox SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-3 hours'); \
             UPDATE contact_outbox SET state = 'rejected', reason = 'InvalidEmailAddress: nope', \
             finished_at = created_at;",
        )
        .expect("age");
    ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(1, "a")], &[], &[]),
    );
    assert!(run(&ws, &["delta", "inbox"]).status.success());
    let out = run(&ws, &["status", "--check", "--max-pending-age", "1h"]);
    assert_eq!(out.status.code(), Some(75));
    let line = stdout_of(&out);
    assert!(
        line.contains("outbox: 1 item(s) undelivered, the oldest queued 3h"),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1);
    let out = run(&ws, &["status", "--check", "--max-pending-age", "4h"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout_of(&out));
    let text = stdout_of(&run(&ws, &["status"]));
    assert!(
        text.contains("rejected contact create L0600-000001")
            && text.contains("InvalidEmailAddress"),
        "{text}"
    );
}

#[test]
fn a_full_download_keeps_the_outboxes_and_the_key_sequence() {
    let ws = till();
    assert!(run(&ws, &["contact", "add", "--email", "anna@example.com"])
        .status
        .success());
    let r = receipt(
        "R-1",
        json!({"matchKeyType": "localKey", "matchKey": "L0600-000001"}),
    );
    assert!(run_stdin(&ws, &["receipt", "add"], &r.to_string())
        .status
        .success());
    let outboxes = ["contact_outbox", "receipt_outbox"];
    let before = table_rows(&ws.till_conn(), &outboxes);
    assert_eq!(before.len(), 2, "{before:?}");
    assert!(
        before.iter().all(|row| row.contains("\"pending\"")),
        "{before:?}"
    );
    let full = ws.path().join("full");
    std::fs::create_dir(&full).expect("dir");
    std::fs::write(
        full.join("20260101100000_0_c.xml"),
        export(&[member(1, "a")], &[], &[]),
    )
    .expect("export");
    let out = ws
        .cmd()
        .arg("full")
        .arg("--from-xml")
        .arg(&full)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    // Every outbox row, field by field, is as the till left it.
    assert_eq!(table_rows(&ws.till_conn(), &outboxes), before);
    let out = run(&ws, &["--json", "lookup", "--local-key", "L0600-000001"]);
    assert!(out.status.success(), "the local contact survived the swap");
    // A first load done this way (README: while tills are in service) is not loaded again by
    // a `delta` of the same files: they are in the ledger.
    let out = ws
        .cmd()
        .args(["--json", "delta"])
        .arg(&full)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(json_of(&out)["files_applied"], 0);
    assert_eq!(json_of(&out)["files_already_applied"], 1);
    let out = run(
        &ws,
        &["--json", "contact", "add", "--email", "bo@example.com"],
    );
    assert_eq!(json_of(&out)["contacts"][0]["local_key"], "L0600-000002");
}

/// A till write that finds the till store's write lock held past its busy timeout (only a
/// stuck till write, push-local or purge step could hold it) exits 75, says what happened
/// and what to do, and buffers nothing.
#[test]
fn a_till_write_that_waits_too_long_says_so_and_writes_nothing() {
    let ws = Workspace::new();
    std::fs::write(
        ws.path().join("engage-sync.toml"),
        "busy_timeout = \"200ms\"\n[local]\nstore_external_id = \"0600\"\n",
    )
    .expect("config");
    assert!(run(&ws, &["init"]).status.success());
    let holder = ws.till_conn();
    holder
        .execute_batch("BEGIN IMMEDIATE")
        .expect("the test holds the till store's write lock");
    let body = receipt(
        "busy-1",
        json!({"matchKeyType": "memberNumber", "matchKey": "1"}),
    );
    let out = run_stdin(&ws, &["receipt", "add", "-"], &body.to_string());
    assert_eq!(out.status.code(), Some(75), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("database is locked"), "{err}");
    assert!(err.contains("busy_timeout"), "says what to change: {err}");
    assert!(
        err.contains("Run the command again"),
        "says what to do: {err}"
    );
    holder.execute_batch("ROLLBACK").expect("release");
    assert_eq!(ws.count("SELECT count(*) FROM receipt_outbox"), 0);
    let out = run_stdin(&ws, &["receipt", "add", "-"], &body.to_string());
    assert!(out.status.success(), "{}", stderr_of(&out));
}

/// A change at the till shows even over an export stamped later than the till's clock (the
/// till's version moves past the stored one), and a contact registered at the till carries no
/// contact id in its attributes until Engage gives it one.
#[test]
fn the_tills_version_wins_over_a_future_dated_export_and_local_contacts_have_no_id() {
    let ws = till();
    ws.write_export(
        "20990101000000_0_c.xml",
        &export(&[member(5, "future")], &[], &[]),
    );
    assert!(run(&ws, &["delta", "inbox"]).status.success());
    let out = run(
        &ws,
        &[
            "contact",
            "update",
            "--contact-id",
            &guid(5),
            "--first-name",
            "Present",
        ],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = run(&ws, &["--json", "lookup", "--contact-id", &guid(5)]);
    let doc = json_of(&out);
    assert_eq!(doc["matches"], 1, "{doc}");
    assert_eq!(doc["contact"]["first_name"], "Present", "{doc}");

    let out = run(
        &ws,
        &[
            "contact",
            "add",
            "--email",
            "new@example.com",
            "--first-name",
            "N",
        ],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = run(&ws, &["--json", "lookup", "--email", "new@example.com"]);
    let doc = json_of(&out);
    let attributes = doc["contact"]["attributes"]
        .as_object()
        .expect("attributes");
    assert_eq!(attributes.get("firstName"), Some(&json!("N")), "{doc}");
    assert!(!attributes.contains_key("contactId"), "{doc}");
}
