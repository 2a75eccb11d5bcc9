//! One pipeline for applying an export set, shared by `delta` and `full` (see
//! [`apply_export_set`]).

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{BulkLoader, FileReport, Importer};
use crate::config::Settings;
use crate::export_xml::{ExportFileName, ImportError};
use crate::progress::Progress;
use crate::replica::bulk::BulkCounts;
use crate::replica::Replica;

/// Export files with valid names, in import order (export time, then file number).
#[derive(Debug, Default)]
pub struct ExportSet {
    files: Vec<(ExportFileName, PathBuf)>,
}

impl ExportSet {
    /// The set of `files`, sorted into import order.
    pub fn new(mut files: Vec<(ExportFileName, PathBuf)>) -> ExportSet {
        files.sort_by(|a, b| a.0.order_key().cmp(&b.0.order_key()));
        ExportSet { files }
    }

    /// How many files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether the set has no file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The files' paths, in import order.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(_, p)| p.as_path())
    }

    /// The version (ms) of the set's newest file: what a build from it is as of.
    pub fn snapshot_version(&self, export_offset_seconds: i32) -> i64 {
        self.files
            .iter()
            .map(|(n, _)| n.version_ms(export_offset_seconds))
            .max()
            .unwrap_or(0)
    }

    /// The bytes of its files (those that can be read), for the progress.
    fn total_bytes(&self) -> u64 {
        self.paths()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }
}

/// How a set's files are applied: through the replica's indexes ([`Importer`]: `delta`, and a
/// build an older engage-sync began), or appended to a build without them ([`BulkLoader`]).
pub enum Loader {
    /// Appended without indexes (every build this engage-sync begins).
    Bulk(BulkLoader),
    /// Through the replica's indexes.
    Sorted(Importer),
}

impl Loader {
    fn parse_ahead(
        &mut self,
        replica: &mut Replica,
        paths: Vec<PathBuf>,
        settings: &Settings,
    ) -> anyhow::Result<()> {
        match self {
            Loader::Bulk(l) => l.parse_ahead(paths, settings, replica.mode()),
            Loader::Sorted(l) => l.parse_ahead(replica, paths, settings)?,
        }
        Ok(())
    }

    fn apply(
        &mut self,
        replica: &mut Replica,
        name: &ExportFileName,
        path: &Path,
        settings: &Settings,
        progress: &Progress,
    ) -> anyhow::Result<()> {
        match self {
            Loader::Bulk(l) => l.apply(replica, name, path, settings, progress),
            Loader::Sorted(l) => l.apply(replica, name, path, settings, progress),
        }
    }

    fn finish(&mut self, replica: &mut Replica) -> anyhow::Result<()> {
        match self {
            Loader::Bulk(l) => l.finish(replica),
            Loader::Sorted(l) => l.finish(replica),
        }
    }

    fn take_reports(&mut self) -> Vec<FileReport> {
        match self {
            Loader::Bulk(l) => l.take_reports(),
            Loader::Sorted(l) => l.take_reports(),
        }
    }

    /// Files applied but not archived (only an [`Importer`] archives).
    fn take_warnings(&mut self) -> Vec<String> {
        match self {
            Loader::Bulk(_) => Vec::new(),
            Loader::Sorted(l) => l.take_warnings(),
        }
    }

    /// What the bulk loads into an empty replica resolved (see [`Importer::resolved`]).
    fn resolved(&self) -> BulkCounts {
        match self {
            Loader::Bulk(_) => BulkCounts::default(),
            Loader::Sorted(l) => l.resolved(),
        }
    }
}

/// Whether a run goes on after a refused file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on with the next file (`--keep-going`).
    Continue,
    /// Apply no more files; what was applied is committed.
    Stop,
}

/// The caller's side of [`apply_export_set`]: what it does with each file's outcome.
pub trait SetObserver {
    /// Reports of the files committed since the last call, in order.
    fn committed(&mut self, reports: Vec<FileReport>);
    /// Warnings about files applied (e.g. applied but not archived).
    fn warnings(&mut self, warnings: Vec<String>);
    /// A file the loader refused ([`ImportError`]: malformed, a name conflict): nothing of it
    /// was applied and the files before it are committed. An error ends the run as it is.
    fn refused(
        &mut self,
        replica: &mut Replica,
        path: &Path,
        error: anyhow::Error,
    ) -> anyhow::Result<Flow>;
    /// Any other failure at `path` (the replica or the disk): the loader dropped its open
    /// transaction; `not_tried` files come after it. Returns the error the run ends with.
    fn failed(&mut self, path: &Path, not_tried: usize, error: anyhow::Error) -> anyhow::Error;
}

