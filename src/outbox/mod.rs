//! The offline outboxes (docs/contract.md §6): contacts and receipts registered at the till while
//! Engage may be unreachable, and `push-local`, which delivers them once, never twice, dropping
//! nothing.
//!
//! - [`fields`]: contact fields as given at the till, validated and normalised.
//! - [`input`]: JSON documents (one object, an array, or one object per line), streamed.
//! - [`local`]: contacts at the till, in the till store: keys that are never reused, rows the
//!   POS sees at once, and the link local key → contactId once Engage knows the contact.
//! - [`store`]: the outbox tables: queueing, merging, claiming, recording outcomes, status and
//!   purge.
//! - [`receipt`]: receipt validation and the contact a receipt names.
//! - [`till`]: what `contact add`, `contact update` and `receipt add` do, in one transaction.
//! - [`push`]: the push itself.
//!
//! Invariants every module keeps:
//! - an item is `pending` until a run claims it (`in_flight`, in the same transaction that
//!   reads what will be sent); its outcome is recorded in a later transaction. An item left
//!   `in_flight` by a crash is never sent again blindly: a create is looked up by key first,
//!   an update is compared with Engage's contact, a receipt is re-posted (Engage ignores a
//!   `uniqueReceiptId` it has);
//! - a bulk batch id is stored before its status is polled;
//! - delivered, rejected and dropped items stay until `purge`;
//! - the till commands never take the writer lock, nor the replica's SQLite lock (checkout
//!   must not wait for a sync): they write the till store (`till_store`) in short
//!   transactions, which its busy timeout serialises with `push-local` and `purge` only.

pub mod fields;
pub mod input;
pub mod local;
pub mod push;
pub mod receipt;
pub mod register;
pub mod store;
pub mod till;

use crate::error::{Coded, ExitCode};

/// What the outbox commands refuse, each with its exit code (docs/contract.md §8).
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// A field of a contact or receipt is missing or wrong (65).
    #[error("{item}: {field}: {problem}")]
    Invalid {
        /// Which contact or receipt (`contact 3`, `receipt R-1001`).
        item: String,
        /// The field, as a path (`items[0].sku`).
        field: String,
        /// What is wrong and how to fix it (personal values masked).
        problem: String,
    },
    /// Two flags, or a flag and the JSON document, give the same field (65).
    #[error(
        "{first} and {second} both give the field {field}; give it once (engage-sync does not \
         guess which value is meant)"
    )]
    Conflict {
        /// The first source, as given (`--email`, `--from FILE ("email")`).
        first: String,
        /// The second source.
        second: String,
        /// The field.
        field: String,
    },
    /// A JSON document could not be read (65).
    #[error("{0}")]
    Document(String),
    /// The replica already has a contact with one of the new contact's keys (65).
    #[error(
        "{item}: refused: the replica already has a contact with {key} ({existing}); change \
         that contact with `engage-sync contact update {selector} …` instead of adding it again"
    )]
    DuplicateContact {
        /// Which contact of the input.
        item: String,
        /// The key that matched, masked (`email a***@example.com`).
        key: String,
        /// The existing contacts' ids and local keys.
        existing: String,
        /// A `contact update` selector for the existing contact.
        selector: String,
    },
    /// Two contacts of one input share a key (65). The earlier one is named by its position:
    /// its local key does not exist once the input is refused.
    #[error(
        "{item} has the same {key} as {earlier} of this input: the input registers one \
         customer twice. Nothing from this input was registered (it is applied whole or not at \
         all); remove one of the two, or merge their fields, and run again"
    )]
    DuplicateInInput {
        /// The later contact (`contact #5`).
        item: String,
        /// The earlier one (`contact #2`).
        earlier: String,
        /// The shared key, masked (`email a***@example.com`).
        key: String,
    },
    /// Two receipts of one input have the same `uniqueReceiptId` but differ (65).
    #[error(
        "receipt #{position} has the uniqueReceiptId {unique_receipt_id} of receipt \
         #{earlier} of this input, with different content. Nothing from this input was \
         buffered (it is applied whole or not at all); give each purchase its own \
         uniqueReceiptId and run again"
    )]
    ReceiptTwiceInInput {
        /// The shared id.
        unique_receipt_id: String,
        /// The later receipt's position (1-based).
        position: usize,
        /// The earlier one's.
        earlier: usize,
    },
    /// Another receipt with this `uniqueReceiptId` is already buffered (65).
    #[error(
        "receipt {unique_receipt_id}: a different receipt with this uniqueReceiptId is already \
         buffered ({state}); a finalized receipt cannot be changed: give a new receipt its own \
         uniqueReceiptId"
    )]
    ReceiptConflict {
        /// The receipt's id.
        unique_receipt_id: String,
        /// The buffered one's state.
        state: String,
    },
    /// `contact update` found no contact (65).
    #[error(
        "no contact in the replica matches {selector}; check the key, or register the contact \
         with `engage-sync contact add`"
    )]
    NoSuchContact {
        /// The selector, masked.
        selector: String,
    },
    /// `contact update` found several contacts (65).
    #[error("{count} contacts in the replica match {selector} ({which}); select one with --contact-id or --local-key")]
    AmbiguousContact {
        /// The selector, masked.
        selector: String,
        /// How many matched.
        count: usize,
        /// Their ids and local keys.
        which: String,
    },
    /// Engage rejected items in this push (65). They are kept with Engage's reason.
    #[error(
        "Engage rejected {count} item(s) in this run; they are kept with Engage's reason (listed \
         above and by `engage-sync status`). Fix them (`contact update`, or re-add a corrected \
         receipt under a new uniqueReceiptId), then run `push-local --retry-rejected`"
    )]
    Rejected {
        /// Items rejected in this run.
        count: u64,
    },
    /// Items are left for the next run (75).
    #[error("{left} item(s) are not delivered yet ({detail}); the next push-local continues")]
    Incomplete {
        /// Items pending or in flight.
        left: u64,
        /// Why, briefly.
        detail: String,
    },
}

