//! What `engage-sync status` reports: the replica's freshness and contents, runs, files,
//! outboxes and a `full` build on disk, for the till and for monitoring. The command opens the
//! replica, calls [`report`] (and [`check::check`] with `--check`) and prints [`human`] lines or
//! the JSON.

pub mod check;
pub mod human;

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::outbox::store::OutboxStatus;
use crate::replica::ledger::FileLedgerRow;
use crate::replica::status::{self, QuarantineRow, RunRow};
use crate::replica::Replica;

/// Commands whose success makes the replica fresh.
const SYNC_COMMANDS: &[&str] = &["delta", "changes", "full"];

/// What `status` prints (and `--json` serializes: docs/json.md, the snapshots in
/// `tests/snapshots/`), read in one transaction of the replica with its till store attached.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    db: String,
    /// The till store beside the replica (what the till writes: outboxes, local contacts).
    till_store: String,
    mode: &'static str,
    /// Contacts readers see: the replica's and those registered at the till that Engage
    /// does not know yet.
    contacts: i64,
    /// Of those, registered at the till and not yet known to Engage.
    local_contacts: i64,
    /// Contacts whose till row readers see instead of the replica's (registered or changed at
    /// the till, not yet overtaken by Engage's data).
    till_rows: i64,
    tombstones: i64,
    applied_files: i64,
    /// The newest successful sync (delta, changes, full), if any.
    last_sync: Option<RunRow>,
    /// Seconds since `last_sync` finished.
    last_sync_age_seconds: Option<i64>,
    /// The newest run of each command and outcome.
    runs: Vec<RunRow>,
    /// The newest failure of any command.
    last_failure: Option<RunRow>,
    /// Warnings the newest run of each command recorded (a file applied but not archived):
    /// they need a person, and fail `--check`.
    run_warnings: Vec<RunWarning>,
    /// Runs that started and never finished: crashed, killed, or running now.
    unfinished_runs: Vec<UnfinishedRun>,
    recent_files: Vec<RecentFile>,
    gaps: Vec<Gap>,
    /// On a store: a hub's delta publications it never applied (purged on the hub before it
    /// fetched them); it must re-sync from a snapshot (README "`publish`").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    missed_publications: Vec<crate::publish::gaps::MissedPublications>,
    quarantined: Vec<QuarantineRow>,
    /// Outbox depth per kind and state, the oldest undelivered item, rejected/dropped items.
    outbox: OutboxStatus,
    /// A `full` build on disk: running now, or left behind by one that stopped (a whole copy
    /// of the personal data; the next `full` resumes it, purge removes it once old).
    #[serde(skip_serializing_if = "Option::is_none")]
    full_build: Option<FullBuild>,
    #[serde(skip_serializing_if = "Option::is_none")]
    check: Option<check::Check>,
}

#[derive(Debug, Serialize)]
struct FullBuild {
    path: String,
    /// "in_progress" (a `full` run holds the writer lock) or "left_behind".
    state: &'static str,
    bytes: u64,
    /// Seconds since any of its files was last written.
    age_seconds: u64,
}

#[derive(Debug, Serialize)]
struct RunWarning {
    command: String,
    finished_at: Option<String>,
    warning: String,
}

#[derive(Debug, Serialize)]
struct UnfinishedRun {
    command: String,
    started_at: String,
}

#[derive(Debug, Serialize)]
struct RecentFile {
    #[serde(flatten)]
    file: FileLedgerRow,
    applied_at: String,
}

#[derive(Debug, Serialize)]
struct Gap {
    export_timestamp: String,
    missing_file_numbers: Vec<u32>,
}

/// The report on the replica at `db` (opened as `replica`), without a check.
pub fn report(replica: &mut Replica, db: &Path) -> anyhow::Result<StatusReport> {
    let mut report = gather(replica)?;
    report.full_build = full_build(db)?;
    Ok(report)
}

