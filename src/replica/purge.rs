//! The database side of `purge`: old run rows and quarantine records, then making sure purged
//! bytes cannot be read back (secure_delete is on for every writer, so deleted cells and freed
//! pages are zeroed; the WAL, which may hold old page images, is truncated).

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
    /// Free pages before (zeroed when they were freed: every writer runs with secure_delete).
    pub free_pages_before: i64,
    /// Whether VACUUM ran (only when free pages are [`VACUUM_FREE_SHARE`] of the file or more).
    pub vacuumed: bool,
    /// Whether the WAL could be checkpointed completely and truncated to zero bytes. False when
    /// a reader held an old snapshot; the next purge finishes the job.
    pub wal_truncated: bool,
}

/// Share of free pages (in percent of all pages) from which purge gives the space back with
/// VACUUM. Erasure does not need VACUUM: every writer runs with `secure_delete = ON`, under
/// which SQLite zeroes deleted cells in place and every page it frees (tested byte for byte in
/// `tests/purge.rs`). VACUUM rewrites the whole file, holding the write lock all the while (6.4 s
/// in the sqlite3 shell for a 1,000,000-contact full-mode replica, so till writes wait), and
/// copies every live row through a temporary file; it is worth that only when much of the file
/// is free.
pub const VACUUM_FREE_SHARE: i64 = 25;

/// Truncates the WAL (old page images may hold purged data) and, when much of the file is
/// free, vacuums the free pages away.
pub fn compact(conn: &Connection) -> rusqlite::Result<Compaction> {
    let free_pages_before: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    checkpoint_truncate(conn)?;
    let vacuumed = free_pages_before > 0 && free_pages_before * 100 >= pages * VACUUM_FREE_SHARE;
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