impl Coded for OutboxError {
    fn exit_code(&self) -> ExitCode {
        match self {
            OutboxError::Incomplete { .. } => ExitCode::TempFail,
            _ => ExitCode::DataErr,
        }
    }
}

pub use crate::mask::scrub;

/// An item state, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting to be sent.
    Pending,
    /// Claimed or sent by a run; outcome not recorded yet.
    InFlight,
    /// Engage has it.
    Delivered,
    /// Engage refused it; `reason` says why. Kept, never retried on its own.
    Rejected,
    /// Not sent and never will be (e.g. the contact was deleted in Engage); `reason` says why.
    Dropped,
}

impl State {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::InFlight => "in_flight",
            State::Delivered => "delivered",
            State::Rejected => "rejected",
            State::Dropped => "dropped",
        }
    }

    /// Parses the stored word (unknown words read as in flight: never resent blindly).
    pub fn parse(s: &str) -> State {
        match s {
            "pending" => State::Pending,
            "delivered" => State::Delivered,
            "rejected" => State::Rejected,
            "dropped" => State::Dropped,
            _ => State::InFlight,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every state reads back as itself from the word stored for it, and a word the store
    /// never wrote reads as in flight, which is never sent again without a check.
    #[test]
    fn every_state_reads_back_from_its_stored_word() {
        for state in [
            State::Pending,
            State::InFlight,
            State::Delivered,
            State::Rejected,
            State::Dropped,
        ] {
            assert_eq!(State::parse(state.as_str()), state, "{}", state.as_str());
        }
        assert_eq!(State::parse("sent?"), State::InFlight);
    }

    #[test]
    fn engage_texts_are_scrubbed() {
        let s =
            scrub("The value of 'socialSecurityNumber' is not valid: \"19800101-1234\" (a@b.se)");
        assert!(!s.contains("19800101") && !s.contains("a@b"), "{s}");
        assert!(s.contains("socialSecurityNumber"), "{s}");
    }
}