/// Everything but the `full` build, in one read transaction.
fn gather(replica: &mut Replica) -> anyhow::Result<StatusReport> {
    let engage_contacts = replica.contact_count()?;
    let mode = replica.mode().as_str();
    let db = replica.path().display().to_string();
    // One read transaction, so the figures agree with each other.
    let tx = replica.conn().transaction()?;
    let runs = status::last_runs(&tx)?;
    let last_sync = runs
        .iter()
        .filter(|r| r.outcome == "ok" && SYNC_COMMANDS.contains(&r.command.as_str()))
        .max_by(|a, b| a.finished_at.cmp(&b.finished_at))
        .cloned();
    let last_failure = runs
        .iter()
        .filter(|r| r.outcome == "failed")
        .max_by(|a, b| a.finished_at.cmp(&b.finished_at))
        .cloned();
    let local_contacts: i64 =
        tx.query_row(crate::till_store::queries::COUNT_LOCAL_ONLY, [], |r| {
            r.get(0)
        })?;
    let report = StatusReport {
        till_store: crate::till_store::path_for(Path::new(&db))
            .display()
            .to_string(),
        db,
        mode,
        contacts: engage_contacts + local_contacts,
        local_contacts,
        till_rows: tx.query_row(crate::till_store::queries::COUNT_TILL_ROWS, [], |r| {
            r.get(0)
        })?,
        tombstones: status::tombstones(&tx)?,
        applied_files: status::applied_files(&tx)?,
        last_sync_age_seconds: last_sync
            .as_ref()
            .and_then(|r| r.finished_at.as_deref())
            .and_then(age_seconds),
        last_sync,
        run_warnings: run_warnings(&runs),
        runs: runs
            .into_iter()
            .filter(|r| r.outcome != "running")
            .collect(),
        last_failure,
        unfinished_runs: status::unfinished_runs(&tx)?
            .into_iter()
            .map(|(command, started_at)| UnfinishedRun {
                command,
                started_at,
            })
            .collect(),
        recent_files: status::ledger_tail(&tx, 5)?
            .into_iter()
            .map(|(file, applied_at)| RecentFile { file, applied_at })
            .collect(),
        gaps: status::recent_gaps(&tx, 50)?
            .into_iter()
            .map(|(export_timestamp, missing_file_numbers)| Gap {
                export_timestamp,
                missing_file_numbers,
            })
            .collect(),
        missed_publications: crate::publish::gaps::missed(&tx)?,
        quarantined: status::quarantine_tail(&tx, 5)?,
        outbox: crate::outbox::store::status(&tx, 10)?,
        full_build: None,
        check: None,
    };
    tx.rollback()?;
    Ok(report)
}

/// The build beside the replica, if any, and whether a `full` run is writing it: the writer
/// lock file names its holder, and the holder must still be alive (read, never locked here,
/// so that `status` never makes a cron run skip).
fn full_build(db: &Path) -> anyhow::Result<Option<FullBuild>> {
    let Some(build) = crate::purge::files::build_leftover(db)? else {
        return Ok(None);
    };
    let holder = std::fs::read_to_string(crate::lock::lock_path(db)).unwrap_or_default();
    let running = holder
        .strip_prefix("pid ")
        .and_then(|rest| rest.strip_suffix(" (full)"))
        .is_some_and(|pid| Path::new("/proc").join(pid).exists());
    Ok(Some(FullBuild {
        path: build.path,
        state: if running {
            "in_progress"
        } else {
            "left_behind"
        },
        bytes: build.bytes,
        age_seconds: build.modified.elapsed().map(|d| d.as_secs()).unwrap_or(0),
    }))
}

/// The warnings of the newest finished run of each command.
fn run_warnings(runs: &[RunRow]) -> Vec<RunWarning> {
    let mut newest: std::collections::BTreeMap<&str, &RunRow> = Default::default();
    for run in runs.iter().filter(|r| r.outcome != "running") {
        let slot = newest.entry(run.command.as_str()).or_insert(run);
        if run.finished_at > slot.finished_at {
            *slot = run;
        }
    }
    newest
        .values()
        .flat_map(|run| {
            run.warnings().into_iter().map(|warning| RunWarning {
                command: run.command.clone(),
                finished_at: run.finished_at.clone(),
                warning,
            })
        })
        .collect()
}

/// Seconds from `rfc3339` until now (negative for a time ahead of the clock).
fn age_seconds(rfc3339: &str) -> Option<i64> {
    let t = DateTime::parse_from_rfc3339(rfc3339).ok()?;
    Some((Utc::now() - t.with_timezone(&Utc)).num_seconds())
}
