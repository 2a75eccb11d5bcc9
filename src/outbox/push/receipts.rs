//! Receipts: each tagged with the best key at push time (docs/contract.md §6), then posted
//! concurrently within the rate limit. A receipt is idempotent in Engage by `uniqueReceiptId`, so
//! one whose answer was lost is simply posted again: Engage ignores it if it arrived.

use std::ops::ControlFlow;

use serde_json::Value;

use super::{PushSummary, Pusher};
use crate::engage::{EngageError, ReceiptFeed, ReceiptOutcome};
use crate::outbox::fields::masked;
use crate::outbox::local::{find_by, resolve_local_key};
use crate::outbox::receipt::body_with_key;
use crate::outbox::store::{self, ReceiptItem};
use crate::outbox::State;
use crate::time::now_rfc3339;

/// Receipts read from the outbox at a time.
const CHUNK: usize = 1000;

/// How a receipt will be tagged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tag {
    /// Send now with this match key type and key.
    Ready {
        /// `contactId`, or the key Engage resolves (`mobilePhone`, …).
        key_type: String,
        /// The key.
        key: String,
    },
    /// Its contact is not in Engage yet (created earlier in this push, or waiting itself).
    Wait(String),
    /// It can never be tagged: the reason.
    Reject(String),
}

/// The best key for a receipt, from what the replica knows now: the contactId when known
/// (directly, through a local key, or through a key that names exactly one contact), else the
/// key it was given (Engage resolves it), else, for a local contact, the configured secondary
/// key; a receipt whose local contact is still on its way to Engage waits for it.
pub fn tag(conn: &rusqlite::Connection, r: &ReceiptItem, secondary: &str) -> rusqlite::Result<Tag> {
    let ready = |key_type: &str, key: &str| Tag::Ready {
        key_type: key_type.to_string(),
        key: key.to_string(),
    };
    match r.ref_type.as_str() {
        "contactId" => Ok(ready("contactId", &r.ref_value)),
        "localKey" => tag_local(conn, &r.ref_value, secondary),
        key_type => {
            let found = find_by(conn, key_type, &r.ref_value)?;
            match found.as_slice() {
                [one] => match (&one.contact_id, &one.local_key) {
                    (Some(id), _) => Ok(ready("contactId", id)),
                    (None, Some(k)) => tag_local(conn, k, secondary),
                    (None, None) => Ok(ready(key_type, &r.ref_value)),
                },
                _ => Ok(ready(key_type, &r.ref_value)),
            }
        }
    }
}

/// The tag for a receipt whose customer is the local contact `local_key`.
fn tag_local(
    conn: &rusqlite::Connection,
    local_key: &str,
    secondary: &str,
) -> rusqlite::Result<Tag> {
    if let Some(id) = resolve_local_key(conn, local_key)? {
        return Ok(Tag::Ready {
            key_type: "contactId".into(),
            key: id,
        });
    }
    let create = store::create_item_for(conn, local_key)?;
    match create.map(|c| (c.state, c.reason)) {
        Some((State::Pending | State::InFlight, _)) => Ok(Tag::Wait(format!(
            "waiting for its contact {local_key} to be created in Engage"
        ))),
        Some((State::Rejected | State::Dropped, reason)) => Ok(Tag::Wait(format!(
            "its contact {local_key} was rejected by Engage ({}); fix it with `engage-sync \
             contact update --local-key {local_key} …` and the receipt follows",
            reason.unwrap_or_default()
        ))),
        // Delivered without a link cannot happen (the link is written with it); no create at
        // all means the item was purged: fall back to the secondary key.
        Some((State::Delivered, _)) | None => {
            let row = find_by(conn, "localKey", local_key)?.into_iter().next();
            match row.as_ref().and_then(|c| c.key(secondary)) {
                Some(value) => Ok(Tag::Ready {
                    key_type: secondary.to_string(),
                    key: value.to_string(),
                }),
                None => Ok(Tag::Reject(format!(
                    "its contact {local_key} is not in Engage and has no {secondary} to tag the \
                     receipt with"
                ))),
            }
        }
    }
}

