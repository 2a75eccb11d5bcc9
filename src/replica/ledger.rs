//! The applied-file ledger and the quarantine record (the run log is [`crate::run_log`]).

use rusqlite::{params, Connection, OptionalExtension};

use super::{queries, Replica};

/// One applied export file, written in the same transaction as its contacts.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FileLedgerRow {
    /// File name (not the path: the same file may arrive in another folder).
    pub name: String,
    /// `YYYYMMDDHHmmss` from the name.
    pub export_timestamp: String,
    /// File number from the name.
    pub file_number: u32,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// `<member>` elements read.
    pub members: u64,
    /// Contacts created.
    pub inserted: u64,
    /// Contacts replaced.
    pub updated: u64,
    /// Contacts deleted.
    pub deleted: u64,
    /// Changes skipped because the replica had newer data.
    pub stale: u64,
    /// Mobile numbers that could not be read as phone numbers and were kept as Engage sent
    /// them (reported, not stored in the ledger).
    pub phones_as_sent: u64,
}

/// The stored hash of an applied file, if a file of that name was applied.
pub fn applied_hash(conn: &Connection, name: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(queries::APPLIED_FILE_HASH, [name], |r| r.get(0))
        .optional()
}

/// Size and hash of the applied file of that name, if any.
pub fn applied_size_and_hash(
    conn: &Connection,
    name: &str,
) -> rusqlite::Result<Option<(u64, String)>> {
    conn.query_row(queries::APPLIED_FILE_SIZE_HASH, [name], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
    })
    .optional()
}

/// Whether a file of that name was quarantined (purge forgets old records): `Some(moved_to)`
/// of the latest time, else `None`.
pub fn last_quarantine(conn: &Connection, name: &str) -> rusqlite::Result<Option<Option<String>>> {
    conn.query_row(queries::LAST_QUARANTINE_OF_NAME, [name], |r| r.get(0))
        .optional()
}

/// Where the quarantine records say files were moved (for purge, which deletes those files
/// whatever their names).
pub fn quarantine_targets(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(queries::QUARANTINE_TARGETS)?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// Records an applied file; call inside the file's transaction.
pub fn insert_applied(conn: &Connection, row: &FileLedgerRow, now: &str) -> rusqlite::Result<()> {
    conn.execute(
        queries::INSERT_APPLIED_FILE,
        params![
            row.name,
            row.export_timestamp,
            row.file_number,
            row.size as i64,
            row.sha256,
            row.members as i64,
            row.inserted as i64,
            row.updated as i64,
            row.deleted as i64,
            row.stale as i64,
            now
        ],
    )?;
    Ok(())
}

impl Replica {
    /// Writes an applied file's ledger row ([`insert_applied`]) in the open transaction.
    pub fn record_applied(&mut self, row: &FileLedgerRow, now: &str) -> rusqlite::Result<()> {
        insert_applied(&self.conn, row, now)
    }
}

/// File numbers applied so far for one export timestamp, ascending.
pub fn file_numbers(conn: &Connection, export_timestamp: &str) -> rusqlite::Result<Vec<u32>> {
    let mut stmt = conn.prepare_cached(queries::FILE_NUMBERS_FOR_EXPORT)?;
    let rows = stmt.query_map([export_timestamp], |r| r.get(0))?;
    rows.collect()
}

/// Records that a file went to quarantine, and why.
pub fn insert_quarantined(
    conn: &Connection,
    name: &str,
    moved_to: Option<&str>,
    reason: &str,
    now: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        queries::INSERT_QUARANTINED_FILE,
        params![name, moved_to, reason, now],
    )?;
    Ok(())
}
