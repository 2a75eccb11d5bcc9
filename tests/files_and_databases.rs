//! Files and databases engage-sync must refuse rather than guess about (issue 18): other
//! applications' databases given as `--db`, links planted where engage-sync writes, database
//! files readable by others, archiving across file systems and its failures, a full disk,
//! files still being written into the inbox, file names that are not UTF-8.

mod common;

use std::path::{Path, PathBuf};

use common::{stderr_of, Workspace};
use rusqlite::Connection;
use sha2::{Digest, Sha256};

/// SHA-256 of a file's bytes, or "missing".
fn hash(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => hex::encode(Sha256::digest(bytes)),
        Err(_) => "missing".into(),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Every command that opens the replica or the till store, with arguments that get it there.
fn every_command() -> Vec<Vec<&'static str>> {
    vec![
        vec!["init"],
        vec!["delta", "inbox"],
        vec!["full", "--from-xml", "inbox"],
        vec!["changes"],
        vec!["push-local"],
        vec!["purge", "--older-than", "30d"],
        vec!["lookup", "--email", "a@example.com"],
        vec!["status"],
        vec!["status", "--check"],
        vec!["contact", "add", "--email", "new@example.com"],
        vec![
            "contact",
            "update",
            "--local-key",
            "L0600-000001",
            "--first-name",
            "X",
        ],
        vec!["receipt", "add", "receipt.json"],
    ]
}

/// Runs every command with `--db` at `db` (Engage at a closed loopback port); each must be
/// refused with exit 78 or 74 naming the file, and `db` (and `also`) must be unchanged, with
/// no `-wal`, `-shm`, `-journal` or till store made beside it.
fn refused_unchanged(ws: &Workspace, db: &Path, also: &[&Path], needle: &str) {
    std::fs::write(ws.path().join("receipt.json"), "{}").expect("receipt");
    let watched: Vec<&Path> = std::iter::once(db).chain(also.iter().copied()).collect();
    let before: Vec<String> = watched.iter().map(|p| hash(p)).collect();
    let suffixes = ["-wal", "-shm", "-journal", ".till", ".till-wal"];
    let existed: Vec<bool> = suffixes
        .iter()
        .map(|s| with_suffix(db, s).exists())
        .collect();
    for args in every_command() {
        let out = bin(ws)
            .arg("--db")
            .arg(db)
            .args(&args)
            .env("ENGAGE_BASE_URL", "http://127.0.0.1:9")
            .env("ENGAGE_API_KEY", "test-key")
            .output()
            .expect("run");
        let err = stderr_of(&out);
        let code = out.status.code();
        assert!(
            code == Some(78) || code == Some(74),
            "{args:?} on {}: exit {code:?}: {err}",
            db.display()
        );
        assert!(
            err.contains(&db.display().to_string()) && err.contains(needle),
            "{args:?}: the message names the file and what it is: {err}"
        );
        assert!(err.contains("changed nothing"), "{args:?}: {err}");
        let after: Vec<String> = watched.iter().map(|p| hash(p)).collect();
        assert_eq!(before, after, "{args:?} changed a file");
        for (suffix, existed) in suffixes.iter().zip(&existed) {
            assert!(
                *existed || !with_suffix(db, suffix).exists(),
                "{args:?} created {}{suffix}",
                db.display()
            );
        }
    }
}

/// The binary, run in the workspace, without `--db` and with no config from the environment.
fn bin(ws: &Workspace) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("engage-sync"));
    cmd.current_dir(ws.path())
        .env_remove("ENGAGE_SYNC_DB")
        .env_remove("ENGAGE_SYNC_CONFIG")
        .env_remove("ENGAGE_SYNC_LOG_FORMAT");
    cmd
}

fn sqlite_file(path: &Path, sql: &str) {
    let conn = Connection::open(path).expect("open");
    conn.execute_batch(sql).expect("sql");
}

#[test]
fn another_applications_database_is_refused_unchanged_by_every_command() {
    let ws = Workspace::new();
    let cases = [
        (
            "pos-marked.db",
            "PRAGMA application_id = 1347375955; CREATE TABLE contact (id, email); \
             INSERT INTO contact VALUES (1, 'a@example.com');",
            "application_id 0x504f5353 \"POSS\"",
        ),
        (
            "pos-contact.db",
            "CREATE TABLE contact (id, email); INSERT INTO contact VALUES (1, 'a@example.com');",
            "tables: contact",
        ),
        (
            "pos-orders.db",
            "PRAGMA user_version = 7; CREATE TABLE orders (id); CREATE TABLE meta (k, v);",
            "schema version 7, tables: meta, orders",
        ),
        (
            "pos-wal.db",
            "PRAGMA journal_mode = WAL; CREATE TABLE contact (id); CREATE TABLE run (id);",
            "tables: contact, run",
        ),
    ];
    for (name, sql, needle) in cases {
        let db = ws.path().join(name);
        sqlite_file(&db, sql);
        refused_unchanged(&ws, &db, &[], needle);
    }
}

