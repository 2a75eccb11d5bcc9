//! `engage-sync status [--check --max-age 2h]`: freshness for the till and for monitoring. The
//! report and the check are [`crate::status`]'s; this parses, opens and prints.

use super::{print_json, print_lines, Ctx};
use crate::cli::StatusArgs;
use crate::error::ExitCode;
use crate::replica::Replica;
use crate::status::{self, check};

/// Prints the status; with `--check`, exits 75 when stale.
pub fn run(ctx: &Ctx, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let mut replica = Replica::open_reader(&ctx.settings.db, ctx.settings.busy_timeout)?;
    let mut report = status::report(&mut replica, &ctx.settings.db)?;
    let code = if args.check {
        let limits = check::Limits {
            max_age: args.max_age,
            max_pending_age: args.max_pending_age,
        };
        check::check(&mut report, limits)
    } else {
        ExitCode::Ok
    };
    if ctx.json {
        print_json(&report)?;
    } else if let Some(line) = check::verdict_line(&report, code) {
        print_lines([line])?;
    } else {
        print_lines(status::human::lines(&report))?;
    }
    Ok(code)
}
