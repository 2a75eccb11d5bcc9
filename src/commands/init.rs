//! `engage-sync init`: create or migrate the replica.

use serde::Serialize;

use super::{print_json, print_lines, Ctx};
use crate::cli::InitArgs;
use crate::config::Mode;
use crate::error::ExitCode;
use crate::lock;
use crate::replica::{Replica, ReplicaError, DEFAULT_MODE};

#[derive(Serialize)]
struct InitSummary {
    db: String,
    mode: &'static str,
    action: &'static str,
    dry_run: bool,
}

/// Creates the replica in the requested mode, or checks and migrates an existing one.
pub fn run(ctx: &Ctx, args: &InitArgs) -> anyhow::Result<ExitCode> {
    let s = &ctx.settings;
    crate::db_owner::check_before_lock(&s.db)?;
    let _lock = lock::acquire(&s.db, "init", args.write.wait)?;
    let exists = s.db.exists();
    let (mode, action) = if args.write.dry_run {
        dry_run(ctx, exists)?
    } else {
        let replica = ctx.open_writer()?;
        let action = if exists { "up to date" } else { "created" };
        (replica.mode(), action)
    };
    let summary = InitSummary {
        db: s.db.display().to_string(),
        mode: mode.as_str(),
        action,
        dry_run: args.write.dry_run,
    };
    if ctx.json {
        print_json(&summary)?;
    } else if ctx.prints_summary(true, args.write.dry_run) {
        print_lines([format!(
            "replica {}: {} (mode {})",
            summary.db, summary.action, summary.mode
        )])?;
    }
    Ok(ExitCode::Ok)
}

/// What `init` would do, without writing: create, migrate, or nothing.
fn dry_run(ctx: &Ctx, exists: bool) -> anyhow::Result<(Mode, &'static str)> {
    let s = &ctx.settings;
    if !exists {
        return Ok((s.mode.unwrap_or(DEFAULT_MODE), "would be created"));
    }
    match Replica::open_reader(&s.db, s.busy_timeout) {
        Ok(replica) => {
            if let Some(requested) = s.mode.filter(|m| *m != replica.mode()) {
                return Err(ReplicaError::ModeMismatch {
                    db: s.db.clone(),
                    stored: replica.mode().as_str(),
                    requested: requested.as_str(),
                }
                .into());
            }
            let action = if replica.behind_current_schema()? {
                "would be migrated"
            } else {
                "up to date"
            };
            Ok((replica.mode(), action))
        }
        Err(e) => match e.downcast_ref::<ReplicaError>() {
            Some(ReplicaError::OlderSchema { .. }) => {
                Ok((s.mode.unwrap_or(DEFAULT_MODE), "would be migrated"))
            }
            _ => Err(e),
        },
    }
}
