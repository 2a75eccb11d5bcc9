//! `engage-sync full --from-xml PATH...`: build a complete replica and swap it in (docs/contract.md
//! §2). The build's life is [`crate::full_build::FullBuild`]; this command picks the source,
//! takes the lock and prints the summary.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::engage_setup::engage_client;
use super::{print_json, print_lines, Ctx};
use crate::api_sync::parse_since_arg;
use crate::cli::FullArgs;
use crate::error::{ExitCode, UsageError};
use crate::full_build::{open_live, FillOptions, Filled, FullBuild, Source, Swapped, Unfinished};
use crate::import::{complete_export_set, count_members, ExportSet};
use crate::lock;
use crate::replica::bulk::BulkCounts;
use crate::replica::rekey::RekeyReport;
use crate::replica::{MergeCounts, RunLog, DEFAULT_MODE};
use crate::time::now_rfc3339;

#[derive(Debug, Default, Serialize)]
struct FullSummary {
    dry_run: bool,
    /// "xml" or "api" ([`Source::name`]).
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
    // An API build checks --since and Engage's settings before anything is created: without
    // them (the wrong folder or config) it leaves no lock file, build or replica behind.
    let source = match files {
        Some(set) if set.is_empty() => return Err(no_export_files(&args.from_xml)),
        Some(set) => Source::Xml(set),
        None => Source::Api {
            since: parse_since_arg(args.since.as_deref().unwrap_or("2000-01-01"))?,
            client: engage_client(ctx, deadline)?,
        },
    };
    let _lock = lock::acquire(&s.db, "full", args.write.wait)?;
    let unfinished = match args.restart {
        true => Unfinished::StartOver,
        false => Unfinished::Resume,
    };
    let mut build = FullBuild::open(s, &source, unfinished)?;
    let (resumed, mode, rekey) = (build.resumed(), build.mode(), build.take_rekey());
    let show_progress = !ctx.json && ctx.verbosity >= 0;
    let filled = build.fill(
        &source,
        s,
        &FillOptions {
            show_progress,
            deadline,
        },
    )?;
    let swapped = build.swap_in(s, &filled)?;
    let mut summary = FullSummary {
        resumed,
        source: source.name(),
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

impl FullSummary {
    /// Adds what the build did.
    fn add(&mut self, filled: Filled, swapped: Swapped, started: Instant) {
        self.files_applied = filled.files_applied;
        self.files_already_applied = filled.files_already_applied;
        self.members = filled.members;
        self.resolved = filled.resolved;
        self.merged_from_previous = swapped.merged_from_previous;
        self.contacts = swapped.contacts;
        self.replica = Some(swapped.generation.display().to_string());
        self.elapsed_seconds = started.elapsed().as_secs_f64();
        self.contacts_per_second = rate(self.members, self.elapsed_seconds);
    }
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
    let mut replica = open_live(&ctx.settings)?;
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
        source: "xml",
        files_applied: files.len() as u64,
        members: count_members(&files, &ctx.settings)?,
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
