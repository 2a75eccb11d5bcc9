//! Is this SQLite file engage-sync's? Checked on every open of the replica, a `full` build and
//! the till store, before anything is changed: a `--db` that points at another application's
//! database (a POS's own, say) must be refused as it is, not switched to WAL and given our
//! tables.
//!
//! engage-sync marks its files with SQLite's `application_id` (replica "ESyR", till store
//! "ESyT"). Replicas written before that mark existed have `application_id` 0; they are told
//! from a foreign database by their own tables and a schema version (`user_version`) ≥ 1.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::error::{Coded, ExitCode};

/// Which of engage-sync's files a path should hold.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// "replica" or "till store", for messages.
    pub name: &'static str,
    /// Its `application_id`.
    pub application_id: i32,
    /// Tables its first migration creates, all present in any version of it.
    pub tables: &'static [&'static str],
}

/// The replica (and a `full` build).
pub const REPLICA: Kind = Kind {
    name: "replica",
    application_id: 0x4553_7952,
    tables: &["meta", "contact", "tombstone", "applied_file", "run"],
};

/// The till store.
pub const TILL_STORE: Kind = Kind {
    name: "till store",
    application_id: 0x4553_7954,
    tables: &["meta", "till_contact", "local_key_seq", "contact_outbox"],
};

/// A database that is not engage-sync's (exit 78: `--db` or the config points at the wrong
/// file).
#[derive(Debug, thiserror::Error)]
#[error(
    "{path} is not an engage-sync {expected}: it is {found}. engage-sync refused it and changed \
     nothing in it. Check --db / ENGAGE_SYNC_DB / `db` in the config file: point it at the \
     replica engage-sync made, or at a path where no file exists yet to create a new one"
)]
pub struct ForeignDatabase {
    /// The file.
    pub path: PathBuf,
    /// What it should be.
    pub expected: &'static str,
    /// What it is.
    pub found: String,
}

impl Coded for ForeignDatabase {
    fn exit_code(&self) -> ExitCode {
        ExitCode::Config
    }
}

/// Before `path` is opened (by a writer or a reader): refuses a non-empty database that is not
/// a `kind`. A missing or empty file is fine (a writer makes it ours); a file that is not
/// SQLite at all is refused too (exit 74, as SQLite's own error). Changes nothing: the file's
/// header is read first (a marked file is ours without opening it), and anything else is
/// looked at through a read-only connection (`immutable` when no WAL holds newer pages, so
/// that not even a `-wal` or `-shm` is made beside another application's file).
pub fn check_file(path: &Path, kind: Kind) -> anyhow::Result<()> {
    refuse_links_beside(path)?;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if !meta.is_file() && !meta.is_dir() {
        // Opening a FIFO blocks until someone writes to it; a device never ends.
        return Err(crate::error::UsageError(format!(
            "{} is not a regular file (a FIFO, device or socket); point --db / ENGAGE_SYNC_DB \
             / `db` at the replica file, or at a path where none exists yet",
            path.display()
        ))
        .into());
    }
    // A folder is left for the open to refuse.
    if meta.is_dir() || marked(path, kind) {
        return Ok(());
    }
    // Beside the real file when `path` is a link (`full`'s generations), as SQLite keeps it.
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let wal = crate::sqlite_file::with_suffix(&real, "-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    if meta.len() == 0 {
        if wal_len == 0 {
            return Ok(());
        }
        // SQLite takes an empty file as a new database and throws its `-wal` away: whatever
        // that log holds (never ours: a replica's first page is in the file before its log
        // has a frame) would be lost without a word.
        return Err(ForeignDatabase {
            path: path.to_path_buf(),
            expected: kind.name,
            found: format!(
                "an empty file with a {wal_len}-byte {} beside it, which SQLite would throw \
                 away",
                wal.display()
            ),
        }
        .into());
    }
    let query = if wal_len == 0 {
        "mode=ro&immutable=1"
    } else {
        "mode=ro"
    };
    let checked = inspect(path, query, kind).or_else(|e| {
        if crate::sqlite_file::no_shm::is_shm_error(&e) {
            // A full disk: read it without SQLite's shared memory (see `replica::no_shm`).
            inspect(path, "mode=ro&vfs=unix-none", kind)
        } else {
            Err(e)
        }
    });
    match checked {
        Err(e) if sqlite_failed_with(&e, rusqlite::ErrorCode::NotADatabase) => {
            Err(e.context(format!(
                "{} is not an engage-sync {}: it is not a SQLite database (or a damaged or \
             encrypted one); engage-sync refused it and changed nothing in it. Check --db / \
             ENGAGE_SYNC_DB / `db` in the config file",
                path.display(),
                kind.name
            )))
        }
        Err(e) if e.downcast_ref::<ForeignDatabase>().is_some() => Err(e),
        Err(e) if sqlite_failed_with(&e, rusqlite::ErrorCode::DatabaseCorrupt) => {
            Err(e.context(format!(
                "{} is damaged: SQLite cannot read it as a database; engage-sync refused it and \
             changed nothing in it. Restore it from a backup; a replica can also be moved away \
             (with its -wal) and rebuilt with `full`, but a till store holds items not yet \
             sent to Engage: keep its copy",
                path.display()
            )))
        }
        Err(e) => Err(e.context(format!(
            "cannot read {} to check that it is an engage-sync {}; engage-sync changed nothing \
             in it",
            path.display(),
            kind.name
        ))),
        Ok(()) => Ok(()),
    }
}

