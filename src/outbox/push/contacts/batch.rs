//! A completed bulk batch: the outcome of each of its items, recorded in one transaction.

use super::super::{lookup_key, Pusher};
use super::rows::{classify, place_results, rows_of, RowOutcome};
use super::{Origin, Stage};
use crate::engage::BulkRowResult;
use crate::outbox::fields::masked;
use crate::outbox::local::{self, is_deleted_in_engage};
use crate::outbox::store::{self, ContactItem, Op};
use crate::outbox::State;
use crate::time::now_rfc3339;

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

/// One item of a completed batch and its fate.
struct ItemFate {
    item: ContactItem,
    fate: Fate,
}

/// The answer to one request row: how its word reads, the contact id it names, and the word
/// (stored as the item's outcome).
struct RowAnswer {
    outcome: RowOutcome,
    contact_id: Option<String>,
    word: String,
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
    /// Records a completed batch's outcome for each of its items, all in one transaction with
    /// the batch's own state: a crash part way would otherwise leave some items recorded and
    /// the batch open, and the next run, polling it again, would place Engage's result rows
    /// (numbered over the whole request) against only the items still open, linking local
    /// contacts to the wrong Engage contacts. Items the answer does not settle (no contact id,
    /// an unknown word) leave the batch in the same transaction and are then checked in Engage
    /// by key or read back; a crash during those checks leaves them for the next run's
    /// recheck, like any item sent without an answer.
    pub(super) fn record_batch(
        &mut self,
        batch: &str,
        op: Op,
        results: &[BulkRowResult],
    ) -> anyhow::Result<()> {
        let fates = self.fates_of(batch, op, results)?;
        let now = now_rfc3339();
        self.write(|tx| {
            for ItemFate { item, fate } in &fates {
                record_fate(tx, item, fate, &now)?;
            }
            store::finish_batch(tx, batch, "completed", &now)
        })?;
        crate::failpoint::hit("push.batch_recorded");
        let (mut check_creates, mut verify) = (Vec::new(), Vec::new());
        for ItemFate { item, fate } in fates {
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
                .map(|k| format!("{} {}", k.attribute, masked(&k.attribute, &k.value)))
                .unwrap_or_default();
            let reason = format!("Engage completed bulk batch {batch} but has no contact with {key}, and reported no reason");
            self.reject_contact(&item, &reason)?;
        }
        self.verify_updates(verify)
    }

    /// The fate of each of the batch's items, from the result row that answers its request
    /// row (none: the status named no rows, or not this one).
    fn fates_of(
        &mut self,
        batch: &str,
        op: Op,
        results: &[BulkRowResult],
    ) -> anyhow::Result<Vec<ItemFate>> {
        let items = store::batch_items(self.conn, batch)?;
        let groups = rows_of(&items, op);
        let placed = place_results(&groups, &items, results);
        let mut fates = Vec::with_capacity(items.len());
        for (group, row) in groups.into_iter().zip(placed) {
            let answer = RowAnswer {
                outcome: match row {
                    Some(r) => classify(r),
                    None if results.is_empty() && op == Op::Update => {
                        RowOutcome::Done { existed: false }
                    }
                    None => RowOutcome::Unknown,
                },
                contact_id: row.and_then(|r| r.contact_id.clone()),
                word: row
                    .map(|r| r.status.clone())
                    .unwrap_or_else(|| "Completed".into()),
            };
            for idx in group {
                let item = items[idx].clone();
                let fate = self.fate_of(&item, op, &answer)?;
                fates.push(ItemFate { item, fate });
            }
        }
        Ok(fates)
    }

    /// What one request row's answer means for one of its items.
    fn fate_of(&mut self, item: &ContactItem, op: Op, answer: &RowAnswer) -> anyhow::Result<Fate> {
        let word = &answer.word;
        Ok(match (&answer.outcome, op, &answer.contact_id) {
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
                origin: self.found_origin(item, Stage::AfterSend).0,
                word: word.clone(),
            },
            (RowOutcome::Done { .. } | RowOutcome::Unknown, Op::Create, None) => Fate::Check,
            (RowOutcome::Done { .. }, Op::Update, _) => Fate::Updated(word.clone()),
            (RowOutcome::Unknown, Op::Update, _) => Fate::Verify,
            (RowOutcome::Failed(msg), _, _) => self.row_failed(item, msg)?,
        })
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
}
