//! `engage-sync changes`: the bulk-read-changes pull (docs/contract.md §5).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::engage_setup::engage_client;
use super::{print_json, print_lines, Ctx};
use crate::api_sync::{fetch_and_apply, parse_since, Action, ApplyCounts, ApplyOptions, RowShape};
use crate::cli::ChangesArgs;
use crate::config::parse_duration_setting;
use crate::engage::{ChangeType, EngageClient};
use crate::error::{ConfigError, ExitCode, UsageError};
use crate::lock;
use crate::progress::ItemProgress;
use crate::replica::rekey::RekeyReport;
use crate::replica::{set_cursor, ContactWriter, Replica, RunLog};
use crate::time::now_rfc3339;

/// The cursor's name in `sync_cursor`.
pub const CURSOR: &str = "changes";
/// Meta key `full` sets: where the first `changes` starts.
pub const FULL_STARTED: &str = "full_started_at";
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
    let since = args
        .since
        .as_deref()
        .map(|v| {
            parse_since(v).ok_or_else(|| {
                UsageError(format!(
                    "--since {v:?} is not a date like 2026-11-01 or 2026-11-01T08:00:00Z"
                ))
            })
        })
        .transpose()?;
    crate::db_owner::check_before_lock(&s.db)?;
    let _lock = lock::acquire(&s.db, "changes", args.write.wait)?;
    let mut replica = ctx.open_writer()?;
    let client = engage_client(ctx, args.deadline.map(|d| started + d))?;
    let dry_run = args.write.dry_run;
    // Before the run is recorded, so that a failure here leaves no run open.
    let rekey = super::rekey(&mut replica, s, dry_run)?;
    let run_log = (!dry_run)
        .then(|| RunLog::start(replica.conn(), "changes", &now_rfc3339()))
        .transpose()?;
    let mut summary = ChangesSummary {
        dry_run,
        rekey,
        ..ChangesSummary::default()
    };
    let result = pull(ctx, &client, &mut replica, since, dry_run, &mut summary);
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    if let Some(log) = run_log {
        log.close(replica.conn(), &result, &summary.counts)?;
    }
    if ctx.prints_summary(result.is_ok(), dry_run) {
        print_summary(ctx, &summary)?;
    }
    result.map(|()| ExitCode::Ok)
}

/// Where this pull starts: --since, else the cursor minus the overlap, else where the last
/// `full` began.
fn window_start(
    ctx: &Ctx,
    replica: &Replica,
    since: Option<DateTime<Utc>>,
) -> anyhow::Result<DateTime<Utc>> {
    if let Some(since) = since {
        return Ok(since);
    }
    let overlap = match &ctx.settings.engage.changes_overlap {
        Some(v) => parse_duration_setting("[engage] changes_overlap", v)?,
        None => DEFAULT_OVERLAP,
    };
    let stored = match replica.cursor(CURSOR)? {
        Some(c) => Some(c),
        None => replica.meta(FULL_STARTED)?,
    };
    let stored = stored.ok_or_else(|| {
        ConfigError(
            "no changes cursor yet: run `engage-sync full` first, or pass --since DATE for the \
             first pull"
                .into(),
        )
    })?;
    let at = DateTime::parse_from_rfc3339(&stored)
        .with_context(|| format!("the stored changes cursor {stored:?} is not a time"))?
        .with_timezone(&Utc);
    Ok(at - chrono::Duration::from_std(overlap).unwrap_or_default())
}

fn pull(
    ctx: &Ctx,
    client: &EngageClient,
    replica: &mut Replica,
    since: Option<DateTime<Utc>>,
    dry_run: bool,
    summary: &mut ChangesSummary,
) -> anyhow::Result<()> {
    let from = window_start(ctx, replica, since)?;
    let to = Utc::now();
    summary.from = from.to_rfc3339_opts(SecondsFormat::Millis, true);
    summary.to = to.to_rfc3339_opts(SecondsFormat::Millis, true);
    let progress = ItemProgress::start("changes", !ctx.json && ctx.verbosity >= 0);
    progress.phase("listing changed contacts");
    let created = client.changes_all(ChangeType::Created, from, to)?;
    let updated = client.changes_all(ChangeType::Updated, from, to)?;
    let deleted = client.changes_all(ChangeType::Deleted, from, to)?;
    crate::failpoint::hit("changes.listed");
    summary.created_ids = created.len() as u64;
    summary.updated_ids = updated.len() as u64;
    summary.deleted_ids = deleted.len() as u64;
    let fetch: BTreeSet<String> = created.into_iter().chain(updated).collect();
    progress.set_total(fetch.len() as u64);
    progress.phase("fetching contacts");
    let shape = RowShape {
        mode: replica.mode(),
        country: ctx.settings.default_country,
    };
    let conn = replica.conn();
    let actions = dry_run.then_some(&mut summary.actions);
    // Applies the fetched contacts in short transactions of its own: never holds the write
    // lock while Engage is being waited for.
    let opts = ApplyOptions {
        shape,
        dry_run,
        from_build_queue: false,
        progress: Some(&progress),
    };
    let failed = fetch_and_apply(
        client,
        conn,
        fetch.iter().cloned(),
        &opts,
        &mut summary.counts,
        actions,
    )?;
    drop(progress);
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        // Deleted ids that were not fetched: tombstones. A fetched one was decided by its GET.
        let mut writer = ContactWriter::new(conn, now_rfc3339())?;
        for id in deleted.iter().filter(|id| !fetch.contains(*id)) {
            let outcome = writer.delete(id, Utc::now().timestamp_millis())?;
            summary.counts.add(outcome);
            if dry_run {
                summary.actions.push(Action {
                    contact_id: id.clone(),
                    action: outcome.as_str(),
                });
            }
        }
        drop(writer);
        match failed {
            // The cursor stays: the next run re-reads this window (versions make that safe).
            Some(e) => Err(anyhow::Error::new(e).context(format!(
                "{} contact(s) could not be fetched; the others were applied and the cursor \
                 stays at its old place, so the next run tries them again",
                summary.counts.failed
            ))),
            None => {
                set_cursor(conn, CURSOR, &summary.to)?;
                summary.cursor_advanced = !dry_run;
                Ok(())
            }
        }
    })();
    let end = if dry_run { "ROLLBACK" } else { "COMMIT" };
    if result.is_ok() && !dry_run {
        crate::failpoint::hit("changes.before_cursor_commit");
    }
    replica.conn().execute_batch(end)?;
    if result.is_ok() && !dry_run {
        crate::failpoint::hit("changes.after_cursor_commit");
    }
    result
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