/// A receipt ready to post.
struct Ready {
    item: ReceiptItem,
    body: Value,
}

impl Pusher<'_> {
    /// Posts every pending receipt whose contact can be tagged. The outbox is read a chunk at a
    /// time, the next chunk tagged and claimed while the last posts of the previous one are
    /// under way.
    pub(super) fn push_receipts(&mut self) -> anyhow::Result<()> {
        let now = now_rfc3339();
        self.write(|tx| store::in_flight_receipts_to_pending(tx, &now))?;
        let client = self.client;
        let mut feed = Feed {
            pusher: self,
            after: 0,
            stop: None,
            error: None,
        };
        let unstarted = client.post_receipts(&mut feed);
        let Feed { stop, error, .. } = feed;
        let now = now_rfc3339();
        let reason = "not posted before the run stopped";
        self.write(|tx| {
            for item in &unstarted {
                store::receipt_to_pending(tx, item.id, reason, true, &now)?;
            }
            Ok(())
        })?;
        if let Some(e) = error {
            return Err(e);
        }
        match stop {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// The next chunk of the outbox with receipts ready to post (tagged and claimed); none when
    /// the outbox is done or the deadline has passed.
    fn next_chunk(&mut self, after: &mut i64) -> anyhow::Result<Vec<(ReceiptItem, Value)>> {
        loop {
            if self.past_deadline() {
                return Ok(Vec::new());
            }
            let items = store::pending_receipts(self.conn, *after, CHUNK)?;
            let Some(last) = items.last() else {
                return Ok(Vec::new());
            };
            *after = last.id;
            let ready = self.tag_and_claim(items)?;
            crate::failpoint::hit("push.receipts_claimed");
            if !ready.is_empty() {
                return Ok(ready.into_iter().map(|r| (r.item, r.body)).collect());
            }
        }
    }

    /// Tags each receipt; claims the ready ones (one transaction), notes why others wait,
    /// rejects those that can never be tagged.
    fn tag_and_claim(&mut self, items: Vec<ReceiptItem>) -> anyhow::Result<Vec<Ready>> {
        let mut tagged = Vec::with_capacity(items.len());
        for item in items {
            let t = tag(self.conn, &item, &self.local.secondary_key)?;
            tagged.push((item, t));
        }
        let now = now_rfc3339();
        let (ready, waiting, rejected) = self.write(|tx| {
            let (mut ready, mut waiting, mut rejected) = (Vec::new(), Vec::new(), Vec::new());
            for (item, t) in tagged {
                match t {
                    Tag::Ready { key_type, key } => {
                        if store::claim_receipt(tx, item.id, &key_type, &key, &now)? {
                            // The column is only ever written from a JSON object.
                            let stored: Value =
                                serde_json::from_str(&item.body).unwrap_or(Value::Null);
                            let body = body_with_key(&stored, &key_type, &key);
                            ready.push(Ready { item, body });
                        }
                    }
                    Tag::Wait(reason) => {
                        store::set_receipt_reason(tx, item.id, &reason)?;
                        waiting.push((item.unique_receipt_id, reason));
                    }
                    Tag::Reject(reason) => {
                        store::finish_receipt(
                            tx,
                            item.id,
                            State::Rejected,
                            "Rejected",
                            Some(&reason),
                            &now,
                        )?;
                        rejected.push((item, reason));
                    }
                }
            }
            Ok((ready, waiting, rejected))
        })?;
        for (id, reason) in waiting {
            PushSummary::note(&mut self.summary.waiting, "receipt", &id, &reason);
        }
        for (item, reason) in rejected {
            self.receipt_rejected(&item, &reason);
        }
        Ok(ready)
    }

    fn receipt_rejected(&mut self, item: &ReceiptItem, reason: &str) {
        tracing::warn!(receipt = %item.unique_receipt_id, "receipt rejected: {reason}");
        self.summary.receipts_rejected += 1;
        PushSummary::note(
            &mut self.summary.rejected,
            "receipt",
            &item.unique_receipt_id,
            reason,
        );
        self.progress.inc("receipts");
    }

    /// Records one post's outcome.
    fn record_post(
        &mut self,
        item: &ReceiptItem,
        result: Result<ReceiptOutcome, EngageError>,
        stop: &mut Option<EngageError>,
    ) -> anyhow::Result<()> {
        crate::failpoint::hit("push.receipt_posted");
        self.summary.requests.receipt_posts += 1;
        let now = now_rfc3339();
        let id = item.id;
        match result {
            Ok(outcome) => {
                let word = match outcome {
                    ReceiptOutcome::Created => "Created",
                    ReceiptOutcome::Duplicate => "Duplicate",
                };
                self.write(|tx| store::finish_receipt(tx, id, State::Delivered, word, None, &now))?;
                crate::failpoint::hit("push.receipt_recorded");
                match outcome {
                    ReceiptOutcome::Created => self.summary.receipts_delivered += 1,
                    ReceiptOutcome::Duplicate => self.summary.receipts_duplicate += 1,
                }
                self.progress.inc("receipts");
            }
            Err(e) if is_rejection(&e) => {
                let reason = format!("Engage rejected it: {e}");
                self.write(|tx| {
                    store::finish_receipt(tx, id, State::Rejected, "Rejected", Some(&reason), &now)
                })?;
                self.receipt_rejected(item, &reason);
            }
            Err(e) => {
                let never_sent = matches!(e, EngageError::Deadline { .. });
                let reason = e.to_string();
                self.write(|tx| store::receipt_to_pending(tx, id, &reason, never_sent, &now))?;
                PushSummary::note(
                    &mut self.summary.waiting,
                    "receipt",
                    &item.unique_receipt_id,
                    &reason,
                );
                if matches!(e, EngageError::OutcomeUnknown { .. }) {
                    self.summary.sent_without_answer += 1;
                }
                if e.ends_run() {
                    stop.get_or_insert(e);
                }
            }
        }
        Ok(())
    }
}

/// The outbox as [`crate::engage::EngageClient::post_receipts`] reads it: chunks of claimed
/// receipts in, outcomes recorded as they arrive. The first error that ends the run, or a
/// database error, stops new posts.
struct Feed<'p, 'a> {
    pusher: &'p mut Pusher<'a>,
    after: i64,
    stop: Option<EngageError>,
    error: Option<anyhow::Error>,
}

impl ReceiptFeed for Feed<'_, '_> {
    type Key = ReceiptItem;

    fn next_receipts(&mut self) -> Vec<(ReceiptItem, Value)> {
        if self.stop.is_some() || self.error.is_some() {
            return Vec::new();
        }
        self.pusher.next_chunk(&mut self.after).unwrap_or_else(|e| {
            self.error = Some(e);
            Vec::new()
        })
    }

    fn posted(
        &mut self,
        item: ReceiptItem,
        result: Result<ReceiptOutcome, EngageError>,
    ) -> ControlFlow<()> {
        if let Err(e) = self.pusher.record_post(&item, result, &mut self.stop) {
            self.error.get_or_insert(e);
        }
        if self.stop.is_some() || self.error.is_some() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// Engage refused the receipt itself (invalid, unknown or ambiguous contact): retrying the same
/// receipt cannot help.
fn is_rejection(e: &EngageError) -> bool {
    match e {
        EngageError::ContactNotFound { .. } | EngageError::MultipleMatches { .. } => true,
        EngageError::Permanent { status, .. } => (400..500).contains(status),
        _ => false,
    }
}

/// How a tag reads in a dry run or log: the key masked when it is personal.
pub fn describe(t: &Tag) -> String {
    match t {
        Tag::Ready { key_type, key } => format!("tagged {key_type} {}", masked(key_type, key)),
        Tag::Wait(reason) => format!("waits: {reason}"),
        Tag::Reject(reason) => format!("rejected: {reason}"),
    }
}
