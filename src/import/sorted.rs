//! Applying contact changes in sorted batches (see [`SortedBatch`]).

use rusqlite::Connection;

use crate::replica::{
    insert_contact, log_bulk_load, next_change_seq, queries, ApplyOutcome, ContactRow,
    ContactWriter,
};

/// One contact change, built on the parser thread. Nearly all changes are upserts, so boxing
/// the row would only add an allocation per contact.
#[allow(clippy::large_enum_variant)]
pub(super) enum Change {
    Upsert(ContactRow),
    Delete(String),
}

impl Change {
    pub(super) fn contact_id(&self) -> &str {
        match self {
            Change::Upsert(row) => &row.contact_id,
            Change::Delete(id) => id,
        }
    }

    /// Memory the change's strings hold, roughly (with malloc's overhead per string).
    fn heap_bytes(&self) -> usize {
        const PER_STRING: usize = 16;
        match self {
            Change::Upsert(row) => row.heap_bytes() + 10 * PER_STRING,
            Change::Delete(id) => id.capacity() + PER_STRING,
        }
    }
}

/// Orders changes by contact id. The sort is stable: changes to the same contact keep their
/// order, so the later entry in a file (or the later file) still wins.
pub(super) fn sort_by_contact(changes: &mut [Change]) {
    changes.sort_by(|a, b| a.contact_id().cmp(b.contact_id()));
}

/// A change waiting in a batch, with the version of its file and the file's slot.
struct Pending {
    change: Change,
    version: i64,
    file: usize,
    /// Arrival order in the batch.
    seq: usize,
}

/// Memory of changes held before they are applied, when they are mostly changes to existing
/// contacts. Large enough that a batch covers many changes per page of the replica (about
/// 30,000 contacts in keys mode, 12,000 in full mode), small enough for the memory target
/// (the same peak for any file size, under 100 MB with the writer's page cache and the
/// parsers' chunks in flight).
const BATCH_BYTES: usize = 12 << 20;
/// The same when the last batch was mostly new contacts. Sorting gains nothing for them
/// (their rows are appended, their index entries land at random either way) and a large
/// batch stalls the parser thread while it is applied: measured on 1,000,000 new contacts,
/// 24 MiB batches ran 25 % slower than the old per-chunk order.
const SMALL_BATCH_BYTES: usize = 1 << 20;

/// Changes (of one or more files) waiting to be applied. Applied one by one in file order,
/// changes jump around the contact-id index and the table at random, and on a replica larger
/// than the page cache nearly every change reads and dirties pages that no change nearby
/// touches (and the page cache spills them to the WAL, often more than once per commit). A
/// batch is instead applied in two sequential walks: every contact is located in contact-id
/// order (index only), then the changes to existing rows are applied in row order. New
/// contacts come last, in arrival order (inserting them in contact-id order measured slower:
/// their rows are appended either way, and the other indexes are random either way). The
/// changes to one contact are applied together in their original order (files in import
/// order, entries in file order), so the version rule sees them as before.
pub(super) struct SortedBatch {
    items: Vec<Pending>,
    bytes: usize,
    /// Bytes at which the batch is full: large after a batch of mostly existing contacts.
    limit: usize,
}

impl Default for SortedBatch {
    fn default() -> Self {
        SortedBatch {
            items: Vec::new(),
            bytes: 0,
            limit: SMALL_BATCH_BYTES,
        }
    }
}

impl SortedBatch {
    /// Adds a file's changes (sorted or not) at `version` for the file in slot `file`.
    pub(super) fn extend(&mut self, changes: Vec<Change>, version: i64, file: usize) {
        self.items.reserve(changes.len());
        for change in changes {
            self.bytes += change.heap_bytes();
            let seq = self.items.len();
            self.items.push(Pending {
                change,
                version,
                file,
                seq,
            });
        }
    }

    /// Whether the batch should be applied before more is added.
    pub(super) fn is_full(&self) -> bool {
        // The vector's spare capacity counts: it doubles as it grows.
        self.bytes + self.items.capacity() * std::mem::size_of::<Pending>() >= self.limit
    }

    /// Drops what is waiting (the transaction it was for is rolled back).
    pub(super) fn clear(&mut self) {
        self.items = Vec::new();
        self.bytes = 0;
    }

