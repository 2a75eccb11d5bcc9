//! The bulk-read-changes pull (docs/contract.md §5): list what changed in a window, fetch
//! and apply it, tombstone the deletes, and advance the cursor ([`pull_changes`]).

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::Connection;

use super::{fetch_and_apply, Action, ApplyCounts, ApplyOptions, RowShape, CURSOR, FULL_STARTED};
use crate::engage::{ChangeType, EngageClient, EngageError};
use crate::error::ConfigError;
use crate::normalize::Country;
use crate::progress::ItemProgress;
use crate::replica::{set_cursor, ContactWriter, Replica};
use crate::time::now_rfc3339;

/// Where a pull's window starts.
#[derive(Debug, Clone, Copy)]
pub enum WindowStart {
    /// At this time (`--since`).
    Since(DateTime<Utc>),
    /// At the stored cursor minus `overlap`, else where the last `full` began.
    Cursor {
        /// How far before the cursor the window starts (`[engage] changes_overlap`).
        overlap: Duration,
    },
}

/// How [`pull_changes`] runs.
#[derive(Debug, Clone, Copy)]
pub struct PullOptions {
    /// Where the window starts.
    pub start: WindowStart,
    /// Apply everything and roll it back; the cursor stays (`--dry-run`).
    pub dry_run: bool,
    /// Whether progress shows (not for `-q` or `--json`).
    pub show_progress: bool,
    /// Default country for phone numbers.
    pub country: Country,
}

/// What a pull did (so far, if it failed).
#[derive(Debug, Default)]
pub struct Pulled {
    /// The window, RFC 3339.
    pub from: String,
    /// The window's end, RFC 3339: the cursor's new place.
    pub to: String,
    /// Ids in the Created feed.
    pub created_ids: u64,
    /// Ids in the Updated feed.
    pub updated_ids: u64,
    /// Ids in the Deleted feed.
    pub deleted_ids: u64,
    /// What applying did.
    pub counts: ApplyCounts,
    /// Whether the cursor moved to `to`.
    pub cursor_advanced: bool,
    /// Each contact's fate, in a dry run.
    pub actions: Vec<Action>,
}

/// The ids a window lists, by feed.
struct Listed {
    /// Created or updated: fetched.
    fetch: BTreeSet<String>,
    deleted: Vec<String>,
}

/// Pulls the changes of the window from Engage into `replica`: fetched contacts are applied in
/// short transactions of their own (the write lock is never held while Engage is being waited
/// for), then the deletes not fetched and the cursor in one transaction. A fetch that failed
/// leaves the cursor where it was, so the next run tries the window again.
pub fn pull_changes(
    client: &EngageClient,
    replica: &mut Replica,
    opts: &PullOptions,
    pulled: &mut Pulled,
) -> anyhow::Result<()> {
    let from = window_start(replica, opts.start)?;
    let to = Utc::now();
    pulled.from = from.to_rfc3339_opts(SecondsFormat::Millis, true);
    pulled.to = to.to_rfc3339_opts(SecondsFormat::Millis, true);
    let progress = ItemProgress::start("changes", opts.show_progress);
    let listed = list(client, from, to, &progress, pulled)?;
    progress.set_total(listed.fetch.len() as u64);
    progress.phase("fetching contacts");
    let apply = ApplyOptions {
        shape: RowShape {
            mode: replica.mode(),
            country: opts.country,
        },
        dry_run: opts.dry_run,
        from_build_queue: false,
        progress: Some(&progress),
    };
    let actions = opts.dry_run.then_some(&mut pulled.actions);
    let ids = listed.fetch.iter().cloned();
    let failed = fetch_and_apply(client, replica, ids, &apply, &mut pulled.counts, actions)?;
    drop(progress);
    finish(replica, &listed, failed, opts.dry_run, pulled)
}

/// Lists the window's created, updated and deleted ids.
fn list(
    client: &EngageClient,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    progress: &ItemProgress,
    pulled: &mut Pulled,
) -> anyhow::Result<Listed> {
    progress.phase("listing changed contacts");
    let created = client.changes_all(ChangeType::Created, from, to)?;
    let updated = client.changes_all(ChangeType::Updated, from, to)?;
    let deleted = client.changes_all(ChangeType::Deleted, from, to)?;
    crate::failpoint::hit("changes.listed");
    pulled.created_ids = created.len() as u64;
    pulled.updated_ids = updated.len() as u64;
    pulled.deleted_ids = deleted.len() as u64;
    let fetch = created.into_iter().chain(updated).collect();
    Ok(Listed { fetch, deleted })
}

/// Where this pull starts: --since, else the cursor minus the overlap, else where the last
/// `full` began.
fn window_start(replica: &Replica, start: WindowStart) -> anyhow::Result<DateTime<Utc>> {
    let overlap = match start {
        WindowStart::Since(since) => return Ok(since),
        WindowStart::Cursor { overlap } => overlap,
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

/// In one transaction (rolled back in a dry run): the deleted ids that were not fetched
/// become tombstones (a fetched one was decided by its GET), and the cursor advances unless a
/// fetch failed.
fn finish(
    replica: &mut Replica,
    listed: &Listed,
    failed: Option<EngageError>,
    dry_run: bool,
    pulled: &mut Pulled,
) -> anyhow::Result<()> {
    let tx = replica
        .conn()
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let result = tombstone_and_advance(&tx, listed, failed, dry_run, pulled);
    if dry_run {
        tx.rollback()?;
    } else {
        // Committed also when a fetch failed: the tombstones stand, the cursor stays.
        if result.is_ok() {
            crate::failpoint::hit("changes.before_cursor_commit");
        }
        tx.commit()?;
        if result.is_ok() {
            crate::failpoint::hit("changes.after_cursor_commit");
        }
    }
    result
}

/// The inside of [`finish`]'s transaction.
fn tombstone_and_advance(
    conn: &Connection,
    listed: &Listed,
    failed: Option<EngageError>,
    dry_run: bool,
    pulled: &mut Pulled,
) -> anyhow::Result<()> {
    let mut writer = ContactWriter::new(conn, now_rfc3339())?;
    for id in listed
        .deleted
        .iter()
        .filter(|id| !listed.fetch.contains(*id))
    {
        let outcome = writer.delete(id, Utc::now().timestamp_millis())?;
        pulled.counts.add(outcome);
        if dry_run {
            pulled.actions.push(Action {
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
            pulled.counts.failed
        ))),
        None => {
            set_cursor(conn, CURSOR, &pulled.to)?;
            pulled.cursor_advanced = !dry_run;
            Ok(())
        }
    }
}
