//! Handing the replica over from one generation to the next without losing a till write.
//!
//! `full` swaps a newly built generation in (see [`super::generation`]) after merging the
//! live replica's newer state into it. Till commands (`contact`, `receipt`) never take the
//! writer lock, so without care a till write could commit into the old generation after the
//! merge read it, or between the swap and the removal of the old files, and vanish with them.
//! Two halves close that gap:
//! - `full` holds the old generation's SQLite write lock ([`WriteHold`]) from before its merge
//!   until the swap is done. A till write either commits before the merge reads (and is merged)
//!   or waits, up to its busy timeout, until the swap is over.
//! - A till write, once it holds the write lock, checks that its file is still the one the
//!   replica path leads to ([`Replica::write_current`]). If `full` swapped meanwhile, it rolls
//!   back, opens the new generation and starts again there.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rusqlite::{Transaction, TransactionBehavior};

use super::{Replica, ReplicaError};
use crate::config::Mode;

/// How often a till write follows a swap before it gives up. One is the normal case (a `full`
/// finished while it waited); more means swaps in quick succession.
const ATTEMPTS: usize = 3;

/// The live replica's write lock, held by `full` from before its merge until after its swap.
/// Dropping it releases the lock (the transaction never wrote anything and is rolled back).
#[derive(Debug)]
pub struct WriteHold {
    replica: Replica,
}

impl WriteHold {
    /// Takes the write lock of the replica at `db` (its current generation), waiting up to
    /// `busy_timeout` for a till write in progress to finish. A replica that does not exist
    /// yet is created first (in `mode`), so that none can appear before the swap and be
    /// replaced by it: a till may create one while a first `full` builds.
    pub fn take(db: &Path, mode: Mode, busy_timeout: Duration) -> anyhow::Result<WriteHold> {
        let replica = Replica::open_writer(db, None, mode, busy_timeout)?;
        replica
            .conn
            .execute_batch("BEGIN IMMEDIATE")
            .with_context(|| {
                format!(
                "cannot hold till writes off the replica {} for the swap: a write kept it busy \
                 longer than busy_timeout; nothing was swapped, run `full` again (the build is \
                 kept and only merged again)",
                db.display()
            )
            })?;
        Ok(WriteHold { replica })
    }
}

impl Drop for WriteHold {
    fn drop(&mut self) {
        if let Err(e) = self.replica.conn.execute_batch("ROLLBACK") {
            tracing::warn!("cannot release the previous replica's write lock: {e}");
        }
    }
}

impl Replica {
    /// Runs `f` in one IMMEDIATE transaction on the replica's current generation, then commits
    /// (or, when `commit` is false, as in a dry run, rolls back). If a `full` swapped a new
    /// generation in while this write waited for the lock, the write is started again on the
    /// new one, so it is never left behind in a replica nobody reads.
    pub fn write_current<T>(
        &mut self,
        commit: bool,
        f: impl FnOnce(&Transaction<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut attempt = 1;
        loop {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            if is_current(&self.path, self.file.as_deref()) {
                let value = f(&tx)?;
                if commit {
                    tx.commit()?;
                } else {
                    tx.rollback()?;
                }
                return Ok(value);
            }
            drop(tx);
            if attempt == ATTEMPTS {
                return Err(ReplicaError::Replaced {
                    db: self.path.clone(),
                }
                .into());
            }
            attempt += 1;
            tracing::info!(
                replica = %self.path.display(),
                "the replica was replaced by `full` while this write waited; writing to the new one"
            );
            let fresh =
                Replica::open_writer(&self.path, Some(self.mode), self.mode, self.busy_timeout)?;
            *self = fresh;
        }
    }
}

/// Whether `path` still leads to `file` (the file opened). Unknown (`None`: the path could not
/// be resolved when it was opened) counts as current: there is nothing to compare.
fn is_current(path: &Path, file: Option<&Path>) -> bool {
    let Some(file) = file else {
        return true;
    };
    std::fs::canonicalize(path).is_ok_and(|now: PathBuf| now == file)
}
