//! Every SQL statement of the till store (and of the till's reads of the replica through the
//! `contacts` view), in one place. The till store is `main` on a till connection; unqualified
//! names resolve to it first, and `contact`/`tombstone` (the replica's, read-only) and
//! `contacts` (the view) are unique across the two files.

// Outboxes (src/outbox/): contacts and receipts registered at the till, and local keys.

/// The next number of a local key prefix (never decreases; never purged).
pub const NEXT_LOCAL_KEY_NUMBER: &str = "INSERT INTO local_key_seq (prefix, last) VALUES (?1, 1) \
     ON CONFLICT(prefix) DO UPDATE SET last = last + 1 RETURNING last";
/// Whether a local key is in use anywhere (a till contact, a link, an outbox item).
pub const LOCAL_KEY_IN_USE: &str =
    "SELECT EXISTS (SELECT 1 FROM till_contact WHERE local_key = ?1) \
     OR EXISTS (SELECT 1 FROM local_key_link WHERE local_key = ?1) \
     OR EXISTS (SELECT 1 FROM contact_outbox WHERE local_key = ?1)";
/// A contact registered at the till (no contact_id yet).
pub const INSERT_LOCAL_CONTACT: &str = "INSERT INTO till_contact (local_key, member_number, \
     email, mobile_phone, external_id, social_security_number, contact_type, first_name, \
     last_name, attributes, version, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
/// Columns of a contact as the outbox reads it, from the `contacts` view (what readers see;
/// see `outbox::local::StoredContact`).
const OUTBOX_CONTACT_COLUMNS: &str = "SELECT contact_id, local_key, member_number, email, \
     mobile_phone, external_id, social_security_number, contact_type, attributes \
     FROM contacts WHERE ";
/// Contacts by one key column (`column` is one of the fixed lookup columns).
pub fn outbox_contacts_by(column: &str) -> String {
    format!("{OUTBOX_CONTACT_COLUMNS}{column} = ?1 ORDER BY contact_id, local_key LIMIT 50")
}
/// The newest version any row of a contact has, in the replica or the till store: a change at
/// the till must be newer to be seen.
pub const CONTACT_VERSION: &str = "SELECT max(v) FROM (\
     SELECT version AS v FROM contact WHERE contact_id = ?1 \
     UNION ALL SELECT version FROM till_contact WHERE contact_id = ?1 \
     UNION ALL SELECT version FROM till_contact WHERE local_key = ?2)";
/// Rewrites the till's rows of an Engage contact after a change at the till.
pub const UPDATE_TILL_CONTACT_BY_ID: &str = "UPDATE till_contact SET member_number = ?2, \
     email = ?3, mobile_phone = ?4, external_id = ?5, social_security_number = ?6, \
     contact_type = ?7, first_name = ?8, last_name = ?9, attributes = ?10, version = ?11, \
     updated_at = ?12 WHERE contact_id = ?1";
/// Rewrites a local contact Engage does not know yet after a change at the till.
pub const UPDATE_TILL_CONTACT_BY_LOCAL_KEY: &str = "UPDATE till_contact SET member_number = ?2, \
     email = ?3, mobile_phone = ?4, external_id = ?5, social_security_number = ?6, \
     contact_type = ?7, first_name = ?8, last_name = ?9, attributes = ?10, version = ?11, \
     updated_at = ?12 WHERE local_key = ?1 AND contact_id IS NULL";
/// The till's first row of an Engage contact (changed at the till; ?2: its local key, if the
/// view showed one).
pub const INSERT_TILL_CONTACT: &str = "INSERT INTO till_contact (contact_id, local_key, \
     member_number, email, mobile_phone, external_id, social_security_number, contact_type, \
     first_name, last_name, attributes, version, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
/// Records local key → contact id (the first link wins; ids only).
pub const INSERT_LOCAL_KEY_LINK: &str = "INSERT INTO local_key_link (local_key, contact_id, \
     linked_at) VALUES (?1, ?2, ?3) ON CONFLICT(local_key) DO NOTHING";
/// The contact id a local key was linked to.
pub const LINKED_CONTACT_ID: &str = "SELECT contact_id FROM local_key_link WHERE local_key = ?1";
/// Removes a local contact Engage deleted before the link was made.
pub const DELETE_UNLINKED_LOCAL_ROW: &str =
    "DELETE FROM till_contact WHERE local_key = ?1 AND contact_id IS NULL";
