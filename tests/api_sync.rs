//! `full` from the API and `changes`, driving the real binary against the fake Engage over
//! loopback HTTP: convergence, window splitting, every fault kind, auth, resume after a stop.

use crate::common;

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use common::*;
use fake_engage::{FakeConfig, FakeEngage, Fault, FaultKind, Matcher, RetryAfter};
use serde_json::json;

/// A workspace whose config points at `fake`, with test-sized retry waits.
fn workspace_for(fake: &FakeEngage, extra: &str) -> Workspace {
    let ws = Workspace::new();
    let mut config = format!(
        "[engage]\nbase_url = \"{}\"\nretry_base = \"10ms\"\nretry_cap = \"200ms\"\n\
         request_timeout = \"2s\"\nconnect_timeout = \"1s\"\n{extra}",
        fake.base_url()
    );
    if !extra.contains("rate_limit") {
        config.push_str("rate_limit = 200\n");
    }
    std::fs::write(ws.path().join("engage-sync.toml"), config).expect("config");
    ws
}

fn engage(ws: &Workspace, fake: &FakeEngage, args: &[&str]) -> std::process::Output {
    ws.engage_cmd(fake).args(args).output().expect("runs")
}

/// A fake with `n` contacts created a minute apart over the last days (the client splits a
/// changes window down to one second, so the ids must be spread in time).
fn seeded(n: usize) -> FakeEngage {
    let fake = FakeEngage::start(FakeConfig::default());
    let start = Utc::now() - TimeDelta::minutes(n as i64 + 60);
    fake.seed_contacts_spaced(n, start, Duration::from_secs(60));
    fake
}

/// (contact id, e-mail) of every contact in the replica.
fn replica_keys(ws: &Workspace) -> Vec<(String, Option<String>)> {
    ws.contacts()
        .into_iter()
        .map(|c| (c[0].clone().expect("id"), c[3].clone()))
        .collect()
}

/// The same for the fake's live contacts, normalised as the replica stores them.
fn fake_keys(fake: &FakeEngage) -> Vec<(String, Option<String>)> {
    let mut keys: Vec<_> = fake
        .contacts()
        .into_iter()
        .map(|(id, attrs)| {
            let email = attrs["email"].as_str().map(|e| e.trim().to_lowercase());
            (id.to_lowercase(), email)
        })
        .collect();
    keys.sort();
    keys
}

