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
    /// This writer's change number (`change_seq`), stamped on every row it writes.
    seq: i64,
    /// On a hub, the change log's insert: every row written is logged (migration 0007).
    log: Option<CachedStatement<'t>>,
}

impl<'t> ContactWriter<'t> {
    /// Prepares the statements on `conn` (inside a transaction). `now` (UTC RFC 3339) is
    /// written as `updated_at` / `deleted_at`: one timestamp per file, as readers see the
    /// changes at once. Takes the next change number ([`next_change_seq`]).
    pub fn new(conn: &'t Connection, now: String) -> rusqlite::Result<Self> {
        let change = next_change_seq(conn)?;
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
            seq: change.seq,
            log: if change.logging {
                Some(conn.prepare_cached(queries::LOG_CHANGE)?)
            } else {
                None
            },
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
                self.log_row(id, false)?;
                ApplyOutcome::Updated
            }
            None => {
                insert_contact(&mut self.insert, row, version, &self.now, self.seq)?;
                let id = self.conn.last_insert_rowid();
                at.id = Some(id);
                self.log_row(id, true)?;
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
            .execute(params![contact_id, version, self.now, self.seq])?;
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

    /// On a hub, logs a contact row written (see migration 0007).
    fn log_row(&mut self, id: i64, inserted: bool) -> rusqlite::Result<()> {
        if let Some(log) = self.log.as_mut() {
            log.execute(params![self.seq, id, inserted])?;
        }
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
        let new_keys = row.keys();
        let mut changed = 0u8;
        for (i, (old, new)) in stored.keys.iter().zip(new_keys).enumerate() {
            if old != new {
                changed |= 1 << i;
            }
        }
        let mut stmt = self
            .conn
            .prepare_cached(&queries::update_contact(changed))?;
        let [contact_type, first_name, last_name, attributes] = row.payload();
        let mut values: Vec<&dyn ToSql> = vec![
            &id,
            contact_type,
            first_name,
            last_name,
            attributes,
            &version,
            &self.now,
            &self.seq,
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

/// Inserts a contact row with `queries::INSERT_CONTACT` (prepared by the caller); `seq` is
/// the transaction's change number ([`next_change_seq`]).
pub fn insert_contact(
    insert: &mut rusqlite::Statement<'_>,
    row: &ContactRow,
    version: i64,
    now: &str,
    seq: i64,
) -> rusqlite::Result<usize> {
    let [m, e, p, x, s, t, f, l, a] = row.data_columns();
    let contact_id: &dyn ToSql = &row.contact_id;
    insert.execute([contact_id, m, e, p, x, s, t, f, l, a, &version, &now, &seq])
}

/// A writing transaction's change number, and whether the replica keeps the change log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeSeq {
    /// The number stamped on the rows written (`change_seq`).
    pub seq: i64,
    /// A hub: the contact rows written are logged (`change_log`).
    pub logging: bool,
}

/// Hands out the next change number, inside the caller's writing transaction: `publish`
/// reads the rows stamped with numbers above the last it published. Writers are serialised
/// by SQLite, so numbers commit in increasing order (see migration 0007).
pub fn next_change_seq(conn: &Connection) -> rusqlite::Result<ChangeSeq> {
    conn.prepare_cached(queries::NEXT_CHANGE_SEQ)?
        .query_row([], |r| {
            Ok(ChangeSeq {
                seq: r.get(0)?,
                logging: r.get(1)?,
            })
        })
}

/// On a hub, logs that a bulk load may have written any row (one log row with no row id).
pub fn log_bulk_load(conn: &Connection, change: ChangeSeq) -> rusqlite::Result<()> {
    if change.logging {
        conn.prepare_cached(queries::LOG_CHANGE)?.execute(params![
            change.seq,
            Option::<i64>::None,
            false
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Mode;
    use crate::replica::Replica;

    fn row(id: &str, email: &str) -> ContactRow {
        ContactRow {
            contact_id: id.into(),
            email: Some(email.into()),
            ..ContactRow::default()
        }
    }

    /// `(change_seq, created_seq)` of a contact, or the tombstone's change number.
    fn seqs(conn: &Connection, id: &str) -> (Option<(i64, i64)>, Option<i64>) {
        let contact = conn
            .query_row(
                "SELECT change_seq, created_seq FROM contact WHERE contact_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .expect("contact");
        let tombstone = conn
            .query_row(
                "SELECT change_seq FROM tombstone WHERE contact_id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()
            .expect("tombstone");
        (contact, tombstone)
    }

    /// A contact as the version rule sees it: nothing, a row of a version, or a tombstone.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Held {
        Nothing,
        Row(i64),
        Tombstone(i64),
    }

    /// A change to one contact, at a version.
    #[derive(Debug, Clone, Copy)]
    enum Change {
        Upsert(i64),
        Delete(i64),
    }

    /// The data an upsert of version `v` writes: the e-mail key names the version, so the
    /// stored row shows which upsert it came from.
    fn data(id: &str, v: i64) -> ContactRow {
        ContactRow {
            mobile_phone: Some("+46700000001".into()),
            ..row(id, &format!("v{v}@x"))
        }
    }

    /// The version rule written out on its own (docs/contract.md §3): a change older than
    /// what the replica holds (row or tombstone) is stale and changes nothing; an equal or
    /// newer one applies. An upsert replaces the row or brings the contact back (dropping its
    /// tombstone); a delete removes the row and leaves a tombstone of its version.
    fn model(held: Held, change: Change) -> (ApplyOutcome, Held) {
        let (Change::Upsert(version) | Change::Delete(version)) = change;
        let (Held::Row(at) | Held::Tombstone(at)) = held else {
            return match change {
                Change::Upsert(v) => (ApplyOutcome::Inserted, Held::Row(v)),
                Change::Delete(v) => (ApplyOutcome::Deleted, Held::Tombstone(v)),
            };
        };
        match change {
            _ if version < at => (ApplyOutcome::Stale, held),
            Change::Upsert(v) if matches!(held, Held::Row(_)) => {
                (ApplyOutcome::Updated, Held::Row(v))
            }
            Change::Upsert(v) => (ApplyOutcome::Inserted, Held::Row(v)),
            Change::Delete(v) => (ApplyOutcome::Deleted, Held::Tombstone(v)),
        }
    }

    /// What the replica holds for `id`, read back as a [`Held`]; the row's data must be that
    /// of the upsert of its version, and a contact never has a row and a tombstone at once.
    fn held(conn: &Connection, id: &str) -> Held {
        let row: Option<(i64, Option<String>, Option<String>)> = conn
            .query_row(
                "SELECT version, email, mobile_phone FROM contact WHERE contact_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .expect("contact");
        let tombstone: Option<i64> = conn
            .query_row(
                "SELECT version FROM tombstone WHERE contact_id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()
            .expect("tombstone");
        match (row, tombstone) {
            (None, None) => Held::Nothing,
            (Some((v, email, mobile)), None) => {
                let expected = data(id, v);
                assert_eq!(
                    (email, mobile),
                    (expected.email, expected.mobile_phone),
                    "{id}"
                );
                Held::Row(v)
            }
            (None, Some(v)) => Held::Tombstone(v),
            both => panic!("{id} has a row and a tombstone: {both:?}"),
        }
    }

    fn apply(w: &mut ContactWriter<'_>, id: &str, change: Change) -> ApplyOutcome {
        match change {
            Change::Upsert(v) => w.upsert(&data(id, v), v),
            Change::Delete(v) => w.delete(id, v),
        }
        .expect("apply")
    }

    /// Runs `f` with a writer in a transaction of its own, and commits.
    fn in_writer<T>(conn: &mut Connection, f: impl FnOnce(&mut ContactWriter<'_>) -> T) -> T {
        let tx = conn.transaction().expect("tx");
        let mut w = ContactWriter::new(&tx, "t".into()).expect("writer");
        let out = f(&mut w);
        drop(w);
        tx.commit().expect("commit");
        out
    }

    /// Every change against every state, at an older, equal and newer version, compared with
    /// [`model`]. Each case starts from an empty replica (no tombstone anywhere), and runs
    /// twice: the change in a writer of its own, and in the writer that made the state (which
    /// started out knowing of no tombstone).
    #[test]
    fn the_version_rule_on_every_path() {
        let mut cases = 0;
        for before in [Held::Nothing, Held::Row(20), Held::Tombstone(20)] {
            for change in [10, 20, 30]
                .into_iter()
                .flat_map(|v| [Change::Upsert(v), Change::Delete(v)])
            {
                for same_writer in [false, true] {
                    cases += 1;
                    let dir = tempfile::tempdir().expect("tempdir");
                    let mut replica =
                        Replica::open_build(&dir.path().join("r.db"), Mode::Keys, Duration::ZERO)
                            .expect("replica");
                    let conn = replica.conn();
                    let setup = |w: &mut ContactWriter<'_>| match before {
                        Held::Nothing => {}
                        Held::Row(v) => {
                            assert_eq!(apply(w, "c", Change::Upsert(v)), ApplyOutcome::Inserted)
                        }
                        Held::Tombstone(v) => {
                            assert_eq!(apply(w, "c", Change::Delete(v)), ApplyOutcome::Deleted)
                        }
                    };
                    let got = if same_writer {
                        in_writer(conn, |w| {
                            setup(w);
                            apply(w, "c", change)
                        })
                    } else {
                        in_writer(conn, setup);
                        in_writer(conn, |w| apply(w, "c", change))
                    };
                    assert_eq!(
                        (got, held(conn, "c")),
                        model(before, change),
                        "{before:?} then {change:?}, same writer: {same_writer}"
                    );
                }
            }
        }
        assert_eq!(cases, 36);
    }

    /// Every sequence of three changes to one contact, applied through one [`Located`] (as an
    /// import batch applies several changes to a contact after one lookup), ends where
    /// [`model`] says, with the outcomes it says.
    #[test]
    fn several_changes_through_one_location_follow_the_rule() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut replica = Replica::open_build(&dir.path().join("r.db"), Mode::Keys, Duration::ZERO)
            .expect("replica");
        let conn = replica.conn();
        let changes: Vec<Change> = [10, 20, 30]
            .into_iter()
            .flat_map(|v| [Change::Upsert(v), Change::Delete(v)])
            .collect();
        let mut sequences = 0;
        for a in &changes {
            for b in &changes {
                for c in &changes {
                    sequences += 1;
                    let id = format!("c{sequences}");
                    let seq = [*a, *b, *c];
                    let got: Vec<ApplyOutcome> = in_writer(conn, |w| {
                        let mut at = w.locate(&id).expect("locate");
                        seq.iter()
                            .map(|change| {
                                match *change {
                                    Change::Upsert(v) => w.upsert_at(&mut at, &data(&id, v), v),
                                    Change::Delete(v) => w.delete_at(&mut at, &id, v),
                                }
                                .expect("apply")
                            })
                            .collect()
                    });
                    let mut expected = Vec::new();
                    let mut state = Held::Nothing;
                    for change in seq {
                        let (outcome, next) = model(state, change);
                        expected.push(outcome);
                        state = next;
                    }
                    assert_eq!((got, held(conn, &id)), (expected, state), "{seq:?}");
                }
            }
        }
        assert_eq!(sequences, 216);
    }

    /// Each writer takes the next number; inserts, updates and deletes carry it, a stale
    /// change leaves the row's number alone, and an update keeps the number it was created
    /// with.
    #[test]
    fn every_write_carries_its_transactions_change_number() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut replica = Replica::open_build(&dir.path().join("r.db"), Mode::Keys, Duration::ZERO)
            .expect("replica");
        let conn = replica.conn();
        // A new replica's counter starts at 1 (the number migrated rows carry).
        let first = {
            let tx = conn.transaction().expect("tx");
            let mut w = ContactWriter::new(&tx, "t".into()).expect("writer");
            w.upsert(&row("a", "a@x"), 10).expect("a");
            w.upsert(&row("b", "b@x"), 10).expect("b");
            let seq = w.seq;
            drop(w);
            tx.commit().expect("commit");
            seq
        };
        assert_eq!(first, 2);
        assert_eq!(seqs(conn, "a"), (Some((2, 2)), None));
        let tx = conn.transaction().expect("tx");
        let mut w = ContactWriter::new(&tx, "t".into()).expect("writer");
        assert_eq!(
            w.upsert(&row("a", "a2@x"), 20).expect("a"),
            ApplyOutcome::Updated
        );
        assert_eq!(
            w.upsert(&row("b", "b0@x"), 5).expect("b"),
            ApplyOutcome::Stale
        );
        assert_eq!(w.delete("c", 20).expect("c"), ApplyOutcome::Deleted);
        drop(w);
        tx.commit().expect("commit");
        assert_eq!(seqs(conn, "a"), (Some((3, 2)), None));
        assert_eq!(seqs(conn, "b"), (Some((2, 2)), None));
        assert_eq!(seqs(conn, "c"), (None, Some(3)));
        let tx = conn.transaction().expect("tx");
        let mut w = ContactWriter::new(&tx, "t".into()).expect("writer");
        assert_eq!(w.delete("a", 30).expect("a"), ApplyOutcome::Deleted);
        assert_eq!(
            w.upsert(&row("c", "c@x"), 30).expect("c"),
            ApplyOutcome::Inserted
        );
        drop(w);
        tx.commit().expect("commit");
        assert_eq!(seqs(conn, "a"), (None, Some(4)));
        assert_eq!(seqs(conn, "c"), (Some((4, 4)), None));
    }
}
