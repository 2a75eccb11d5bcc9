//! `engage-sync status [--check --max-age 2h]`: freshness for the till and for monitoring.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{print_json, print_lines, Ctx};
use crate::cli::StatusArgs;
use crate::error::ExitCode;
use crate::replica::ledger::FileLedgerRow;
use crate::replica::status::{self, QuarantineRow, RunRow};
use crate::replica::Replica;

/// Commands whose success makes the replica fresh.
const SYNC_COMMANDS: &[&str] = &["delta", "changes", "full"];

#[derive(Debug, Serialize)]
struct StatusReport {
    db: String,
    mode: &'static str,
    contacts: i64,
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
    /// Runs that started and never finished: crashed, killed, or running now.
    unfinished_runs: Vec<UnfinishedRun>,
    recent_files: Vec<RecentFile>,
    gaps: Vec<Gap>,
    quarantined: Vec<QuarantineRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    check: Option<Check>,
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
    if args.check {
        report.check = Some(check(&report, args.max_age));
    }
    let code = match &report.check {
        Some(c) if !c.ok => ExitCode::TempFail,
        _ => ExitCode::Ok,
    };
    if ctx.json {
        print_json(&report)?;
    } else if let Some(c) = &report.check {
        print_lines([format!(
            "{}: {}",
            if c.ok { "OK" } else { "STALE" },
            c.reason
        )])?;
    } else {
        print_lines(human(&report))?;
    }
    Ok(code)
}

fn gather(replica: &mut Replica) -> anyhow::Result<StatusReport> {
    let contacts = replica.contact_count()?;
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
    let report = StatusReport {
        db,
        mode,
        contacts,
        tombstones: status::tombstones(&tx)?,
        applied_files: status::applied_files(&tx)?,
        last_sync_age_seconds: last_sync
            .as_ref()
            .and_then(|r| r.finished_at.as_deref())
            .and_then(age_seconds),
        last_sync,
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
        quarantined: status::quarantine_tail(&tx, 5)?,
        check: None,
    };
    tx.rollback()?;
    Ok(report)
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
        format!(
            "contacts:     {} ({} deleted remembered as tombstones)",
            r.contacts, r.tombstones
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
    lines
}
