//! Applying contact changes with the version rule (SPEC §3): an older version never
//! overwrites a newer one, and a tombstone keeps an older upsert from resurrecting a contact.
//! Equal versions apply, so within one file the later entry wins.

use rusqlite::types::ToSql;
use rusqlite::{params, Connection, OptionalExtension, Statement};

use super::queries;
use super::row::ContactRow;

/// What one change did to the replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// A contact row was created.
    Inserted,
    /// An existing row was replaced.
    Updated,
    /// A contact was deleted (or a tombstone recorded for one never seen).
    Deleted,
    /// The replica already holds newer data (or a newer delete); nothing changed.
    Stale,
}

impl ApplyOutcome {
    /// Lower-case name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyOutcome::Inserted => "insert",
            ApplyOutcome::Updated => "update",
            ApplyOutcome::Deleted => "delete",
            ApplyOutcome::Stale => "skip (stale)",
        }
    }
}

/// The stored state of a contact that an upsert or delete compares against.
struct Stored {
    id: i64,
    version: i64,
    keys: [Option<String>; 5],
}

/// Prepared statements for applying many changes inside one transaction.
pub struct ContactWriter<'t> {
    conn: &'t Connection,
    find_contact: Statement<'t>,
    find_tombstone: Statement<'t>,
    insert: Statement<'t>,
    delete: Statement<'t>,
    upsert_tombstone: Statement<'t>,
    delete_tombstone: Statement<'t>,
    /// False while the tombstone table is known to be empty: a fresh replica's import then
    /// skips one lookup per contact.
    tombstones_exist: bool,
    now: String,
}

impl<'t> ContactWriter<'t> {
    /// Prepares the statements on `conn` (inside a transaction). `now` (UTC RFC 3339) is
    /// written as `updated_at` / `deleted_at`: one timestamp per file, as readers see the
    /// changes at once.
    pub fn new(conn: &'t Connection, now: String) -> rusqlite::Result<Self> {
        Ok(ContactWriter {
            conn,
            find_contact: conn.prepare(queries::FIND_CONTACT)?,
            find_tombstone: conn.prepare(queries::FIND_TOMBSTONE)?,
            insert: conn.prepare(queries::INSERT_CONTACT)?,
            delete: conn.prepare(queries::DELETE_CONTACT)?,
            upsert_tombstone: conn.prepare(queries::UPSERT_TOMBSTONE)?,
            delete_tombstone: conn.prepare(queries::DELETE_TOMBSTONE)?,
            tombstones_exist: conn.query_row(queries::ANY_TOMBSTONE, [], |r| r.get(0))?,
            now,
        })
    }

    /// Creates or replaces a contact with data of `version` (ms since epoch).
    pub fn upsert(&mut self, row: &ContactRow, version: i64) -> rusqlite::Result<ApplyOutcome> {
        let tombstone = self.tombstone(&row.contact_id)?;
        if tombstone.is_some_and(|t| t > version) {
            return Ok(ApplyOutcome::Stale);
        }
        let outcome = match self.stored(&row.contact_id)? {
            Some(stored) if stored.version > version => return Ok(ApplyOutcome::Stale),
            Some(stored) => {
                self.update(&stored, row, version)?;
                ApplyOutcome::Updated
            }
            None => {
                self.insert.execute(params![
                    row.contact_id,
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
                    self.now,
                ])?;
                ApplyOutcome::Inserted
            }
        };
        if tombstone.is_some() {
            self.delete_tombstone.execute([&row.contact_id])?;
        }
        Ok(outcome)
    }

    /// Deletes a contact as of `version`: the row (and its personal data) goes, a tombstone
    /// with the id and time only stays.
    pub fn delete(&mut self, contact_id: &str, version: i64) -> rusqlite::Result<ApplyOutcome> {
        if self.tombstone(contact_id)?.is_some_and(|t| t > version) {
            return Ok(ApplyOutcome::Stale);
        }
        match self.stored(contact_id)? {
            Some(stored) if stored.version > version => return Ok(ApplyOutcome::Stale),
            Some(stored) => {
                self.delete.execute([stored.id])?;
            }
            None => {}
        }
        self.upsert_tombstone
            .execute(params![contact_id, version, self.now])?;
        self.tombstones_exist = true;
        Ok(ApplyOutcome::Deleted)
    }

    /// Removes an id from an API build's queue (in the same transaction as its data).
    pub fn done_pending(&mut self, contact_id: &str) -> rusqlite::Result<()> {
        let mut stmt = self.conn.prepare_cached(queries::DELETE_PENDING)?;
        stmt.execute([contact_id])?;
        Ok(())
    }

    fn tombstone(&mut self, contact_id: &str) -> rusqlite::Result<Option<i64>> {
        if !self.tombstones_exist {
            return Ok(None);
        }
        self.find_tombstone
            .query_row([contact_id], |r| r.get(0))
            .optional()
    }

    fn stored(&mut self, contact_id: &str) -> rusqlite::Result<Option<Stored>> {
        self.find_contact
            .query_row([contact_id], |r| {
                Ok(Stored {
                    id: r.get(0)?,
                    version: r.get(1)?,
                    keys: [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?],
                })
            })
            .optional()
    }

    /// Replaces the row's data, assigning only the key columns that changed.
    fn update(&mut self, stored: &Stored, row: &ContactRow, version: i64) -> rusqlite::Result<()> {
        let new_keys = [
            &row.member_number,
            &row.email,
            &row.mobile_phone,
            &row.external_id,
            &row.social_security_number,
        ];
        let mut changed = 0u8;
        for (i, (old, new)) in stored.keys.iter().zip(new_keys).enumerate() {
            if old != new {
                changed |= 1 << i;
            }
        }
        let mut stmt = self
            .conn
            .prepare_cached(&queries::update_contact(changed))?;
        let mut values: Vec<&dyn ToSql> = vec![
            &stored.id,
            &row.contact_type,
            &row.first_name,
            &row.last_name,
            &row.attributes,
            &version,
            &self.now,
        ];
        for (i, key) in new_keys.iter().enumerate() {
            if changed & (1 << i) != 0 {
                values.push(*key);
            }
        }
        stmt.execute(values.as_slice())?;
        Ok(())
    }
}
