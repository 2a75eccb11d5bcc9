//! Files and databases engage-sync must refuse rather than guess about (issue 18): other
//! applications' databases given as `--db`, links planted where engage-sync writes, database
//! files readable by others, archiving across file systems and its failures, a full disk,
//! files still being written into the inbox, file names that are not UTF-8.

use crate::common;

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
    let suffixes = [
        "-wal",
        "-shm",
        "-journal",
        ".till",
        ".till-wal",
        ".lock",
        ".push.lock",
    ];
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
        .env_remove("ENGAGE_SYNC_LOG_FORMAT")
        .env("ENGAGE_SYNC_INBOX_MIN_AGE", "0s");
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
            "tables: contact, run)",
        ),
        (
            "pos-versioned.db",
            "PRAGMA user_version = 3;",
            "schema version 3, tables: none)",
        ),
        (
            "pos-many.db",
            "CREATE TABLE a (x); CREATE TABLE b (x); CREATE TABLE c (x); CREATE TABLE d (x); \
             CREATE TABLE e (x); CREATE TABLE f (x);",
            "tables: a, b, c, d, e, …)",
        ),
    ];
    for (name, sql, needle) in cases {
        let db = ws.path().join(name);
        sqlite_file(&db, sql);
        refused_unchanged(&ws, &db, &[], needle);
    }
}

/// A damaged database (a valid SQLite header over pages that are not) is refused unchanged by
/// every command, naming the file, saying it is damaged and what to do; not a bare "database
/// disk image is malformed".
#[test]
fn a_damaged_database_is_refused_unchanged_and_named() {
    let ws = Workspace::new();
    let db = ws.path().join("damaged.db");
    sqlite_file(
        &db,
        "CREATE TABLE contact (id, email); INSERT INTO contact VALUES (1, 'a@example.com');",
    );
    let mut bytes = std::fs::read(&db).expect("read");
    assert!(bytes.len() > 100);
    bytes[100..].fill(0x5a);
    std::fs::write(&db, bytes).expect("damage");
    refused_unchanged(
        &ws,
        &db,
        &[],
        "is damaged: SQLite cannot read it as a database",
    );
}

/// An SQLite database with nothing in it (no tables, no schema version, no mark), as a
/// provisioning script may leave with `sqlite3 FILE VACUUM`, is a new replica like an empty
/// file: `init` makes it one.
#[test]
fn an_sqlite_database_with_nothing_in_it_becomes_a_replica() {
    let ws = Workspace::new();
    let db = ws.path().join("blank.db");
    sqlite_file(&db, "VACUUM;");
    assert!(std::fs::metadata(&db).expect("blank").len() > 0);
    let out = bin(&ws)
        .arg("--db")
        .arg(&db)
        .args(["init", "--mode", "keys"])
        .output()
        .expect("init");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let conn = Connection::open(&db).expect("open");
    let id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .expect("application_id");
    assert_eq!(id, 0x4553_7952, "marked as a replica");
}

/// An empty database file with a `-wal` beside it that holds another application's data
/// (its main file lost or truncated): SQLite would take the file as new and throw the log
/// away, so it is refused, before the lock, leaving no trace, where an empty file alone is
/// taken as a new replica.
#[test]
fn an_empty_file_with_a_foreign_wal_beside_it_is_refused_unchanged() {
    let ws = Workspace::new();
    let source = ws.path().join("source.db");
    let conn = Connection::open(&source).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; \
         CREATE TABLE contact (id, email); INSERT INTO contact VALUES (1, 'a@example.com');",
    )
    .expect("sql");
    // Copied while the connection is open, so before any checkpoint; then the file is lost.
    let db = ws.path().join("pos-wal-only.db");
    for suffix in ["", "-wal", "-shm"] {
        std::fs::copy(with_suffix(&source, suffix), with_suffix(&db, suffix)).expect("copy");
    }
    drop(conn);
    std::fs::File::create(&db).expect("empty main file");
    let wal = with_suffix(&db, "-wal");
    assert!(std::fs::metadata(&wal).expect("wal").len() > 0);
    refused_unchanged(&ws, &db, &[&wal], "an empty file with a");
}

