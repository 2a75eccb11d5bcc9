//! Every SQL statement of the replica, in one place.

/// Row id of an Engage contact (answered from the contact-id index alone).
pub const FIND_CONTACT_ID: &str = "SELECT id FROM contact WHERE contact_id = ?1";
/// Current stored version and keys of a contact row (the keys decide which indexes an update
/// must touch).
pub const FIND_CONTACT_BY_ROW: &str = "SELECT version, member_number, email, mobile_phone, \
     external_id, social_security_number FROM contact WHERE id = ?1";
/// Whether any tombstone exists (an empty table lets imports skip a lookup per contact).
pub const ANY_TOMBSTONE: &str = "SELECT EXISTS (SELECT 1 FROM tombstone)";
/// Version of a contact's tombstone.
pub const FIND_TOMBSTONE: &str = "SELECT version FROM tombstone WHERE contact_id = ?1";
/// A new Engage contact; ?13 is the transaction's change number (created and changed).
pub const INSERT_CONTACT: &str = "INSERT INTO contact (contact_id, member_number, email, \
     mobile_phone, external_id, social_security_number, contact_type, first_name, last_name, \
     attributes, version, updated_at, change_seq, created_seq) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)";
/// Hands out the next change number (one per writing transaction, `replica::change_seq`), and
/// whether the replica keeps the change log (a hub).
pub const NEXT_CHANGE_SEQ: &str =
    "UPDATE change_counter SET last = last + 1 WHERE id = 1 RETURNING last, logging";
