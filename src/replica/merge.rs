//! Carrying the live replica's newer state into a newly built one, just before the swap.

use std::path::Path;

use anyhow::Context;
use rusqlite::params;

use super::{queries, Replica};
use crate::config::Mode;

/// What the merge carried over.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MergeCounts {
    /// Contacts whose live data was newer than the build's.
    pub updated: u64,
    /// Contacts the build lacked (created after the snapshot).
    pub inserted: u64,
    /// Contacts deleted after the snapshot.
    pub deleted: u64,
}

impl Replica {
    /// Merges `live` (the current replica) into this one, a finished build whose data is as
    /// of `snapshot_version` (ms): live changes after the snapshot (a `delta` or `changes`
    /// that ran while a paused build waited) win where newer, and the history (runs,
    /// quarantine, ledger) and cursors are carried over. The till's data is not in either
    /// replica (it lives in the till store, which no swap touches). In keys mode no personal
    /// field is copied. One transaction; the caller holds the writer lock, so nothing writes
    /// the live replica meanwhile.
    pub fn merge_from_live(
        &mut self,
        live: &Path,
        snapshot_version: i64,
    ) -> anyhow::Result<MergeCounts> {
        let keep_personal = self.mode() == Mode::Full;
        let conn = self.conn();
        // The merge's lists of live rows go to a temporary file, not memory: if most of the
        // live replica changed after the snapshot they hold most of its contact ids.
        conn.execute_batch("PRAGMA temp_store = FILE")?;
        conn.execute("ATTACH DATABASE ?1 AS live", [live.to_string_lossy()])
            .with_context(|| format!("cannot open the live replica {}", live.display()))?;
        let result = (|| -> anyhow::Result<MergeCounts> {
            let tx = conn.transaction()?;
            // Idempotent: a build resumed after a crash between its merge and its swap is
            // merged again (the live replica may have changed meanwhile).
            tx.execute_batch(queries::MERGE_CREATE_LIVE_ROWS)?;
            tx.execute(queries::MERGE_LIST_LIVE_ROWS, [snapshot_version])?;
            let seq = merge_change_seq(&tx)?;
            let counts = MergeCounts {
                updated: tx.execute(
                    queries::MERGE_UPDATE_NEWER,
                    params![snapshot_version, keep_personal, seq],
                )? as u64,
                inserted: tx.execute(
                    queries::MERGE_INSERT_MISSING,
                    params![snapshot_version, keep_personal, seq],
                )? as u64,
                deleted: tx.execute(queries::MERGE_DELETE_NEWER, [snapshot_version])? as u64,
            };
            tx.execute(queries::MERGE_DROP_LIVE_ROWS, [])?;
            tx.execute(queries::MERGE_TOMBSTONES, [snapshot_version, seq])?;
            merge_publications(&tx, snapshot_version, seq)?;
            tx.execute_batch(queries::MERGE_HISTORY)?;
            tx.execute(queries::MERGE_CURSORS, [])?;
            tx.commit()?;
            Ok(counts)
        })();
        conn.execute_batch("DETACH DATABASE live")?;
        crate::sqlite_file::writer_pragmas(conn)?;
        result
    }