#[test]
fn a_fifo_or_device_as_the_database_is_refused_without_hanging() {
    let ws = Workspace::new();
    let fifo = ws.path().join("fifo.db");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        eprintln!("SKIPPED: mkfifo is not available");
        return;
    }
    let paths = [fifo];
    for db in &paths {
        for args in every_command() {
            let out = assert_cmd::Command::from_std(bin(&ws))
                .arg("--db")
                .arg(db)
                .args(&args)
                .timeout(std::time::Duration::from_secs(30))
                .output()
                .expect("run");
            let err = stderr_of(&out);
            assert_eq!(
                out.status.code(),
                Some(64),
                "{} {args:?}: {err}",
                db.display()
            );
            assert!(err.contains("not a regular file"), "{args:?}: {err}");
        }
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
    // Both marks are in the files' headers, where every open reads them without SQLite.
    for (file, mark) in [(ws.db(), b"ESyR"), (ws.till(), b"ESyT")] {
        let header = std::fs::read(&file).expect("read");
        assert_eq!(&header[68..72], mark, "{}", file.display());
    }
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
        assert_eq!(
            hash(&victim),
            before,
            "{args:?} wrote through the hard link"
        );
        std::fs::remove_file(&lock).expect("rm");
    }
    // Links where SQLite keeps a database's -wal, -shm or -journal: SQLite would write
    // through them, so no command opens the database.
    for beside in [
        "replica.db-wal",
        "replica.db-shm",
        "replica.db-journal",
        "replica.db.till-wal",
        "replica.db.till-shm",
    ] {
        let link = ws.path().join(beside);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&victim, &link).expect("symlink");
        for args in [
            vec!["delta", "inbox"],
            vec!["lookup", "--email", "a@example.com"],
            vec!["contact", "add", "--email", "x@example.com"],
            vec!["status"],
        ] {
            let out = ws.cmd().args(&args).output().expect("run");
            let err = stderr_of(&out);
            assert_eq!(out.status.code(), Some(74), "{beside} {args:?}: {err}");
            assert!(
                err.contains(&link.display().to_string()) && err.contains("symbolic link"),
                "{beside} {args:?}: {err}"
            );
            assert_eq!(hash(&victim), before, "{beside} {args:?}");
        }
        std::fs::remove_file(&link).expect("rm");
    }
    // With the planted links gone, the jobs run.
    let out = ws
        .cmd()
        .args(["-q", "delta", "inbox"])
        .output()
        .expect("delta");
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
    let out = ws
        .cmd()
        .args(["-q", "delta", "inbox"])
        .output()
        .expect("delta");
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

/// Making files private is said once, for the files it changed: a run over files that are
/// already private says nothing of it (an operator reads "made private" as "someone had
/// opened them up").
#[test]
fn a_writer_says_made_private_only_for_files_it_changed() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new();
    ws.init();
    let run = || {
        let out = ws.cmd().args(["delta", "inbox"]).output().expect("delta");
        assert!(out.status.success(), "{}", stderr_of(&out));
        stderr_of(&out)
            .lines()
            .filter(|l| l.contains("made private"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), Vec::<String>::new(), "already private");
    std::fs::set_permissions(ws.db(), std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let said = run();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("mode 0640 → 0600"), "{said:?}");
    assert_eq!(run(), Vec::<String>::new(), "private again");
}

