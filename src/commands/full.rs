//! `engage-sync full --from-xml PATH...`: build a complete replica and swap it in (docs/contract.md
//! §2).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::changes::{CURSOR, FULL_STARTED};
use super::delta::collect_inputs;
use super::engage_setup::engage_client;
use super::{print_json, print_lines, Ctx};
use crate::api_sync::{fetch_and_apply, parse_since, ApplyCounts, ApplyOptions, RowShape};
use crate::cli::FullArgs;
use crate::engage::{ChangeType, EngageClient};
use crate::error::{ExitCode, UsageError};
use crate::export_xml::{file_parser, ExportFileName, ImportError};
use crate::import::{BulkLoader, FileReport, FileStatus, ImportOptions, Importer};
use crate::lock;
use crate::progress::{ItemProgress, Progress};
use crate::replica::bulk::{BulkCounts, BulkState};
use crate::replica::generation::{with_suffix, Layout};
use crate::replica::rekey::RekeyReport;
use crate::replica::set_cursor;
use crate::replica::{MergeCounts, Replica, RunLog, DEFAULT_MODE};
use crate::time::now_rfc3339;

/// Meta keys of a build.
const META_SOURCE: &str = "full_source";
const META_STARTED: &str = "full_started_at";
const META_SNAPSHOT: &str = "full_snapshot_version";
const META_LISTED: &str = "full_listed_until";

