//! Pacing a writer's disk writes, so that a till's own durable commit is not stuck behind them.
//!
//! A till write ends in one fsync of the till store's WAL (`synchronous = FULL`: a purchase the
//! till was told is stored survives a power cut). On a machine with plenty of memory, Linux
//! keeps a job's writes in the page cache until 10 % of it is dirty (2.4 GB here), so a large
//! import's commit or checkpoint flushes hundreds of megabytes at once, and any fsync on the
//! same disk waits behind them: an unrelated 4 KiB append + fsync measured 110–137 ms during a
//! `delta` commit on this project's machine, and 38–56 ms with writeback started early
//! (`vm.dirty_background_bytes` = 16 MiB). That is what this does from inside the job, without
//! touching the machine's settings: while a writer is open, a thread asks the kernel every
//! `PERIOD` to start writing out the dirty pages of the database file and its WAL or journal
//! (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which starts the writes and does not wait for
//! them). What is on disk when, and what a commit guarantees, does not change: commits still
//! fsync. Linux only; elsewhere it does nothing.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often writeback is started.
const PERIOD: Duration = Duration::from_millis(50);

/// Starts writeback of a database's files periodically until dropped.
#[derive(Debug)]
pub struct Pacer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Pacer {
    /// Paces the files of the SQLite database at `db` (the file a link leads to, and its
    /// `-wal` and `-journal`). Never fails: without a thread, writes are merely not paced.
    pub fn start(db: &Path) -> Pacer {
        let stop = Arc::new(AtomicBool::new(false));
        let base = std::fs::canonicalize(db).unwrap_or_else(|_| db.to_path_buf());
        let files: Vec<PathBuf> = ["", "-wal", "-journal"]
            .iter()
            .map(|suffix| {
                let mut name = base.as_os_str().to_os_string();
                name.push(suffix);
                PathBuf::from(name)
            })
            .collect();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("writeback".into())
            .spawn(move || run(&files, &flag))
            .map_err(|e| tracing::debug!("no writeback pacing: {e}"))
            .ok();
        Pacer { stop, thread }
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(files: &[PathBuf], stop: &AtomicBool) {
    let mut open: Vec<Option<std::fs::File>> = files.iter().map(|_| None).collect();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(PERIOD);
        for (path, file) in files.iter().zip(open.iter_mut()) {
            // A WAL or journal comes and goes: keep the handle while the file is there.
            if file.is_none() {
                *file = std::fs::File::open(path).ok();
            }
            if let Some(f) = file {
                if !start_writeback(f) {
                    *file = None;
                }
            }
        }
    }
}

/// Starts writing out the file's dirty pages; false if the handle is no good.
#[cfg(target_os = "linux")]
fn start_writeback(file: &std::fs::File) -> bool {
    use std::os::unix::io::AsRawFd;
    // SAFETY: a valid descriptor owned by `file`; offsets 0, 0 mean the whole file; the call
    // only schedules I/O on the page cache and touches no memory of ours.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
    rc == 0
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &std::fs::File) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel accepts the request for a database file, and refuses it for what is not a
    /// regular file (the pacer then lets the handle go and opens the path again later).
    #[cfg(target_os = "linux")]
    #[test]
    fn writeback_is_started_for_files_and_refused_for_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("r.db");
        std::fs::write(&db, vec![1u8; 64 << 10]).expect("write");
        assert!(start_writeback(&std::fs::File::open(&db).expect("open")));
        let (reader, _writer) = std::io::pipe().expect("pipe");
        let pipe = std::fs::File::from(std::os::fd::OwnedFd::from(reader));
        assert!(!start_writeback(&pipe), "a pipe has no pages to write out");
    }

    #[test]
    fn pacing_a_file_leaves_its_content_alone_and_stops_when_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("r.db");
        std::fs::write(&db, vec![7u8; 1 << 20]).expect("write");
        let pacer = Pacer::start(&db);
        std::thread::sleep(PERIOD * 3);
        drop(pacer);
        assert_eq!(std::fs::read(&db).expect("read"), vec![7u8; 1 << 20]);
    }
}
