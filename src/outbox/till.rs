//! What the till commands do, inside the caller's transaction: register a contact, change one,
//! buffer a receipt. The commands only read input and print; everything that must be atomic
//! (the till's contact row, the local key, the queued item) happens here in one transaction
//! on the till store.

use std::collections::HashMap;

use chrono::Utc;
use rusqlite::Connection;
use serde::Serialize;
use serde_json::{Map, Value};

use super::fields::{self, masked, Purpose, Rules, CREATE_KEYS};
use super::local::{self, StoredContact};
use super::receipt::{self, ContactRef};
use super::store::{self, Op};
use super::{OutboxError, State};
use crate::config::{LocalSettings, Mode};
use crate::normalize::Country;
use crate::time::now_rfc3339;

/// The replica's and tenant's settings the till operations need.
#[derive(Debug, Clone, Copy)]
pub struct Till<'a> {
    /// The replica's mode.
    pub mode: Mode,
    /// For national phone numbers.
    pub country: Country,
    /// `[local]`.
    pub local: &'a LocalSettings,
}

/// A contact registered at the till.
#[derive(Debug, Clone, Serialize)]
pub struct Added {
    /// Its new local key.
    pub local_key: String,
    /// The fields queued for Engage (normalised).
    #[serde(skip)]
    pub fields: Map<String, Value>,
}