#[derive(Debug, Default, Serialize)]
struct FullSummary {
    dry_run: bool,
    /// "xml" or "api".
    source: &'static str,
    resumed: bool,
    mode: &'static str,
    files_applied: u64,
    files_already_applied: u64,
    contacts: i64,
    members: u64,
    /// What finishing the load resolved (contacts loaded more than once, deletes).
    resolved: Option<BulkCounts>,
    merged_from_previous: Option<MergeCounts>,
    replica: Option<String>,
    elapsed_seconds: f64,
    contacts_per_second: f64,
    /// The live replica's stored keys re-normalised after an upgrade (once), before the merge.
    #[serde(skip_serializing_if = "Option::is_none")]
    rekey: Option<RekeyReport>,
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

/// Builds, merges and swaps; prints the summary.
pub fn run(ctx: &Ctx, args: &FullArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let deadline = args.deadline.map(|d| started + d);
    let s = &ctx.settings;
    let files = if args.from_xml.is_empty() {
        Vec::new()
    } else {
        export_set(&args.from_xml)?
    };
    let no_files = files.is_empty() && !args.from_xml.is_empty();
    if args.write.dry_run {
        if no_files {
            return Err(no_export_files(&args.from_xml));
        }
        if files.is_empty() {
            return Err(UsageError(
                "full --dry-run checks an export file set; give --from-xml PATH (an API build \
                 has nothing to check without fetching every contact)"
                    .into(),
            )
            .into());
        }
        return dry_run(ctx, &files, started);
    }
    crate::db_owner::check_before_lock(&s.db)?;
    if no_files {
        return Err(no_export_files(&args.from_xml));
    }
    // An API build checks --since and Engage's settings before anything is created: without
    // them (the wrong folder or config) it leaves no lock file, build or replica behind.
    let mut api = match files.is_empty() {
        true => Some((
            parse_since_arg(args.since.as_deref())?,
            engage_client(ctx, deadline)?,
        )),
        false => None,
    };
    let _lock = lock::acquire(&s.db, "full", args.write.wait)?;
    let layout = Layout::new(&s.db);
    let build_path = layout.build_path();
    if args.restart {
        remove_build(&build_path)?;
    }
    // The live replica's keys are brought to the current rules first: the merge copies its
    // newer rows into the build.
    let mut rekey = None;
    let live_mode = if s.db.exists() {
        let mut live = Replica::open_writer(&s.db, None, DEFAULT_MODE, s.busy_timeout)?;
        rekey = super::rekey(&mut live, s, false)?;
        Some(live.mode())
    } else {
        None
    };
    let mode = s.mode.or(live_mode).unwrap_or(DEFAULT_MODE);
    let mut resumed = build_path.exists();
    crate::fsutil::create_private_dir(&layout.dir())?;
    let open_build = || {
        Replica::open_build(&build_path, mode, s.busy_timeout)
            .context("the unfinished build does not match this run; pass --restart to start over")
    };
    let mut build = open_build()?;
    let source = if files.is_empty() { "api" } else { "xml" };
    if source == "xml" && build.bulk_state()? == BulkState::FromEarlierBoot {
        tracing::warn!(
            "the unfinished build at {} was written before the machine last started and may \
             have lost writes in an OS crash: starting it over",
            build_path.display()
        );
        drop(build);
        remove_build(&build_path)?;
        build = open_build()?;
        resumed = false;
    }
    if source == "xml" && build.meta(META_SOURCE)?.is_none() {
        build.begin_bulk()?;
    }
    check_source(&mut build, resumed, source)?;
    let mut summary = FullSummary {
        resumed,
        source,
        mode: mode.as_str(),
        rekey,
        ..FullSummary::default()
    };
    let (snapshot, cursor) = if source == "xml" {
        apply_all(ctx, &mut build, &files, deadline, &mut summary)?;
        if build.bulk_state()? == BulkState::Loading {
            tracing::info!("full: all files loaded; building the new replica's indexes");
            summary.resolved = Some(build.finish_bulk(&now_rfc3339())?);
        }
        let snapshot = files
            .iter()
            .map(|(n, _)| n.version_ms(s.export_offset_seconds))
            .max()
            .unwrap_or(0);
        (snapshot, ms_to_rfc3339(snapshot))
    } else {
        let (since, client) = api.take().context("an API build without its settings")?;
        build_from_api(ctx, &client, &mut build, since, &mut summary)?
    };
    build.set_meta(META_SNAPSHOT, &snapshot.to_string())?;
    set_cursor(build.conn(), CURSOR, &cursor)?;
    build.set_meta(FULL_STARTED, &cursor)?;
    crate::failpoint::hit("full.built");
    layout.flush_build()?;
    // The merge and the swap need nothing from the till: its writes go to the till store,
    // which stays where it is. The writer lock keeps every other writer of the replica away.
    // A first `full` creates the (empty) replica and its till store first, so that the till
    // store exists before the swap puts the replica in service.
    if live_mode.is_none() {
        Replica::open_writer(&s.db, Some(mode), mode, s.busy_timeout)?;
    }
    let merge_started = Instant::now();
    let merged = build.merge_from_live(&s.db, snapshot)?;
    if live_mode.is_some() || merged != MergeCounts::default() {
        summary.merged_from_previous = Some(merged);
    }
    crate::failpoint::hit("full.merged");
    summary.contacts = build.contact_count()?;
    build.checkpoint()?;
    drop(build);
    let generation = layout.swap_in(&build_path)?;
    tracing::info!(
        "full: swapped in {} ({:.2} s for the merge and swap)",
        generation.display(),
        merge_started.elapsed().as_secs_f64()
    );
    summary.replica = Some(generation.display().to_string());
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    summary.contacts_per_second = rate(summary.members, summary.elapsed_seconds);
    record_run(ctx, &summary)?;
    if ctx.prints_summary(true, false) {
        print_summary(ctx, &summary)?;
    }
    Ok(ExitCode::Ok)
}

/// The files of the export set, in order; a bad name is an error (a full set must be whole).
fn export_set(paths: &[PathBuf]) -> anyhow::Result<Vec<(ExportFileName, PathBuf)>> {
    let mut files = Vec::new();
    let inputs = collect_inputs(paths, &PathBuf::new(), None)?;
    if let Some(first) = inputs.not_utf8.first() {
        return Err(super::delta::NotUtf8Names {
            count: inputs.not_utf8.len(),
            first: super::delta::escaped(first),
        }
        .into());
    }
    for input in inputs.files {
        match input.name {
            Ok(name) => files.push((name, input.path)),
            Err(reason) => {
                return Err(ImportError::BadName {
                    file: input.path,
                    reason,
                }
                .into())
            }
        }
    }
    files.sort_by(|a, b| a.0.order_key().cmp(&b.0.order_key()));
    Ok(files)
}

/// `--from-xml` named paths that hold no export file (exit 64). Never a guess: an empty set
/// would otherwise read as "no --from-xml", a build from Engage's API.
fn no_export_files(paths: &[PathBuf]) -> anyhow::Error {
    let given: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    UsageError(format!(
        "full --from-xml: no export files (YYYYMMDDHHmmss_N_name.xml) in {}; nothing was built \
         or changed. Give the folder or files of a complete export set (full builds from \
         Engage's API only without --from-xml)",
        given.join(", ")
    ))
    .into()
}

/// A build remembers its source; resuming it from another kind of source would mix them.
fn check_source(build: &mut Replica, resumed: bool, source: &str) -> anyhow::Result<()> {
    match build.meta(META_SOURCE)? {
        Some(stored) if stored != source => Err(anyhow::anyhow!(
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
            build.set_meta(META_SOURCE, source)?;
            build.set_meta(META_STARTED, &now_rfc3339())
        }
    }
}

/// Ids fetched per transaction in an API build (each removed from the queue with its data).
const API_BATCH: u32 = 5_000;

/// Builds from the API: lists every contact created or updated since `since` with the changes
/// feed (once; the list is kept in the build, so a resumed build does not list again), then
/// fetches what is left of the list. Returns the snapshot version (ms) and the time the first
/// `changes` continues from (the end of the listed window).
fn build_from_api(
    ctx: &Ctx,
    client: &EngageClient,
    build: &mut Replica,
    since: DateTime<Utc>,
    summary: &mut FullSummary,
) -> anyhow::Result<(i64, String)> {
    let progress = ItemProgress::start("full", !ctx.json && ctx.verbosity >= 0);
    let listed_until = match build.meta(META_LISTED)? {
        Some(t) => t,
        None => {
            progress.phase("listing contacts");
            let to = Utc::now();
            let created = client.changes_all(ChangeType::Created, since, to)?;
            let updated = client.changes_all(ChangeType::Updated, since, to)?;
            let queued = build.queue_pending(created.iter().chain(updated.iter()))?;
            crate::failpoint::hit("full.api_listed");
            tracing::info!("full: {queued} contacts to fetch");
            let t = to.to_rfc3339_opts(SecondsFormat::Millis, true);
            build.set_meta(META_LISTED, &t)?;
            t
        }
    };
    progress.set_total(build.pending_count()?.max(0) as u64);
    progress.phase("fetching contacts");
    let shape = RowShape {
        mode: build.mode(),
        country: ctx.settings.default_country,
    };
    loop {
        let ids = build.pending_batch(API_BATCH)?;
        if ids.is_empty() {
            break;
        }
        let mut counts = ApplyCounts::default();
        let opts = ApplyOptions {
            shape,
            dry_run: false,
            from_build_queue: true,
            progress: Some(&progress),
        };
        let result = fetch_and_apply(client, build.conn(), ids, &opts, &mut counts, None);
        crate::failpoint::hit("full.api_batch");
        summary.members += counts.fetched;
        let stop = match result {
            Ok(None) => None,
            Ok(Some(e)) => Some(anyhow::Error::new(e).context(format!(
                "{} contact(s) could not be fetched; the build keeps what it has",
                counts.failed
            ))),
            Err(e) => Some(e),
        };
        if let Some(e) = stop {
            drop(progress);
            return Err(e.context(
                "the full build stopped; the current replica is unchanged and still in service. \
                 Run the same command again to resume the build",
            ));
        }
    }
    drop(progress);
    let started = build
        .meta(META_STARTED)?
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map_or_else(|| Utc::now().timestamp_millis(), |t| t.timestamp_millis());
    Ok((started, listed_until))
}

fn parse_since_arg(since: Option<&str>) -> anyhow::Result<DateTime<Utc>> {
    let value = since.unwrap_or("2000-01-01");
    parse_since(value).ok_or_else(|| {
        UsageError(format!(
            "--since {value:?} is not a date like 2026-11-01 or 2026-11-01T08:00:00Z"
        ))
        .into()
    })
}

fn ms_to_rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Applies the export set into the build, several files per transaction. Files the build
/// already holds (an interrupted run) are skipped by the ledger.
fn apply_all(
    ctx: &Ctx,
    build: &mut Replica,
    files: &[(ExportFileName, PathBuf)],
    deadline: Option<Instant>,
    summary: &mut FullSummary,
) -> anyhow::Result<()> {
    let total_bytes = files
        .iter()
        .filter_map(|(_, p)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let progress = Progress::new("full", total_bytes, !ctx.json && ctx.verbosity >= 0);
    let mut importer = if build.bulk_state()? == BulkState::Loading {
        build.bulk_pragmas()?;
        Loader::Bulk(BulkLoader::new(build)?)
    } else {
        // A build begun by an engage-sync from before bulk loading.
        Loader::Sorted(Importer::new(ImportOptions::default()))
    };
    let paths = files.iter().map(|(_, p)| p.clone()).collect();
    importer.parse_ahead(build, paths, &ctx.settings)?;
    for (i, (name, path)) in files.iter().enumerate() {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            importer.finish(build)?;
            progress.finish();
            return Err(BuildPaused {
                applied: i,
                total: files.len(),
            }
            .into());
        }
        importer
            .apply(build, name, path, &ctx.settings, &progress)
            .with_context(|| {
                "the full build stopped; the current replica is unchanged. Fix or replace the \
                 file and run the same command again to resume"
            })?;
        count_reports(&mut importer, summary);
    }
    importer.finish(build)?;
    count_reports(&mut importer, summary);
    progress.finish();
    Ok(())
}

/// How a build's files are applied: appended without indexes (every build this engage-sync
/// begins), or through the replica's indexes (a build an older one began).
enum Loader {
    Bulk(BulkLoader),
    Sorted(Importer),
}

impl Loader {
    fn parse_ahead(
        &mut self,
        build: &mut Replica,
        paths: Vec<PathBuf>,
        settings: &crate::config::Settings,
    ) -> anyhow::Result<()> {
        match self {
            Loader::Bulk(l) => l.parse_ahead(paths, settings, build.mode()),
            Loader::Sorted(l) => l.parse_ahead(build, paths, settings)?,
        }
        Ok(())
    }

    fn apply(
        &mut self,
        build: &mut Replica,
        name: &ExportFileName,
        path: &std::path::Path,
        settings: &crate::config::Settings,
        progress: &Progress,
    ) -> anyhow::Result<()> {
        match self {
            Loader::Bulk(l) => l.apply(build, name, path, settings, progress),
            Loader::Sorted(l) => l.apply(build, name, path, settings, progress),
        }
    }

    fn finish(&mut self, build: &mut Replica) -> anyhow::Result<()> {
        match self {
            Loader::Bulk(l) => l.finish(build),
            Loader::Sorted(l) => l.finish(build),
        }
    }

    fn take_reports(&mut self) -> Vec<FileReport> {
        match self {
            Loader::Bulk(l) => l.take_reports(),
            Loader::Sorted(l) => l.take_reports(),
        }
    }
}

/// Counts the files committed so far in the summary.
fn count_reports(importer: &mut Loader, summary: &mut FullSummary) {
    for report in importer.take_reports() {
        match report.status {
            FileStatus::Applied => summary.files_applied += 1,
            FileStatus::AlreadyApplied => summary.files_already_applied += 1,
        }
        summary.members += report.ledger.members;
    }
}

/// Removes an unfinished build and its WAL files.
fn remove_build(build: &std::path::Path) -> anyhow::Result<()> {
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

/// Records the run in the new replica's log (the previous history was merged into it).
fn record_run(ctx: &Ctx, summary: &FullSummary) -> anyhow::Result<()> {
    let s = &ctx.settings;
    let mut replica = Replica::open_writer(&s.db, None, DEFAULT_MODE, s.busy_timeout)?;
    let log = RunLog::start(replica.conn(), "full", &now_rfc3339())?;
    let counts = serde_json::json!({
        "files_applied": summary.files_applied, "contacts": summary.contacts,
    });
    log.finish(
        replica.conn(),
        &now_rfc3339(),
        0,
        Some(&counts.to_string()),
        None,
    )?;
    Ok(())
}

/// Parses every file (the real parser) and reports what a build would hold; writes nothing.
fn dry_run(
    ctx: &Ctx,
    files: &[(ExportFileName, PathBuf)],
    started: Instant,
) -> anyhow::Result<ExitCode> {
    let mut members = 0u64;
    // A small file's bytes, read whole (reused from file to file).
    let mut whole = Vec::new();
    for (_, path) in files {
        let cannot_read = || format!("cannot read {}", path.display());
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let size = file.metadata().with_context(cannot_read)?.len();
        let mut parser = file_parser(file, size, &mut whole, &ctx.settings.field_map, 64 * 1024)
            .with_context(cannot_read)?;
        loop {
            match parser.next_member() {
                Ok(Some(_)) => members += 1,
                Ok(None) => break,
                Err(e) => {
                    let (line, column) =
                        crate::export_xml::line_column(path, e.offset).unwrap_or((0, 0));
                    let err = ImportError::Malformed {
                        file: path.clone(),
                        line,
                        column,
                        message: e.message,
                    };
                    return Err(
                        anyhow::Error::new(err).context("dry run: the build would stop here")
                    );
                }
            }
        }
    }
    let summary = FullSummary {
        dry_run: true,
        source: "xml",
        files_applied: files.len() as u64,
        members,
        elapsed_seconds: started.elapsed().as_secs_f64(),
        mode: ctx.settings.mode.unwrap_or(DEFAULT_MODE).as_str(),
        ..FullSummary::default()
    };
    print_summary(ctx, &summary)?;
    Ok(ExitCode::Ok)
}

fn rate(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        (n as f64 / seconds).round()
    } else {
        0.0
    }
}

fn print_summary(ctx: &Ctx, s: &FullSummary) -> anyhow::Result<()> {
    if ctx.json {
        return print_json(s);
    }
    let mut lines = Vec::new();
    if s.dry_run {
        lines.push(format!(
            "full (dry run, nothing written): {} files, {} contacts would be built into a new replica",
            s.files_applied, s.members
        ));
        return print_lines(lines);
    }
    let source = if s.source == "api" {
        format!("{} contacts fetched from the API", s.members)
    } else {
        format!("{} files applied", s.files_applied)
    };
    lines.push(format!(
        "full: {source}{}, {} contacts in the new replica ({} mode){}",
        if s.files_already_applied > 0 {
            format!(
                " ({} already in the resumed build)",
                s.files_already_applied
            )
        } else {
            String::new()
        },
        s.contacts,
        s.mode,
        match &s.replica {
            Some(r) => format!(", now in service: {r}"),
            None => String::new(),
        }
    ));
    if let Some(r) = s.resolved.filter(|r| r.superseded + r.deleted > 0) {
        lines.push(format!(
            "resolved after loading: {} rows replaced by a later one of the same contact, {} \
             contacts deleted",
            r.superseded, r.deleted
        ));
    }
    if let Some(r) = &s.rekey {
        lines.push(r.line());
    }
    if let Some(m) = &s.merged_from_previous {
        lines.push(format!(
            "merged from the previous replica: {} newer, {} added (later contacts), {} deleted",
            m.updated, m.inserted, m.deleted
        ));
    }
    lines.push(format!(
        "{} contacts read in {:.2} s ({} contacts/s)",
        s.members, s.elapsed_seconds, s.contacts_per_second
    ));
    print_lines(lines)
}
