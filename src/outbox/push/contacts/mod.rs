//! Contacts: bulk creates and updates, batch polling, and the checks that keep a contact from
//! being created twice.
//!
//! Engage's bulk write is unconfirmed in several ways (docs/engage-api.md §3 [U]): the answer is
//! read as a batch id; the status may report per-contact rows (matched by `index`, else by
//! position, else by key) or none at all (then each created contact is looked up by key, and
//! an update of a completed batch counts as delivered); a row whose word is unknown is checked
//! instead of guessed. An update row carries the target as both `contactId` and `id` (the
//! element key is unconfirmed; Engage ignores fields it does not know).
//!
//! The steps live in one file each: [`lookup`] (checks by key), [`send`] (claiming and bulk
//! requests), [`poll`] (batch status), [`batch`] (a completed batch's outcome per item),
//! [`verify`] (reading updates back) and [`outcome`] (recording and counting one item's
//! outcome); [`rows`] reads Engage's result rows.

mod batch;
mod lookup;
mod outcome;
mod poll;
mod rows;
mod send;
mod verify;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{PushSummary, Pusher};
use crate::outbox::store::{self, ContactItem, Op};
use crate::outbox::State;
use crate::time::now_rfc3339;

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

    /// Claims `items` for this run (in one transaction); returns those still pending, with
    /// their attempt count as claimed. `targets` are the update targets by item id.
    pub(super) fn claim(
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

    /// Items back to pending with a reason.
    pub(super) fn release(
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
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
