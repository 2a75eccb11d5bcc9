//! The replica: a SQLite file holding Engage's contacts, the file ledger and run log.
//!
//! The database is opened in exactly one place ([`Replica::open_writer`] /
//! [`Replica::open_reader`]): WAL so POS readers never block on a sync and never see half a
//! file, a busy timeout on every connection, `secure_delete` so deleted personal data is
//! overwritten, and a new file is created with mode 0600.

mod apply;
pub mod bulk;
pub mod folders;
pub mod generation;
pub mod ledger;
mod lookup;
mod merge;
pub mod purge;
pub(crate) mod queries;
pub mod rekey;
mod row;
mod schema;
pub mod status;
mod txn;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};

use crate::config::Mode;
use crate::error::{Coded, ExitCode};
use crate::sqlite_file::no_shm;
use crate::sqlite_file::{configure_writer, create_private_file};

pub use crate::run_log::{RunLog, RunOutcome};
pub use apply::{
    insert_contact, log_bulk_load, next_change_seq, ApplyOutcome, ChangeSeq, ContactWriter, Located,
};
pub use ledger::FileLedgerRow;
pub use lookup::{ContactView, LookupKey};
pub use merge::{set_cursor, MergeCounts};
pub use row::ContactRow;

/// The mode a new replica gets when neither the command line nor the config file asks for one
/// (keys-only mode is chosen explicitly, docs/contract.md).
pub const DEFAULT_MODE: Mode = Mode::Full;

/// Where a reader keeps SQLite's WAL index: in the `-shm` file shared with the other
/// connections (always, but on a full disk without one), or in its own memory ([`no_shm`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WalIndex {
    Shared,
    Private,
}

/// Problems with the replica file itself (as opposed to I/O errors inside it).
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// There is no replica at the path (readers never create one).
    #[error(
        "no replica at {0}; create it with `engage-sync init` (or the initial download, \
         `engage-sync full`), or point --db / ENGAGE_SYNC_DB at the right file"
    )]
    Missing(PathBuf),
    /// The replica was made in another mode than the one asked for.
    #[error(
        "the replica {db} is in {stored} mode but {requested} mode was asked for (flag or config \
         `mode`); a replica cannot change mode in place: use another --db, or remove the `mode` \
         setting"
    )]
    ModeMismatch {
        /// The replica.
        db: PathBuf,
        /// Its mode.
        stored: &'static str,
        /// The mode asked for.
        requested: &'static str,
    },
    /// The schema is newer than this binary knows.
    #[error(
        "the replica {db} has schema version {found}, newer than this engage-sync knows \
         ({supported}); upgrade engage-sync"
    )]
    NewerSchema {
        /// The replica.
        db: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest this binary knows.
        supported: i64,
    },
    /// A reader found an older schema, which only a writer may migrate.
    #[error(
        "the replica {db} has schema version {found} and needs migrating: run `engage-sync init`"
    )]
    OlderSchema {
        /// The replica.
        db: PathBuf,
        /// Its schema version.
        found: i64,
    },
}

impl Coded for ReplicaError {
    fn exit_code(&self) -> ExitCode {
        ExitCode::Config
    }
}

/// An open replica.
pub struct Replica {
    conn: Connection,
    mode: Mode,
    path: PathBuf,
    /// A writing connection: truncates the WAL when dropped (see `sqlite_file::configure_writer`).
    writer: bool,
    /// While a writer is open, its dirty pages are written out early, so that its commits do
    /// not hold a till's fsync up for long (`writeback`).
    _pacer: Option<crate::writeback::Pacer>,
}

impl Drop for Replica {
    /// A writer leaves the WAL empty behind it, as SQLite's checkpoint on close did: no page
    /// images of what the job changed or deleted stay in a WAL file, and the file takes no
    /// disk space. Unlike that checkpoint, `TRUNCATE` never locks readers out; it waits up to
    /// a second for readers of old snapshots, and otherwise the next writer or purge finishes.
    fn drop(&mut self) {
        if !self.writer {
            return;
        }
        let _ = self.conn.busy_timeout(Duration::from_secs(1));
        if let Err(e) = self
            .conn
            .query_row("PRAGMA main.wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        {
            tracing::debug!(replica = %self.path.display(), "final checkpoint: {e}");
        }
    }
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .finish()
    }
}

impl Replica {
    /// Opens (creating and migrating as needed) the replica in service for writing. `mode` is
    /// the mode asked for explicitly, if any; a new replica without one is created in
    /// `default_mode`. Its till store is created first (`till_store`), so that no replica
    /// exists without one, and an older replica's till data moves there. The caller holds
    /// the writer lock (a till command that finds an older replica migrates it once, under
    /// SQLite's own lock).
    pub fn open_writer(
        path: &Path,
        mode: Option<Mode>,
        default_mode: Mode,
        busy_timeout: Duration,
    ) -> anyhow::Result<Replica> {
        crate::db_owner::check_file(path, crate::db_owner::REPLICA)?;
        create_private_file(path)?;
        crate::sqlite_file::make_private(path)?;
        crate::till_store::create(path, busy_timeout)?;
        Replica::open_file(path, mode, default_mode, busy_timeout, Some(path))
    }

