//! The database side of `purge`: old run rows and quarantine records, then making sure purged
//! bytes cannot be read back (secure_delete is on for every writer; the WAL is truncated and
//! free pages are vacuumed away).

use rusqlite::Connection;
use serde::Serialize;

use super::queries;

/// Rows purged (or, in a dry run, that would be).
#[derive(Debug, Default, Clone, Serialize)]
pub struct PurgedRows {
    /// Finished runs.
    pub runs: u64,
    /// Quarantine records.
    pub quarantine_records: u64,
}

/// Deletes (or counts, in a dry run) rows older than `cutoff` (UTC RFC 3339), in one
/// transaction.
pub fn purge_rows(
    conn: &mut Connection,
    cutoff: &str,
    dry_run: bool,
) -> rusqlite::Result<PurgedRows> {
    if dry_run {
        return Ok(PurgedRows {
            runs: conn.query_row(queries::COUNT_PURGE_RUNS, [cutoff], |r| r.get(0))?,
            quarantine_records: conn.query_row(
                queries::COUNT_PURGE_QUARANTINE_RECORDS,
                [cutoff],
                |r| r.get(0),
            )?,
        });
    }
    let tx = conn.transaction()?;
    let purged = PurgedRows {
        runs: tx.execute(queries::PURGE_RUNS, [cutoff])? as u64,
        quarantine_records: tx.execute(queries::PURGE_QUARANTINE_RECORDS, [cutoff])? as u64,
    };
    tx.commit()?;
    Ok(purged)
}

/// What compaction did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Compaction {
    /// Free pages before (each may have held deleted data, zeroed by secure_delete).
    pub free_pages_before: i64,
    /// Whether VACUUM ran.
    pub vacuumed: bool,
    /// Whether the WAL could be checkpointed completely and truncated to zero bytes. False when
    /// a reader held an old snapshot; the next purge finishes the job.
    pub wal_truncated: bool,
}

/// Truncates the WAL (old page images may hold purged data) and vacuums free pages away.
pub fn compact(conn: &Connection) -> rusqlite::Result<Compaction> {
    let free_pages_before: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    checkpoint_truncate(conn)?;
    let vacuumed = free_pages_before > 0;
    if vacuumed {
        conn.execute_batch("VACUUM")?;
    }
    let wal_truncated = checkpoint_truncate(conn)?;
    Ok(Compaction {
        free_pages_before,
        vacuumed,
        wal_truncated,
    })
}

/// `PRAGMA wal_checkpoint(TRUNCATE)`; true when it completed (not blocked by a reader).
fn checkpoint_truncate(conn: &Connection) -> rusqlite::Result<bool> {
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    Ok(busy == 0)
}
