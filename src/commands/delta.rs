//! `engage-sync delta`: import contact-export XML files (docs/contract.md §4), from the inbox or
//! the paths given, or fetched from Engage's SFTP server into the inbox first ([`crate::sftp`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use super::{print_json, print_lines, Ctx};
use crate::cli::{DeltaArgs, DeltaSource};
use crate::config::Settings;
use crate::error::{exit_code_for, ConfigError, ExitCode, PartialFailure, UsageError};
use crate::export_xml::{ExportFileName, ImportError};
use crate::fsutil::{free_path_in, move_to};
use crate::import::{FileReport, FileStatus, ImportOptions, Importer};
use crate::lock;
use crate::progress::Progress;
use crate::replica::folders::{self, FolderKind};
use crate::replica::rekey::RekeyReport;
use crate::replica::{ledger, Replica, RunLog};
use crate::sftp::{self, FetchOptions, SftpReport, SftpSettings};
use crate::time::now_rfc3339;

/// The run's result, printed as the summary (and as JSON with `--json`).
#[derive(Debug, Default, Serialize)]
struct DeltaSummary {
    dry_run: bool,
    files_applied: u64,
    files_already_applied: u64,
    files_failed: u64,
    files_not_tried: u64,
    members: u64,
    inserted: u64,
    updated: u64,
    deleted: u64,
    stale: u64,
    /// Mobile numbers kept as Engage sent them (not readable as phone numbers).
    phones_as_sent: u64,
    /// Stored keys re-normalised after an upgrade (once).
    #[serde(skip_serializing_if = "Option::is_none")]
    rekey: Option<RekeyReport>,
    elapsed_seconds: f64,
    contacts_per_second: f64,
    warnings: Vec<String>,
    /// Of the warnings, files applied but not archived: recorded with the run, so that
    /// `status` shows them and `status --check` fails on them.
    #[serde(skip)]
    file_warnings: Vec<String>,
    failures: Vec<Failure>,
    /// Files left in the inbox for a later run: changed less than `inbox_min_age` ago.
    files_skipped: Vec<String>,
    files: Vec<FileReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sftp: Option<SftpReport>,
}

#[derive(Debug, Serialize)]
struct Failure {
    file: String,
    error: String,
    quarantined_to: Option<String>,
}

/// An input file: its path and, if the name is valid, the parsed name.
pub(super) struct Input {
    pub(super) path: PathBuf,
    pub(super) name: Result<ExportFileName, String>,
}

/// Imports the files and prints the summary.
pub fn run(ctx: &Ctx, args: &DeltaArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let s = &ctx.settings;
    let source = sftp_source(s, args)?;
    let inputs = match source {
        Some(_) => Inputs::default(),
        None => collect_inputs(&args.paths, &s.inbox, Some(s.inbox_min_age))?,
    };
    crate::db_owner::check_before_lock(&s.db)?;
    let _lock = lock::acquire(&s.db, "delta", args.write.wait)?;
    let mut replica = ctx.open_writer()?;
    // Before the run is recorded, so that a failure here leaves no run open.
    let rekey = super::rekey(&mut replica, s, args.write.dry_run)?;
    let run_log = if args.write.dry_run {
        None
    } else {
        record_folders(s, &replica, source.is_some() || args.paths.is_empty())?;
        Some(RunLog::start(replica.conn(), "delta", &now_rfc3339())?)
    };
    let mut summary = DeltaSummary {
        dry_run: args.write.dry_run,
        rekey,
        ..DeltaSummary::default()
    };
    let result = match source {
        Some(cfg) => fetch_and_import(ctx, args, cfg, started, &mut replica, &mut summary),
        None => import_all(ctx, args, &mut replica, inputs, &mut summary),
    };
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    summary.contacts_per_second = if summary.elapsed_seconds > 0.0 {
        (summary.members as f64 / summary.elapsed_seconds).round()
    } else {
        0.0
    };
    if let Some(run_log) = run_log {
        let mut counts = serde_json::json!({
            "files_applied": summary.files_applied, "files_failed": summary.files_failed,
            "inserted": summary.inserted, "updated": summary.updated,
            "deleted": summary.deleted, "stale": summary.stale,
            "files_downloaded": summary.sftp.as_ref().map(|r| r.files_downloaded),
        });
        if !summary.file_warnings.is_empty() {
            counts[crate::replica::status::WARNINGS] = summary.file_warnings.clone().into();
        }
        if let Err(e) = run_log.close(replica.conn(), &result, &counts) {
            // On a full disk the record may fail too: the run's own error is the one to show.
            match &result {
                Err(_) => tracing::error!("cannot record this run in the replica: {e:#}"),
                Ok(()) => return Err(e),
            }
        }
    }
    if ctx.prints_summary(result.is_ok(), summary.dry_run) {
        print_summary(ctx, &summary)?;
    }
    result.map(|()| ExitCode::Ok)
}

