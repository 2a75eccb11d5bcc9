//! The outbox tables (migration 0003): queueing and merging at the till, claiming and
//! recording outcomes in `push-local`, and what `status` and `purge` read. Every statement is
//! in `till_store::queries`; callers run these inside their own transactions.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::{Map, Value};

use super::State;
use crate::till_store::queries;

/// What a contact item does in Engage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Create a local contact (bulk POST).
    Create,
    /// Change a contact (bulk PATCH), changed fields only.
    Update,
}

impl Op {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
        }
    }
}

/// One queued contact create or update.
#[derive(Debug, Clone)]
pub struct ContactItem {
    /// Queue order.
    pub id: i64,
    /// Create or update.
    pub op: Op,
    /// The local contact (creates; updates of a contact not yet linked).
    pub local_key: Option<String>,
    /// The update's target, or what the create became.
    pub contact_id: Option<String>,
    /// Engage attributes to send.
    pub fields: Map<String, Value>,
    /// Where it is.
    pub state: State,
    /// Sends tried (a claim counts; a claim never sent is taken back).
    pub attempts: i64,
    /// The bulk batch it went in.
    pub batch_id: Option<String>,
    /// When its request left (NULL while only claimed).
    pub sent_at: Option<String>,
    /// Why it waits, or why it was rejected or dropped.
    pub reason: Option<String>,
}

impl ContactItem {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<ContactItem> {
        let op: String = r.get(1)?;
        let fields: String = r.get(4)?;
        let state: String = r.get(5)?;
        Ok(ContactItem {
            id: r.get(0)?,
            op: if op == "update" {
                Op::Update
            } else {
                Op::Create
            },
            local_key: r.get(2)?,
            contact_id: r.get(3)?,
            // The column is only ever written from a JSON object.
            fields: match serde_json::from_str::<Value>(&fields) {
                Ok(Value::Object(m)) => m,
                _ => Map::new(),
            },
            state: State::parse(&state),
            attempts: r.get(6)?,
            batch_id: r.get(7)?,
            sent_at: r.get(8)?,
            reason: r.get(9)?,
        })
    }

    /// How the item is named in reports: its local key, else its contact id.
    pub fn name(&self) -> String {
        self.local_key
            .clone()
            .or_else(|| self.contact_id.clone())
            .unwrap_or_else(|| format!("#{}", self.id))
    }
}

fn items(
    conn: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
) -> rusqlite::Result<Vec<ContactItem>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(p, ContactItem::from_row)?;
    rows.collect()
}

/// Queues a contact create or update; returns its id.
pub fn queue_contact(
    conn: &Connection,
    op: Op,
    local_key: Option<&str>,
    contact_id: Option<&str>,
    fields: &Map<String, Value>,
    now: &str,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(queries::INSERT_CONTACT_ITEM)?
        .execute(params![
            op.as_str(),
            local_key,
            contact_id,
            Value::Object(fields.clone()).to_string(),
            now
        ])?;
    Ok(conn.last_insert_rowid())
}

/// The newest create of a local contact.
pub fn create_item_for(
    conn: &Connection,
    local_key: &str,
) -> rusqlite::Result<Option<ContactItem>> {
    Ok(
        items(conn, &queries::create_item_for_local_key(), [local_key])?
            .into_iter()
            .next(),
    )
}

/// A pending (unsent) update of the contact: by contact id when known, else by local key.
pub fn pending_update_for(
    conn: &Connection,
    contact_id: Option<&str>,
    local_key: Option<&str>,
) -> rusqlite::Result<Option<ContactItem>> {
    let found = match (contact_id, local_key) {
        (Some(id), _) => items(conn, &queries::pending_update_for_contact_id(), [id])?,
        (None, Some(k)) => items(conn, &queries::pending_update_for_local_key(), [k])?,
        (None, None) => Vec::new(),
    };
    Ok(found.into_iter().next())
}

/// Replaces a queued item's fields (a rejected create becomes pending again: it was fixed).
pub fn set_fields(
    conn: &Connection,
    id: i64,
    fields: &Map<String, Value>,
    now: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(queries::MERGE_CONTACT_ITEM)?
        .execute(params![id, Value::Object(fields.clone()).to_string(), now])?;
    Ok(())
}

/// Up to `limit` pending items of `op` with an id above `after`, in queue order.
pub fn pending_contacts(
    conn: &Connection,
    op: Op,
    after: i64,
    limit: usize,
) -> rusqlite::Result<Vec<ContactItem>> {
    items(
        conn,
        &queries::pending_contact_items(),
        params![op.as_str(), after, limit as i64],
    )
}

