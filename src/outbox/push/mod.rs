//! `push-local`: delivering the outboxes to Engage, contacts first, then receipts.
//!
//! Order of one run (each step records its outcomes before the next starts):
//! 1. claims an earlier run made but never sent go back to pending;
//! 2. bulk batches sent by earlier runs are polled and their outcomes recorded;
//! 3. contacts sent earlier without an answer (no batch id) are checked by key, once
//!    `[local] recheck_after` has passed (Engage processes bulk writes asynchronously, so an
//!    earlier check could miss a contact still being created); those Engage does not have are
//!    queued again;
//! 4. pending creates: each is looked up by key first (`lookup_before_create`, and always for
//!    one sent before, unless step 3 just checked it in this run), then the rest go in bulk
//!    creates of at most 4000; batch ids are stored, then polled; a created contact the
//!    batch's status does not name is found by key (the only way to learn its id);
//! 5. pending updates whose contact Engage knows go in bulk updates (changed fields only);
//!    an update of a contact a later delta deleted is dropped with its reason;
//! 6. receipts, each tagged with the best key, posted concurrently within the rate limit.
//!
//! Nothing is sent twice blindly: see [`crate::outbox`] for the invariants.
//!
//! Each create is reported as created, linked or (rarely) created-or-linked, from Engage's
//! answers alone: see `contacts::Origin`.

mod contacts;
mod plan;
mod progress;
mod receipts;

use std::collections::HashSet;
use std::time::Instant;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use serde::Serialize;

use super::store;
use crate::config::LocalSettings;
use crate::engage::{EngageClient, KeyType};
use crate::till_store::TillStore;
use crate::time::now_rfc3339;

pub use plan::PlannedItem;

/// How many rejected, dropped or waiting items a summary lists (the counts are complete).
const LISTED: usize = 50;

/// What a push run is told.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Queue rejected items once more first.
    pub retry_rejected: bool,
    /// No request starts after this.
    pub deadline: Option<Instant>,
    /// Show progress.
    pub progress: bool,
}

/// Requests made by kind (calls: the client's retries are not counted), and every request
/// sent (`sent`: retries counted).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Requests {
    /// `POST /contacts/bulk`.
    pub bulk_creates: u64,
    /// `PATCH /contacts/bulk`.
    pub bulk_updates: u64,
    /// `GET /contacts/bulk/status`.
    pub status_polls: u64,
    /// `GET /contacts/id`: lookups before create, checks after an unanswered send, and
    /// creates a completed batch's status did not name (their id is learnt by key).
    pub lookups: u64,
    /// `GET /contacts/{id}` (checks after an unanswered update).
    pub contact_gets: u64,
    /// `POST /receipts`.
    pub receipt_posts: u64,
    /// Every HTTP request sent, retries included: what Engage's rate limit counted.
    pub sent: u64,
}

/// One item named in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct Note {
    /// `contact` or `receipt`.
    pub kind: &'static str,
    /// Local key, contact id or uniqueReceiptId.
    pub item: String,
    /// Why (Engage's reason for a rejection).
    pub reason: String,
}

/// What a push did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PushSummary {
    /// Nothing was sent or written.
    pub dry_run: bool,
    /// Rejected items queued again by --retry-rejected.
    pub retried_rejected: u64,
    /// Local contacts Engage created on our request: a result row said so, or the contact was
    /// absent when looked up before the create was sent and found by key after it (also when
    /// an earlier run's send of it went unanswered).
    pub contacts_created: u64,
    /// Local contacts Engage already had, linked instead of created: found by key before any
    /// create of them was sent, or a result row said they already existed.
    pub contacts_linked_existing: u64,
    /// Local contacts Engage has now (linked) where no answer says whether our create made
    /// them: sent without a lookup first and not named by the batch's status, or found before
    /// a re-send that an earlier send may have made.
    pub contacts_created_or_linked: u64,
    /// Queued updates Engage applied (a result row said so, or read back).
    pub contacts_updated: u64,
    /// Contact items Engage rejected in this run.
    pub contacts_rejected: u64,
    /// Updates dropped (the contact was deleted in Engage).
    pub contacts_dropped: u64,
    /// Receipts Engage stored.
    pub receipts_delivered: u64,
    /// Receipts Engage already had (a repeat after a lost answer): delivered too.
    pub receipts_duplicate: u64,
    /// Receipts Engage rejected in this run.
    pub receipts_rejected: u64,
    /// Items sent without an answer in this run: checked by key before any resend.
    pub sent_without_answer: u64,
    /// Contact items still pending or in flight at the end.
    pub contacts_left: u64,
    /// Receipts still pending or in flight at the end.
    pub receipts_left: u64,
    /// Requests made.
    pub requests: Requests,
    /// Items rejected in this run, with Engage's reason.
    pub rejected: Vec<Note>,
    /// Items dropped in this run, with the reason.
    pub dropped: Vec<Note>,
    /// Items left waiting, with the reason (first few).
    pub waiting: Vec<Note>,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
    /// Wall time.
    pub elapsed_seconds: f64,
    /// Dry run: what would happen to each item.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<PlannedItem>,
}