/// Records the archive folder (if any) and the inbox (when this run reads or fills it) before
/// any file goes there, so that purge covers them whatever its own flags. The quarantine
/// folder is recorded when a file is first moved there ([`fail_file`]).
fn record_folders(s: &Settings, replica: &Replica, uses_inbox: bool) -> anyhow::Result<()> {
    let now = now_rfc3339();
    if let Some(archive) = &s.archive {
        folders::record(replica.conn_ref(), archive, FolderKind::Archive, &now)?;
    }
    if uses_inbox {
        folders::record(replica.conn_ref(), &s.inbox, FolderKind::Inbox, &now)?;
    }
    Ok(())
}

/// SFTP when `--from sftp`, or when `[sftp]` is configured and neither `--from local` nor
/// paths were given.
fn sftp_source<'a>(s: &'a Settings, args: &DeltaArgs) -> anyhow::Result<Option<&'a SftpSettings>> {
    match (args.from, &s.sftp) {
        (Some(DeltaSource::Local), _) => Ok(None),
        (Some(DeltaSource::Sftp), Some(cfg)) => Ok(Some(cfg)),
        (Some(DeltaSource::Sftp), None) => Err(ConfigError(
            "--from sftp needs an [sftp] section with host, user and credentials in the config \
             file; see engage-sync.toml.example"
                .into(),
        )
        .into()),
        (None, Some(cfg)) if args.paths.is_empty() => Ok(Some(cfg)),
        (None, _) => Ok(None),
    }
}

/// `delta` from SFTP: new files are downloaded into the inbox, the inbox is imported as
/// usual, then the files now applied are removed from the server (if configured). When the
/// fetch stops early (server gone, deadline), the complete files are still imported. The exit
/// code is a refused file's first, then the fetch's failure, then the clean-up's.
fn fetch_and_import(
    ctx: &Ctx,
    args: &DeltaArgs,
    cfg: &SftpSettings,
    started: Instant,
    replica: &mut Replica,
    summary: &mut DeltaSummary,
) -> anyhow::Result<()> {
    let s = &ctx.settings;
    let dry_run = args.write.dry_run;
    let opts = FetchOptions {
        dry_run,
        deadline: args.deadline.map(|d| started + d),
        trust_host_key: args.trust_host_key.clone(),
        show_progress: !ctx.json && ctx.verbosity >= 0 && !dry_run,
    };
    let mut fetched = sftp::fetch(cfg, &s.inbox, replica.conn(), &opts);
    // The inbox is created by the fetch; it may be missing if the fetch failed first.
    let inputs = if s.inbox.exists() {
        // Downloads are renamed into the inbox complete: no minimum age.
        collect_inputs(&[], &s.inbox, None)?
    } else {
        Inputs::default()
    };
    let imported = import_all(ctx, args, replica, inputs, summary);
    let cleaned = fetched.after_import(replica.conn());
    fetched.close();
    summary.sftp = Some(std::mem::take(&mut fetched.report));
    match (imported, fetched.error.take(), cleaned) {
        (Err(e), fetch_error, _) => {
            if let Some(f) = fetch_error {
                tracing::error!("{f:#}");
            }
            Err(e)
        }
        (Ok(()), Some(f), _) => Err(f),
        (Ok(()), None, cleaned) => cleaned,
    }
}

