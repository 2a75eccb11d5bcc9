//! Readers under write: POS readers hammer the replica while `delta`, `changes` (against the
//! fake Engage over loopback HTTP) and `purge` write it, one after another under the writer
//! lock. Two kinds of reader run at once:
//! - direct read-only rusqlite connections on the public `contacts` view (as a POS would),
//!   checking in each read transaction that the replica is exactly the state after a whole
//!   number of export files: every file sets a marker field on all its contacts, so a file is
//!   either fully visible at its version or not at all;
//! - the real `lookup` binary, which must find the contacts that always exist.
//!
//! No reader may see an error (each connection has a 5 s busy timeout, far above any write),
//! a partial file, or a half-written contact. `cargo test --test integration
//! readers_under_write:: -- --nocapture` prints the readers' query counts.

use crate::common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, TimeDelta, Utc};
use common::*;
use fake_engage::{FakeConfig, FakeEngage};
use serde_json::json;

/// Contacts every export file updates (the shared group).
const SHARED: u32 = 1000;
/// New contacts each file adds; file k also deletes the ones file k-2 added.
const FRESH: u32 = 300;
/// Export files applied while the readers run (file 0 is applied before they start).
const FILES: u32 = 6;
/// Contacts on the fake Engage side, pulled by `changes`.
const REMOTE: usize = 120;
/// Rounds of changes on the Engage side, each pulled by one `changes` run.
const ROUNDS: u32 = 3;
/// `purge` runs.
const PURGES: u32 = 3;

/// Our export contacts' ids share this prefix (see `guid`); the fake's never do.
const OURS: &str = "6f1c2e4a-3b1d-4c8e-9a0b-%";

fn shared_id(n: u32) -> u32 {
    n
}

fn fresh_id(file: u32, j: u32) -> u32 {
    1_000_000 + file * 10_000 + j
}

fn rw_member(n: u32, file: u32, group: &str) -> String {
    format!(
        "<member source=\"POS\"><contactId>{}</contactId><firstName>F{file}</firstName>\
         <lastName>F{file}</lastName><email>c{n}@rw.example.com</email>\
         <marker>F{file}</marker><group>{group}</group></member>",
        guid(n)
    )
}

/// Export file `k`: all shared contacts at marker F{k}, FRESH new ones, and the deletes of
/// the ones file k-2 added.
fn export_file(k: u32) -> String {
    let mut updated: Vec<String> = (0..SHARED)
        .map(|n| rw_member(shared_id(n), k, "S"))
        .collect();
    let new: Vec<String> = (0..FRESH)
        .map(|j| rw_member(fresh_id(k, j), k, "N"))
        .collect();
    let deletes: Vec<String> = if k >= 2 {
        (0..FRESH).map(|j| deleted(fresh_id(k - 2, j))).collect()
    } else {
        Vec::new()
    };
    if k == 0 {
        // File 0 creates the shared group.
        updated.extend(new);
        return export(&updated, &[], &deletes);
    }
    export(&new, &updated, &deletes)
}

fn file_name(k: u32) -> String {
    format!("20260801{:02}0000_0_rw.xml", 10 + k)
}

/// What one read transaction must see when `applied` files are in the ledger: (group, marker)
/// → count.
fn expected(applied: i64) -> BTreeMap<(String, String), i64> {
    let mut out = BTreeMap::new();
    if applied == 0 {
        return out;
    }
    let last = applied as u32 - 1;
    out.insert(("S".into(), format!("F{last}")), i64::from(SHARED));
    for k in last.saturating_sub(1)..=last {
        out.insert(("N".into(), format!("F{k}")), i64::from(FRESH));
    }
    out
}

#[derive(Default)]
struct ReaderStats {
    queries: AtomicU64,
    errors: AtomicU64,
    /// The most distinct ledger states (files applied) one reader saw.
    states: AtomicU64,
}

