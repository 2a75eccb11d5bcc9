//! Applying contact changes with the version rule (SPEC §3): an older version never
//! overwrites a newer one, and a tombstone keeps an older upsert from resurrecting a contact.
//! Equal versions apply, so within one file the later entry wins.

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

/// Prepared statements for applying many changes inside one transaction.
pub struct ContactWriter<'t> {
    find_contact: Statement<'t>,
    find_tombstone: Statement<'t>,
    insert: Statement<'t>,
    update: Statement<'t>,
    delete: Statement<'t>,
    upsert_tombstone: Statement<'t>,
    delete_tombstone: Statement<'t>,
    now: String,
}

impl<'t> ContactWriter<'t> {
    /// Prepares the statements on `tx` (a connection inside a transaction). `now` (UTC RFC 3339) is written as `updated_at` /
    /// `deleted_at`: one timestamp per transaction, as readers see the changes at once.
    pub fn new(tx: &'t Connection, now: String) -> rusqlite::Result<Self> {
        Ok(ContactWriter {
            find_contact: tx.prepare(queries::FIND_CONTACT)?,
            find_tombstone: tx.prepare(queries::FIND_TOMBSTONE)?,
            insert: tx.prepare(queries::INSERT_CONTACT)?,
            update: tx.prepare(queries::UPDATE_CONTACT)?,
            delete: tx.prepare(queries::DELETE_CONTACT)?,
            upsert_tombstone: tx.prepare(queries::UPSERT_TOMBSTONE)?,
            delete_tombstone: tx.prepare(queries::DELETE_TOMBSTONE)?,
            now,
        })
    }

    /// Creates or replaces a contact with data of `version` (ms since epoch).
    pub fn upsert(&mut self, row: &ContactRow, version: i64) -> rusqlite::Result<ApplyOutcome> {
        let tombstone: Option<i64> = self
            .find_tombstone
            .query_row([&row.contact_id], |r| r.get(0))
            .optional()?;
        if tombstone.is_some_and(|t| t > version) {
            return Ok(ApplyOutcome::Stale);
        }
        let existing: Option<(i64, i64)> = self
            .find_contact
            .query_row([&row.contact_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let outcome = match existing {
            Some((_, stored)) if stored > version => return Ok(ApplyOutcome::Stale),
            Some((id, _)) => {
                self.update.execute(params![
                    id,
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
        let tombstone: Option<i64> = self
            .find_tombstone
            .query_row([contact_id], |r| r.get(0))
            .optional()?;
        if tombstone.is_some_and(|t| t > version) {
            return Ok(ApplyOutcome::Stale);
        }
        let existing: Option<(i64, i64)> = self
            .find_contact
            .query_row([contact_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match existing {
            Some((_, stored)) if stored > version => return Ok(ApplyOutcome::Stale),
            Some((id, _)) => {
                self.delete.execute([id])?;
            }
            None => {}
        }
        self.upsert_tombstone
            .execute(params![contact_id, version, self.now])?;
        Ok(ApplyOutcome::Deleted)
    }
}