impl Till<'_> {
    fn rules(&self) -> Rules<'_> {
        Rules {
            country: self.country,
            contact_types: &self.local.contact_types,
        }
    }

    /// Registers a contact: checks its fields, refuses a key the replica already has, assigns
    /// a local key, writes the row (visible to lookups at once) and queues the create.
    /// `batch` holds the contacts registered before it from the same input (same transaction):
    /// a key one of them has is refused naming that contact's position in the input, never
    /// its local key, which the refusal rolls back and a later run gives to someone else.
    pub fn add_contact(
        &self,
        tx: &Connection,
        item: &str,
        raw: Map<String, Value>,
        batch: Option<&mut Batch>,
    ) -> anyhow::Result<Added> {
        let mut fields = fields::normalize(raw, &self.rules(), Purpose::Create, item)?;
        if let Some(store) = &self.local.store_external_id {
            fields
                .entry("createdInStore")
                .or_insert_with(|| Value::String(store.clone()));
        }
        if let Some((name, value, existing)) = local::existing_with_keys(tx, &fields)? {
            let earlier = batch.as_ref().and_then(|b| b.position_of(&existing));
            return Err(match earlier {
                Some(earlier) => OutboxError::DuplicateInInput {
                    item: item.to_string(),
                    earlier,
                    key: format!("{name} {}", masked(&name, &value)),
                },
                None => duplicate(item, &name, &value, &existing),
            }
            .into());
        }
        let local_key = local::next_local_key(tx, &self.local.key_prefix)?;
        if let Some(b) = batch {
            b.registered.insert(local_key.clone(), item.to_string());
        }
        let now = now_rfc3339();
        let version = Utc::now().timestamp_millis();
        local::insert_local(
            tx,
            &local_key,
            &fields,
            self.mode,
            self.country,
            &now,
            version,
        )?;
        store::queue_contact(tx, Op::Create, Some(&local_key), None, &fields, &now)?;
        Ok(Added { local_key, fields })
    }

    /// Changes the one contact `attribute = value` selects: the row at once, and the changed
    /// fields (only those) queued, merged into a create not yet sent or an update not yet
    /// sent.
    pub fn update_contact(
        &self,
        tx: &Connection,
        attribute: &str,
        value: &str,
        wanted: Map<String, Value>,
    ) -> anyhow::Result<Updated> {
        let selector = format!("{attribute} {}", masked(attribute, value));
        let stored = self.select(tx, attribute, value, &selector)?;
        let item = format!("contact {}", stored.describe());
        let changes = fields::normalize(wanted, &self.rules(), Purpose::Update, &item)?;
        let create = match (&stored.contact_id, &stored.local_key) {
            (None, Some(k)) => store::create_item_for(tx, k)?,
            _ => None,
        };
        let (mut current, complete) = match &create {
            Some(c) => (c.fields.clone(), true),
            None => stored.fields(),
        };
        let diff = fields::changed(&current, &changes, complete);
        let mut updated = Updated {
            contact: stored.describe(),
            fields: diff.keys().cloned().collect(),
            queued: "nothing changed, nothing queued",
        };
        if diff.is_empty() {
            return Ok(updated);
        }
        self.refuse_taken_keys(tx, &stored, &diff, &item)?;
        fields::apply(&mut current, &diff);
        let now = now_rfc3339();
        local::rewrite(
            tx,
            &stored,
            &current,
            self.mode,
            self.country,
            &now,
            Utc::now().timestamp_millis(),
        )?;
        updated.queued = self.queue_change(tx, &stored, create, &diff, &item, &now)?;
        Ok(updated)
    }

    /// The one contact a selector names.
    fn select(
        &self,
        tx: &Connection,
        attribute: &str,
        value: &str,
        selector: &str,
    ) -> anyhow::Result<StoredContact> {
        let mut found = local::find_by(tx, attribute, value)?;
        match found.len() {
            0 => Err(OutboxError::NoSuchContact {
                selector: selector.to_string(),
            }
            .into()),
            1 => Ok(found.remove(0)),
            n => Err(OutboxError::AmbiguousContact {
                selector: selector.to_string(),
                count: n,
                which: found
                    .iter()
                    .map(StoredContact::describe)
                    .collect::<Vec<_>>()
                    .join("; "),
            }
            .into()),
        }
    }

    /// A changed key another contact already has is refused, as on create.
    fn refuse_taken_keys(
        &self,
        tx: &Connection,
        stored: &StoredContact,
        diff: &Map<String, Value>,
        item: &str,
    ) -> anyhow::Result<()> {
        for (name, _) in local::KEY_COLUMNS {
            let Some(Value::String(v)) = diff.get(name) else {
                continue;
            };
            let others: Vec<StoredContact> = local::find_by(tx, name, v)?
                .into_iter()
                .filter(|c| !c.is_same(stored))
                .collect();
            if !others.is_empty() {
                return Err(duplicate(item, name, v, &others).into());
            }
        }
        Ok(())
    }

    /// Queues a change: into the local contact's create while it is not sent (or was
    /// rejected: the change may be the fix), else into a pending update, else as a new update.
    fn queue_change(
        &self,
        tx: &Connection,
        stored: &StoredContact,
        create: Option<store::ContactItem>,
        diff: &Map<String, Value>,
        item: &str,
        now: &str,
    ) -> anyhow::Result<&'static str> {
        if let Some(c) = create.filter(|c| matches!(c.state, State::Pending | State::Rejected)) {
            let mut merged = c.fields.clone();
            fields::apply(&mut merged, diff);
            if !CREATE_KEYS.iter().any(|k| merged.contains_key(*k)) {
                return Err(OutboxError::Invalid {
                    item: item.to_string(),
                    field: "email/mobilePhone/externalId/socialSecurityNumber".into(),
                    problem: "the change would leave the new contact without any key Engage can \
                              create it by"
                        .into(),
                }
                .into());
            }
            store::set_fields(tx, c.id, &merged, now)?;
            return Ok(if c.state == State::Rejected {
                "merged into its rejected create, which is queued again"
            } else {
                "merged into its queued create"
            });
        }
        let local_key = stored
            .local_key
            .as_deref()
            .filter(|_| stored.contact_id.is_none());
        match store::pending_update_for(tx, stored.contact_id.as_deref(), local_key)? {
            Some(u) => {
                let mut merged = u.fields.clone();
                fields::merge(&mut merged, diff);
                store::set_fields(tx, u.id, &merged, now)?;
                Ok("merged into its queued update")
            }
            None => {
                store::queue_contact(
                    tx,
                    Op::Update,
                    local_key,
                    stored.contact_id.as_deref(),
                    diff,
                    now,
                )?;
                Ok("queued as an update")
            }
        }
    }

    /// Checks and buffers one receipt (`position` is 1-based in its input). The same receipt
    /// twice is buffered once; another one under a buffered id is refused.
    pub fn add_receipt(
        &self,
        tx: &Connection,
        position: usize,
        doc: Value,
    ) -> anyhow::Result<ReceiptAdded> {
        let v = receipt::validate(
            doc,
            position,
            self.local.store_external_id.as_deref(),
            self.country,
        )?;
        if let Some(existing) = store::receipt_by_unique_id(tx, &v.unique_receipt_id)? {
            let stored: Value = serde_json::from_str(&existing.body).unwrap_or(Value::Null);
            if stored != v.body {
                return Err(OutboxError::ReceiptConflict {
                    unique_receipt_id: v.unique_receipt_id,
                    state: existing.state.as_str().to_string(),
                }
                .into());
            }
            return Ok(ReceiptAdded {
                unique_receipt_id: v.unique_receipt_id,
                status: "already_buffered",
                contact: format!(
                    "{} {}",
                    existing.ref_type,
                    masked(&existing.ref_type, &existing.ref_value)
                ),
                registered_local_key: None,
            });
        }
        let item = format!("receipt {}", v.unique_receipt_id);
        let (ref_type, ref_value, registered) = match v.contact {
            ContactRef::Key { key_type, value } => {
                if key_type == "localKey"
                    && local::resolve_local_key(tx, &value)?.is_none()
                    && local::find_by(tx, "localKey", &value)?.is_empty()
                {
                    return Err(OutboxError::Invalid {
                        item,
                        field: "contact.matchKey".into(),
                        problem: format!("no contact with local key {value} in the replica"),
                    }
                    .into());
                }
                (key_type, value, None)
            }
            ContactRef::Data(data) => self.contact_for_data(tx, &item, data)?,
        };
        let now = now_rfc3339();
        store::insert_receipt(
            tx,
            &v.unique_receipt_id,
            &v.body.to_string(),
            &ref_type,
            &ref_value,
            &now,
        )?;
        Ok(ReceiptAdded {
            unique_receipt_id: v.unique_receipt_id,
            status: "buffered",
            contact: format!("{ref_type} {}", masked(&ref_type, &ref_value)),
            registered_local_key: registered,
        })
    }

    /// The contact a receipt's contact data stands for: the replica's contact with one of its
    /// keys, else a new local contact (registered as `contact add` would). Whether Engage
    /// already has the customer is decided at push time (the contact is looked up by key
    /// before it is created), so a customer who signed up at the till but exists in Engage is
    /// never created twice.
    fn contact_for_data(
        &self,
        tx: &Connection,
        item: &str,
        data: Map<String, Value>,
    ) -> anyhow::Result<(String, String, Option<String>)> {
        let item = format!("{item}: contact");
        let fields = fields::normalize(data.clone(), &self.rules(), Purpose::Create, &item)?;
        if let Some((name, value, existing)) = local::existing_with_keys(tx, &fields)? {
            return Ok(match existing.as_slice() {
                [one] => match (&one.contact_id, &one.local_key) {
                    (Some(id), _) => ("contactId".into(), id.clone(), None),
                    (None, Some(k)) => ("localKey".into(), k.clone(), None),
                    (None, None) => (name, value, None),
                },
                _ => (name, value, None),
            });
        }
        let added = self.add_contact(tx, &item, data, None)?;
        Ok((
            "localKey".into(),
            added.local_key.clone(),
            Some(added.local_key),
        ))
    }
}

