//! Moving processed files to the archive or quarantine folders, and creating files in folders
//! others may write to (the inbox, the archive, the replica's folder) without following a link
//! or truncating a file that is not ours.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Moves `file` into `dir` (created with mode 0700: the files hold personal data), keeping its
/// name or, if taken, adding `.1`, `.2`, …. Falls back to a verified copy across file systems
/// ([`move_to`]). Returns the new path.
pub fn move_into(file: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let target = free_path_in(file, dir)?;
    move_to(file, &target)?;
    Ok(target)
}

/// Where [`move_into`] would move `file`: `dir` (created, mode 0700) joined with the file's
/// name, or the name with `.1`, `.2`, … when taken (by anything, a dangling link too). Lets a
/// caller record the destination before moving.
pub fn free_path_in(file: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    create_private_dir(dir)?;
    let name = file
        .file_name()
        .with_context(|| format!("{} has no file name", file.display()))?;
    let mut target = dir.join(name);
    let mut n = 1;
    while std::fs::symlink_metadata(&target).is_ok() {
        let mut numbered = name.to_os_string();
        numbered.push(format!(".{n}"));
        target = dir.join(numbered);
        n += 1;
    }
    Ok(target)
}

/// Moves `file` to `target`: a rename, or across file systems (EXDEV) a copy that is never
/// seen half-made (see `copy_across`). On failure `file` is where it was.
pub fn move_to(file: &Path, target: &Path) -> anyhow::Result<()> {
    let renamed = if crate::failpoint::fault("archive.exdev") {
        Err(std::io::Error::from_raw_os_error(libc::EXDEV))
    } else {
        std::fs::rename(file, target)
    };
    match renamed {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => copy_across(file, target),
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "cannot move {} to {}",
            file.display(),
            target.display()
        ))),
    }
}

/// Moves `file` to `target` on another file system: copies it to a temporary name beside
/// `target` (created new, never through a link), flushes it, checks that it has every byte,
/// renames it into place and flushes the folder, and only then removes `file`. A failure (a
/// full disk, say) removes the partial copy and leaves `file` in place: the archive never
/// holds a cut-off or empty copy, and nothing is lost.
fn copy_across(file: &Path, target: &Path) -> anyhow::Result<()> {
    let dir = target
        .parent()
        .with_context(|| format!("{} has no folder", target.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(target.file_name().unwrap_or_default());
    tmp_name.push(format!(".{}.partial", std::process::id()));
    let tmp = dir.join(tmp_name);
    let copied = copy_verified(file, &tmp).and_then(|()| {
        std::fs::rename(&tmp, target)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), target.display()))
    });
    if let Err(e) = copied {
        if let Err(rm) = std::fs::remove_file(&tmp) {
            if rm.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("cannot remove the partial copy {}: {rm}", tmp.display());
            }
        }
        return Err(e.context(format!(
            "cannot copy {} to {} (another file system); the file was left where it is and \
             no partial copy was kept",
            file.display(),
            target.display()
        )));
    }
    sync_dir(dir)?;
    std::fs::remove_file(file).with_context(|| {
        format!(
            "{} was copied to {} but cannot be removed",
            file.display(),
            target.display()
        )
    })?;
    if let Some(source_dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = sync_dir(source_dir);
    }
    Ok(())
}

/// Copies `file` to the new file `tmp`, flushed, with exactly `file`'s size.
fn copy_verified(file: &Path, tmp: &Path) -> anyhow::Result<()> {
    let mut source = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let expected = source.metadata()?.len();
    let mut out = create_new_private(tmp)?;
    let write_err = |e| anyhow::Error::new(e).context(format!("cannot write {}", tmp.display()));
    let copied = if crate::failpoint::fault("archive.copy_fails") {
        // As a disk that fills up half-way through the copy.
        std::io::copy(&mut (&mut source).take(expected / 2), &mut out).map_err(write_err)?;
        return Err(write_err(std::io::Error::from_raw_os_error(libc::ENOSPC)));
    } else {
        std::io::copy(&mut source, &mut out).map_err(write_err)?
    };
    out.sync_all().map_err(write_err)?;
    let written = out.metadata().map_err(write_err)?.len();
    if copied != expected || written != expected {
        anyhow::bail!(
            "the copy {} has {written} bytes, {} has {expected}",
            tmp.display(),
            file.display()
        );
    }
    Ok(())
}