    /// Opens (creating as needed) a replica file that is not in service: a `full` build. It
    /// has no till store (the till's data stays in the live replica's).
    pub fn open_build(path: &Path, mode: Mode, busy_timeout: Duration) -> anyhow::Result<Replica> {
        crate::db_owner::check_file(path, crate::db_owner::REPLICA)?;
        create_private_file(path)?;
        crate::sqlite_file::make_private(path)?;
        Replica::open_file(path, Some(mode), mode, busy_timeout, None)
    }

    fn open_file(
        path: &Path,
        mode: Option<Mode>,
        default_mode: Mode,
        busy_timeout: Duration,
        till_of: Option<&Path>,
    ) -> anyhow::Result<Replica> {
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open the replica {}", path.display()))?;
        configure_writer(&conn, busy_timeout, till_of.is_some())
            .with_context(|| format!("cannot configure the replica {}", path.display()))?;
        let stored = schema::migrate(&conn, path, mode.unwrap_or(default_mode), till_of)?;
        if let Some(requested) = mode {
            if requested != stored {
                return Err(ReplicaError::ModeMismatch {
                    db: path.to_path_buf(),
                    stored: stored.as_str(),
                    requested: requested.as_str(),
                }
                .into());
            }
        }
        Ok(Replica {
            conn,
            mode: stored,
            path: path.to_path_buf(),
            writer: true,
            _pacer: Some(crate::writeback::Pacer::start(path)),
        })
    }

    /// Opens an existing replica for reading only (lookups, status); never creates or
    /// migrates. Its till store is attached (read-only, as `till`) and the public `contacts`
    /// view created, so readers see Engage's contacts and the till's as one.
    ///
    /// On a full disk, where SQLite cannot make the `-shm` file readers share, the replica
    /// and its till store are read without it ([`no_shm`]).
    pub fn open_reader(path: &Path, busy_timeout: Duration) -> anyhow::Result<Replica> {
        with_shm_fallback(path, |index| {
            Replica::open_reader_with(path, busy_timeout, false, index)
        })
    }

    /// [`Replica::open_reader`]; `till_store_missing_ok`: see `till_store::attach_for_reading`.
    fn open_reader_with(
        path: &Path,
        busy_timeout: Duration,
        till_store_missing_ok: bool,
        index: WalIndex,
    ) -> anyhow::Result<Replica> {
        let replica = Replica::open_read_only(path, busy_timeout, index)?;
        crate::till_store::attach_for_reading(
            &replica.conn,
            path,
            till_store_missing_ok,
            index == WalIndex::Private,
        )?;
        replica.conn.execute_batch("PRAGMA query_only = ON;")?;
        Ok(replica)
    }

    /// For `lookup`: as [`Replica::open_reader`], and a replica an earlier engage-sync made
    /// (schema 3, before the till store) is read as it is, through its own stored `contacts`
    /// view, which still holds the till's contacts: a POS keeps finding members between the
    /// upgrade of the binary and the first command that migrates the replica.
    ///
    /// On a full disk, where SQLite cannot make the `-shm` file readers share, the replica
    /// and its till store are read without it ([`no_shm`]).
    pub fn open_for_lookup(path: &Path, busy_timeout: Duration) -> anyhow::Result<Replica> {
        with_shm_fallback(path, |index| {
            Replica::open_lookup_with(path, busy_timeout, index)
        })
    }

    fn open_lookup_with(
        path: &Path,
        busy_timeout: Duration,
        index: WalIndex,
    ) -> anyhow::Result<Replica> {
        match Replica::open_reader_with(path, busy_timeout, true, index) {
            Err(e) if is_schema_before_till_store(&e) => {
                let replica = Replica::open_before_till_store(path, busy_timeout, index)?;
                tracing::info!(
                    replica = %path.display(),
                    "the replica is not migrated to this version yet; read as it is (the next \
                     sync job or `engage-sync init` migrates it)"
                );
                Ok(replica)
            }
            other => other,
        }
    }

    /// A schema-3 replica, read-only, as it is.
    fn open_before_till_store(
        path: &Path,
        busy_timeout: Duration,
        index: WalIndex,
    ) -> anyhow::Result<Replica> {
        let conn = read_only_connection(path, busy_timeout, index)?;
        conn.execute_batch("PRAGMA query_only = ON;")?;
        let mode = schema::read_mode_of(&conn, "main", path)?;
        Ok(Replica::reading(conn, mode, path))
    }

