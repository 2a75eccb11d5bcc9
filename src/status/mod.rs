//! `engage-sync status [--check --max-age 2h]`: freshness for the till and for monitoring.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{print_json, print_lines, Ctx};
use crate::cli::StatusArgs;
use crate::error::ExitCode;
use crate::outbox::store::OutboxStatus;
use crate::replica::ledger::FileLedgerRow;
use crate::replica::status::{self, QuarantineRow, RunRow};
use crate::replica::Replica;

/// Commands whose success makes the replica fresh.
const SYNC_COMMANDS: &[&str] = &["delta", "changes", "full"];

#[derive(Debug, Serialize)]
struct StatusReport {
    db: String,
    /// The till store beside the replica (what the till writes: outboxes, local contacts).
    till_store: String,
    mode: &'static str,
    /// Contacts readers see: the replica's and those registered at the till that Engage
    /// does not know yet.
    contacts: i64,
    /// Of those, registered at the till and not yet known to Engage.
    local_contacts: i64,
    /// Contacts whose till row readers see instead of the replica's (registered or changed at
    /// the till, not yet overtaken by Engage's data).
    till_rows: i64,
    tombstones: i64,
    applied_files: i64,
    /// The newest successful sync (delta, changes, full), if any.
    last_sync: Option<RunRow>,
    /// Seconds since `last_sync` finished.
    last_sync_age_seconds: Option<i64>,
    /// The newest run of each command and outcome.
    runs: Vec<RunRow>,
    /// The newest failure of any command.
    last_failure: Option<RunRow>,
    /// Warnings the newest run of each command recorded (a file applied but not archived):
    /// they need a person, and fail `--check`.
    run_warnings: Vec<RunWarning>,
    /// Runs that started and never finished: crashed, killed, or running now.
    unfinished_runs: Vec<UnfinishedRun>,
    recent_files: Vec<RecentFile>,
    gaps: Vec<Gap>,
    /// On a store: a hub's delta publications it never applied (purged on the hub before it
    /// fetched them); it must re-sync from a snapshot (README "`publish`").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    missed_publications: Vec<crate::publish::gaps::MissedPublications>,
    quarantined: Vec<QuarantineRow>,
    /// Outbox depth per kind and state, the oldest undelivered item, rejected/dropped items.
    outbox: OutboxStatus,
    /// A `full` build on disk: running now, or left behind by one that stopped (a whole copy
    /// of the personal data; the next `full` resumes it, purge removes it once old).
    #[serde(skip_serializing_if = "Option::is_none")]
    full_build: Option<FullBuild>,
    #[serde(skip_serializing_if = "Option::is_none")]
    check: Option<Check>,
}

#[derive(Debug, Serialize)]
struct FullBuild {
    path: String,
    /// "in_progress" (a `full` run holds the writer lock) or "left_behind".
    state: &'static str,
    bytes: u64,
    /// Seconds since any of its files was last written.
    age_seconds: u64,
}

#[derive(Debug, Serialize)]
struct RunWarning {
    command: String,
    finished_at: Option<String>,
    warning: String,
}

#[derive(Debug, Serialize)]
struct UnfinishedRun {
    command: String,
    started_at: String,
}

#[derive(Debug, Serialize)]
struct RecentFile {
    #[serde(flatten)]
    file: FileLedgerRow,
    applied_at: String,
}

#[derive(Debug, Serialize)]
struct Gap {
    export_timestamp: String,
    missing_file_numbers: Vec<u32>,
}

#[derive(Debug, Serialize)]
struct Check {
    ok: bool,
    reason: String,
}

/// Prints the status; with `--check`, exits 75 when stale.
pub fn run(ctx: &Ctx, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let mut replica = Replica::open_reader(&ctx.settings.db, ctx.settings.busy_timeout)?;
    let mut report = gather(&mut replica)?;
    report.full_build = full_build(&ctx.settings.db)?;
    let mut code = ExitCode::Ok;
    if args.check {
        let mut c = check(&report, args.max_age);
        if let Some(max) = args.max_pending_age {
            check_outbox(&mut c, &report.outbox, max);
        }
        let stale = !c.ok;
        check_warnings(&mut c, &report.run_warnings);
        check_publications(&mut c, &report.missed_publications);
        code = match (c.ok, stale) {
            (true, _) => ExitCode::Ok,
            (false, true) => ExitCode::TempFail,
            // Data missing for good: a re-sync from a snapshot is needed.
            (false, false) if !report.missed_publications.is_empty() => ExitCode::DataErr,
            // Files left unarchived: an I/O problem a person must look at.
            (false, false) => ExitCode::IoErr,
        };
        report.check = Some(c);
    }

    if ctx.json {
        print_json(&report)?;
    } else if let Some(c) = &report.check {
        let verdict = match code {
            ExitCode::Ok => "OK",
            ExitCode::TempFail => "STALE",
            _ => "WARNING",
        };
        print_lines([format!("{verdict}: {}", c.reason)])?;
    } else {
        print_lines(human(&report))?;
    }
    Ok(code)
}