/// A new replica and its till store reclaim free pages incrementally (what `purge` relies on
/// to give erased space back without a VACUUM that would make the till wait), are in WAL
/// mode, and a writer on them warns of nothing.
#[test]
fn new_database_files_are_incremental_and_wal_and_open_without_warnings() {
    let ws = Workspace::new();
    ws.init();
    let out = ws.cmd().args(["delta", "inbox"]).output().expect("delta");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(!err.contains("WARN"), "{err}");
    for db in [ws.db(), ws.till()] {
        let conn = Connection::open(&db).expect("open");
        let (vacuum, journal): (i64, String) = conn
            .query_row(
                "SELECT * FROM pragma_auto_vacuum, pragma_journal_mode",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("pragmas");
        assert_eq!((vacuum, journal.as_str()), (2, "wal"), "{}", db.display());
    }
}

/// A `--db` that is a symbolic link to nothing is refused: SQLite would create the file at
/// the link's target, wherever it points. Nothing is created there.
#[test]
fn a_database_path_linking_to_nothing_is_refused() {
    let ws = Workspace::new();
    let target = ws.path().join("elsewhere/replica.db");
    std::fs::create_dir_all(target.parent().expect("parent")).expect("folder");
    let link = ws.path().join("replica-link.db");
    std::os::unix::fs::symlink(&target, &link).expect("link");
    let out = bin(&ws)
        .arg("--db")
        .arg(&link)
        .args(["init"])
        .output()
        .expect("init");
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains(&link.display().to_string())
            && err.contains("symbolic link to a file that does not exist"),
        "{err}"
    );
    assert!(!target.exists(), "created through the link");
}

/// A replica in a folder that does not exist yet: `init` makes the folder, then the replica
/// in it (the first job on a new machine).
#[test]
fn init_makes_the_folder_of_a_new_replica() {
    let ws = Workspace::new();
    let db = ws.path().join("var/lib/engage-sync/replica.db");
    let out = bin(&ws)
        .arg("--db")
        .arg(&db)
        .args(["init"])
        .output()
        .expect("init");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(db.is_file(), "{}", db.display());
}

/// An export file of `n` new contacts starting at `first`.
fn export_of(first: u32, n: u32) -> String {
    let members: Vec<String> = (first..first + n).map(|i| common::member(i, "a")).collect();
    common::export(&members, &[], &[])
}

/// Names of the files in `dir` (none if it is missing), sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn status_json(ws: &Workspace) -> serde_json::Value {
    let out = ws
        .cmd()
        .args(["status", "--json"])
        .output()
        .expect("status");
    assert!(out.status.success(), "{}", stderr_of(&out));
    serde_json::from_slice(&out.stdout).expect("json")
}

/// `status --check` (fresh: the jobs just ran): its exit code and line.
fn check(ws: &Workspace) -> (Option<i32>, String) {
    let out = ws
        .cmd()
        .args(["status", "--check", "--max-age", "1d"])
        .output()
        .expect("check");
    (out.status.code(), common::stdout_of(&out))
}

#[test]
fn archiving_across_file_systems_copies_whole_files_or_keeps_them_in_the_inbox() {
    let ws = Workspace::new();
    let archive = ws.path().join("archive");
    let first = ws.write_export("20240101120000_0_a.xml", &export_of(1, 200));
    let first_bytes = std::fs::read(&first).expect("read");
    // The rename reports EXDEV, as from /srv/inbox to an archive on another disk: copied.
    let out = ws
        .cmd()
        .args(["-q", "delta", "inbox", "--archive", "archive"])
        .env("ENGAGE_SYNC_FAULT", "archive.exdev")
        .output()
        .expect("delta");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(names_in(&archive), ["20240101120000_0_a.xml"]);
    assert_eq!(
        std::fs::read(archive.join("20240101120000_0_a.xml")).expect("read"),
        first_bytes
    );
    assert!(names_in(&ws.inbox()).is_empty());
    // The copy fails half-way (the archive's disk is full): no cut-off copy is left, the
    // file stays in the inbox whole, and the run records why.
    let second = ws.write_export("20240101130000_0_b.xml", &export_of(300, 200));
    let second_bytes = std::fs::read(&second).expect("read");
    let out = ws
        .cmd()
        .args(["delta", "inbox", "--archive", "archive"])
        .env("ENGAGE_SYNC_FAULT", "archive.exdev,archive.copy_fails")
        .output()
        .expect("delta");
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "applied, not archived: {err}");
    assert!(
        err.contains("20240101130000_0_b.xml was applied but not archived"),
        "{err}"
    );
    assert_eq!(
        names_in(&archive),
        ["20240101120000_0_a.xml"],
        "no partial copy"
    );
    assert_eq!(
        std::fs::read(&second).expect("still in the inbox"),
        second_bytes
    );
    let warnings = status_json(&ws)["run_warnings"].clone();
    assert_eq!(warnings.as_array().map(Vec::len), Some(1), "{warnings}");
    assert_eq!(warnings[0]["command"], "delta");
    let text = warnings[0]["warning"].as_str().unwrap_or_default();
    assert!(
        text.contains("20240101130000_0_b.xml") && text.contains("No space left on device"),
        "{text}"
    );
    let (code, line) = check(&ws);
    assert_eq!(code, Some(74), "{line}");
    assert!(
        line.starts_with("WARNING: ") && line.contains("not archived"),
        "{line}"
    );
    // The next run (disk freed) archives it, already applied; the check clears.
    let out = ws
        .cmd()
        .args(["-q", "delta", "inbox", "--archive", "archive"])
        .env("ENGAGE_SYNC_FAULT", "archive.exdev")
        .output()
        .expect("delta");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        std::fs::read(archive.join("20240101130000_0_b.xml")).expect("archived"),
        second_bytes
    );
    assert_eq!(check(&ws).0, Some(0));
    assert!(status_json(&ws)["run_warnings"]
        .as_array()
        .is_some_and(Vec::is_empty));
}

