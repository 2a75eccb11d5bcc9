//! `engage-sync purge --older-than 30d`: GDPR hygiene (SPEC §7).

use std::path::Path;
use std::time::SystemTime;

use anyhow::Context;
use chrono::{SecondsFormat, Utc};
use serde::Serialize;

use super::{print_json, print_lines, Ctx};
use crate::cli::PurgeArgs;
use crate::commands::init::DEFAULT_MODE;
use crate::error::{ExitCode, UsageError};
use crate::lock;
use crate::outbox::store::OutboxPurged;
use crate::replica::purge::{compact, purge_rows, Compaction, PurgedRows};
use crate::replica::{Replica, RunLog};
use crate::till_store::TillStore;
use crate::time::now_rfc3339;

#[derive(Debug, Default, Serialize)]
struct PurgeSummary {
    dry_run: bool,
    older_than: String,
    cutoff: String,
    #[serde(flatten)]
    rows: PurgedRows,
    #[serde(flatten)]
    outbox: OutboxPurged,
    archived_files: FileCount,
    quarantined_files: FileCount,
    #[serde(skip_serializing_if = "Option::is_none")]
    compaction: Option<Compaction>,
    /// The same for the till store.
    #[serde(skip_serializing_if = "Option::is_none")]
    till_store_compaction: Option<Compaction>,
}

#[derive(Debug, Default, Serialize)]
struct FileCount {
    files: u64,
    bytes: u64,
}

/// Purges, then prints counts (never the data).
pub fn run(ctx: &Ctx, args: &PurgeArgs) -> anyhow::Result<ExitCode> {
    let s = &ctx.settings;
    let cutoff_time = SystemTime::now()
        .checked_sub(args.older_than)
        .ok_or_else(|| UsageError("--older-than reaches before 1970".into()))?;
    let cutoff =
        chrono::DateTime::<Utc>::from(cutoff_time).to_rfc3339_opts(SecondsFormat::Millis, true);
    crate::db_owner::check_before_lock(&s.db)?;
    let _lock = lock::acquire(&s.db, "purge", args.write.wait)?;
    let mut replica = Replica::open_writer(&s.db, s.mode, DEFAULT_MODE, s.busy_timeout)?;
    let mut till = TillStore::open(&s.db, s.busy_timeout, replica.mode())?;
    let dry_run = args.write.dry_run;
    let run_log = (!dry_run)
        .then(|| RunLog::start(replica.conn(), "purge", &now_rfc3339()))
        .transpose()?;
    let mut summary = PurgeSummary {
        dry_run,
        older_than: humantime::format_duration(args.older_than).to_string(),
        cutoff: cutoff.clone(),
        ..PurgeSummary::default()
    };
    let result = purge(
        ctx,
        &mut replica,
        &mut till,
        cutoff_time,
        &cutoff,
        dry_run,
        &mut summary,
    );
    if let Some(run_log) = run_log {
        run_log.close(replica.conn(), &result, &summary.rows)?;
        // The run row itself is written after compaction; truncate the WAL once more so the
        // file set holds nothing older than this run.
        if result.is_ok() {
            replica
                .conn()
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        }
    }
    result?;
    print_summary(ctx, &summary)?;
    Ok(ExitCode::Ok)
}

fn purge(
    ctx: &Ctx,
    replica: &mut Replica,
    till: &mut TillStore,
    cutoff_time: SystemTime,
    cutoff: &str,
    dry_run: bool,
    summary: &mut PurgeSummary,
) -> anyhow::Result<()> {
    let s = &ctx.settings;
    summary.rows = purge_rows(replica.conn(), cutoff, dry_run)?;
    // The till store in one short transaction: till writes wait for it at most that long
    // (they never wait for the replica's).
    summary.outbox = crate::outbox::store::purge(till.conn(), cutoff, dry_run)?;
    summary.rows.runs += summary.outbox.runs;
    if let Some(archive) = &s.archive {
        summary.archived_files = purge_folder(archive, cutoff_time, dry_run)?;
    }
    summary.quarantined_files = purge_folder(&s.quarantine, cutoff_time, dry_run)?;
    if !dry_run {
        let compaction = compact(replica.conn())?;
        if !compaction.wal_truncated {
            tracing::warn!(
                "a reader kept the replica's WAL busy, so old page images may remain in it until \
                 the next purge"
            );
        }
        summary.compaction = Some(compaction);
        let till_compaction = compact(till.conn())?;
        if !till_compaction.wal_truncated {
            tracing::warn!(
                "a reader kept the till store's WAL busy, so old page images may remain in it \
                 until the next purge"
            );
        }
        summary.till_store_compaction = Some(till_compaction);
    }
    Ok(())
}

/// Deletes (or counts) regular files in `dir` last modified before the cutoff. A missing
/// folder has nothing to purge.
fn purge_folder(dir: &Path, cutoff: SystemTime, dry_run: bool) -> anyhow::Result<FileCount> {
    let mut count = FileCount::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(count),
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("cannot list {}", dir.display())))
        }
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let meta = entry
            .metadata()
            .with_context(|| format!("cannot read {}", entry.path().display()))?;
        let old = meta.modified().map(|m| m < cutoff).unwrap_or(false);
        if !meta.is_file() || !old {
            continue;
        }
        if !dry_run {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("cannot delete {}", entry.path().display()))?;
        }
        count.files += 1;
        count.bytes += meta.len();
    }
    Ok(count)
}

fn print_summary(ctx: &Ctx, s: &PurgeSummary) -> anyhow::Result<()> {
    if ctx.json {
        return print_json(s);
    }
    let verb = if s.dry_run { "would purge" } else { "purged" };
    let mut lines = vec![
        format!(
            "purge (older than {}, before {}): {verb}",
            s.older_than, s.cutoff
        ),
        format!("  run records:        {}", s.rows.runs),
        format!("  quarantine records: {}", s.rows.quarantine_records),
        format!(
            "  outbox rows:        {} contact, {} receipt (delivered, rejected or dropped)",
            s.outbox.outbox_contacts, s.outbox.outbox_receipts
        ),
        format!(
            "  archived files:     {} ({} bytes)",
            s.archived_files.files, s.archived_files.bytes
        ),
        format!(
            "  quarantined files:  {} ({} bytes)",
            s.quarantined_files.files, s.quarantined_files.bytes
        ),
    ];
    lines.push(format!(
        "  till rows:          {} (contacts the replica has newer data of, or Engage deleted)",
        s.outbox.till_rows_overtaken
    ));
    for (name, c) in [
        ("replica:", &s.compaction),
        ("till store:", &s.till_store_compaction),
    ] {
        let Some(c) = c else { continue };
        lines.push(format!(
            "  {name:<20}{} free pages {}; WAL {}",
            c.free_pages_before,
            if c.whole_file_rewritten {
                "reclaimed (VACUUM: the whole file rewritten, once; later purges reclaim only \
                 the free pages)"
            } else if c.vacuumed {
                "reclaimed"
            } else {
                "(none to reclaim)"
            },
            if c.wal_truncated {
                "truncated"
            } else {
                "busy (a reader held it; the next purge finishes)"
            }
        ));
    }
    print_lines(lines)
}
