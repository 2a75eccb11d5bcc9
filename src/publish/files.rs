//! The files of one publication: written under hidden temporary names (`.NAME.part`, which
//! neither `delta` nor the SFTP fetch reads), each flushed to disk when complete, then renamed
//! to their names once the publication is recorded ([`rename_into_place`]), and the folder
//! flushed: a store sees a file complete or not at all.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::xml::{self, Lossy};
use crate::export_xml::Section;

/// Engage's limit of contacts per export file (docs/contract.md §4).
pub const MAX_PER_FILE: usize = 10_000;

/// The hidden temporary name a file is written under.
pub fn temp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.part"))
}

/// Writes members into numbered files `STAMP_N_LABEL.xml`, at most `per_file` a file, the
/// sections in the order they are begun. With `dry_run` nothing is written; names and counts
/// are the same.
pub struct FileSet {
    dir: PathBuf,
    stamp: String,
    label: String,
    per_file: usize,
    dry_run: bool,
    /// Names of the files begun, in order.
    pub names: Vec<String>,
    current: Option<Current>,
    section: Section,
    /// What could not be written as it was.
    pub lossy: Lossy,
}

/// The file being written.
struct Current {
    out: Option<BufWriter<File>>,
    path: PathBuf,
    members: usize,
    /// The section whose start tag was written last, if still open.
    open: Option<Section>,
}

impl FileSet {
    /// A file set in `dir` (which must exist).
    pub fn new(dir: &Path, stamp: &str, label: &str, per_file: usize, dry_run: bool) -> FileSet {
        FileSet {
            dir: dir.to_path_buf(),
            stamp: stamp.to_string(),
            label: label.to_string(),
            per_file: per_file.clamp(1, MAX_PER_FILE),
            dry_run,
            names: Vec::new(),
            current: None,
            section: Section::New,
            lossy: Lossy::default(),
        }
    }

    /// The section the next members go to (sections are begun in document order).
    pub fn begin(&mut self, section: Section) {
        self.section = section;
    }

    /// Writes one member with `write`, opening the next file first when the current one is
    /// full.
    pub fn member(
        &mut self,
        write: impl FnOnce(&mut BufWriter<File>, &mut Lossy) -> std::io::Result<()>,
    ) -> anyhow::Result<()> {
        if self
            .current
            .as_ref()
            .is_none_or(|c| c.members >= self.per_file)
        {
            self.close_current()?;
            self.open_next()?;
        }
        let section = self.section;
        let lossy = &mut self.lossy;
        let Some(current) = self.current.as_mut() else {
            return Ok(());
        };
        current.members += 1;
        let Some(out) = current.out.as_mut() else {
            return Ok(());
        };
        let path = &current.path;
        let io = |e: std::io::Error| {
            anyhow::Error::new(e).context(format!("cannot write {}", path.display()))
        };
        if current.open != Some(section) {
            if let Some(open) = current.open {
                writeln!(out, "</{}>", xml::section_name(open)).map_err(io)?;
            }
            writeln!(out, "<{}>", xml::section_name(section)).map_err(io)?;
            current.open = Some(section);
        }
        write(out, lossy).map_err(io)
    }

    /// Closes the last file; returns the names of all files, in order.
    pub fn finish(mut self) -> anyhow::Result<(Vec<String>, Lossy)> {
        self.close_current()?;
        Ok((self.names, self.lossy))
    }

    fn open_next(&mut self) -> anyhow::Result<()> {
        let name = format!("{}_{}_{}.xml", self.stamp, self.names.len(), self.label);
        let path = temp_path(&self.dir, &name);
        let out = if self.dry_run {
            None
        } else {
            let _ = std::fs::remove_file(&path);
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            published_file_mode(&mut options);
            let file = options
                .open(&path)
                .map_err(|e| crate::fsutil::refused_link(e, &path))
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = BufWriter::with_capacity(256 * 1024, file);
            xml::write_head(&mut out)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Some(out)
        };
        self.names.push(name);
        self.current = Some(Current {
            out,
            path,
            members: 0,
            open: None,
        });
        Ok(())
    }

    /// Ends the current file's section and root, and flushes it to disk.
    fn close_current(&mut self) -> anyhow::Result<()> {
        let Some(current) = self.current.take() else {
            return Ok(());
        };
        let Some(mut out) = current.out else {
            return Ok(());
        };
        let path = current.path;
        (|| -> std::io::Result<()> {
            if let Some(open) = current.open {
                writeln!(out, "</{}>", xml::section_name(open))?;
            }
            xml::write_tail(&mut out)?;
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()
        })()
        .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// Published files are read by another account (the SFTP server's, or a sync tool's): mode
/// 0640, so that account reads them through the group of the folder (README "Hub and
/// stores"); `O_NOFOLLOW`, so that a link planted at the name fails instead of being followed.
fn published_file_mode(options: &mut OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o640).custom_flags(libc::O_NOFOLLOW);
    }
}

/// Renames the files of a recorded publication from their temporary names into place (the
/// ones still at a temporary name: a killed `publish` may have renamed some), then flushes the
/// folder. Returns how many were renamed. A file at neither name was removed since (by hand,
/// or by purge): nothing to do.
pub fn rename_into_place(dir: &Path, names: &[String]) -> anyhow::Result<u64> {
    let mut renamed = 0;
    for name in names {
        let tmp = temp_path(dir, name);
        if tmp.exists() {
            let target = dir.join(name);
            std::fs::rename(&tmp, &target).with_context(|| {
                format!("cannot rename {} to {}", tmp.display(), target.display())
            })?;
            renamed += 1;
            crate::failpoint::hit("publish.renamed");
        }
    }
    if renamed > 0 {
        crate::fsutil::sync_dir(dir)?;
    }
    Ok(renamed)
}

/// Removes temporary files in `dir` of publications that were never recorded (a `publish`
/// killed while writing them): hidden `.NAME.part` files whose NAME is a publication file of
/// `label_prefix` (`LABEL-d` or `LABEL-snapshot-d`). Returns how many.
pub fn remove_unrecorded(dir: &Path, is_ours: impl Fn(&str) -> bool) -> anyhow::Result<u64> {
    let mut removed = 0;
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("cannot list {}", dir.display())))
        }
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str() else {
            continue;
        };
        let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".part")) else {
            continue;
        };
        if is_ours(inner) && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("cannot remove {}", entry.path().display()))?;
            removed += 1;
        }
    }
    Ok(removed)
}
