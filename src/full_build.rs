//! A `full` build's life (docs/contract.md §2): the next generation is opened (or an
//! unfinished one resumed), filled from a complete export set or from Engage's API, merged
//! with the live replica's newer state and swapped in ([`FullBuild`]). The caller holds the
//! writer lock throughout.

mod api;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::api_sync::{CURSOR, FULL_STARTED};
use crate::config::{Mode, Settings};
use crate::engage::EngageClient;
use crate::error::ExitCode;
use crate::import::{
    apply_export_set, BulkLoader, ExportSet, FileReport, FileStatus, Flow, ImportOptions, Importer,
    Loader, SetEnd, SetObserver, SetOptions,
};
use crate::replica::bulk::{BulkCounts, BulkState};
use crate::replica::generation::Layout;
use crate::replica::rekey::RekeyReport;
use crate::replica::{MergeCounts, Replica, DEFAULT_MODE};
use crate::sqlite_file::with_suffix;
use crate::time::now_rfc3339;

/// Meta keys of a build.
const META_SOURCE: &str = "full_source";
const META_STARTED: &str = "full_started_at";
const META_SNAPSHOT: &str = "full_snapshot_version";
const META_LISTED: &str = "full_listed_until";

/// Where a build's contacts come from.
pub enum Source {
    /// A complete export set (`--from-xml`), bulk loaded.
    Xml(ExportSet),
    /// Engage's API: every contact created or updated since `since`, fetched one by one.
    Api {
        /// The start of the listed window.
        since: DateTime<Utc>,
        /// Engage, with the run's deadline.
        client: EngageClient,
    },
}

impl Source {
    /// Which kind of source.
    pub fn kind(&self) -> SourceKind {
        match self {
            Source::Xml(_) => SourceKind::Xml,
            Source::Api { .. } => SourceKind::Api,
        }
    }
}

/// The kind of a [`Source`], as a build stores it and a summary prints it: "xml" or "api".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// An export set.
    #[default]
    Xml,
    /// Engage's API.
    Api,
}

impl SourceKind {
    /// "xml" or "api".
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Xml => "xml",
            SourceKind::Api => "api",
        }
    }
}

/// What [`FullBuild::open`] does with an unfinished build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfinished {
    /// Resume it (the same source only).
    Resume,
    /// Remove it and start over (`--restart`).
    StartOver,
}

/// Why a build stopped before it was complete: the next run resumes it.
#[derive(Debug, thiserror::Error)]
#[error(
    "the full build stopped at its deadline after {applied} of {total} files; the current replica \
     is unchanged and still in service. Run the same command again to resume the build"
)]
pub struct BuildPaused {
    applied: usize,
    total: usize,
}

impl crate::error::Coded for BuildPaused {
    fn exit_code(&self) -> ExitCode {
        ExitCode::TempFail
    }
}

/// How [`FullBuild::fill`] runs.
#[derive(Debug, Clone, Copy)]
pub struct FillOptions {
    /// Whether progress shows (not for `-q` or `--json`).
    pub show_progress: bool,
    /// An XML build pauses before the next file once this time has come ([`BuildPaused`]).
    pub deadline: Option<Instant>,
}

/// What filling a build did, and what the build is as of.
#[derive(Debug, Default)]
pub struct Filled {
    /// Files applied by this run.
    pub files_applied: u64,
    /// Files the resumed build already held.
    pub files_already_applied: u64,
    /// Contacts read (from the files) or fetched (from the API).
    pub members: u64,
    /// What finishing a bulk load resolved (contacts loaded more than once, deletes).
    pub resolved: Option<BulkCounts>,
    /// The snapshot version (ms): live changes after it win in the merge.
    snapshot: i64,
    /// Where the first `changes` after the build continues from.
    cursor: String,
}

/// What swapping the build in did.
#[derive(Debug)]
pub struct Swapped {
    /// Contacts in the new replica.
    pub contacts: i64,
    /// What the merge carried over from the previous replica (none on a first build that
    /// merged nothing).
    pub merged_from_previous: Option<MergeCounts>,
    /// The new generation, now in service.
    pub generation: PathBuf,
}

/// The build generation of a `full` run, from opening to the swap.
pub struct FullBuild {
    build: Replica,
    source: Source,
    layout: Layout,
    path: PathBuf,
    /// The live replica's mode; `None` when there is none yet (a first `full`).
    live_mode: Option<Mode>,
    resumed: bool,
    rekey: Option<RekeyReport>,
}

