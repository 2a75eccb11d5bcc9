//! Reading updates back from Engage when no answer settled them.

use std::ops::ControlFlow;

use super::super::Pusher;
use crate::outbox::fields::changed;
use crate::outbox::store::{self, ContactItem};
use crate::time::now_rfc3339;

impl Pusher<'_> {
    /// Reads each update's contact back from Engage: delivered when every sent field is
    /// there, pending again (sent again) when not, dropped when the contact is gone.
    pub(super) fn verify_updates(&mut self, items: Vec<ContactItem>) -> anyhow::Result<()> {
        // Items not read back stay in flight and are checked by a later run.
        if items.is_empty() || self.past_deadline() {
            return Ok(());
        }
        let mut results = Vec::new();
        // Items not started stay in flight too.
        self.client.read_contacts(
            items,
            |item| item.contact_id.clone().unwrap_or_default(),
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
}
