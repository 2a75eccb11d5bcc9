//! The replica: a SQLite file holding Engage's contacts, the file ledger and run log.
//!
//! The database is opened in exactly one place ([`Replica::open_writer`] /
//! [`Replica::open_reader`]): WAL so POS readers never block on a sync and never see half a
//! file, a busy timeout on every connection, `secure_delete` so deleted personal data is
//! overwritten, and a new file is created with mode 0600.

mod apply;
pub mod bulk;
pub mod generation;
mod handover;
pub mod ledger;
mod lookup;
mod merge;
pub mod purge;
pub(crate) mod queries;
mod row;
mod schema;
pub mod status;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};

use crate::config::Mode;
use crate::error::{Coded, ExitCode};

pub use apply::{insert_contact, ApplyOutcome, ContactWriter, Located};
pub use handover::WriteHold;
pub use ledger::{FileLedgerRow, RunLog};
pub use lookup::{ContactView, LookupKey};
pub use merge::{set_cursor, MergeCounts};
pub use row::ContactRow;

/// Problems with the replica file itself (as opposed to I/O errors inside it).
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// There is no replica at the path (readers never create one).
    #[error(
        "no replica at {0}; create it with `engage-sync init` or import with `engage-sync delta`, \
         or point --db / ENGAGE_SYNC_DB at the right file"
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
    /// `full` swapped new generations in again and again while a till write waited.
    #[error(
        "the replica {db} was replaced by `full` several times while this write waited; nothing \
         was written, run the command again"
    )]
    Replaced {
        /// The replica.
        db: PathBuf,
    },
}

impl Coded for ReplicaError {
    fn exit_code(&self) -> ExitCode {
        match self {
            ReplicaError::Replaced { .. } => ExitCode::TempFail,
            _ => ExitCode::Config,
        }
    }
}

/// An open replica.
pub struct Replica {
    conn: Connection,
    mode: Mode,
    path: PathBuf,
    /// The file `path` led to when it was opened (after `full`'s first swap, `path` is a link
    /// to a generation): a till write checks it is still the current one (`handover`).
    file: Option<PathBuf>,
    busy_timeout: Duration,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .finish()
    }
}

/// Page cache of a writing connection (KiB). Imports walk the replica in sorted batches
/// (`import::sorted`): updates need few pages in cache, new contacts (random inserts into
/// the e-mail and contact-id indexes) gain from more. Measured on 1,000,000 contacts, a
/// 32 MiB cache cost an update round 4 % more CPU than 16 MiB and saved an initial import
/// 15 %; 48 MiB with the update round's batch came within 4 MB of the 100 MB memory budget.
const WRITER_CACHE_KIB: i64 = 32 * 1024;

impl Replica {
    /// Opens (creating and migrating as needed) the replica for writing. `mode` is the mode
    /// asked for explicitly, if any; a new replica without one is created in `default_mode`.
    /// The caller must hold the writer lock.
    pub fn open_writer(
        path: &Path,
        mode: Option<Mode>,
        default_mode: Mode,
        busy_timeout: Duration,
    ) -> anyhow::Result<Replica> {
        create_private_file(path)?;
        let file = std::fs::canonicalize(path).ok();
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open the replica {}", path.display()))?;
        configure(&conn, busy_timeout, true)
            .with_context(|| format!("cannot configure the replica {}", path.display()))?;
        let stored = schema::migrate(&conn, path, mode.unwrap_or(default_mode))?;
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
            file,
            busy_timeout,
        })
    }

    /// Opens an existing replica for reading only (lookups, status); never creates or migrates.
    pub fn open_reader(path: &Path, busy_timeout: Duration) -> anyhow::Result<Replica> {
        if !path.exists() {
            return Err(ReplicaError::Missing(path.to_path_buf()).into());
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("cannot open the replica {}", path.display()))?;
        configure(&conn, busy_timeout, false)
            .with_context(|| format!("cannot configure the replica {}", path.display()))?;
        let mode = schema::check_current(&conn, path).map_err(|e| {
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
        Ok(Replica {
            conn,
            mode,
            path: path.to_path_buf(),
            file: None,
            busy_timeout,
        })
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

    /// Number of live contacts.
    pub fn contact_count(&self) -> anyhow::Result<i64> {
        Ok(self
            .conn
            .query_row(queries::COUNT_CONTACTS, [], |r| r.get(0))?)
    }
}

/// Creates the database file with mode 0600 if it does not exist, so the personal data in it
/// is never world-readable, not even for the moment before a chmod. SQLite gives the -wal and
/// -shm files the same permissions.
fn create_private_file(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| {
            format!("cannot create the folder {} for the replica", dir.display())
        })?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => {
            Err(anyhow::Error::new(e)
                .context(format!("cannot create the replica {}", path.display())))
        }
    }
}

/// Connection settings. WAL (persistent in the file) lets readers work during a write.
/// `synchronous=FULL` makes every commit durable before it returns (one fsync of the WAL):
/// a till is told its contact or receipt is stored, and an import moves a file to the archive,
/// only after the commit, so with `NORMAL` a power cut could lose what was acknowledged.
fn configure(conn: &Connection, busy_timeout: Duration, writer: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(busy_timeout)?;
    if writer {
        // A new file reclaims free pages incrementally (`purge`), instead of by a VACUUM that
        // rewrites the whole file while till writes wait. Only possible before the file's
        // first page is written, so before WAL mode is set.
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        if pages == 0 {
            conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL")?;
        }
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(journal_mode = %mode, "the replica could not switch to WAL mode");
        }
        // The import's statements (one per combination of changed keys in an update, up to
        // 32) stay cached across batches.
        conn.set_prepared_statement_cache_capacity(64);
        writer_pragmas(conn)?;
    } else {
        conn.execute_batch("PRAGMA query_only = ON;")?;
    }
    Ok(())
}

/// A writer's settings besides the journal mode (a bulk load changes them for a while).
fn writer_pragmas(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "PRAGMA synchronous = FULL; PRAGMA secure_delete = ON; PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -{WRITER_CACHE_KIB}; PRAGMA temp_store = MEMORY; PRAGMA threads = 0;"
    ))
}