#[test]
fn a_till_store_given_as_the_replica_and_a_foreign_till_store_are_refused() {
    let ws = Workspace::new();
    ws.init();
    // The till store of a real replica, given as --db.
    let till = ws.till();
    let replica_hash = hash(&ws.db());
    refused_unchanged(&ws, &till, &[&ws.db()], "engage-sync's till store");
    assert_eq!(hash(&ws.db()), replica_hash);
    // A replica whose till store is another application's database.
    let other = tempfile::tempdir().expect("tempdir");
    let db = other.path().join("r.db");
    std::fs::copy(ws.db(), &db).expect("copy replica");
    let foreign_till = with_suffix(&db, ".till");
    sqlite_file(&foreign_till, "CREATE TABLE receipts (id);");
    let before = hash(&foreign_till);
    for args in [
        vec!["init"],
        vec!["status"],
        vec!["contact", "add", "--email", "new@example.com"],
    ] {
        let out = bin(&ws)
            .arg("--db")
            .arg(&db)
            .args(&args)
            .output()
            .expect("run");
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(78), "{args:?}: {err}");
        assert!(
            err.contains(&foreign_till.display().to_string())
                && err.contains("is not an engage-sync till store")
                && err.contains("tables: receipts"),
            "{args:?}: {err}"
        );
        assert_eq!(hash(&foreign_till), before, "{args:?}");
    }
}

#[test]
fn a_replica_of_an_older_engage_sync_without_the_mark_is_still_accepted() {
    let ws = Workspace::new();
    ws.init();
    ws.write_export(
        "20240101120000_0_contacts.xml",
        &common::export(&[common::member(1, "old")], &[], &[]),
    );
    let out = ws
        .cmd()
        .args(["-q", "delta", "inbox"])
        .output()
        .expect("delta");
    assert!(out.status.success(), "{}", stderr_of(&out));
    // As an engage-sync from before the mark left it: application_id 0, both files.
    for file in [ws.db(), ws.till()] {
        sqlite_file(&file, "PRAGMA application_id = 0;");
    }
    let out = ws
        .cmd()
        .args(["lookup", "--contact-id", &common::guid(1)])
        .output()
        .expect("lookup");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = ws.cmd().args(["-q", "init"]).output().expect("init");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let id: i32 = Connection::open(ws.db())
        .expect("open")
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .expect("id");
    assert_eq!(
        id, 0x4553_7952,
        "still the replica, now marked by its next writer"
    );
}

#[test]
fn a_link_at_the_lock_files_path_is_refused_and_its_target_untouched() {
    let ws = Workspace::new();
    ws.init();
    let victim = ws.path().join("victim.txt");
    std::fs::write(&victim, b"precious, not engage-sync's\n").expect("victim");
    let before = hash(&victim);
    for (lock, args) in [
        ("replica.db.lock", vec!["delta", "inbox"]),
        ("replica.db.lock", vec!["purge", "--older-than", "30d"]),
        ("replica.db.push.lock", vec!["push-local"]),
    ] {
        let lock = ws.path().join(lock);
        let _ = std::fs::remove_file(&lock);
        std::os::unix::fs::symlink(&victim, &lock).expect("symlink");
        let out = ws
            .cmd()
            .args(&args)
            .env("ENGAGE_BASE_URL", "http://127.0.0.1:9")
            .env("ENGAGE_API_KEY", "test-key")
            .output()
            .expect("run");
        let err = stderr_of(&out);
        assert!(!out.status.success(), "{args:?}: {err}");
        assert!(
            err.contains(&lock.display().to_string()) && err.contains("is a symbolic link"),
            "{args:?}: {err}"
        );
        assert_eq!(hash(&victim), before, "{args:?} wrote through the link");
        // A hard link is refused as well: the lock file is rewritten with the holder's pid.
        std::fs::remove_file(&lock).expect("rm");
        std::fs::hard_link(&victim, &lock).expect("hard link");
        let out = ws.cmd().args(&args).output().expect("run");
        let err = stderr_of(&out);
        assert!(!out.status.success(), "{args:?}: {err}");
        assert!(err.contains("hard link"), "{args:?}: {err}");
        assert_eq!(hash(&victim), before, "{args:?} wrote through the hard link");
        std::fs::remove_file(&lock).expect("rm");
    }
    // With the planted links gone, the jobs run.
    let out = ws.cmd().args(["-q", "delta", "inbox"]).output().expect("delta");
    assert!(out.status.success(), "{}", stderr_of(&out));
}

#[test]
fn database_files_readable_by_others_are_made_private_by_a_writer() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new();
    ws.init();
    let files: Vec<PathBuf> = [ws.db(), ws.till()]
        .iter()
        .flat_map(|f| [f.clone(), with_suffix(f, "-wal"), with_suffix(f, "-shm")])
        .collect();
    // As a copy, a restore or an older engage-sync may leave them; -wal and -shm made too.
    for f in &files {
        if !f.exists() {
            std::fs::write(f, b"").expect("create");
        }
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    let out = ws.cmd().args(["-q", "delta", "inbox"]).output().expect("delta");
    assert!(out.status.success(), "{}", stderr_of(&out));
    for f in &files {
        if let Ok(meta) = std::fs::metadata(f) {
            assert_eq!(
                meta.permissions().mode() & 0o777,
                0o600,
                "{} is still readable by others",
                f.display()
            );
        }
    }
    assert!(files.iter().filter(|f| f.exists()).count() >= 2);
}