/// Every item in flight.
pub fn in_flight_contacts(conn: &Connection) -> rusqlite::Result<Vec<ContactItem>> {
    items(conn, &queries::in_flight_contact_items(), [])
}

/// The in-flight items of a batch, in the order they were sent.
pub fn batch_items(conn: &Connection, batch_id: &str) -> rusqlite::Result<Vec<ContactItem>> {
    items(conn, &queries::contact_items_of_batch(), [batch_id])
}

/// Claims a pending item for this run; false when it is no longer pending. `target` records
/// the contact id an update goes to.
pub fn claim_contact(
    conn: &Connection,
    id: i64,
    target: Option<&str>,
    now: &str,
) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached(queries::CLAIM_CONTACT_ITEM)?
        .execute(params![id, now, target])?
        == 1)
}

/// The item's request is about to leave.
pub fn mark_sent(conn: &Connection, id: i64, now: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(queries::MARK_CONTACT_ITEM_SENT)?
        .execute(params![id, now])?;
    Ok(())
}

/// The batch the item went in.
pub fn set_batch(conn: &Connection, id: i64, batch_id: &str, now: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(queries::SET_CONTACT_ITEM_BATCH)?
        .execute(params![id, batch_id, now])?;
    Ok(())
}

/// The batch's answer says nothing usable about the item: it is checked by key instead.
pub fn forget_batch(conn: &Connection, id: i64, now: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(queries::FORGET_CONTACT_ITEM_BATCH)?
        .execute(params![id, now])?;
    Ok(())
}

/// Records a contact item's final state.
pub fn finish_contact(
    conn: &Connection,
    id: i64,
    state: State,
    outcome: &str,
    reason: Option<&str>,
    contact_id: Option<&str>,
    now: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(queries::FINISH_CONTACT_ITEM)?
        .execute(params![
            id,
            state.as_str(),
            outcome,
            reason,
            contact_id,
            now
        ])?;
    Ok(())
}

/// Back to pending after a transient failure; `never_sent` takes the claim's attempt back.
pub fn contact_to_pending(
    conn: &Connection,
    id: i64,
    reason: &str,
    never_sent: bool,
    now: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(queries::CONTACT_ITEM_TO_PENDING)?
        .execute(params![id, reason, never_sent, now])?;
    Ok(())
}

/// Why a pending item waits (written only when it changed).
pub fn set_contact_reason(conn: &Connection, id: i64, reason: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(queries::SET_CONTACT_ITEM_REASON)?
        .execute(params![id, reason])?;
    Ok(())
}

/// A batch Engage accepted, recorded before its status is polled.
pub fn insert_batch(
    conn: &Connection,
    batch_id: &str,
    op: Op,
    items: usize,
    now: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(queries::INSERT_OUTBOX_BATCH)?
        .execute(params![batch_id, op.as_str(), items as i64, now])?;
    Ok(())
}

/// Batches whose outcome is not recorded: (batch id, op).
pub fn open_batches(conn: &Connection) -> rusqlite::Result<Vec<(String, Op)>> {
    let mut stmt = conn.prepare_cached(queries::OPEN_OUTBOX_BATCHES)?;
    let rows = stmt.query_map([], |r| {
        let op: String = r.get(1)?;
        Ok((
            r.get(0)?,
            if op == "update" {
                Op::Update
            } else {
                Op::Create
            },
        ))
    })?;
    rows.collect()
}

/// One status poll made.
pub fn count_poll(conn: &Connection, batch_id: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(queries::COUNT_BATCH_POLL)?
        .execute([batch_id])?;
    Ok(())
}

/// A batch's outcome is recorded: `completed`, `failed` or `lost`.
pub fn finish_batch(
    conn: &Connection,
    batch_id: &str,
    state: &str,
    now: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(queries::FINISH_OUTBOX_BATCH)?
        .execute(params![batch_id, state, now])?;
    Ok(())
}

/// One buffered receipt.
#[derive(Debug, Clone)]
pub struct ReceiptItem {
    /// Queue order.
    pub id: i64,
    /// Engage's idempotency key.
    pub unique_receipt_id: String,
    /// The receipt as given, canonical JSON.
    pub body: String,
    /// How it names its contact (contactId, localKey, email, …).
    pub ref_type: String,
    /// The key's value, normalised.
    pub ref_value: String,
    /// Where it is.
    pub state: State,
    /// Posts tried.
    pub attempts: i64,
    /// Why it waits, or why it was rejected.
    pub reason: Option<String>,
}