    /// Applies and empties the batch inside the caller's transaction; `record` gets every
    /// change's file slot, contact id and outcome. `now` is written as `updated_at`.
    pub(super) fn apply(
        &mut self,
        conn: &Connection,
        now: &str,
        mut record: impl FnMut(usize, &str, ApplyOutcome),
    ) -> rusqlite::Result<()> {
        if self.items.is_empty() {
            return Ok(());
        }
        let mut items = std::mem::take(&mut self.items);
        self.bytes = 0;
        items.sort_by(|a, b| a.change.contact_id().cmp(b.change.contact_id()));
        let mut writer = ContactWriter::new(conn, now.to_string())?;
        let mut groups = Vec::new();
        let mut start = 0;
        while start < items.len() {
            let id = items[start].change.contact_id();
            let len = items[start..]
                .iter()
                .take_while(|p| p.change.contact_id() == id)
                .count();
            let at = writer.locate(id)?;
            // Existing rows in row order, then new contacts in arrival order.
            let key = (at.id.is_none(), at.id.unwrap_or(items[start].seq as i64));
            groups.push((key, start..start + len, at));
            start += len;
        }
        groups.sort_unstable_by_key(|(key, _, _)| *key);
        let existing = groups.iter().filter(|(_, _, at)| at.id.is_some()).count();
        self.limit = if existing * 2 >= groups.len() {
            BATCH_BYTES
        } else {
            SMALL_BATCH_BYTES
        };
        for (_, range, mut at) in groups {
            for p in &items[range] {
                let outcome = match &p.change {
                    Change::Delete(id) => writer.delete_at(&mut at, id, p.version)?,
                    Change::Upsert(row) => writer.upsert_at(&mut at, row, p.version)?,
                };
                record(p.file, p.change.contact_id(), outcome);
            }
        }
        Ok(())
    }
}

impl SortedBatch {
    /// Empties the batch into a replica that is bulk loading (`replica::bulk`), in arrival
    /// order: every upsert becomes a new row (counted as inserted), every delete a record for
    /// the end of the load (counted as deleted). `last_row` is the greatest contact row id so
    /// far; a delete records it, so that the end of the load knows which rows came before.
    pub(super) fn append(
        &mut self,
        conn: &Connection,
        now: &str,
        last_row: &mut i64,
        mut record: impl FnMut(usize, &str, ApplyOutcome),
    ) -> rusqlite::Result<()> {
        let items = std::mem::take(&mut self.items);
        self.bytes = 0;
        let mut insert = conn.prepare_cached(queries::INSERT_CONTACT)?;
        let mut delete = conn.prepare_cached(queries::INSERT_BULK_DELETE)?;
        let change = next_change_seq(conn)?;
        log_bulk_load(conn, change)?;
        let seq = change.seq;
        for p in items {
            let outcome = match &p.change {
                Change::Upsert(row) => {
                    insert_contact(&mut insert, row, p.version, now, seq)?;
                    *last_row = conn.last_insert_rowid();
                    ApplyOutcome::Inserted
                }
                Change::Delete(id) => {
                    delete.execute(rusqlite::params![id, p.version, *last_row])?;
                    ApplyOutcome::Deleted
                }
            };
            record(p.file, p.change.contact_id(), outcome);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Mode;
    use crate::replica::Replica;

    fn upsert(id: &str, email: &str) -> Change {
        Change::Upsert(ContactRow {
            contact_id: id.into(),
            email: Some(email.into()),
            ..ContactRow::default()
        })
    }

    fn email(replica: &mut Replica, id: &str) -> Option<String> {
        replica
            .conn()
            .query_row(
                "SELECT email FROM contact WHERE contact_id = ?1",
                [id],
                |r| r.get(0),
            )
            .ok()
    }

    /// Changes to one contact spread over files and batches keep their order and the version
    /// rule, however the batch sorts them.
    #[test]
    fn sorting_keeps_order_and_version_rule_per_contact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.db");
        let mut replica = Replica::open_writer(&path, Some(Mode::Keys), Mode::Keys, Duration::ZERO)
            .expect("replica");
        let tx = replica.conn().transaction().expect("begin");
        let conn = &tx;
        let mut batch = SortedBatch::default();
        let mut outcomes = Vec::new();
        batch.apply(conn, "t0", |_, _, _| {}).expect("empty batch");
        // An existing contact, so the next batch holds updates as well as inserts.
        batch.extend(vec![upsert("b", "b0@x")], 10, 0);
        batch.apply(conn, "t0", |_, _, _| {}).expect("first batch");
        batch.extend(
            vec![
                upsert("c", "c1@x"),
                upsert("a", "a1@x"),
                Change::Delete("c".into()),
            ],
            20,
            1,
        );
        batch.extend(vec![upsert("b", "b2@x"), upsert("a", "a2@x")], 30, 2);
        // Older than the file before it: stale for b, and a delete of a older than its data.
        batch.extend(
            vec![upsert("b", "old@x"), Change::Delete("a".into())],
            25,
            3,
        );
        batch
            .apply(conn, "t1", |file, id, o| {
                outcomes.push((file, id.to_string(), o))
            })
            .expect("second batch");
        tx.commit().expect("commit");
        outcomes.sort_by(|x, y| (&x.1, x.0).cmp(&(&y.1, y.0)));
        use ApplyOutcome::*;
        let expected = [
            (1, "a", Inserted),
            (2, "a", Updated),
            (3, "a", Stale),
            (2, "b", Updated),
            (3, "b", Stale),
            (1, "c", Inserted),
            (1, "c", Deleted),
        ];
        let got: Vec<_> = outcomes
            .iter()
            .map(|(f, id, o)| (*f, id.as_str(), *o))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(email(&mut replica, "a").as_deref(), Some("a2@x"));
        assert_eq!(email(&mut replica, "b").as_deref(), Some("b2@x"));
        assert_eq!(email(&mut replica, "c"), None);
    }
}