/// Applies the inputs in order; stops at the first bad file unless `--keep-going`.
fn import_all(
    ctx: &Ctx,
    args: &DeltaArgs,
    replica: &mut Replica,
    inputs: Inputs,
    summary: &mut DeltaSummary,
) -> anyhow::Result<()> {
    let s = &ctx.settings;
    let dry_run = args.write.dry_run;
    let total = inputs.files.len() + inputs.not_utf8.len();
    let not_utf8 = refuse_not_utf8(&inputs.not_utf8, summary);
    skip_young(&inputs.young, s.inbox_min_age, summary);
    let (mut bad_names, mut files): (Vec<_>, Vec<_>) = (Vec::new(), Vec::new());
    for input in inputs.files {
        match input.name {
            Ok(name) => files.push((name, input.path)),
            Err(reason) => bad_names.push(ImportError::BadName {
                file: input.path,
                reason,
            }),
        }
    }
    files.sort_by(|a, b| a.0.order_key().cmp(&b.0.order_key()));
    let total_bytes = files
        .iter()
        .filter_map(|(_, p)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let progress = Progress::new(
        "delta",
        total_bytes,
        !ctx.json && ctx.verbosity >= 0 && !dry_run,
    );
    let mut first_failure: Option<anyhow::Error> = None;
    let mut touched: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    // Half the busy timeout: a till write that starts waiting just as a transaction begins
    // still gets the lock in time, with the other half for the file in progress and the commit.
    let mut importer = Importer::new(ImportOptions {
        dry_run,
        archive: s.archive.clone(),
    });
    let paths = files.iter().map(|(_, p)| p.clone()).collect();
    importer.parse_ahead(replica, paths, s)?;

    for err in bad_names {
        let ImportError::BadName { file, .. } = &err else {
            continue;
        };
        let path = file.clone();
        let (failure, error) =
            fail_file(ctx, replica, &path, err.into(), dry_run, args.keep_going)?;
        summary.failures.push(failure);
        summary.files_failed += 1;
        if !args.keep_going {
            summary.files_not_tried = files.len() as u64;
            return Err(error);
        }
        first_failure.get_or_insert(error);
    }
    for (i, (name, path)) in files.iter().enumerate() {
        let result = importer.apply(replica, name, path, s, &progress);
        take_reports(&mut importer, summary, &mut touched);
        match result {
            Ok(()) => {}
            Err(e) if e.downcast_ref::<ImportError>().is_some() => {
                let (failure, error) = fail_file(ctx, replica, path, e, dry_run, args.keep_going)?;
                summary.failures.push(failure);
                summary.files_failed += 1;
                first_failure.get_or_insert(error);
                if !args.keep_going {
                    summary.files_not_tried = (files.len() - i - 1) as u64;
                    break;
                }
            }
            Err(e) => {
                summary.files_not_tried = (files.len() - i - 1) as u64;
                progress.finish();
                take_warnings(&mut importer, summary);
                return Err(e.context(format!(
                    "cannot apply {} to the replica {}",
                    path.display(),
                    replica.path().display()
                )));
            }
        }
    }
    importer.finish(replica)?;
    take_reports(&mut importer, summary, &mut touched);
    take_warnings(&mut importer, summary);
    // A first import counts a contact loaded again as new until its load is resolved.
    let resolved = importer.resolved();
    let superseded = resolved.superseded.min(summary.inserted);
    summary.inserted -= superseded;
    summary.updated += superseded;
    progress.finish();
    for warning in gap_warnings(replica, &touched)? {
        tracing::warn!("{warning}");
        summary.warnings.push(warning);
    }
    match first_failure {
        None => not_utf8.map_or(Ok(()), Err),
        Some(e) if !args.keep_going => Err(e),
        Some(e) => Err(PartialFailure {
            failed: summary.files_failed as usize,
            total,
            what: "files",
            code: exit_code_for(&e),
        }
        .into()),
    }
}

/// Files whose names are not UTF-8: each a failure in the summary, left where it is; the
/// error for the exit code (65) if there are any.
fn refuse_not_utf8(paths: &[PathBuf], summary: &mut DeltaSummary) -> Option<anyhow::Error> {
    for path in paths {
        let error = "the file name is not UTF-8; left where it is: rename it".to_string();
        tracing::error!("{}: {error}", escaped(path));
        summary.failures.push(Failure {
            file: escaped(path),
            error,
            quarantined_to: None,
        });
        summary.files_failed += 1;
    }
    let first = paths.first()?;
    Some(
        NotUtf8Names {
            count: paths.len(),
            first: escaped(first),
        }
        .into(),
    )
}

/// Files changed less than `inbox_min_age` ago: skipped, reported, taken by a later run.
fn skip_young(young: &[(PathBuf, Duration)], min_age: Duration, summary: &mut DeltaSummary) {
    for (path, age) in young {
        tracing::info!(
            "skipped {} for now: changed {} ago, less than inbox_min_age ({}); it may still \
             be being written, a later run takes it",
            path.display(),
            humantime::format_duration(Duration::from_secs(age.as_secs())),
            humantime::format_duration(min_age)
        );
        summary.files_skipped.push(path.display().to_string());
    }
}

/// Quarantines a bad file (not in a dry run), records it, and returns the failure for the
/// summary plus the error that decides the exit code.
fn fail_file(
    ctx: &Ctx,
    replica: &mut Replica,
    path: &Path,
    err: anyhow::Error,
    dry_run: bool,
    keep_going: bool,
) -> anyhow::Result<(Failure, anyhow::Error)> {
    let reason = format!("{err:#}");
    let moved_to = if dry_run {
        None
    } else {
        let cannot_move = || format!("{reason}; and the file could not be moved to quarantine");
        let target = free_path_in(path, &ctx.settings.quarantine).with_context(cannot_move)?;
        let (quarantine, now) = (&ctx.settings.quarantine, now_rfc3339());
        folders::record(replica.conn(), quarantine, FolderKind::Quarantine, &now)?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        // Recorded before the move: a crash between the two leaves the file in the inbox, to be
        // refused (and recorded) again by the next run, never in quarantine without a record.
        ledger::insert_quarantined(
            replica.conn(),
            &name,
            Some(&target.display().to_string()),
            &reason,
            &now_rfc3339(),
        )?;
        crate::failpoint::hit("delta.quarantined");
        move_to(path, &target).with_context(cannot_move)?;
        Some(target)
    };
    let what = match &moved_to {
        Some(t) => format!(
            "nothing of it was applied; it was moved to {} (fix or re-export it, then put it \
             back in the inbox)",
            t.display()
        ),
        None => "nothing of it would be applied (dry run: not moved)".to_string(),
    };
    let err = err.context(format!("{} was refused; {what}", path.display()));
    if keep_going {
        tracing::error!("{err:#}");
    }
    Ok((
        Failure {
            file: path.display().to_string(),
            error: reason,
            quarantined_to: moved_to.map(|t| t.display().to_string()),
        },
        err,
    ))
}

/// Adds the importer's warnings (files applied but not archived) to the summary.
fn take_warnings(importer: &mut Importer, summary: &mut DeltaSummary) {
    let warnings = importer.take_warnings();
    summary.file_warnings.extend(warnings.iter().cloned());
    summary.warnings.extend(warnings);
}

/// Adds the reports of the files committed so far to the summary, and notes their export
/// timestamps and file numbers for the gap check.
fn take_reports(
    importer: &mut Importer,
    summary: &mut DeltaSummary,
    touched: &mut BTreeMap<String, BTreeSet<u32>>,
) {
    for report in importer.take_reports() {
        touched
            .entry(report.ledger.export_timestamp.clone())
            .or_default()
            .insert(report.ledger.file_number);
        add_report(summary, &report);
        summary.files.push(report);
    }
}

fn add_report(summary: &mut DeltaSummary, report: &FileReport) {
    match report.status {
        FileStatus::Applied => summary.files_applied += 1,
        FileStatus::AlreadyApplied => summary.files_already_applied += 1,
    }
    let l = &report.ledger;
    summary.members += l.members;
    summary.inserted += l.inserted;
    summary.updated += l.updated;
    summary.deleted += l.deleted;
    summary.stale += l.stale;
    summary.phones_as_sent += l.phones_as_sent;
}

/// What is in the inbox (or the paths given): the export files to import, and those left for
/// later or refused before they are read.
#[derive(Default)]
pub(super) struct Inputs {
    /// Files to import.
    pub(super) files: Vec<Input>,
    /// Files found in a folder that were changed less than the minimum age ago (still being
    /// written, perhaps), with their age: left for the next run.
    pub(super) young: Vec<(PathBuf, Duration)>,
    /// Files whose names are not UTF-8: left where they are (a name must be stored exactly in
    /// the ledger, and two such names could read the same).
    pub(super) not_utf8: Vec<PathBuf>,
}

/// The inputs: the export files in `paths` (files, or folders whose `*.xml` files are taken),
/// or in the inbox when none are given. Files listed from a folder that changed less than
/// `min_age` ago are left for later; a file named explicitly is taken as it is.
pub(super) fn collect_inputs(
    paths: &[PathBuf],
    inbox: &Path,
    min_age: Option<Duration>,
) -> anyhow::Result<Inputs> {
    let default = [inbox.to_path_buf()];
    let (paths, from_config) = if paths.is_empty() {
        (&default[..], true)
    } else {
        (paths, false)
    };
    let mut files = BTreeSet::new();
    let mut inputs = Inputs::default();
    for path in paths {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if from_config && e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError(format!(
                    "the inbox folder {} does not exist; create it, set `inbox` in the config \
                     file, or pass files to import",
                    path.display()
                ))
                .into())
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("cannot read {}", path.display())))
            }
        };
        if meta.is_dir() {
            for entry in std::fs::read_dir(path)
                .with_context(|| format!("cannot list the folder {}", path.display()))?
            {
                let entry = entry.with_context(|| format!("cannot list {}", path.display()))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let is_xml = name.to_ascii_lowercase().ends_with(".xml");
                if !is_xml || name.starts_with('.') {
                    continue;
                }
                if !entry.file_type()?.is_file() {
                    // A link's target would stay behind when the link is archived, and a FIFO
                    // would block the import: say so instead of passing over it in silence.
                    tracing::warn!(
                        "skipped {}: not a regular file (a symbolic link, folder, FIFO, device \
                         or socket); put the export file itself into the folder",
                        entry.path().display()
                    );
                } else if entry.file_name().to_str().is_none() {
                    inputs.not_utf8.push(entry.path());
                } else if let Some(age) = too_young(&entry.path(), min_age) {
                    inputs.young.push((entry.path(), age));
                } else {
                    files.insert(entry.path());
                }
            }
        } else if meta.is_file() {
            if path.file_name().is_some_and(|n| n.to_str().is_none()) {
                inputs.not_utf8.push(path.clone());
            } else {
                files.insert(path.clone());
            }
        } else {
            // A FIFO would block the import forever, a device never ends.
            return Err(UsageError(format!(
                "{} is neither a regular file nor a folder (a FIFO, device or socket); pass \
                 export files or folders",
                path.display()
            ))
            .into());
        }
    }
    inputs.files = files
        .into_iter()
        .map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Input {
                name: ExportFileName::parse(&name),
                path,
            }
        })
        .collect();
    Ok(inputs)
}

