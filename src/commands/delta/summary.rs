//! `delta`'s summary: what the run did, printed for a person or as JSON.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::super::{print_json, print_lines, Ctx};
use crate::import::{escaped, FileReport, FileStatus, NotUtf8Names, RefusedFile};
use crate::replica::rekey::RekeyReport;
use crate::sftp::SftpReport;

/// The run's result, printed as the summary (and as JSON with `--json`).
#[derive(Debug, Default, Serialize)]
pub(super) struct DeltaSummary {
    pub(super) dry_run: bool,
    pub(super) files_applied: u64,
    pub(super) files_already_applied: u64,
    pub(super) files_failed: u64,
    pub(super) files_not_tried: u64,
    pub(super) members: u64,
    pub(super) inserted: u64,
    pub(super) updated: u64,
    pub(super) deleted: u64,
    pub(super) stale: u64,
    /// Mobile numbers kept as Engage sent them (not readable as phone numbers).
    pub(super) phones_as_sent: u64,
    /// Stored keys re-normalised after an upgrade (once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) rekey: Option<RekeyReport>,
    pub(super) elapsed_seconds: f64,
    pub(super) contacts_per_second: f64,
    pub(super) warnings: Vec<String>,
    /// Of the warnings, files applied but not archived: recorded with the run, so that
    /// `status` shows them and `status --check` fails on them.
    #[serde(skip)]
    pub(super) file_warnings: Vec<String>,
    pub(super) failures: Vec<RefusedFile>,
    /// Files left in the inbox for a later run: changed less than `inbox_min_age` ago.
    pub(super) files_skipped: Vec<String>,
    pub(super) files: Vec<FileReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) sftp: Option<SftpReport>,
}

impl DeltaSummary {
    /// Files whose names are not UTF-8: each a failure in the summary, left where it is; the
    /// error for the exit code (65) if there are any.
    pub(super) fn refuse_not_utf8(&mut self, paths: &[PathBuf]) -> Option<anyhow::Error> {
        for path in paths {
            let error = "the file name is not UTF-8; left where it is: rename it".to_string();
            tracing::error!("{}: {error}", escaped(path));
            self.failures.push(RefusedFile {
                file: escaped(path),
                error,
                quarantined_to: None,
            });
            self.files_failed += 1;
        }
        let first = paths.first()?;
        Some(
            NotUtf8Names {
                count: paths.len(),
                first: escaped(first),
            }
            .into(),
        )
    }

    /// Files changed less than `inbox_min_age` ago: skipped, reported, taken by a later run.
    pub(super) fn skip_young(&mut self, young: &[(PathBuf, Duration)], min_age: Duration) {
        for (path, age) in young {
            tracing::info!(
                "skipped {} for now: changed {} ago, less than inbox_min_age ({}); it may still \
                 be being written, a later run takes it",
                path.display(),
                humantime::format_duration(Duration::from_secs(age.as_secs())),
                humantime::format_duration(min_age)
            );
            self.files_skipped.push(path.display().to_string());
        }
    }

    /// Adds a committed file's report.
    pub(super) fn add_report(&mut self, report: FileReport) {
        match report.status {
            FileStatus::Applied => self.files_applied += 1,
            FileStatus::AlreadyApplied => self.files_already_applied += 1,
        }
        let l = &report.ledger;
        self.members += l.members;
        self.inserted += l.inserted;
        self.updated += l.updated;
        self.deleted += l.deleted;
        self.stale += l.stale;
        self.phones_as_sent += l.phones_as_sent;
        self.files.push(report);
    }

    /// Adds warnings about files applied but not archived: recorded with the run too.
    pub(super) fn add_file_warnings(&mut self, warnings: Vec<String>) {
        self.file_warnings.extend(warnings.iter().cloned());
        self.warnings.extend(warnings);
    }

    /// Sets the run's time and rate.
    pub(super) fn set_elapsed(&mut self, started: Instant) {
        self.elapsed_seconds = started.elapsed().as_secs_f64();
        self.contacts_per_second = if self.elapsed_seconds > 0.0 {
            (self.members as f64 / self.elapsed_seconds).round()
        } else {
            0.0
        };
    }

    /// The counts recorded with the run (and its file warnings, which `status` shows).
    pub(super) fn run_counts(&self) -> serde_json::Value {
        let mut counts = serde_json::json!({
            "files_applied": self.files_applied, "files_failed": self.files_failed,
            "inserted": self.inserted, "updated": self.updated,
            "deleted": self.deleted, "stale": self.stale,
            "files_downloaded": self.sftp.as_ref().map(|r| r.files_downloaded),
        });
        if !self.file_warnings.is_empty() {
            counts[crate::replica::status::WARNINGS] = self.file_warnings.clone().into();
        }
        counts
    }
}

pub(super) fn print_summary(ctx: &Ctx, s: &DeltaSummary) -> anyhow::Result<()> {
    if ctx.json {
        return print_json(s);
    }
    let mut lines = Vec::new();
    if s.dry_run {
        dry_run_lines(&s.files, &mut lines);
    }
    if let Some(r) = &s.sftp {
        sftp_lines(r, s.dry_run, &mut lines);
    }
    lines.push(files_line(s));
    if !s.files_skipped.is_empty() {
        lines.push(format!(
            "skipped for now: {} file(s) changed within inbox_min_age (still being written?), \
             taken by a later run",
            s.files_skipped.len()
        ));
    }
    lines.push(format!(
        "contacts: {} new, {} updated, {} deleted, {} stale skipped ({} in {:.2} s, {} contacts/s)",
        s.inserted,
        s.updated,
        s.deleted,
        s.stale,
        s.members,
        s.elapsed_seconds,
        s.contacts_per_second
    ));
    if let Some(r) = &s.rekey {
        lines.push(r.line());
    }
    if s.phones_as_sent > 0 {
        lines.push(format!(
            "mobile numbers kept as Engage sent them (not readable as phone numbers): {}",
            s.phones_as_sent
        ));
    }
    print_lines(lines)
}

/// The line of file counts.
fn files_line(s: &DeltaSummary) -> String {
    let prefix = if s.dry_run {
        "delta (dry run, nothing written)"
    } else {
        "delta"
    };
    format!(
        "{prefix}: {} files applied, {} already applied, {} refused{}",
        s.files_applied,
        s.files_already_applied,
        s.files_failed,
        if s.files_not_tried > 0 {
            format!(", {} not tried", s.files_not_tried)
        } else {
            String::new()
        }
    )
}

/// What a dry run would do, per file and contact.
fn dry_run_lines(files: &[FileReport], lines: &mut Vec<String>) {
    for f in files {
        lines.push(format!("{}: {:?}", f.ledger.name, f.status));
        for a in &f.actions {
            lines.push(format!("  would {} {}", a.action, a.contact_id));
        }
    }
}

/// The SFTP part of the summary: per file in a dry run (what would be downloaded, in import
/// order), then one line of counts.
fn sftp_lines(r: &SftpReport, dry_run: bool, lines: &mut Vec<String>) {
    if dry_run {
        for f in &r.files {
            let after = f
                .after_import
                .as_deref()
                .map(|a| format!("; {a}"))
                .unwrap_or_default();
            lines.push(format!(
                "sftp {} ({} bytes): {}{after}",
                f.name, f.size, f.action
            ));
        }
    }
    lines.push(format!(
        "sftp {} {}: {} files listed, {} downloaded ({} bytes), {} removed from the server",
        r.server,
        r.remote_dir,
        r.files_listed,
        r.files_downloaded,
        r.bytes_downloaded,
        r.files_removed
    ));
}