/// A contact written (?2: its row id; NULL for a bulk load; ?3: 1 when the write created the
/// row) by transaction ?1, on a hub.
pub const LOG_CHANGE: &str = "INSERT INTO change_log (seq, row, inserted) VALUES (?1, ?2, ?3)";
/// The indexed key columns an update may change, in the order of [`update_contact`]'s
/// parameters ?9.. .
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
/// ?5 attributes, ?6 version, ?7 updated_at, ?8 change number, ?9.. the changed keys in
/// column order.
pub fn update_contact(changed: u8) -> String {
    let mut sql = String::from(
        "UPDATE contact SET contact_type = ?2, first_name = ?3, last_name = ?4, \
         attributes = ?5, version = ?6, updated_at = ?7, change_seq = ?8",
    );
    let mut param = 9;
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
/// Records or advances a tombstone; ?4 is the change number.
pub const UPSERT_TOMBSTONE: &str = "INSERT INTO tombstone (contact_id, version, deleted_at, \
     change_seq) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(contact_id) DO UPDATE SET \
     version = excluded.version, deleted_at = excluded.deleted_at, \
     change_seq = excluded.change_seq WHERE excluded.version >= tombstone.version";
/// Removes a tombstone when newer data brings the contact back.
pub const DELETE_TOMBSTONE: &str = "DELETE FROM tombstone WHERE contact_id = ?1";

/// Hash of an applied file, by name.
pub const APPLIED_FILE_HASH: &str = "SELECT sha256 FROM applied_file WHERE name = ?1";
/// Size and hash of an applied file (`delta` from SFTP: what not to download again).
pub const APPLIED_FILE_SIZE_HASH: &str = "SELECT size, sha256 FROM applied_file WHERE name = ?1";
/// Every quarantined file's destination (purge).
pub const QUARANTINE_TARGETS: &str =
    "SELECT DISTINCT moved_to FROM quarantined_file WHERE moved_to IS NOT NULL";
/// Where the latest quarantined file of a name went (`delta` from SFTP).
pub const LAST_QUARANTINE_OF_NAME: &str =
    "SELECT moved_to FROM quarantined_file WHERE name = ?1 ORDER BY id DESC LIMIT 1";
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

/// Runs of the replica's jobs and the till store's (`push-local`), for `status` (a reader
/// with the till store attached as `till`).
const ALL_RUNS: &str = "(SELECT id, command, outcome, started_at, finished_at, exit_code, \
     summary, error FROM main.run UNION ALL SELECT id, command, outcome, started_at, \
     finished_at, exit_code, summary, error FROM till.run)";
/// Latest run per command and outcome, for `status`.
pub fn last_runs() -> String {
    format!(
        "SELECT command, outcome, started_at, finished_at, exit_code, summary, error FROM \
         (SELECT *, row_number() OVER (PARTITION BY command, outcome \
                                       ORDER BY started_at DESC, id DESC) AS n \
          FROM {ALL_RUNS}) WHERE n = 1 ORDER BY command, outcome"
    )
}
/// Runs that started and never finished (crashed, killed, or still running).
pub fn unfinished_runs() -> String {
    format!(
        "SELECT command, started_at FROM {ALL_RUNS} WHERE outcome = 'running' \
         ORDER BY started_at DESC LIMIT 10"
    )
}
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

/// Finished runs older than a cutoff (purge), but the latest of each command and outcome
/// (no personal data): `status --check` keeps knowing the last successful sync after any purge.
pub const PURGE_RUNS: &str = "DELETE FROM run WHERE outcome != 'running' AND finished_at < ?1 \
     AND id NOT IN (SELECT max(id) FROM run WHERE outcome != 'running' GROUP BY command, outcome)";
/// Counting the same, for dry runs.
pub const COUNT_PURGE_RUNS: &str =
    "SELECT count(*) FROM run WHERE outcome != 'running' AND finished_at < ?1 \
     AND id NOT IN (SELECT max(id) FROM run WHERE outcome != 'running' GROUP BY command, outcome)";
/// Quarantine records older than a cutoff (the files go with them).
pub const PURGE_QUARANTINE_RECORDS: &str = "DELETE FROM quarantined_file WHERE quarantined_at < ?1";
/// Counting the same, for dry runs.
pub const COUNT_PURGE_QUARANTINE_RECORDS: &str =
    "SELECT count(*) FROM quarantined_file WHERE quarantined_at < ?1";

/// Reads a meta value.
pub const GET_META: &str = "SELECT value FROM meta WHERE key = ?1";
/// Writes a meta value.
pub const SET_META: &str = "INSERT INTO meta (key, value) VALUES (?1, ?2) \
     ON CONFLICT(key) DO UPDATE SET value = excluded.value";

/// Merging a live replica (attached as `live`) into a newly built one (`main`) before the
/// swap: what changed in the live replica after the build's snapshot (?1, ms) wins where it is
/// newer; ?2 is 1 when the new replica keeps personal fields (full mode), else 0.
///
/// The live rows a merge can need (newer than the snapshot) are listed once by reading the live table in row order (`NOT INDEXED`); the statements after it
/// start from that list (`CROSS JOIN` and `MATERIALIZED` keep SQLite's planner, which has no
/// statistics, from starting anywhere else). Left to itself, SQLite walked one replica's
/// contact-id index and read the other's rows at random: 4.2 s and 5.4 s for two statements on
/// two 1,000,000-contact replicas; a table scan per statement took 0.4-0.7 s each in full mode.
pub const MERGE_LIST_LIVE_ROWS: &str = "INSERT INTO temp.merge_live \
     SELECT rowid FROM live.contact NOT INDEXED \
     WHERE version > ?1";
/// The (empty) list for [`MERGE_LIST_LIVE_ROWS`].
pub const MERGE_CREATE_LIVE_ROWS: &str = "DROP TABLE IF EXISTS temp.merge_live; \
     CREATE TEMP TABLE merge_live (id INTEGER PRIMARY KEY)";
/// Drops the list of [`MERGE_LIST_LIVE_ROWS`].
pub const MERGE_DROP_LIVE_ROWS: &str = "DROP TABLE IF EXISTS temp.merge_live";
/// Live contacts newer than the snapshot and than the build's row replace it (?3: the
/// merge's change number).
pub const MERGE_UPDATE_NEWER: &str = "WITH k AS MATERIALIZED (\
       SELECT r.id, c.contact_id, c.version FROM temp.merge_live AS r \
       CROSS JOIN live.contact AS c ON c.rowid = r.id \
       WHERE c.version > ?1 AND c.contact_id IS NOT NULL) \
     UPDATE main.contact AS m SET \
     member_number = l.member_number, email = l.email, mobile_phone = l.mobile_phone, \
     external_id = l.external_id, social_security_number = l.social_security_number, \
     contact_type = l.contact_type, \
     first_name = CASE WHEN ?2 THEN l.first_name END, \
     last_name = CASE WHEN ?2 THEN l.last_name END, \
     attributes = CASE WHEN ?2 THEN l.attributes END, \
     version = l.version, updated_at = l.updated_at, change_seq = ?3 \
     FROM k JOIN live.contact AS l ON l.rowid = k.id \
     WHERE k.contact_id = m.contact_id AND k.version > m.version";
/// Contacts the build lacks: created after the snapshot (?3: the merge's change number).
pub const MERGE_INSERT_MISSING: &str = "INSERT INTO main.contact (contact_id, member_number, \
     email, mobile_phone, external_id, social_security_number, contact_type, first_name, \
     last_name, attributes, version, updated_at, change_seq, created_seq) \
     SELECT l.contact_id, l.member_number, l.email, l.mobile_phone, l.external_id, \
     l.social_security_number, l.contact_type, CASE WHEN ?2 THEN l.first_name END, \
     CASE WHEN ?2 THEN l.last_name END, CASE WHEN ?2 THEN l.attributes END, l.version, \
     l.updated_at, ?3, ?3 FROM temp.merge_live AS r CROSS JOIN live.contact AS l ON l.rowid = r.id \
     WHERE l.contact_id IS NOT NULL AND l.version > ?1 \
       AND NOT EXISTS (SELECT 1 FROM main.contact m WHERE m.contact_id = l.contact_id) \
       AND NOT EXISTS (SELECT 1 FROM main.tombstone t WHERE t.contact_id = l.contact_id \
                       AND t.version > l.version) \
     ORDER BY r.id";
/// Deletes seen by the live replica after the snapshot.
pub const MERGE_DELETE_NEWER: &str = "DELETE FROM main.contact WHERE contact_id IN \
     (SELECT t.contact_id FROM live.tombstone t JOIN main.contact m \
      ON m.contact_id = t.contact_id WHERE t.version > ?1 AND t.version >= m.version)";
/// Their tombstones (?2: the merge's change number).
pub const MERGE_TOMBSTONES: &str = "INSERT INTO main.tombstone (contact_id, version, \
     deleted_at, change_seq) \
     SELECT t.contact_id, t.version, t.deleted_at, ?2 FROM live.tombstone t WHERE t.version > ?1 \
     AND NOT EXISTS (SELECT 1 FROM main.contact m WHERE m.contact_id = t.contact_id \
                     AND m.version > t.version) \
     ON CONFLICT(contact_id) DO UPDATE SET version = excluded.version, \
     deleted_at = excluded.deleted_at, change_seq = excluded.change_seq \
     WHERE excluded.version > tombstone.version";
/// History: runs, quarantine records, the file ledger (so re-delivered files are known) and
/// the folders used (so purge keeps covering them).
/// A build records no runs or quarantined files of its own, so what it holds is a previous
/// merge's copy: replaced, so that merging again after a crash duplicates nothing.
pub const MERGE_HISTORY: &str = "\
     DELETE FROM main.run; DELETE FROM main.quarantined_file; \
     INSERT INTO main.run (command, started_at, finished_at, outcome, exit_code, summary, error) \
       SELECT command, started_at, finished_at, outcome, exit_code, summary, error \
       FROM live.run ORDER BY id; \
     INSERT INTO main.quarantined_file (name, moved_to, reason, quarantined_at) \
       SELECT name, moved_to, reason, quarantined_at FROM live.quarantined_file ORDER BY id; \
     INSERT OR IGNORE INTO main.applied_file SELECT * FROM live.applied_file; \
     DELETE FROM main.used_folder; \
     INSERT INTO main.used_folder SELECT * FROM live.used_folder;";

/// The live replica's last change number (a merge continues above it) and whether it keeps
/// the change log (a hub).
pub const LIVE_CHANGE_SEQ: &str = "SELECT last, logging FROM live.change_counter WHERE id = 1";
/// Sets the build's counter to a merge's number (?1) and the live replica's logging (?2); the
/// build's cursor stays 0 and its log empty: its first publication reads the whole table.
pub const SET_CHANGE_SEQ: &str =
    "UPDATE main.change_counter SET last = ?1, logging = ?2 WHERE id = 1";
/// A hub's publications come over into a build (replacing a previous merge's copy).
pub const MERGE_PUBLICATIONS: &str = "DELETE FROM main.publication; \
     INSERT INTO main.publication SELECT * FROM live.publication ORDER BY id;";
/// Whether the replica (`main`) has published.
pub const ANY_PUBLICATION: &str = "SELECT EXISTS (SELECT 1 FROM main.publication)";
/// Tombstones (?1 the snapshot's version, ?2 now, ?3 the merge's change number) for the live
/// replica's contacts that the build has neither as a row nor as a tombstone.
pub const MERGE_VANISHED: &str = "INSERT INTO main.tombstone (contact_id, version, \
     deleted_at, change_seq) \
     SELECT l.contact_id, ?1, ?2, ?3 FROM live.contact AS l NOT INDEXED \
     WHERE l.contact_id IS NOT NULL \
       AND NOT EXISTS (SELECT 1 FROM main.contact m WHERE m.contact_id = l.contact_id) \
       AND NOT EXISTS (SELECT 1 FROM main.tombstone t WHERE t.contact_id = l.contact_id)";

/// A sync cursor (where `changes` continues).
pub const GET_CURSOR: &str = "SELECT position FROM sync_cursor WHERE name = ?1";
/// Sets a sync cursor; call in the transaction that applied the data up to it.
pub const SET_CURSOR: &str = "INSERT INTO sync_cursor (name, position, updated_at) \
     VALUES (?1, ?2, ?3) ON CONFLICT(name) DO UPDATE SET position = excluded.position, \
     updated_at = excluded.updated_at";
/// Carries the live replica's cursors into a build (the later position wins).
pub const MERGE_CURSORS: &str = "INSERT INTO main.sync_cursor (name, position, updated_at) \
     SELECT name, position, updated_at FROM live.sync_cursor WHERE true \
     ON CONFLICT(name) DO UPDATE SET position = excluded.position, \
     updated_at = excluded.updated_at WHERE excluded.position > sync_cursor.position";
/// Ids still to fetch in an API build.
pub const PENDING_BATCH: &str = "SELECT contact_id FROM full_pending LIMIT ?1";
/// Queues an id for an API build.
pub const INSERT_PENDING: &str = "INSERT OR IGNORE INTO full_pending (contact_id) VALUES (?1)";
/// One id fetched.
pub const DELETE_PENDING: &str = "DELETE FROM full_pending WHERE contact_id = ?1";
/// How many ids are left.
pub const COUNT_PENDING: &str = "SELECT count(*) FROM full_pending";

// A `full` build from XML loads its contacts without secondary indexes (src/replica/bulk.rs).

/// The contact table's indexes, as created by the migrations (name and SQL), in creation
/// order.
pub const CONTACT_INDEXES: &str = "SELECT name, sql FROM sqlite_master \
     WHERE type = 'index' AND tbl_name = 'contact' AND sql IS NOT NULL ORDER BY rowid";
/// Deletes read during a bulk load, applied when the load is finished. `after` is the
/// greatest contact row id at the time of the delete: rows up to it came before it.
pub const CREATE_BULK_DELETE: &str = "CREATE TABLE IF NOT EXISTS bulk_delete (\
     seq INTEGER PRIMARY KEY, contact_id TEXT NOT NULL, version INTEGER NOT NULL, \
     after INTEGER NOT NULL)";
/// A delete read during a bulk load.
pub const INSERT_BULK_DELETE: &str =
    "INSERT INTO bulk_delete (contact_id, version, after) VALUES (?1, ?2, ?3)";
/// The deletes of a bulk load, grouped by contact, in the order the version rule ranks them.
pub const BULK_DELETES: &str =
    "SELECT contact_id, version, after FROM bulk_delete ORDER BY contact_id, version, after";
/// Drops the table once the deletes are applied.
pub const DROP_BULK_DELETE: &str = "DROP TABLE IF EXISTS bulk_delete";
/// The greatest contact row id.
pub const MAX_CONTACT_ROW: &str = "SELECT coalesce(max(id), 0) FROM contact";
/// Keeps, of the rows a bulk load gave one contact, only the one the version rule lets win:
/// the highest version, and of equal versions the later row.
pub const BULK_DROP_SUPERSEDED: &str = "DELETE FROM contact WHERE id IN (SELECT id FROM \
     (SELECT id, row_number() OVER (PARTITION BY contact_id ORDER BY version DESC, id DESC) \
      AS n FROM contact WHERE contact_id IS NOT NULL) WHERE n > 1)";
/// A contact's row and version (a bulk load's delete compares against it).
pub const ROW_AND_VERSION_OF_CONTACT: &str =
    "SELECT id, version FROM contact WHERE contact_id = ?1";
/// Forgets a finished bulk load's state.
pub const DELETE_BULK_META: &str = "DELETE FROM meta WHERE key IN (?1, ?2)";
/// True when the replica holds no contact with an Engage id and no tombstone (contacts
/// registered at the till may exist).
pub const NOTHING_FROM_ENGAGE: &str = "SELECT NOT EXISTS (SELECT 1 FROM contact \
     WHERE contact_id IS NOT NULL) AND NOT EXISTS (SELECT 1 FROM tombstone)";

/// Re-normalising stored keys (rekey.rs): the marker the migration leaves, every row's keys
/// and its stored attributes (the source of `mobilePhone` as Engage sent it, in full mode).
pub const REKEY_PENDING: &str = "SELECT value FROM meta WHERE key = 'rekey'";
pub const REKEY_DONE: &str = "DELETE FROM meta WHERE key = 'rekey'";
pub const REKEY_ROWS: &str = "SELECT id, mobile_phone, email, member_number, external_id, \
     social_security_number, json_extract(attributes, '$.mobilePhone') FROM contact";
pub const REKEY_UPDATE: &str = "UPDATE contact SET mobile_phone = ?2, email = ?3, \
     member_number = ?4, external_id = ?5, social_security_number = ?6 WHERE id = ?1";
