//! `engage-sync purge --older-than 30d`: GDPR hygiene (docs/contract.md §7).

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{SecondsFormat, Utc};
use serde::Serialize;

use super::{print_json, print_lines, Ctx};
use crate::cli::PurgeArgs;
use crate::error::{ExitCode, UsageError};
use crate::lock;
use crate::outbox::store::OutboxPurged;
use crate::purge_files::{purge_build, purge_folder, purge_stale_generations, Location};
use crate::replica::folders::{self, FolderKind, UsedFolder};
use crate::replica::generation::with_suffix;
use crate::replica::purge::{compact, purge_rows, Compaction, PurgedRows};
use crate::replica::{ledger, Replica, RunLog};
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
    /// Applied export files and unfinished SFTP downloads in inbox folders.
    inbox_files: FileCount,
    /// An abandoned `full` build and stale generations.
    build_files: FileCount,
    /// Files a hub published for its stores (`publish`).
    published_files: FileCount,
    /// Every place purge covers, with what it deleted there (the scope, for an auditor).
    locations: Vec<Location>,
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

impl FileCount {
    fn add(&mut self, loc: &Location) {
        self.files += loc.files;
        self.bytes += loc.bytes;
    }
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
    let mut replica = ctx.open_writer()?;
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
    if ctx.prints_summary(true, summary.dry_run) {
        print_summary(ctx, &summary)?;
    }
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
    // Files first: a quarantine record names its file (see `purge_files`), and a crash in
    // between leaves records of files already gone, never files without a record.
    purge_files(ctx, replica, cutoff_time, dry_run, summary)?;
    summary.rows = purge_rows(replica.conn(), cutoff, dry_run)?;
    // The till store in one short transaction: till writes wait for it at most that long
    // (they never wait for the replica's).
    summary.outbox = crate::outbox::store::purge(till.conn(), cutoff, dry_run)?;
    summary.rows.runs += summary.outbox.runs;
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

/// The databases, then every folder recorded in the replica or configured for this run, then
/// what an interrupted `full` left: each a location in the summary.
fn purge_files(
    ctx: &Ctx,
    replica: &mut Replica,
    cutoff: SystemTime,
    dry_run: bool,
    summary: &mut PurgeSummary,
) -> anyhow::Result<()> {
    let s = &ctx.settings;
    let db = replica.path().to_path_buf();
    let till = folders::canonical(&crate::till_store::path_for(&db));
    let real_db = std::fs::canonicalize(&db).unwrap_or_else(|_| db.clone());
    summary.locations = vec![
        Location::database("replica", &real_db, DB_SCOPE),
        Location::database("replica_wal", &with_suffix(&real_db, "-wal"), WAL_SCOPE),
        Location::database("till_store", &till, TILL_SCOPE),
        Location::database("till_store_wal", &with_suffix(&till, "-wal"), WAL_SCOPE),
    ];
    let conn = replica.conn_ref();
    let applied = |path: &Path| -> anyhow::Result<bool> {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        match ledger::applied_hash(conn, &name)? {
            Some(hash) => Ok(crate::import::sha256_file(path)? == hash),
            None => Ok(false),
        }
    };
    let quarantined: HashSet<PathBuf> = ledger::quarantine_targets(conn)?
        .iter()
        .map(|t| folders::canonical(Path::new(t)))
        .collect();
    let recorded = |path: &Path| Ok(quarantined.contains(&folders::canonical(path)));
    for folder in folders_to_purge(conn, s)? {
        let known: &dyn Fn(&Path) -> anyhow::Result<bool> = match folder.kind {
            FolderKind::Quarantine => &recorded,
            _ => &applied,
        };
        let loc = purge_folder(&folder.path, folder.kind, cutoff, dry_run, known)?;
        if !loc.exists {
            tracing::warn!(
                "the {} folder {} recorded in the replica no longer exists: nothing to purge there",
                folder.kind.as_str(),
                folder.path.display()
            );
        }
        match folder.kind {
            FolderKind::Archive => summary.archived_files.add(&loc),
            FolderKind::Quarantine => summary.quarantined_files.add(&loc),
            FolderKind::Inbox => summary.inbox_files.add(&loc),
            FolderKind::Published => summary.published_files.add(&loc),
        }
        summary.locations.push(loc);
    }
    for loc in [
        purge_build(&db, cutoff, dry_run)?,
        purge_stale_generations(&db, cutoff, dry_run)?,
    ] {
        summary.build_files.add(&loc);
        summary.locations.push(loc);
    }
    Ok(())
}

const DB_SCOPE: &str = "run records (the latest of each command kept), quarantine records; \
     free pages reclaimed (secure_delete zeroes deleted rows)";
const TILL_SCOPE: &str = "delivered, rejected and dropped outbox items, contacts registered at \
     the till that Engage rejected, push-local run records (the latest kept), till rows the \
     replica has overtaken; free pages reclaimed";
const WAL_SCOPE: &str = "old page images: checkpointed and truncated to zero bytes";

/// The recorded folders and this run's configured archive and quarantine folders, once each.
fn folders_to_purge(
    conn: &rusqlite::Connection,
    s: &crate::config::Settings,
) -> anyhow::Result<Vec<UsedFolder>> {
    let mut all: BTreeSet<UsedFolder> = folders::all(conn)?.into_iter().collect();
    let configured = s
        .archive
        .iter()
        .map(|a| (a, FolderKind::Archive))
        .chain([(&s.quarantine, FolderKind::Quarantine)]);
    for (dir, kind) in configured {
        let path = folders::canonical(dir);
        // A configured folder never used has nothing in it; listed only if it exists.
        if path.exists() {
            all.insert(UsedFolder { path, kind });
        }
    }
    Ok(all.into_iter().collect())
}

fn print_summary(ctx: &Ctx, s: &PurgeSummary) -> anyhow::Result<()> {
    if ctx.json {
        return print_json(s);
    }
    let verb = if s.dry_run { "would purge" } else { "purged" };
    let files = |c: &FileCount| format!("{} ({} bytes)", c.files, c.bytes);
    let mut lines = vec![
        format!(
            "purge (older than {}, before {}): {verb}",
            s.older_than, s.cutoff
        ),
        format!(
            "  run records:        {} (the latest of each command kept)",
            s.rows.runs
        ),
        format!("  quarantine records: {}", s.rows.quarantine_records),
        format!(
            "  outbox rows:        {} contact, {} receipt (delivered, rejected or dropped)",
            s.outbox.outbox_contacts, s.outbox.outbox_receipts
        ),
        format!(
            "  local contacts:     {} (registered at the till, rejected by Engage)",
            s.outbox.local_contacts_never_in_engage
        ),
        format!("  archived files:     {}", files(&s.archived_files)),
        format!("  quarantined files:  {}", files(&s.quarantined_files)),
        format!(
            "  inbox files:        {} (applied, or unfinished downloads)",
            files(&s.inbox_files)
        ),
        format!(
            "  build files:        {} (abandoned `full` builds)",
            files(&s.build_files)
        ),
        format!(
            "  published files:    {} (hub: files published for the stores)",
            files(&s.published_files)
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
    lines.push("locations covered:".into());
    for l in &s.locations {
        let state = match (l.exists, l.per_file, l.files) {
            (false, _, _) => "not there".to_string(),
            (true, false, _) => "present".to_string(),
            (true, true, 0) => "nothing old".to_string(),
            (true, true, n) => format!("{n} file(s), {} bytes", l.bytes),
        };
        lines.push(format!("  {:<17}{} [{state}]: {}", l.kind, l.path, l.scope));
    }
    print_lines(lines)
}
