//! `status --check`: one verdict for monitoring, from the report: stale (exit 75), missed hub
//! publications (65), a run's warnings (74), or fine (0), with a one-line reason.

use std::time::Duration;

use serde::Serialize;

use super::human::{missed_line, one_line};
use super::{age_seconds, RunWarning, StatusReport};
use crate::error::ExitCode;
use crate::outbox::store::OutboxStatus;

/// The limits of `--check`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `--max-age`: the replica is stale when its last successful sync is older.
    pub max_age: Duration,
    /// `--max-pending-age`: fails when an outbox item has waited longer to be delivered.
    pub max_pending_age: Option<Duration>,
}

/// The verdict, in the report (`check`).
#[derive(Debug, Serialize)]
pub struct Check {
    ok: bool,
    reason: String,
}

/// Checks the report against `limits`, records the verdict in it and returns the exit code.
pub fn check(report: &mut StatusReport, limits: Limits) -> ExitCode {
    let mut c = freshness(report, limits.max_age);
    if let Some(max) = limits.max_pending_age {
        check_outbox(&mut c, &report.outbox, max);
    }
    let stale = !c.ok;
    check_warnings(&mut c, &report.run_warnings);
    check_publications(&mut c, &report.missed_publications);
    let code = match (c.ok, stale) {
        (true, _) => ExitCode::Ok,
        (false, true) => ExitCode::TempFail,
        // Data missing for good: a re-sync from a snapshot is needed.
        (false, false) if !report.missed_publications.is_empty() => ExitCode::DataErr,
        // Files left unarchived: an I/O problem a person must look at.
        (false, false) => ExitCode::IoErr,
    };
    report.check = Some(c);
    code
}

/// The one line `--check` prints (without `--json`), for a report checked with exit `code`.
pub fn verdict_line(report: &StatusReport, code: ExitCode) -> Option<String> {
    let c = report.check.as_ref()?;
    let verdict = match code {
        ExitCode::Ok => "OK",
        ExitCode::TempFail => "STALE",
        _ => "WARNING",
    };
    Some(format!("{verdict}: {}", c.reason))
}

/// Whether the last successful sync is recent enough.
fn freshness(report: &StatusReport, max_age: Duration) -> Check {
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

/// Fails the check when a hub's publications were missed (see `publish::gaps`).
fn check_publications(c: &mut Check, missed: &[crate::publish::gaps::MissedPublications]) {
    if let Some(m) = missed.first() {
        c.ok = false;
        c.reason.push_str(&format!("; {}", missed_line(m)));
    }
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

/// The newest failure, for a stale verdict.
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