#[test]
fn an_archive_that_cannot_be_written_shows_in_status_and_fails_the_check() {
    let ws = Workspace::new();
    // A folder under a regular file: unwritable even for root.
    std::fs::write(ws.path().join("not-a-folder"), b"x").expect("file");
    let file = ws.write_export("20240101120000_0_a.xml", &export_of(1, 3));
    let out = ws
        .cmd()
        .args(["delta", "inbox", "--archive", "not-a-folder/archive"])
        .output()
        .expect("delta");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(file.exists(), "left in the inbox");
    let out = ws.cmd().args(["status"]).output().expect("status");
    let text = common::stdout_of(&out);
    assert!(
        text.contains("warning:      delta at ")
            && text.contains("20240101120000_0_a.xml was applied but not archived"),
        "{text}"
    );
    let (code, line) = check(&ws);
    assert_eq!(code, Some(74), "{line}");
    assert!(line.contains("not-a-folder/archive"), "{line}");
}

/// A tmpfs of `size` mounted at `dir` (root only); unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn archiving_onto_a_real_full_file_system_leaves_no_cut_off_copy() {
    let ws = Workspace::new();
    let archive = ws.path().join("archive");
    let Some(_fs) = Tmpfs::mount(&archive, "64k") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root and mount); the forced-fault test covers the copy");
        return;
    };
    let small = ws.write_export("20240101120000_0_a.xml", &export_of(1, 3));
    let small_bytes = std::fs::read(&small).expect("read");
    let big = ws.write_export("20240101120000_1_b.xml", &export_of(100, 1000));
    let big_bytes = std::fs::read(&big).expect("read");
    assert!(big_bytes.len() > 128 * 1024);
    let out = ws
        .cmd()
        .args(["delta", "inbox", "--archive", "archive"])
        .output()
        .expect("delta");
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(names_in(&archive), ["20240101120000_0_a.xml"], "{err}");
    assert_eq!(
        std::fs::read(archive.join("20240101120000_0_a.xml")).expect("read"),
        small_bytes
    );
    assert_eq!(std::fs::read(&big).expect("kept"), big_bytes);
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(check(&ws).0, Some(74));
}

