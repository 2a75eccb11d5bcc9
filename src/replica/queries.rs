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
/// Size and hash of an applied file (`delta` from SFTP: what not to download again).
pub const APPLIED_FILE_SIZE_HASH: &str = "SELECT size, sha256 FROM applied_file WHERE name = ?1";
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

/// Reads a meta value.
pub const GET_META: &str = "SELECT value FROM meta WHERE key = ?1";
/// Writes a meta value.
pub const SET_META: &str = "INSERT INTO meta (key, value) VALUES (?1, ?2) \
     ON CONFLICT(key) DO UPDATE SET value = excluded.value";

/// Merging a live replica (attached as `live`) into a newly built one (`main`) before the
/// swap: what changed in the live replica after the build's snapshot (?1, ms) wins where it is
/// newer; ?2 is 1 when the new replica keeps personal fields (full mode), else 0.
///
/// The live rows a merge can need (newer than the snapshot, local, or with a local key) are
/// listed once by reading the live table in row order (`NOT INDEXED`); the statements after it
/// start from that list (`CROSS JOIN` and `MATERIALIZED` keep SQLite's planner, which has no
/// statistics, from starting anywhere else). Left to itself, SQLite walked one replica's
/// contact-id index and read the other's rows at random: 4.2 s and 5.4 s for two statements on
/// two 1,000,000-contact replicas; a table scan per statement took 0.4-0.7 s each in full mode.
/// Till writes wait for the merge (`replica::handover`).
pub const MERGE_LIST_LIVE_ROWS: &str = "INSERT INTO temp.merge_live \
     SELECT rowid FROM live.contact NOT INDEXED \
     WHERE version > ?1 OR contact_id IS NULL OR local_key IS NOT NULL";
/// The (empty) list for [`MERGE_LIST_LIVE_ROWS`].
pub const MERGE_CREATE_LIVE_ROWS: &str = "DROP TABLE IF EXISTS temp.merge_live; \
     CREATE TEMP TABLE merge_live (id INTEGER PRIMARY KEY)";
/// Drops the list of [`MERGE_LIST_LIVE_ROWS`].
pub const MERGE_DROP_LIVE_ROWS: &str = "DROP TABLE IF EXISTS temp.merge_live";
/// Live contacts newer than the snapshot and than the build's row replace it.
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
     version = l.version, updated_at = l.updated_at \
     FROM k JOIN live.contact AS l ON l.rowid = k.id \
     WHERE k.contact_id = m.contact_id AND k.version > m.version";
/// Contacts the build lacks: created after the snapshot, or registered locally and not yet
/// known to Engage (no contact_id).
pub const MERGE_INSERT_MISSING: &str = "INSERT INTO main.contact (contact_id, local_key, \
     member_number, email, mobile_phone, external_id, social_security_number, contact_type, \
     first_name, last_name, attributes, version, updated_at) \
     SELECT l.contact_id, l.local_key, l.member_number, l.email, l.mobile_phone, l.external_id, \
     l.social_security_number, l.contact_type, CASE WHEN ?2 THEN l.first_name END, \
     CASE WHEN ?2 THEN l.last_name END, CASE WHEN ?2 THEN l.attributes END, l.version, \
     l.updated_at FROM temp.merge_live AS r CROSS JOIN live.contact AS l ON l.rowid = r.id \
     WHERE l.contact_id IS NULL OR (l.version > ?1 \
       AND NOT EXISTS (SELECT 1 FROM main.contact m WHERE m.contact_id = l.contact_id) \
       AND NOT EXISTS (SELECT 1 FROM main.tombstone t WHERE t.contact_id = l.contact_id \
                       AND t.version > l.version)) \
     ORDER BY r.id";
/// Local contacts a previous merge into this build copied (a build itself only holds contacts
/// with an Engage id): a merge run again after a crash copies them afresh from the live replica.
pub const MERGE_DROP_LOCAL_ONLY: &str = "DELETE FROM main.contact WHERE contact_id IS NULL";
/// Local keys of contacts Engage knows, so lookups by local key keep working.
pub const MERGE_LOCAL_KEYS: &str = "WITH k AS MATERIALIZED (\
       SELECT c.contact_id, c.local_key FROM temp.merge_live AS r \
       CROSS JOIN live.contact AS c ON c.rowid = r.id \
       WHERE c.local_key IS NOT NULL AND c.contact_id IS NOT NULL) \
     UPDATE main.contact AS m SET local_key = k.local_key \
     FROM k WHERE k.contact_id = m.contact_id AND m.local_key IS NULL";
