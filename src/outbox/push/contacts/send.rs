//! Sending pending items: creates (checked by key where needed) and updates (merged per
//! contact), in bulk requests whose batch id is stored before anything else happens.

use std::collections::BTreeMap;

use serde_json::Value;

use super::super::{PushSummary, Pusher};
use super::rows::{rows_of, update_row};
use super::Stage;
use crate::engage::{BulkOptions, EngageError, BULK_MAX};
use crate::outbox::local::{is_deleted_in_engage, resolve_local_key};
use crate::outbox::store::{self, ContactItem, Op};
use crate::time::now_rfc3339;

impl Pusher<'_> {
    /// Pending creates, in chunks of at most 4000: checked by key where needed, then sent.
    pub(super) fn send_creates(&mut self) -> anyhow::Result<()> {
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
    pub(super) fn create_row(&self, item: &ContactItem) -> Value {
        let mut row = item.fields.clone();
        if let (Some(attr), Some(key)) = (&self.local.local_key_attribute, &item.local_key) {
            row.entry(attr.clone())
                .or_insert_with(|| Value::String(key.clone()));
        }
        Value::Object(row)
    }

    /// Sends one bulk request for `items` (claimed, in id order; `rows` in the same order) and
    /// stores the batch id before anything else happens.
    pub(super) fn send_bulk(
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
    pub(super) fn bulk_failed(
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

    /// Pending updates whose contact Engage knows, merged per contact, in bulk updates.
    pub(super) fn send_updates(&mut self) -> anyhow::Result<()> {
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
    pub(super) fn update_target(&mut self, item: &ContactItem) -> anyhow::Result<Option<String>> {
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