impl FullBuild {
    /// Opens the build for `source`, resuming an unfinished one of the same source (see
    /// [`Unfinished`]). The live replica's keys are brought to the current rules first: the
    /// merge copies its newer rows into the build.
    pub fn open(s: &Settings, source: Source, unfinished: Unfinished) -> anyhow::Result<Self> {
        let layout = Layout::new(&s.db);
        let path = layout.build_path();
        if unfinished == Unfinished::StartOver {
            remove_build(&path)?;
        }
        let (rekey, live_mode) = match s.db.exists() {
            true => {
                let mut live = open_live(s)?;
                (live.rekey_if_marked(s.default_country)?, Some(live.mode()))
            }
            false => (None, None),
        };
        let mode = s.mode.or(live_mode).unwrap_or(DEFAULT_MODE);
        let (mut build, resumed) = open_build(&layout, mode, s, &source)?;
        check_source(&mut build, resumed, source.kind())?;
        Ok(FullBuild {
            build,
            source,
            layout,
            path,
            live_mode,
            resumed,
            rekey,
        })
    }

    /// The new replica's mode.
    pub fn mode(&self) -> Mode {
        self.build.mode()
    }

    /// Whether this run resumes an unfinished build.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// What re-normalising the live replica's keys did (once after an upgrade).
    pub fn take_rekey(&mut self) -> Option<RekeyReport> {
        self.rekey.take()
    }

    /// Fills the build from its source. Files or contacts the build already holds (an
    /// interrupted run) are not applied again.
    pub fn fill(&mut self, s: &Settings, opts: &FillOptions) -> anyhow::Result<Filled> {
        match &self.source {
            Source::Xml(set) => fill_from_xml(&mut self.build, set, s, opts),
            Source::Api { since, client } => {
                api::fill_from_api(&mut self.build, client, *since, s, opts.show_progress)
            }
        }
    }

    /// Records what the build is as of, merges the live replica's newer state into it and
    /// swaps it in. A first `full` creates the (empty) replica and its till store first, so
    /// that the till store exists before the swap puts the replica in service.
    pub fn swap_in(mut self, s: &Settings, filled: &Filled) -> anyhow::Result<Swapped> {
        let build = &mut self.build;
        build.set_meta(META_SNAPSHOT, &filled.snapshot.to_string())?;
        build.set_cursor(CURSOR, &filled.cursor)?;
        build.set_meta(FULL_STARTED, &filled.cursor)?;
        crate::failpoint::hit("full.built");
        self.layout.flush_build()?;
        // The merge and the swap need nothing from the till: its writes go to the till store,
        // which stays where it is. The writer lock keeps every other writer of the replica
        // away.
        if self.live_mode.is_none() {
            let mode = build.mode();
            Replica::open_writer(&s.db, Some(mode), mode, s.busy_timeout)?;
        }
        let merge_started = Instant::now();
        let merged = build.merge_from_live(&s.db, filled.snapshot)?;
        let merged_from_previous =
            (self.live_mode.is_some() || merged != MergeCounts::default()).then_some(merged);
        crate::failpoint::hit("full.merged");
        let contacts = build.contact_count()?;
        build.checkpoint()?;
        let FullBuild {
            build,
            layout,
            path,
            ..
        } = self;
        drop(build);
        let generation = layout.swap_in(&path)?;
        tracing::info!(
            "full: swapped in {} ({:.2} s for the merge and swap)",
            generation.display(),
            merge_started.elapsed().as_secs_f64()
        );
        Ok(Swapped {
            contacts,
            merged_from_previous,
            generation,
        })
    }
}

/// Applies the export set, several files per transaction, then finishes the bulk load
/// (indexes, contacts loaded more than once, deletes).
fn fill_from_xml(
    build: &mut Replica,
    set: &ExportSet,
    s: &Settings,
    opts: &FillOptions,
) -> anyhow::Result<Filled> {
    let loader = if build.bulk_state()? == BulkState::Loading {
        build.bulk_pragmas()?;
        Loader::Bulk(BulkLoader::new(build)?)
    } else {
        // A build begun by an engage-sync from before bulk loading.
        Loader::Sorted(Importer::new(ImportOptions::default()))
    };
    let set_opts = SetOptions {
        label: "full",
        show_progress: opts.show_progress,
        settings: s,
        deadline: opts.deadline,
    };
    let mut filled = Filled::default();
    let end = apply_export_set(build, loader, set, &set_opts, &mut filled)?;
    if let SetEnd::Paused { applied } = end {
        let total = set.len();
        return Err(BuildPaused { applied, total }.into());
    }
    if build.bulk_state()? == BulkState::Loading {
        tracing::info!("full: all files loaded; building the new replica's indexes");
        filled.resolved = Some(build.finish_bulk(&now_rfc3339())?);
    }
    filled.snapshot = set.snapshot_version(s.export_offset_seconds);
    filled.cursor = ms_to_rfc3339(filled.snapshot);
    Ok(filled)
}