/// Deletes seen by the live replica after the snapshot.
pub const MERGE_DELETE_NEWER: &str = "DELETE FROM main.contact WHERE contact_id IN \
     (SELECT t.contact_id FROM live.tombstone t JOIN main.contact m \
      ON m.contact_id = t.contact_id WHERE t.version > ?1 AND t.version >= m.version)";
/// Their tombstones.
pub const MERGE_TOMBSTONES: &str = "INSERT INTO main.tombstone (contact_id, version, deleted_at) \
     SELECT t.contact_id, t.version, t.deleted_at FROM live.tombstone t WHERE t.version > ?1 \
     AND NOT EXISTS (SELECT 1 FROM main.contact m WHERE m.contact_id = t.contact_id \
                     AND m.version > t.version) \
     ON CONFLICT(contact_id) DO UPDATE SET version = excluded.version, \
     deleted_at = excluded.deleted_at WHERE excluded.version > tombstone.version";
/// History: runs, quarantine records and the file ledger (so re-delivered files are known).
/// A build records no runs or quarantined files of its own, so what it holds is a previous
/// merge's copy: replaced, so that merging again after a crash duplicates nothing.
pub const MERGE_HISTORY: &str = "\
     DELETE FROM main.run; DELETE FROM main.quarantined_file; \
     INSERT INTO main.run (command, started_at, finished_at, outcome, exit_code, summary, error) \
       SELECT command, started_at, finished_at, outcome, exit_code, summary, error \
       FROM live.run ORDER BY id; \
     INSERT INTO main.quarantined_file (name, moved_to, reason, quarantined_at) \
       SELECT name, moved_to, reason, quarantined_at FROM live.quarantined_file ORDER BY id; \
     INSERT OR IGNORE INTO main.applied_file SELECT * FROM live.applied_file;";

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

// Outboxes (src/outbox/): contacts and receipts registered at the till, and local keys.

/// The next number of a local key prefix (never decreases; never purged).
pub const NEXT_LOCAL_KEY_NUMBER: &str = "INSERT INTO local_key_seq (prefix, last) VALUES (?1, 1) \
     ON CONFLICT(prefix) DO UPDATE SET last = last + 1 RETURNING last";
/// Whether a local key is in use anywhere (a contact, a link, an outbox item).
pub const LOCAL_KEY_IN_USE: &str = "SELECT EXISTS (SELECT 1 FROM contact WHERE local_key = ?1) \
     OR EXISTS (SELECT 1 FROM local_key_link WHERE local_key = ?1) \
     OR EXISTS (SELECT 1 FROM contact_outbox WHERE local_key = ?1)";
/// A contact registered at the till (no contact_id yet).
pub const INSERT_LOCAL_CONTACT: &str = "INSERT INTO contact (local_key, member_number, email, \
     mobile_phone, external_id, social_security_number, contact_type, first_name, last_name, \
     attributes, version, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
/// Columns of a contact row as the outbox reads it (see `outbox::local::StoredContact`).
const OUTBOX_CONTACT_COLUMNS: &str = "SELECT id, contact_id, local_key, member_number, email, \
     mobile_phone, external_id, social_security_number, contact_type, attributes, version \
     FROM contact WHERE ";
/// Contact rows by one key column (`column` is one of the fixed lookup columns).
pub fn outbox_contacts_by(column: &str) -> String {
    format!("{OUTBOX_CONTACT_COLUMNS}{column} = ?1 ORDER BY id LIMIT 50")
}
/// Rewrites a contact's data after a change at the till.
pub const UPDATE_CONTACT_AT_TILL: &str = "UPDATE contact SET member_number = ?2, email = ?3, \
     mobile_phone = ?4, external_id = ?5, social_security_number = ?6, contact_type = ?7, \
     first_name = ?8, last_name = ?9, attributes = ?10, version = ?11, updated_at = ?12 \
     WHERE id = ?1";
/// Records local key → contact id (the first link wins; ids only).
pub const INSERT_LOCAL_KEY_LINK: &str = "INSERT INTO local_key_link (local_key, contact_id, \
     linked_at) VALUES (?1, ?2, ?3) ON CONFLICT(local_key) DO NOTHING";
/// The contact id a local key was linked to.
pub const LINKED_CONTACT_ID: &str = "SELECT contact_id FROM local_key_link WHERE local_key = ?1";
/// The row holding a contact id, and its local key.
pub const ROW_FOR_CONTACT_ID: &str = "SELECT id, local_key FROM contact WHERE contact_id = ?1";
/// Removes a local row whose contact arrived from Engage as its own row meanwhile.
pub const DELETE_UNLINKED_LOCAL_ROW: &str =
    "DELETE FROM contact WHERE local_key = ?1 AND contact_id IS NULL";