impl PushSummary {
    fn note(list: &mut Vec<Note>, kind: &'static str, item: &str, reason: &str) {
        if list.len() < LISTED {
            list.push(Note {
                kind,
                item: item.to_string(),
                reason: reason.to_string(),
            });
        }
    }

    /// Items Engage rejected in this run.
    pub fn rejected_count(&self) -> u64 {
        self.contacts_rejected + self.receipts_rejected
    }
}

/// One push run's working state.
pub(crate) struct Pusher<'a> {
    conn: &'a mut Connection,
    client: &'a EngageClient,
    local: &'a LocalSettings,
    opts: PushOptions,
    summary: PushSummary,
    progress: progress::Counter,
    /// Set when the deadline passed: later steps start nothing.
    deadline_hit: bool,
    /// Creates this run's recheck found absent in Engage (by item id): they are sent again
    /// without a second lookup.
    checked_absent: HashSet<i64>,
}

/// Pushes everything queued. The summary is returned even when the run stopped early (the
/// error says why); every item's state is recorded before this returns.
pub fn push(
    store: &mut TillStore,
    client: &EngageClient,
    local: &LocalSettings,
    opts: PushOptions,
) -> (PushSummary, anyhow::Result<()>) {
    let started = Instant::now();
    let conn = store.conn();
    let (retried, total) = match prepare(conn, opts.retry_rejected) {
        Ok(v) => v,
        Err(e) => return (PushSummary::default(), Err(e)),
    };
    let mut p = Pusher {
        progress: progress::Counter::new(total, opts.progress),
        conn,
        client,
        local,
        opts,
        summary: PushSummary {
            retried_rejected: retried,
            ..PushSummary::default()
        },
        deadline_hit: false,
        checked_absent: HashSet::new(),
    };
    let result = p.push_contacts().and_then(|()| p.push_receipts());
    p.progress.finish();
    if let Err(e) = &result {
        p.summary.stopped = Some(format!("{e:#}"));
    } else if p.deadline_hit {
        p.summary.stopped = Some("the deadline passed; the rest is left for the next run".into());
    }
    let left = store::left(p.conn);
    let mut summary = p.summary;
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    // One client per run (`EngageClient`): everything it sent was this push's.
    summary.requests.sent = client.requests_sent();
    match left {
        Ok((c, r)) => {
            summary.contacts_left = c;
            summary.receipts_left = r;
            (summary, result)
        }
        Err(e) => (summary, result.and(Err(e.into()))),
    }
}

/// What a push would do with each queued item, from the till store and the replica alone
/// (`push-local --dry-run`).
pub fn plan(store: &mut TillStore, local: &LocalSettings) -> rusqlite::Result<Vec<PlannedItem>> {
    plan::plan(store.conn(), local)
}

/// Re-queues rejected items if asked; returns (re-queued, items to work on).
fn prepare(conn: &mut Connection, retry_rejected: bool) -> anyhow::Result<(u64, u64)> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let retried = if retry_rejected {
        let (c, r) = store::retry_rejected(&tx, &now_rfc3339())?;
        c + r
    } else {
        0
    };
    let (c, r) = store::left(&tx)?;
    tx.commit()?;
    Ok((retried, c + r))
}

impl Pusher<'_> {
    /// Runs `f` in one IMMEDIATE transaction (the write lock is taken at the start, so a busy
    /// database waits the busy timeout instead of failing on the upgrade).
    fn write<T>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> anyhow::Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// True (and remembered) once the deadline has passed.
    fn past_deadline(&mut self) -> bool {
        if self.opts.deadline.is_some_and(|d| Instant::now() >= d) {
            self.deadline_hit = true;
        }
        self.deadline_hit
    }
}

/// The `GET /contacts/id` parameter for a key attribute. `customKey` is memberNumber or
/// externalId, whichever the tenant configured (docs/engage-api.md §2.1).
fn lookup_param(attribute: &str) -> Option<KeyType> {
    match attribute {
        "email" => Some(KeyType::Email),
        "mobilePhone" => Some(KeyType::MobilePhone),
        "socialSecurityNumber" => Some(KeyType::SocialSecurityNumber),
        "externalId" | "memberNumber" => Some(KeyType::CustomKey),
        _ => None,
    }
}

/// A key a local contact is looked up by in Engage (`GET /contacts/id`); not the `lookup`
/// command's selector (`replica::LookupKey`).
struct EngageLookup {
    /// The request's parameter.
    param: KeyType,
    /// The Engage attribute the value comes from (`email`, `memberNumber`, …).
    attribute: String,
    /// The contact's value of it.
    value: String,
}

/// The key a local contact is looked up by in Engage: the configured secondary key when the
/// contact has it, else e-mail, mobile phone, personal number, external id (as `customKey`).
fn lookup_key(
    fields: &serde_json::Map<String, serde_json::Value>,
    secondary: &str,
) -> Option<EngageLookup> {
    [
        secondary,
        "email",
        "mobilePhone",
        "socialSecurityNumber",
        "externalId",
    ]
    .into_iter()
    .find_map(|name| {
        let value = fields.get(name)?.as_str()?;
        Some(EngageLookup {
            param: lookup_param(name)?,
            attribute: name.to_string(),
            value: value.to_string(),
        })
    })
}
