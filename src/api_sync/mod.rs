//! Applying contacts fetched from Engage's API to the replica ([`fetch_and_apply`]): shared by
//! `changes` ([`pull_changes`]) and `full` from the API.

mod changes;
pub use changes::{pull_changes, PullOptions, Pulled, WindowStart};

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rusqlite::Connection;
use serde::Serialize;
use serde_json::Value;

use crate::config::Mode;
use crate::engage::{ApiContact, EngageClient, EngageError};
use crate::error::UsageError;
use crate::normalize::Country;
use crate::replica::{ApplyOutcome, ContactRow, ContactWriter, Replica};
use crate::time::now_rfc3339;

/// The `changes` cursor's name in `sync_cursor`.
pub const CURSOR: &str = "changes";
/// Meta key `full` sets: where the first `changes` starts.
pub const FULL_STARTED: &str = "full_started_at";

/// Fetched contacts applied per transaction: a crash loses at most this much work (10 s of
/// fetching at 50 requests/s), and readers see progress. A commit costs a few ms, so
/// committing more often than this would not show; 2,000 lost 40 s of fetching to a crash.
const COMMIT_EVERY: usize = 500;

/// Fetched contacts are applied at the latest when the oldest of them has waited this long,
/// so a slow Engage does not keep readers (and a crash) from what has arrived.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// What applying fetched contacts did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ApplyCounts {
    /// Contacts fetched (found or gone).
    pub fetched: u64,
    /// Rows created.
    pub inserted: u64,
    /// Rows replaced.
    pub updated: u64,
    /// Contacts deleted (gone in Engage, or in the Deleted feed).
    pub deleted: u64,
    /// Skipped: the replica had newer data.
    pub stale: u64,
    /// Fetches that failed (the run reports the first and does not advance its cursor).
    pub failed: u64,
    /// Mobile numbers kept as Engage sent them (not readable as phone numbers).
    pub phones_as_sent: u64,
}

impl ApplyCounts {
    /// Adds the counts of a batch that was applied: what it fetched and the outcomes. A batch
    /// never counts failures or phones kept as sent; those are counted as the answers arrive.
    fn absorb(&mut self, other: &ApplyCounts) {
        self.fetched += other.fetched;
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.stale += other.stale;
    }

    /// Counts one outcome.
    pub fn add(&mut self, outcome: ApplyOutcome) {
        match outcome {
            ApplyOutcome::Inserted => self.inserted += 1,
            ApplyOutcome::Updated => self.updated += 1,
            ApplyOutcome::Deleted => self.deleted += 1,
            ApplyOutcome::Stale => self.stale += 1,
        }
    }
}

/// One contact's fate in a dry run.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    /// Engage contact id.
    pub contact_id: String,
    /// insert, update, delete, skip (stale).
    pub action: &'static str,
}

/// How fetched contacts are turned into rows.
#[derive(Debug, Clone, Copy)]
pub struct RowShape {
    /// The replica's mode.
    pub mode: Mode,
    /// Default country for phone numbers.
    pub country: Country,
}

/// The replica row for a contact from the API. Its version is the time it was fetched.
pub fn row_from_api(contact: ApiContact, shape: RowShape) -> ContactRow {
    let mut fields: Vec<(String, Value)> = contact.attributes.into_iter().collect();
    if let Some(t) = contact.contact_type {
        fields.retain(|(k, _)| k != "contactType");
        fields.push(("contactType".into(), Value::String(t)));
    }
    ContactRow::from_fields(contact.id, fields, shape.mode, shape.country)
}

/// How [`fetch_and_apply`] writes what it fetched.
#[derive(Clone, Copy)]
pub struct ApplyOptions<'a> {
    /// How fetched contacts are turned into rows.
    pub shape: RowShape,
    /// Apply each batch and roll it back (`--dry-run`).
    pub dry_run: bool,
    /// Take each id off an API build's queue of ids to fetch, in the same transaction as its
    /// data (`full` from the API), so that a resumed build fetches only what is left.
    pub from_build_queue: bool,
    /// Counts each contact fetched.
    pub progress: Option<&'a crate::progress::ItemProgress>,
}

/// Fetches `ids` and applies the answers: a found contact is upserted with its fetch time as
/// its version, a 404 (deleted since it was listed) becomes a delete (see [`ApplyOptions`]).
///
/// The replica's write lock is never held while Engage is being waited for: a till write
/// (`contact add`, `receipt add`) must not fail because Engage is slow. Answers are collected
/// and applied in short transactions of at most `COMMIT_EVERY` contacts, at the latest
/// `MAX_WAIT` after the first of them arrived. The caller must not have a transaction
/// open. A dry run applies each batch and rolls it back: every id is fetched once, so no
/// batch depends on an earlier one.
///
/// A fetch that fails without ending the run is counted and its error returned after the
/// rest are applied; an error that ends the run (deadline, auth, unreachable) is returned
/// after what has arrived so far is applied.
pub fn fetch_and_apply(
    client: &EngageClient,
    replica: &Replica,
    ids: impl IntoIterator<Item = String>,
    opts: &ApplyOptions<'_>,
    counts: &mut ApplyCounts,
    mut actions: Option<&mut Vec<Action>>,
) -> anyhow::Result<Option<EngageError>> {
    let mut batch = Arrived::default();
    let mut first_error: Option<EngageError> = None;
    let mut db_error: Option<anyhow::Error> = None;
    let target = Target {
        conn: replica.conn_ref(),
        dry_run: opts.dry_run,
        pending: opts.from_build_queue,
    };
    let fetch = client.get_contacts(ids, |id, result| {
        let version = Utc::now().timestamp_millis();
        if let Some(p) = opts.progress {
            p.inc(1);
        }
        let row = match result {
            Ok(found) => {
                let row = found.map(|contact| row_from_api(contact, opts.shape));
                if row.as_ref().is_some_and(|r| r.phone_as_sent) {
                    counts.phones_as_sent += 1;
                }
                row
            }
            Err(e) => {
                counts.failed += 1;
                tracing::warn!("fetching contact {id} failed: {e}");
                first_error.get_or_insert(e);
                return ControlFlow::Continue(());
            }
        };
        batch.push(id, row, version);
        if !batch.due() {
            return ControlFlow::Continue(());
        }
        match target.apply(&mut batch, counts, actions.as_deref_mut()) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                db_error = Some(e);
                ControlFlow::Break(())
            }
        }
    });
    if let Some(e) = db_error {
        return Err(e);
    }
    target.apply(&mut batch, counts, actions)?;
    fetch?;
    Ok(first_error)
}