/// Puts a local key on Engage's row of the same contact.
pub const SET_LOCAL_KEY_ON_ROW: &str =
    "UPDATE contact SET local_key = ?2 WHERE id = ?1 AND local_key IS NULL";
/// Links a local row to its Engage id. ?3 = 1 resets the version so Engage's data wins at the
/// next import (the contact existed in Engage before; its data there is the master).
pub const LINK_LOCAL_ROW: &str = "UPDATE contact SET contact_id = ?2, \
     attributes = CASE WHEN attributes IS NULL THEN NULL \
       ELSE json_set(attributes, '$.contactId', ?2) END, \
     version = CASE WHEN ?3 THEN 0 ELSE version END, updated_at = ?4 \
     WHERE local_key = ?1 AND contact_id IS NULL";
/// Whether a contact id has a tombstone (deleted in Engage).
pub const IS_TOMBSTONED: &str = "SELECT EXISTS (SELECT 1 FROM tombstone WHERE contact_id = ?1)";
/// Whether a live row holds a contact id.
pub const IS_LIVE_CONTACT: &str = "SELECT EXISTS (SELECT 1 FROM contact WHERE contact_id = ?1)";

/// Columns of a contact outbox item (see `outbox::store::ContactItem`).
const CONTACT_ITEM_COLUMNS: &str = "SELECT id, op, local_key, contact_id, fields, state, \
     attempts, batch_id, sent_at, reason FROM contact_outbox";
/// Queues a contact create or update.
pub const INSERT_CONTACT_ITEM: &str = "INSERT INTO contact_outbox (op, local_key, contact_id, \
     fields, state, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5)";
/// The newest create of a local contact.
pub fn create_item_for_local_key() -> String {
    format!(
        "{CONTACT_ITEM_COLUMNS} WHERE op = 'create' AND local_key = ?1 ORDER BY id DESC LIMIT 1"
    )
}
/// A pending update of a contact (by id) not yet sent.
pub fn pending_update_for_contact_id() -> String {
    format!(
        "{CONTACT_ITEM_COLUMNS} WHERE op = 'update' AND state = 'pending' AND contact_id = ?1 \
         ORDER BY id DESC LIMIT 1"
    )
}
/// A pending update of a local contact (by local key, not yet resolved) not yet sent.
pub fn pending_update_for_local_key() -> String {
    format!(
        "{CONTACT_ITEM_COLUMNS} WHERE op = 'update' AND state = 'pending' AND local_key = ?1 \
         AND contact_id IS NULL ORDER BY id DESC LIMIT 1"
    )
}
/// Pending items of one op after an id, in queue order.
pub fn pending_contact_items() -> String {
    format!("{CONTACT_ITEM_COLUMNS} WHERE state = 'pending' AND op = ?1 AND id > ?2 ORDER BY id LIMIT ?3")
}
/// Items in flight (claimed or sent, outcome not recorded).
pub fn in_flight_contact_items() -> String {
    format!("{CONTACT_ITEM_COLUMNS} WHERE state = 'in_flight' ORDER BY id")
}
/// Items of a batch still waiting for its outcome, in the order they were sent.
pub fn contact_items_of_batch() -> String {
    format!("{CONTACT_ITEM_COLUMNS} WHERE batch_id = ?1 AND state = 'in_flight' ORDER BY id")
}
/// Merges new fields into a queued item; a rejected create becomes pending again.
pub const MERGE_CONTACT_ITEM: &str = "UPDATE contact_outbox SET fields = ?2, updated_at = ?3, \
     state = CASE WHEN state = 'rejected' THEN 'pending' ELSE state END, \
     reason = CASE WHEN state = 'rejected' THEN NULL ELSE reason END, \
     finished_at = CASE WHEN state = 'rejected' THEN NULL ELSE finished_at END \
     WHERE id = ?1";
/// Claims a pending item for this run (?3: the target contact id, for updates).
pub const CLAIM_CONTACT_ITEM: &str = "UPDATE contact_outbox SET state = 'in_flight', \
     attempts = attempts + 1, batch_id = NULL, sent_at = NULL, updated_at = ?2, \
     contact_id = COALESCE(?3, contact_id) WHERE id = ?1 AND state = 'pending'";
/// The request carrying the item is about to leave.
pub const MARK_CONTACT_ITEM_SENT: &str =
    "UPDATE contact_outbox SET sent_at = ?2, updated_at = ?2 WHERE id = ?1";