impl ReceiptItem {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<ReceiptItem> {
        let state: String = r.get(5)?;
        Ok(ReceiptItem {
            id: r.get(0)?,
            unique_receipt_id: r.get(1)?,
            body: r.get(2)?,
            ref_type: r.get(3)?,
            ref_value: r.get(4)?,
            state: State::parse(&state),
            attempts: r.get(6)?,
            reason: r.get(7)?,
        })
    }
}

/// The buffered receipt with this id, if any.
pub fn receipt_by_unique_id(
    conn: &Connection,
    unique: &str,
) -> rusqlite::Result<Option<ReceiptItem>> {
    conn.prepare_cached(&queries::receipt_by_unique_id())?
        .query_row([unique], ReceiptItem::from_row)
        .optional()
}

/// Buffers a receipt.
pub fn insert_receipt(
    conn: &Connection,
    unique: &str,
    body: &str,
    ref_type: &str,
    ref_value: &str,
    now: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(queries::INSERT_RECEIPT_ITEM)?
        .execute(params![unique, body, ref_type, ref_value, now])?;
    Ok(())
}

/// Up to `limit` pending receipts with an id above `after`, in queue order.
pub fn pending_receipts(
    conn: &Connection,
    after: i64,
    limit: usize,
) -> rusqlite::Result<Vec<ReceiptItem>> {
    let mut stmt = conn.prepare_cached(&queries::pending_receipt_items())?;
    let rows = stmt.query_map(params![after, limit as i64], ReceiptItem::from_row)?;
    rows.collect()
}

/// Claims a pending receipt, recording the match key it is sent with.
pub fn claim_receipt(
    conn: &Connection,
    id: i64,
    key_type: &str,
    key: &str,
    now: &str,
) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached(queries::CLAIM_RECEIPT_ITEM)?
        .execute(params![id, key_type, key, now])?
        == 1)
}

/// Records a receipt's final state.
pub fn finish_receipt(
    conn: &Connection,
    id: i64,
    state: State,
    outcome: &str,
    reason: Option<&str>,
    now: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(queries::FINISH_RECEIPT_ITEM)?
        .execute(params![id, state.as_str(), outcome, reason, now])?;
    Ok(())
}

/// Back to pending; `never_sent` takes the claim's attempt back.
pub fn receipt_to_pending(
    conn: &Connection,
    id: i64,
    reason: &str,
    never_sent: bool,
    now: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(queries::RECEIPT_ITEM_TO_PENDING)?
        .execute(params![id, reason, never_sent, now])?;
    Ok(())
}

/// Why a pending receipt waits (written only when it changed).
pub fn set_receipt_reason(conn: &Connection, id: i64, reason: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(queries::SET_RECEIPT_ITEM_REASON)?
        .execute(params![id, reason])?;
    Ok(())
}

/// Receipts an earlier run left in flight go back to pending: re-posting is harmless.
pub fn in_flight_receipts_to_pending(conn: &Connection, now: &str) -> rusqlite::Result<u64> {
    Ok(conn.execute(queries::IN_FLIGHT_RECEIPTS_TO_PENDING, [now])? as u64)
}

/// Rejected items back to pending: (contacts, receipts).
pub fn retry_rejected(conn: &Connection, now: &str) -> rusqlite::Result<(u64, u64)> {
    Ok((
        conn.execute(queries::RETRY_REJECTED_CONTACTS, [now])? as u64,
        conn.execute(queries::RETRY_REJECTED_RECEIPTS, [now])? as u64,
    ))
}

/// Items not delivered yet (pending or in flight): (contacts, receipts).
pub fn left(conn: &Connection) -> rusqlite::Result<(u64, u64)> {
    conn.query_row(queries::OUTBOX_LEFT, [], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
    })
}

/// Outbox depth of one kind, op and state.
#[derive(Debug, Clone, Serialize)]
pub struct Depth {
    /// `contact` or `receipt`.
    pub kind: String,
    /// `create`, `update` or `post`.
    pub op: String,
    /// The state.
    pub state: String,
    /// How many.
    pub count: i64,
    /// When the oldest of them was queued (UTC).
    pub oldest_queued_at: String,
}

