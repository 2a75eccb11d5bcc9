//! Recording one contact item's outcome (each in its own transaction) and counting it in the
//! summary and the progress.

use super::super::{PushSummary, Pusher};
use super::Origin;
use crate::outbox::local;
use crate::outbox::store::{self, ContactItem};
use crate::outbox::State;
use crate::time::now_rfc3339;

impl Pusher<'_> {
    /// An item whose check did not happen: claimed-only items go back to pending, items sent
    /// before stay in flight (they must be checked before anything is sent again).
    pub(super) fn leave_unchecked(
        &mut self,
        item: &ContactItem,
        reason: &str,
    ) -> anyhow::Result<()> {
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

    pub(super) fn reject_contact(
        &mut self,
        item: &ContactItem,
        reason: &str,
    ) -> anyhow::Result<()> {
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

    pub(super) fn drop_contact(&mut self, item: &ContactItem, reason: &str) -> anyhow::Result<()> {
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

    /// A create Engage completed: delivered, and the local key linked to the id.
    pub(super) fn created(
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

    pub(super) fn count_created(&mut self, origin: Origin) {
        match origin {
            Origin::Created => self.summary.contacts_created += 1,
            Origin::Linked => self.summary.contacts_linked_existing += 1,
            Origin::Unclear => self.summary.contacts_created_or_linked += 1,
        }
        self.progress.inc("contacts");
    }

    pub(super) fn count_updated(&mut self) {
        self.summary.contacts_updated += 1;
        self.progress.inc("contacts");
    }

    pub(super) fn count_rejected(&mut self, item: &ContactItem, reason: &str) {
        tracing::warn!(item = %item.name(), op = item.op.as_str(), "{reason}");
        self.summary.contacts_rejected += 1;
        PushSummary::note(&mut self.summary.rejected, "contact", &item.name(), reason);
        self.progress.inc("contacts");
    }

    pub(super) fn count_dropped(&mut self, item: &ContactItem, reason: &str) {
        tracing::warn!(item = %item.name(), "update dropped: {reason}");
        self.summary.contacts_dropped += 1;
        PushSummary::note(&mut self.summary.dropped, "contact", &item.name(), reason);
        self.progress.inc("contacts");
    }

    pub(super) fn updated(&mut self, item: &ContactItem, word: &str) -> anyhow::Result<()> {
        let now = now_rfc3339();
        self.write(|tx| {
            store::finish_contact(tx, item.id, State::Delivered, word, None, None, &now)
        })?;
        self.count_updated();
        Ok(())
    }
}
