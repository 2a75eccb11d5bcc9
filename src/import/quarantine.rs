//! Refusing an export file: recorded in the ledger and moved to the quarantine folder, so the
//! next run does not stumble over it again (docs/contract.md §4).

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::fsutil::{free_path_in, move_to};
use crate::replica::folders::{self, FolderKind};
use crate::replica::{ledger, Replica};
use crate::time::now_rfc3339;

/// A file an import refused, as its summary lists it.
#[derive(Debug, Serialize)]
pub struct RefusedFile {
    /// The file.
    pub file: String,
    /// Why it was refused.
    pub error: String,
    /// Where it was moved (not in a dry run).
    pub quarantined_to: Option<String>,
}

/// What happens to a refused file.
#[derive(Debug, Clone, Copy)]
pub enum Refusal<'a> {
    /// Recorded and moved into this quarantine folder.
    MoveTo(&'a Path),
    /// Left where it is (`--dry-run`).
    DryRun,
}

/// Refuses the file at `path` for `err` (see [`Refusal`]), and returns it as the summary lists
/// it plus the error that decides the exit code.
pub fn refuse_file(
    replica: &mut Replica,
    path: &Path,
    err: anyhow::Error,
    refusal: Refusal<'_>,
) -> anyhow::Result<(RefusedFile, anyhow::Error)> {
    let reason = format!("{err:#}");
    let moved_to = match refusal {
        Refusal::DryRun => None,
        Refusal::MoveTo(quarantine) => {
            Some(move_to_quarantine(replica, path, quarantine, &reason)?)
        }
    };
    let what = match &moved_to {
        Some(t) => format!(
            "nothing of it was applied; it was moved to {} (fix or re-export it, then put it \
             back in the inbox)",
            t.display()
        ),
        None => "nothing of it would be applied (dry run: not moved)".to_string(),
    };
    let err = err.context(format!("{} was refused; {what}", path.display()));
    Ok((
        RefusedFile {
            file: path.display().to_string(),
            error: reason,
            quarantined_to: moved_to.map(|t| t.display().to_string()),
        },
        err,
    ))
}

/// Records the refusal in the ledger, then moves the file; returns where it went.
fn move_to_quarantine(
    replica: &mut Replica,
    path: &Path,
    quarantine: &Path,
    reason: &str,
) -> anyhow::Result<PathBuf> {
    let cannot_move = || format!("{reason}; and the file could not be moved to quarantine");
    let target = free_path_in(path, quarantine).with_context(cannot_move)?;
    let now = now_rfc3339();
    folders::record(replica.conn(), quarantine, FolderKind::Quarantine, &now)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    // Recorded before the move: a crash between the two leaves the file in the inbox, to be
    // refused (and recorded) again by the next run, never in quarantine without a record.
    ledger::insert_quarantined(
        replica.conn(),
        &name,
        Some(&target.display().to_string()),
        reason,
        &now_rfc3339(),
    )?;
    crate::failpoint::hit("delta.quarantined");
    move_to(path, &target).with_context(cannot_move)?;
    Ok(target)
}