/// The batch the item went in (stored before the status is polled).
pub const SET_CONTACT_ITEM_BATCH: &str =
    "UPDATE contact_outbox SET batch_id = ?2, updated_at = ?3 WHERE id = ?1";
/// The batch's answer could not be related to the item: check it by key later.
pub const FORGET_CONTACT_ITEM_BATCH: &str =
    "UPDATE contact_outbox SET batch_id = NULL, updated_at = ?2 WHERE id = ?1";
/// Final state of an item (delivered, rejected, dropped).
pub const FINISH_CONTACT_ITEM: &str = "UPDATE contact_outbox SET state = ?2, outcome = ?3, \
     reason = ?4, contact_id = COALESCE(?5, contact_id), finished_at = ?6, updated_at = ?6 \
     WHERE id = ?1";
/// Back to pending after a transient failure (?3 = 1: it was never sent, so the attempt does
/// not count).
pub const CONTACT_ITEM_TO_PENDING: &str = "UPDATE contact_outbox SET state = 'pending', \
     reason = ?2, batch_id = NULL, sent_at = NULL, \
     attempts = CASE WHEN ?3 THEN max(attempts - 1, 0) ELSE attempts END, updated_at = ?4 \
     WHERE id = ?1";
/// A pending item's reason for waiting.
pub const SET_CONTACT_ITEM_REASON: &str =
    "UPDATE contact_outbox SET reason = ?2 WHERE id = ?1 AND reason IS NOT ?2";
/// Rejected items back to pending (`push-local --retry-rejected`).
pub const RETRY_REJECTED_CONTACTS: &str = "UPDATE contact_outbox SET state = 'pending', \
     reason = NULL, finished_at = NULL, updated_at = ?1 WHERE state = 'rejected'";
/// A bulk batch Engage accepted.
pub const INSERT_OUTBOX_BATCH: &str = "INSERT INTO outbox_batch (batch_id, op, items, state, \
     sent_at) VALUES (?1, ?2, ?3, 'sent', ?4)";
/// Batches whose outcome is not recorded yet.
pub const OPEN_OUTBOX_BATCHES: &str =
    "SELECT batch_id, op FROM outbox_batch WHERE state = 'sent' ORDER BY sent_at";
/// One status poll made.
pub const COUNT_BATCH_POLL: &str = "UPDATE outbox_batch SET polls = polls + 1 WHERE batch_id = ?1";
/// A batch's outcome is recorded (completed, failed, lost).
pub const FINISH_OUTBOX_BATCH: &str =
    "UPDATE outbox_batch SET state = ?2, finished_at = ?3 WHERE batch_id = ?1";

/// Columns of a receipt outbox item (see `outbox::store::ReceiptItem`).
const RECEIPT_ITEM_COLUMNS: &str = "SELECT id, unique_receipt_id, body, ref_type, ref_value, \
     state, attempts, reason FROM receipt_outbox";
/// A buffered receipt by its id.
pub fn receipt_by_unique_id() -> String {
    format!("{RECEIPT_ITEM_COLUMNS} WHERE unique_receipt_id = ?1")
}
/// Buffers a receipt.
pub const INSERT_RECEIPT_ITEM: &str = "INSERT INTO receipt_outbox (unique_receipt_id, body, \
     ref_type, ref_value, state, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5)";
/// Pending receipts after an id, in queue order.
pub fn pending_receipt_items() -> String {
    format!("{RECEIPT_ITEM_COLUMNS} WHERE state = 'pending' AND id > ?1 ORDER BY id LIMIT ?2")
}
/// Claims a pending receipt and records the key it is sent with.
pub const CLAIM_RECEIPT_ITEM: &str = "UPDATE receipt_outbox SET state = 'in_flight', \
     attempts = attempts + 1, sent_key_type = ?2, sent_key = ?3, sent_at = ?4, updated_at = ?4 \
     WHERE id = ?1 AND state = 'pending'";
/// Final state of a receipt.
pub const FINISH_RECEIPT_ITEM: &str = "UPDATE receipt_outbox SET state = ?2, outcome = ?3, \
     reason = ?4, finished_at = ?5, updated_at = ?5 WHERE id = ?1";
/// Back to pending (?3 = 1: never sent, the attempt does not count).
pub const RECEIPT_ITEM_TO_PENDING: &str = "UPDATE receipt_outbox SET state = 'pending', \
     reason = ?2, attempts = CASE WHEN ?3 THEN max(attempts - 1, 0) ELSE attempts END, \
     updated_at = ?4 WHERE id = ?1";
