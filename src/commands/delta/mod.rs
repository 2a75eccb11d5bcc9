//! `engage-sync delta`: import contact-export XML files (docs/contract.md §4), from the inbox or
//! the paths given, or fetched from Engage's SFTP server into the inbox first ([`crate::sftp`]).

mod summary;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use super::Ctx;
use crate::cli::{DeltaArgs, DeltaSource};
use crate::config::Settings;
use crate::error::{exit_code_for, ConfigError, ExitCode, PartialFailure};
use crate::export_xml::ImportError;
use crate::import::{
    apply_export_set, collect_inputs, gap_warnings, refuse_file, split_names, FileReport, Flow,
    ImportOptions, Importer, Inputs, Loader, Refusal, SetEnd, SetObserver, SetOptions,
};
use crate::lock;
use crate::replica::folders::{self, FolderKind};
use crate::replica::{Replica, RunLog};
use crate::sftp::{self, FetchOptions, SftpSettings};
use crate::time::now_rfc3339;
use summary::{print_summary, DeltaSummary};

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
    summary.set_elapsed(started);
    if let Some(run_log) = run_log {
        if let Err(e) = run_log.close(replica.conn(), &result, &summary.run_counts()) {
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
/// folder is recorded when a file is first moved there (`import::refuse_file`).
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
    let (s, dry_run) = (&ctx.settings, args.write.dry_run);
    let total = inputs.files.len() + inputs.not_utf8.len();
    let not_utf8 = summary.refuse_not_utf8(&inputs.not_utf8);
    summary.skip_young(&inputs.young, s.inbox_min_age);
    let (set, bad_names) = split_names(inputs.files);
    let mut import = DeltaImport::new(ctx, args, summary);
    for err in bad_names {
        let path = match &err {
            ImportError::BadName { file, .. } => file.clone(),
            _ => continue,
        };
        let error = import.refuse(replica, &path, err.into())?;
        if !args.keep_going {
            import.summary.files_not_tried = set.len() as u64;
            return Err(error);
        }
        import.first_failure.get_or_insert(error);
    }
    let importer = Importer::new(ImportOptions {
        dry_run,
        archive: s.archive.clone(),
    });
    let opts = SetOptions {
        label: "delta",
        show_progress: !ctx.json && ctx.verbosity >= 0 && !dry_run,
        settings: s,
        deadline: None,
    };
    let end = apply_export_set(replica, Loader::Sorted(importer), &set, &opts, &mut import)?;
    let DeltaImport {
        touched,
        first_failure,
        ..
    } = import;
    if let SetEnd::Finished {
        not_tried,
        resolved,
    } = end
    {
        summary.files_not_tried = not_tried as u64;
        // A first import counts a contact loaded again as new until its load is resolved.
        let superseded = resolved.superseded.min(summary.inserted);
        summary.inserted -= superseded;
        summary.updated += superseded;
    }
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

/// `delta`'s side of the export-set pipeline: the summary, the quarantine and the export
/// timestamps and file numbers seen (for the gap check).
struct DeltaImport<'a> {
    ctx: &'a Ctx,
    args: &'a DeltaArgs,
    summary: &'a mut DeltaSummary,
    touched: BTreeMap<String, BTreeSet<u32>>,
    /// The first refused file's error: it decides the exit code.
    first_failure: Option<anyhow::Error>,
}

impl<'a> DeltaImport<'a> {
    fn new(ctx: &'a Ctx, args: &'a DeltaArgs, summary: &'a mut DeltaSummary) -> Self {
        DeltaImport {
            ctx,
            args,
            summary,
            touched: BTreeMap::new(),
            first_failure: None,
        }
    }

    /// Refuses a bad file (quarantined, not in a dry run) and lists it in the summary; returns
    /// the error that decides the exit code.
    fn refuse(
        &mut self,
        replica: &mut Replica,
        path: &Path,
        err: anyhow::Error,
    ) -> anyhow::Result<anyhow::Error> {
        let refusal = match self.args.write.dry_run {
            true => Refusal::DryRun,
            false => Refusal::MoveTo(&self.ctx.settings.quarantine),
        };
        let (failure, error) = refuse_file(replica, path, err, refusal)?;
        if self.args.keep_going {
            tracing::error!("{error:#}");
        }
        self.summary.failures.push(failure);
        self.summary.files_failed += 1;
        Ok(error)
    }
}

impl SetObserver for DeltaImport<'_> {
    fn committed(&mut self, reports: Vec<FileReport>) {
        for report in reports {
            self.touched
                .entry(report.ledger.export_timestamp.clone())
                .or_default()
                .insert(report.ledger.file_number);
            self.summary.add_report(report);
        }
    }

    fn warnings(&mut self, warnings: Vec<String>) {
        self.summary.add_file_warnings(warnings);
    }

    fn refused(
        &mut self,
        replica: &mut Replica,
        path: &Path,
        error: anyhow::Error,
    ) -> anyhow::Result<Flow> {
        let error = self.refuse(replica, path, error)?;
        self.first_failure.get_or_insert(error);
        Ok(if self.args.keep_going {
            Flow::Continue
        } else {
            Flow::Stop
        })
    }

    fn failed(&mut self, path: &Path, not_tried: usize, error: anyhow::Error) -> anyhow::Error {
        self.summary.files_not_tried = not_tried as u64;
        error.context(format!(
            "cannot apply {} to the replica {}",
            path.display(),
            self.ctx.settings.db.display()
        ))
    }
}
