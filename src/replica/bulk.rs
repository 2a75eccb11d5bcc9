//! Loading a new replica (a `full` build from XML) without its secondary indexes, then making
//! it whole.
//!
//! Inserting a million contacts into a table whose indexes take every contact id and e-mail
//! address at a random place costs random page reads and writes per key once the indexes
//! outgrow the page cache (measured: ~50,000 contacts/s, most of it in those indexes); SQLite
//! builds the same index from a finished table by sorting, several times faster. So a build
//! drops the contact table's indexes when it starts (their SQL is kept in `meta`, so that a
//! resumed build recreates exactly what the migrations made), appends every upsert as a new
//! row and records every delete, and at the end ([`Replica::finish_bulk`]) resolves contacts
//! that came more than once and the deletes with the version rule, and builds the indexes,
//! all in one transaction.
//!
//! Nobody reads a build before it is swapped in, so it is written with `synchronous = OFF`
//! and a rollback journal (pages appended to the file need no journal). A killed process is
//! still rolled back to its last commit: the journal reaches the OS before the pages it
//! protects. Only an OS crash or power loss could leave a torn file, so the build records
//! the boot it was written in and a build from an earlier boot is started over
//! ([`BulkState::FromEarlierBoot`]); where the boot cannot be known, every commit is synced.
//! The swap fsyncs the finished file before it is put in service.

use anyhow::Context;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension};

use super::{queries, Replica};

/// Meta key: the contact table's indexes (JSON `[[name, sql], ...]`) while a load defers them.
const META_INDEXES: &str = "bulk_deferred_indexes";
/// Meta key: the boot the build was written in (Linux boot id), if known.
const META_BOOT: &str = "bulk_boot_id";

/// Where a build stands in a bulk load (not to be confused with the state of an Engage bulk
/// batch, `engage::BatchState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkState {
    /// The contact table has its indexes: an ordinary replica, or a build that is finished
    /// (or was begun by an engage-sync without bulk loading).
    Indexed,
    /// Loading, written in this boot.
    Loading,
    /// Loading, but the file was written before the machine last started: an OS crash may
    /// have lost writes that were never synced. Start over.
    FromEarlierBoot,
}

/// What [`Replica::finish_bulk`] resolved.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct BulkCounts {
    /// Rows dropped because a later row (or a newer version) of the same contact won.
    pub superseded: u64,
    /// Contacts deleted (or tombstoned) by a delete that won.
    pub deleted: u64,
}

/// The id of this boot of the machine, where the OS tells it.
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

impl Replica {
    /// Starts a bulk load in a new, empty build (see [`defer_indexes`]). One transaction.
    pub fn begin_bulk(&mut self) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        defer_indexes(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// Whether this build is bulk loading, and from which boot.
    pub fn bulk_state(&self) -> anyhow::Result<BulkState> {
        if self.meta(META_INDEXES)?.is_none() {
            return Ok(BulkState::Indexed);
        }
        let written_in = self.meta(META_BOOT)?;
        Ok(match (written_in, boot_id()) {
            (Some(then), Some(now)) if then != now => BulkState::FromEarlierBoot,
            _ => BulkState::Loading,
        })
    }

    /// Sets the connection up for loading: no sync per commit when the boot is known (see
    /// the module documentation), a rollback journal, a small page cache (rows are only
    /// appended).
    pub fn bulk_pragmas(&mut self) -> anyhow::Result<()> {
        let sync = if self.meta(META_BOOT)?.is_some() {
            "OFF"
        } else {
            "FULL"
        };
        self.conn
            .query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))?;
        self.conn.execute_batch(&format!(
            "PRAGMA synchronous = {sync}; PRAGMA cache_size = -8192;"
        ))?;
        Ok(())
    }

    /// Whether a bulk load may start in the open transaction ([`is_empty`]).
    pub fn nothing_from_engage(&self) -> rusqlite::Result<bool> {
        is_empty(&self.conn)
    }

    /// Starts a bulk load in the open transaction ([`defer_indexes`]).
    pub fn defer_indexes(&mut self) -> anyhow::Result<()> {
        defer_indexes(&self.conn)
    }

    /// Sets the connection up for a bulk load's sorts ([`sort_in_files`]; outside a
    /// transaction).
    pub fn sort_in_files(&mut self) -> rusqlite::Result<()> {
        sort_in_files(&self.conn)
    }

    /// Puts back a writer's usual settings ([`usual_settings`]; outside a transaction).
    pub fn usual_settings(&mut self) -> rusqlite::Result<()> {
        usual_settings(&self.conn)
    }

    /// Finishes a bulk load in the open transaction ([`resolve`]).
    pub fn resolve_bulk(&mut self, now: &str) -> anyhow::Result<BulkCounts> {
        resolve(&self.conn, now).with_context(|| self.unfinished())
    }

    /// What a failure to finish a bulk load says, naming this replica's file.
    fn unfinished(&self) -> String {
        format!(
            "cannot finish the bulk load of the replica {}",
            self.path().display()
        )
    }

    /// The failpoint `import.disk_full`: caps the file's size, so that SQLite fails with its
    /// own SQLITE_FULL, as from a disk that fills up during a load.
    pub fn simulate_full_disk(&mut self) -> rusqlite::Result<()> {
        self.conn.execute_batch("PRAGMA max_page_count = 64")
    }

    /// The greatest contact row id (a bulk load's deletes record it).
    pub fn max_contact_row(&self) -> anyhow::Result<i64> {
        Ok(self
            .conn
            .query_row(queries::MAX_CONTACT_ROW, [], |r| r.get(0))?)
    }

    /// Finishes a bulk load (see [`resolve`]) in one transaction, then puts the connection
    /// back in WAL mode with the usual settings. `now` is the tombstones' `deleted_at`.
    pub fn finish_bulk(&mut self, now: &str) -> anyhow::Result<BulkCounts> {
        if self.meta(META_INDEXES)?.is_none() {
            return Ok(BulkCounts::default());
        }
        sort_in_files(&self.conn)?;
        let what = self.unfinished();
        let tx = self.conn.transaction()?;
        let counts = resolve(&tx, now).context(what)?;
        crate::failpoint::hit("full.indexed");
        tx.commit()?;
        self.conn
            .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        usual_settings(&self.conn)?;
        Ok(counts)
    }
}