#[test]
fn full_from_the_api_equals_the_fake_and_changes_converge() {
    let fake = seeded(120);
    // A contact whose personal data no other contact shares, deleted below.
    let gone_data = [
        "Gonelia",
        "Vanishson",
        "gone.person@example.com",
        "+46701112233",
    ];
    let gone = fake.add_contact(json!({
        "firstName": gone_data[0], "lastName": gone_data[1],
        "email": gone_data[2], "mobilePhone": gone_data[3],
    }));
    let ws = workspace_for(&fake, "");
    let out = engage(&ws, &fake, &["full", "--json"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(replica_keys(&ws), fake_keys(&fake));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let engage_count = fake.contact_ids().len() as u64;
    assert_eq!(engage_count, 121);
    assert_eq!(summary["source"], "api");
    assert_eq!(
        summary["members"], engage_count,
        "every contact fetched once"
    );
    assert_eq!(summary["contacts"], engage_count);
    assert_eq!(
        sqlite_bytes_holding(&ws.db(), &gone_data),
        gone_data,
        "full mode stored the contact's data (the scan below can see it)"
    );
    assert!(std::fs::symlink_metadata(ws.db())
        .expect("db")
        .file_type()
        .is_symlink());

    // Changes on the Engage side: one created, one updated (new e-mail, a phone number that
    // is not one), one deleted.
    let created = fake.add_contact(json!({"email": "new.person@example.com", "firstName": "Ny"}));
    let changed = fake.contact_ids()[0].clone();
    assert!(fake.update_contact(
        &changed,
        json!({"email": "changed@example.com", "mobilePhone": "call the shop"})
    ));
    assert!(fake.delete_contact(&gone));
    let before = replica_keys(&ws);
    let out = engage(&ws, &fake, &["changes", "--json"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["cursor_advanced"], true);
    assert_eq!(replica_keys(&ws), fake_keys(&fake));
    // The report counts what the replica shows: one contact more, one gone, the changed one
    // (and any other in the overlap window) rewritten; nothing failed.
    let after = replica_keys(&ws);
    let ids = |keys: &[(String, Option<String>)]| -> std::collections::BTreeSet<String> {
        keys.iter().map(|(id, _)| id.clone()).collect()
    };
    let (ids_before, ids_after) = (ids(&before), ids(&after));
    let count = |key: &str| {
        summary[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key}: {summary}"))
    };
    assert_eq!(
        count("inserted"),
        ids_after.difference(&ids_before).count() as u64
    );
    assert_eq!(count("inserted"), 1);
    assert_eq!(
        count("deleted"),
        ids_before.difference(&ids_after).count() as u64
    );
    assert_eq!(count("deleted"), 1);
    assert!(count("updated") >= 1, "the changed contact: {summary}");
    assert_eq!(count("failed"), 0);
    assert_eq!(
        count("phones_as_sent"),
        1,
        "the changed contact's phone: {summary}"
    );
    assert!(
        count("fetched") >= count("inserted") + count("updated"),
        "every written contact was fetched: {summary}"
    );
    assert!(replica_keys(&ws).iter().any(|(id, _)| *id == created));
    // The tombstone is the deleted contact's id, and none of its data is left in the file.
    let tombstone: String = ws
        .replica_conn()
        .query_row("SELECT contact_id FROM tombstone", [], |r| r.get(0))
        .expect("one tombstone");
    assert_eq!(tombstone, gone.to_lowercase());
    let left = sqlite_bytes_holding(&ws.db(), &gone_data);
    assert!(
        left.is_empty(),
        "deleted contact's data in the replica: {left:?}"
    );
    assert_eq!(
        sqlite_bytes_holding(&ws.db(), &["changed@example.com"]),
        ["changed@example.com"]
    );

    // A second pull finds only the overlap window again and changes nothing.
    let before = ws.contacts();
    let out = engage(&ws, &fake, &["changes"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(ws.contacts().len(), before.len());
}

#[test]
fn a_window_over_the_cap_is_split() {
    let fake = seeded(90);
    fake.set_changes_cap(25);
    let ws = workspace_for(&fake, "");
    let out = engage(&ws, &fake, &["full"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(replica_keys(&ws), fake_keys(&fake));
    let too_many = fake
        .requests()
        .iter()
        .filter(|r| r.path.contains("/contacts/changes") && r.status == Some(400))
        .count();
    assert!(too_many > 0, "the cap was hit and the window split");
}

#[test]
fn every_fault_kind_ends_with_the_same_replica() {
    let fake = seeded(60);
    let get = Matcher::prefix("/api/v3/contacts/");
    let kinds = vec![
        FaultKind::Status429 {
            retry_after: Some(RetryAfter::Seconds(0)),
        },
        FaultKind::Status429 { retry_after: None },
        FaultKind::Status(500),
        FaultKind::Status(502),
        FaultKind::Status(503),
        FaultKind::Delay(Duration::from_millis(2500)),
        FaultKind::DropBeforeResponse,
        FaultKind::TruncatedBody,
    ];
    for kind in kinds {
        fake.inject(Fault::new(kind).matching(get.clone()).times(3));
    }
    // Faults hit the next matching requests, the changes feed first: enough retries for all.
    let ws = workspace_for(&fake, "max_retries = 30\n");
    let out = engage(&ws, &fake, &["full"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(fake.pending_faults().is_empty(), "every fault was hit");
    assert_eq!(replica_keys(&ws), fake_keys(&fake));
}

#[test]
fn exhausted_retries_fail_clearly_and_leave_the_cursor() {
    let fake = seeded(20);
    let ws = workspace_for(&fake, "max_retries = 2\n");
    assert!(engage(&ws, &fake, &["full"]).status.success());
    let cursor_before: String = ws
        .conn()
        .query_row(
            "SELECT position FROM sync_cursor WHERE name = 'changes'",
            [],
            |r| r.get(0),
        )
        .expect("cursor");
    let id = fake.contact_ids()[0].clone();
    assert!(fake.update_contact(&id, json!({"firstName": "Changed"})));
    fake.inject(
        Fault::new(FaultKind::Status(503))
            .matching(Matcher::prefix(&format!("/api/v3/contacts/{id}")))
            .times(100),
    );
    let out = engage(&ws, &fake, &["changes"]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("cursor stays"),
        "{}",
        stderr_of(&out)
    );
    assert!(
        stderr_of(&out).contains("1 contact(s) could not be fetched"),
        "the one contact that failed is counted: {}",
        stderr_of(&out)
    );
    let cursor_after: String = ws
        .conn()
        .query_row(
            "SELECT position FROM sync_cursor WHERE name = 'changes'",
            [],
            |r| r.get(0),
        )
        .expect("cursor");
    assert_eq!(cursor_before, cursor_after);
    fake.clear_faults();
    assert!(engage(&ws, &fake, &["changes"]).status.success());
    let first_names: Vec<_> = ws
        .contacts()
        .into_iter()
        .filter_map(|c| c[8].clone())
        .collect();
    assert!(
        first_names.iter().any(|n| n == "Changed"),
        "the next run caught up"
    );
}

#[test]
fn a_wrong_or_missing_key_is_refused_without_printing_it() {
    let fake = seeded(5);
    let ws = workspace_for(&fake, "");
    let out = ws
        .cmd()
        .env("ENGAGE_API_KEY", "very-secret-wrong-key")
        .args(["full"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(77), "{}", stderr_of(&out));
    assert!(!stderr_of(&out).contains("very-secret-wrong-key"));
    assert!(!stdout_of(&out).contains("very-secret-wrong-key"));
    assert!(
        stderr_of(&out).contains("ENGAGE_API_KEY"),
        "{}",
        stderr_of(&out)
    );
    let out = ws
        .cmd()
        .env_remove("ENGAGE_API_KEY")
        .args(["changes", "--since", "2026-01-01"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    // The current replica was never replaced.
    assert!(!ws.db().exists() || ws.contacts().is_empty());
}

#[test]
fn a_stopped_full_build_resumes_and_the_old_replica_stays_in_service() {
    // More contacts than one page of fetched contacts (500): the first page's commit always
    // leaves some to fetch, whatever the machine's speed.
    const N: i64 = 600;
    let fake = seeded(N as usize);
    let ws = workspace_for(&fake, "max_concurrency = 4\n");
    // An old replica with one contact, read while the build runs.
    ws.write_export(
        "20200101000000_0_c.xml",
        &export(&[member(1, "old")], &[], &[]),
    );
    assert!(ws
        .cmd()
        .args(["delta", "inbox"])
        .output()
        .expect("runs")
        .status
        .success());
    // The build stops itself right after its first page is committed (at 500 contacts or one
    // second after the first arrived, well inside the deadline) and is held there until its
    // deadline has passed (it started before the test saw it stopped), so it ends at the
    // deadline with part of the build done: no guess about how much gets done in how long.
    let deadline = Duration::from_secs(3);
    let mut job = ws.std_cmd();
    job.env("ENGAGE_API_KEY", fake.api_key())
        .env_remove("ENGAGE_BASE_URL")
        .args(["full", "--deadline", "3s"]);
    let frozen = Frozen::start(job, "fetch.page_committed");
    std::thread::sleep(deadline + Duration::from_millis(100));
    let out = frozen.go_on();
    assert_eq!(out.status.code(), Some(75), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("resume"), "{}", stderr_of(&out));
    assert_eq!(
        ws.contacts().len(),
        1,
        "the old replica is still the one in service"
    );
    let pending: i64 = rusqlite::Connection::open(ws.path().join("replica.db.d/building.db"))
        .expect("build")
        .query_row("SELECT count(*) FROM full_pending", [], |r| r.get(0))
        .expect("pending");
    assert!(
        pending > 0 && pending < N,
        "part of the build was done: {pending} of {N} left"
    );

    let reader = ws.conn();
    let out = engage(&ws, &fake, &["full", "--json"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["resumed"], true);
    assert!(
        summary["members"].as_u64().expect("members") < N as u64,
        "only the rest was fetched"
    );
    // The reader of the old replica still reads the old data, undisturbed.
    let old: i64 = reader
        .query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))
        .expect("old");
    assert_eq!(old, 1);
    // New readers see the new replica: Engage's contacts. The old replica's contact came from
    // a 2020 export and Engage no longer has it; only changes newer than the build's snapshot
    // are merged over, so it is gone.
    assert_eq!(replica_keys(&ws), fake_keys(&fake));
    assert_eq!(
        ws.count("SELECT count(*) FROM applied_file"),
        1,
        "the ledger was carried over"
    );
}

#[test]
fn a_full_build_killed_mid_way_resumes_to_the_same_replica() {
    // More contacts than one page of fetched contacts (500), so the first page's commit
    // leaves some to fetch; the process kills itself right after that commit.
    const N: i64 = 600;
    let fake = seeded(N as usize);
    let ws = workspace_for(&fake, "max_concurrency = 4\n");
    let out = ws
        .cmd()
        .env("ENGAGE_API_KEY", fake.api_key())
        .env("ENGAGE_SYNC_FAILPOINT", "fetch.page_committed")
        .args(["-q", "full"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), None, "{}", stderr_of(&out));
    assert!(!ws.db().exists(), "nothing was swapped in");
    let pending: i64 = rusqlite::Connection::open(ws.path().join("replica.db.d/building.db"))
        .expect("build")
        .query_row("SELECT count(*) FROM full_pending", [], |r| r.get(0))
        .expect("pending");
    assert!(pending > 0 && pending < N, "{pending} of {N} left");
    let out = engage(&ws, &fake, &["full", "--json"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["resumed"], true);
    assert_eq!(replica_keys(&ws), fake_keys(&fake));
}

#[test]
fn api_runs_log_no_personal_data() {
    let fake = seeded(30);
    fake.inject(
        Fault::new(FaultKind::Status(503))
            .matching(Matcher::prefix("/api/v3/contacts/"))
            .times(2),
    );
    let ws = workspace_for(&fake, "");
    let full = engage(&ws, &fake, &["-vv", "full", "--json"]);
    assert!(full.status.success(), "{}", stderr_of(&full));
    let id = fake.contact_ids()[0].clone();
    assert!(fake.update_contact(&id, json!({"email": "changed.secret@example.com"})));
    let changes = engage(&ws, &fake, &["-vv", "changes", "--json"]);
    assert!(changes.status.success(), "{}", stderr_of(&changes));
    let dry = engage(&ws, &fake, &["-vv", "changes", "--dry-run"]);
    assert!(dry.status.success());
    let mut output = String::new();
    for out in [&full, &changes, &dry] {
        output.push_str(&stderr_of(out));
        output.push_str(&stdout_of(out));
    }
    let mut secrets: Vec<String> = fake
        .contacts()
        .into_iter()
        .flat_map(|(_, a)| {
            ["email", "mobilePhone", "socialSecurityNumber"]
                .into_iter()
                .filter_map(|k| a[k].as_str().map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect();
    secrets.push(fake.api_key());
    assert!(secrets.len() > 30);
    for secret in secrets {
        assert!(!output.contains(&secret), "{secret} appeared in the output");
    }
}

/// `changes` never holds the replica's write lock while it waits for Engage: a till write
/// that comes in meanwhile gets in within its busy timeout (here 400 ms), however slow Engage
/// answers (here 1.5 s a request).
#[test]
fn a_slow_engage_does_not_hold_till_writes_off() {
    let fake = seeded(20);
    let ws = workspace_for(&fake, "");
    let out = engage(&ws, &fake, &["full"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let config = ws.path().join("engage-sync.toml");
    let engage_part = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, format!("busy_timeout = \"400ms\"\n{engage_part}")).expect("config");
    for id in fake.contact_ids().iter().take(5) {
        assert!(fake.update_contact(id, json!({"firstName": "Ändrad"})));
    }
    fake.set_latency(
        Matcher::method("GET", "/api/v3/contacts/"),
        Duration::from_millis(1500),
    );

    let mut changes = ws
        .std_cmd()
        .env("ENGAGE_API_KEY", fake.api_key())
        .env_remove("ENGAGE_BASE_URL")
        .arg("changes")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn changes");
    let mut tries = 0;
    while changes.try_wait().expect("poll changes").is_none() {
        tries += 1;
        let receipt = receipt(
            &format!("r-{tries}"),
            json!({"matchKeyType": "memberNumber", "matchKey": "1000"}),
        );
        let out = ws
            .cmd()
            .args(["receipt", "add", "-"])
            .write_stdin(receipt.to_string())
            .output()
            .expect("receipt add runs");
        assert!(
            out.status.success(),
            "till write {tries} failed while `changes` waited for Engage: {}",
            stderr_of(&out)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = changes.wait_with_output().expect("changes");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(tries >= 10, "only {tries} till writes ran during `changes`");
    assert_eq!(ws.count("SELECT count(*) FROM receipt_outbox"), tries);
    assert_eq!(replica_keys(&ws), fake_keys(&fake));
    let renamed = ws.count("SELECT count(*) FROM contacts WHERE first_name = 'Ändrad'");
    assert_eq!(renamed, 5);
}

/// Keys mode on the API path: `full` and `changes` keep the keys and the contact type of what
/// they fetch, never a name or another attribute, in any byte of the database files.
#[test]
fn keys_mode_keeps_no_names_of_contacts_pulled_from_the_api() {
    let fake = seeded(5);
    let first = fake.add_contact(json!({"email": "pulled@example.com",
        "firstName": "Xenophilius", "lastName": "Quillfeather", "city": "Zanzibarville"}));
    let ws = workspace_for(&fake, "");
    let out = engage(&ws, &fake, &["full", "--mode", "keys", "--json"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(fake.update_contact(
        &first,
        json!({"firstName": "Yggdrasilia", "email": "pulled2@example.com"})
    ));
    let later = fake.add_contact(json!({"email": "later@example.com",
        "firstName": "Wolfhardt", "lastName": "Vonderschmitt"}));
    let out = engage(&ws, &fake, &["changes", "--json"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(replica_keys(&ws), fake_keys(&fake));
    for row in ws.contacts() {
        assert_eq!(
            (&row[8], &row[9], &row[10]),
            (&None, &None, &None),
            "names and attributes: {row:?}"
        );
    }
    assert!(ws
        .contacts()
        .iter()
        .any(|r| r[0].as_deref() == Some(&later)));
    for name in [
        "Xenophilius",
        "Quillfeather",
        "Zanzibarville",
        "Yggdrasilia",
        "Wolfhardt",
        "Vonderschmitt",
    ] {
        assert_eq!(holding(&ws, name), Vec::<String>::new(), "{name}");
    }
}

#[test]
fn changes_keep_replica_data_newer_than_what_they_fetch() {
    let fake = seeded(5);
    let ws = workspace_for(&fake, "");
    assert!(engage(&ws, &fake, &["full"]).status.success());
    let id = fake.contact_ids()[0].clone();
    // An export dated far ahead (an Engage clock or time zone set wrong): by the version rule
    // its data is newer than anything fetched today.
    let future = member(1, "Future").replace(&guid(1), &id);
    ws.write_export(
        "20991231000000_0_c.xml",
        &export(&[], std::slice::from_ref(&future), &[]),
    );
    let out = ws.cmd().args(["delta", "inbox"]).output().expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(fake.update_contact(&id, json!({"firstName": "Present"})));
    let out = engage(&ws, &fake, &["changes", "--json"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["updated_ids"], 1, "{summary}");
    assert_eq!(
        summary["stale"], 1,
        "the fetched contact is older: {summary}"
    );
    assert_eq!(summary["updated"], 0, "{summary}");
    let first_name = ws
        .contacts()
        .into_iter()
        .find(|c| c[0].as_deref() == Some(id.to_lowercase().as_str()))
        .and_then(|c| c[8].clone());
    assert_eq!(
        first_name.as_deref(),
        Some("ÅsaFuture"),
        "the newer data stays"
    );
}