fn gather(replica: &mut Replica) -> anyhow::Result<StatusReport> {
    let engage_contacts = replica.contact_count()?;
    let mode = replica.mode().as_str();
    let db = replica.path().display().to_string();
    // One read transaction, so the figures agree with each other.
    let tx = replica.conn().transaction()?;
    let runs = status::last_runs(&tx)?;
    let last_sync = runs
        .iter()
        .filter(|r| r.outcome == "ok" && SYNC_COMMANDS.contains(&r.command.as_str()))
        .max_by(|a, b| a.finished_at.cmp(&b.finished_at))
        .cloned();
    let last_failure = runs
        .iter()
        .filter(|r| r.outcome == "failed")
        .max_by(|a, b| a.finished_at.cmp(&b.finished_at))
        .cloned();
    let local_contacts: i64 =
        tx.query_row(crate::till_store::queries::COUNT_LOCAL_ONLY, [], |r| {
            r.get(0)
        })?;
    let report = StatusReport {
        till_store: crate::till_store::path_for(Path::new(&db))
            .display()
            .to_string(),
        db,
        mode,
        contacts: engage_contacts + local_contacts,
        local_contacts,
        till_rows: tx.query_row(crate::till_store::queries::COUNT_TILL_ROWS, [], |r| {
            r.get(0)
        })?,
        tombstones: status::tombstones(&tx)?,
        applied_files: status::applied_files(&tx)?,
        last_sync_age_seconds: last_sync
            .as_ref()
            .and_then(|r| r.finished_at.as_deref())
            .and_then(age_seconds),
        last_sync,
        run_warnings: run_warnings(&runs),
        runs: runs
            .into_iter()
            .filter(|r| r.outcome != "running")
            .collect(),
        last_failure,
        unfinished_runs: status::unfinished_runs(&tx)?
            .into_iter()
            .map(|(command, started_at)| UnfinishedRun {
                command,
                started_at,
            })
            .collect(),
        recent_files: status::ledger_tail(&tx, 5)?
            .into_iter()
            .map(|(file, applied_at)| RecentFile { file, applied_at })
            .collect(),
        gaps: status::recent_gaps(&tx, 50)?
            .into_iter()
            .map(|(export_timestamp, missing_file_numbers)| Gap {
                export_timestamp,
                missing_file_numbers,
            })
            .collect(),
        missed_publications: crate::publish::gaps::missed(&tx)?,
        quarantined: status::quarantine_tail(&tx, 5)?,
        outbox: crate::outbox::store::status(&tx, 10)?,
        full_build: None,
        check: None,
    };
    tx.rollback()?;
    Ok(report)
}

/// The build beside the replica, if any, and whether a `full` run is writing it: the writer
/// lock file names its holder, and the holder must still be alive (read, never locked here,
/// so that `status` never makes a cron run skip).
fn full_build(db: &Path) -> anyhow::Result<Option<FullBuild>> {
    let Some(build) = crate::purge_files::build_leftover(db)? else {
        return Ok(None);
    };
    let holder = std::fs::read_to_string(crate::lock::lock_path(db)).unwrap_or_default();
    let running = holder
        .strip_prefix("pid ")
        .and_then(|rest| rest.strip_suffix(" (full)"))
        .is_some_and(|pid| Path::new("/proc").join(pid).exists());
    Ok(Some(FullBuild {
        path: build.path,
        state: if running {
            "in_progress"
        } else {
            "left_behind"
        },
        bytes: build.bytes,
        age_seconds: build.modified.elapsed().map(|d| d.as_secs()).unwrap_or(0),
    }))
}

