//! Issue 17's acceptance test: unique personal values planted in every place engage-sync lets
//! data rest (replica, till store, WAL, archive, quarantine, an abandoned `full` build, a
//! rejected outbox item, the inbox the SFTP fetch stages files in), aged, purged by a purge run
//! with no flags and no folder config, then looked for in every byte of every file under the
//! data directory.

use crate::common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::*;
use fake_engage::{FakeConfig, FakeEngage, Fault, FaultKind};

/// One unique value per place.
const IN_REPLICA: &str = "Replicandra";
const IN_ARCHIVE: &str = "Archivaldo";
const IN_QUARANTINE: &str = "Quarantinus";
const IN_BUILD: &str = "Buildebrand";
const IN_TILL_RECEIPT: &str = "Tillamena";
const IN_REJECTED: &str = "rejected.person@example.com";
const IN_PARTIAL_DOWNLOAD: &str = "Partialwyn";
const IN_INBOX: &str = "Inboxerella";
/// Live data that must stay.
const KEEPER: &str = "Keeperina";

fn age_file(path: &Path, days: u64) {
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    file.set_modified(SystemTime::now() - Duration::from_secs(days * 86_400))
        .expect("set mtime");
}

fn ok(out: std::process::Output) -> std::process::Output {
    assert!(out.status.success(), "{}", stderr_of(&out));
    out
}

fn person(n: u32, name: &str) -> String {
    format!(
        "<member><contactId>{}</contactId><firstName>{name}</firstName>\
         <email>{}@example.com</email></member>",
        guid(n),
        name.to_lowercase()
    )
}

/// Where each value is before the purge (so the final scan is known to look at real data).
fn where_is(ws: &Workspace, needle: &str) -> Vec<String> {
    holding(ws, needle)
}