/// One POS reader: a read-only connection checking the invariants in each read transaction.
/// Returns the first violation, if any (errors are counted, not returned).
fn sql_reader(
    db: std::path::PathBuf,
    stop: Arc<AtomicBool>,
    stats: Arc<ReaderStats>,
) -> Option<String> {
    let conn = pos_reader(&db);
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    let mut seen_applied = std::collections::BTreeSet::new();
    while !stop.load(Ordering::Relaxed) {
        let result = (|| -> rusqlite::Result<Option<String>> {
            conn.execute_batch("BEGIN")?;
            let applied: i64 = conn.query_row(
                "SELECT count(*) FROM applied_file WHERE name LIKE '%_rw.xml'",
                [],
                |r| r.get(0),
            )?;
            let mut stmt = conn.prepare_cached(
                "SELECT json_extract(attributes, '$.group'), json_extract(attributes, '$.marker'), \
                 count(*) FROM contacts WHERE contact_id LIKE ?1 GROUP BY 1, 2",
            )?;
            let groups: BTreeMap<(String, String), i64> = stmt
                .query_map([OURS], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let (remote, torn): (i64, i64) = conn.query_row(
                "SELECT count(*), count(*) FILTER (WHERE first_name IS NOT last_name) \
                 FROM contacts WHERE contact_id NOT LIKE ?1",
                [OURS],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            conn.execute_batch("COMMIT")?;
            stats.queries.fetch_add(3, Ordering::Relaxed);
            if seen_applied.insert(applied) {
                stats
                    .states
                    .fetch_max(seen_applied.len() as u64, Ordering::Relaxed);
            }
            if groups != expected(applied) {
                return Ok(Some(format!(
                    "partial file: {applied} files in the ledger but the contacts are {groups:?}"
                )));
            }
            if remote != REMOTE as i64 || torn != 0 {
                return Ok(Some(format!(
                    "Engage contacts: {remote} visible (expected {REMOTE}), {torn} half-written"
                )));
            }
            Ok(None)
        })();
        match result {
            Ok(None) => {}
            Ok(Some(violation)) => return Some(violation),
            Err(e) => {
                eprintln!("reader error: {e}");
                stats.errors.fetch_add(1, Ordering::Relaxed);
                let _ = conn.execute_batch("ROLLBACK");
            }
        }
    }
    None
}

/// POS lookups through the binary: contacts that always exist must be found (exit 0).
fn lookup_reader(
    ws_path: std::path::PathBuf,
    db: std::path::PathBuf,
    remote_id: String,
    stop: Arc<AtomicBool>,
    stats: Arc<ReaderStats>,
) {
    let bin = assert_cmd::cargo::cargo_bin("engage-sync");
    let mut n = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let (flag, value) = if n.is_multiple_of(2) {
            (
                "--email",
                format!("c{}@rw.example.com", shared_id(n % SHARED)),
            )
        } else {
            ("--contact-id", remote_id.to_uppercase())
        };
        n += 1;
        let out = std::process::Command::new(&bin)
            .current_dir(&ws_path)
            .env_remove("ENGAGE_SYNC_CONFIG")
            .arg("--db")
            .arg(&db)
            .args(["lookup", flag, &value])
            .output()
            .expect("lookup runs");
        stats.queries.fetch_add(1, Ordering::Relaxed);
        if out.status.code() != Some(0) || !out.stderr.is_empty() {
            eprintln!(
                "lookup {flag} failed: {:?}: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            );
            stats.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[test]
fn readers_never_fail_or_see_a_partial_file_while_delta_changes_and_purge_write() {
    let started = Instant::now();
    let fake = FakeEngage::start(FakeConfig::default());
    let seeded_from = Utc::now() - TimeDelta::minutes(REMOTE as i64 + 60);
    fake.seed_contacts_spaced(REMOTE, seeded_from, Duration::from_secs(60));
    let remote_ids = fake.contact_ids();
    let round = |r: u32| {
        for id in &remote_ids {
            assert!(fake.update_contact(
                id,
                json!({"firstName": format!("R{r}"), "lastName": format!("R{r}")})
            ));
        }
    };
    round(0);

    let ws = Workspace::new();
    std::fs::write(
        ws.path().join("engage-sync.toml"),
        format!(
            "[engage]\nbase_url = \"{}\"\nrate_limit = 200\nretry_base = \"10ms\"\n\
             retry_cap = \"200ms\"\nrequest_timeout = \"5s\"\n",
            fake.base_url()
        ),
    )
    .expect("config");
    let run = |args: &[&str]| {
        let out = ws
            .cmd()
            .env("ENGAGE_API_KEY", fake.api_key())
            .env_remove("ENGAGE_BASE_URL")
            .args(args)
            .output()
            .expect("runs");
        assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
    };
    ws.write_export(&file_name(0), &export_file(0));
    run(&["delta", "inbox"]);
    let since = (seeded_from - TimeDelta::hours(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    run(&["changes", "--since", &since]);
    assert_eq!(
        ws.count("SELECT count(*) FROM contacts"),
        i64::from(SHARED + FRESH) + REMOTE as i64
    );

    let stop = Arc::new(AtomicBool::new(false));
    let sql_stats = Arc::new(ReaderStats::default());
    let lookup_stats = Arc::new(ReaderStats::default());
    let sql_readers: Vec<_> = (0..2)
        .map(|_| {
            let (db, stop, stats) = (ws.db(), stop.clone(), sql_stats.clone());
            std::thread::spawn(move || sql_reader(db, stop, stats))
        })
        .collect();
    let lookups = {
        let (path, db, stop, stats) = (
            ws.path().to_path_buf(),
            ws.db(),
            stop.clone(),
            lookup_stats.clone(),
        );
        let id = remote_ids[0].clone();
        std::thread::spawn(move || lookup_reader(path, db, id, stop, stats))
    };

    // Three writers, serialised by the writer lock (--wait).
    let write_started = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            for k in 1..=FILES {
                ws.write_export(&file_name(k), &export_file(k));
                run(&["delta", "--wait", "inbox"]);
            }
        });
        s.spawn(|| {
            for r in 1..=ROUNDS {
                round(r);
                run(&["changes", "--wait"]);
            }
        });
        s.spawn(|| {
            for _ in 0..PURGES {
                run(&["purge", "--older-than", "0s", "--wait"]);
                std::thread::sleep(Duration::from_millis(300));
            }
        });
    });
    let write_seconds = write_started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let violations: Vec<String> = sql_readers
        .into_iter()
        .filter_map(|h| h.join().expect("reader thread"))
        .collect();
    lookups.join().expect("lookup thread");

    let (q, e) = (
        sql_stats.queries.load(Ordering::Relaxed),
        sql_stats.errors.load(Ordering::Relaxed),
    );
    let (lq, le) = (
        lookup_stats.queries.load(Ordering::Relaxed),
        lookup_stats.errors.load(Ordering::Relaxed),
    );
    println!(
        "readers under write ({write_seconds:.1} s of writes: {FILES} delta, {ROUNDS} changes, \
         {PURGES} purge runs): SQL readers {q} queries, {e} errors, up to {} of the {} ledger \
         states seen by one reader; lookup binary {lq} runs, {le} errors; whole test {:.1} s",
        sql_stats.states.load(Ordering::Relaxed),
        FILES + 1,
        started.elapsed().as_secs_f64()
    );
    assert!(violations.is_empty(), "{violations:?}");
    assert_eq!(e, 0, "SQL reader errors");
    assert_eq!(le, 0, "lookup errors");
    assert!(q > 0 && lq > 0, "the readers ran");
    assert!(
        sql_stats.states.load(Ordering::Relaxed) >= 2,
        "the readers saw files being applied"
    );
    // The end state: every file, every round.
    assert_eq!(
        ws.count("SELECT count(*) FROM applied_file WHERE name LIKE '%_rw.xml'"),
        i64::from(FILES) + 1
    );
    assert_eq!(
        ws.count(&format!(
            "SELECT count(*) FROM contacts WHERE first_name = 'R{ROUNDS}'"
        )),
        REMOTE as i64
    );
    let integrity: String = ws
        .conn()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(integrity, "ok");
}
