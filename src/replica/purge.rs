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
    crate::failpoint::hit("purge.rows_deleted");
    tx.commit()?;
    Ok(purged)
}

/// What compaction did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Compaction {
    /// Free pages before (each may have held deleted data, zeroed by secure_delete).
    pub free_pages_before: i64,
    /// Whether the free pages were reclaimed (the file shrank by them).
    pub vacuumed: bool,
    /// Whether that took a VACUUM, which rewrites the whole file: once per replica created
    /// before incremental reclaiming, which the VACUUM turns on. Otherwise only the free pages
    /// were reclaimed (`PRAGMA incremental_vacuum`).
    pub whole_file_rewritten: bool,
    /// Whether the WAL could be checkpointed completely and truncated to zero bytes. False when
    /// a reader held an old snapshot; the next purge finishes the job.
    pub wal_truncated: bool,
}

/// `PRAGMA auto_vacuum` value of a file that reclaims free pages on request.
const AUTO_VACUUM_INCREMENTAL: i64 = 2;

/// Truncates the WAL (old page images may hold purged data) and reclaims free pages, of the
/// connection's `main` database (the replica, or the till store).
///
/// A replica created with `auto_vacuum = INCREMENTAL` (every one since this was added, see
/// `replica::configure`) gives back only its free pages: the write lock is held in
/// proportion to them, not to the file. An older replica gets a VACUUM, as before, which also
/// turns incremental reclaiming on for every later purge.
pub fn compact(conn: &Connection) -> rusqlite::Result<Compaction> {
    let free_pages_before: i64 = conn.query_row("PRAGMA main.freelist_count", [], |r| r.get(0))?;
    let auto_vacuum: i64 = conn.query_row("PRAGMA main.auto_vacuum", [], |r| r.get(0))?;
    checkpoint_truncate(conn)?;
    let vacuumed = free_pages_before > 0;
    let whole_file_rewritten = vacuumed && auto_vacuum != AUTO_VACUUM_INCREMENTAL;
    if whole_file_rewritten {
        conn.execute_batch("PRAGMA main.auto_vacuum = INCREMENTAL; VACUUM main")?;
    } else if vacuumed {
        // One result row per page given back: the pragma reclaims only as far as it is stepped.
        let mut stmt = conn.prepare("PRAGMA main.incremental_vacuum")?;
        let mut pages = stmt.query([])?;
        while pages.next()?.is_some() {}
    }
    let wal_truncated = checkpoint_truncate(conn)?;
    Ok(Compaction {
        free_pages_before,
        vacuumed,
        whole_file_rewritten,
        wal_truncated,
    })
}

/// `PRAGMA wal_checkpoint(TRUNCATE)`; true when it completed (not blocked by a reader).
fn checkpoint_truncate(conn: &Connection) -> rusqlite::Result<bool> {
    let busy: i64 = conn.query_row("PRAGMA main.wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    Ok(busy == 0)
}
