//! `purge` (docs/contract.md §7, GDPR hygiene): deletes what is older than a cutoff in the
//! replica, the till store, and every folder and file around them ([`files`]), then compacts
//! both databases. The command takes the lock, opens the databases, records the run and prints
//! the [`PurgeSummary`] ([`report`]).

pub mod files;
pub mod report;

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{SecondsFormat, Utc};
use serde::Serialize;

use crate::config::Settings;
use crate::error::UsageError;
use crate::outbox::store::OutboxPurged;
use crate::replica::folders::{self, FolderKind, UsedFolder};
use crate::replica::ledger;
use crate::replica::purge::{compact, purge_rows, Compaction, PurgedRows};
use crate::replica::Replica;
use crate::sqlite_file::with_suffix;
use crate::till_store::TillStore;
use files::{purge_build, purge_folder, purge_stale_generations, Location};

/// The moment before which purge deletes, as a file time and as the UTC text rows are compared
/// with.
#[derive(Debug, Clone)]
pub struct Cutoff {
    /// For file modification times.
    pub time: SystemTime,
    /// RFC 3339, milliseconds, UTC (`2026-11-06T09:00:00.000Z`).
    pub rfc3339: String,
}

impl Cutoff {
    /// `older_than` before now (`--older-than`).
    pub fn older_than(older_than: Duration) -> Result<Cutoff, UsageError> {
        let time = SystemTime::now()
            .checked_sub(older_than)
            .ok_or_else(|| UsageError("--older-than reaches before 1970".into()))?;
        let rfc3339 =
            chrono::DateTime::<Utc>::from(time).to_rfc3339_opts(SecondsFormat::Millis, true);
        Ok(Cutoff { time, rfc3339 })
    }
}

/// What a purge deleted (or, in a dry run, would delete): counts and every location it
/// covers, never the data. Printed by the command, and as JSON with `--json`.
#[derive(Debug, Default, Serialize)]
pub struct PurgeSummary {
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

/// Files deleted in one kind of folder, and their bytes.
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

impl PurgeSummary {
    /// An empty summary of a purge of what is `older_than` (before `cutoff`).
    pub fn new(older_than: Duration, cutoff: &Cutoff, dry_run: bool) -> PurgeSummary {
        PurgeSummary {
            dry_run,
            older_than: humantime::format_duration(older_than).to_string(),
            cutoff: cutoff.rfc3339.clone(),
            ..PurgeSummary::default()
        }
    }

    /// The replica's row counts, for the run log.
    pub fn rows(&self) -> &PurgedRows {
        &self.rows
    }

    /// Whether nothing is deleted, only counted.
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }
}

/// Purges the replica at `replica`, its till store `till`, and every folder and file around
/// them older than `cutoff` (the command holds the writer lock), filling in `summary`; when
/// `summary` is a dry run's, only counts. Compacts both databases afterwards, so purged data
/// cannot be read back from their files.
pub fn purge(
    replica: &mut Replica,
    till: &mut TillStore,
    settings: &Settings,
    cutoff: &Cutoff,
    summary: &mut PurgeSummary,
) -> anyhow::Result<()> {
    let dry_run = summary.dry_run;
    // Files first: a quarantine record names its file (see [`files`]), and a crash in
    // between leaves records of files already gone, never files without a record.
    purge_files(settings, replica, cutoff.time, dry_run, summary)?;
    summary.rows = purge_rows(replica.conn(), &cutoff.rfc3339, dry_run)?;
    // The till store in one short transaction: till writes wait for it at most that long
    // (they never wait for the replica's).
    summary.outbox = crate::outbox::store::purge(till.conn(), &cutoff.rfc3339, dry_run)?;
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
    s: &Settings,
    replica: &mut Replica,
    cutoff: SystemTime,
    dry_run: bool,
    summary: &mut PurgeSummary,
) -> anyhow::Result<()> {
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
fn folders_to_purge(conn: &rusqlite::Connection, s: &Settings) -> anyhow::Result<Vec<UsedFolder>> {
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
