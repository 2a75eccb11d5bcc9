//! The human form of the status report: one line per fact, for a person at a terminal.

use std::time::Duration;

use super::{age_seconds, StatusReport};
use crate::outbox::store::OutboxStatus;

/// The report's lines.
pub fn lines(r: &StatusReport) -> Vec<String> {
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

/// One line about missed publications, with what to do.
pub(super) fn missed_line(m: &crate::publish::gaps::MissedPublications) -> String {
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

/// `s` on one line, at most 300 characters.
pub(super) fn one_line(s: &str) -> String {
    let line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 300 {
        format!("{}…", line.chars().take(300).collect::<String>())
    } else {
        line
    }
}

/// "5m 3s ago", or "never".
fn ago(rfc3339: Option<&str>) -> String {
    match rfc3339.and_then(age_seconds) {
        Some(s) => format!(
            "{} ago",
            humantime::format_duration(Duration::from_secs(s.max(0) as u64))
        ),
        None => "never".to_string(),
    }
}
