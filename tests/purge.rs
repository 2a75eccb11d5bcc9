//! `purge`: aged personal data is gone from every file under the data folder, byte for byte;
//! `--dry-run` changes nothing.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::*;

const SECRETS: [&str; 4] = [
    "Zebulon",
    "zebulon.secret@example.com",
    "+46701112233",
    "Xylophone",
];

fn age_file(path: &Path, days: u64) {
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    file.set_modified(SystemTime::now() - Duration::from_secs(days * 86_400))
        .expect("set mtime");
}

fn contains(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Runs `purge --older-than 30d --json`, checks it succeeded, returns its output and summary.
fn purge_30d(ws: &Workspace) -> (std::process::Output, serde_json::Value) {
    let out = ws
        .cmd()
        .args(["purge", "--older-than", "30d", "--json"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    // Pages are reclaimed exactly when there were free pages (none: nothing to vacuum).
    for file in ["compaction", "till_store_compaction"] {
        let c = &summary[file];
        let free = c["free_pages_before"].as_i64().expect("free pages");
        assert_eq!(c["vacuumed"], free > 0, "{file}: {c}");
    }
    (out, summary)
}

/// Asserts that no file under the workspace holds any of `needles`; returns how many files
/// were scanned.
fn assert_in_no_file(ws: &Workspace, needles: &[&str]) -> usize {
    let mut scanned = 0;
    for path in files_under(ws.path()) {
        let bytes = std::fs::read(&path).expect("read");
        for needle in needles {
            assert!(
                !contains(&bytes, needle),
                "{needle} still in {}",
                path.display()
            );
        }
        scanned += 1;
    }
    scanned
}

/// Imports a contact with known personal strings, deletes it, quarantines a file holding
/// another, archives both exports, then ages all of it by 40 days.
fn aged_workspace() -> Workspace {
    let ws = Workspace::new();
    std::fs::write(
        ws.path().join("engage-sync.toml"),
        "archive = \"archive\"\n",
    )
    .expect("cfg");
    let secret = format!(
        "<member><contactId>{}</contactId><firstName>Zebulon</firstName>\
         <email>zebulon.secret@example.com</email><mobilePhone>+46701112233</mobilePhone></member>",
        guid(1)
    );
    let keeper = format!(
        "<member><contactId>{}</contactId><firstName>Keeper</firstName></member>",
        guid(2)
    );
    ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[secret, keeper], &[], &[]),
    );
    assert!(ws
        .cmd()
        .arg("delta")
        .arg("inbox")
        .output()
        .expect("runs")
        .status
        .success());
    ws.write_export("20260102100000_0_c.xml", &export(&[], &[], &[deleted(1)]));
    assert!(ws
        .cmd()
        .arg("delta")
        .arg("inbox")
        .output()
        .expect("runs")
        .status
        .success());
    ws.write_export(
        "20260103100000_0_c.xml",
        &format!("<contacts xmlns=\"{NS}\"><new><member><firstName>Xylophone</firstName>"),
    );
    let out = ws.cmd().arg("delta").arg("inbox").output().expect("runs");
    assert_eq!(out.status.code(), Some(65));
    for dir in ["archive", "quarantine"] {
        for f in files_under(&ws.path().join(dir)) {
            age_file(&f, 40);
        }
    }
    let past = (chrono::Utc::now() - chrono::Duration::days(40))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let conn = ws.conn();
    conn.execute("UPDATE run SET started_at = ?1, finished_at = ?1", [&past])
        .expect("age runs");
    conn.execute("UPDATE quarantined_file SET quarantined_at = ?1", [&past])
        .expect("age quarantine");
    drop(conn);
    ws
}

#[test]
fn purged_personal_data_is_gone_from_every_file() {
    let ws = aged_workspace();
    let bytes_in = |dir: &str| -> u64 {
        files_under(&ws.path().join(dir))
            .iter()
            .map(|f| std::fs::metadata(f).expect("size").len())
            .sum()
    };
    let (archived, quarantined) = (bytes_in("archive"), bytes_in("quarantine"));
    assert!(archived > 0 && quarantined > 0);
    let before = chrono::Utc::now() - chrono::Duration::days(30);
    let (out, summary) = purge_30d(&ws);
    let after = chrono::Utc::now() - chrono::Duration::days(30);
    assert_eq!(summary["older_than"], "30days", "{summary}");
    let cutoff = chrono::DateTime::parse_from_rfc3339(summary["cutoff"].as_str().expect("cutoff"))
        .expect("RFC 3339");
    // Millisecond precision: the cutoff may be up to 1 ms before the moment it was taken.
    assert!(
        before - chrono::Duration::milliseconds(1) <= cutoff && cutoff <= after,
        "{cutoff} not 30 days before the run"
    );
    assert_eq!(summary["archived_files"]["files"], 2);
    assert_eq!(summary["archived_files"]["bytes"], archived, "{summary}");
    assert_eq!(summary["quarantined_files"]["files"], 1);
    assert_eq!(
        summary["quarantined_files"]["bytes"], quarantined,
        "{summary}"
    );
    // Three delta runs: the latest ok and the latest failed one are kept (status needs them).
    assert_eq!(summary["runs"], 1);
    assert_eq!(summary["quarantine_records"], 1);
    assert_eq!(summary["compaction"]["wal_truncated"], true);
    // Nothing to warn about: no reader held a WAL, every recorded folder exists.
    assert!(!stderr_of(&out).contains("WARN"), "{}", stderr_of(&out));
    let all_output = format!("{}{}", stdout_of(&out), stderr_of(&out));
    for secret in SECRETS {
        assert!(!all_output.contains(secret), "purge printed {secret}");
    }
    let scanned = assert_in_no_file(&ws, &SECRETS);
    assert!(scanned >= 2, "scanned the database and lock at least");
    // The scan does see live data: the contact that was not deleted is still there.
    let db = std::fs::read(ws.db()).expect("db");
    assert!(contains(&db, "Keeper"), "live data stays");
    assert_eq!(ws.contacts().len(), 1);
}

#[test]
fn dry_run_changes_nothing_and_young_data_stays() {
    let ws = aged_workspace();
    // SQLite's own -wal and -shm beside a database come and go with its connections.
    let data_files = || {
        let mut files: Vec<_> = files_under(ws.path())
            .into_iter()
            .filter(|p| {
                let name = p.to_string_lossy();
                !name.ends_with("-wal") && !name.ends_with("-shm")
            })
            .collect();
        files.sort();
        files
    };
    let before = data_files();
    let runs_before = ws.count("SELECT count(*) FROM run");
    let out = ws
        .cmd()
        .args(["purge", "--older-than", "30d", "--dry-run"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stdout_of(&out).contains("would purge"));
    assert_eq!(data_files(), before);
    assert_eq!(ws.count("SELECT count(*) FROM run"), runs_before);

    let out = ws
        .cmd()
        .args(["purge", "--older-than", "60d"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert_eq!(
        files_under(&ws.path().join("archive")).len(),
        2,
        "younger than 60 days"
    );
    assert_eq!(ws.count("SELECT count(*) FROM quarantined_file"), 1);
}

#[test]
fn purge_takes_the_writer_lock() {
    let ws = aged_workspace();
    let lock = std::fs::File::create(ws.path().join("replica.db.lock")).expect("lock");
    lock.try_lock().expect("held by the test");
    let out = ws
        .cmd()
        .args(["purge", "--older-than", "30d"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(75));
    let out = ws
        .cmd()
        .args(["purge", "--older-than", "1x"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(64), "bad duration is a usage error");
}

/// A replica with `n` live contacts (a live part, which must stay).
fn replica_with_contacts(ws: &Workspace, n: u32) {
    let members: Vec<String> = (0..n).map(|i| member(i, "keep")).collect();
    ws.write_export("20260101100000_0_c.xml", &export(&members, &[], &[]));
    let out = ws.cmd().args(["delta", "inbox"]).output().expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
}

/// Buffers `n` receipts whose article names start with `marker`, then marks them delivered 40
/// days ago (as a push would, with the writers' secure_delete).
fn delivered_receipts(ws: &Workspace, marker: &str, n: u32) {
    let receipts: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let contact = serde_json::json!({"matchKeyType": "contactId", "matchKey": guid(i)});
            let mut r = receipt(&format!("{marker}-{i}"), contact);
            r["items"][0]["articleName"] = format!("{marker}{i:04}").into();
            r
        })
        .collect();
    let out = ws
        .cmd()
        .args(["receipt", "add", "-"])
        .write_stdin(serde_json::Value::Array(receipts).to_string())
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let past = (chrono::Utc::now() - chrono::Duration::days(40))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let conn = ws.conn();
    conn.execute_batch("PRAGMA secure_delete = ON")
        .expect("secure_delete");
    conn.execute(
        "UPDATE receipt_outbox SET state = 'delivered', finished_at = ?1, updated_at = ?1 \
         WHERE state = 'pending'",
        [&past],
    )
    .expect("deliver");
}

/// Purges, and checks that the receipts marked `marker` are gone byte for byte, the till
/// store's pages reclaimed and the live part still there; returns the summary's
/// `till_store_compaction`.
fn purge_receipts(ws: &Workspace, marker: &str, n: u32) -> serde_json::Value {
    let (_, summary) = purge_30d(ws);
    assert_eq!(summary["outbox_receipts"], n);
    let compaction = summary["till_store_compaction"].clone();
    assert!(
        compaction["free_pages_before"].as_i64() > Some(0),
        "{summary}"
    );
    assert_eq!(compaction["vacuumed"], true, "{summary}");
    assert_eq!(compaction["wal_truncated"], true);
    let free: i64 = ws
        .till_conn()
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .expect("freelist");
    assert_eq!(free, 0, "free pages reclaimed");
    assert_in_no_file(ws, &[marker]);
    // The scan does see live data.
    assert!(contains(&std::fs::read(ws.db()).expect("db"), &guid(4999)));
    compaction
}

/// Delivered receipts older than the age are purged from the outbox (in the till store), none
/// of their bytes is left in any file, and their pages are reclaimed by giving back only the
/// free pages: the till store is never rewritten whole.
#[test]
fn purged_receipts_leave_no_bytes_and_only_free_pages_are_reclaimed() {
    let ws = Workspace::new();
    replica_with_contacts(&ws, 5000);
    assert_eq!(ws.count("PRAGMA auto_vacuum"), 2, "incremental");
    let till_auto_vacuum: i64 = ws
        .till_conn()
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .expect("auto_vacuum");
    assert_eq!(
        till_auto_vacuum, 2,
        "the till store reclaims incrementally too"
    );
    delivered_receipts(&ws, "Quetzalcoatl", 300);
    let compaction = purge_receipts(&ws, "Quetzalcoatl", 300);
    assert_eq!(compaction["whole_file_rewritten"], false, "{compaction}");
    delivered_receipts(&ws, "Xochipilli", 300);
    let compaction = purge_receipts(&ws, "Xochipilli", 300);
    assert_eq!(compaction["whole_file_rewritten"], false, "{compaction}");
}

/// Deletes contacts `range` with a delta (secure_delete zeroes their rows; their pages go to
/// the free list), purges, and checks the replica's free pages are reclaimed and none of the
/// deleted e-mail addresses is left in any file; returns the summary's `compaction`.
fn delete_and_purge(ws: &Workspace, file: &str, range: std::ops::Range<u32>) -> serde_json::Value {
    let gone: Vec<String> = range.clone().map(deleted).collect();
    ws.write_export(file, &export(&[], &[], &gone));
    let out = ws.cmd().args(["delta", "inbox"]).output().expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let (_, summary) = purge_30d(ws);
    let compaction = summary["compaction"].clone();
    assert!(
        compaction["free_pages_before"].as_i64() > Some(0),
        "{summary}"
    );
    assert_eq!(compaction["vacuumed"], true, "{summary}");
    assert_eq!(ws.count("PRAGMA freelist_count"), 0, "free pages reclaimed");
    // A sample of the deleted addresses (each needle is a scan of every file).
    let sample: Vec<u32> = range.step_by(97).collect();
    let emails: Vec<String> = sample
        .iter()
        .map(|n| format!("user{n}@example.com"))
        .collect();
    let emails: Vec<&str> = emails.iter().map(String::as_str).collect();
    assert_in_no_file(ws, &emails);
    // As given (the attributes JSON keeps it), it is only in the export files, which are not
    // the database's to purge.
    for path in files_under(ws.path()) {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if name.starts_with("replica.db") {
            let bytes = std::fs::read(&path).expect("read");
            for n in &sample {
                assert!(
                    !contains(&bytes, &format!("User{n}@Example.com")),
                    "User{n}@Example.com still in {}",
                    path.display()
                );
            }
        }
    }
    assert!(contains(&std::fs::read(ws.db()).expect("db"), &guid(4999)));
    compaction
}

/// A replica created before incremental reclaiming gets one VACUUM, which turns it on: the
/// next purge reclaims only the free pages.
#[test]
fn an_older_replica_is_vacuumed_once_then_reclaims_incrementally() {
    let ws = Workspace::new();
    // As engage-sync created replicas before: WAL set before anything else was written.
    rusqlite::Connection::open(ws.db())
        .expect("create")
        .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .expect("wal");
    replica_with_contacts(&ws, 5000);
    assert_eq!(ws.count("PRAGMA auto_vacuum"), 0, "none, as before");
    let first = delete_and_purge(&ws, "20260102100000_0_c.xml", 0..1500);
    assert_eq!(first["whole_file_rewritten"], true, "{first}");
    assert_eq!(ws.count("PRAGMA auto_vacuum"), 2, "incremental from now on");
    let second = delete_and_purge(&ws, "20260103100000_0_c.xml", 1500..3000);
    assert_eq!(second["whole_file_rewritten"], false, "{second}");
}

/// Every file under `dir`, aged by `days`.
fn age_all(dir: &Path, days: u64) {
    for f in files_under(dir) {
        age_file(&f, days);
    }
}

fn past(days: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(days))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Folders given only as flags of a `delta` run are recorded and purged by a purge run with no
/// flags and no config; a recorded folder that is gone is reported, and the purge succeeds.
#[test]
fn folders_given_to_delta_as_flags_are_purged_without_them() {
    let ws = Workspace::new();
    let secret = |n: u32, name: &str| {
        format!(
            "<member><contactId>{}</contactId><firstName>{name}</firstName></member>",
            guid(n)
        )
    };
    ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[secret(1, "Quagmirella")], &[], &[]),
    );
    ws.write_export(
        "20260101100000_1_c.xml",
        "<contacts><new><member>Brambleworth",
    );
    let out = ws
        .cmd()
        .args([
            "delta",
            "--keep-going",
            "--archive",
            "arch-a",
            "--quarantine",
            "quar-a",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(65), "{}", stderr_of(&out));
    ws.write_export(
        "20260102100000_0_c.xml",
        &export(&[secret(2, "Gone")], &[], &[]),
    );
    let out = ws
        .cmd()
        .args(["delta", "--archive", "arch-gone"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    std::fs::remove_dir_all(ws.path().join("arch-gone")).expect("remove arch-gone");
    // A `full` swaps in a new replica: the folders recorded come with it.
    let set = tempfile::tempdir().expect("set");
    std::fs::write(
        set.path().join("20260103100000_0_full.xml"),
        export(&[member(5, "full")], &[], &[]),
    )
    .expect("set");
    let out = ws
        .cmd()
        .args(["full", "--from-xml"])
        .arg(set.path())
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    age_all(&ws.path().join("arch-a"), 40);
    age_all(&ws.path().join("quar-a"), 40);

    let out = ws
        .cmd()
        .args(["purge", "--older-than", "30d", "--dry-run"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let listing = stdout_of(&out);
    for dir in ["arch-a", "quar-a", "arch-gone", "inbox"] {
        let path = std::fs::canonicalize(ws.path())
            .expect("canonical")
            .join(dir);
        assert!(
            listing.contains(&path.display().to_string()),
            "{dir} not listed:\n{listing}"
        );
    }
    assert!(listing.contains("[not there]"), "{listing}");

    let (out, summary) = purge_30d(&ws);
    assert_eq!(summary["archived_files"]["files"], 1, "{summary}");
    assert_eq!(summary["quarantined_files"]["files"], 1, "{summary}");
    let gone: Vec<&serde_json::Value> = summary["locations"]
        .as_array()
        .expect("locations")
        .iter()
        .filter(|l| l["exists"] == false && l["kind"] == "archive")
        .collect();
    assert_eq!(gone.len(), 1, "{summary}");
    assert!(gone[0]["path"]
        .as_str()
        .expect("path")
        .ends_with("arch-gone"));
    assert!(
        stderr_of(&out).contains("no longer exists"),
        "{}",
        stderr_of(&out)
    );
    assert!(files_under(&ws.path().join("arch-a")).is_empty());
    assert!(files_under(&ws.path().join("quar-a")).is_empty());
    assert_in_no_file(&ws, &["Brambleworth"]);
}

/// Applied export files left in the inbox and unfinished downloads are purged once old; a file
/// not imported yet stays, however old.
#[test]
fn the_inbox_keeps_files_not_imported_and_loses_applied_ones() {
    let ws = Workspace::new();
    let applied = ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(1, "Inboxia")], &[], &[]),
    );
    let out = ws.cmd().arg("delta").output().expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        applied.exists(),
        "no archive: the applied file stays in the inbox"
    );
    let partial = ws.inbox().join(".20260103100000_0_c.xml.part");
    std::fs::write(&partial, "<contacts>Partialdine").expect("part");
    // Same name as an applied file but other content: not the applied file, kept.
    let waiting = ws.write_export("20260104100000_0_c.xml", "not imported yet");
    age_all(&ws.inbox(), 40);
    let (_, summary) = purge_30d(&ws);
    assert_eq!(summary["inbox_files"]["files"], 2, "{summary}");
    assert!(!applied.exists() && !partial.exists());
    assert!(waiting.exists(), "a file not imported is never purged");
}

/// `full --from-xml` killed after building: `status` shows the build left behind (age, size),
/// purge keeps it while young and deletes it once older than the age; while a `full` runs,
/// status says so and purge (which needs the writer lock) cannot touch it.
#[test]
fn an_abandoned_build_is_shown_and_purged_once_old_but_not_while_full_runs() {
    let ws = Workspace::new();
    replica_with_contacts(&ws, 3);
    // The export set is the operator's, outside the data folder.
    let set_dir = tempfile::tempdir().expect("set");
    let set = set_dir.path().to_path_buf();
    std::fs::write(
        set.join("20260105100000_0_full.xml"),
        export(&[member(7, "Buildabella")], &[], &[]),
    )
    .expect("export");
    let full = |action: Option<&str>| {
        let mut cmd = ws.std_cmd();
        cmd.args(["full", "--from-xml"]).arg(&set);
        cmd.env("ENGAGE_SYNC_FAILPOINT", "full.built");
        if let Some(a) = action {
            cmd.env("ENGAGE_SYNC_FAILPOINT_ACTION", a);
        }
        cmd
    };
    let out = full(None).output().expect("runs");
    assert_eq!(out.status.code(), None, "killed at the failpoint");
    let build_dir = ws.path().join("replica.db.d");
    assert!(build_dir.join("building.db").exists());

    let status = |ws: &Workspace| -> serde_json::Value {
        let out = ws.cmd().args(["status", "--json"]).output().expect("runs");
        assert!(out.status.success(), "{}", stderr_of(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json")["full_build"]
            .clone()
    };
    let b = status(&ws);
    assert_eq!(b["state"], "left_behind", "{b}");
    let on_disk: u64 = files_under(&build_dir)
        .iter()
        .filter(|p| p.to_string_lossy().contains("building.db"))
        .map(|p| std::fs::metadata(p).expect("meta").len())
        .sum();
    assert_eq!(b["bytes"], on_disk, "{b}");
    let human = stdout_of(&ws.cmd().arg("status").output().expect("runs"));
    assert!(
        human.contains("full build:") && human.contains("left behind"),
        "{human}"
    );

    let (_, summary) = purge_30d(&ws);
    assert_eq!(
        summary["build_files"]["files"], 0,
        "young: kept ({summary})"
    );
    assert!(build_dir.join("building.db").exists());

    // A `full` resumes the build and stops (SIGSTOP) while holding the writer lock.
    let mut running = full(Some("stop")).spawn().expect("spawn");
    let stopped = (0..600).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        std::fs::read_to_string(format!("/proc/{}/stat", running.id()))
            .is_ok_and(|s| s.split_whitespace().nth(2) == Some("T"))
    });
    assert!(stopped, "full reached the failpoint");
    age_all(&build_dir, 40);
    assert_eq!(status(&ws)["state"], "in_progress");
    let out = ws
        .cmd()
        .args(["purge", "--older-than", "30d"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(75), "the lock is held by full");
    assert!(build_dir.join("building.db").exists());
    running.kill().expect("kill");
    running.wait().expect("wait");

    age_all(&build_dir, 40);
    let (_, summary) = purge_30d(&ws);
    assert!(
        summary["build_files"]["files"].as_u64() >= Some(1),
        "{summary}"
    );
    assert!(!build_dir.join("building.db").exists());
    assert!(status(&ws).is_null(), "nothing left to show");
    assert_in_no_file(&ws, &["Buildabella"]);
}

/// Purge keeps the latest run of each command, in the replica and in the till store, however
/// old: `status --check` still knows the last successful sync.
#[test]
fn purge_keeps_the_latest_run_of_each_command() {
    let ws = Workspace::new();
    replica_with_contacts(&ws, 2);
    ws.write_export(
        "20260102100000_0_c.xml",
        &export(&[member(9, "x")], &[], &[]),
    );
    let out = ws.cmd().args(["delta", "inbox"]).output().expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    for _ in 0..2 {
        let out = ws
            .cmd()
            .env("ENGAGE_BASE_URL", "http://127.0.0.1:9")
            .env("ENGAGE_API_KEY", "k")
            .arg("push-local")
            .output()
            .expect("runs");
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
    let old = past(400);
    ws.replica_conn()
        .execute("UPDATE run SET started_at = ?1, finished_at = ?1", [&old])
        .expect("age");
    ws.till_conn()
        .execute("UPDATE run SET started_at = ?1, finished_at = ?1", [&old])
        .expect("age");
    let (_, summary) = purge_30d(&ws);
    assert_eq!(
        summary["runs"], 2,
        "one older delta, one older push-local: {summary}"
    );
    let latest = |conn: rusqlite::Connection| -> Vec<(String, String)> {
        let mut stmt = conn
            .prepare("SELECT command, outcome FROM run ORDER BY command")
            .expect("prepare");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .map(|r| r.expect("row"))
            .collect()
    };
    let replica_runs = latest(ws.replica_conn());
    assert!(
        replica_runs.contains(&("delta".into(), "ok".into())),
        "{replica_runs:?}"
    );
    assert_eq!(
        latest(ws.till_conn()),
        [("push-local".to_string(), "ok".to_string())]
    );
    let out = ws
        .cmd()
        .args(["status", "--check", "--max-age", "1000days"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stdout_of(&out));
    assert!(
        stdout_of(&out).contains("last successful delta"),
        "{}",
        stdout_of(&out)
    );
}

/// A contact registered at the till that Engage rejected goes with its last outbox item once
/// that is older than the age; one still waiting to be sent stays, however old.
#[test]
fn a_till_contact_engage_rejected_goes_with_its_item_and_a_waiting_one_stays() {
    let ws = Workspace::new();
    ws.init();
    for email in ["rejected.once@example.com", "still.waiting@example.com"] {
        let out = ws
            .cmd()
            .args(["contact", "add", "--email", email])
            .output()
            .expect("runs");
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
    let old = past(40);
    let till = ws.till_conn();
    till.execute_batch("PRAGMA secure_delete = ON")
        .expect("secure_delete");
    till.execute(
        "UPDATE contact_outbox SET state = 'rejected', reason = 'InvalidData', \
         finished_at = ?1, updated_at = ?1 WHERE fields LIKE '%rejected.once%'",
        [&old],
    )
    .expect("reject");
    till.execute("UPDATE contact_outbox SET created_at = ?1", [&old])
        .expect("age");
    drop(till);
    let (_, summary) = purge_30d(&ws);
    assert_eq!(summary["local_contacts_never_in_engage"], 1, "{summary}");
    let found = |email: &str| {
        ws.cmd()
            .args(["lookup", "--email", email])
            .output()
            .expect("runs")
            .status
            .code()
    };
    assert_eq!(found("rejected.once@example.com"), Some(1), "gone");
    assert_eq!(found("still.waiting@example.com"), Some(0), "kept");
    assert_in_no_file(&ws, &["rejected.once"]);
}

/// A file quarantined under a name that is not an export file's (given by path) is purged
/// too: the quarantine record names it.
#[test]
fn a_quarantined_file_of_any_name_is_purged_by_its_record() {
    let ws = Workspace::new();
    let odd = ws.path().join("customers-from-pos.txt");
    std::fs::write(&odd, "<contacts><member>Oddfellowa").expect("write");
    let out = ws.cmd().arg("delta").arg(&odd).output().expect("runs");
    assert_eq!(out.status.code(), Some(65), "{}", stderr_of(&out));
    assert_eq!(ws.quarantined(), ["customers-from-pos.txt"]);
    // An operator's file of the same kind of name, not quarantined by engage-sync, stays.
    let theirs = ws.path().join("quarantine").join("notes.txt");
    std::fs::write(&theirs, "keep").expect("write");
    age_all(&ws.path().join("quarantine"), 40);
    ws.replica_conn()
        .execute(
            "UPDATE quarantined_file SET quarantined_at = ?1",
            [&past(40)],
        )
        .expect("age");
    let (_, summary) = purge_30d(&ws);
    assert_eq!(summary["quarantined_files"]["files"], 1, "{summary}");
    assert_eq!(ws.quarantined(), ["notes.txt"]);
    assert_in_no_file(&ws, &["Oddfellowa"]);
}

/// Outbox items not yet delivered (pending, in flight) stay through a purge however old every
/// one of their times is, field for field; only the finished item older than the age goes.
#[test]
fn old_pending_and_in_flight_items_survive_purge_unchanged() {
    let ws = Workspace::new();
    ws.init();
    let out = ws
        .cmd()
        .args(["contact", "add", "--email", "waiting.long@example.com"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let receipts: Vec<serde_json::Value> = ["Pendolino", "Flightella", "Deliverado"]
        .iter()
        .map(|id| {
            let contact = serde_json::json!({"matchKeyType": "email", "matchKey": "waiting.long@example.com"});
            receipt(id, contact)
        })
        .collect();
    let out = ws
        .cmd()
        .args(["receipt", "add", "-"])
        .write_stdin(serde_json::Value::Array(receipts).to_string())
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let old = past(400);
    let till = ws.till_conn();
    for sql in [
        "UPDATE receipt_outbox SET state = 'in_flight' WHERE unique_receipt_id = 'Flightella'",
        "UPDATE receipt_outbox SET state = 'delivered' WHERE unique_receipt_id = 'Deliverado'",
        "UPDATE contact_outbox SET created_at = ?1, updated_at = ?1, finished_at = ?1",
        "UPDATE receipt_outbox SET created_at = ?1, updated_at = ?1, finished_at = ?1, \
         sent_at = ?1",
    ] {
        till.execute(
            sql,
            rusqlite::params_from_iter(sql.contains("?1").then_some(&old)),
        )
        .expect("age the outbox");
    }
    drop(till);
    let undelivered = |ws: &Workspace| {
        table_rows(&ws.till_conn(), &["contact_outbox", "receipt_outbox"])
            .into_iter()
            .filter(|row| !row.contains("Deliverado"))
            .collect::<Vec<_>>()
    };
    let before = undelivered(&ws);
    assert_eq!(before.len(), 3, "{before:?}");

    let (_, summary) = purge_30d(&ws);
    assert_eq!(summary["outbox_receipts"], 1, "{summary}");
    assert_eq!(
        undelivered(&ws),
        before,
        "pending and in-flight items are kept as they were"
    );
    assert_in_no_file(&ws, &["Deliverado"]);
    let out = ws
        .cmd()
        .args(["lookup", "--email", "waiting.long@example.com"])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "the waiting contact is still found"
    );
}

/// A generation a `full` killed in its swap left beside the new one is purged once old; the
/// generation in service is kept however old its files are, and so is every other file in the
/// folder that is not a generation.
#[test]
fn a_stale_generation_is_purged_and_the_one_in_service_is_kept() {
    let ws = Workspace::new();
    let set_dir = tempfile::tempdir().expect("set");
    let full = |tag: &str, failpoint: Option<&str>| {
        std::fs::write(
            set_dir.path().join("20260105100000_0_full.xml"),
            export(&[member(7, tag)], &[], &[]),
        )
        .expect("export");
        let mut cmd = ws.cmd();
        cmd.args(["full", "--from-xml"]).arg(set_dir.path());
        if let Some(f) = failpoint {
            cmd.env("ENGAGE_SYNC_FAILPOINT", f);
        }
        cmd.output().expect("runs")
    };
    assert!(full("Stalewyn", None).status.success());
    let out = full("Livewyn", Some("full.swapped"));
    assert_eq!(out.status.code(), None, "killed after the swap");
    let dir = ws.path().join("replica.db.d");
    let current = std::fs::canonicalize(ws.db()).expect("current generation");
    let generations = |dir: &Path| -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = files_under(dir)
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("gen-"))
            })
            .collect();
        files.sort();
        files
    };
    let stale: Vec<PathBuf> = generations(&dir)
        .into_iter()
        .filter(|p| !p.to_string_lossy().starts_with(&*current.to_string_lossy()))
        .collect();
    assert!(!stale.is_empty(), "the kill left the old generation");
    let stale_sizes: Vec<u64> = stale
        .iter()
        .map(|f| std::fs::metadata(f).expect("size").len())
        .collect();
    let other = dir.join("notes.txt");
    std::fs::write(&other, "the operator's").expect("other file");
    age_all(&dir, 40);

    let (_, summary) = purge_30d(&ws);
    let location = summary["locations"]
        .as_array()
        .expect("locations")
        .iter()
        .find(|l| l["kind"] == "stale_generation")
        .expect("stale_generation location")
        .clone();
    assert_eq!(location["files"], stale.len(), "{location}");
    let stale_bytes: u64 = stale_sizes.iter().sum();
    assert_eq!(location["bytes"], stale_bytes, "{location}");
    for gone in &stale {
        assert!(!gone.exists(), "{} purged", gone.display());
    }
    assert!(current.exists(), "the generation in service is kept");
    assert!(other.exists(), "a file that is no generation is kept");
    assert_in_no_file(&ws, &["Stalewyn"]);
    let out = ws
        .cmd()
        .args(["lookup", "--email", "user7@example.com", "--json"])
        .output()
        .expect("runs");
    assert!(stdout_of(&out).contains("Livewyn"), "{}", stdout_of(&out));
}

/// A place purge must look into that cannot be read is an error naming it, not a place with
/// nothing to purge: a recorded archive folder, or the replica's generation folder, that has
/// become a plain file (ENOTDIR, which the tests can make as root, unlike EACCES).
#[test]
fn a_place_that_cannot_be_read_fails_the_purge_and_names_it() {
    for place in ["archive", "replica.db.d"] {
        let ws = Workspace::new();
        ws.write_export(
            "20260101100000_0_c.xml",
            &export(&[member(1, "a")], &[], &[]),
        );
        let out = ws
            .cmd()
            .args(["delta", "--archive", "archive"])
            .output()
            .expect("runs");
        assert!(out.status.success(), "{}", stderr_of(&out));
        let path = ws.path().join(place);
        if path.is_dir() {
            std::fs::remove_dir_all(&path).expect("remove");
        }
        std::fs::write(&path, "not a folder").expect("plain file");
        let out = ws
            .cmd()
            .args(["purge", "--older-than", "30d"])
            .output()
            .expect("runs");
        let err = stderr_of(&out);
        assert!(!out.status.success(), "{place}: purge succeeded: {err}");
        assert!(err.contains(place), "{place}: {err}");
    }
}

/// A file purge must delete but cannot is an error naming it, never a success that leaves it:
/// here a build's `-journal` that is a folder (unlink fails with EISDIR, which root cannot
/// bypass, unlike permissions).
#[test]
fn a_file_purge_cannot_delete_fails_the_purge_and_names_it() {
    let ws = Workspace::new();
    replica_with_contacts(&ws, 1);
    let dir = ws.path().join("replica.db.d");
    std::fs::create_dir_all(&dir).expect("generation folder");
    std::fs::write(dir.join("building.db"), "Buildolinda").expect("build");
    let journal = dir.join("building.db-journal");
    std::fs::create_dir(&journal).expect("a folder where a journal would be");
    let old = SystemTime::now() - Duration::from_secs(40 * 86_400);
    for path in [dir.join("building.db"), journal.clone()] {
        std::fs::File::open(&path)
            .expect("open")
            .set_modified(old)
            .expect("age");
    }
    let out = ws
        .cmd()
        .args(["purge", "--older-than", "30d"])
        .output()
        .expect("runs");
    let err = stderr_of(&out);
    assert!(!out.status.success(), "purge succeeded: {err}");
    assert!(err.contains("building.db-journal"), "{err}");
}