/// A replica with an Engage contact (user1@example.com) and one registered at the till
/// (till@example.com, in the till store's WAL), at `db`, with its `-shm` files removed as a
/// reboot or a copy leaves them.
fn replica_without_shm(ws: &Workspace, db: &Path) {
    ws.write_export("20240101120000_0_a.xml", &export_of(1, 20));
    for args in [
        vec!["-q", "init"],
        vec!["-q", "delta", "inbox"],
        vec!["-q", "contact", "add", "--email", "till@example.com"],
    ] {
        let out = bin(ws)
            .arg("--db")
            .arg(db)
            .args(&args)
            .output()
            .expect("run");
        assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
    }
    for f in [with_suffix(db, "-shm"), with_suffix(db, ".till-shm")] {
        let _ = std::fs::remove_file(f);
    }
}

/// Looks both contacts up (each must be found) and runs `status`, read without shared memory.
fn both_found_without_shm(ws: &Workspace, db: &Path, fault: Option<&str>) {
    for email in ["user1@example.com", "till@example.com"] {
        let mut cmd = bin(ws);
        cmd.arg("--db")
            .arg(db)
            .args(["lookup", "--json", "--email", email]);
        if let Some(f) = fault {
            cmd.env("ENGAGE_SYNC_FAULT", f);
        }
        let out = cmd.output().expect("lookup");
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(0), "{email}: {err}");
        let found: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(found["found"], true, "{email}");
        assert!(err.contains("read without it"), "{email}: {err}");
    }
    let mut cmd = bin(ws);
    cmd.arg("--db").arg(db).args(["status", "--json"]);
    if let Some(f) = fault {
        cmd.env("ENGAGE_SYNC_FAULT", f);
    }
    let out = cmd.output().expect("status");
    assert_eq!(out.status.code(), Some(0), "status: {}", stderr_of(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(status["contacts"], 21, "{status}");
}

#[test]
fn readers_work_without_shared_memory_when_it_cannot_be_created() {
    let ws = Workspace::new();
    let db = ws.db();
    replica_without_shm(&ws, &db);
    both_found_without_shm(&ws, &db, Some("reader.no_shm"));
}

#[test]
fn lookup_and_status_work_on_a_real_full_disk_without_shm_files() {
    let ws = Workspace::new();
    let disk = ws.path().join("disk");
    let Some(_fs) = Tmpfs::mount(&disk, "4m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root and mount); the forced-fault test covers the fallback");
        return;
    };
    let db = disk.join("replica.db");
    replica_without_shm(&ws, &db);
    // Fill the disk to the last byte.
    let mut filler = std::fs::File::create(disk.join("filler")).expect("filler");
    let block = vec![0u8; 4096];
    while std::io::Write::write_all(&mut filler, &block).is_ok() {}
    drop(filler);
    both_found_without_shm(&ws, &db, None);
}

/// A first bulk load that fills the disk: the run fails with the cause (and what to do), not
/// a failed rollback, records it, keeps the file, and the next run with space loads it all.
fn first_load_on_a_full_disk(ws: &Workspace, db: &Path, fault: Option<&str>, members: u32) {
    let inbox = ws.inbox();
    let file = ws.write_export("20240101120000_0_a.xml", &export_of(1, members));
    let mut cmd = bin(ws);
    cmd.arg("--db").arg(db).args(["delta"]).arg(&inbox);
    if let Some(f) = fault {
        cmd.env("ENGAGE_SYNC_FAULT", f);
    }
    let out = cmd.output().expect("delta");
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(74), "{err}");
    assert!(
        err.contains("database or disk is full")
            && err.contains("is full: nothing of the unfinished transaction was kept")
            && err.contains(&format!("the replica {}", db.display()))
            && !err.contains("cannot rollback"),
        "{err}"
    );
    assert!(file.exists(), "the file stays in the inbox");
    let out = bin(ws)
        .arg("--db")
        .arg(db)
        .args(["status", "--json"])
        .output()
        .expect("status");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let recorded = status["last_failure"]["error"].as_str().unwrap_or_default();
    assert!(recorded.contains("database or disk is full"), "{recorded}");
    assert_eq!(status["contacts"], 0);
}