/// The file's age, if it was changed less than `min_age` ago (or its time is in the future).
fn too_young(path: &Path, min_age: Option<Duration>) -> Option<Duration> {
    let min_age = min_age.filter(|a| !a.is_zero())?;
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    let age = std::time::SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default();
    (age < min_age).then_some(age)
}

/// Export files whose names are not UTF-8 (exit 65): left where they are.
#[derive(Debug, thiserror::Error)]
#[error(
    "{count} file(s) not imported because their names are not UTF-8 (the first: {first}); \
     they were left where they are. Rename them (export file names are ASCII: \
     YYYYMMDDHHmmss_N_name.xml) and run again"
)]
pub struct NotUtf8Names {
    /// How many.
    pub count: usize,
    /// The first, escaped.
    pub first: String,
}

impl crate::error::Coded for NotUtf8Names {
    fn exit_code(&self) -> ExitCode {
        ExitCode::DataErr
    }
}

/// A path whose name is not UTF-8, with its bytes escaped (`caf\xE9.xml`).
pub(super) fn escaped(path: &Path) -> String {
    let quoted = format!("{:?}", path.as_os_str());
    quoted.trim_matches('"').to_string()
}

/// For each export timestamp touched, file numbers missing below the highest one seen: a
/// missing file on the SFTP side (or one still to come).
fn gap_warnings(
    replica: &mut Replica,
    touched: &BTreeMap<String, BTreeSet<u32>>,
) -> anyhow::Result<Vec<String>> {
    let mut warnings = Vec::new();
    for (timestamp, numbers) in touched {
        let mut all: BTreeSet<u32> = ledger::file_numbers(replica.conn(), timestamp)?
            .into_iter()
            .collect();
        all.extend(numbers);
        let max = all.iter().next_back().copied().unwrap_or(0);
        let missing: Vec<String> = (0..=max)
            .filter(|n| !all.contains(n))
            .map(|n| n.to_string())
            .collect();
        if !missing.is_empty() {
            warnings.push(format!(
                "export {timestamp}: file number(s) {} missing (have up to {max}); a file may be \
                 missing on the SFTP side",
                missing.join(", ")
            ));
        }
    }
    Ok(warnings)
}

