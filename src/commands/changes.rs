//! `engage-sync changes`: the bulk-read-changes pull (docs/contract.md §5; the work is
//! [`crate::api_sync::pull_changes`]).

use std::time::{Duration, Instant};

use serde::Serialize;

use super::engage_setup::engage_client;
use super::{print_json, print_lines, Ctx};
use crate::api_sync::{
    parse_since_arg, pull_changes, Action, ApplyCounts, PullOptions, Pulled, WindowStart,
};
use crate::cli::ChangesArgs;
use crate::config::parse_duration_setting;
use crate::error::ExitCode;
use crate::lock;
use crate::replica::rekey::RekeyReport;

const DEFAULT_OVERLAP: Duration = Duration::from_secs(300);

#[derive(Debug, Default, Serialize)]
struct ChangesSummary {
    dry_run: bool,
    from: String,
    to: String,
    created_ids: u64,
    updated_ids: u64,
    deleted_ids: u64,
    #[serde(flatten)]
    counts: ApplyCounts,
    cursor_advanced: bool,
    elapsed_seconds: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    actions: Vec<Action>,
    /// Stored keys re-normalised after an upgrade (once).
    #[serde(skip_serializing_if = "Option::is_none")]
    rekey: Option<RekeyReport>,
}

/// Pulls and applies; prints the summary.
pub fn run(ctx: &Ctx, args: &ChangesArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let s = &ctx.settings;
    let since = args.since.as_deref().map(parse_since_arg).transpose()?;
    crate::db_owner::check_before_lock(&s.db)?;
    let _lock = lock::acquire(&s.db, "changes", args.write.wait)?;
    let mut replica = ctx.open_writer()?;
    let client = engage_client(ctx, args.deadline.map(|d| started + d))?;
    let dry_run = args.write.dry_run;
    // Before the run is recorded, so that a failure here leaves no run open.
    let rekey = super::rekey(&mut replica, s, dry_run)?;
    let run_log = (!dry_run)
        .then(|| replica.start_run("changes"))
        .transpose()?;
    let mut pulled = Pulled::default();
    let result = window_start(ctx, since).and_then(|start| {
        let opts = PullOptions {
            start,
            dry_run,
            show_progress: !ctx.json && ctx.verbosity >= 0,
            country: s.default_country,
        };
        pull_changes(&client, &mut replica, &opts, &mut pulled)
    });
    let summary = ChangesSummary::new(dry_run, pulled, started, rekey);
    if let Some(log) = run_log {
        replica.finish_run(log, &super::exit::run_outcome(&result), &summary.counts)?;
    }
    if ctx.prints_summary(result.is_ok(), dry_run) {
        print_summary(ctx, &summary)?;
    }
    result.map(|()| ExitCode::Ok)
}

/// Where the window starts: --since, else the stored cursor minus the overlap.
fn window_start(
    ctx: &Ctx,
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<WindowStart> {
    if let Some(since) = since {
        return Ok(WindowStart::Since(since));
    }
    let overlap = match &ctx.settings.engage.changes_overlap {
        Some(v) => parse_duration_setting("[engage] changes_overlap", v)?,
        None => DEFAULT_OVERLAP,
    };
    Ok(WindowStart::Cursor { overlap })
}

impl ChangesSummary {
    fn new(dry_run: bool, p: Pulled, started: Instant, rekey: Option<RekeyReport>) -> Self {
        ChangesSummary {
            dry_run,
            from: p.from,
            to: p.to,
            created_ids: p.created_ids,
            updated_ids: p.updated_ids,
            deleted_ids: p.deleted_ids,
            counts: p.counts,
            cursor_advanced: p.cursor_advanced,
            elapsed_seconds: started.elapsed().as_secs_f64(),
            actions: p.actions,
            rekey,
        }
    }
}

fn print_summary(ctx: &Ctx, s: &ChangesSummary) -> anyhow::Result<()> {
    if ctx.json {
        return print_json(s);
    }
    let mut lines: Vec<String> = s
        .actions
        .iter()
        .map(|a| format!("  would {} {}", a.action, a.contact_id))
        .collect();
    let prefix = if s.dry_run {
        "changes (dry run, nothing written)"
    } else {
        "changes"
    };
    lines.push(format!(
        "{prefix}: window {} .. {}: {} created, {} updated, {} deleted ids",
        s.from, s.to, s.created_ids, s.updated_ids, s.deleted_ids
    ));
    let c = &s.counts;
    lines.push(format!(
        "contacts: {} fetched, {} new, {} updated, {} deleted, {} stale, {} failed; cursor {} ({:.2} s)",
        c.fetched,
        c.inserted,
        c.updated,
        c.deleted,
        c.stale,
        c.failed,
        if s.cursor_advanced { "advanced" } else { "unchanged" },
        s.elapsed_seconds
    ));
    if let Some(r) = &s.rekey {
        lines.push(r.line());
    }
    if c.phones_as_sent > 0 {
        lines.push(format!(
            "mobile numbers kept as Engage sent them (not readable as phone numbers): {}",
            c.phones_as_sent
        ));
    }
    print_lines(lines)
}