fn check(report: &StatusReport, max_age: Duration) -> Check {
    let max = humantime::format_duration(max_age);
    match (&report.last_sync, report.last_sync_age_seconds) {
        (Some(run), Some(age)) if age <= max_age.as_secs() as i64 => Check {
            ok: true,
            reason: format!(
                "last successful {} {} ago (max {max}); {} contacts",
                run.command,
                humantime::format_duration(Duration::from_secs(age.max(0) as u64)),
                report.contacts
            ),
        },
        (Some(run), Some(age)) => Check {
            ok: false,
            reason: format!(
                "last successful {} {} ago (max {max}){}",
                run.command,
                humantime::format_duration(Duration::from_secs(age.max(0) as u64)),
                failure_hint(report)
            ),
        },
        _ => Check {
            ok: false,
            reason: format!("no successful sync yet{}", failure_hint(report)),
        },
    }
}

/// The warnings of the newest finished run of each command.
fn run_warnings(runs: &[RunRow]) -> Vec<RunWarning> {
    let mut newest: std::collections::BTreeMap<&str, &RunRow> = Default::default();
    for run in runs.iter().filter(|r| r.outcome != "running") {
        let slot = newest.entry(run.command.as_str()).or_insert(run);
        if run.finished_at > slot.finished_at {
            *slot = run;
        }
    }
    newest
        .values()
        .flat_map(|run| {
            run.warnings().into_iter().map(|warning| RunWarning {
                command: run.command.clone(),
                finished_at: run.finished_at.clone(),
                warning,
            })
        })
        .collect()
}

/// Fails the check when a hub's publications were missed (see `publish::gaps`).
fn check_publications(c: &mut Check, missed: &[crate::publish::gaps::MissedPublications]) {
    if let Some(m) = missed.first() {
        c.ok = false;
        c.reason.push_str(&format!("; {}", missed_line(m)));
    }
}

/// One line about missed publications, with what to do.
fn missed_line(m: &crate::publish::gaps::MissedPublications) -> String {
    let first: Vec<String> = m.first_missing.iter().map(|k| format!("d{k}")).collect();
    format!(
        "missed {} publication(s) of hub `{}` ({}{}), no longer on the server: re-sync from a \
         snapshot (`publish --snapshot` on the hub, `full --from-xml` here; README \"publish\")",
        m.missing,
        m.name,
        first.join(", "),
        if m.missing > first.len() as u64 {
            ", …"
        } else {
            ""
        }
    )
}

/// Fails the check when the newest run of a command left warnings (files not archived).
fn check_warnings(c: &mut Check, warnings: &[RunWarning]) {
    if let Some(first) = warnings.first() {
        c.ok = false;
        c.reason.push_str(&format!(
            "; {} warning(s) from the last {} run at {}: {} (fix the cause; the next run \
             that has none clears this)",
            warnings.len(),
            first.command,
            first.finished_at.as_deref().unwrap_or("?"),
            one_line(&first.warning)
        ));
    }
}

/// `--max-pending-age`: fails the check when an outbox item has waited longer to be delivered.
fn check_outbox(c: &mut Check, outbox: &OutboxStatus, max_age: Duration) {
    let Some(oldest) = &outbox.oldest_undelivered_queued_at else {
        return;
    };
    let age = age_seconds(oldest).unwrap_or(0).max(0);
    let waiting: i64 = outbox
        .depth
        .iter()
        .filter(|d| d.state == "pending" || d.state == "in_flight")
        .map(|d| d.count)
        .sum();
    let age_text = humantime::format_duration(Duration::from_secs(age as u64));
    if age > max_age.as_secs() as i64 {
        c.ok = false;
        c.reason.push_str(&format!(
            "; outbox: {waiting} item(s) undelivered, the oldest queued {age_text} ago (max {}): \
             run push-local, see `status` for why they wait",
            humantime::format_duration(max_age)
        ));
    } else {
        c.reason.push_str(&format!(
            "; outbox: {waiting} undelivered, oldest {age_text} old"
        ));
    }
}

fn failure_hint(report: &StatusReport) -> String {
    match &report.last_failure {
        Some(f) => format!(
            "; last failure: {} at {} (exit {}): {}",
            f.command,
            f.finished_at.as_deref().unwrap_or("?"),
            f.exit_code.unwrap_or(0),
            one_line(f.error.as_deref().unwrap_or("no reason recorded"))
        ),
        None => String::new(),
    }
}

fn one_line(s: &str) -> String {
    let line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 300 {
        format!("{}…", line.chars().take(300).collect::<String>())
    } else {
        line
    }
}

fn age_seconds(rfc3339: &str) -> Option<i64> {
    let t = DateTime::parse_from_rfc3339(rfc3339).ok()?;
    Some((Utc::now() - t.with_timezone(&Utc)).num_seconds())
}

