//! Applying contact changes with the version rule (docs/contract.md §3): an older version never
//! overwrites a newer one, and a tombstone keeps an older upsert from resurrecting a contact.
//! Equal versions apply, so within one file the later entry wins.

use rusqlite::types::ToSql;
use rusqlite::{params, CachedStatement, Connection, OptionalExtension};

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

/// Where a contact is in the replica: its row (if any) and its tombstone version (if any).
/// Found once with [`ContactWriter::locate`], then kept current by every change applied
/// through it, so several changes to one contact need one lookup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Located {
    /// Row id of the contact's row.
    pub id: Option<i64>,
    /// Version of the contact's tombstone.
    pub tombstone: Option<i64>,
}

/// The stored state of a contact that an upsert or delete compares against.
struct Stored {
    version: i64,
    keys: [Option<String>; 5],
}

/// Prepared statements for applying many changes inside one transaction. They come from the
/// connection's statement cache: an import makes a writer per batch.
pub struct ContactWriter<'t> {
    conn: &'t Connection,
    find_id: CachedStatement<'t>,
    find_by_id: CachedStatement<'t>,
    find_tombstone: CachedStatement<'t>,
    insert: CachedStatement<'t>,
    delete: CachedStatement<'t>,
    upsert_tombstone: CachedStatement<'t>,
    delete_tombstone: CachedStatement<'t>,
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
            find_id: conn.prepare_cached(queries::FIND_CONTACT_ID)?,
            find_by_id: conn.prepare_cached(queries::FIND_CONTACT_BY_ROW)?,
            find_tombstone: conn.prepare_cached(queries::FIND_TOMBSTONE)?,
            insert: conn.prepare_cached(queries::INSERT_CONTACT)?,
            delete: conn.prepare_cached(queries::DELETE_CONTACT)?,
            upsert_tombstone: conn.prepare_cached(queries::UPSERT_TOMBSTONE)?,
            delete_tombstone: conn.prepare_cached(queries::DELETE_TOMBSTONE)?,
            tombstones_exist: conn.query_row(queries::ANY_TOMBSTONE, [], |r| r.get(0))?,
            now,
        })
    }

    /// Creates or replaces a contact with data of `version` (ms since epoch).
    pub fn upsert(&mut self, row: &ContactRow, version: i64) -> rusqlite::Result<ApplyOutcome> {
        let mut at = self.locate(&row.contact_id)?;
        self.upsert_at(&mut at, row, version)
    }

    /// Deletes a contact as of `version`: the row (and its personal data) goes, a tombstone
    /// with the id and time only stays.
    pub fn delete(&mut self, contact_id: &str, version: i64) -> rusqlite::Result<ApplyOutcome> {
        let mut at = self.locate(contact_id)?;
        self.delete_at(&mut at, contact_id, version)
    }

    /// Finds a contact's row and tombstone. Reads only the contact-id index (and the
    /// tombstone table), not the row: a caller applying many changes locates them all in
    /// contact-id order, then applies them in row order, so both walks are sequential.
    pub fn locate(&mut self, contact_id: &str) -> rusqlite::Result<Located> {
        let id = self
            .find_id
            .query_row([contact_id], |r| r.get(0))
            .optional()?;
        let tombstone = if self.tombstones_exist {
            self.find_tombstone
                .query_row([contact_id], |r| r.get(0))
                .optional()?
        } else {
            None
        };
        Ok(Located { id, tombstone })
    }

    /// [`upsert`](Self::upsert) of a contact already located; `at` is kept current.
    pub fn upsert_at(
        &mut self,
        at: &mut Located,
        row: &ContactRow,
        version: i64,
    ) -> rusqlite::Result<ApplyOutcome> {
        if at.tombstone.is_some_and(|t| t > version) {
            return Ok(ApplyOutcome::Stale);
        }
        let outcome = match at.id {
            Some(id) => {
                let stored = self.stored(id)?;
                if stored.version > version {
                    return Ok(ApplyOutcome::Stale);
                }
                self.update(id, &stored, row, version)?;
                ApplyOutcome::Updated
            }
            None => {
                insert_contact(&mut self.insert, row, version, &self.now)?;
                at.id = Some(self.conn.last_insert_rowid());
                ApplyOutcome::Inserted
            }
        };
        if at.tombstone.take().is_some() {
            self.delete_tombstone.execute([&row.contact_id])?;
        }
        Ok(outcome)
    }

    /// [`delete`](Self::delete) of a contact already located; `at` is kept current.
    pub fn delete_at(
        &mut self,
        at: &mut Located,
        contact_id: &str,
        version: i64,
    ) -> rusqlite::Result<ApplyOutcome> {
        if at.tombstone.is_some_and(|t| t > version) {
            return Ok(ApplyOutcome::Stale);
        }
        if let Some(id) = at.id {
            if self.stored(id)?.version > version {
                return Ok(ApplyOutcome::Stale);
            }
            self.delete.execute([id])?;
            at.id = None;
        }
        self.upsert_tombstone
            .execute(params![contact_id, version, self.now])?;
        at.tombstone = Some(at.tombstone.map_or(version, |t| t.max(version)));
        self.tombstones_exist = true;
        Ok(ApplyOutcome::Deleted)
    }

    /// Removes an id from an API build's queue (in the same transaction as its data).
    pub fn done_pending(&mut self, contact_id: &str) -> rusqlite::Result<()> {
        let mut stmt = self.conn.prepare_cached(queries::DELETE_PENDING)?;
        stmt.execute([contact_id])?;
        Ok(())
    }

    fn stored(&mut self, id: i64) -> rusqlite::Result<Stored> {
        self.find_by_id.query_row([id], |r| {
            Ok(Stored {
                version: r.get(0)?,
                keys: [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?],
            })
        })
    }

    /// Replaces the row's data, assigning only the key columns that changed.
    fn update(
        &mut self,
        id: i64,
        stored: &Stored,
        row: &ContactRow,
        version: i64,
    ) -> rusqlite::Result<()> {
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
            &id,
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

/// Inserts a contact row with [`queries::INSERT_CONTACT`] (prepared by the caller).
pub fn insert_contact(
    insert: &mut rusqlite::Statement<'_>,
    row: &ContactRow,
    version: i64,
    now: &str,
) -> rusqlite::Result<usize> {
    insert.execute(params![
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
        now,
    ])
}
