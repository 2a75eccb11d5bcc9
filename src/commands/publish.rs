//! `engage-sync publish --to DIR [--snapshot]`: a hub's changes as export files for the
//! stores (issue 21; the work is in `crate::publish`).

use std::time::Instant;

use super::{print_json, print_lines, Ctx};
use crate::cli::PublishArgs;
use crate::error::ExitCode;
use crate::lock;
use crate::publish::{publish, PublishOptions, PublishSummary};

/// Publishes, records the run, prints the summary.
pub fn run(ctx: &Ctx, args: &PublishArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let s = &ctx.settings;
    // A hub publishes what it has: the replica guard (`replica_guard`) refused a missing one.
    crate::db_owner::check_before_lock(&s.db)?;
    let _lock = lock::acquire(&s.db, "publish", args.write.wait)?;
    let mut replica = ctx.open_writer()?;
    let dry_run = args.write.dry_run;
    let run_log = (!dry_run)
        .then(|| replica.start_run("publish"))
        .transpose()?;
    let opts = PublishOptions {
        dir: args.to.clone(),
        snapshot: args.snapshot,
        name: args.name.clone(),
        per_file: usize::from(args.per_file),
        dry_run,
    };
    let mode = replica.mode();
    let result = publish(replica.conn(), mode, &opts).map(|mut summary| {
        summary.elapsed_seconds = started.elapsed().as_secs_f64();
        summary
    });
    if let Some(log) = run_log {
        let counts = result.as_ref().ok().cloned().unwrap_or_default();
        replica.finish_run(log, &super::exit::run_outcome(&result), &counts)?;
    }
    let summary = result?;
    if ctx.prints_summary(true, dry_run) {
        print_summary(ctx, &summary)?;
    }
    Ok(ExitCode::Ok)
}

fn print_summary(ctx: &Ctx, s: &PublishSummary) -> anyhow::Result<()> {
    if ctx.json {
        return print_json(s);
    }
    let mut lines = Vec::new();
    let verb = if s.dry_run {
        "would publish"
    } else {
        "published"
    };
    if s.recovered_files > 0 {
        lines.push(format!(
            "renamed {} file(s) of a publication an interrupted run had recorded",
            s.recovered_files
        ));
    }
    if s.removed_temporary_files > 0 {
        lines.push(format!(
            "removed {} temporary file(s) of an interrupted run (never published)",
            s.removed_temporary_files
        ));
    }
    match &s.stamp {
        None => lines.push(format!("nothing to publish to {} (no changes)", s.dir)),
        Some(stamp) => lines.push(format!(
            "{verb} {} {} (number {}, {stamp}): {} new, {} updated, {} deleted in {} file(s) \
             to {} ({:.1} s)",
            s.kind,
            if s.kind == "snapshot" {
                "of the whole replica"
            } else {
                "of the changes"
            },
            s.delta_number,
            s.new,
            s.updated,
            s.deleted,
            s.files.len(),
            s.dir,
            s.elapsed_seconds
        )),
    }
    if s.lossy.fields_skipped + s.lossy.characters_dropped > 0 {
        lines.push(format!(
            "left out what the export format cannot hold: {} field(s) (names that are not XML \
             names, nested arrays), {} control character(s)",
            s.lossy.fields_skipped, s.lossy.characters_dropped
        ));
    }
    print_lines(lines)
}