/// Opens the replica in service for writing, whatever its mode (the live replica a build
/// merges from, and the new one after the swap).
pub fn open_live(s: &Settings) -> anyhow::Result<Replica> {
    Replica::open_writer(&s.db, None, DEFAULT_MODE, s.busy_timeout)
}

/// Opens (creating) the build; returns it and whether it resumes an unfinished one. An XML
/// build written before the machine last started is started over (an OS crash may have lost
/// its writes), and a new XML build begins its bulk load.
fn open_build(
    layout: &Layout,
    mode: Mode,
    s: &Settings,
    source: &Source,
) -> anyhow::Result<(Replica, bool)> {
    let path = layout.build_path();
    let mut resumed = path.exists();
    crate::fsutil::create_private_dir(&layout.dir())?;
    let open = || {
        Replica::open_build(&path, mode, s.busy_timeout)
            .context("the unfinished build does not match this run; pass --restart to start over")
    };
    let mut build = open()?;
    let xml = matches!(source, Source::Xml(_));
    if xml && build.bulk_state()? == BulkState::FromEarlierBoot {
        tracing::warn!(
            "the unfinished build at {} was written before the machine last started and may \
             have lost writes in an OS crash: starting it over",
            path.display()
        );
        drop(build);
        remove_build(&path)?;
        build = open()?;
        resumed = false;
    }
    if xml && build.meta(META_SOURCE)?.is_none() {
        build.begin_bulk()?;
    }
    Ok((build, resumed))
}

/// A build remembers its source; resuming it from another kind of source would mix them.
fn check_source(build: &mut Replica, resumed: bool, source: SourceKind) -> anyhow::Result<()> {
    match build.meta(META_SOURCE)? {
        Some(stored) if stored != source.as_str() => Err(anyhow::anyhow!(
            "an unfinished build from {stored} exists at {}; finish it with the same source, or \
             pass --restart to start over",
            build.path().display()
        )),
        Some(_) => {
            tracing::info!(
                "resuming the unfinished build at {}",
                build.path().display()
            );
            Ok(())
        }
        None => {
            if resumed {
                tracing::info!(
                    "resuming the unfinished build at {}",
                    build.path().display()
                );
            }
            build.set_meta(META_SOURCE, source.as_str())?;
            build.set_meta(META_STARTED, &now_rfc3339())
        }
    }
}

/// The build's side of the export-set pipeline: counts the files; a refused file stops the
/// build (a full set must be whole).
impl SetObserver for Filled {
    fn committed(&mut self, reports: Vec<FileReport>) {
        for report in reports {
            match report.status {
                FileStatus::Applied => self.files_applied += 1,
                FileStatus::AlreadyApplied => self.files_already_applied += 1,
            }
            self.members += report.ledger.members;
        }
    }

    fn warnings(&mut self, _warnings: Vec<String>) {}

    fn refused(
        &mut self,
        _replica: &mut Replica,
        path: &Path,
        error: anyhow::Error,
    ) -> anyhow::Result<Flow> {
        Err(self.failed(path, 0, error))
    }

    fn failed(&mut self, _path: &Path, _not_tried: usize, error: anyhow::Error) -> anyhow::Error {
        error.context(
            "the full build stopped; the current replica is unchanged. Fix or replace the \
             file and run the same command again to resume",
        )
    }
}

/// Removes an unfinished build and its WAL files.
fn remove_build(build: &Path) -> anyhow::Result<()> {
    for path in [
        build.to_path_buf(),
        with_suffix(build, "-wal"),
        with_suffix(build, "-shm"),
    ] {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("cannot remove {}", path.display()))
                )
            }
        }
    }
    Ok(())
}

fn ms_to_rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}
