//! `engage-sync purge --older-than 30d`: GDPR hygiene (docs/contract.md §7). What is purged,
//! and how, is [`crate::purge`]'s; this takes the lock, opens, records the run and prints.

use super::{print_json, print_lines, Ctx};
use crate::cli::PurgeArgs;
use crate::error::ExitCode;
use crate::lock;
use crate::purge::{self, Cutoff, PurgeSummary};
use crate::till_store::TillStore;

/// Purges, then prints counts (never the data).
pub fn run(ctx: &Ctx, args: &PurgeArgs) -> anyhow::Result<ExitCode> {
    let s = &ctx.settings;
    let cutoff = Cutoff::older_than(args.older_than)?;
    crate::db_owner::check_before_lock(&s.db)?;
    let _lock = lock::acquire(&s.db, "purge", args.write.wait)?;
    let mut replica = ctx.open_writer()?;
    let mut till = TillStore::open(&s.db, s.busy_timeout, replica.mode())?;
    let dry_run = args.write.dry_run;
    let run_log = (!dry_run).then(|| replica.start_run("purge")).transpose()?;
    let mut summary = PurgeSummary::new(args.older_than, &cutoff, dry_run);
    let result = purge::purge(&mut replica, &mut till, s, &cutoff, &mut summary);
    if let Some(run_log) = run_log {
        replica.finish_run(run_log, &super::exit::run_outcome(&result), summary.rows())?;
        // The run row itself is written after compaction; truncate the WAL once more so the
        // file set holds nothing older than this run.
        if result.is_ok() {
            replica.checkpoint()?;
        }
    }
    result?;
    if ctx.prints_summary(true, summary.dry_run()) {
        if ctx.json {
            print_json(&summary)?;
        } else {
            print_lines(purge::report::lines(&summary))?;
        }
    }
    Ok(ExitCode::Ok)
}