/// Creates a new file readable by the owner only, failing if anything (a file, a link, even
/// a dangling one) is at `path`: never writes through a link someone planted.
pub fn create_new_private(path: &Path) -> anyhow::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    no_follow_private(&mut options);
    options
        .open(path)
        .map_err(|e| refused_link(e, path))
        .with_context(|| format!("cannot create {}", path.display()))
}

/// Options for a file engage-sync writes in a folder others may write to: mode 0600 when
/// created, and `O_NOFOLLOW`, so that a symbolic link at the path fails (ELOOP) instead of
/// being followed to another file.
pub fn no_follow_private(options: &mut OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
}

/// An open file that engage-sync may truncate or rewrite: a regular file with no other name
/// (a hard link to a file elsewhere, planted where engage-sync writes, would pass on the
/// write to that file).
pub fn check_own_file(file: &File, path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = file.metadata()?;
        if !meta.is_file() || meta.nlink() > 1 {
            return Err(std::io::Error::other(format!(
                "{} is not a plain file of its own ({}); engage-sync does not write to it: \
                 remove it, and check who made it",
                path.display(),
                if meta.is_file() {
                    "it has other names: a hard link"
                } else {
                    "not a regular file"
                }
            )));
        }
    }
    Ok(())
}

/// Says what an open that refused a symbolic link (`ELOOP` under `O_NOFOLLOW`) means.
pub fn refused_link(e: std::io::Error, path: &Path) -> std::io::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        std::io::Error::new(
            e.kind(),
            format!(
                "{} is a symbolic link; engage-sync does not write through links where it \
                 keeps its files (one could point at any file): remove the link",
                path.display()
            ),
        )
    } else {
        e
    }
}

/// Flushes a folder, so that a rename or removal in it survives a power cut.
pub fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot flush the folder {} to disk", dir.display()))
}

/// Creates a folder (and parents) readable by the owner only.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("cannot create the folder {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_private_file_is_never_made_through_a_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").expect("victim");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).expect("link");
        assert!(create_new_private(&link).is_err());
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).expect("link");
        assert!(create_new_private(&dangling).is_err());
        assert!(!dir.path().join("nowhere").exists());
        assert_eq!(std::fs::read(&victim).expect("read"), b"keep");
    }

    /// A rename that fails for any reason but "another file system" is reported as the failed
    /// move it is: falling back to a copy there would leave a second copy in the archive
    /// whenever only the removal from the inbox is refused, and says "another file system"
    /// when that is not what happened.
    #[test]
    fn only_a_rename_across_file_systems_falls_back_to_a_copy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("export.xml");
        let target = dir.path().join("archive.xml");
        let e = move_to(&missing, &target).expect_err("nothing to move");
        let message = format!("{e:#}");
        assert!(
            message.starts_with(&format!(
                "cannot move {} to {}",
                missing.display(),
                target.display()
            )),
            "{message}"
        );
        assert!(!message.contains("another file system"), "{message}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
        assert!(left.is_empty(), "nothing is created: {left:?}");
    }

    /// Warnings collected from `tracing` while `f` runs on this thread.
    fn warnings_during(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("sink").extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = sink.0.lock().expect("sink").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    /// A copy across file systems that fails before its partial copy exists (the source is
    /// gone) has nothing to clean up, and says nothing about a partial copy: an operator
    /// reading "cannot remove the partial copy" would go looking for a file that never was.
    #[test]
    fn a_copy_that_never_started_leaves_no_partial_copy_and_no_warning() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("export.xml");
        let target = dir.path().join("archive").join("export.xml");
        create_private_dir(target.parent().expect("parent")).expect("archive");
        let mut result = None;
        let warnings = warnings_during(|| result = Some(copy_across(&missing, &target)));
        let e = result.expect("ran").expect_err("the source is missing");
        assert!(format!("{e:#}").contains("another file system"), "{e:#}");
        assert_eq!(
            warnings, "",
            "no partial copy was made, so none is reported"
        );
        let left: Vec<_> = std::fs::read_dir(target.parent().expect("parent"))
            .expect("dir")
            .collect();
        assert!(left.is_empty(), "nothing is left in the archive: {left:?}");
    }
}
