//! `engage-sync full --from-xml PATH...`: build a complete replica and swap it in (docs/contract.md
//! §2). The build's life is [`crate::full_build::FullBuild`]; this command picks the source,
//! takes the lock and prints the summary.

mod summary;

use std::path::PathBuf;
use std::time::Instant;

use super::engage_setup::engage_client;
use super::Ctx;
use crate::api_sync::parse_since_arg;
use crate::cli::FullArgs;
use crate::error::{ExitCode, UsageError};
use crate::full_build::{open_live, FillOptions, FullBuild, Source, SourceKind, Unfinished};
use crate::import::{complete_export_set, count_members, ExportSet};
use crate::lock;
use crate::replica::{RunOutcome, DEFAULT_MODE};
use summary::{print_summary, FullSummary};

/// Builds, merges and swaps; prints the summary.
pub fn run(ctx: &Ctx, args: &FullArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let deadline = args.deadline.map(|d| started + d);
    let s = &ctx.settings;
    let files = match args.from_xml.is_empty() {
        true => None,
        false => Some(complete_export_set(&args.from_xml)?),
    };
    if args.write.dry_run {
        return dry_run(ctx, args, files, started);
    }
    crate::db_owner::check_before_lock(&s.db)?;
    let source = source(ctx, args, files, deadline)?;
    let _lock = lock::acquire(&s.db, "full", args.write.wait)?;
    let unfinished = match args.restart {
        true => Unfinished::StartOver,
        false => Unfinished::Resume,
    };
    let kind = source.kind();
    let mut build = FullBuild::open(s, source, unfinished)?;
    let (resumed, mode, rekey) = (build.resumed(), build.mode(), build.take_rekey());
    let show_progress = !ctx.json && ctx.verbosity >= 0;
    let opts = FillOptions {
        show_progress,
        deadline,
    };
    let filled = build.fill(s, &opts)?;
    let swapped = build.swap_in(s, &filled)?;
    let mut summary = FullSummary {
        resumed,
        source: kind,
        mode: mode.as_str(),
        rekey,
        ..FullSummary::default()
    };
    summary.add(filled, swapped, started);
    record_run(ctx, &summary)?;
    if ctx.prints_summary(true, false) {
        print_summary(ctx, &summary)?;
    }
    Ok(ExitCode::Ok)
}

/// The build's source: the export set given, or Engage's API without `--from-xml`. An API
/// build checks --since and Engage's settings before anything is created: without them (the
/// wrong folder or config) it leaves no lock file, build or replica behind.
fn source(
    ctx: &Ctx,
    args: &FullArgs,
    files: Option<ExportSet>,
    deadline: Option<Instant>,
) -> anyhow::Result<Source> {
    Ok(match files {
        Some(set) if set.is_empty() => return Err(no_export_files(&args.from_xml)),
        Some(set) => Source::Xml(set),
        None => Source::Api {
            since: parse_since_arg(args.since.as_deref().unwrap_or("2000-01-01"))?,
            client: engage_client(ctx, deadline)?,
        },
    })
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

/// Records the run in the new replica's log (the previous history was merged into it).
fn record_run(ctx: &Ctx, summary: &FullSummary) -> anyhow::Result<()> {
    let replica = open_live(&ctx.settings)?;
    let log = replica.start_run("full")?;
    let counts = serde_json::json!({
        "files_applied": summary.files_applied, "contacts": summary.contacts,
    });
    replica.finish_run(log, &RunOutcome::ok(), &counts)?;
    Ok(())
}

/// Parses every file (the real parser) and reports what a build would hold; writes nothing.
fn dry_run(
    ctx: &Ctx,
    args: &FullArgs,
    files: Option<ExportSet>,
    started: Instant,
) -> anyhow::Result<ExitCode> {
    let files = match files {
        Some(set) if set.is_empty() => return Err(no_export_files(&args.from_xml)),
        Some(set) => set,
        None => {
            return Err(UsageError(
                "full --dry-run checks an export file set; give --from-xml PATH (an API build \
                 has nothing to check without fetching every contact)"
                    .into(),
            )
            .into())
        }
    };
    let summary = FullSummary {
        dry_run: true,
        source: SourceKind::Xml,
        files_applied: files.len() as u64,
        members: count_members(&files, &ctx.settings)?,
        elapsed_seconds: started.elapsed().as_secs_f64(),
        mode: ctx.settings.mode.unwrap_or(DEFAULT_MODE).as_str(),
        ..FullSummary::default()
    };
    print_summary(ctx, &summary)?;
    Ok(ExitCode::Ok)
}