/// Whether a bulk load may start in the open transaction: the replica holds no contact from
/// Engage and no tombstone, so nothing loaded can meet older state (the version rule is
/// applied among the loaded changes only).
pub fn is_empty(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(queries::NOTHING_FROM_ENGAGE, [], |r| r.get(0))
}

/// Starts a bulk load in the caller's transaction: records and drops the contact table's
/// indexes, records the boot, and makes the table for deletes.
pub fn defer_indexes(conn: &Connection) -> anyhow::Result<()> {
    let indexes = {
        let mut stmt = conn.prepare(queries::CONTACT_INDEXES)?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    for (name, _) in &indexes {
        conn.execute_batch(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))?;
    }
    conn.execute(
        queries::SET_META,
        params![META_INDEXES, serde_json::to_string(&indexes)?],
    )?;
    if let Some(boot) = boot_id() {
        conn.execute(queries::SET_META, params![META_BOOT, boot])?;
    }
    conn.execute_batch(queries::CREATE_BULK_DELETE)?;
    Ok(())
}

/// Sets the connection up for [`resolve`] (outside a transaction: SQLite refuses to change
/// where temporary data goes inside one). The index sorts spill to temporary files (the OS
/// page cache), not to this process's memory: with `temp_store = MEMORY` sorting 1,000,000
/// contact ids peaked above 100 MB. The page cache is kept small: the sorts do not use it,
/// and measured faster so. [`Replica`]'s usual settings come back with `writer_pragmas`.
pub fn sort_in_files(conn: &Connection) -> rusqlite::Result<()> {
    // SQLite's sorter may merge on helper threads: measured on the 2-core machine, 4-8 %
    // faster builds of 1,000,000 contacts with two.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    conn.execute_batch(&format!(
        "PRAGMA temp_store = FILE; PRAGMA cache_size = -2048; PRAGMA threads = {threads};"
    ))
}

/// Puts back a writer's usual settings after [`sort_in_files`] (outside a transaction).
pub fn usual_settings(conn: &Connection) -> rusqlite::Result<()> {
    crate::sqlite_file::writer_pragmas(conn)
}

