//! Filling a build from Engage's API (`full` without `--from-xml`).

use chrono::{DateTime, SecondsFormat, Utc};

use super::{Filled, META_LISTED, META_STARTED};
use crate::api_sync::{fetch_and_apply, ApplyCounts, ApplyOptions, RowShape};
use crate::config::Settings;
use crate::engage::{ChangeType, EngageClient};
use crate::progress::ItemProgress;
use crate::replica::Replica;

/// Ids fetched per transaction in an API build (each removed from the queue with its data).
const API_BATCH: u32 = 5_000;

/// Builds from the API: lists every contact created or updated since `since` with the changes
/// feed (once; the list is kept in the build, so a resumed build does not list again), then
/// fetches what is left of the list. The build is as of the time it was begun, and the first
/// `changes` continues from the end of the listed window.
pub(super) fn fill_from_api(
    build: &mut Replica,
    client: &EngageClient,
    since: DateTime<Utc>,
    s: &Settings,
    show_progress: bool,
) -> anyhow::Result<Filled> {
    let progress = ItemProgress::start("full", show_progress);
    let listed_until = match build.meta(META_LISTED)? {
        Some(t) => t,
        None => list_contacts(build, client, since, &progress)?,
    };
    progress.set_total(build.pending_count()?.max(0) as u64);
    progress.phase("fetching contacts");
    let shape = RowShape {
        mode: build.mode(),
        country: s.default_country,
    };
    let mut filled = Filled::default();
    let fetched = fetch_pending(build, client, shape, &progress, &mut filled);
    drop(progress);
    fetched?;
    filled.snapshot = build
        .meta(META_STARTED)?
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map_or_else(|| Utc::now().timestamp_millis(), |t| t.timestamp_millis());
    filled.cursor = listed_until;
    Ok(filled)
}

/// Lists the contacts to fetch into the build's queue; returns the end of the listed window.
fn list_contacts(
    build: &mut Replica,
    client: &EngageClient,
    since: DateTime<Utc>,
    progress: &ItemProgress,
) -> anyhow::Result<String> {
    progress.phase("listing contacts");
    let to = Utc::now();
    let created = client.changes_all(ChangeType::Created, since, to)?;
    let updated = client.changes_all(ChangeType::Updated, since, to)?;
    let queued = build.queue_pending(created.iter().chain(updated.iter()))?;
    crate::failpoint::hit("full.api_listed");
    tracing::info!("full: {queued} contacts to fetch");
    let t = to.to_rfc3339_opts(SecondsFormat::Millis, true);
    build.set_meta(META_LISTED, &t)?;
    Ok(t)
}

/// Fetches the queued ids batch by batch, each taken off the queue with its data.
fn fetch_pending(
    build: &mut Replica,
    client: &EngageClient,
    shape: RowShape,
    progress: &ItemProgress,
    filled: &mut Filled,
) -> anyhow::Result<()> {
    loop {
        let ids = build.pending_batch(API_BATCH)?;
        if ids.is_empty() {
            return Ok(());
        }
        let mut counts = ApplyCounts::default();
        let opts = ApplyOptions {
            shape,
            dry_run: false,
            from_build_queue: true,
            progress: Some(progress),
        };
        let result = fetch_and_apply(client, build, ids, &opts, &mut counts, None);
        crate::failpoint::hit("full.api_batch");
        filled.members += counts.fetched;
        let stop = match result {
            Ok(None) => None,
            Ok(Some(e)) => Some(anyhow::Error::new(e).context(format!(
                "{} contact(s) could not be fetched; the build keeps what it has",
                counts.failed
            ))),
            Err(e) => Some(e),
        };
        if let Some(e) = stop {
            return Err(e.context(
                "the full build stopped; the current replica is unchanged and still in service. \
                 Run the same command again to resume the build",
            ));
        }
    }
}
