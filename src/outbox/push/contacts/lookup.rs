//! Looking creates up in Engage by key: before a (re-)send, and after a send no answer
//! settled.

use std::ops::ControlFlow;

use super::super::{lookup_key, Pusher};
use super::{Origin, Stage};
use crate::engage::EngageError;
use crate::outbox::store::ContactItem;

/// One lookup's answer: the contact id Engage has for the item's key (`None`: no contact),
/// or the error (`Err(None)`: the item has no key to look up, so no request was made).
struct Answer {
    item: ContactItem,
    result: Result<Option<String>, Option<EngageError>>,
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

impl Pusher<'_> {
    /// Looks each create up in Engage by key: found ones are linked and delivered, refused
    /// ones rejected; returns those Engage does not have. Items whose lookup failed for now
    /// stay as they are (in flight) with the reason; an error that ends the run is returned
    /// after the finished lookups are recorded. `stage` says what a found contact means.
    pub(super) fn check_creates(
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
        let (answers, unstarted) = self.look_up(items);
        let mut absent = Vec::new();
        let mut stop: Option<EngageError> = None;
        for Answer { item, result } in answers {
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

    /// Sends the lookups concurrently (`EngageClient::find_contact_ids`); an error that ends
    /// the run starts no further lookup. Returns the answers (in completion order) and the
    /// items never looked up.
    fn look_up(&self, items: Vec<ContactItem>) -> (Vec<Answer>, Vec<ContactItem>) {
        let secondary = &self.local.secondary_key;
        let mut answers = Vec::new();
        let unstarted = self.client.find_contact_ids(
            items,
            |item| lookup_key(&item.fields, secondary).map(|key| (key.param, key.value)),
            |item, answer| {
                let result = match answer {
                    None => Err(None),
                    Some(found) => found.map_err(Some),
                };
                let flow = match &result {
                    Err(Some(e)) if e.ends_run() => ControlFlow::Break(()),
                    _ => ControlFlow::Continue(()),
                };
                answers.push(Answer { item, result });
                flow
            },
        );
        (answers, unstarted)
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
    pub(super) fn found_origin(&self, item: &ContactItem, stage: Stage) -> (Origin, &'static str) {
        let absent_before_send = self.local.lookup_before_create || item.attempts > 1;
        match stage {
            Stage::BeforeSend if item.attempts <= 1 => (Origin::Linked, "Found"),
            // An earlier send of it may or may not have reached Engage.
            Stage::BeforeSend => (Origin::Unclear, "FoundAfterSend"),
            Stage::AfterSend if absent_before_send => (Origin::Created, "FoundAfterCreate"),
            Stage::AfterSend => (Origin::Unclear, "FoundAfterSend"),
        }
    }
}
