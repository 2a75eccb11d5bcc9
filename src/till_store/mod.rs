//! The till store: what the till writes, in a SQLite file of its own beside the replica
//! (`<db>.till`), so that checkout never waits for engage-sync (docs/contract.md §3, §6).
//!
//! A sync job (`delta`, `full`, `changes`, `purge` of the replica) may hold the replica's
//! SQLite write lock for seconds. The till commands (`contact add`, `contact update`,
//! `receipt add`) therefore never write the replica: they write this file, whose writers are
//! only the till commands, `push-local` and `purge`, all in short transactions.
//!
//! Invariants:
//! - a [`TillStore`] connection has this file as `main` and the replica attached **read-only**
//!   as `replica` (SQLite refuses any write to it; a write transaction takes only a read
//!   snapshot of it, never its write lock);
//! - readers (`lookup`, `status`, a POS) open the replica and attach this file as `till`; both
//!   see Engage's contacts and the till's through the same temporary view `contacts`
//!   ([`CONTACTS_VIEW`], the public read interface, version 2), whose table names are unique
//!   across the two files so that it reads the same under either layout;
//! - the replica always has its till store: [`create`] runs before the replica is created or
//!   migrated, and the replica's migration to schema 4 moves its outboxes and local contacts
//!   here ([`take_over_from_replica`]).

pub mod queries;
mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::config::Mode;
use crate::run_log::{RunLog, RunOutcome};
use crate::sqlite_file::{configure_writer, create_private_file};
use crate::time::now_rfc3339;

pub use schema::{take_over_from_replica, SchemaError};

/// The public read interface (README "Reading the replica", version 2): a temporary view
/// `contacts` over the replica's contacts and the till's. Run on a connection that has both
/// files (either one as `main`, the other attached).
pub const CONTACTS_VIEW: &str = include_str!("contacts_view.sql");

/// SQLite `application_id` of a till store ("ESyT").
pub const APPLICATION_ID: i32 = crate::db_owner::TILL_STORE.application_id;

/// The till store of the replica at `db`: `<db>.till`, beside it (never inside `<db>.d`, so a
/// `full` swap never touches it).
pub use crate::sqlite_file::till_store_path as path_for;

/// An open till store, with the replica attached read-only.
pub struct TillStore {
    conn: Connection,
    mode: Mode,
    path: PathBuf,
}

impl std::fmt::Debug for TillStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TillStore")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .finish()
    }
}

impl TillStore {
    /// Opens the till store of the replica at `db` for writing, with the replica attached
    /// read-only. The caller has checked that the replica exists and is current, and gives
    /// its `mode` (`Replica::ready_for_till`): a till command never creates a replica (in the
    /// wrong folder it would swallow registrations that no push ever sends).
    pub fn open(db: &Path, busy_timeout: Duration, mode: Mode) -> anyhow::Result<TillStore> {
        let path = path_for(db);
        let conn = open_file(&path, busy_timeout)?;
        conn.execute("ATTACH DATABASE ?1 AS replica", [read_only_uri(db)])
            .with_context(|| format!("cannot open the replica {} for reading", db.display()))?;
        conn.execute_batch(CONTACTS_VIEW)
            .context("cannot create the contacts view")?;
        Ok(TillStore { conn, mode, path })
    }

