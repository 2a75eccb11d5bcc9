//! `push-local --dry-run`: what a push would do with each queued item and how it would be
//! keyed, decided from the replica alone. Nothing is sent (Engage is not contacted, so a dry
//! run works offline) and nothing is written.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::Connection;
use serde::Serialize;
use serde_json::Value;

use super::lookup_key;
use super::receipts::{describe, tag, Tag};
use crate::config::LocalSettings;
use crate::engage::BULK_MAX;
use crate::outbox::fields::masked;
use crate::outbox::local::{is_deleted_in_engage, resolve_local_key};
use crate::outbox::store::{self, ContactItem, Op};
use crate::outbox::State;

/// One item of a dry run.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedItem {
    /// `contact` or `receipt`.
    pub kind: &'static str,
    /// `create`, `update` or `post`.
    pub op: &'static str,
    /// Local key, contact id or uniqueReceiptId.
    pub item: String,
    /// What would happen.
    pub action: String,
}

/// Every undelivered item and what a push would do with it, in push order.
pub fn plan(conn: &Connection, local: &LocalSettings) -> rusqlite::Result<Vec<PlannedItem>> {
    let mut out = Vec::new();
    for item in store::in_flight_contacts(conn)? {
        out.push(contact(&item, in_flight_action(&item)));
    }
    let mut requests = 0usize;
    let mut after = 0;
    loop {
        let items = store::pending_contacts(conn, Op::Create, after, BULK_MAX)?;
        let Some(last) = items.last() else { break };
        after = last.id;
        // As the push sends them: a chunk of at most BULK_MAX creates is one bulk request per
        // contact type in it, the types in order.
        let types: BTreeSet<&str> = items.iter().map(contact_type).collect();
        let request_of: BTreeMap<&str, usize> = types
            .into_iter()
            .map(|t| {
                requests += 1;
                (t, requests)
            })
            .collect();
        for item in &items {
            let action = create_action(item, local, request_of[contact_type(item)]);
            out.push(contact(item, action));
        }
    }
    after = 0;
    loop {
        let items = store::pending_contacts(conn, Op::Update, after, BULK_MAX)?;
        let Some(last) = items.last() else { break };
        after = last.id;
        for item in items {
            let action = update_action(conn, &item)?;
            out.push(contact(&item, action));
        }
    }
    after = 0;
    loop {
        let items = store::pending_receipts(conn, after, 1000)?;
        let Some(last) = items.last() else { break };
        after = last.id;
        for r in items {
            let t = tag(conn, &r, &local.secondary_key)?;
            let action = match &t {
                Tag::Wait(reason) if reason.starts_with("waiting for its contact") => {
                    "posted after its contact is created earlier in this run, tagged with the \
                     contactId Engage gives it"
                        .to_string()
                }
                Tag::Ready { .. } => format!("posted, {}", describe(&t)),
                other => describe(other),
            };
            out.push(PlannedItem {
                kind: "receipt",
                op: "post",
                item: r.unique_receipt_id,
                action,
            });
        }
    }
    Ok(out)
}

fn contact(item: &ContactItem, action: String) -> PlannedItem {
    PlannedItem {
        kind: "contact",
        op: item.op.as_str(),
        item: item.name(),
        action,
    }
}

fn in_flight_action(item: &ContactItem) -> String {
    match (&item.batch_id, &item.sent_at) {
        (_, None) => "claimed by an earlier run but never sent: queued again".into(),
        (Some(b), _) => format!("in bulk batch {b}: its status is polled and the outcome recorded"),
        (None, Some(t)) => format!(
            "sent at {t} without an answer: checked in Engage (by key, or by reading the \
             contact back) before anything is sent again"
        ),
    }
}

/// A create's contact type, as the push groups creates by it (`""` when none is given).
fn contact_type(item: &ContactItem) -> &str {
    item.fields
        .get("contactType")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn create_action(item: &ContactItem, local: &LocalSettings, request: usize) -> String {
    let send = match contact_type(item) {
        "" => {
            format!("created in bulk create request {request} (the tenant's default contact type)")
        }
        t => format!("created in bulk create request {request} (contactType {t})"),
    };
    let check = local.lookup_before_create || item.attempts > 0;
    match lookup_key(&item.fields, &local.secondary_key) {
        Some(key) if check => format!(
            "looked up in Engage by {} {} first: linked if found, else {send}",
            key.attribute,
            masked(&key.attribute, &key.value)
        ),
        _ => send,
    }
}

fn update_action(conn: &Connection, item: &ContactItem) -> rusqlite::Result<String> {
    let fields: Vec<&str> = item.fields.keys().map(String::as_str).collect();
    let target = match (&item.contact_id, &item.local_key) {
        (Some(id), _) => Some(id.clone()),
        (None, Some(k)) => resolve_local_key(conn, k)?,
        (None, None) => None,
    };
    Ok(match target {
        Some(t) if is_deleted_in_engage(conn, &t)? => {
            format!("dropped: the contact {t} was deleted in Engage")
        }
        Some(t) => format!("bulk update of contactId {t}: {}", fields.join(", ")),
        None => {
            let k = item.local_key.clone().unwrap_or_default();
            let create = store::create_item_for(conn, &k)?.map(|c| c.state);
            match create {
                Some(State::Pending | State::InFlight) => format!(
                    "bulk update of {}, once {k} is created in Engage",
                    fields.join(", ")
                ),
                _ => format!("waits: its contact {k} is not in Engage"),
            }
        }
    })
}
