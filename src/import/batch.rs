//! Several export files per transaction (see [`Importer`]).

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{apply_file, FileReport};
use crate::config::Settings;
use crate::export_xml::ExportFileName;
use crate::fsutil::move_into;
use crate::progress::Progress;
use crate::replica::Replica;

/// Contacts per transaction: big enough to amortise commits, small enough that a crash
/// redoes a few seconds of work and readers see progress.
const BATCH_MEMBERS: u64 = 100_000;

/// Applies export files several per transaction, so a large import does not pay a commit and
/// a WAL checkpoint per file (the checkpoint rewrites every page the file touched). Each file
/// is still all-or-nothing with its ledger row: when a file fails, the transaction is rolled
/// back and the files before it are applied again (they were fine), so readers only ever see
/// whole files. In a dry run the one transaction is rolled back at the end instead of
/// committed. Applied files are moved to the archive folder once they are committed.
pub struct Importer {
    dry_run: bool,
    archive: Option<PathBuf>,
    open: bool,
    members: u64,
    /// Files applied in the open transaction, in order.
    applied: Vec<(ExportFileName, PathBuf)>,
    warnings: Vec<String>,
}

impl Importer {
    /// An importer; `archive` is where committed files go, if anywhere.
    pub fn new(dry_run: bool, archive: Option<PathBuf>) -> Importer {
        Importer {
            dry_run,
            archive,
            open: false,
            members: 0,
            applied: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Applies one file. On error, nothing of the file stays applied, the files before it are
    /// committed, and the error is returned.
    pub fn apply(
        &mut self,
        replica: &mut Replica,
        name: &ExportFileName,
        path: &Path,
        settings: &Settings,
        progress: &Progress,
    ) -> anyhow::Result<FileReport> {
        self.begin(replica)?;
        match apply_file(replica, name, path, settings, self.dry_run, progress) {
            Ok(report) => {
                self.members += report.ledger.members;
                self.applied.push((name.clone(), path.to_path_buf()));
                crate::failpoint::hit("import.file_applied");
                if self.members >= BATCH_MEMBERS {
                    self.commit(replica)?;
                }
                Ok(report)
            }
            Err(e) => {
                self.rollback_and_replay(replica, settings)?;
                self.commit(replica)?;
                Err(e)
            }
        }
    }

    /// Commits what is applied (or, in a dry run, rolls everything back).
    pub fn finish(&mut self, replica: &mut Replica) -> anyhow::Result<()> {
        if self.dry_run {
            if self.open {
                replica.conn().execute_batch("ROLLBACK")?;
                self.open = false;
            }
            return Ok(());
        }
        self.commit(replica)
    }

    /// Warnings collected so far (files applied but not archived).
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn begin(&mut self, replica: &mut Replica) -> anyhow::Result<()> {
        if !self.open {
            replica.conn().execute_batch("BEGIN IMMEDIATE")?;
            self.open = true;
        }
        Ok(())
    }

    /// Rolls the open transaction back and applies its good files again in a new one.
    fn rollback_and_replay(&mut self, replica: &mut Replica, s: &Settings) -> anyhow::Result<()> {
        if !self.open {
            return Ok(());
        }
        replica.conn().execute_batch("ROLLBACK")?;
        replica.conn().execute_batch("BEGIN IMMEDIATE")?;
        let hidden = Progress::hidden();
        for (name, path) in &self.applied {
            apply_file(replica, name, path, s, false, &hidden).with_context(|| {
                format!("{} applied once but not when applied again", path.display())
            })?;
        }
        Ok(())
    }

    /// Commits the open transaction (not in a dry run), then archives its files: a file is
    /// moved only once its contacts are durable.
    fn commit(&mut self, replica: &mut Replica) -> anyhow::Result<()> {
        if !self.open || self.dry_run {
            return Ok(());
        }
        crate::failpoint::hit("import.before_commit");
        replica
            .conn()
            .execute_batch("COMMIT")
            .context("cannot commit the applied files to the replica")?;
        crate::failpoint::hit("import.after_commit");
        self.open = false;
        self.members = 0;
        for (_, path) in self.applied.drain(..) {
            let Some(archive) = &self.archive else {
                continue;
            };
            if let Err(e) = move_into(&path, archive) {
                let msg = format!("{} was applied but not archived: {e:#}", path.display());
                tracing::warn!("{msg}");
                self.warnings.push(msg);
            }
            crate::failpoint::hit("import.after_archive");
        }
        Ok(())
    }
}
