//! Opening engage-sync's SQLite files (the replica, a `full` build, the till store): created
//! private, and a writer's settings. One place, so that every file gets the same care.
//!
//! The bottom of the database layers (`sqlite_file` < `db_owner` < `till_store` < `replica`):
//! the file-level helpers every layer needs (the names of the files beside a database, the
//! `application_id` mark, reading without shared memory in [`no_shm`]) live here, so that no
//! layer has to import one above it.

pub mod no_shm;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rusqlite::Connection;

/// Page cache of a writing connection (KiB). Imports walk the replica in sorted batches
/// (`import::sorted`): updates need few pages in cache, new contacts (random inserts into
/// the e-mail and contact-id indexes) gain from more. Measured on 1,000,000 contacts, a
/// 32 MiB cache cost an update round 4 % more CPU than 16 MiB and saved an initial import
/// 15 %; 48 MiB with the update round's batch came within 4 MB of the 100 MB memory budget.
const WRITER_CACHE_KIB: i64 = 32 * 1024;

/// Creates the database file with mode 0600 if it does not exist, so the personal data in it
/// is never world-readable, not even for the moment before a chmod. SQLite gives the -wal and
/// -shm files the same permissions.
pub fn create_private_file(path: &Path) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) && !path.exists() {
        // SQLite would create the link's target, wherever it points.
        return Err(crate::error::ConfigError(format!(
            "{} is a symbolic link to a file that does not exist; engage-sync does not create \
             files through links: remove the link, or point --db at the real file",
            path.display()
        ))
        .into());
    }
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create the folder {} for the database",
                dir.display()
            )
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
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "cannot create the database file {}",
            path.display()
        ))),
    }
}

/// Before a writer opens an existing database file: the file and its `-wal` and `-shm` are made
/// private (0600) if an older engage-sync, a copy or a restore left them readable by others
/// (they hold personal data). When that is impossible (another user owns the file), the
/// writer is refused with what to do, rather than go on writing personal data into a file
/// others can read.
#[cfg(unix)]
pub fn make_private(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // SQLite keeps the -wal and -shm beside the real file when the path is a link (`full`).
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let files = [
        real.clone(),
        with_suffix(&real, "-wal"),
        with_suffix(&real, "-shm"),
    ];
    for file in files {
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o7777;
        if !meta.is_file() || mode & 0o077 == 0 {
            continue;
        }
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700)).map_err(
            |e| {
                anyhow::Error::new(e).context(format!(
                    "{} is readable or writable by others (mode {mode:04o}) and engage-sync \
                     cannot make it private: run `chmod 600 {}` as its owner, or run \
                     engage-sync as the user who owns it",
                    file.display(),
                    file.display()
                ))
            },
        )?;
        tracing::info!(file = %file.display(), "made private: mode {mode:04o} → {:04o}", mode & 0o700);
    }
    Ok(())
}

/// A `file:` URI for `path` with the query `query` (`mode=ro`, …); characters that mean
/// something in a URI are percent-encoded, so any path works.
pub fn file_uri(path: &Path, query: &str) -> String {
    let mut uri = String::from("file:");
    for b in path.as_os_str().as_encoded_bytes() {
        match *b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                uri.push(*b as char)
            }
            other => uri.push_str(&format!("%{other:02X}")),
        }
    }
    uri.push('?');
    uri.push_str(query);
    uri
}

/// A writing connection's settings (the replica's and the till store's). WAL (persistent in
/// the file) lets readers work during a write. `synchronous=FULL` makes every commit durable
/// before it returns (one fsync of the WAL): a till is told its contact or receipt is stored,
/// and an import moves a file to the archive, only after the commit, so with `NORMAL` a power
/// cut could lose what was acknowledged.
///
/// `in_service`: a file readers and till commands open (the replica, the till store), whose
/// writers do not checkpoint on close (below); a `full` build, which nobody reads, keeps
/// SQLite's checkpoint on close, which also removes its WAL before it is moved into place.
pub fn configure_writer(
    conn: &Connection,
    busy_timeout: Duration,
    in_service: bool,
) -> rusqlite::Result<()> {
    conn.busy_timeout(busy_timeout)?;
    // SQLite's checkpoint when the last connection closes takes an EXCLUSIVE lock on the
    // file, which blocks readers that open meanwhile (a lookup after a large import waited
    // ~80 ms for it), and costs every till command, which opens and closes the till store
    // each time, two more fsyncs and an unlink of the WAL. Writers checkpoint instead:
    // SQLite's automatic checkpoints after commits, and `wal_checkpoint(TRUNCATE)` when a
    // replica writer is dropped, by `push-local` and by `purge` (none of which blocks readers).
    if in_service {
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )?;
    }
    {
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
    }
    Ok(())
}

/// A writer's settings besides the journal mode (a bulk load changes them for a while).
pub fn writer_pragmas(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "PRAGMA synchronous = FULL; PRAGMA secure_delete = ON; PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -{WRITER_CACHE_KIB}; PRAGMA temp_store = MEMORY; PRAGMA threads = 0;"
    ))
}

/// `path` with `suffix` appended to its file name (`-wal`, `-shm`, `-journal`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// The till store of the replica at `db`: `<db>.till`, beside it (never inside `<db>.d`, so a
/// `full` swap never touches it). Here rather than in `till_store` because `db_owner` checks
/// both files before a writer takes its lock.
pub fn till_store_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(".till");
    PathBuf::from(name)
}

/// Sets `application_id` on a database of ours made before the mark existed (checked as ours
/// by `db_owner` before it was opened), so that later checks need not look at its tables.
pub fn mark(conn: &Connection, id: i32) -> rusqlite::Result<()> {
    let found: i32 = conn.query_row("PRAGMA main.application_id", [], |r| r.get(0))?;
    if found != id {
        conn.pragma_update(None, "application_id", id)?;
    }
    Ok(())
}
