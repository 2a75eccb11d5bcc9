//! One writer at a time, and readers only ever see whole files.

use crate::common;

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

const PER_FILE: u32 = 1500;
const FILES: u32 = 6;

fn write_files(ws: &Workspace) {
    write_round(ws, "20260101100000", true);
}

/// FILES export files of PER_FILE contacts each with the timestamp `ts`: the contacts as new,
/// or (`new` false) as updated.
fn write_round(ws: &Workspace, ts: &str, new: bool) {
    for f in 0..FILES {
        let members: Vec<String> = (0..PER_FILE)
            .map(|i| member(f * PER_FILE + i, ts))
            .collect();
        let (created, updated) = if new {
            (&members[..], &[][..])
        } else {
            (&[][..], &members[..])
        };
        ws.write_export(&format!("{ts}_{f}_c.xml"), &export(created, updated, &[]));
    }
}

#[test]
fn a_held_lock_skips_the_run_with_75_and_wait_queues_behind_it() {
    let ws = Workspace::new();
    write_files(&ws);
    let lock = File::create(ws.path().join("replica.db.lock")).expect("lock file");
    lock.try_lock().expect("test holds the lock");
    // Without --wait the run must not queue: a run that waits anyway is killed (no exit code)
    // long before any test harness gives up, instead of hanging the suite.
    let out = ws
        .cmd()
        .args(["delta", "inbox"])
        .timeout(Duration::from_secs(60))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(75), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("skipped"), "{}", stderr_of(&out));
    assert!(ws.contacts().is_empty());

    let mut child = ws
        .std_cmd()
        .args(["delta", "inbox", "--wait"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Blocked on the lock the test holds: it has imported nothing, and goes on once released.
    wait_until_blocked_in(&mut child, libc::SYS_flock, "delta --wait");
    assert!(ws.contacts().is_empty(), "still waiting");
    lock.unlock().expect("release");
    let out = child.wait_with_output().expect("waits");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(ws.contacts().len(), (FILES * PER_FILE) as usize);
}

#[test]
fn concurrent_runs_and_a_reader_never_see_half_a_file() {
    let ws = Workspace::new();
    assert!(ws
        .cmd()
        .arg("init")
        .output()
        .expect("runs")
        .status
        .success());
    write_files(&ws);
    let db = ws.db();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let conn = pos_connection(&db);
            conn.busy_timeout(Duration::from_secs(5)).expect("timeout");
            let mut seen = std::collections::BTreeSet::new();
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                // One read transaction: contacts and ledger must agree.
                let (contacts, files): (i64, i64) = conn
                    .query_row(
                        "SELECT (SELECT count(*) FROM contacts), (SELECT count(*) FROM applied_file)",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .expect("reader query never fails");
                assert_eq!(
                    contacts,
                    files * PER_FILE as i64,
                    "reader saw a partial file"
                );
                seen.insert(files);
            }
            seen
        })
    };
    let spawn = || {
        ws.std_cmd()
            .args(["delta", "inbox"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (
        a.wait_with_output().expect("a"),
        b.wait_with_output().expect("b"),
    );
    stop.store(true, Ordering::Relaxed);
    let seen = reader.join().expect("reader thread");
    let codes = [a.status.code(), b.status.code()];
    assert!(
        codes.iter().all(|c| matches!(c, Some(0) | Some(75))),
        "{codes:?}: {} {}",
        stderr_of(&a),
        stderr_of(&b)
    );
    assert!(codes.contains(&Some(0)));
    assert_eq!(ws.contacts().len(), (FILES * PER_FILE) as usize);
    assert_eq!(ws.count("SELECT count(*) FROM applied_file"), FILES as i64);
    let integrity: String = ws
        .conn()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(integrity, "ok");
    assert!(!seen.is_empty());
}

/// A delta onto a replica in service no longer cuts its transactions short for till writes
/// (they go to the till store): its first commit carries every file of the run, whatever the
/// busy timeout. The process kills itself at that commit. (Until the till store, a
/// transaction ended after half the busy timeout, and with 1 ms it carried one file.)
#[test]
fn a_delta_keeps_its_files_in_one_transaction_whatever_the_busy_timeout() {
    let applied_at_first_commit = |busy_timeout: &str| {
        let ws = Workspace::new();
        let config = ws.path().join("engage-sync.toml");
        std::fs::write(&config, format!("busy_timeout = \"{busy_timeout}\"\n")).expect("config");
        // The first import into an empty replica is one bulk transaction whatever the budget.
        let first = ws.write_export(
            "20260101100000_0_c.xml",
            &export(&[member(0, "a")], &[], &[]),
        );
        let out = ws.cmd().args(["delta", "inbox"]).output().expect("runs");
        assert!(out.status.success(), "{}", stderr_of(&out));
        // Gone from the inbox, so the first commit of the next run has a file to record.
        std::fs::remove_file(first).expect("remove the applied file");
        write_round(&ws, "20260102100000", false);
        let out = ws
            .cmd()
            .arg("--config")
            .arg(&config)
            .args(["delta", "inbox"])
            .env("ENGAGE_SYNC_FAILPOINT", "import.after_commit:1")
            .output()
            .expect("runs");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&out.status),
            Some(9),
            "the failpoint was not reached: {}",
            stderr_of(&out)
        );
        ws.count("SELECT count(*) FROM applied_file") - 1
    };
    assert_eq!(applied_at_first_commit("1ms"), FILES as i64);
    assert_eq!(applied_at_first_commit("10s"), FILES as i64);
}