/// Whether the disk fills while the contacts go in or while the load builds its indexes,
/// after every contact went in (the moment a bulk load needs the most room): the same report,
/// nothing of the load kept, and the next run with room loads it all.
#[test]
fn a_full_disk_during_the_first_bulk_load_is_reported_as_such() {
    for fault in ["import.disk_full", "import.index_disk_full"] {
        let ws = Workspace::new();
        ws.init();
        first_load_on_a_full_disk(&ws, &ws.db(), Some(fault), 2000);
        let out = ws
            .cmd()
            .args(["-q", "delta", "inbox"])
            .output()
            .expect("delta");
        assert!(out.status.success(), "{fault}: {}", stderr_of(&out));
        assert_eq!(ws.count("SELECT count(*) FROM contact"), 2000, "{fault}");
    }
}

#[test]
fn a_real_full_disk_during_the_first_bulk_load_is_reported_as_such() {
    let ws = Workspace::new();
    let disk = ws.path().join("disk");
    let Some(_fs) = Tmpfs::mount(&disk, "1m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root and mount); the forced-fault test covers it");
        return;
    };
    let db = disk.join("replica.db");
    let out = bin(&ws)
        .arg("--db")
        .arg(&db)
        .args(["-q", "init"])
        .output()
        .expect("init");
    assert!(out.status.success(), "{}", stderr_of(&out));
    first_load_on_a_full_disk(&ws, &db, None, 20_000);
    // A small file fits; after it, a large one fails the same way outside a bulk load.
    let big = ws.inbox().join("20240101120000_0_a.xml");
    let parked = ws.path().join("big.xml");
    std::fs::rename(&big, &parked).expect("park");
    ws.write_export("20230101120000_0_small.xml", &export_of(1, 3));
    let out = bin(&ws)
        .arg("--db")
        .arg(&db)
        .args(["-q", "delta"])
        .arg(ws.inbox())
        .output()
        .expect("delta");
    assert!(out.status.success(), "{}", stderr_of(&out));
    std::fs::rename(&parked, &big).expect("unpark");
    let out = bin(&ws)
        .arg("--db")
        .arg(&db)
        .args(["delta"])
        .arg(ws.inbox())
        .output()
        .expect("delta");
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(74), "{err}");
    assert!(
        err.contains("database or disk is full")
            && err.contains(&db.display().to_string())
            && err.contains("Free space there")
            && !err.contains("cannot rollback"),
        "{err}"
    );
    let out = bin(&ws)
        .arg("--db")
        .arg(&db)
        .args(["status", "--json"])
        .output()
        .expect("status");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let recorded = status["last_failure"]["error"].as_str().unwrap_or_default();
    assert!(recorded.contains("database or disk is full"), "{recorded}");
    assert_eq!(status["contacts"], 3);
}

/// Sets a file's modification time `secs` seconds into the past.
fn backdate(path: &Path, secs: u64) {
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    file.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(secs))
        .expect("set mtime");
}

#[test]
fn files_still_being_written_into_the_inbox_are_skipped_not_quarantined() {
    let ws = Workspace::new();
    ws.init();
    let whole = export_of(1, 5);
    let old = ws.write_export("20240101120000_0_a.xml", &whole);
    backdate(&old, 60);
    // Half written, just now: with the default minimum age (5s) it is left alone.
    let young = ws.write_export("20240101130000_0_b.xml", &whole[..whole.len() / 2]);
    let run = |extra: &[&str]| {
        let out = ws
            .cmd()
            .env_remove("ENGAGE_SYNC_INBOX_MIN_AGE")
            .args(["delta", "inbox", "--json", "--archive", "archive"])
            .args(extra)
            .output()
            .expect("delta");
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        summary
    };
    let summary = run(&[]);
    assert_eq!(summary["files_applied"], 1);
    assert_eq!(summary["files_failed"], 0);
    assert_eq!(
        summary["files_skipped"],
        serde_json::json!(["inbox/20240101130000_0_b.xml"])
    );
    assert!(young.exists());
    assert!(names_in(&ws.path().join("quarantine")).is_empty());
    // Written to the end, a minute ago: taken.
    std::fs::write(&young, &whole).expect("finish");
    backdate(&young, 60);
    let summary = run(&[]);
    assert_eq!(summary["files_applied"], 1, "{summary}");
    // --min-age (and inbox_min_age in the config file) set the age; 0 takes every file.
    let third = ws.write_export("20240101140000_0_c.xml", &export_of(10, 2));
    backdate(&third, 60);
    let summary = run(&["--min-age", "2m"]);
    assert_eq!(summary["files_skipped"].as_array().map(Vec::len), Some(1));
    std::fs::write(ws.path().join("es.toml"), "inbox_min_age = \"0s\"\n").expect("config");
    let summary = run(&["--config", "es.toml"]);
    assert_eq!(summary["files_applied"], 1, "{summary}");
    assert_eq!(summary["files_skipped"], serde_json::json!([]));
}

