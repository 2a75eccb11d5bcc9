//! Reading the replica on a full disk.
//!
//! A reader of a WAL database maps the `-shm` file (SQLite's WAL index, shared by all
//! connections), and creates it when missing: on a full disk that fails ("I/O error within
//! xShmMap") and a till could not identify a member exactly when the machine is in trouble.
//! Then a reader (`lookup`, `status`) opens again with the WAL index in its own memory:
//! SQLite's `unix-none` VFS with `locking_mode=EXCLUSIVE` (documented: in exclusive mode a WAL
//! database never uses shared memory; the `unix-none` VFS takes no file locks, which a
//! read-only file descriptor could not take as exclusive ones: with the usual VFS that read
//! fails with SQLITE_IOERR_LOCK). It still reads the WAL, so it sees every commit.
//!
//! Consistency: without locks, such a reader would not notice a writer that checkpoints into
//! the file under it. It is used only after SQLite failed on a shared-memory file and when the
//! replica or its till store has no `-shm` of a live connection (missing, or shorter than
//! SQLite's first 32 KiB region, as a failed attempt leaves it): a writer of that file needs
//! the `-shm` too, and cannot make it while the disk is full; a writer that starts once space
//! is freed (or a till write into a till store whose `-shm` survived) is the remaining risk,
//! for the milliseconds of one lookup, and at worst makes that lookup fail or miss a change
//! made meanwhile. The normal, shared path is always tried first.

use std::path::Path;

use rusqlite::ffi;

/// SQLite's first shared-memory region: a live connection's `-shm` is at least this long.
const SHM_REGION: u64 = 32 * 1024;

/// The read-only URI of `path`, without shared memory when `no_shm` (then the connection is
/// [`configure`]d before its first read).
pub fn reader_uri(path: &Path, no_shm: bool) -> String {
    let query = if no_shm {
        "mode=ro&vfs=unix-none"
    } else {
        "mode=ro"
    };
    super::file_uri(path, query)
}

/// Before the connection's first read: the WAL index in its own memory, for every database
/// on it, including the till store attached later.
pub fn configure(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA locking_mode = EXCLUSIVE", [], |_| Ok(()))
}

/// Whether `e` is SQLite failing on a shared-memory file, and one of `files` (the replica and
/// its till store) has none of a live connection (see the module doc).
pub fn applies(e: &anyhow::Error, files: &[&Path]) -> bool {
    is_shm_error(e) && files.iter().any(|f| !live_shm(f))
}

/// Whether `e` is SQLite failing on a shared-memory file.
pub fn is_shm_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<rusqlite::Error>().is_some_and(|e| {
            matches!(
                e,
                rusqlite::Error::SqliteFailure(f, _) if matches!(
                    f.extended_code,
                    ffi::SQLITE_IOERR_SHMOPEN
                        | ffi::SQLITE_IOERR_SHMSIZE
                        | ffi::SQLITE_IOERR_SHMMAP
                        | ffi::SQLITE_IOERR_SHMLOCK
                )
            )
        })
    })
}

fn live_shm(db: &Path) -> bool {
    let real = std::fs::canonicalize(db).unwrap_or_else(|_| db.to_path_buf());
    let shm = super::with_suffix(&real, "-shm");
    std::fs::metadata(shm).is_ok_and(|m| m.len() >= SHM_REGION)
}

/// The error of a full disk without `-shm` (the fault `lookup.no_shm`, for tests).
pub fn simulated_error() -> anyhow::Error {
    rusqlite::Error::SqliteFailure(
        ffi::Error::new(ffi::SQLITE_IOERR_SHMMAP),
        Some("I/O error within xShmMap (simulated)".into()),
    )
    .into()
}