    /// The replica's mode (the till store keeps what the replica keeps).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The connection (till store as `main`, replica as `replica`, the `contacts` view).
    pub fn conn(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Records the start of a run of `command` (`push-local`) in the till store's own run
    /// table (`status` reads it beside the replica's).
    pub fn start_run(&mut self, command: &str) -> anyhow::Result<RunLog> {
        Ok(RunLog::start(&self.conn, command, &now_rfc3339())?)
    }

    /// Records the end of a run started with [`start_run`](Self::start_run): its outcome and
    /// counts.
    pub fn finish_run(
        &mut self,
        log: RunLog,
        outcome: &RunOutcome,
        counts: &impl serde::Serialize,
    ) -> anyhow::Result<()> {
        log.close(&self.conn, outcome, counts)
    }

    /// Checkpoints the till store's WAL into its file and truncates it (`push-local` at its
    /// end: till commands leave the WAL to the writers that are not in a hurry). True when
    /// complete; a reader of an old snapshot can keep it from completing, harmlessly.
    pub fn checkpoint(&mut self) -> anyhow::Result<bool> {
        let busy: i64 = self
            .conn
            .query_row("PRAGMA main.wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        Ok(busy == 0)
    }

    /// Runs `f` in one IMMEDIATE transaction on the till store, then commits (or, when
    /// `commit` is false, as in a dry run, rolls back). The write lock taken is the till
    /// store's alone: the replica is read-only here.
    pub fn write<T>(
        &mut self,
        commit: bool,
        f: impl FnOnce(&Transaction<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| busy_context(e, &self.path))?;
        let value = f(&tx)?;
        if commit {
            tx.commit().map_err(|e| busy_context(e, &self.path))?;
        } else {
            tx.rollback()?;
        }
        Ok(value)
    }
}

/// Names the till store in an error of its transaction; a lock error also says who can hold
/// it (only another till write, a push-local or a purge step, each for milliseconds).
fn busy_context(e: rusqlite::Error, path: &Path) -> anyhow::Error {
    let busy = matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    let why = if busy {
        ": another till write, push-local or purge kept it busy longer than busy_timeout"
    } else {
        ""
    };
    anyhow::Error::new(e).context(format!(
        "cannot write the till store {}{why}",
        path.display()
    ))
}

/// Creates (mode 0600) and migrates the till store of the replica at `db` if needed. Called
/// before the replica is created or migrated, so a replica never exists without one.
pub fn create(db: &Path, busy_timeout: Duration) -> anyhow::Result<()> {
    let path = path_for(db);
    let conn = open_file(&path, busy_timeout)?;
    drop(conn);
    Ok(())
}

/// Opens (creating with mode 0600) and configures the till store file, and migrates it.
fn open_file(path: &Path, busy_timeout: Duration) -> anyhow::Result<Connection> {
    crate::db_owner::check_file(path, crate::db_owner::TILL_STORE)?;
    create_private_file(path)?;
    crate::sqlite_file::make_private(path)?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_URI,
    )
    .with_context(|| format!("cannot open the till store {}", path.display()))?;
    configure_writer(&conn, busy_timeout, true)
        .with_context(|| format!("cannot configure the till store {}", path.display()))?;
    schema::migrate(&conn, path)?;
    if !crate::db_owner::marked(path, crate::db_owner::TILL_STORE) {
        // The mark is in the WAL until a checkpoint copies it into the file's header, where
        // every open checks it cheaply (`db_owner::check_file`): once, now.
        conn.query_row("PRAGMA main.wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .with_context(|| format!("cannot checkpoint the till store {}", path.display()))?;
    }
    Ok(conn)
}

/// For a reader of the replica (`lookup`, `status`): attaches the till store of the replica
/// at `db` as `till` (read-only, like the connection) and creates the `contacts` view.
///
/// A till store that is missing (removed by hand) is an error (exit 78) unless `missing_ok`
/// (`lookup`: a till keeps finding Engage's contacts): then the view reads empty stand-ins
/// for the till's tables, and a warning says what is missing.
///
/// `no_shm`: the connection reads without SQLite's shared memory (a full disk, see
/// `replica::no_shm`), and so must the till store.
pub fn attach_for_reading(
    conn: &Connection,
    db: &Path,
    missing_ok: bool,
    no_shm: bool,
) -> anyhow::Result<()> {
    let path = path_for(db);
    if path.exists() {
        crate::db_owner::check_file(&path, crate::db_owner::TILL_STORE)?;
        let uri = crate::sqlite_file::no_shm::reader_uri(&path, no_shm);
        conn.execute("ATTACH DATABASE ?1 AS till", [uri])
            .with_context(|| format!("cannot open the till store {}", path.display()))?;
        schema::check_current(conn, "till", &path)?;
    } else if missing_ok {
        tracing::warn!(
            till_store = %path.display(),
            "the till store is missing: contacts registered or changed at the till are not \
             shown; run any sync job or `engage-sync init` to create an empty one"
        );
        // TEMP tables: a read-only connection may create them, and nothing else is named so.
        conn.execute_batch(STAND_INS)?;
    } else {
        return Err(crate::error::ConfigError(format!(
            "the till store {} is missing (what the tills registered and bought that was not \
             pushed yet went with it); run `engage-sync init` to create an empty one",
            path.display()
        ))
        .into());
    }
    conn.execute_batch(CONTACTS_VIEW)
        .context("cannot create the contacts view")?;
    Ok(())
}

/// Empty stand-ins for the till store's tables that the `contacts` view reads.
const STAND_INS: &str = "\
    CREATE TEMP TABLE till_contact (contact_id TEXT, local_key TEXT, member_number TEXT, \
      email TEXT, mobile_phone TEXT, external_id TEXT, social_security_number TEXT, \
      contact_type TEXT, first_name TEXT, last_name TEXT, attributes TEXT, version INTEGER, \
      updated_at TEXT); \
    CREATE TEMP TABLE local_key_link (local_key TEXT, contact_id TEXT);";

/// A `file:` URI opening `path` read-only (characters that mean something in a URI are
/// percent-encoded, so any path works).
pub fn read_only_uri(path: &Path) -> String {
    crate::sqlite_file::file_uri(path, "mode=ro")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_till_store_sits_beside_the_replica() {
        assert_eq!(
            path_for(Path::new("/var/lib/es/engage-sync.db")),
            PathBuf::from("/var/lib/es/engage-sync.db.till")
        );
    }

    #[test]
    fn uris_escape_what_sqlite_would_read_as_parameters() {
        assert_eq!(
            read_only_uri(Path::new("/a b/r?x#1%.db")),
            "file:/a%20b/r%3Fx%231%25.db?mode=ro"
        );
    }
}