/// SQLite opens (and truncates, and writes) the `-wal`, `-shm` and `-journal` files beside a
/// database through whatever is at their paths: a symbolic link planted there would have it
/// overwrite another file. They sit beside the real file when `path` is a link (`full`).
fn refuse_links_beside(path: &Path) -> anyhow::Result<()> {
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    for suffix in ["-wal", "-shm", "-journal"] {
        let beside = crate::sqlite_file::with_suffix(&real, suffix);
        if std::fs::symlink_metadata(&beside).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(std::io::Error::other(format!(
                "{} is a symbolic link; SQLite would write the database's {} file through it \
                 into another file, so engage-sync refused to open {} and changed nothing: \
                 remove the link, and check who made it",
                beside.display(),
                suffix.trim_start_matches('-'),
                path.display()
            ))
            .into());
        }
    }
    Ok(())
}

/// [`check`] through a read-only connection to the URI of `path` with `query`.
fn inspect(path: &Path, query: &str, kind: Kind) -> anyhow::Result<()> {
    let conn = Connection::open_with_flags(
        crate::sqlite_file::file_uri(path, query),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    // A writer's recovery or checkpoint can hold a lock for a moment (as for any reader).
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    if query.contains("unix-none") {
        crate::sqlite_file::no_shm::configure(&conn)?;
    }
    check(&conn, "main", path, kind)
}

/// Whether the file's SQLite header carries `kind`'s `application_id` (offset 68, big-endian).
pub fn marked(path: &Path, kind: Kind) -> bool {
    use std::io::Read;
    let mut header = [0u8; 72];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok_and(|()| {
            header.starts_with(b"SQLite format 3\0")
                && header[68..72] == kind.application_id.to_be_bytes()
        })
}

/// Before a writing command takes its lock (which creates `<db>.lock` beside the replica):
/// the replica at `db` and its till store must be engage-sync's, so that a wrong `--db`
/// leaves no trace at all.
pub fn check_before_lock(db: &Path) -> anyhow::Result<()> {
    check_file(db, REPLICA)?;
    check_file(&crate::sqlite_file::till_store_path(db), TILL_STORE)
}

/// Refuses the database attached as `schema` on `conn` if it is not a `kind` (readers check
/// their own read-only connection).
pub fn check(conn: &Connection, schema: &str, path: &Path, kind: Kind) -> anyhow::Result<()> {
    match verdict(conn, schema, kind)? {
        None => Ok(()),
        Some(found) => Err(ForeignDatabase {
            path: path.to_path_buf(),
            expected: kind.name,
            found,
        }
        .into()),
    }
}

/// `None` when the database is a `kind` or empty; otherwise what it is.
fn verdict(conn: &Connection, schema: &str, kind: Kind) -> rusqlite::Result<Option<String>> {
    let id: i32 = conn.query_row(&format!("PRAGMA {schema}.application_id"), [], |r| r.get(0))?;
    if id == kind.application_id {
        return Ok(None);
    }
    if let Some(other) = [REPLICA, TILL_STORE]
        .iter()
        .find(|k| k.application_id == id)
    {
        return Ok(Some(format!("engage-sync's {}", other.name)));
    }
    if id != 0 {
        return Ok(Some(format!(
            "a SQLite database of another application (application_id {id:#010x}{})",
            printable(id)
        )));
    }
    let version: i64 =
        conn.query_row(&format!("PRAGMA {schema}.user_version"), [], |r| r.get(0))?;
    let mut stmt = conn.prepare(&format!(
        "SELECT name FROM {schema}.sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
    ))?;
    let tables = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if tables.is_empty() && version == 0 {
        return Ok(None);
    }
    if version >= 1 && kind.tables.iter().all(|t| tables.iter().any(|n| n == t)) {
        // Made by an engage-sync from before the mark; its next migration adds it.
        return Ok(None);
    }
    let mut shown: Vec<&str> = tables.iter().take(5).map(String::as_str).collect();
    if tables.len() > shown.len() {
        shown.push("…");
    }
    Ok(Some(format!(
        "a SQLite database of another application (no engage-sync mark, schema version \
         {version}, tables: {})",
        if shown.is_empty() {
            "none".to_string()
        } else {
            shown.join(", ")
        }
    )))
}

/// ` "ABCD"` when the id spells four printable ASCII characters, as many do.
fn printable(id: i32) -> String {
    let bytes = id.to_be_bytes();
    if bytes.iter().all(|b| b.is_ascii_graphic()) {
        format!(" \"{}\"", String::from_utf8_lossy(&bytes))
    } else {
        String::new()
    }
}

/// Whether SQLite failed with `code` somewhere in `e`'s chain: `NotADatabase` ("file is not
/// a database") or `DatabaseCorrupt` (a valid header over pages it cannot read).
fn sqlite_failed_with(e: &anyhow::Error, code: rusqlite::ErrorCode) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<rusqlite::Error>()
            .is_some_and(|e| e.sqlite_error_code() == Some(code))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_with(sql: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.db");
        Connection::open(&path)
            .expect("open")
            .execute_batch(sql)
            .expect("sql");
        (dir, path)
    }

    #[test]
    fn empty_and_marked_files_are_ours_others_are_not() {
        let (_d, empty) = db_with("");
        check_file(&empty, REPLICA).expect("empty");
        let (_d, marked) = db_with("PRAGMA application_id = 1163098450; CREATE TABLE t (x);");
        check_file(&marked, REPLICA).expect("marked");
        let err = check_file(&marked, TILL_STORE).expect_err("replica as till store");
        assert!(
            format!("{err:#}").contains("engage-sync's replica"),
            "{err:#}"
        );
        let (_d, pos) = db_with("PRAGMA application_id = 1347375955; CREATE TABLE contact (x);");
        let err = check_file(&pos, REPLICA).expect_err("foreign id");
        assert!(
            format!("{err:#}").contains("0x504f5353 \"POSS\""),
            "{err:#}"
        );
        let (_d, unmarked) = db_with("CREATE TABLE contact (x); CREATE TABLE meta (k);");
        let err = check_file(&unmarked, REPLICA).expect_err("foreign tables");
        assert!(
            format!("{err:#}").contains("tables: contact, meta"),
            "{err:#}"
        );
    }

    #[test]
    fn an_unmarked_replica_of_an_older_engage_sync_is_ours() {
        let (_d, old) = db_with(
            "CREATE TABLE meta (k); CREATE TABLE contact (x); CREATE TABLE tombstone (x); \
             CREATE TABLE applied_file (x); CREATE TABLE run (x); PRAGMA user_version = 3;",
        );
        check_file(&old, REPLICA).expect("older replica");
        let (_d, no_version) = db_with(
            "CREATE TABLE meta (k); CREATE TABLE contact (x); CREATE TABLE tombstone (x); \
             CREATE TABLE applied_file (x); CREATE TABLE run (x);",
        );
        check_file(&no_version, REPLICA).expect_err("no schema version");
    }
}