/// How [`apply_export_set`] runs.
#[derive(Debug, Clone, Copy)]
pub struct SetOptions<'a> {
    /// The progress's label (the command).
    pub label: &'static str,
    /// Whether the progress shows (not for `-q`, `--json`, a dry run).
    pub show_progress: bool,
    /// The settings the files are read with.
    pub settings: &'a Settings,
    /// Stop before the next file once this time has come (`full --deadline`).
    pub deadline: Option<Instant>,
}

/// How a run of [`apply_export_set`] ended (short of an error).
#[derive(Debug, Clone, Copy)]
pub enum SetEnd {
    /// Every file was tried, or a refused file stopped the run with `not_tried` files after
    /// it; what was applied is committed.
    Finished {
        /// Files after a refused file that stopped the run.
        not_tried: usize,
        /// What the bulk loads into an empty replica resolved.
        resolved: BulkCounts,
    },
    /// The deadline came before the file at `applied` (that many were applied, and are
    /// committed).
    Paused {
        /// Files applied before the deadline.
        applied: usize,
    },
}

/// Applies `set` to `replica` with `loader`, in order: sums the bytes for the progress, parses
/// each file while the one before is written, applies, and hands each committed file's report
/// to `observer` (see [`SetObserver`] for refused and failed files).
pub fn apply_export_set(
    replica: &mut Replica,
    mut loader: Loader,
    set: &ExportSet,
    opts: &SetOptions<'_>,
    observer: &mut dyn SetObserver,
) -> anyhow::Result<SetEnd> {
    let progress = Progress::new(opts.label, set.total_bytes(), opts.show_progress);
    let paths = set.paths().map(Path::to_path_buf).collect();
    loader.parse_ahead(replica, paths, opts.settings)?;
    let mut not_tried = 0;
    for (i, (name, path)) in set.files.iter().enumerate() {
        if opts.deadline.is_some_and(|d| Instant::now() >= d) {
            loader.finish(replica)?;
            progress.finish();
            return Ok(SetEnd::Paused { applied: i });
        }
        let result = loader.apply(replica, name, path, opts.settings, &progress);
        observer.committed(loader.take_reports());
        let Err(e) = result else { continue };
        let after = set.len() - i - 1;
        if e.downcast_ref::<ImportError>().is_none() {
            progress.finish();
            observer.warnings(loader.take_warnings());
            return Err(observer.failed(path, after, e));
        }
        if observer.refused(replica, path, e)? == Flow::Stop {
            not_tried = after;
            break;
        }
    }
    loader.finish(replica)?;
    observer.committed(loader.take_reports());
    observer.warnings(loader.take_warnings());
    progress.finish();
    Ok(SetEnd::Finished {
        not_tried,
        resolved: loader.resolved(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> (ExportFileName, PathBuf) {
        let parsed = ExportFileName::parse(name).expect("an export file name");
        (parsed, PathBuf::from(name))
    }

    #[test]
    fn an_export_set_is_in_import_order_and_as_of_its_newest_file() {
        let set = ExportSet::new(vec![
            named("20260102000000_1_c.xml"),
            named("20260101000000_10_b.xml"),
            named("20260101000000_2_a.xml"),
        ]);
        let paths: Vec<String> = set.paths().map(|p| p.display().to_string()).collect();
        // File numbers are numbers (2 before 10), not text.
        assert_eq!(
            paths,
            [
                "20260101000000_2_a.xml",
                "20260101000000_10_b.xml",
                "20260102000000_1_c.xml"
            ]
        );
        // 2026-01-02T00:00:00Z, and an hour earlier in UTC when names are read at +01:00.
        assert_eq!(set.snapshot_version(0), 1_767_312_000_000);
        assert_eq!(set.snapshot_version(3600), 1_767_312_000_000 - 3_600_000);
        assert_eq!(ExportSet::default().snapshot_version(0), 0);
    }
}
