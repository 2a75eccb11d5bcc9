//! Contacts at the till: the till's version of a contact registered or changed while Engage
//! may be unreachable, in the till store (`till_contact`).
//!
//! Every read goes through the `contacts` view, which shows what a reader sees: Engage's
//! contacts from the replica, with the till's rows instead where they are newer. A contact
//! registered at the till is a `till_contact` row with `local_key` set and `contact_id` NULL,
//! so `lookup` and the view find it by any of its keys at once. When Engage knows it, [`link`]
//! records local key → contactId (in `local_key_link`, ids only, kept forever) and puts the id
//! on the row, so lookups by either key work, also once the replica's row of the contact has
//! overtaken the till's.
//!
//! Local keys are `<prefix><number>`, the number from `local_key_seq`, which only grows and is
//! never purged: a key is never handed out twice, even after its contact is gone.

use rusqlite::{params, Connection, OptionalExtension, ToSql};
use serde_json::{Map, Value};

use crate::config::Mode;
use crate::normalize::Country;
use crate::replica::ContactRow;
use crate::till_store::queries;

/// Engage attribute → replica column, for the keys a contact can be found by.
pub const KEY_COLUMNS: [(&str, &str); 5] = [
    ("memberNumber", "member_number"),
    ("email", "email"),
    ("mobilePhone", "mobile_phone"),
    ("externalId", "external_id"),
    ("socialSecurityNumber", "social_security_number"),
];

/// A contact as the outbox reads it (a row of the `contacts` view).
#[derive(Debug, Clone)]
pub struct StoredContact {
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
}

impl StoredContact {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredContact> {
        Ok(StoredContact {
            contact_id: r.get(0)?,
            local_key: r.get(1)?,
            keys: [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?],
            contact_type: r.get(7)?,
            attributes: r.get(8)?,
        })
    }

    /// Whether `other` is the same contact: the same Engage id, or (Engage knowing neither)
    /// the same local key.
    pub fn is_same(&self, other: &StoredContact) -> bool {
        match (&self.contact_id, &other.contact_id) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.local_key.is_some() && self.local_key == other.local_key,
            _ => false,
        }
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
            (None, None) => "a contact without ids".to_string(),
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

/// The first key of `fields` a contact readers see already has, with those contacts:
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
    let mut values: Vec<&dyn ToSql> = vec![&local_key];
    values.extend(data_params(&row, &version, &now));
    conn.prepare_cached(queries::INSERT_LOCAL_CONTACT)?
        .execute(values.as_slice())?;
    Ok(())
}

/// A till row's columns after its key(s), in the order the till's statements take them
/// (`member_number` … `attributes`, `version`, `updated_at`).
fn data_params<'a>(row: &'a ContactRow, version: &'a i64, now: &'a &str) -> [&'a dyn ToSql; 11] {
    let [m, e, p, x, s, t, f, l, a] = row.data_columns();
    [m, e, p, x, s, t, f, l, a, version, now]
}

/// Writes the till's version of a contact with `fields` (all of them, after a change at the
/// till): the till row of a local contact, or the till's row of an Engage contact (created on
/// its first change). The version moves past every stored one, so readers see the change at
/// once and an export file older than the change cannot roll it back.
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
    let newest: Option<i64> = conn
        .prepare_cached(queries::CONTACT_VERSION)?
        .query_row(params![stored.contact_id, stored.local_key], |r| r.get(0))?;
    let version = newest.map_or(now_ms, |v| now_ms.max(v + 1));
    let data = data_params(&row, &version, &now);
    let (sql, key) = match (&stored.contact_id, &stored.local_key) {
        (Some(id), _) => (queries::UPDATE_TILL_CONTACT_BY_ID, id),
        (None, Some(k)) => (queries::UPDATE_TILL_CONTACT_BY_LOCAL_KEY, k),
        (None, None) => return Ok(()),
    };
    let mut values: Vec<&dyn ToSql> = vec![key];
    values.extend(data);
    if conn.prepare_cached(sql)?.execute(values.as_slice())? == 0 {
        let mut values: Vec<&dyn ToSql> = vec![&stored.contact_id, &stored.local_key];
        values.extend(data);
        conn.prepare_cached(queries::INSERT_TILL_CONTACT)?
            .execute(values.as_slice())?;
    }
    Ok(())
}

/// Links a local key to the contact Engage created or already had, in the caller's
/// transaction. `existed`: the contact was in Engage before (found by key, or "already
/// exists"), so Engage's data is the master and the replica's row wins as soon as it is there.
///
/// If the contact was deleted in Engage meanwhile, the local row goes (deleted in Engage means
/// deleted here).
pub fn link(
    conn: &Connection,
    local_key: &str,
    contact_id: &str,
    existed: bool,
    now: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(queries::INSERT_LOCAL_KEY_LINK)?
        .execute(params![local_key, contact_id, now])?;
    if is_deleted_in_engage(conn, contact_id)? {
        conn.prepare_cached(queries::DELETE_UNLINKED_LOCAL_ROW)?
            .execute([local_key])?;
    } else {
        conn.prepare_cached(queries::LINK_LOCAL_ROW)?
            .execute(params![local_key, contact_id, existed, now])?;
    }
    Ok(())
}

/// Deletes the till rows readers no longer see (`queries::PRUNE_OVERTAKEN`): the replica has
/// overtaken them, or Engage deleted the contact. Returns how many (counted only when `apply`
/// is false, for dry runs).
pub fn prune_overtaken(conn: &Connection, apply: bool) -> rusqlite::Result<u64> {
    Ok(if apply {
        conn.execute(queries::PRUNE_OVERTAKEN, [])? as u64
    } else {
        conn.query_row(queries::COUNT_OVERTAKEN, [], |r| r.get::<_, i64>(0))? as u64
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(id: Option<&str>, local: Option<&str>) -> StoredContact {
        StoredContact {
            contact_id: id.map(Into::into),
            local_key: local.map(Into::into),
            keys: [
                Some("M1".into()),
                Some("a@example.com".into()),
                Some("+46701234567".into()),
                None,
                Some("197001011234".into()),
            ],
            contact_type: Some("Member".into()),
            attributes: None,
        }
    }

    /// Two views of one contact are the same when they share the Engage id, or, for contacts
    /// Engage does not know yet, the local key; a key another contact holds is a duplicate.
    #[test]
    fn the_same_contact_is_known_by_its_id_or_else_its_local_key() {
        let engage = contact(Some("c1"), Some("L1"));
        assert!(engage.is_same(&contact(Some("c1"), None)));
        assert!(!engage.is_same(&contact(Some("c2"), Some("L1"))));
        assert!(!engage.is_same(&contact(None, Some("L1"))));
        let local = contact(None, Some("L1"));
        assert!(local.is_same(&contact(None, Some("L1"))));
        assert!(!local.is_same(&contact(None, Some("L2"))));
        assert!(!contact(None, None).is_same(&contact(None, None)));
    }

    /// Each key attribute reads its own column; an attribute that is no key, or a key with no
    /// value, reads nothing.
    #[test]
    fn a_key_is_read_by_its_attribute_name() {
        let c = contact(Some("c1"), None);
        let read: Vec<Option<&str>> = KEY_COLUMNS.iter().map(|(name, _)| c.key(name)).collect();
        assert_eq!(
            read,
            [
                Some("M1"),
                Some("a@example.com"),
                Some("+46701234567"),
                None,
                Some("197001011234")
            ]
        );
        assert_eq!(c.key("firstName"), None);
        assert_eq!(c.key("contactId"), None);
    }
}
