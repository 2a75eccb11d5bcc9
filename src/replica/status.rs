//! What `status` reads from the replica.

use rusqlite::Connection;
use serde::Serialize;

use super::ledger::FileLedgerRow;
use super::queries;

/// The latest run of a command with a given outcome.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    /// delta, changes, full, push-local, purge, …
    pub command: String,
    /// ok, failed, running.
    pub outcome: String,
    /// UTC RFC 3339.
    pub started_at: String,
    /// UTC RFC 3339; None while running (or crashed).
    pub finished_at: Option<String>,
    /// The run's exit code.
    pub exit_code: Option<i64>,
    /// JSON counts.
    pub summary: Option<serde_json::Value>,
    /// The error, for failed runs.
    pub error: Option<String>,
}

/// The key of a run's summary under which it records warnings that need a person (a file
/// applied but not archived): `status` lists them and `status --check` fails on them.
pub const WARNINGS: &str = "warnings";

impl RunRow {
    /// The warnings the run recorded.
    pub fn warnings(&self) -> Vec<String> {
        self.summary
            .as_ref()
            .and_then(|s| s.get(WARNINGS))
            .and_then(|w| w.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|w| w.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A quarantined file.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineRow {
    /// File name.
    pub name: String,
    /// Where it was moved.
    pub moved_to: Option<String>,
    /// Why.
    pub reason: String,
    /// When, UTC.
    pub quarantined_at: String,
}

/// Latest run per (command, outcome).
pub fn last_runs(conn: &Connection) -> rusqlite::Result<Vec<RunRow>> {
    let mut stmt = conn.prepare(&queries::last_runs())?;
    let rows = stmt.query_map([], |r| {
        let summary: Option<String> = r.get(5)?;
        Ok(RunRow {
            command: r.get(0)?,
            outcome: r.get(1)?,
            started_at: r.get(2)?,
            finished_at: r.get(3)?,
            exit_code: r.get(4)?,
            summary: summary.and_then(|s| serde_json::from_str(&s).ok()),
            error: r.get(6)?,
        })
    })?;
    rows.collect()
}

/// Runs that never finished: (command, started_at).
pub fn unfinished_runs(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare(&queries::unfinished_runs())?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// The newest `limit` ledger rows with their apply time.
pub fn ledger_tail(
    conn: &Connection,
    limit: u32,
) -> rusqlite::Result<Vec<(FileLedgerRow, String)>> {
    let mut stmt = conn.prepare(queries::LEDGER_TAIL)?;
    let rows = stmt.query_map([limit], |r| {
        Ok((
            FileLedgerRow {
                name: r.get(0)?,
                export_timestamp: r.get(1)?,
                file_number: r.get(2)?,
                size: r.get::<_, i64>(3)? as u64,
                sha256: r.get(4)?,
                members: r.get::<_, i64>(5)? as u64,
                inserted: r.get::<_, i64>(6)? as u64,
                updated: r.get::<_, i64>(7)? as u64,
                deleted: r.get::<_, i64>(8)? as u64,
                stale: r.get::<_, i64>(9)? as u64,
                phones_as_sent: 0,
            },
            r.get(10)?,
        ))
    })?;
    rows.collect()
}

/// Gaps in the file numbers of the newest `limit` exports: (timestamp, missing numbers).
pub fn recent_gaps(conn: &Connection, limit: u32) -> rusqlite::Result<Vec<(String, Vec<u32>)>> {
    let mut stmt = conn.prepare(queries::RECENT_EXPORTS)?;
    let rows = stmt.query_map([limit], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut gaps = Vec::new();
    for row in rows {
        let (timestamp, numbers) = row?;
        let have: std::collections::BTreeSet<u32> =
            numbers.split(',').filter_map(|n| n.parse().ok()).collect();
        let max = have.iter().next_back().copied().unwrap_or(0);
        let missing: Vec<u32> = (0..=max).filter(|n| !have.contains(n)).collect();
        if !missing.is_empty() {
            gaps.push((timestamp, missing));
        }
    }
    Ok(gaps)
}

/// The newest `limit` quarantined files.
pub fn quarantine_tail(conn: &Connection, limit: u32) -> rusqlite::Result<Vec<QuarantineRow>> {
    let mut stmt = conn.prepare(queries::QUARANTINE_TAIL)?;
    let rows = stmt.query_map([limit], |r| {
        Ok(QuarantineRow {
            name: r.get(0)?,
            moved_to: r.get(1)?,
            reason: r.get(2)?,
            quarantined_at: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// Number of tombstones (deleted contacts remembered by id and time).
pub fn tombstones(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(queries::COUNT_TOMBSTONES, [], |r| r.get(0))
}

/// Number of export files in the ledger.
pub fn applied_files(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(queries::COUNT_APPLIED_FILES, [], |r| r.get(0))
}