fn print_summary(ctx: &Ctx, s: &DeltaSummary) -> anyhow::Result<()> {
    if ctx.json {
        return print_json(s);
    }
    let mut lines = Vec::new();
    if s.dry_run {
        for f in &s.files {
            lines.push(format!("{}: {:?}", f.ledger.name, f.status));
            for a in &f.actions {
                lines.push(format!("  would {} {}", a.action, a.contact_id));
            }
        }
    }
    if let Some(r) = &s.sftp {
        sftp_lines(r, s.dry_run, &mut lines);
    }
    let prefix = if s.dry_run {
        "delta (dry run, nothing written)"
    } else {
        "delta"
    };
    lines.push(format!(
        "{prefix}: {} files applied, {} already applied, {} refused{}",
        s.files_applied,
        s.files_already_applied,
        s.files_failed,
        if s.files_not_tried > 0 {
            format!(", {} not tried", s.files_not_tried)
        } else {
            String::new()
        }
    ));
    if !s.files_skipped.is_empty() {
        lines.push(format!(
            "skipped for now: {} file(s) changed within inbox_min_age (still being written?), \
             taken by a later run",
            s.files_skipped.len()
        ));
    }
    lines.push(format!(
        "contacts: {} new, {} updated, {} deleted, {} stale skipped ({} in {:.2} s, {} contacts/s)",
        s.inserted,
        s.updated,
        s.deleted,
        s.stale,
        s.members,
        s.elapsed_seconds,
        s.contacts_per_second
    ));
    if let Some(r) = &s.rekey {
        lines.push(r.line());
    }
    if s.phones_as_sent > 0 {
        lines.push(format!(
            "mobile numbers kept as Engage sent them (not readable as phone numbers): {}",
            s.phones_as_sent
        ));
    }
    print_lines(lines)
}

/// The SFTP part of the summary: per file in a dry run (what would be downloaded, in import
/// order), then one line of counts.
fn sftp_lines(r: &SftpReport, dry_run: bool, lines: &mut Vec<String>) {
    if dry_run {
        for f in &r.files {
            let after = f
                .after_import
                .as_deref()
                .map(|a| format!("; {a}"))
                .unwrap_or_default();
            lines.push(format!(
                "sftp {} ({} bytes): {}{after}",
                f.name, f.size, f.action
            ));
        }
    }
    lines.push(format!(
        "sftp {} {}: {} files listed, {} downloaded ({} bytes), {} removed from the server",
        r.server,
        r.remote_dir,
        r.files_listed,
        r.files_downloaded,
        r.bytes_downloaded,
        r.files_removed
    ));
}