/// Finishes a bulk load inside the caller's transaction: keeps, of every contact loaded more
/// than once, the row the version rule lets win; builds the indexes; applies the deletes the
/// same way (a delete wins over a row of a lower version, or of the same version loaded
/// before it); forgets the load's state. `now` is the tombstones' `deleted_at`.
pub fn resolve(conn: &Connection, now: &str) -> anyhow::Result<BulkCounts> {
    let Some(indexes) = conn
        .query_row(queries::GET_META, [META_INDEXES], |r| r.get::<_, String>(0))
        .optional()?
    else {
        return Ok(BulkCounts::default());
    };
    let indexes: Vec<(String, String)> = serde_json::from_str(&indexes)
        .map_err(|e| anyhow::anyhow!("the replica's deferred index list is damaged: {e}"))?;
    if crate::failpoint::fault("import.index_disk_full") {
        // SQLite keeps the limit at the file's current size: the indexes find no room.
        conn.execute_batch("PRAGMA max_page_count = 1")?;
    }
    let mut counts = BulkCounts::default();
    for (name, sql) in &indexes {
        match conn.execute_batch(sql) {
            Ok(()) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::ConstraintViolation =>
            {
                // A contact that came more than once: keep the winning row, then retry.
                counts.superseded += conn.execute(queries::BULK_DROP_SUPERSEDED, [])? as u64;
                conn.execute_batch(sql)
                    .with_context(|| format!("cannot build the index {name}"))?;
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("cannot build the index {name}")))
            }
        }
    }
    counts.deleted = apply_deletes(conn, now)?;
    conn.execute_batch(queries::DROP_BULK_DELETE)?;
    conn.execute(queries::DELETE_BULK_META, [META_INDEXES, META_BOOT])?;
    Ok(counts)
}

/// Applies a bulk load's deletes: per contact the greatest (version, position) delete, if it
/// beats the contact's row (by version; of equal versions, the later loaded wins), removes
/// the row and leaves a tombstone. Returns how many deletes won.
fn apply_deletes(tx: &Connection, now: &str) -> anyhow::Result<u64> {
    let mut deletes = tx.prepare(queries::BULK_DELETES)?;
    let mut find = tx.prepare(queries::ROW_AND_VERSION_OF_CONTACT)?;
    let mut delete = tx.prepare(queries::DELETE_CONTACT)?;
    let mut tombstone = tx.prepare(queries::UPSERT_TOMBSTONE)?;
    let seq = super::next_change_seq(tx)?.seq;
    let mut rows = deletes.query([])?;
    let mut winner: Option<(String, i64, i64)> = None;
    let mut applied = 0;
    let mut apply = |d: (String, i64, i64)| -> anyhow::Result<()> {
        let (contact_id, version, after) = d;
        let row: Option<(i64, i64)> = find
            .query_row([&contact_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let wins = row.is_none_or(|(id, v)| v < version || (v == version && id <= after));
        if wins {
            if let Some((id, _)) = row {
                delete.execute([id])?;
            }
            tombstone.execute(params![contact_id, version, now, seq])?;
            applied += 1;
        }
        Ok(())
    };
    while let Some(r) = rows.next()? {
        let d: (String, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        // Ordered by contact, version, position: the last of a contact's group wins.
        if let Some(previous) = winner.take() {
            if previous.0 != d.0 {
                apply(previous)?;
            }
        }
        winner = Some(d);
    }
    if let Some(last) = winner {
        apply(last)?;
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Mode;

    fn pragma(replica: &mut Replica, name: &str) -> String {
        replica
            .conn()
            .query_row(&format!("PRAGMA {name}"), [], |r| {
                r.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| match v {
                rusqlite::types::Value::Integer(n) => n.to_string(),
                rusqlite::types::Value::Text(t) => t,
                other => format!("{other:?}"),
            })
            .expect("pragma")
    }

    /// A build is written without waiting for the disk only while a reboot in the middle can
    /// be told (its boot id is recorded, so a build a reboot may have torn starts over), and
    /// a finished build is durable again, in WAL mode, before it is merged and swapped in.
    #[test]
    fn a_build_skips_fsync_only_while_a_reboot_can_be_told_and_syncs_again_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut build = Replica::open_build(&dir.path().join("b.db"), Mode::Keys, Duration::ZERO)
            .expect("open");
        assert_eq!(
            pragma(&mut build, "synchronous"),
            "2",
            "FULL before the load"
        );
        build.begin_bulk().expect("begin");
        build.bulk_pragmas().expect("pragmas");
        let expected = if boot_id().is_some() { "0" } else { "2" };
        assert_eq!(
            pragma(&mut build, "synchronous"),
            expected,
            "boot id: {:?}",
            boot_id()
        );
        assert_eq!(pragma(&mut build, "journal_mode"), "delete");
        build
            .conn()
            .execute("DELETE FROM meta WHERE key = ?1", [META_BOOT])
            .expect("forget the boot");
        build.bulk_pragmas().expect("pragmas");
        assert_eq!(pragma(&mut build, "synchronous"), "2", "no boot id: FULL");
        build
            .conn()
            .execute_batch("PRAGMA synchronous = OFF")
            .expect("off");
        build.finish_bulk("t").expect("finish");
        assert_eq!(
            pragma(&mut build, "synchronous"),
            "2",
            "FULL after the load"
        );
        assert_eq!(pragma(&mut build, "journal_mode"), "wal");
        assert_eq!(pragma(&mut build, "secure_delete"), "1");
    }
}