#[test]
fn file_names_that_are_not_utf8_are_refused_and_left_in_place() {
    use std::os::unix::ffi::OsStrExt;
    let ws = Workspace::new();
    ws.init();
    let good = ws.write_export("20240101120000_0_b.xml", &export_of(1, 3));
    let mut bad = Vec::new();
    for name in [
        &b"20240101120000_1_caf\xe9.xml"[..],
        b"20240101120000_1_caf\xe8.xml",
    ] {
        let path = ws.inbox().join(std::ffi::OsStr::from_bytes(name));
        std::fs::write(&path, export_of(10, 2)).expect("write");
        bad.push(path);
    }
    let out = ws.cmd().args(["delta", "inbox"]).output().expect("delta");
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(65), "{err}");
    assert!(
        err.contains("caf\\xE9.xml") && err.contains("caf\\xE8.xml") && err.contains("not UTF-8"),
        "{err}"
    );
    assert!(good.exists(), "applied, and no archive is set");
    for path in &bad {
        assert!(path.exists(), "left where it was");
    }
    assert!(names_in(&ws.path().join("quarantine")).is_empty());
    assert_eq!(ws.count("SELECT count(*) FROM applied_file"), 1);
    assert_eq!(ws.count("SELECT count(*) FROM contact"), 3);
}

/// `chattr -i` on drop, so that the temp folder can be removed.
struct Immutable(PathBuf);

impl Immutable {
    fn set(path: &Path) -> Option<Immutable> {
        let ok = std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Immutable(path.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_database_file_that_cannot_be_made_private_is_refused_with_advice() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new();
    ws.init();
    std::fs::set_permissions(ws.db(), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    // An immutable file: chmod fails even for root (as for a file another user owns).
    let Some(_guard) = Immutable::set(&ws.db()) else {
        eprintln!("SKIPPED: chattr +i is not available here (needs root and ext2/3/4)");
        return;
    };
    let before = hash(&ws.db());
    let out = ws.cmd().args(["delta", "inbox"]).output().expect("delta");
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(77), "{err}");
    assert!(
        err.contains("mode 0644")
            && err.contains("cannot make it private")
            && err.contains("chmod 600"),
        "{err}"
    );
    assert_eq!(hash(&ws.db()), before);
}

/// A name already taken in the quarantine gets the next free number: the same file name
/// refused three times is kept three times, as `NAME`, `NAME.1` and `NAME.2`, each with its
/// own content.
#[test]
fn a_name_taken_in_the_quarantine_gets_the_next_free_number() {
    let ws = Workspace::new();
    let name = "20260101100000_0_c.xml";
    for n in 0..3 {
        ws.write_export(name, &format!("<contacts><new><member>Broken{n}"));
        let out = ws
            .cmd()
            .arg("delta")
            .arg(ws.inbox())
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(65), "{}", stderr_of(&out));
    }
    let kept = ws.quarantined();
    assert_eq!(
        kept,
        [name.to_string(), format!("{name}.1"), format!("{name}.2")]
    );
    for (file, n) in kept.iter().zip(0..) {
        let content = std::fs::read_to_string(ws.path().join("quarantine").join(file))
            .expect("quarantined file");
        assert!(content.contains(&format!("Broken{n}")), "{file}: {content}");
    }
}
