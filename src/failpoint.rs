//! Failpoints: named places where the crash tests (`tests/crash_matrix.rs`) kill the process.
//!
//! With `ENGAGE_SYNC_FAILPOINT=NAME` the process sends itself SIGKILL the first time it
//! reaches `failpoint::hit("NAME")`; with `NAME:N`, the N-th time. SIGKILL is what the OOM
//! killer, `kill -9` and a lost machine do: no destructor runs, nothing is flushed, no SQLite
//! transaction is finished, so a test sees exactly what such a crash leaves behind. Without
//! the variable a hit is one relaxed load of a `OnceLock` that is already set (the variable is
//! read once per process), so the calls stay in release builds at no measurable cost and the
//! shipped binary is the one tested. Setting the variable needs the same rights as killing the
//! process, so it gives nobody a new power.
//!
//! With `ENGAGE_SYNC_FAILPOINT_ACTION=stop` the process sends itself SIGSTOP there instead:
//! a test can then act while the process is frozen at that point (e.g. write from a till in
//! the moment between `full`'s merge and its swap) and let it go on with SIGCONT.
//!
//! Every name is listed in [`NAMES`], so the test can iterate them and a typo in a call is
//! caught by a unit test (`hit` with an unknown name panics in debug builds).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The environment variable naming the failpoint to crash at (`NAME` or `NAME:N`).
pub const ENV: &str = "ENGAGE_SYNC_FAILPOINT";
/// The environment variable choosing what happens there: `kill` (the default) or `stop`.
pub const ACTION_ENV: &str = "ENGAGE_SYNC_FAILPOINT_ACTION";

/// Every failpoint, with where it is. Commit boundaries are where a crash matters: each name
/// sits just before or just after one.
pub const NAMES: &[&str] = &[
    // delta and full --from-xml (src/import/batch.rs): several files per transaction.
    "import.file_applied", // a file and its ledger row applied, transaction still open
    "import.before_commit", // files and ledger rows applied, before COMMIT
    "import.after_commit", // committed, before the files are moved to the archive
    "import.after_archive", // one committed file moved to the archive, the rest not yet
    // delta (src/commands/delta.rs): a refused file.
    "delta.quarantined", // a bad file's quarantine record written, the file not yet moved
    // changes (src/commands/changes.rs) and fetching from the API (src/api_sync/mod.rs).
    "changes.listed",               // the changes feed read, nothing applied yet
    "fetch.page_committed",         // one page of fetched contacts committed, more to come
    "changes.before_cursor_commit", // data and the new cursor written, before COMMIT
    "changes.after_cursor_commit",  // cursor committed, before the run is recorded
    // full (src/commands/full.rs, src/replica/generation.rs).
    "full.api_listed",   // API build: ids queued, the listing not yet marked done
    "full.api_batch",    // API build: one batch of ids fetched and committed
    "full.indexed",      // XML build: deletes applied and indexes built, not yet committed
    "full.built",        // the build is complete, before the merge
    "full.merged",       // the live replica's newer state merged in, before the swap
    "full.before_fsync", // the build closed, before it is flushed to disk
    "full.generation_moved", // building.db renamed to gen-N.db, the link not yet made
    "full.link_made",    // the new link exists beside the replica, not yet renamed over it
    "full.swapped",      // the replica path points at the new generation, old files remain
    // push-local (src/outbox/push/).
    "push.claimed",          // contacts claimed (in flight), before the bulk request
    "push.bulk_sent",        // a bulk request answered with its batch id, id not yet stored
    "push.batch_stored",     // the batch id stored, before the first status poll
    "push.polled",           // one status poll answered "processing", before the next
    "push.batch_recorded",   // a completed batch's outcome recorded, before the next step
    "push.receipts_claimed", // receipts claimed (in flight), before they are posted
    "push.receipt_posted",   // a receipt POST answered, before it is marked delivered
    "push.receipt_recorded", // a receipt marked delivered, others still under way
    // purge (src/replica/purge.rs).
    "purge.rows_deleted", // old run and quarantine rows deleted, before COMMIT
    // the replica's move to schema 4 (src/till_store/schema.rs).
    "migrate.copied", // the till's data copied into the till store, not yet removed here
    // re-normalising stored keys after schema 6 (src/replica/rekey.rs).
    "rekey.updated", // every changed row updated, before the COMMIT that removes the mark
    // publish on a hub (src/publish/).
    "publish.files_written", // every file written and flushed under its temporary name
    "publish.recorded",      // the publication and its cursor committed, nothing renamed
    "publish.renamed",       // one file renamed into place, the rest not yet
];