fn ago(rfc3339: Option<&str>) -> String {
    match rfc3339.and_then(age_seconds) {
        Some(s) => format!(
            "{} ago",
            humantime::format_duration(Duration::from_secs(s.max(0) as u64))
        ),
        None => "never".to_string(),
    }
}

fn human(r: &StatusReport) -> Vec<String> {
    let mut lines = vec![
        format!("replica:      {} ({} mode)", r.db, r.mode),
        format!("till store:   {}", r.till_store),
        format!(
            "contacts:     {} ({} registered at the till, not yet in Engage; {} deleted \
             remembered as tombstones)",
            r.contacts, r.local_contacts, r.tombstones
        ),
    ];
    match &r.last_sync {
        Some(s) => lines.push(format!(
            "last sync:    {} at {} ({})",
            s.command,
            s.finished_at.as_deref().unwrap_or("?"),
            ago(s.finished_at.as_deref())
        )),
        None => lines.push("last sync:    never".into()),
    }
    for run in &r.runs {
        lines.push(format!(
            "  {:<10} last {:<6} {} ({})",
            run.command,
            run.outcome,
            run.finished_at.as_deref().unwrap_or("?"),
            ago(run.finished_at.as_deref())
        ));
    }
    if let Some(f) = &r.last_failure {
        lines.push(format!(
            "last failure: {} at {} (exit {}): {}",
            f.command,
            f.finished_at.as_deref().unwrap_or("?"),
            f.exit_code.unwrap_or(0),
            one_line(f.error.as_deref().unwrap_or(""))
        ));
    }
    for w in &r.run_warnings {
        lines.push(format!(
            "warning:      {} at {}: {}",
            w.command,
            w.finished_at.as_deref().unwrap_or("?"),
            one_line(&w.warning)
        ));
    }
    for u in &r.unfinished_runs {
        lines.push(format!(
            "unfinished:   {} started {} never finished (crashed, killed, or still running)",
            u.command, u.started_at
        ));
    }
    lines.push(format!("export files: {} applied", r.applied_files));
    for f in &r.recent_files {
        lines.push(format!(
            "  {} applied {}: {} new, {} updated, {} deleted, {} stale",
            f.file.name,
            f.applied_at,
            f.file.inserted,
            f.file.updated,
            f.file.deleted,
            f.file.stale
        ));
    }
    for m in &r.missed_publications {
        lines.push(format!("missed:       {}", missed_line(m)));
    }
    for g in &r.gaps {
        let missing: Vec<String> = g.missing_file_numbers.iter().map(u32::to_string).collect();
        lines.push(format!(
            "gap:          export {} is missing file number(s) {}",
            g.export_timestamp,
            missing.join(", ")
        ));
    }
    for q in &r.quarantined {
        lines.push(format!(
            "quarantined:  {} at {} → {}: {}",
            q.name,
            q.quarantined_at,
            q.moved_to.as_deref().unwrap_or("(not moved)"),
            one_line(&q.reason)
        ));
    }
    lines.extend(outbox_lines(&r.outbox));
    if let Some(b) = &r.full_build {
        let age = humantime::format_duration(Duration::from_secs(b.age_seconds));
        lines.push(match b.state {
            "in_progress" => format!(
                "full build:   {} in progress, {} bytes, last written {age} ago",
                b.path, b.bytes
            ),
            _ => format!(
                "full build:   {} left behind, {} bytes, last written {age} ago: it holds a copy \
                 of the personal data; the next `full` resumes it (or `full --restart`), and \
                 purge deletes it once older than the retention period",
                b.path, b.bytes
            ),
        });
    }
    lines
}

/// The outbox part of the human status.
fn outbox_lines(o: &OutboxStatus) -> Vec<String> {
    if o.depth.is_empty() {
        return vec!["outbox:       empty".into()];
    }
    let mut lines = Vec::new();
    for d in &o.depth {
        lines.push(format!(
            "outbox:       {} {} {}: {} (oldest queued {})",
            d.kind, d.op, d.state, d.count, d.oldest_queued_at
        ));
    }
    if let Some(oldest) = &o.oldest_undelivered_queued_at {
        lines.push(format!(
            "  oldest undelivered item queued {} ({})",
            oldest,
            ago(Some(oldest))
        ));
    }
    for p in &o.problems {
        lines.push(format!(
            "  {} {} {} {} at {}: {}",
            p.state,
            p.kind,
            p.op,
            p.item,
            p.at.as_deref().unwrap_or("?"),
            one_line(p.reason.as_deref().unwrap_or("no reason recorded"))
        ));
    }
    lines
}
