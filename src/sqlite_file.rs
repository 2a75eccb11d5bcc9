//! Opening engage-sync's SQLite files (the replica, a `full` build, the till store): created
//! private, and a writer's settings. One place, so that every file gets the same care.

use std::path::Path;
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