/// Links a local contact to its Engage id. ?3 = 1 sets its version to 0, so that Engage's data
/// wins as soon as the replica has the contact (it existed in Engage before; its data there is
/// the master).
pub const LINK_LOCAL_ROW: &str = "UPDATE till_contact SET contact_id = ?2, \
     attributes = CASE WHEN attributes IS NULL THEN NULL \
       ELSE json_set(attributes, '$.contactId', ?2) END, \
     version = CASE WHEN ?3 THEN 0 ELSE version END, updated_at = ?4 \
     WHERE local_key = ?1 AND contact_id IS NULL";
/// Whether a contact id has a tombstone in the replica (deleted in Engage).
pub const IS_TOMBSTONED: &str = "SELECT EXISTS (SELECT 1 FROM tombstone WHERE contact_id = ?1)";
/// Whether the replica holds a live row of a contact id.
pub const IS_LIVE_CONTACT: &str = "SELECT EXISTS (SELECT 1 FROM contact WHERE contact_id = ?1)";
/// Till rows readers no longer see: the replica has a newer row of the contact, or Engage
/// deleted it. Removing them changes nothing a reader sees, and keeps no personal data twice
/// (or after a delete). Local contacts Engage does not know yet are never touched.
pub const PRUNE_OVERTAKEN: &str = "DELETE FROM till_contact WHERE contact_id IS NOT NULL AND (\
     EXISTS (SELECT 1 FROM contact AS c WHERE c.contact_id = till_contact.contact_id \
             AND c.version > till_contact.version) \
     OR EXISTS (SELECT 1 FROM tombstone AS d WHERE d.contact_id = till_contact.contact_id))";
/// Counting the same, for dry runs.
pub const COUNT_OVERTAKEN: &str = "SELECT count(*) FROM till_contact WHERE contact_id IS NOT NULL \
     AND (EXISTS (SELECT 1 FROM contact AS c WHERE c.contact_id = till_contact.contact_id \
             AND c.version > till_contact.version) \
     OR EXISTS (SELECT 1 FROM tombstone AS d WHERE d.contact_id = till_contact.contact_id))";
/// Contacts registered at the till that Engage does not know yet.
pub const COUNT_LOCAL_ONLY: &str = "SELECT count(*) FROM till_contact WHERE contact_id IS NULL";
/// Contacts whose till row readers see instead of the replica's (changed at the till, not yet
/// overtaken by the replica).
pub const COUNT_TILL_ROWS: &str = "SELECT count(*) FROM till_contact";

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
/// Contacts registered at the till that Engage never took (their create was rejected or
/// dropped) and whose every outbox item is finished before a cutoff: once those items are
/// purged nothing would ever send or explain them, and `lookup` would show the person forever.
macro_rules! orphaned_local_contacts {
    () => {
        "FROM till_contact AS t WHERE t.contact_id IS NULL AND t.local_key IS NOT NULL \
         AND NOT EXISTS (SELECT 1 FROM contact_outbox AS o WHERE o.local_key = t.local_key \
         AND NOT (o.state IN ('delivered', 'rejected', 'dropped') AND o.finished_at < ?1))"
    };
}
/// Deleting them (before their outbox items, in the same transaction).
pub const PURGE_ORPHANED_LOCAL_CONTACTS: &str = concat!("DELETE ", orphaned_local_contacts!());
/// Counting the same, for dry runs.
pub const COUNT_ORPHANED_LOCAL_CONTACTS: &str =
    concat!("SELECT count(*) ", orphaned_local_contacts!());
/// Finished `push-local` runs older than a cutoff (purge), but the latest of each command and
/// outcome (no personal data), as in the replica.
pub const PURGE_RUNS: &str = "DELETE FROM main.run WHERE outcome != 'running' AND finished_at < ?1 \
     AND id NOT IN (SELECT max(id) FROM main.run WHERE outcome != 'running' GROUP BY command, outcome)";
/// Counting the same, for dry runs.
pub const COUNT_PURGE_RUNS: &str =
    "SELECT count(*) FROM main.run WHERE outcome != 'running' AND finished_at < ?1 \
     AND id NOT IN (SELECT max(id) FROM main.run WHERE outcome != 'running' GROUP BY command, outcome)";
/// Finished batch records older than a cutoff (ids and counts only).
pub const PURGE_OUTBOX_BATCHES: &str =
    "DELETE FROM outbox_batch WHERE state != 'sent' AND finished_at < ?1";
