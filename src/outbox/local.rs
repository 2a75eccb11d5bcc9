//! Local contacts in the replica: the till's view of a contact registered or changed while
//! Engage may be unreachable.
//!
//! A contact registered at the till is a `contact` row with `local_key` set and `contact_id`
//! NULL, so `lookup` and the `contacts` view find it by any of its keys at once. When Engage
//! knows it, [`link`] records local key → contactId (in `local_key_link`, ids only, kept
//! forever) and puts the id on the row, so lookups by either key work.
//!
//! Local keys are `<prefix><number>`, the number from `local_key_seq`, which only grows and is
//! never purged: a key is never handed out twice, even after its contact is gone.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

use crate::config::Mode;
use crate::normalize::Country;
use crate::replica::queries;
use crate::replica::ContactRow;

/// Engage attribute → replica column, for the keys a contact can be found by.
pub const KEY_COLUMNS: [(&str, &str); 5] = [
    ("memberNumber", "member_number"),
    ("email", "email"),
    ("mobilePhone", "mobile_phone"),
    ("externalId", "external_id"),
    ("socialSecurityNumber", "social_security_number"),
];

/// A contact row as the outbox reads it.
#[derive(Debug, Clone)]
pub struct StoredContact {
    /// Row id (changes when `full` swaps in a new replica: never stored elsewhere).
    pub id: i64,
    /// Engage id, when Engage knows the contact.
    pub contact_id: Option<String>,
    /// Local key, for a contact registered at the till.
    pub local_key: Option<String>,
    /// The key columns, in the order of [`KEY_COLUMNS`].
    pub keys: [Option<String>; 5],
    /// `contactType`.
    pub contact_type: Option<String>,
    /// Every field as JSON (full mode).
    pub attributes: Option<String>,
    /// Version the row was written from (ms).
    pub version: i64,
}

impl StoredContact {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredContact> {
        Ok(StoredContact {
            id: r.get(0)?,
            contact_id: r.get(1)?,
            local_key: r.get(2)?,
            keys: [r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?],
            contact_type: r.get(8)?,
            attributes: r.get(9)?,
            version: r.get(10)?,
        })
    }

    /// What the replica knows of the contact, as Engage attributes: every field (full mode)
    /// with the normalised key columns on top; and whether that is every field (false in
    /// keys mode, where only the keys are known).
    pub fn fields(&self) -> (Map<String, Value>, bool) {
        let mut map = self
            .attributes
            .as_deref()
            .and_then(|a| serde_json::from_str::<Value>(a).ok())
            .and_then(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            });
        let complete = map.is_some();
        let mut fields = map.take().unwrap_or_default();
        fields.remove("contactId");
        for ((name, _), value) in KEY_COLUMNS.iter().zip(&self.keys) {
            match value {
                Some(v) => fields.insert((*name).to_string(), Value::String(v.clone())),
                None => fields.remove(*name),
            };
        }
        if let Some(t) = &self.contact_type {
            fields.insert("contactType".into(), Value::String(t.clone()));
        }
        (fields, complete)
    }

    /// The value of one key attribute.
    pub fn key(&self, attribute: &str) -> Option<&str> {
        KEY_COLUMNS
            .iter()
            .position(|(name, _)| *name == attribute)
            .and_then(|i| self.keys[i].as_deref())
    }

    /// Its ids for messages: `contactId …, localKey …`.
    pub fn describe(&self) -> String {
        match (&self.contact_id, &self.local_key) {
            (Some(id), Some(k)) => format!("contactId {id}, localKey {k}"),
            (Some(id), None) => format!("contactId {id}"),
            (None, Some(k)) => format!("localKey {k}"),
            (None, None) => format!("row {}", self.id),
        }
    }

    /// A `contact update` selector for it.
    pub fn selector(&self) -> String {
        match (&self.contact_id, &self.local_key) {
            (Some(id), _) => format!("--contact-id {id}"),
            (None, Some(k)) => format!("--local-key {k}"),
            (None, None) => String::new(),
        }
    }
}

/// Contacts whose `attribute` (a key attribute, `contactId` or `localKey`) equals `value`
/// (normalised by the caller).
pub fn find_by(
    conn: &Connection,
    attribute: &str,
    value: &str,
) -> rusqlite::Result<Vec<StoredContact>> {
    let column = match attribute {
        "contactId" => "contact_id",
        "localKey" => "local_key",
        other => match KEY_COLUMNS.iter().find(|(name, _)| *name == other) {
            Some((_, column)) => column,
            None => return Ok(Vec::new()),
        },
    };
    let mut stmt = conn.prepare_cached(&queries::outbox_contacts_by(column))?;
    let rows = stmt.query_map([value], StoredContact::from_row)?;
    rows.collect()
}

/// The first key of `fields` the replica already has, with the contacts holding it:
/// (attribute, value, contacts).
pub fn existing_with_keys(
    conn: &Connection,
    fields: &Map<String, Value>,
) -> rusqlite::Result<Option<(String, String, Vec<StoredContact>)>> {
    for (name, _) in KEY_COLUMNS {
        let Some(Value::String(value)) = fields.get(name) else {
            continue;
        };
        let found = find_by(conn, name, value)?;
        if !found.is_empty() {
            return Ok(Some((name.to_string(), value.clone(), found)));
        }
    }
    Ok(None)
}

