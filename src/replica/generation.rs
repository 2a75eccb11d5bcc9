//! Replica generations: how `full` swaps a newly built replica in atomically.
//!
//! Renaming a new SQLite file over one in WAL mode is unsafe while readers have the old one
//! open: new connections would open the new file but share the old `-wal`/`-shm`, which
//! describe another database. So after the first `full`, the replica path (`engage-sync.db`)
//! is a symbolic link to the current generation, `engage-sync.db.d/gen-00000002.db`. SQLite
//! resolves the link and keeps each generation's WAL beside the real file, so readers of the
//! old generation finish undisturbed on their own files, and new readers open the new one.
//! The swap is one `rename(2)` of a new link over the old path.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::fsutil::create_private_dir;
use crate::sqlite_file::with_suffix;

/// The files of a replica at `db`.
#[derive(Debug, Clone)]
pub struct Layout {
    db: PathBuf,
}

impl Layout {
    /// The layout for the replica path the user gives.
    pub fn new(db: &Path) -> Layout {
        Layout {
            db: db.to_path_buf(),
        }
    }

    /// `<db>.d`: generations and the build in progress.
    pub fn dir(&self) -> PathBuf {
        let mut name = self.file_name();
        name.push_str(".d");
        self.db.with_file_name(name)
    }

    /// Where `full` builds the next generation (kept across runs, so a build resumes).
    pub fn build_path(&self) -> PathBuf {
        self.dir().join("building.db")
    }

    fn file_name(&self) -> String {
        self.db
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "engage-sync.db".into())
    }

    /// Flushes the build to disk ahead of the merge and swap. The swap syncs it again; flushed
    /// here first, that second sync only has the merge's pages left, so the replica's writer
    /// lock and the burst of disk writes at the swap stay short (till writes no longer wait
    /// for the swap, but their own fsync queues behind a large flush on the same disk).
    pub fn flush_build(&self) -> anyhow::Result<()> {
        sync_file(&self.build_path())
    }

    /// Moves a finished build (closed, WAL checkpointed away) into place as the new current
    /// generation, atomically for every reader, and removes the previous generation's files.
    /// Returns the new generation's path.
    pub fn swap_in(&self, built: &Path) -> anyhow::Result<PathBuf> {
        let dir = self.dir();
        create_private_dir(&dir)?;
        let generation = format!("gen-{:08}.db", self.next_number()?);
        let target = dir.join(&generation);
        crate::failpoint::hit("full.before_fsync");
        sync_file(built)?;
        std::fs::rename(built, &target)
            .with_context(|| format!("cannot move {} to {}", built.display(), target.display()))?;
        sync_dir(&dir)?;
        crate::failpoint::hit("full.generation_moved");
        let link = self.db.with_file_name(format!("{}.swap", self.file_name()));
        let _ = std::fs::remove_file(&link);
        let relative = Path::new(&format!("{}.d", self.file_name())).join(&generation);
        std::os::unix::fs::symlink(&relative, &link)
            .with_context(|| format!("cannot create the link {}", link.display()))?;
        crate::failpoint::hit("full.link_made");
        std::fs::rename(&link, &self.db).with_context(|| {
            format!("cannot point {} at {}", self.db.display(), target.display())
        })?;
        sync_dir(
            self.db
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
        )?;
        crate::failpoint::hit("full.swapped");
        self.remove_stale(&generation);
        Ok(target)
    }

    /// Deletes every replica file but the current generation's: the generation that was
    /// current before the swap, and whatever a crash in an earlier swap left behind (a
    /// generation moved into place but never linked, or linked with its predecessor still
    /// there; a half-made link; the WAL files of the plain file the first swap replaced).
    /// They all hold personal data, and nothing will ever read them again: readers that still
    /// have an old generation open keep reading their (now unlinked) files. A failure is only
    /// a warning, and the next swap tries again.
    fn remove_stale(&self, current: &str) {
        let mut doomed = vec![
            with_suffix(&self.db, "-wal"),
            with_suffix(&self.db, "-shm"),
            self.db.with_file_name(format!("{}.swap", self.file_name())),
        ];
        match std::fs::read_dir(self.dir()) {
            Ok(entries) => doomed.extend(entries.flatten().map(|e| e.path()).filter(|p| {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                name.starts_with("gen-") && !name.starts_with(current)
            })),
            Err(e) => tracing::warn!("cannot list {}: {e}", self.dir().display()),
        }
        for path in doomed {
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("cannot remove the old replica file {}: {e}", path.display());
                }
            }
        }
    }

    fn next_number(&self) -> anyhow::Result<u64> {
        let mut max = 0;
        let entries = std::fs::read_dir(self.dir())
            .with_context(|| format!("cannot list {}", self.dir().display()))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(n) = name
                .strip_prefix("gen-")
                .and_then(|r| r.strip_suffix(".db"))
                .and_then(|n| n.parse::<u64>().ok())
            {
                max = max.max(n);
            }
        }
        Ok(max + 1)
    }
}

fn sync_file(path: &Path) -> anyhow::Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot flush {} to disk", path.display()))
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot flush the folder {} to disk", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_a_plain_file_then_a_generation_and_cleans_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("r.db");
        std::fs::write(&db, b"old").expect("old");
        std::fs::write(with_suffix(&db, "-wal"), b"old wal").expect("wal");
        let layout = Layout::new(&db);
        create_private_dir(&layout.dir()).expect("dir");
        std::fs::write(layout.build_path(), b"gen1").expect("build");
        let first = layout.swap_in(&layout.build_path()).expect("swap");
        assert_eq!(std::fs::read(&db).expect("read through link"), b"gen1");
        assert!(first.ends_with("gen-00000001.db"));
        assert!(
            !with_suffix(&db, "-wal").exists(),
            "stale WAL of the plain file removed"
        );
        std::fs::write(layout.build_path(), b"gen2").expect("build");
        layout.swap_in(&layout.build_path()).expect("swap");
        assert_eq!(std::fs::read(&db).expect("read through link"), b"gen2");
        assert!(!first.exists(), "previous generation removed");
        assert!(!layout.build_path().exists());
    }

    #[test]
    fn a_swap_removes_what_a_crash_in_an_earlier_swap_left() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("r.db");
        let layout = Layout::new(&db);
        create_private_dir(&layout.dir()).expect("dir");
        std::fs::write(layout.build_path(), b"gen1").expect("build");
        layout.swap_in(&layout.build_path()).expect("swap");
        // A crash after moving the next build into place, before linking it; another after
        // making the link, before renaming it over the replica; WAL files beside the link.
        let unlinked = layout.dir().join("gen-00000002.db");
        std::fs::write(&unlinked, b"gen2").expect("gen2");
        std::fs::write(with_suffix(&unlinked, "-wal"), b"wal").expect("wal");
        let half_link = dir.path().join("r.db.swap");
        std::os::unix::fs::symlink("r.db.d/gen-00000002.db", &half_link).expect("link");
        std::fs::write(with_suffix(&db, "-wal"), b"stale").expect("stale wal");
        std::fs::write(layout.build_path(), b"gen3").expect("build");
        let third = layout.swap_in(&layout.build_path()).expect("swap");
        assert_eq!(std::fs::read(&db).expect("read through link"), b"gen3");
        let mut left: Vec<String> = std::fs::read_dir(dir.path().join("r.db.d"))
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["gen-00000003.db"], "{third:?}");
        assert!(std::fs::symlink_metadata(&half_link).is_err());
        assert!(!with_suffix(&db, "-wal").exists());
    }
}