#[test]
fn personal_data_planted_everywhere_is_gone_after_purge_byte_for_byte() {
    let fake = FakeEngage::start(FakeConfig::default());
    let ws = Workspace::new();
    std::fs::write(
        ws.path().join("engage-sync.toml"),
        format!(
            "[engage]\nbase_url = \"{}\"\nretry_base = \"10ms\"\nretry_cap = \"50ms\"\n\
             max_retries = 1\n[local]\nstore_external_id = \"0600\"\n\
             bulk_poll_interval = \"10ms\"\nbulk_poll_timeout = \"5s\"\n",
            fake.base_url()
        ),
    )
    .expect("config");

    // Replica + archive: imported from the inbox with --archive, then deleted in Engage.
    ws.write_export(
        "20260101100000_0_c.xml",
        &export(
            &[
                person(1, IN_REPLICA),
                person(2, KEEPER),
                person(3, IN_ARCHIVE),
            ],
            &[],
            &[],
        ),
    );
    ok(ws
        .cmd()
        .args(["delta", "--archive", "arch"])
        .output()
        .expect("runs"));
    ws.write_export(
        "20260102100000_0_c.xml",
        &export(&[], &[], &[deleted(1), deleted(3)]),
    );
    ok(ws
        .cmd()
        .args(["delta", "--archive", "arch"])
        .output()
        .expect("runs"));

    // Quarantine: a malformed file, moved to a folder given as a flag only.
    ws.write_export(
        "20260103100000_0_c.xml",
        &format!("<contacts xmlns=\"{NS}\"><new>{}", person(4, IN_QUARANTINE)),
    );
    let out = ws
        .cmd()
        .args(["delta", "--quarantine", "quar"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(65), "{}", stderr_of(&out));

    // Inbox: an applied file left there (no archive this time; the contact is deleted later by
    // a file given by path, which stays where it is, outside the data directory), and an
    // unfinished SFTP download.
    ws.write_export(
        "20260104100000_0_c.xml",
        &export(&[person(7, IN_INBOX)], &[], &[]),
    );
    ok(ws.cmd().arg("delta").output().expect("runs"));
    let elsewhere = tempfile::tempdir().expect("elsewhere");
    let delete_7 = elsewhere.path().join("20260104200000_0_c.xml");
    std::fs::write(&delete_7, export(&[], &[], &[deleted(7)])).expect("write");
    ok(ws.cmd().arg("delta").arg(&delete_7).output().expect("runs"));
    std::fs::write(
        ws.inbox().join(".20260105100000_0_c.xml.part"),
        format!("<contacts><new>{}", person(5, IN_PARTIAL_DOWNLOAD)),
    )
    .expect("part");

    // An abandoned build: `full` killed after building.
    let set = tempfile::tempdir().expect("set");
    std::fs::write(
        set.path().join("20260106100000_0_full.xml"),
        export(&[person(2, KEEPER), person(6, IN_BUILD)], &[], &[]),
    )
    .expect("set file");
    let out = ws
        .cmd()
        .env("ENGAGE_SYNC_FAILPOINT", "full.built")
        .args(["full", "--from-xml"])
        .arg(set.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), None, "killed: {}", stderr_of(&out));

    // Till store: a receipt delivered; a contact Engage rejected.
    let mut r = receipt(
        "R-scope",
        serde_json::json!({"matchKeyType": "contactId", "matchKey": guid(2)}),
    );
    r["items"][0]["articleName"] = IN_TILL_RECEIPT.into();
    ok(ws
        .cmd()
        .args(["receipt", "add", "-"])
        .write_stdin(r.to_string())
        .output()
        .expect("runs"));
    ok(ws
        .cmd()
        .args([
            "contact",
            "add",
            "--email",
            IN_REJECTED,
            "--first-name",
            "Rejecta",
        ])
        .output()
        .expect("runs"));
    fake.add_contact(fake_engage::attrs([("email", "keeperina@example.com")]));
    fake.inject(Fault::on("POST", "/api/v3/contacts", FaultKind::EchoRequest(400)).times(10));
    let _ = ws
        .cmd()
        .env("ENGAGE_API_KEY", fake.api_key())
        .arg("push-local")
        .output()
        .expect("runs");
    let till = ws.till_conn();
    let rejected: i64 = till
        .query_row(
            "SELECT count(*) FROM contact_outbox WHERE state = 'rejected'",
            [],
            |r| r.get(0),
        )
        .expect("rejected");
    assert_eq!(rejected, 1, "the contact was rejected");
    drop(till);

    // Every value is somewhere now, and the live one too.
    for needle in [
        IN_REPLICA,
        IN_ARCHIVE,
        IN_QUARANTINE,
        IN_BUILD,
        IN_TILL_RECEIPT,
        IN_REJECTED,
        IN_PARTIAL_DOWNLOAD,
        IN_INBOX,
        KEEPER,
    ] {
        assert!(!where_is(&ws, needle).is_empty(), "{needle} was planted");
    }

    // Age everything by 40 days: files by mtime, rows by their timestamps.
    for f in files_under(ws.path()) {
        age_file(&f, 40);
    }
    let past = (chrono::Utc::now() - chrono::Duration::days(40))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let conn = ws.replica_conn();
    conn.execute("UPDATE run SET started_at = ?1, finished_at = ?1", [&past])
        .expect("runs");
    conn.execute("UPDATE quarantined_file SET quarantined_at = ?1", [&past])
        .expect("q");
    drop(conn);
    let till = ws.till_conn();
    till.execute_batch("PRAGMA secure_delete = ON")
        .expect("secure_delete");
    till.execute(
        "UPDATE receipt_outbox SET state = 'delivered', finished_at = ?1, updated_at = ?1",
        [&past],
    )
    .expect("deliver");
    till.execute(
        "UPDATE contact_outbox SET finished_at = ?1, updated_at = ?1",
        [&past],
    )
    .expect("age");
    till.execute("UPDATE run SET started_at = ?1, finished_at = ?1", [&past])
        .expect("runs");
    drop(till);

    // Purge: no flags, no folder config.
    let out = ok(ws
        .cmd()
        .args(["purge", "--older-than", "30d", "--json"])
        .output()
        .expect("runs"));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let kinds: Vec<&str> = summary["locations"]
        .as_array()
        .expect("locations")
        .iter()
        .filter_map(|l| l["kind"].as_str())
        .collect();
    for kind in [
        "replica",
        "replica_wal",
        "till_store",
        "till_store_wal",
        "archive",
        "quarantine",
        "inbox",
        "abandoned_build",
    ] {
        assert!(kinds.contains(&kind), "{kind} not in the scope: {kinds:?}");
    }

    // Every byte of every file under the data directory.
    let files = files_under(ws.path());
    for needle in [
        IN_REPLICA,
        IN_ARCHIVE,
        IN_QUARANTINE,
        IN_BUILD,
        IN_TILL_RECEIPT,
        IN_REJECTED,
        IN_PARTIAL_DOWNLOAD,
        IN_INBOX,
    ] {
        let left = where_is(&ws, needle);
        assert!(
            left.is_empty(),
            "{needle} survived the purge in {left:?} (of {files:?})"
        );
    }
    assert!(!where_is(&ws, KEEPER).is_empty(), "live data stays");
    assert_eq!(ws.contacts().len(), 1, "the live contact stays readable");
}