/// Receipts left in flight by an earlier run: re-posting is harmless (uniqueReceiptId).
pub const IN_FLIGHT_RECEIPTS_TO_PENDING: &str = "UPDATE receipt_outbox SET state = 'pending', \
     reason = 'sent by an earlier run that ended before the answer was recorded; sent again \
     (Engage ignores a receipt it already has)', updated_at = ?1 WHERE state = 'in_flight'";
/// A pending receipt's reason for waiting.
pub const SET_RECEIPT_ITEM_REASON: &str =
    "UPDATE receipt_outbox SET reason = ?2 WHERE id = ?1 AND reason IS NOT ?2";
/// Rejected receipts back to pending (`push-local --retry-rejected`).
pub const RETRY_REJECTED_RECEIPTS: &str = "UPDATE receipt_outbox SET state = 'pending', \
     reason = NULL, finished_at = NULL, updated_at = ?1 WHERE state = 'rejected'";

/// Outbox depth per kind, op and state, with the oldest item's queue time.
pub const OUTBOX_DEPTH: &str = "SELECT 'contact', op, state, count(*), min(created_at) \
     FROM contact_outbox GROUP BY op, state \
     UNION ALL SELECT 'receipt', 'post', state, count(*), min(created_at) FROM receipt_outbox \
     GROUP BY state ORDER BY 1, 2, 3";
/// Rejected and dropped items with their reason, newest first.
pub const OUTBOX_PROBLEMS: &str = "SELECT kind, op, item, state, reason, finished_at FROM (\
     SELECT 'contact' AS kind, op, coalesce(local_key, contact_id) AS item, state, reason, \
       finished_at FROM contact_outbox WHERE state IN ('rejected', 'dropped') \
     UNION ALL SELECT 'receipt', 'post', unique_receipt_id, state, reason, finished_at \
       FROM receipt_outbox WHERE state IN ('rejected', 'dropped')) \
     ORDER BY finished_at DESC LIMIT ?1";
/// Counts of pending and in-flight items, for the end of a push.
pub const OUTBOX_LEFT: &str = "SELECT \
     (SELECT count(*) FROM contact_outbox WHERE state IN ('pending', 'in_flight')), \
     (SELECT count(*) FROM receipt_outbox WHERE state IN ('pending', 'in_flight'))";

/// Finished contact items older than a cutoff (purge); never pending or in-flight ones.
pub const PURGE_CONTACT_OUTBOX: &str = "DELETE FROM contact_outbox WHERE state IN \
     ('delivered', 'rejected', 'dropped') AND finished_at < ?1";
/// Counting the same, for dry runs.
pub const COUNT_PURGE_CONTACT_OUTBOX: &str = "SELECT count(*) FROM contact_outbox WHERE state IN \
     ('delivered', 'rejected', 'dropped') AND finished_at < ?1";
/// Finished receipt items older than a cutoff (purge).
pub const PURGE_RECEIPT_OUTBOX: &str = "DELETE FROM receipt_outbox WHERE state IN \
     ('delivered', 'rejected', 'dropped') AND finished_at < ?1";
/// Counting the same, for dry runs.
pub const COUNT_PURGE_RECEIPT_OUTBOX: &str = "SELECT count(*) FROM receipt_outbox WHERE state IN \
     ('delivered', 'rejected', 'dropped') AND finished_at < ?1";
/// Finished batch records older than a cutoff (ids and counts only).
pub const PURGE_OUTBOX_BATCHES: &str =
    "DELETE FROM outbox_batch WHERE state != 'sent' AND finished_at < ?1";

/// Carries the outboxes, local key sequence and links into a `full` build before the swap. The
/// live replica's outboxes are the truth (a build never writes them): they replace whatever an
/// earlier merge into the same build copied, which a push or purge may have changed since.
pub const MERGE_OUTBOXES: &str = "\
     INSERT INTO main.local_key_seq (prefix, last) SELECT prefix, last FROM live.local_key_seq \
       WHERE true ON CONFLICT(prefix) DO UPDATE SET last = max(last, excluded.last); \
     DELETE FROM main.local_key_link; DELETE FROM main.contact_outbox; \
     DELETE FROM main.outbox_batch; DELETE FROM main.receipt_outbox; \
     INSERT INTO main.local_key_link SELECT * FROM live.local_key_link; \
     INSERT INTO main.contact_outbox SELECT * FROM live.contact_outbox; \
     INSERT INTO main.outbox_batch SELECT * FROM live.outbox_batch; \
     INSERT INTO main.receipt_outbox SELECT * FROM live.receipt_outbox;";

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