    /// The replica alone, read-only, its schema checked.
    fn open_read_only(
        path: &Path,
        busy_timeout: Duration,
        index: WalIndex,
    ) -> anyhow::Result<Replica> {
        if !path.exists() {
            return Err(ReplicaError::Missing(path.to_path_buf()).into());
        }
        crate::db_owner::check_file(path, crate::db_owner::REPLICA)?;
        let conn = read_only_connection(path, busy_timeout, index)?;
        let mode = schema::check_current(&conn, "main", path).map_err(|e| {
            if e.downcast_ref::<ReplicaError>().is_some() {
                e
            } else {
                // E.g. "file is not a database": say which file.
                e.context(format!(
                    "cannot read the replica {} (is it an engage-sync database? check --db)",
                    path.display()
                ))
            }
        })?;
        Ok(Replica::reading(conn, mode, path))
    }

    fn reading(conn: Connection, mode: Mode, path: &Path) -> Replica {
        Replica {
            conn,
            mode,
            path: path.to_path_buf(),
            writer: false,
            _pacer: None,
        }
    }

    /// The replica's mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for modules of this crate that run their own transactions.
    pub fn conn(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The connection, for reads and single statements.
    pub fn conn_ref(&self) -> &Connection {
        &self.conn
    }

    /// Records the start of a writing run of `command` in the replica's run log (`status`
    /// reports a run that never finished).
    pub fn start_run(&self, command: &str) -> rusqlite::Result<RunLog> {
        RunLog::start(&self.conn, command, &crate::time::now_rfc3339())
    }

    /// Records the end of a run started with [`start_run`](Self::start_run): how it ended (the
    /// caller maps a failure to its exit code) and `counts` (counts only, never personal data).
    pub fn finish_run(
        &self,
        log: RunLog,
        outcome: &RunOutcome,
        counts: &impl serde::Serialize,
    ) -> anyhow::Result<()> {
        log.close(&self.conn, outcome, counts)
    }

    /// Whether a writer would migrate this replica (a reader accepts some older schemas, see
    /// `schema::READABLE_FROM`).
    pub fn behind_current_schema(&self) -> anyhow::Result<bool> {
        Ok(schema::user_version_of(&self.conn, "main")? < schema::CURRENT_VERSION)
    }

    /// Number of live contacts.
    pub fn contact_count(&self) -> anyhow::Result<i64> {
        Ok(self
            .conn
            .query_row(queries::COUNT_CONTACTS, [], |r| r.get(0))?)
    }
}

impl Replica {
    /// Makes the replica at `path` ready for a till command and returns its mode: it must
    /// exist (a till command never creates one), and one of an older schema is migrated first,
    /// once (its outboxes move to the till store; this waits for the replica's lock that one
    /// time). The till command then opens the till store with the replica read-only.
    pub fn ready_for_till(path: &Path, busy_timeout: Duration) -> anyhow::Result<Mode> {
        match Replica::open_read_only(path, busy_timeout, WalIndex::Shared) {
            Err(e) if is_older_schema(&e) => {
                Replica::open_writer(path, None, Mode::Keys, busy_timeout)?;
                Ok(Replica::open_read_only(path, busy_timeout, WalIndex::Shared)?.mode)
            }
            opened => Ok(opened?.mode),
        }
    }
}

/// Opens a reader of the replica at `path` the usual way, and again without shared memory
/// when SQLite cannot make its `-shm` file (a full disk; see [`no_shm`]).
fn with_shm_fallback(
    path: &Path,
    open: impl Fn(WalIndex) -> anyhow::Result<Replica>,
) -> anyhow::Result<Replica> {
    let shared = if crate::failpoint::fault("reader.no_shm") {
        Err(no_shm::simulated_error())
    } else {
        open(WalIndex::Shared)
    };
    match shared {
        Err(e) if no_shm::applies(&e, &[path, &crate::till_store::path_for(path)]) => {
            tracing::warn!(
                replica = %path.display(),
                "SQLite cannot create its shared-memory file beside the replica ({e:#}; a full \
                 disk?): read without it. Free disk space: no sync job or till write can run \
                 until then"
            );
            open(WalIndex::Private)
        }
        other => other,
    }
}

/// A read-only connection to the replica file (URI filenames on, for the till store's
/// read-only ATTACH).
fn read_only_connection(
    path: &Path,
    busy_timeout: Duration,
    index: WalIndex,
) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(
        no_shm::reader_uri(path, index == WalIndex::Private),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .with_context(|| format!("cannot open the replica {}", path.display()))?;
    conn.busy_timeout(busy_timeout)
        .with_context(|| format!("cannot configure the replica {}", path.display()))?;
    if index == WalIndex::Private {
        no_shm::configure(&conn)
            .with_context(|| format!("cannot configure the replica {}", path.display()))?;
    }
    Ok(conn)
}

/// Whether `e` says the replica has the schema just before the till store (3).
fn is_schema_before_till_store(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<ReplicaError>(),
        Some(ReplicaError::OlderSchema { found, .. }) if *found == schema::TILL_STORE_VERSION - 1
    )
}

/// Whether `e` says the replica has an older schema than this binary writes (a writer
/// migrates it).
fn is_older_schema(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<ReplicaError>(),
        Some(ReplicaError::OlderSchema { .. })
    )
}