/// The next local key of `prefix`: `L0600-000123`. The number comes from a sequence that only
/// grows; a number whose key is somehow in use already is skipped, not reused.
pub fn next_local_key(conn: &Connection, prefix: &str) -> rusqlite::Result<String> {
    loop {
        let n: i64 = conn.query_row(queries::NEXT_LOCAL_KEY_NUMBER, [prefix], |r| r.get(0))?;
        let key = format!("{prefix}{n:06}");
        let in_use: bool = conn.query_row(queries::LOCAL_KEY_IN_USE, [&key], |r| r.get(0))?;
        if !in_use {
            return Ok(key);
        }
    }
}

/// The replica's columns for `fields`, normalised as on import. `contact_id` is empty for a
/// contact Engage does not know yet (then `attributes` holds no contactId).
fn row_for(
    fields: &Map<String, Value>,
    contact_id: Option<&str>,
    mode: Mode,
    country: Country,
) -> ContactRow {
    let pairs = fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut row = ContactRow::from_fields(
        contact_id.unwrap_or_default().to_string(),
        pairs,
        mode,
        country,
    );
    if contact_id.is_none() {
        row.attributes = row
            .attributes
            .map(|a| match serde_json::from_str::<Value>(&a) {
                Ok(Value::Object(mut m)) => {
                    m.remove("contactId");
                    Value::Object(m).to_string()
                }
                _ => a,
            });
    }
    row
}

/// Inserts a contact registered at the till, visible to lookups at once.
pub fn insert_local(
    conn: &Connection,
    local_key: &str,
    fields: &Map<String, Value>,
    mode: Mode,
    country: Country,
    now: &str,
    version: i64,
) -> rusqlite::Result<()> {
    let row = row_for(fields, None, mode, country);
    conn.prepare_cached(queries::INSERT_LOCAL_CONTACT)?
        .execute(params![
            local_key,
            row.member_number,
            row.email,
            row.mobile_phone,
            row.external_id,
            row.social_security_number,
            row.contact_type,
            row.first_name,
            row.last_name,
            row.attributes,
            version,
            now,
        ])?;
    Ok(())
}

/// Rewrites a contact row with `fields` (all of them, after a change at the till). The version
/// moves past the stored one, so an export file older than the change cannot roll it back.
pub fn rewrite(
    conn: &Connection,
    stored: &StoredContact,
    fields: &Map<String, Value>,
    mode: Mode,
    country: Country,
    now: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    let row = row_for(fields, stored.contact_id.as_deref(), mode, country);
    conn.prepare_cached(queries::UPDATE_CONTACT_AT_TILL)?
        .execute(params![
            stored.id,
            row.member_number,
            row.email,
            row.mobile_phone,
            row.external_id,
            row.social_security_number,
            row.contact_type,
            row.first_name,
            row.last_name,
            row.attributes,
            now_ms.max(stored.version + 1),
            now,
        ])?;
    Ok(())
}

/// Links a local key to the contact Engage created or already had, in the caller's
/// transaction. `existed`: the contact was in Engage before (found by key, or "already
/// exists"), so Engage's data is the master and the next import may overwrite the till's.
///
/// If Engage's row for the contact reached the replica meanwhile (a delta or changes run), the
/// local row is removed and its key moved onto Engage's row; if the contact was deleted in
/// Engage meanwhile, the local row goes too (deleted in Engage means deleted here).
pub fn link(
    conn: &Connection,
    local_key: &str,
    contact_id: &str,
    existed: bool,
    now: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(queries::INSERT_LOCAL_KEY_LINK)?
        .execute(params![local_key, contact_id, now])?;
    let engage_row: Option<(i64, Option<String>)> = conn
        .prepare_cached(queries::ROW_FOR_CONTACT_ID)?
        .query_row([contact_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match engage_row {
        Some((id, None)) => {
            conn.prepare_cached(queries::DELETE_UNLINKED_LOCAL_ROW)?
                .execute([local_key])?;
            conn.prepare_cached(queries::SET_LOCAL_KEY_ON_ROW)?
                .execute(params![id, local_key])?;
        }
        Some((_, Some(other))) if other != local_key => {
            tracing::warn!(
                local_key,
                contact_id,
                other_local_key = %other,
                "two local contacts turned out to be the same Engage contact; both local keys \
                 resolve to it, the replica keeps both rows until the next full download"
            );
        }
        Some(_) => {}
        None if is_deleted_in_engage(conn, contact_id)? => {
            conn.prepare_cached(queries::DELETE_UNLINKED_LOCAL_ROW)?
                .execute([local_key])?;
        }
        None => {
            conn.prepare_cached(queries::LINK_LOCAL_ROW)?
                .execute(params![local_key, contact_id, existed, now])?;
        }
    }
    Ok(())
}

/// The Engage id a local key stands for, once known.
pub fn resolve_local_key(conn: &Connection, local_key: &str) -> rusqlite::Result<Option<String>> {
    let linked: Option<String> = conn
        .prepare_cached(queries::LINKED_CONTACT_ID)?
        .query_row([local_key], |r| r.get(0))
        .optional()?;
    if linked.is_some() {
        return Ok(linked);
    }
    Ok(find_by(conn, "localKey", local_key)?
        .into_iter()
        .find_map(|c| c.contact_id))
}

/// True when the replica has a tombstone for the id and no live row: Engage deleted the
/// contact.
pub fn is_deleted_in_engage(conn: &Connection, contact_id: &str) -> rusqlite::Result<bool> {
    let tombstoned: bool = conn
        .prepare_cached(queries::IS_TOMBSTONED)?
        .query_row([contact_id], |r| r.get(0))?;
    if !tombstoned {
        return Ok(false);
    }
    let live: bool = conn
        .prepare_cached(queries::IS_LIVE_CONTACT)?
        .query_row([contact_id], |r| r.get(0))?;
    Ok(!live)
}
