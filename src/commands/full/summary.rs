//! `full`'s summary: what the build did, printed for a person or as JSON.

use std::time::Instant;

use serde::Serialize;

use super::super::{print_json, print_lines, Ctx};
use crate::full_build::{Filled, SourceKind, Swapped};
use crate::replica::bulk::BulkCounts;
use crate::replica::rekey::RekeyReport;
use crate::replica::MergeCounts;

#[derive(Debug, Default, Serialize)]
pub(super) struct FullSummary {
    pub(super) dry_run: bool,
    /// "xml" or "api".
    pub(super) source: SourceKind,
    pub(super) resumed: bool,
    pub(super) mode: &'static str,
    pub(super) files_applied: u64,
    pub(super) files_already_applied: u64,
    pub(super) contacts: i64,
    pub(super) members: u64,
    /// What finishing the load resolved (contacts loaded more than once, deletes).
    pub(super) resolved: Option<BulkCounts>,
    pub(super) merged_from_previous: Option<MergeCounts>,
    pub(super) replica: Option<String>,
    pub(super) elapsed_seconds: f64,
    pub(super) contacts_per_second: f64,
    /// The live replica's stored keys re-normalised after an upgrade (once), before the merge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) rekey: Option<RekeyReport>,
}

impl FullSummary {
    /// Adds what the build did.
    pub(super) fn add(&mut self, filled: Filled, swapped: Swapped, started: Instant) {
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

fn rate(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        (n as f64 / seconds).round()
    } else {
        0.0
    }
}

pub(super) fn print_summary(ctx: &Ctx, s: &FullSummary) -> anyhow::Result<()> {
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
    lines.push(headline(s));
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

/// The first line: what was built and is now in service.
fn headline(s: &FullSummary) -> String {
    let source = match s.source {
        SourceKind::Api => format!("{} contacts fetched from the API", s.members),
        SourceKind::Xml => format!("{} files applied", s.files_applied),
    };
    format!(
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
    )
}