    /// A value from the replica's meta table.
    pub fn meta(&self, key: &str) -> anyhow::Result<Option<String>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .query_row(queries::GET_META, [key], |r| r.get(0))
            .optional()?)
    }

    /// Sets a value in the replica's meta table.
    pub fn set_meta(&mut self, key: &str, value: &str) -> anyhow::Result<()> {
        self.conn.execute(queries::SET_META, [key, value])?;
        Ok(())
    }

    /// A sync cursor: the UTC instant up to which changes were applied.
    pub fn cursor(&self, name: &str) -> anyhow::Result<Option<String>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .query_row(queries::GET_CURSOR, [name], |r| r.get(0))
            .optional()?)
    }

    /// Sets a sync cursor (see [`set_cursor`]).
    pub fn set_cursor(&mut self, name: &str, position: &str) -> anyhow::Result<()> {
        set_cursor(&self.conn, name, position)
    }

    /// Queues contact ids for an API build.
    pub fn queue_pending<'a>(
        &mut self,
        ids: impl IntoIterator<Item = &'a String>,
    ) -> anyhow::Result<u64> {
        let tx = self.conn.transaction()?;
        let mut n = 0;
        {
            let mut stmt = tx.prepare(queries::INSERT_PENDING)?;
            for id in ids {
                n += stmt.execute([id])? as u64;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// Up to `limit` ids still to fetch in an API build.
    pub fn pending_batch(&self, limit: u32) -> anyhow::Result<Vec<String>> {
        let mut stmt = self.conn.prepare(queries::PENDING_BATCH)?;
        let rows = stmt.query_map([limit], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    }

    /// How many ids an API build has left to fetch.
    pub fn pending_count(&self) -> anyhow::Result<i64> {
        Ok(self
            .conn
            .query_row(queries::COUNT_PENDING, [], |r| r.get(0))?)
    }

    /// Checkpoints the WAL into the database file and truncates it; true when complete.
    pub fn checkpoint(&self) -> anyhow::Result<bool> {
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        Ok(busy == 0)
    }
}

/// The change number of a merge (inside its transaction): above every number the build and
/// the live replica handed out, so that numbers keep rising across the swap. The build's
/// publication cursor stays at 0 (see [`merge_publications`]).
fn merge_change_seq(tx: &rusqlite::Connection) -> anyhow::Result<i64> {
    let (live, logging): (i64, bool) =
        tx.query_row(queries::LIVE_CHANGE_SEQ, [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let seq = super::next_change_seq(tx)?.seq.max(live + 1);
    tx.execute(queries::SET_CHANGE_SEQ, rusqlite::params![seq, logging])?;
    Ok(seq)
}

/// Carries a hub's publications over (so file names keep rising) and leaves the build's
/// publication cursor at 0: a `full` may have changed any contact, so the next `publish`
/// publishes the whole replica once. Contacts the live replica holds and the build does not
/// (gone from the full export) get a tombstone as of the snapshot, so that the stores are
/// told to delete them; only on a replica that has published (a hub), since elsewhere no one
/// reads them and a full keeps its old meaning.
fn merge_publications(tx: &rusqlite::Connection, snapshot: i64, seq: i64) -> anyhow::Result<()> {
    tx.execute_batch(queries::MERGE_PUBLICATIONS)?;
    let hub: bool = tx.query_row(queries::ANY_PUBLICATION, [], |r| r.get(0))?;
    if hub {
        let now = crate::time::now_rfc3339();
        tx.execute(queries::MERGE_VANISHED, params![snapshot, now, seq])?;
    }
    Ok(())
}

/// Sets a sync cursor; call inside the transaction that applied the data up to it.
pub fn set_cursor(conn: &rusqlite::Connection, name: &str, position: &str) -> anyhow::Result<()> {
    conn.execute(
        queries::SET_CURSOR,
        [name, position, &crate::time::now_rfc3339()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SNAPSHOT: i64 = 100;

    /// `(contact_id, local_key, email, version, attributes)`.
    type Row = (Option<String>, Option<String>, String, i64, Option<String>);

    fn replica(dir: &Path, name: &str, mode: Mode) -> Replica {
        Replica::open_build(&dir.join(name), mode, Duration::ZERO).expect("replica")
    }

    /// `(contact_id, local_key, email, version)`.
    fn add(r: &mut Replica, id: Option<&str>, local: Option<&str>, email: &str, version: i64) {
        r.conn()
            .execute(
                "INSERT INTO contact (contact_id, local_key, email, attributes, version, \
                 updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 't')",
                rusqlite::params![
                    id,
                    local,
                    email,
                    format!("{{\"email\":\"{email}\"}}"),
                    version
                ],
            )
            .expect("insert");
    }

    fn rows(r: &mut Replica) -> Vec<Row> {
        let mut stmt = r
            .conn()
            .prepare(
                "SELECT contact_id, local_key, email, version, attributes FROM contact \
                 ORDER BY coalesce(contact_id, local_key)",
            )
            .expect("prepare");
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        rows
    }

    /// Each rule of the merge, in both modes: older live data stays out, newer data replaces
    /// the build's, contacts the build lacks come over if newer, newer deletes win; and
    /// running it twice changes nothing.
    #[test]
    fn newer_live_data_wins_and_older_stays_out() {
        for mode in [Mode::Keys, Mode::Full] {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut live = replica(dir.path(), "live.db", Mode::Full);
            add(&mut live, Some("a"), None, "a-live@x", 50);
            add(&mut live, Some("b"), None, "b-live@x", 150);
            add(&mut live, Some("c"), None, "c-live@x", 150);
            add(&mut live, Some("d"), None, "d-live@x", 50);
            add(&mut live, Some("g"), None, "g-live@x", 50);
            live.conn()
                .execute_batch(
                    "INSERT INTO tombstone (contact_id, version, deleted_at) \
                     VALUES ('e', 150, 't'), ('h', 50, 't');",
                )
                .expect("tombstones");
            let mut build = replica(dir.path(), "build.db", mode);
            for id in ["a", "b", "e", "g", "h"] {
                add(
                    &mut build,
                    Some(id),
                    None,
                    &format!("{id}-build@x"),
                    SNAPSHOT,
                );
            }
            let merged = build
                .merge_from_live(&dir.path().join("live.db"), SNAPSHOT)
                .expect("merge");
            assert_eq!(
                merged,
                MergeCounts {
                    updated: 1,
                    inserted: 1,
                    deleted: 1
                },
                "{mode:?}"
            );
            let json = |email: &str| Some(format!("{{\"email\":\"{email}\"}}"));
            // Personal fields come over from the live replica in full mode only.
            let live_json = |email: &str| json(email).filter(|_| mode == Mode::Full);
            let row = |id: Option<&str>, local: Option<&str>, email: &str, version, attrs| -> Row {
                (
                    id.map(Into::into),
                    local.map(Into::into),
                    email.into(),
                    version,
                    attrs,
                )
            };
            let got = rows(&mut build);
            let expected = vec![
                row(Some("a"), None, "a-build@x", 100, json("a-build@x")),
                row(Some("b"), None, "b-live@x", 150, live_json("b-live@x")),
                row(Some("c"), None, "c-live@x", 150, live_json("c-live@x")),
                row(Some("g"), None, "g-build@x", 100, json("g-build@x")),
                row(Some("h"), None, "h-build@x", 100, json("h-build@x")),
            ];
            assert_eq!(got, expected, "{mode:?}");
            let tombstone: i64 = build
                .conn()
                .query_row(
                    "SELECT version FROM tombstone WHERE contact_id = 'e'",
                    [],
                    |r| r.get(0),
                )
                .expect("tombstone e");
            assert_eq!(tombstone, 150);
            build
                .merge_from_live(&dir.path().join("live.db"), SNAPSHOT)
                .expect("merge again");
            assert_eq!(rows(&mut build), expected, "{mode:?}: merged twice");
        }
    }
}
