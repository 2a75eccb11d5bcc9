//! One writer at a time (docs/contract.md §8): an OS advisory lock on a file beside the database.
//!
//! The lock is the kernel's (`flock` on Unix, via `std::fs::File::try_lock`), so it is released
//! when the process dies, however it dies: a crashed cron run never leaves a stale lock behind.
//! The holder's pid and command are written into the file only to make the "skipped" message
//! useful.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Coded, ExitCode};

/// Why the writer lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds it and `--wait` was not given.
    #[error(
        "skipped: another engage-sync run holds the lock {path} ({holder}); this run changed \
         nothing. Run again later, or pass --wait to queue behind it"
    )]
    Held {
        /// The lock file.
        path: PathBuf,
        /// What the holder wrote into the lock file.
        holder: String,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot open or lock {path} (check that its folder is writable)")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl Coded for LockError {
    fn exit_code(&self) -> ExitCode {
        match self {
            LockError::Held { .. } => ExitCode::TempFail,
            LockError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ExitCode::CantCreate
            }
            LockError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                ExitCode::NoPerm
            }
            LockError::Io { .. } => ExitCode::IoErr,
        }
    }
}

/// Held while a writing command runs; dropping it releases the lock.
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
}

/// The lock file for a database: `engage-sync.db` → `engage-sync.db.lock`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    db.with_file_name(name)
}

/// Takes the writer lock for `db`. Without `wait`, a held lock is [`LockError::Held`] at once.
pub fn acquire(db: &Path, command: &str, wait: bool) -> Result<WriterLock, LockError> {
    let path = lock_path(db);
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        // The replica's folder: created here because the lock comes before the database.
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file = open_lock_file(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) if wait => {
            tracing::info!(lock = %path.display(), holder = %read_holder(&mut file), "waiting for the writer lock");
            file.lock().map_err(io)?;
        }
        Err(TryLockError::WouldBlock) => {
            return Err(LockError::Held {
                holder: read_holder(&mut file),
                path,
            })
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    // Informational only; failing to write it does not matter for mutual exclusion.
    let _ = file.set_len(0).and_then(|()| {
        file.seek(SeekFrom::Start(0))?;
        write!(file, "pid {} ({command})", std::process::id())
    });
    Ok(WriterLock { _file: file })
}

/// Takes the push lock for `db` (`<db>.push.lock`): one `push-local` at a time, beside the
/// writer lock so that a push runs while `delta` or `changes` holds that one. `full` also
/// takes it for the moment between its merge and its swap, so that no push records an
/// outcome in the generation being replaced.
pub fn acquire_push(db: &Path, command: &str, wait: bool) -> Result<WriterLock, LockError> {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".push");
    acquire(&db.with_file_name(name), command, wait)
}

/// Opens (creating, mode 0600) the lock file, never through a symbolic link and only if it is
/// a plain file of its own: the lock's folder may be shared, and the holder's pid is written
/// into the file, so a link planted at its path would have a run overwrite another file.
fn open_lock_file(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    crate::fsutil::no_follow_private(&mut options);
    let file = options
        .open(path)
        .map_err(|e| crate::fsutil::refused_link(e, path))?;
    crate::fsutil::check_own_file(&file, path)?;
    Ok(file)
}

fn read_holder(file: &mut File) -> String {
    let mut s = String::new();
    let _ = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_string(&mut s));
    let s = s.trim();
    if s.is_empty() {
        "holder unknown".to_string()
    } else {
        s.chars().take(200).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_writer_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("r.db");
        let first = acquire(&db, "delta", false).expect("first lock");
        // In a thread: a second writer that queued instead of being refused would block the
        // test forever; this way it fails it.
        let (tx, rx) = std::sync::mpsc::channel();
        let second_db = db.clone();
        std::thread::spawn(move || tx.send(acquire(&second_db, "delta", false).map(drop)));
        match rx.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(Err(LockError::Held { holder, .. })) => {
                assert!(holder.contains("delta"), "{holder}")
            }
            other => panic!("expected Held at once, got {other:?}"),
        }
        drop(first);
        acquire(&db, "delta", false).expect("lock is free again");
    }

    #[test]
    fn the_replicas_missing_folder_is_created_for_the_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("new/folder/r.db");
        let _lock = acquire(&db, "init", false).expect("lock in a folder made for it");
        assert!(lock_path(&db).is_file());
        assert_eq!(lock_path(&db), dir.path().join("new/folder/r.db.lock"));
    }

    #[test]
    fn each_lock_failure_has_its_exit_code() {
        use std::io::{Error, ErrorKind};
        let io = |kind| LockError::Io {
            path: PathBuf::from("r.db.lock"),
            source: Error::from(kind),
        };
        let held = LockError::Held {
            path: PathBuf::from("r.db.lock"),
            holder: "pid 1 (delta)".into(),
        };
        assert_eq!(held.exit_code(), ExitCode::TempFail);
        assert_eq!(io(ErrorKind::NotFound).exit_code(), ExitCode::CantCreate);
        assert_eq!(
            io(ErrorKind::PermissionDenied).exit_code(),
            ExitCode::NoPerm
        );
        assert_eq!(io(ErrorKind::Other).exit_code(), ExitCode::IoErr);
    }
}