/// A rejected or dropped item with its reason.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// `contact` or `receipt`.
    pub kind: String,
    /// `create`, `update` or `post`.
    pub op: String,
    /// Local key, contact id or uniqueReceiptId.
    pub item: String,
    /// `rejected` or `dropped`.
    pub state: String,
    /// Engage's reason (rejected) or ours (dropped).
    pub reason: Option<String>,
    /// When.
    pub at: Option<String>,
}

/// What `status` shows of the outboxes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OutboxStatus {
    /// Depth per kind, op and state.
    pub depth: Vec<Depth>,
    /// When the oldest undelivered (pending or in flight) item was queued.
    pub oldest_undelivered_queued_at: Option<String>,
    /// The newest rejected and dropped items.
    pub problems: Vec<Problem>,
}

/// Reads the outbox status; `limit` caps the problems listed.
pub fn status(conn: &Connection, limit: u32) -> rusqlite::Result<OutboxStatus> {
    let mut stmt = conn.prepare(queries::OUTBOX_DEPTH)?;
    let depth = stmt
        .query_map([], |r| {
            Ok(Depth {
                kind: r.get(0)?,
                op: r.get(1)?,
                state: r.get(2)?,
                count: r.get(3)?,
                oldest_queued_at: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let oldest_undelivered_queued_at = depth
        .iter()
        .filter(|d| d.state == "pending" || d.state == "in_flight")
        .map(|d| d.oldest_queued_at.clone())
        .min();
    let mut stmt = conn.prepare(queries::OUTBOX_PROBLEMS)?;
    let problems = stmt
        .query_map([limit], |r| {
            Ok(Problem {
                kind: r.get(0)?,
                op: r.get(1)?,
                item: r.get(2)?,
                state: r.get(3)?,
                reason: r.get(4)?,
                at: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(OutboxStatus {
        depth,
        oldest_undelivered_queued_at,
        problems,
    })
}

/// Outbox rows purged (or, in a dry run, that would be).
#[derive(Debug, Clone, Default, Serialize)]
pub struct OutboxPurged {
    /// Delivered, rejected and dropped contact items.
    pub outbox_contacts: u64,
    /// Delivered, rejected and dropped receipts.
    pub outbox_receipts: u64,
    /// Finished `push-local` run records (the till store's; `purge` reports them with the
    /// replica's runs).
    #[serde(skip)]
    pub runs: u64,
    /// The till's rows of contacts that the replica has overtaken or Engage deleted (readers
    /// no longer saw them).
    pub till_rows_overtaken: u64,
    /// Contacts registered at the till that Engage rejected (or that were dropped), purged
    /// with their last outbox item.
    pub local_contacts_never_in_engage: u64,
}

/// Deletes (or counts) what the till store holds past its time: finished outbox rows and
/// `push-local` runs older than `cutoff` (UTC RFC 3339; pending and in-flight items are never
/// touched, and the latest run of each outcome is kept), contacts registered at the till that
/// Engage never took once their items go, and the till's rows that readers no longer see. One
/// short transaction.
pub fn purge(conn: &mut Connection, cutoff: &str, dry_run: bool) -> rusqlite::Result<OutboxPurged> {
    if dry_run {
        let count = |sql: &str| conn.query_row(sql, [cutoff], |r| r.get::<_, i64>(0));
        return Ok(OutboxPurged {
            outbox_contacts: count(queries::COUNT_PURGE_CONTACT_OUTBOX)? as u64,
            outbox_receipts: count(queries::COUNT_PURGE_RECEIPT_OUTBOX)? as u64,
            runs: count(queries::COUNT_PURGE_RUNS)? as u64,
            till_rows_overtaken: super::local::prune_overtaken(conn, false)?,
            local_contacts_never_in_engage: count(queries::COUNT_ORPHANED_LOCAL_CONTACTS)? as u64,
        });
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let orphans = tx.execute(queries::PURGE_ORPHANED_LOCAL_CONTACTS, [cutoff])? as u64;
    let purged = OutboxPurged {
        local_contacts_never_in_engage: orphans,
        outbox_contacts: tx.execute(queries::PURGE_CONTACT_OUTBOX, [cutoff])? as u64,
        outbox_receipts: tx.execute(queries::PURGE_RECEIPT_OUTBOX, [cutoff])? as u64,
        runs: tx.execute(queries::PURGE_RUNS, [cutoff])? as u64,
        till_rows_overtaken: super::local::prune_overtaken(&tx, true)?,
    };
    tx.execute(queries::PURGE_OUTBOX_BATCHES, [cutoff])?;
    tx.commit()?;
    Ok(purged)
}
