//! Contacts: bulk creates and updates, batch polling, and the checks that keep a contact from
//! being created twice.
//!
//! Engage's bulk write is unconfirmed in several ways (docs/engage-api.md §3 [U]): the answer is
//! read as a batch id; the status may report per-contact rows (matched by `index`, else by
//! position, else by key) or none at all (then each created contact is looked up by key, and
//! an update of a completed batch counts as delivered); a row whose word is unknown is checked
//! instead of guessed. An update row carries the target as both `contactId` and `id` (the
//! element key is unconfirmed; Engage ignores fields it does not know).

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{lookup_key, parallel, PushSummary, Pusher};
use crate::engage::{
    error_digest, row_digest, BulkOptions, BulkRowResult, BulkState, EngageError, BULK_MAX,
};
use crate::outbox::fields::{changed, masked, CREATE_KEYS};
use crate::outbox::local::{self, is_deleted_in_engage, resolve_local_key};
use crate::outbox::store::{self, ContactItem, Op};
use crate::outbox::State;
use crate::time::now_rfc3339;

/// Longest wait between two polls of one batch.
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(15);

/// What a create came to, decided from Engage's answers: reported per contact (the item's
/// stored outcome) and counted in the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// Engage created the contact on our request: a result row said so, or the contact was
    /// absent when looked up before our create was sent and is there after it.
    Created,
    /// Engage had the contact already: found by key before any create of it was sent, or a
    /// result row said it already existed.
    Linked,
    /// Engage has the contact now, but no answer says whether our create made it: it was sent
    /// without a lookup first (`lookup_before_create = false`) and no result row names it, or
    /// it was found before a re-send that an earlier, unsettled send may have made.
    Unclear,
}

/// Where a lookup by key stands relative to the item's sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Before the item's (next) create is sent.
    BeforeSend,
    /// After a create was sent that no answer settled (unanswered, or a completed batch
    /// whose status does not name the contact).
    AfterSend,
}

/// What a lookup by key found.
enum Found {
    /// Engage has the contact.
    Yes(String),
    /// Engage has no contact with the key.
    No,
    /// Engage refused the lookup for good (invalid key, several matches): the reason.
    Refused(String),
    /// The lookup failed for now: the reason.
    Failed(String),
}

/// How a bulk row reads.
enum RowOutcome {
    /// Done; `existed`: the contact was in Engage before ("AlreadyExists").
    Done { existed: bool },
    /// Engage refused the row: its message.
    Failed(String),
    /// A word engage-sync does not know.
    Unknown,
}

/// What a completed batch means for one of its items.
enum Fate {
    /// Created (or found existing): delivered and linked. `existed`: the till's row yields
    /// to the replica's at once (see [`local::link`]).
    Created {
        id: String,
        existed: bool,
        origin: Origin,
        word: String,
    },
    /// Updated: delivered.
    Updated(String),
    /// Refused by Engage: the reason.
    Rejected(String),
    /// An update of a contact deleted in Engage: the reason.
    Dropped(String),
    /// A create the answer does not settle: looked up by key.
    Check,
    /// An update the answer does not settle: read back.
    Verify,
}

/// Writes one item's fate (inside the batch's transaction).
fn record_fate(
    tx: &rusqlite::Transaction<'_>,
    item: &ContactItem,
    fate: &Fate,
    now: &str,
) -> rusqlite::Result<()> {
    let finish = |state, word: &str, reason: Option<&str>, id: Option<&str>| {
        store::finish_contact(tx, item.id, state, word, reason, id, now)
    };
    match fate {
        Fate::Created {
            id, existed, word, ..
        } => {
            finish(State::Delivered, word, None, Some(id))?;
            let local_key = item.local_key.as_deref().unwrap_or_default();
            local::link(tx, local_key, id, *existed, now)
        }
        Fate::Updated(word) => finish(State::Delivered, word, None, None),
        Fate::Rejected(reason) => finish(State::Rejected, "Rejected", Some(reason), None),
        Fate::Dropped(reason) => finish(State::Dropped, "Dropped", Some(reason), None),
        Fate::Check | Fate::Verify => store::forget_batch(tx, item.id, now),
    }
}

