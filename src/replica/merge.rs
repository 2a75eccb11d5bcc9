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
    /// Contacts the build lacked (created after the snapshot, or local ones).
    pub inserted: u64,
    /// Contacts deleted after the snapshot.
    pub deleted: u64,
}

impl Replica {
    /// Merges `live` (the current replica) into this one, a finished build whose data is as
    /// of `snapshot_version` (ms): live changes after the snapshot win where newer; local
    /// contacts, local keys, the outboxes and the history (runs, quarantine, ledger) are
    /// carried over. In keys mode no personal field is copied. One transaction; the caller
    /// holds the lock.
    pub fn merge_from_live(
        &mut self,
        live: &Path,
        snapshot_version: i64,
    ) -> anyhow::Result<MergeCounts> {
        let keep_personal = self.mode() == Mode::Full;
        let conn = self.conn();
        conn.execute("ATTACH DATABASE ?1 AS live", [live.to_string_lossy()])
            .with_context(|| format!("cannot open the live replica {}", live.display()))?;
        let result = (|| -> anyhow::Result<MergeCounts> {
            let tx = conn.transaction()?;
            // Idempotent: a build resumed after a crash between its merge and its swap is
            // merged again (the live replica may have changed meanwhile).
            tx.execute(queries::MERGE_DROP_LOCAL_ONLY, [])?;
            let counts = MergeCounts {
                updated: tx.execute(
                    queries::MERGE_UPDATE_NEWER,
                    params![snapshot_version, keep_personal],
                )? as u64,
                inserted: tx.execute(
                    queries::MERGE_INSERT_MISSING,
                    params![snapshot_version, keep_personal],
                )? as u64,
                deleted: tx.execute(queries::MERGE_DELETE_NEWER, [snapshot_version])? as u64,
            };
            tx.execute(queries::MERGE_LOCAL_KEYS, [])?;
            tx.execute(queries::MERGE_TOMBSTONES, [snapshot_version])?;
            tx.execute_batch(queries::MERGE_HISTORY)?;
            tx.execute(queries::MERGE_CURSORS, [])?;
            tx.execute_batch(queries::MERGE_OUTBOXES)?;
            tx.commit()?;
            Ok(counts)
        })();
        conn.execute_batch("DETACH DATABASE live")?;
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

/// Sets a sync cursor; call inside the transaction that applied the data up to it.
pub fn set_cursor(conn: &rusqlite::Connection, name: &str, position: &str) -> anyhow::Result<()> {
    conn.execute(
        queries::SET_CURSOR,
        [name, position, &crate::time::now_rfc3339()],
    )?;
    Ok(())
}
