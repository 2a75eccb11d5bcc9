//! Moving processed files to the archive or quarantine folders.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// Moves `file` into `dir` (created with mode 0700: the files hold personal data), keeping its
/// name or, if taken, adding `.1`, `.2`, …. Falls back to copy + fsync + remove across file
/// systems. Returns the new path.
pub fn move_into(file: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let target = free_path_in(file, dir)?;
    move_to(file, &target)?;
    Ok(target)
}

/// Where [`move_into`] would move `file`: `dir` (created, mode 0700) joined with the file's
/// name, or the name with `.1`, `.2`, … when taken. Lets a caller record the destination
/// before moving.
pub fn free_path_in(file: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    create_private_dir(dir)?;
    let name = file
        .file_name()
        .with_context(|| format!("{} has no file name", file.display()))?;
    let mut target = dir.join(name);
    let mut n = 1;
    while target.exists() {
        let mut numbered = name.to_os_string();
        numbered.push(format!(".{n}"));
        target = dir.join(numbered);
        n += 1;
    }
    Ok(target)
}

/// Moves `file` to `target` (a rename, or copy + fsync + remove across file systems).
pub fn move_to(file: &Path, target: &Path) -> anyhow::Result<()> {
    match std::fs::rename(file, target) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(18) => {
            // EXDEV: another file system.
            std::fs::copy(file, target).with_context(|| {
                format!("cannot copy {} to {}", file.display(), target.display())
            })?;
            std::fs::File::open(target)?.sync_all()?;
            std::fs::remove_file(file)
                .with_context(|| format!("cannot remove {} after copying it", file.display()))
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "cannot move {} to {}",
            file.display(),
            target.display()
        ))),
    }
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