impl Pusher<'_> {
    /// Every contact step of a run, in order (see the module doc of `push`).
    pub(super) fn push_contacts(&mut self) -> anyhow::Result<()> {
        self.release_unsent_claims()?;
        self.poll_batches(true)?;
        self.recheck_unanswered()?;
        self.send_creates()?;
        self.poll_batches(false)?;
        self.send_updates()?;
        self.poll_batches(false)
    }

    /// Items an earlier run claimed but never sent go back to pending.
    fn release_unsent_claims(&mut self) -> anyhow::Result<()> {
        let now = now_rfc3339();
        self.write(|tx| {
            for item in store::in_flight_contacts(tx)? {
                if item.sent_at.is_none() {
                    store::contact_to_pending(
                        tx,
                        item.id,
                        "claimed by a run that ended before sending it",
                        true,
                        &now,
                    )?;
                }
            }
            Ok(())
        })
    }

    /// Items sent without an answer (no batch id) long enough ago are checked in Engage: a
    /// create by key, an update by reading the contact back.
    fn recheck_unanswered(&mut self) -> anyhow::Result<()> {
        let settle = chrono::Duration::from_std(self.local.recheck_after).unwrap_or_default();
        let cutoff = Utc::now() - settle;
        let (mut creates, mut updates) = (Vec::new(), Vec::new());
        for item in store::in_flight_contacts(self.conn)? {
            let sent = item.sent_at.as_deref().and_then(parse_time);
            match (&item.batch_id, sent) {
                (None, Some(t)) if t <= cutoff => match item.op {
                    Op::Create => creates.push(item),
                    Op::Update => updates.push(item),
                },
                (None, Some(_)) => PushSummary::note(
                    &mut self.summary.waiting,
                    "contact",
                    &item.name(),
                    "sent without an answer; checked in Engage once [local] recheck_after has passed",
                ),
                _ => {}
            }
        }
        for item in self.check_creates(creates, Stage::AfterSend)? {
            let reason = "sent earlier without an answer, and Engage has no contact with its key: sent again";
            let now = now_rfc3339();
            self.write(|tx| store::contact_to_pending(tx, item.id, reason, false, &now))?;
            // This check stands for the lookup before the re-send later in this run.
            self.checked_absent.insert(item.id);
        }
        self.verify_updates(updates)
    }

    /// Looks each create up in Engage by key: found ones are linked and delivered, refused
    /// ones rejected; returns those Engage does not have. Items whose lookup failed for now
    /// stay as they are (in flight) with the reason; an error that ends the run is returned
    /// after the finished lookups are recorded. `stage` says what a found contact means.
    fn check_creates(
        &mut self,
        items: Vec<ContactItem>,
        stage: Stage,
    ) -> anyhow::Result<Vec<ContactItem>> {
        if self.past_deadline() {
            for item in &items {
                self.leave_unchecked(item, "not checked in Engage before the deadline")?;
            }
            return Ok(Vec::new());
        }
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client;
        let secondary = self.local.secondary_key.clone();
        let mut absent = Vec::new();
        let mut stop: Option<EngageError> = None;
        let mut results = Vec::new();
        let unstarted = parallel::run(
            self.opts.concurrency,
            items,
            |item| match lookup_key(&item.fields, &secondary) {
                None => Err(None),
                Some((param, _, value)) => client.find_contact_id(param, &value).map_err(Some),
            },
            |item, result| {
                let flow = match &result {
                    Err(Some(e)) if e.ends_run() => ControlFlow::Break(()),
                    _ => ControlFlow::Continue(()),
                };
                results.push((item, result));
                flow
            },
        );
        for (item, result) in results {
            self.summary.requests.lookups += u64::from(!matches!(result, Err(None)));
            let found = match result {
                Ok(Some(id)) => Found::Yes(id),
                Ok(None) | Err(None) => Found::No,
                Err(Some(e)) if e.ends_run() => {
                    self.leave_unchecked(&item, &e.to_string())?;
                    stop.get_or_insert(e);
                    continue;
                }
                Err(Some(
                    e @ (EngageError::MultipleMatches { .. } | EngageError::Permanent { .. }),
                )) => Found::Refused(format!("{e}")),
                Err(Some(e)) => Found::Failed(format!("{e}")),
            };
            if let Some(item) = self.record_lookup(item, found, stage)? {
                absent.push(item);
            }
        }
        for item in unstarted {
            self.leave_unchecked(&item, "not checked before the run stopped")?;
        }
        match stop {
            Some(e) => Err(e.into()),
            None => Ok(absent),
        }
    }

    /// Records one lookup; returns the item when Engage does not have the contact.
    fn record_lookup(
        &mut self,
        item: ContactItem,
        found: Found,
        stage: Stage,
    ) -> anyhow::Result<Option<ContactItem>> {
        match found {
            Found::No => return Ok(Some(item)),
            Found::Yes(id) => {
                let (origin, word) = self.found_origin(&item, stage);
                match origin {
                    Origin::Linked => {
                        tracing::info!(local_key = %item.name(), contact_id = %id, "local contact already in Engage: linked, not created")
                    }
                    Origin::Created => {
                        tracing::debug!(local_key = %item.name(), contact_id = %id, "created in Engage by our request (absent before it, found by key after it)")
                    }
                    Origin::Unclear => {
                        tracing::info!(local_key = %item.name(), contact_id = %id, "local contact in Engage now, linked; no answer says whether our create made it")
                    }
                }
                self.created(&item, &id, true, origin, word)?;
            }
            Found::Refused(reason) => {
                let reason =
                    format!("looking the contact up in Engage before creating it failed: {reason}");
                self.reject_contact(&item, &reason)?;
            }
            Found::Failed(reason) => {
                self.leave_unchecked(
                    &item,
                    &format!("could not be looked up in Engage: {reason}"),
                )?;
            }
        }
        Ok(None)
    }

    /// What a contact found by key means for a create item, and the outcome stored for it.
    /// Before any send it was already there (linked). After a send it was made by that send
    /// when the item was looked up, absent, before the send: every item is when
    /// `lookup_before_create` is on, and every re-send (attempts above one) always is.
    fn found_origin(&self, item: &ContactItem, stage: Stage) -> (Origin, &'static str) {
        let absent_before_send = self.local.lookup_before_create || item.attempts > 1;
        match stage {
            Stage::BeforeSend if item.attempts <= 1 => (Origin::Linked, "Found"),
            // An earlier send of it may or may not have reached Engage.
            Stage::BeforeSend => (Origin::Unclear, "FoundAfterSend"),
            Stage::AfterSend if absent_before_send => (Origin::Created, "FoundAfterCreate"),
            Stage::AfterSend => (Origin::Unclear, "FoundAfterSend"),
        }
    }

    /// An item whose check did not happen: claimed-only items go back to pending, items sent
    /// before stay in flight (they must be checked before anything is sent again).
    fn leave_unchecked(&mut self, item: &ContactItem, reason: &str) -> anyhow::Result<()> {
        let now = now_rfc3339();
        let never_sent = item.sent_at.is_none();
        self.write(|tx| {
            if never_sent {
                store::contact_to_pending(tx, item.id, reason, true, &now)
            } else {
                store::set_contact_reason(tx, item.id, reason)
            }
        })?;
        PushSummary::note(&mut self.summary.waiting, "contact", &item.name(), reason);
        Ok(())
    }

    fn reject_contact(&mut self, item: &ContactItem, reason: &str) -> anyhow::Result<()> {
        let now = now_rfc3339();
        self.write(|tx| {
            store::finish_contact(
                tx,
                item.id,
                State::Rejected,
                "Rejected",
                Some(reason),
                None,
                &now,
            )
        })?;
        self.count_rejected(item, reason);
        Ok(())
    }

    fn drop_contact(&mut self, item: &ContactItem, reason: &str) -> anyhow::Result<()> {
        let now = now_rfc3339();
        self.write(|tx| {
            store::finish_contact(
                tx,
                item.id,
                State::Dropped,
                "Dropped",
                Some(reason),
                None,
                &now,
            )
        })?;
        self.count_dropped(item, reason);
        Ok(())
    }

    /// Claims `items` for this run (in one transaction); returns those still pending, with
    /// their attempt count as claimed. `targets` are the update targets by item id.
    fn claim(
        &mut self,
        items: Vec<ContactItem>,
        targets: &BTreeMap<i64, String>,
    ) -> anyhow::Result<Vec<ContactItem>> {
        let now = now_rfc3339();
        self.write(|tx| {
            let mut claimed = Vec::with_capacity(items.len());
            for mut item in items {
                let target = targets.get(&item.id).map(String::as_str);
                if store::claim_contact(tx, item.id, target, &now)? {
                    item.attempts += 1;
                    item.state = State::InFlight;
                    if let Some(t) = target {
                        item.contact_id = Some(t.to_string());
                    }
                    claimed.push(item);
                }
            }
            Ok(claimed)
        })
    }

    /// Pending creates, in chunks of at most 4000: checked by key where needed, then sent.
    fn send_creates(&mut self) -> anyhow::Result<()> {
        let mut after = 0;
        loop {
            if self.past_deadline() {
                return Ok(());
            }
            let items = store::pending_contacts(self.conn, Op::Create, after, BULK_MAX)?;
            let Some(last) = items.last() else {
                return Ok(());
            };
            after = last.id;
            let claimed = self.claim(items, &BTreeMap::new())?;
            let lookup_all = self.local.lookup_before_create;
            // An item this run's recheck just found absent is not looked up again.
            let checked = &self.checked_absent;
            let (check, direct): (Vec<_>, Vec<_>) = claimed
                .into_iter()
                .partition(|i| (lookup_all || i.attempts > 1) && !checked.contains(&i.id));
            let mut to_send = direct;
            to_send.extend(self.check_creates(check, Stage::BeforeSend)?);
            to_send.sort_by_key(|i| i.id);
            let mut by_type: BTreeMap<String, Vec<ContactItem>> = BTreeMap::new();
            for item in to_send {
                let t = item
                    .fields
                    .get("contactType")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                by_type.entry(t).or_default().push(item);
            }
            for (contact_type, group) in by_type {
                let rows = group.iter().map(|i| self.create_row(i)).collect();
                let opts = BulkOptions {
                    contact_type: Some(contact_type).filter(|t| !t.is_empty()),
                    avoid_triggering_export: false,
                };
                self.send_bulk(Op::Create, group, rows, &opts)?;
            }
        }
    }

    /// The bulk create row of an item: its fields, plus the local key under
    /// `[local] local_key_attribute` when configured.
    fn create_row(&self, item: &ContactItem) -> Value {
        let mut row = item.fields.clone();
        if let (Some(attr), Some(key)) = (&self.local.local_key_attribute, &item.local_key) {
            row.entry(attr.clone())
                .or_insert_with(|| Value::String(key.clone()));
        }
        Value::Object(row)
    }

    /// Sends one bulk request for `items` (claimed, in id order; `rows` in the same order) and
    /// stores the batch id before anything else happens.
    fn send_bulk(
        &mut self,
        op: Op,
        items: Vec<ContactItem>,
        rows: Vec<Value>,
        opts: &BulkOptions,
    ) -> anyhow::Result<()> {
        if items.is_empty() || self.past_deadline() {
            return self.release(items, "not sent before the deadline", true);
        }
        crate::failpoint::hit("push.claimed");
        let now = now_rfc3339();
        self.write(|tx| {
            for item in &items {
                store::mark_sent(tx, item.id, &now)?;
            }
            Ok(())
        })?;
        let result = match op {
            Op::Create => {
                self.summary.requests.bulk_creates += 1;
                self.client.bulk_create(&rows, opts)
            }
            Op::Update => {
                self.summary.requests.bulk_updates += 1;
                self.client.bulk_update(&rows, opts)
            }
        };
        let batch = match result {
            Ok(batch) => batch,
            Err(e) => return self.bulk_failed(op, items, e),
        };
        crate::failpoint::hit("push.bulk_sent");
        let now = now_rfc3339();
        self.write(|tx| {
            store::insert_batch(tx, &batch, op, rows.len(), &now)?;
            for item in &items {
                store::set_batch(tx, item.id, &batch, &now)?;
            }
            Ok(())
        })?;
        crate::failpoint::hit("push.batch_stored");
        tracing::info!(batch_id = %batch, op = op.as_str(), contacts = items.len(), "bulk write accepted");
        Ok(())
    }

    /// A bulk request that got no batch id.
    fn bulk_failed(
        &mut self,
        op: Op,
        items: Vec<ContactItem>,
        e: EngageError,
    ) -> anyhow::Result<()> {
        if matches!(
            e,
            EngageError::OutcomeUnknown { .. } | EngageError::UnexpectedResponse { .. }
        ) {
            // It may have reached Engage: it stays in flight and is checked in Engage before
            // any resend (after `recheck_after`, as Engage may still be processing it).
            tracing::warn!(
                op = op.as_str(),
                contacts = items.len(),
                "{e}; the contacts are checked in Engage before anything is sent again"
            );
            let reason = format!("sent without a usable answer ({e}); checked in Engage before anything is sent again");
            self.write(|tx| {
                for item in &items {
                    store::set_contact_reason(tx, item.id, &reason)?;
                }
                Ok(())
            })?;
            self.summary.sent_without_answer += items.len() as u64;
            return Ok(());
        }
        if matches!(&e, EngageError::Permanent { status, .. } if (400..500).contains(status)) {
            let reason = format!("Engage refused the whole bulk request: {e}");
            for item in &items {
                self.reject_contact(item, &reason)?;
            }
            return Ok(());
        }
        if e.ends_run() {
            let never_sent = matches!(e, EngageError::Deadline { .. });
            self.release(items, &e.to_string(), never_sent)?;
            return Err(e.into());
        }
        // 429 or failed connects until the retries ran out: certainly not processed.
        self.release(items, &e.to_string(), false)
    }

    /// Items back to pending with a reason.
    fn release(
        &mut self,
        items: Vec<ContactItem>,
        reason: &str,
        never_sent: bool,
    ) -> anyhow::Result<()> {
        let now = now_rfc3339();
        self.write(|tx| {
            for item in &items {
                store::contact_to_pending(tx, item.id, reason, never_sent, &now)?;
            }
            Ok(())
        })?;
        for item in &items {
            PushSummary::note(&mut self.summary.waiting, "contact", &item.name(), reason);
        }
        Ok(())
    }

    /// Polls every open batch until its outcome is recorded, `[local] bulk_poll_timeout`
    /// passes, or the deadline comes. `resume`: batches of earlier runs, polled at once.
    fn poll_batches(&mut self, resume: bool) -> anyhow::Result<()> {
        let first_wait = if resume {
            Duration::ZERO
        } else {
            self.local.bulk_poll_interval
        };
        let start = Instant::now();
        let mut open: Vec<(String, Op, Instant, Duration)> = store::open_batches(self.conn)?
            .into_iter()
            .map(|(b, op)| (b, op, start + first_wait, self.local.bulk_poll_interval))
            .collect();
        let give_up = start + self.local.bulk_poll_timeout;
        while !open.is_empty() {
            open.sort_by_key(|b| b.2);
            let due = open[0].2;
            if due > give_up || self.opts.deadline.is_some_and(|d| due >= d) {
                if self.opts.deadline.is_some_and(|d| due >= d) {
                    self.deadline_hit = true;
                }
                for (batch, _, _, _) in &open {
                    tracing::warn!(batch_id = %batch, "bulk batch still processing; the next push-local polls it again");
                }
                return Ok(());
            }
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            let (batch, op, _, interval) = open.remove(0);
            if !self.poll_once(&batch, op)? {
                crate::failpoint::hit("push.polled");
                let next = interval.mul_f64(1.5).min(MAX_POLL_INTERVAL);
                open.push((batch, op, Instant::now() + interval, next));
            }
        }
        Ok(())
    }

    /// One status poll; true when the batch's outcome is recorded.
    fn poll_once(&mut self, batch: &str, op: Op) -> anyhow::Result<bool> {
        self.summary.requests.status_polls += 1;
        let status = self.client.bulk_status(batch);
        self.write(|tx| store::count_poll(tx, batch))?;
        let now = now_rfc3339();
        match status {
            Ok(s) if s.state == BulkState::Completed => {
                self.record_batch(batch, op, &s.results)?;
                Ok(true)
            }
            Ok(s) if s.state == BulkState::Failed => {
                let reason = format!(
                    "Engage reports bulk batch {batch} as failed ({}); sent again after a check in Engage",
                    error_digest(s.raw.to_string().as_bytes())
                );
                let items = store::batch_items(self.conn, batch)?;
                self.write(|tx| {
                    for item in &items {
                        store::contact_to_pending(tx, item.id, &reason, false, &now)?;
                    }
                    store::finish_batch(tx, batch, "failed", &now)
                })?;
                tracing::warn!(batch_id = %batch, "{reason}");
                Ok(true)
            }
            Ok(s) => {
                if let BulkState::Other(word) = &s.state {
                    tracing::debug!(batch_id = %batch, state = %word, "unknown bulk state; polling on");
                }
                Ok(false)
            }
            Err(e) if e.ends_run() => Err(e.into()),
            Err(e @ EngageError::Permanent { status: 404, .. }) => {
                tracing::warn!(batch_id = %batch, "Engage does not know the batch ({e}); its contacts are checked in Engage instead");
                let items = store::batch_items(self.conn, batch)?;
                self.write(|tx| {
                    for item in &items {
                        store::forget_batch(tx, item.id, &now)?;
                    }
                    store::finish_batch(tx, batch, "lost", &now)
                })?;
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(batch_id = %batch, "polling the bulk batch failed: {e}; polling again later");
                Ok(false)
            }
        }
    }

    /// Records a completed batch's outcome for each of its items, all in one transaction with
    /// the batch's own state: a crash part way would otherwise leave some items recorded and
    /// the batch open, and the next run, polling it again, would place Engage's result rows
    /// (numbered over the whole request) against only the items still open, linking local
    /// contacts to the wrong Engage contacts. Items the answer does not settle (no contact id,
    /// an unknown word) leave the batch in the same transaction and are then checked in Engage
    /// by key or read back; a crash during those checks leaves them for the next run's
    /// recheck, like any item sent without an answer.
    fn record_batch(
        &mut self,
        batch: &str,
        op: Op,
        results: &[BulkRowResult],
    ) -> anyhow::Result<()> {
        let items = store::batch_items(self.conn, batch)?;
        let groups = rows_of(&items, op);
        let placed = place_results(&groups, &items, results);
        let mut fates = Vec::with_capacity(items.len());
        for (group, row) in groups.into_iter().zip(placed) {
            let outcome = match row {
                Some(r) => classify(r),
                None if results.is_empty() && op == Op::Update => {
                    RowOutcome::Done { existed: false }
                }
                None => RowOutcome::Unknown,
            };
            let row_id = row.and_then(|r| r.contact_id.clone());
            let word = row
                .map(|r| r.status.clone())
                .unwrap_or_else(|| "Completed".into());
            for idx in group {
                let item = items[idx].clone();
                let fate = match (&outcome, op, &row_id) {
                    (RowOutcome::Done { existed }, Op::Create, Some(id)) => Fate::Created {
                        id: id.clone(),
                        existed: *existed,
                        origin: if *existed {
                            Origin::Linked
                        } else {
                            Origin::Created
                        },
                        word: word.clone(),
                    },
                    // An id under a word we do not know: created by us if it was absent
                    // before the send, else unclear.
                    (RowOutcome::Unknown, Op::Create, Some(id)) => Fate::Created {
                        id: id.clone(),
                        existed: false,
                        origin: self.found_origin(&item, Stage::AfterSend).0,
                        word: word.clone(),
                    },
                    (RowOutcome::Done { .. } | RowOutcome::Unknown, Op::Create, None) => {
                        Fate::Check
                    }
                    (RowOutcome::Done { .. }, Op::Update, _) => Fate::Updated(word.clone()),
                    (RowOutcome::Unknown, Op::Update, _) => Fate::Verify,
                    (RowOutcome::Failed(msg), _, _) => self.row_failed(&item, msg)?,
                };
                fates.push((item, fate));
            }
        }
        let now = now_rfc3339();
        self.write(|tx| {
            for (item, fate) in &fates {
                record_fate(tx, item, fate, &now)?;
            }
            store::finish_batch(tx, batch, "completed", &now)
        })?;
        crate::failpoint::hit("push.batch_recorded");
        let (mut check_creates, mut verify) = (Vec::new(), Vec::new());
        for (item, fate) in fates {
            match fate {
                Fate::Created { origin, .. } => self.count_created(origin),
                Fate::Updated(_) => self.count_updated(),
                Fate::Rejected(reason) => self.count_rejected(&item, &reason),
                Fate::Dropped(reason) => self.count_dropped(&item, &reason),
                Fate::Check => check_creates.push(item),
                Fate::Verify => verify.push(item),
            }
        }
        for item in self.check_creates(check_creates, Stage::AfterSend)? {
            let key = lookup_key(&item.fields, &self.local.secondary_key)
                .map(|(_, name, value)| format!("{name} {}", masked(&name, &value)))
                .unwrap_or_default();
            let reason = format!("Engage completed bulk batch {batch} but has no contact with {key}, and reported no reason");
            self.reject_contact(&item, &reason)?;
        }
        self.verify_updates(verify)
    }

    /// A create Engage completed: delivered, and the local key linked to the id.
    fn created(
        &mut self,
        item: &ContactItem,
        id: &str,
        existed: bool,
        origin: Origin,
        word: &str,
    ) -> anyhow::Result<()> {
        let now = now_rfc3339();
        let local_key = item.local_key.clone().unwrap_or_default();
        self.write(|tx| {
            store::finish_contact(tx, item.id, State::Delivered, word, None, Some(id), &now)?;
            local::link(tx, &local_key, id, existed, &now)
        })?;
        self.count_created(origin);
        Ok(())
    }

    fn count_created(&mut self, origin: Origin) {
        match origin {
            Origin::Created => self.summary.contacts_created += 1,
            Origin::Linked => self.summary.contacts_linked_existing += 1,
            Origin::Unclear => self.summary.contacts_created_or_linked += 1,
        }
        self.progress.inc("contacts");
    }

    fn count_updated(&mut self) {
        self.summary.contacts_updated += 1;
        self.progress.inc("contacts");
    }

    fn count_rejected(&mut self, item: &ContactItem, reason: &str) {
        tracing::warn!(item = %item.name(), op = item.op.as_str(), "{reason}");
        self.summary.contacts_rejected += 1;
        PushSummary::note(&mut self.summary.rejected, "contact", &item.name(), reason);
        self.progress.inc("contacts");
    }

    fn count_dropped(&mut self, item: &ContactItem, reason: &str) {
        tracing::warn!(item = %item.name(), "update dropped: {reason}");
        self.summary.contacts_dropped += 1;
        PushSummary::note(&mut self.summary.dropped, "contact", &item.name(), reason);
        self.progress.inc("contacts");
    }

    fn updated(&mut self, item: &ContactItem, word: &str) -> anyhow::Result<()> {
        let now = now_rfc3339();
        self.write(|tx| {
            store::finish_contact(tx, item.id, State::Delivered, word, None, None, &now)
        })?;
        self.count_updated();
        Ok(())
    }

    /// A row Engage refused: rejected, or dropped for an update of a contact the replica
    /// knows is deleted.
    fn row_failed(&mut self, item: &ContactItem, msg: &str) -> anyhow::Result<Fate> {
        if item.op == Op::Update {
            if let Some(id) = &item.contact_id {
                if is_deleted_in_engage(self.conn, id)? {
                    return Ok(Fate::Dropped(format!(
                        "the contact was deleted in Engage ({msg})"
                    )));
                }
            }
        }
        Ok(Fate::Rejected(format!("Engage rejected it: {msg}")))
    }

    /// Reads each update's contact back from Engage: delivered when every sent field is
    /// there, pending again (sent again) when not, dropped when the contact is gone.
    fn verify_updates(&mut self, items: Vec<ContactItem>) -> anyhow::Result<()> {
        // Items not read back stay in flight and are checked by a later run.
        if items.is_empty() || self.past_deadline() {
            return Ok(());
        }
        let client = self.client;
        let mut results = Vec::new();
        parallel::run(
            self.opts.concurrency,
            items,
            |item| client.get_contact(item.contact_id.as_deref().unwrap_or_default()),
            |item, r| {
                let flow = match &r {
                    Err(e) if e.ends_run() => ControlFlow::Break(()),
                    _ => ControlFlow::Continue(()),
                };
                results.push((item, r));
                flow
            },
        );
        let mut stop = None;
        for (item, r) in results {
            self.summary.requests.contact_gets += 1;
            match r {
                Ok(None) => self.drop_contact(&item, "the contact no longer exists in Engage")?,
                Ok(Some(c)) if changed(&c.attributes, &item.fields, true).is_empty() => {
                    self.updated(&item, "Verified")?
                }
                Ok(Some(_)) => {
                    let now = now_rfc3339();
                    let reason = "sent earlier without a usable answer, and Engage does not show the change: sent again";
                    self.write(|tx| store::contact_to_pending(tx, item.id, reason, false, &now))?;
                }
                Err(e) if e.ends_run() => {
                    stop.get_or_insert(e);
                }
                Err(e) => self
                    .leave_unchecked(&item, &format!("could not be read back from Engage: {e}"))?,
            }
        }
        match stop {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Pending updates whose contact Engage knows, merged per contact, in bulk updates.
    fn send_updates(&mut self) -> anyhow::Result<()> {
        let mut after = 0;
        loop {
            if self.past_deadline() {
                return Ok(());
            }
            let items = store::pending_contacts(self.conn, Op::Update, after, BULK_MAX)?;
            let Some(last) = items.last() else {
                return Ok(());
            };
            after = last.id;
            let mut targets = BTreeMap::new();
            let mut ready = Vec::new();
            for item in items {
                match self.update_target(&item)? {
                    Some(t) => {
                        targets.insert(item.id, t);
                        ready.push(item);
                    }
                    None => continue,
                }
            }
            let claimed = self.claim(ready, &targets)?;
            let groups = rows_of(&claimed, Op::Update);
            let rows = groups
                .iter()
                .map(|g| update_row(g.iter().map(|&i| &claimed[i])))
                .collect();
            self.send_bulk(Op::Update, claimed, rows, &BulkOptions::default())?;
        }
    }

    /// The contact an update goes to, or `None` when it must wait (its contact is not in
    /// Engage yet) or was dropped (its contact was deleted in Engage).
    fn update_target(&mut self, item: &ContactItem) -> anyhow::Result<Option<String>> {
        let target = match (&item.contact_id, &item.local_key) {
            (Some(id), _) => Some(id.clone()),
            (None, Some(k)) => resolve_local_key(self.conn, k)?,
            (None, None) => None,
        };
        let Some(target) = target else {
            let k = item.local_key.clone().unwrap_or_default();
            let reason = format!("waiting for its contact {k} to be created in Engage");
            self.write(|tx| store::set_contact_reason(tx, item.id, &reason))?;
            PushSummary::note(&mut self.summary.waiting, "contact", &item.name(), &reason);
            return Ok(None);
        };
        if is_deleted_in_engage(self.conn, &target)? {
            let reason = format!(
                "the contact {target} was deleted in Engage (seen by delta or changes) after this \
                 change was made at the till; a change to a deleted contact is not pushed"
            );
            self.drop_contact(item, &reason)?;
            return Ok(None);
        }
        Ok(Some(target))
    }
}

/// The request rows of `items` as index groups: one row per create; one row per target contact
/// for updates (in order of first appearance, so the grouping is the same when the batch's
/// outcome is recorded, possibly by a later run).
fn rows_of(items: &[ContactItem], op: Op) -> Vec<Vec<usize>> {
    if op == Op::Create {
        return (0..items.len()).map(|i| vec![i]).collect();
    }
    let mut order: Vec<&str> = Vec::new();
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let target = item.contact_id.as_deref().unwrap_or_default();
        if !groups.contains_key(target) {
            order.push(target);
        }
        groups.entry(target).or_default().push(i);
    }
    order.into_iter().filter_map(|t| groups.remove(t)).collect()
}

