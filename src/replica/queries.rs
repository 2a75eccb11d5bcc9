//! Every SQL statement of the replica, in one place.

/// Current stored version and keys of a contact (the keys decide which indexes an update
/// must touch).
pub const FIND_CONTACT: &str = "SELECT id, version, member_number, email, mobile_phone, \
     external_id, social_security_number FROM contact WHERE contact_id = ?1";
/// Whether any tombstone exists (an empty table lets imports skip a lookup per contact).
pub const ANY_TOMBSTONE: &str = "SELECT EXISTS (SELECT 1 FROM tombstone)";
/// Version of a contact's tombstone.
pub const FIND_TOMBSTONE: &str = "SELECT version FROM tombstone WHERE contact_id = ?1";
/// A new Engage contact.
pub const INSERT_CONTACT: &str = "INSERT INTO contact (contact_id, member_number, email, \
     mobile_phone, external_id, social_security_number, contact_type, first_name, last_name, \
     attributes, version, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
/// The indexed key columns an update may change, in the order of [`update_contact`]'s
/// parameters ?8.. .
pub const KEY_COLUMNS: [&str; 5] = [
    "member_number",
    "email",
    "mobile_phone",
    "external_id",
    "social_security_number",
];

/// Replaces an Engage contact's data (the row keeps its local_key, if any). Only the key
/// columns flagged in `changed` (bit i = `KEY_COLUMNS[i]`) are assigned: SQLite rewrites the
/// index entries of every assigned indexed column, changed or not, and those index writes are
/// most of an update's cost. Parameters: ?1 id, ?2 contact_type, ?3 first_name, ?4 last_name,
/// ?5 attributes, ?6 version, ?7 updated_at, ?8.. the changed keys in column order.
pub fn update_contact(changed: u8) -> String {
    let mut sql = String::from(
        "UPDATE contact SET contact_type = ?2, first_name = ?3, last_name = ?4, \
         attributes = ?5, version = ?6, updated_at = ?7",
    );
    let mut param = 8;
    for (i, column) in KEY_COLUMNS.iter().enumerate() {
        if changed & (1 << i) != 0 {
            sql.push_str(&format!(", {column} = ?{param}"));
            param += 1;
        }
    }
    sql.push_str(" WHERE id = ?1");
    sql
}
/// Removes a contact row (secure_delete overwrites its bytes).
pub const DELETE_CONTACT: &str = "DELETE FROM contact WHERE id = ?1";
/// Records or advances a tombstone.
pub const UPSERT_TOMBSTONE: &str = "INSERT INTO tombstone (contact_id, version, deleted_at) \
     VALUES (?1, ?2, ?3) ON CONFLICT(contact_id) DO UPDATE SET version = excluded.version, \
     deleted_at = excluded.deleted_at WHERE excluded.version >= tombstone.version";
/// Removes a tombstone when newer data brings the contact back.
pub const DELETE_TOMBSTONE: &str = "DELETE FROM tombstone WHERE contact_id = ?1";

/// Hash of an applied file, by name.
pub const APPLIED_FILE_HASH: &str = "SELECT sha256 FROM applied_file WHERE name = ?1";
/// Ledger row of an applied file.
pub const INSERT_APPLIED_FILE: &str = "INSERT INTO applied_file (name, export_timestamp, \
     file_number, size, sha256, members, inserted, updated, deleted, stale, applied_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
/// File numbers applied for one export timestamp, for the gap check.
pub const FILE_NUMBERS_FOR_EXPORT: &str =
    "SELECT file_number FROM applied_file WHERE export_timestamp = ?1 ORDER BY file_number";
/// A quarantined file.
pub const INSERT_QUARANTINED_FILE: &str = "INSERT INTO quarantined_file (name, moved_to, \
     reason, quarantined_at) VALUES (?1, ?2, ?3, ?4)";

/// Start of a writing run.
pub const INSERT_RUN: &str =
    "INSERT INTO run (command, started_at, outcome) VALUES (?1, ?2, 'running')";
/// End of a writing run.
pub const FINISH_RUN: &str = "UPDATE run SET finished_at = ?2, outcome = ?3, exit_code = ?4, \
     summary = ?5, error = ?6 WHERE id = ?1";

/// Columns of the public view, in the order [`crate::replica::ContactView`] reads them.
const VIEW_COLUMNS: &str = "SELECT contact_id, local_key, member_number, email, mobile_phone, \
     external_id, social_security_number, contact_type, first_name, last_name, attributes, \
     updated_at FROM contacts WHERE ";

/// Lookup statements by key column; most recently written first.
pub fn lookup_by(column: &str) -> String {
    format!("{VIEW_COLUMNS}{column} = ?1 ORDER BY updated_at DESC, contact_id LIMIT 50")
}

/// Contact count.
pub const COUNT_CONTACTS: &str = "SELECT count(*) FROM contact";

/// Latest run per command and outcome, for `status`.
pub const LAST_RUNS: &str = "SELECT command, outcome, started_at, finished_at, exit_code, \
     summary, error FROM run WHERE id IN (SELECT max(id) FROM run GROUP BY command, outcome) \
     ORDER BY command, outcome";
/// Runs that started and never finished (crashed, killed, or still running).
pub const UNFINISHED_RUNS: &str =
    "SELECT command, started_at FROM run WHERE outcome = 'running' ORDER BY id DESC LIMIT 10";
/// The most recent ledger rows.
pub const LEDGER_TAIL: &str = "SELECT name, export_timestamp, file_number, size, sha256, \
     members, inserted, updated, deleted, stale, applied_at FROM applied_file \
     ORDER BY applied_at DESC, export_timestamp DESC, file_number DESC LIMIT ?1";
/// Export timestamps with their file numbers, newest first, for the gap report.
pub const RECENT_EXPORTS: &str = "SELECT export_timestamp, group_concat(file_number) FROM \
     (SELECT export_timestamp, file_number FROM applied_file ORDER BY file_number) \
     GROUP BY export_timestamp ORDER BY export_timestamp DESC LIMIT ?1";
/// Quarantined files, newest first.
pub const QUARANTINE_TAIL: &str = "SELECT name, moved_to, reason, quarantined_at FROM \
     quarantined_file ORDER BY id DESC LIMIT ?1";
/// Tombstone count.
pub const COUNT_TOMBSTONES: &str = "SELECT count(*) FROM tombstone";
/// Applied file count.
pub const COUNT_APPLIED_FILES: &str = "SELECT count(*) FROM applied_file";

/// Finished runs older than a cutoff (purge).
pub const PURGE_RUNS: &str = "DELETE FROM run WHERE outcome != 'running' AND finished_at < ?1";
/// Counting the same, for dry runs.
pub const COUNT_PURGE_RUNS: &str =
    "SELECT count(*) FROM run WHERE outcome != 'running' AND finished_at < ?1";
/// Quarantine records older than a cutoff (the files go with them).
pub const PURGE_QUARANTINE_RECORDS: &str = "DELETE FROM quarantined_file WHERE quarantined_at < ?1";
/// Counting the same, for dry runs.
pub const COUNT_PURGE_QUARANTINE_RECORDS: &str =
    "SELECT count(*) FROM quarantined_file WHERE quarantined_at < ?1";
