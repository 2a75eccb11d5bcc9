//! `engage-sync push-local`: delivers the outboxes to Engage (docs/contract.md §2, §6). The logic
//! is in [`crate::outbox::push`]; this module takes the push lock, builds the client, records the
//! run and prints the summary.
//!
//! The lock is `<db>.push.lock`, not the writer lock: a push may take long (receipts go one
//! request each at the rate limit), and neither the till commands nor `delta`/`changes` must
//! wait for it. Two pushes never run at once. A push writes only the till store (in short
//! transactions, which till writes wait for at most milliseconds) and reads the replica, so
//! it runs beside any sync job, and its runs are recorded in the till store.

use std::time::Instant;

use super::engage_setup::engage_client;
use super::{print_json, print_lines, Ctx};
use crate::cli::PushLocalArgs;
use crate::error::ExitCode;
use crate::lock;
use crate::outbox::push::{plan, push, PushOptions, PushSummary};
use crate::outbox::{local, OutboxError};

/// Pushes, records the run, prints the summary.
pub fn run(ctx: &Ctx, args: &PushLocalArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let s = &ctx.settings;
    if args.write.dry_run {
        return dry_run(ctx, started);
    }
    crate::db_owner::check_before_lock(&s.db)?;
    let _lock = lock::acquire_push(&s.db, "push-local", args.write.wait)?;
    let mut store = super::contact::open(ctx)?;
    let deadline = args.deadline.map(|d| started + d);
    let client = engage_client(ctx, deadline)?;
    let run_log = store.start_run("push-local")?;
    let opts = PushOptions {
        retry_rejected: args.retry_rejected,
        deadline,
        progress: !ctx.json && ctx.verbosity >= 0,
    };
    let (summary, result) = push(&mut store, &client, &s.local, opts);
    let result = result.and_then(|()| verdict(&summary));
    // The till's rows of contacts the replica has overtaken (or Engage deleted) are no longer
    // seen by anyone: drop them, so no personal data is kept twice.
    // Best effort: the next push or purge does it if this one cannot.
    match store.write(true, |tx| Ok(local::prune_overtaken(tx, true)?)) {
        Ok(pruned) => tracing::debug!(pruned, "till rows overtaken by the replica removed"),
        Err(e) => tracing::warn!("cannot remove the till rows the replica overtook: {e:#}"),
    }
    let counts = serde_json::json!({
        "contacts_created": summary.contacts_created,
        "contacts_linked_existing": summary.contacts_linked_existing,
        "contacts_created_or_linked": summary.contacts_created_or_linked,
        "contacts_updated": summary.contacts_updated,
        "contacts_rejected": summary.contacts_rejected,
        "receipts_delivered": summary.receipts_delivered + summary.receipts_duplicate,
        "receipts_rejected": summary.receipts_rejected,
        "contacts_left": summary.contacts_left,
        "receipts_left": summary.receipts_left,
    });
    store.finish_run(run_log, &super::exit::run_outcome(&result), &counts)?;
    match store.checkpoint() {
        Ok(true) => {}
        Ok(false) => tracing::debug!("a reader kept the till store's WAL from being truncated"),
        Err(e) => tracing::warn!("cannot truncate the till store's WAL: {e:#}"),
    }
    if ctx.prints_summary(result.is_ok(), false) {
        print_summary(ctx, &summary)?;
    }
    result.map(|()| ExitCode::Ok)
}

/// The run's exit: 65 when Engage rejected items in it, 75 when items are left, else 0.
fn verdict(s: &PushSummary) -> anyhow::Result<()> {
    if s.rejected_count() > 0 {
        return Err(OutboxError::Rejected {
            count: s.rejected_count(),
        }
        .into());
    }
    let left = s.contacts_left + s.receipts_left;
    if left > 0 {
        let detail = match &s.stopped {
            Some(why) => format!("the run stopped: {why}"),
            None => format!(
                "{} contact item(s), {} receipt(s); see `waiting` for why",
                s.contacts_left, s.receipts_left
            ),
        };
        return Err(OutboxError::Incomplete { left, detail }.into());
    }
    Ok(())
}

/// Reports what a push would do, from the till store and the replica alone.
fn dry_run(ctx: &Ctx, started: Instant) -> anyhow::Result<ExitCode> {
    let s = &ctx.settings;
    let mut store = super::contact::open(ctx)?;
    let items = plan(&mut store, &s.local)?;
    let summary = PushSummary {
        dry_run: true,
        contacts_left: items.iter().filter(|i| i.kind == "contact").count() as u64,
        receipts_left: items.iter().filter(|i| i.kind == "receipt").count() as u64,
        elapsed_seconds: started.elapsed().as_secs_f64(),
        items,
        ..PushSummary::default()
    };
    print_summary(ctx, &summary)?;
    Ok(ExitCode::Ok)
}

fn print_summary(ctx: &Ctx, s: &PushSummary) -> anyhow::Result<()> {
    if ctx.json {
        return print_json(s);
    }
    if s.dry_run {
        let mut lines: Vec<String> = s
            .items
            .iter()
            .map(|i| format!("{} {} {}: {}", i.kind, i.op, i.item, i.action))
            .collect();
        lines.push(format!(
            "push-local (dry run: Engage not contacted, nothing written): {} contact item(s), {} \
             receipt(s) queued",
            s.contacts_left, s.receipts_left
        ));
        return print_lines(lines);
    }
    let r = &s.requests;
    // Shown only when some are: it happens only without lookups before create.
    let unclear = match s.contacts_created_or_linked {
        0 => String::new(),
        n => format!(" {n} created or linked (Engage's answers do not say which),"),
    };
    let mut lines = vec![
        format!(
            "push-local: contacts: {} created, {} linked to existing,{unclear} {} updated, {} \
             rejected, {} dropped; receipts: {} delivered ({} already in Engage), {} rejected",
            s.contacts_created,
            s.contacts_linked_existing,
            s.contacts_updated,
            s.contacts_rejected,
            s.contacts_dropped,
            s.receipts_delivered + s.receipts_duplicate,
            s.receipts_duplicate,
            s.receipts_rejected
        ),
        format!(
            "requests: {} bulk create, {} bulk update, {} status polls, {} lookups, {} contact \
             reads, {} receipt posts ({} sent, retries included) in {:.1} s",
            r.bulk_creates,
            r.bulk_updates,
            r.status_polls,
            r.lookups,
            r.contact_gets,
            r.receipt_posts,
            r.sent,
            s.elapsed_seconds
        ),
        format!(
            "left for the next run: {} contact item(s), {} receipt(s)",
            s.contacts_left, s.receipts_left
        ),
    ];
    if s.retried_rejected > 0 {
        lines.push(format!(
            "queued again (--retry-rejected): {}",
            s.retried_rejected
        ));
    }
    for (label, notes) in [
        ("rejected", &s.rejected),
        ("dropped", &s.dropped),
        ("waiting", &s.waiting),
    ] {
        for n in notes {
            lines.push(format!("{label}: {} {}: {}", n.kind, n.item, n.reason));
        }
    }
    if let Some(why) = &s.stopped {
        lines.push(format!("stopped early: {why}"));
    }
    print_lines(lines)
}
