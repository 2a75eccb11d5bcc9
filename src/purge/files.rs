//! The files `purge` deletes (docs/contract.md §7), besides the rows in the databases: export files
//! in every archive, quarantine and inbox folder the replica has used, and what an interrupted
//! `full` left behind (its build and stale generations). Each is a [`Location`] in the purge
//! summary, so an auditor sees the whole scope, including what holds nothing to purge.
//!
//! Files are unlinked, as every file purge deletes: overwriting in place first would promise
//! more than it keeps on journalling and copy-on-write file systems and SSDs (README "GDPR").

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use serde::Serialize;

use crate::replica::folders::FolderKind;
use crate::replica::generation::Layout;
use crate::sqlite_file::with_suffix;

/// One place purge covers, and what it did (or, in a dry run, would do) there.
#[derive(Debug, Clone, Serialize)]
pub struct Location {
    /// replica, replica_wal, till_store, till_store_wal, archive, quarantine, inbox,
    /// abandoned_build, stale_generation.
    pub kind: &'static str,
    /// The path (canonical where it exists).
    pub path: String,
    /// What purge deletes there.
    pub scope: &'static str,
    /// False for a recorded folder that no longer exists (reported, not an error).
    pub exists: bool,
    /// Files deleted (or that would be).
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Whether purge deletes whole files here (else rows inside a database).
    #[serde(skip)]
    pub per_file: bool,
}

impl Location {
    /// A location purge handles inside SQLite (rows, free pages, WAL), not file by file.
    pub fn database(kind: &'static str, path: &Path, scope: &'static str) -> Location {
        Location {
            kind,
            path: path.display().to_string(),
            scope,
            exists: path.exists(),
            files: 0,
            bytes: 0,
            per_file: false,
        }
    }
}

/// A `full` build left on disk: `<db>.d/building.db` and its journal/WAL files.
#[derive(Debug, Clone, Serialize)]
pub struct BuildLeftover {
    /// The build file.
    pub path: String,
    /// Its files (the build and its -wal, -shm, -journal).
    pub files: Vec<PathBuf>,
    /// Their total size.
    pub bytes: u64,
    /// The newest modification of any of them.
    #[serde(skip)]
    pub modified: SystemTime,
}

/// The build of the replica at `db`, if one is on disk.
pub fn build_leftover(db: &Path) -> anyhow::Result<Option<BuildLeftover>> {
    let build = Layout::new(db).build_path();
    let candidates = [
        build.clone(),
        with_suffix(&build, "-wal"),
        with_suffix(&build, "-shm"),
        with_suffix(&build, "-journal"),
    ];
    let mut found = BuildLeftover {
        path: build.display().to_string(),
        files: Vec::new(),
        bytes: 0,
        modified: SystemTime::UNIX_EPOCH,
    };
    for path in candidates {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("cannot read {}", path.display())))
            }
        };
        found.bytes += meta.len();
        found.modified = found
            .modified
            .max(meta.modified().unwrap_or(SystemTime::UNIX_EPOCH));
        found.files.push(path);
    }
    Ok((!found.files.is_empty()).then_some(found))
}

/// Deletes (or counts) the build if nothing wrote it since `cutoff`. The caller holds the
/// writer lock, which a running `full` holds for its whole run, so the build is not in use.
pub fn purge_build(db: &Path, cutoff: SystemTime, dry_run: bool) -> anyhow::Result<Location> {
    let mut loc = Location {
        kind: "abandoned_build",
        path: crate::replica::folders::canonical(&Layout::new(db).build_path())
            .display()
            .to_string(),
        scope: "an interrupted or paused `full` build (and its journal/WAL) not written since the cutoff",
        exists: false,
        files: 0,
        bytes: 0,
        per_file: true,
    };
    let Some(build) = build_leftover(db)? else {
        return Ok(loc);
    };
    loc.exists = true;
    if build.modified >= cutoff {
        return Ok(loc);
    }
    for path in &build.files {
        if !dry_run {
            remove(path)?;
        }
    }
    loc.files = build.files.len() as u64;
    loc.bytes = build.bytes;
    Ok(loc)
}

/// Deletes (or counts) generations in `<db>.d` other than the current one, older than the
/// cutoff: a swap removes them, so they are only there after a crash in a swap.
pub fn purge_stale_generations(
    db: &Path,
    cutoff: SystemTime,
    dry_run: bool,
) -> anyhow::Result<Location> {
    let dir = Layout::new(db).dir();
    let mut loc = Location {
        kind: "stale_generation",
        path: crate::replica::folders::canonical(&dir)
            .display()
            .to_string(),
        scope: "replica generations a crashed `full` swap left beside the current one",
        exists: dir.exists(),
        files: 0,
        bytes: 0,
        per_file: true,
    };
    let current = std::fs::canonicalize(db)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(loc);
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_current = current.as_deref().is_some_and(|c| name.starts_with(c));
        if !name.starts_with("gen-") || is_current {
            continue;
        }
        count_old_file(&entry.path(), cutoff, dry_run, &mut loc)?;
    }
    Ok(loc)
}