/// The contacts one input registered so far, by local key: what each was called in the
/// input (`contact #3`).
#[derive(Debug, Default)]
pub struct Batch {
    registered: HashMap<String, String>,
}

impl Batch {
    /// The input's name for the first of `existing` registered by this input, if any.
    fn position_of(&self, existing: &[local::StoredContact]) -> Option<String> {
        existing
            .iter()
            .filter_map(|c| c.local_key.as_ref())
            .find_map(|k| self.registered.get(k).cloned())
    }
}

/// What `contact update` did.
#[derive(Debug, Clone, Serialize)]
pub struct Updated {
    /// The contact's ids.
    pub contact: String,
    /// The fields that changed (names only).
    pub fields: Vec<String>,
    /// Where the change went.
    pub queued: &'static str,
}

/// What `receipt add` did with one receipt.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiptAdded {
    /// Its id.
    pub unique_receipt_id: String,
    /// `buffered` or `already_buffered`.
    pub status: &'static str,
    /// How it names its contact (key masked).
    pub contact: String,
    /// The local key of a contact registered from the receipt's contact data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered_local_key: Option<String>,
}

fn duplicate(item: &str, name: &str, value: &str, existing: &[StoredContact]) -> OutboxError {
    OutboxError::DuplicateContact {
        item: item.to_string(),
        key: format!("{name} {}", masked(name, value)),
        existing: existing
            .iter()
            .map(StoredContact::describe)
            .collect::<Vec<_>>()
            .join("; "),
        selector: existing
            .first()
            .map(StoredContact::selector)
            .unwrap_or_default(),
    }
}