/// One bulk update row: the target (as `contactId` and `id`) and the changes of every item for
/// it, later items winning.
fn update_row<'a>(items: impl Iterator<Item = &'a ContactItem>) -> Value {
    let mut row = Map::new();
    for item in items {
        if let Some(id) = &item.contact_id {
            row.insert("contactId".into(), Value::String(id.clone()));
            row.insert("id".into(), Value::String(id.clone()));
        }
        for (k, v) in &item.fields {
            row.insert(k.clone(), v.clone());
        }
    }
    Value::Object(row)
}

/// Which result row answers each request row: by `index` when Engage reports one, else by
/// position when the counts agree, else (creates) by key.
fn place_results<'r>(
    groups: &[Vec<usize>],
    items: &[ContactItem],
    results: &'r [BulkRowResult],
) -> Vec<Option<&'r BulkRowResult>> {
    let mut placed: Vec<Option<&BulkRowResult>> = vec![None; groups.len()];
    if results.iter().any(|r| r.index.is_some()) {
        for r in results {
            if let Some(slot) = r.index.and_then(|i| placed.get_mut(i as usize)) {
                *slot = Some(r);
            }
        }
    } else if results.len() == groups.len() {
        for (slot, r) in placed.iter_mut().zip(results) {
            *slot = Some(r);
        }
    } else {
        for (slot, group) in placed.iter_mut().zip(groups) {
            let item = &items[group[0]];
            *slot = results.iter().find(|r| {
                r.key.as_deref().is_some_and(|k| {
                    CREATE_KEYS.iter().chain(["contactId"].iter()).any(|name| {
                        let value = if *name == "contactId" {
                            item.contact_id.as_deref()
                        } else {
                            item.fields.get(*name).and_then(Value::as_str)
                        };
                        value.is_some_and(|v| v.eq_ignore_ascii_case(k.trim()))
                    })
                })
            });
        }
    }
    placed
}