/// Answers fetched and not yet applied: (contact id, row or `None` for gone, version).
#[derive(Default)]
struct Arrived {
    items: Vec<(String, Option<ContactRow>, i64)>,
    since: Option<Instant>,
}

impl Arrived {
    fn push(&mut self, id: String, row: Option<ContactRow>, version: i64) {
        self.since.get_or_insert_with(Instant::now);
        self.items.push((id, row, version));
    }

    /// Whether the batch is to be applied now (see [`fetch_and_apply`]).
    fn due(&self) -> bool {
        self.items.len() >= COMMIT_EVERY || self.since.is_some_and(|t| t.elapsed() >= MAX_WAIT)
    }
}

/// Where [`fetch_and_apply`] writes.
struct Target<'c> {
    conn: &'c Connection,
    dry_run: bool,
    pending: bool,
}

impl Target<'_> {
    /// Applies `batch` in one transaction (rolled back in a dry run) and empties it.
    fn apply(
        &self,
        batch: &mut Arrived,
        counts: &mut ApplyCounts,
        actions: Option<&mut Vec<Action>>,
    ) -> anyhow::Result<()> {
        if batch.items.is_empty() {
            return Ok(());
        }
        let items = std::mem::take(&mut batch.items);
        batch.since = None;
        let tx = rusqlite::Transaction::new_unchecked(
            self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        let mut batch_counts = ApplyCounts::default();
        let mut batch_actions = Vec::new();
        {
            let mut writer = ContactWriter::new(&tx, now_rfc3339())?;
            for (id, row, version) in items {
                let outcome = match row {
                    Some(row) => writer.upsert(&row, version)?,
                    None => writer.delete(&id, version)?,
                };
                batch_counts.fetched += 1;
                batch_counts.add(outcome);
                if self.pending {
                    writer.done_pending(&id)?;
                }
                if actions.is_some() {
                    batch_actions.push(Action {
                        contact_id: id,
                        action: outcome.as_str(),
                    });
                }
            }
        }
        if self.dry_run {
            tx.rollback()?;
        } else {
            tx.commit().context("cannot commit fetched contacts")?;
            crate::failpoint::hit("fetch.page_committed");
        }
        counts.absorb(&batch_counts);
        if let Some(actions) = actions {
            actions.extend(batch_actions);
        }
        Ok(())
    }
}

/// A `--since` argument, parsed ([`parse_since`]); a usage error (exit 64) names the value.
pub fn parse_since_arg(value: &str) -> anyhow::Result<DateTime<Utc>> {
    parse_since(value).ok_or_else(|| {
        UsageError(format!(
            "--since {value:?} is not a date like 2026-11-01 or 2026-11-01T08:00:00Z"
        ))
        .into()
    })
}

/// Parses a `--since` value: `2026-11-01`, `2026-11-01 08:00:00`, or RFC 3339 with an offset.
/// Dates and times without an offset are UTC. The year must have four digits: chrono alone
/// reads `26-11-01` as the year 26, and a changes window from then would fetch everything.
pub fn parse_since(s: &str) -> Option<DateTime<Utc>> {
    let t = s.trim();
    let b = t.as_bytes();
    if b.len() < 10 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
            return Some(n.and_utc());
        }
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_dates_times_and_offsets() {
        let utc = |s: &str| parse_since(s).map(|d| d.to_rfc3339());
        assert_eq!(
            utc("2026-11-01").as_deref(),
            Some("2026-11-01T00:00:00+00:00")
        );
        assert_eq!(
            utc("2026-11-01 08:30:00").as_deref(),
            Some("2026-11-01T08:30:00+00:00")
        );
        assert_eq!(
            utc("2026-11-01T08:30:00+01:00").as_deref(),
            Some("2026-11-01T07:30:00+00:00")
        );
        assert_eq!(parse_since("yesterday"), None);
        for short_year in ["26-11-01", "026-11-01", "26-11-01 08:00:00", "2026"] {
            assert_eq!(parse_since(short_year), None, "{short_year}");
        }
        // Signed or padded years that chrono would read (as year -26, or 12026): a window
        // from then would fetch everything. Four digits then '-', each checked alone.
        for odd_year in [
            "-026-11-01",
            "+026-11-01",
            "-0026-11-01",
            "+2026-11-01",
            "12026-11-01",
        ] {
            assert_eq!(parse_since(odd_year), None, "{odd_year}");
        }
        assert_eq!(
            utc(" 2026-11-01 ").as_deref(),
            Some("2026-11-01T00:00:00+00:00")
        );
    }
}
