//! `engage-sync delta`: import contact-export XML files (docs/contract.md §4), from the inbox or
//! the paths given, or fetched from Engage's SFTP server into the inbox first ([`crate::sftp`]).

mod import;
mod summary;

use std::time::Instant;

use super::Ctx;
use crate::cli::{DeltaArgs, DeltaSource};
use crate::config::Settings;
use crate::error::{ConfigError, ExitCode};
use crate::import::{collect_inputs, Inputs};
use crate::lock;
use crate::replica::folders::{self, FolderKind};
use crate::replica::Replica;
use crate::sftp::{self, FetchOptions, SftpSettings};
use crate::time::now_rfc3339;
use import::import_all;
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
        Some(replica.start_run("delta")?)
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
        let outcome = super::exit::run_outcome(&result);
        if let Err(e) = replica.finish_run(run_log, &outcome, &summary.run_counts()) {
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