/// Reads a row's word. Engage's words are unconfirmed, so they are matched loosely; a word
/// that fits nothing is `Unknown` and the item is checked instead.
fn classify(row: &BulkRowResult) -> RowOutcome {
    let w = row.status.to_ascii_lowercase();
    let has = |parts: &[&str]| parts.iter().any(|p| w.contains(p));
    if has(&[
        "fail",
        "error",
        "invalid",
        "reject",
        "notfound",
        "not found",
        "missing",
        "multiple",
    ]) {
        RowOutcome::Failed(row_digest(&row.status, row.message.as_deref()))
    } else if has(&["exist", "duplicate", "found"]) {
        RowOutcome::Done { existed: true }
    } else if has(&[
        "creat", "updat", "success", "ok", "done", "complete", "insert",
    ]) {
        RowOutcome::Done { existed: false }
    } else {
        RowOutcome::Unknown
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str, index: Option<u64>, key: Option<&str>) -> BulkRowResult {
        BulkRowResult {
            index,
            status: status.into(),
            contact_id: Some("x".into()),
            key: key.map(str::to_string),
            message: None,
        }
    }

    #[test]
    fn row_words_are_read_loosely() {
        assert!(matches!(
            classify(&row("Created", None, None)),
            RowOutcome::Done { existed: false }
        ));
        assert!(matches!(
            classify(&row("AlreadyExists", None, None)),
            RowOutcome::Done { existed: true }
        ));
        assert!(matches!(
            classify(&row("Failed", None, None)),
            RowOutcome::Failed(_)
        ));
        assert!(matches!(
            classify(&row("Whatever", None, None)),
            RowOutcome::Unknown
        ));
    }

    #[test]
    fn results_are_placed_by_index_position_or_key() {
        let item = |email: &str| ContactItem {
            id: 1,
            op: Op::Create,
            local_key: None,
            contact_id: None,
            fields: serde_json::json!({ "email": email })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            state: State::InFlight,
            attempts: 1,
            batch_id: None,
            sent_at: None,
            reason: None,
        };
        let items = vec![item("a@x.se"), item("b@x.se")];
        let groups = rows_of(&items, Op::Create);
        let by_index = [row("Created", Some(1), None), row("Failed", Some(0), None)];
        let placed = place_results(&groups, &items, &by_index);
        assert_eq!(placed[0].map(|r| r.status.as_str()), Some("Failed"));
        let by_key = [row("Created", None, Some("B@x.se"))];
        let placed = place_results(&groups, &items, &by_key);
        assert!(placed[0].is_none() && placed[1].is_some());
    }
}
