//! Loading a full export into a new build without its indexes (see [`BulkLoader`] and
//! `replica::bulk`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use rusqlite::Connection;

use super::ahead::{Lookahead, ParseAhead};
use super::sorted::SortedBatch;
use super::{
    check_ledger, count, locate, receive, FileReport, FileStatus, FileToRead, Ledger, Sink,
};
use crate::config::{Mode, Settings};
use crate::export_xml::ExportFileName;
use crate::progress::Progress;
use crate::replica::{ledger, FileLedgerRow, Replica};
use crate::time::now_rfc3339;

/// Contacts per transaction. A build has no readers, and its commits are not synced, so a
/// transaction only bounds what a crash makes the next run redo.
const TXN_MEMBERS: u64 = 200_000;

/// Appends export files to a build that is bulk loading (`Replica::begin_bulk`): every upsert
/// becomes a new row and every delete a record, with no index to maintain; the build resolves
/// both when it is finished (`Replica::finish_bulk`). Several files go in one transaction,
/// each in its own savepoint with its ledger row, so a file is all-or-nothing: a malformed
/// file is rolled back, the files before it are committed, and the error is returned.
///
/// A file's ledger row counts its upserts as `inserted` and its deletes as `deleted`: which
/// of them replaced an earlier row, lost to a newer one or found nothing to delete is only
/// known when the build is finished, and the build's summary reports that.
pub struct BulkLoader {
    open: bool,
    members: u64,
    /// Reports of the files in the open transaction (their ledger rows are written).
    pending: Vec<FileReport>,
    done: Vec<FileReport>,
    now: String,
    ahead: Option<ParseAhead>,
    /// The greatest contact row id so far: a delete records it, so that finishing knows
    /// which rows came before the delete.
    last_row: i64,
}

impl BulkLoader {
    /// A loader appending to `build`.
    pub fn new(build: &Replica) -> anyhow::Result<BulkLoader> {
        Ok(BulkLoader {
            open: false,
            members: 0,
            pending: Vec::new(),
            done: Vec::new(),
            now: String::new(),
            ahead: None,
            last_row: build.max_contact_row()?,
        })
    }

    /// Announces the files, in the order they will be given to [`apply`](Self::apply), so
    /// that each is parsed while the one before is written.
    pub fn parse_ahead(&mut self, paths: Vec<PathBuf>, settings: &Settings, mode: Mode) {
        self.ahead = Some(ParseAhead::start(
            paths,
            settings,
            mode,
            Lookahead::PARSER_BOUND,
        ));
    }

    /// Loads one file. On error nothing of the file stays, the files before it are
    /// committed, and the error is returned.
    pub fn apply(
        &mut self,
        build: &mut Replica,
        name: &ExportFileName,
        path: &Path,
        settings: &Settings,
        progress: &Progress,
    ) -> anyhow::Result<()> {
        let mode = build.mode();
        if !self.open {
            build.begin_immediate()?;
            self.open = true;
            self.now = now_rfc3339();
        }
        build.savepoint("export_file")?;
        let file = FileToRead {
            name,
            path,
            settings,
            mode,
            prefetched: self.ahead.as_ref().and_then(|a| a.take(path)),
        };
        match self.load(build.conn(), file, progress) {
            Ok(report) => {
                build.release("export_file")?;
                self.members += report.ledger.members;
                self.pending.push(report);
                crate::failpoint::hit("import.file_applied");
                if self.members >= TXN_MEMBERS {
                    self.commit(build)?;
                }
                Ok(())
            }
            Err(e)
                if !build.in_transaction()
                    || e.downcast_ref::<crate::export_xml::ImportError>().is_none() =>
            {
                // A full disk or an I/O error (SQLite may have rolled everything back): the
                // build keeps what it committed, and the error says what happened.
                if build.in_transaction() {
                    if let Err(rollback) = build.rollback_open() {
                        tracing::warn!("cannot roll the build back: {rollback}");
                    }
                }
                self.open = false;
                self.pending.clear();
                Err(e)
            }
            Err(e) => {
                build.rollback_to("export_file")?;
                self.last_row = build.max_contact_row()?;
                self.commit(build)?;
                Err(e)
            }
        }
    }

    /// Commits what is loaded.
    pub fn finish(&mut self, build: &mut Replica) -> anyhow::Result<()> {
        self.commit(build)
    }

    /// Reports of the files committed so far, in the order they were given.
    pub fn take_reports(&mut self) -> Vec<FileReport> {
        std::mem::take(&mut self.done)
    }

    fn commit(&mut self, build: &mut Replica) -> anyhow::Result<()> {
        if !self.open {
            return Ok(());
        }
        crate::failpoint::hit("import.before_commit");
        build
            .commit_open()
            .context("cannot commit the loaded files to the build")?;
        crate::failpoint::hit("import.after_commit");
        self.open = false;
        self.members = 0;
        self.done.append(&mut self.pending);
        Ok(())
    }

    /// Loads one file inside the open savepoint and writes its ledger row.
    fn load(
        &mut self,
        conn: &Connection,
        mut file: FileToRead<'_>,
        progress: &Progress,
    ) -> anyhow::Result<FileReport> {
        let (name, path) = (file.name, file.path);
        let earlier = self
            .pending
            .iter()
            .find(|r| r.ledger.name == name.name)
            .map(|r| r.ledger.sha256.clone());
        let mut ledger = match check_ledger(conn, name, path, earlier, progress)? {
            Ledger::New(ledger) => ledger,
            Ledger::Applied(ledger) => {
                return Ok(FileReport {
                    status: FileStatus::AlreadyApplied,
                    ledger,
                    actions: Vec::new(),
                })
            }
        };
        let receiver = file.parser(Lookahead::PARSER_BOUND)?;
        // The parser's changes are appended as they arrive (the batch is a buffer here: a
        // bulk load's append keeps arrival order), the rest once the file ended.
        let mut batch = SortedBatch::default();
        let mut outcomes = FileLedgerRow::default();
        let (now, last_row) = (&self.now, &mut self.last_row);
        let mut flush = |batch: &mut SortedBatch| {
            batch.append(conn, now, last_row, |_, _, outcome| {
                count(&mut outcomes, outcome)
            })
        };
        let mut sink = Sink {
            batch: &mut batch,
            version: file.version(),
            file: 0,
            flush: &mut flush,
        };
        receive(receiver, &mut ledger, &mut sink, progress).map_err(|e| locate(e, path))?;
        (sink.flush)(sink.batch)?;
        ledger.inserted = outcomes.inserted;
        ledger.deleted = outcomes.deleted;
        ledger::insert_applied(conn, &ledger, &self.now)?;
        Ok(FileReport {
            status: FileStatus::Applied,
            ledger,
            actions: Vec::new(),
        })
    }
}