/// Deletes (or counts) the files in a folder that purge may delete there and that were last
/// modified before the cutoff: every export file (`*.xml`, `*.xml.N`) in an archive folder;
/// those and any file a quarantine record names (`known`) in a quarantine folder; in an inbox
/// only unfinished SFTP downloads and files `known` says were applied (never a file waiting to
/// be). Other files are never touched. A missing folder is reported (`exists: false`), not an
/// error.
pub fn purge_folder(
    dir: &Path,
    kind: FolderKind,
    cutoff: SystemTime,
    dry_run: bool,
    known: &dyn Fn(&Path) -> anyhow::Result<bool>,
) -> anyhow::Result<Location> {
    let mut loc = Location {
        kind: kind.as_str(),
        path: dir.display().to_string(),
        scope: match kind {
            FolderKind::Archive => "archived export files",
            FolderKind::Quarantine => "quarantined export files",
            FolderKind::Inbox => {
                "export files already applied, and unfinished SFTP downloads (staging)"
            }
            FolderKind::Published => {
                "files published for the stores (`publish`), and temporary ones"
            }
        },
        exists: true,
        files: 0,
        bytes: 0,
        per_file: true,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            loc.exists = false;
            return Ok(loc);
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("cannot list {}", dir.display())))
        }
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let path = entry.path();
        // Only what engage-sync put there: a folder given by mistake (`--archive .`) must not
        // lose the config, the database or anything else of the operator's. `known` hashes an
        // inbox file, so it is asked only about old ones.
        let ours = match kind {
            FolderKind::Archive => is_export_file_name(&path),
            FolderKind::Quarantine => is_export_file_name(&path) || known(&path)?,
            FolderKind::Inbox => {
                is_partial_download(&path)
                    || (is_export_file_name(&path) && is_old_file(&path, cutoff)? && known(&path)?)
            }
            FolderKind::Published => is_export_file_name(&path) || is_partial_download(&path),
        };
        if !ours {
            continue;
        }
        count_old_file(&path, cutoff, dry_run, &mut loc)?;
    }
    Ok(loc)
}

/// An export file as `delta` reads them (`*.xml`, any case) or as the archive and quarantine
/// keep them when the name was taken (`*.xml.1`, `*.xml.2`, …).
fn is_export_file_name(path: &Path) -> bool {
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_ascii_lowercase();
    let base = match name.rsplit_once('.') {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => &name,
    };
    base.ends_with(".xml")
}

/// `.NAME.part`: a download the SFTP fetch had not finished (see `sftp::transfer`).
fn is_partial_download(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    name.starts_with('.') && name.ends_with(".part")
}

/// Whether `path` is a regular file last modified before the cutoff.
fn is_old_file(path: &Path, cutoff: SystemTime) -> anyhow::Result<bool> {
    let meta = std::fs::symlink_metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(meta.is_file() && meta.modified().map(|m| m < cutoff).unwrap_or(false))
}

/// Deletes (or counts into `loc`) `path` if it is a regular file last modified before the
/// cutoff.
fn count_old_file(
    path: &Path,
    cutoff: SystemTime,
    dry_run: bool,
    loc: &mut Location,
) -> anyhow::Result<()> {
    let meta = std::fs::symlink_metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let old = meta.modified().map(|m| m < cutoff).unwrap_or(false);
    if !meta.is_file() || !old {
        return Ok(());
    }
    if !dry_run {
        remove(path)?;
    }
    loc.files += 1;
    loc.bytes += meta.len();
    Ok(())
}

fn remove(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "cannot delete {} (check its permissions; it holds personal data purge must remove)",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_export_files_and_partial_downloads_are_candidates() {
        for yes in ["20260101100000_0_c.xml", "X.XML", "a.xml.1", "a.xml.12"] {
            assert!(is_export_file_name(Path::new(yes)), "{yes}");
        }
        for no in [
            "engage-sync.toml",
            "replica.db",
            "a.xml.",
            "a.xml.x1",
            "notes.txt",
        ] {
            assert!(!is_export_file_name(Path::new(no)), "{no}");
        }
        assert!(is_partial_download(Path::new(".a.xml.part")));
        // Both marks, not either: an operator's dot file or `*.part` file stays.
        for no in [".profile", "a.xml.part", ".a.xml"] {
            assert!(!is_partial_download(Path::new(no)), "{no}");
        }
    }

    #[test]
    fn a_folder_given_by_mistake_keeps_everything_but_export_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["engage-sync.toml", "replica.db", "old.xml", "old.xml.1"] {
            std::fs::write(dir.path().join(name), "x").expect("write");
        }
        let future = SystemTime::now() + std::time::Duration::from_secs(3600);
        let never = |_: &Path| -> anyhow::Result<bool> { Ok(false) };
        let loc =
            purge_folder(dir.path(), FolderKind::Archive, future, false, &never).expect("purge");
        assert_eq!(loc.files, 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["engage-sync.toml", "replica.db"]);
    }
}