/// The environment variable naming injected faults (comma-separated names of [`FAULTS`]):
/// a test makes an operation fail there as the OS would, to reach a path (a copy across file
/// systems, a full disk) that the machine running the tests cannot produce on demand.
pub const FAULT_ENV: &str = "ENGAGE_SYNC_FAULT";

/// Every injectable fault, with what it does.
pub const FAULTS: &[&str] = &[
    "archive.exdev", // a rename into the archive or quarantine reports EXDEV (src/fsutil.rs)
    "archive.copy_fails", // that copy fails half-way with ENOSPC (src/fsutil.rs)
    "reader.no_shm", // a reader's normal open fails as on a full disk without -shm
    "import.disk_full", // a first bulk load's replica may grow by 64 pages only (SQLITE_FULL)
    "import.index_disk_full", // a bulk load's replica may not grow while its indexes are built
];

/// The faults this process injects.
static INJECTED: OnceLock<Vec<String>> = OnceLock::new();

/// Whether `ENGAGE_SYNC_FAULT` injects the fault `name` (a read of a once-read variable).
pub fn fault(name: &'static str) -> bool {
    debug_assert!(FAULTS.contains(&name), "unknown fault {name}");
    INJECTED
        .get_or_init(|| {
            std::env::var(FAULT_ENV)
                .map(|v| v.split(',').map(|f| f.trim().to_string()).collect())
                .unwrap_or_default()
        })
        .iter()
        .any(|f| f == name)
}

/// The failpoint this process crashes at, and at which hit.
static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
/// Hits of the target so far.
static HITS: AtomicU64 = AtomicU64::new(0);

/// Crashes the process here if `ENGAGE_SYNC_FAILPOINT` names `name` (at the N-th hit for
/// `name:N`); otherwise does nothing.
pub fn hit(name: &'static str) {
    debug_assert!(NAMES.contains(&name), "unknown failpoint {name}");
    let Some((target, nth)) = TARGET.get_or_init(read_env) else {
        return;
    };
    if target == name && HITS.fetch_add(1, Ordering::Relaxed) + 1 == *nth {
        if std::env::var(ACTION_ENV).is_ok_and(|a| a.trim() == "stop") {
            stop_self();
        } else {
            kill_self();
        }
    }
}

fn read_env() -> Option<(String, u64)> {
    parse(&std::env::var(ENV).ok()?)
}

/// `NAME` or `NAME:N` (N ≥ 1); anything else disarms.
fn parse(value: &str) -> Option<(String, u64)> {
    let value = value.trim();
    let (name, nth) = match value.rsplit_once(':') {
        Some((name, n)) => (name, n.parse().ok().filter(|n| *n >= 1)?),
        None => (value, 1),
    };
    (!name.is_empty()).then(|| (name.to_string(), nth))
}

/// SIGKILL to this process: no unwinding, no destructors, no flush.
fn kill_self() -> ! {
    // SAFETY: kill(2) with our own pid and a valid signal number has no memory effects.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    // SIGKILL cannot be caught or ignored; if it somehow returned, still die without cleanup.
    std::process::abort()
}

/// SIGSTOP to this process: it freezes here until someone sends SIGCONT.
fn stop_self() {
    // SAFETY: kill(2) with our own pid and a valid signal number has no memory effects.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGSTOP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_hit_counts_parse() {
        assert_eq!(parse("full.swapped"), Some(("full.swapped".into(), 1)));
        assert_eq!(parse(" push.polled:3 "), Some(("push.polled".into(), 3)));
        assert_eq!(parse("push.polled:0"), None);
        assert_eq!(parse("push.polled:x"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn names_are_unique_and_dotted() {
        let mut names = NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), NAMES.len());
        assert!(NAMES.iter().all(|n| n.contains('.') && !n.contains(':')));
    }

    #[test]
    fn every_name_is_placed_in_the_code() {
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let mut code = String::new();
        let mut dirs = vec![std::path::PathBuf::from(src)];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).expect("src") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && !path.ends_with("failpoint.rs")
                {
                    code.push_str(&std::fs::read_to_string(&path).expect("read"));
                }
            }
        }
        for name in NAMES {
            assert!(
                code.contains(&format!("failpoint::hit(\"{name}\")")),
                "{name} is listed but never hit"
            );
        }
        for name in FAULTS {
            assert!(
                code.contains(&format!("failpoint::fault(\"{name}\")")),
                "{name} is listed but never injected"
            );
        }
    }
}
