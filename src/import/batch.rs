//! Several export files per transaction (see [`Importer`]).

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::ahead::{Lookahead, ParseAhead};
use super::sorted::SortedBatch;
use super::{
    count, read_file, ContactAction, FileReport, FileStatus, FileToRead, ReadOutcome, Sink,
};
use crate::config::Settings;
use crate::export_xml::ExportFileName;
use crate::fsutil::move_into;
use crate::progress::Progress;
use crate::replica::bulk::BulkCounts;
use crate::replica::{FileLedgerRow, Replica};
use crate::time::now_rfc3339;

/// Contacts per transaction: big enough to amortise commits, small enough that a crash
/// redoes a few seconds of work and readers see progress. Every commit ends in a checkpoint
/// that writes each page the transaction dirtied into the database; an update round of
/// 100,000 random contacts dirties nearly every table page, so a second transaction for the
/// rest of the round rewrites most of them again: measured, 250,000 made an update round of
/// 110,000 changes 8-25 % faster than 100,000 (three interleaved pairs).
const BATCH_MEMBERS: u64 = 250_000;

/// A file read in the open transaction.
struct OpenFile {
    name: ExportFileName,
    path: PathBuf,
    report: FileReport,
}

/// How an [`Importer`] applies its files.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Apply everything in one transaction and roll it back at the end (`--dry-run`).
    pub dry_run: bool,
    /// Where committed files are moved, if anywhere.
    pub archive: Option<PathBuf>,
}

/// Applies export files several per transaction, so a large import does not pay a commit and
/// a WAL checkpoint per file (the checkpoint rewrites every page the file touched), and
/// through a `SortedBatch` that spans files, so an update round walks the replica in order.
/// Each file is still all-or-nothing with its ledger row: when a file fails, the transaction
/// is rolled back and the files before it are applied again (they were fine), so readers only
/// ever see whole files. A file's report (its counts) is final once its transaction is
/// applied: [`take_reports`](Self::take_reports) hands out the committed ones. In a dry run
/// the one transaction is rolled back at the end instead of committed. Applied files are
/// moved to the archive folder once they are committed.
///
/// The first import into an empty replica is a bulk load (`replica::bulk`): one transaction
/// for the whole run, the contact table's indexes dropped at its start and built again at
/// its end, every upsert appended and the version rule applied among the loaded changes when
/// it commits. Readers see the empty replica until then, then every file at once; a file that
/// fails rolls it back and the files before it are loaded again, as above. Its files' ledger
/// rows count upserts as inserted: [`resolved`](Self::resolved) says how many of them the
/// version rule then dropped.
pub struct Importer {
    dry_run: bool,
    archive: Option<PathBuf>,
    open: bool,
    members: u64,
    batch: SortedBatch,
    /// Files read in the open transaction, in order.
    files: Vec<OpenFile>,
    /// Reports of committed files (or, in a dry run, of every file at the end).
    done: Vec<FileReport>,
    warnings: Vec<String>,
    /// `updated_at` of the open transaction's contacts.
    now: String,
    /// Parsers started ahead, if the caller gave the files in advance.
    ahead: Option<ParseAhead>,
    /// While the open transaction is a bulk load into an empty replica: the greatest contact
    /// row id so far (see [`Importer`]).
    bulk_load: Option<i64>,
    /// What the bulk loads resolved when they were committed.
    resolved: BulkCounts,
    /// Whether the connection has a bulk load's settings (`replica::bulk::sort_in_files`).
    tuned: bool,
}

impl Importer {
    /// An importer (see [`ImportOptions`]).
    ///
    /// A transaction may hold the replica's write lock for as long as its files take: no till
    /// write waits for it (the till writes its own store, `till_store`), and readers never
    /// wait for a writer in WAL mode.
    pub fn new(opts: ImportOptions) -> Importer {
        Importer {
            dry_run: opts.dry_run,
            archive: opts.archive,
            open: false,
            members: 0,
            batch: SortedBatch::default(),
            files: Vec::new(),
            done: Vec::new(),
            warnings: Vec::new(),
            now: String::new(),
            ahead: None,
            bulk_load: None,
            resolved: BulkCounts::default(),
            tuned: false,
        }
    }

    /// Announces the files that will be applied to `replica`, in the order they will be given
    /// to [`apply`](Self::apply), so that each is parsed while the one before is written.
    /// Parsers run further ahead when the import will be a bulk load (the writer then only
    /// appends, and parsing is the slower side).
    pub fn parse_ahead(
        &mut self,
        replica: &mut Replica,
        paths: Vec<PathBuf>,
        settings: &Settings,
    ) -> anyhow::Result<()> {
        let lookahead = if !self.dry_run && replica.nothing_from_engage()? {
            Lookahead::PARSER_BOUND
        } else {
            Lookahead::WRITER_BOUND
        };
        self.ahead = Some(ParseAhead::start(
            paths,
            settings,
            replica.mode(),
            lookahead,
        ));
        Ok(())
    }

    /// Reads one file into the open transaction. On error, nothing of the file stays
    /// applied, the files before it are committed, and the error is returned.
    pub fn apply(
        &mut self,
        replica: &mut Replica,
        name: &ExportFileName,
        path: &Path,
        settings: &Settings,
        progress: &Progress,
    ) -> anyhow::Result<()> {
        self.begin(replica)?;
        let file = FileToRead {
            name,
            path,
            settings,
            mode: replica.mode(),
            prefetched: self.ahead.as_ref().and_then(|a| a.take(path)),
        };
        match self.read(replica, file, progress) {
            Ok(members) => {
                self.members += members;
                crate::failpoint::hit("import.file_applied");
                // A bulk load is one transaction whatever its size (see `Importer`).
                if self.bulk_load.is_none() && self.members >= BATCH_MEMBERS {
                    self.commit_or_abandon(replica, false)?;
                }
                Ok(())
            }
            Err(e) if !is_bad_file(&e) || !replica.in_transaction() => {
                // Not the file's fault (a full disk, an I/O error), or SQLite already rolled
                // the transaction back: nothing to replay; the error says what happened.
                self.abandon(replica);
                Err(e)
            }
            Err(e) => {
                self.rollback_and_replay(replica, settings)?;
                self.commit(replica, false)?;
                Err(e)
            }
        }
    }

    /// Drops the open transaction (if SQLite has not already) and everything read into it;
    /// its files stay where they are, unrecorded, for the next run. Best effort: the error
    /// that led here is the one to report.
    fn abandon(&mut self, replica: &mut Replica) {
        if replica.in_transaction() {
            if let Err(e) = replica.rollback_open() {
                tracing::warn!("cannot roll the import back: {e}");
            }
        }
        self.open = false;
        self.batch.clear();
        self.files.clear();
        if let Err(e) = self.end_bulk(replica) {
            tracing::warn!("cannot restore the replica's settings after the import: {e:#}");
        }
    }

    /// Commits what is read (or, in a dry run, applies it and rolls everything back).
    pub fn finish(&mut self, replica: &mut Replica) -> anyhow::Result<()> {
        self.commit_or_abandon(replica, true)
    }

    /// [`commit`](Self::commit); when that fails (a full disk at COMMIT, say), the transaction
    /// is dropped, so that the run's record is written outside it.
    fn commit_or_abandon(&mut self, replica: &mut Replica, finishing: bool) -> anyhow::Result<()> {
        let committed = self.commit(replica, finishing);
        if committed.is_err() {
            self.abandon(replica);
        }
        committed
    }

    /// Reports of the files committed so far (in a dry run: after [`finish`](Self::finish)),
    /// in the order they were given.
    pub fn take_reports(&mut self) -> Vec<FileReport> {
        std::mem::take(&mut self.done)
    }

    /// What the bulk loads committed so far resolved.
    pub fn resolved(&self) -> BulkCounts {
        self.resolved
    }

    /// Warnings collected so far (files applied but not archived).
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn begin(&mut self, replica: &mut Replica) -> anyhow::Result<()> {
        if self.open {
            return Ok(());
        }
        let bulk_load = !self.dry_run && replica.nothing_from_engage()?;
        if bulk_load {
            // Before BEGIN: SQLite refuses to move temporary data inside a transaction.
            replica.sort_in_files()?;
            self.tuned = true;
        }
        replica.begin_immediate()?;
        self.open = true;
        self.now = now_rfc3339();
        // Checked again inside the transaction, which is what the load relies on.
        if bulk_load && replica.nothing_from_engage()? {
            if crate::failpoint::fault("import.disk_full") {
                replica.simulate_full_disk()?;
            }
            replica.defer_indexes()?;
            self.bulk_load = Some(replica.max_contact_row()?);
        }
        Ok(())
    }

    /// Ends the open transaction's bulk load, if it was one, after its commit or rollback,
    /// and puts the connection's usual settings back if a bulk load changed them.
    fn end_bulk(&mut self, replica: &mut Replica) -> anyhow::Result<()> {
        self.bulk_load = None;
        if std::mem::take(&mut self.tuned) {
            replica.usual_settings()?;
        }
        Ok(())
    }

    /// Reads a file into the batch (applying the batch whenever it fills) and records it as
    /// open; returns its number of members.
    fn read(
        &mut self,
        replica: &mut Replica,
        file: FileToRead<'_>,
        progress: &Progress,
    ) -> anyhow::Result<u64> {
        let earlier: Vec<(String, String)> = self
            .files
            .iter()
            .map(|f| (f.name.name.clone(), f.report.ledger.sha256.clone()))
            .collect();
        let (name, path) = (file.name, file.path);
        let conn = replica.conn();
        let slot = self.files.len();
        // The file's report is open before it is read: a batch applied while the file is
        // read counts its changes in it.
        self.files.push(OpenFile {
            name: name.clone(),
            path: path.to_path_buf(),
            report: FileReport {
                status: FileStatus::Applied,
                ledger: Default::default(),
                actions: Vec::new(),
            },
        });
        let Importer {
            batch,
            files,
            now,
            dry_run,
            bulk_load,
            ..
        } = self;
        let mut flush =
            |batch: &mut SortedBatch| apply_batch(batch, conn, now, files, *dry_run, bulk_load);
        let sink = Sink {
            batch,
            version: file.version(),
            file: slot,
            flush: &mut flush,
        };
        let outcome = read_file(conn, file, &earlier, sink, progress);
        let report = &mut self.files[slot].report;
        let read = match outcome {
            Ok(ReadOutcome::Added(read)) => read,
            Ok(ReadOutcome::AlreadyApplied(stored)) => {
                report.status = FileStatus::AlreadyApplied;
                stored
            }
            Err(e) => {
                self.files.pop();
                self.batch.clear();
                return Err(e);
            }
        };
        Ok(keep_read(&mut report.ledger, read))
    }

    /// Rolls the open transaction back and reads its good files again in a new one.
    fn rollback_and_replay(&mut self, replica: &mut Replica, s: &Settings) -> anyhow::Result<()> {
        if !self.open {
            return Ok(());
        }
        replica.rollback_open()?;
        self.open = false;
        self.end_bulk(replica)?;
        self.batch.clear();
        let files = std::mem::take(&mut self.files);
        self.begin(replica)?;
        let hidden = Progress::hidden();
        for file in files {
            let again = FileToRead {
                name: &file.name,
                path: &file.path,
                settings: s,
                mode: replica.mode(),
                prefetched: None,
            };
            self.read(replica, again, &hidden).with_context(|| {
                format!(
                    "{} applied once but not when applied again",
                    file.path.display()
                )
            })?;
        }
        Ok(())
    }

    /// Applies what is waiting, writes the ledger rows and commits the open transaction, then
    /// archives its files: a file is moved only once its contacts are durable. A dry run only
    /// applies what is waiting, and rolls everything back when `finishing`.
    fn commit(&mut self, replica: &mut Replica, finishing: bool) -> anyhow::Result<()> {
        if !self.open {
            return Ok(());
        }
        let db = replica.path().display().to_string();
        apply_batch(
            &mut self.batch,
            replica.conn(),
            &self.now,
            &mut self.files,
            self.dry_run,
            &mut self.bulk_load,
        )
        .with_context(|| format!("cannot apply the files to the replica {db}"))?;
        if self.bulk_load.is_some() {
            let resolved = replica.resolve_bulk(&self.now)?;
            self.resolved.superseded += resolved.superseded;
            self.resolved.deleted += resolved.deleted;
        }
        if self.dry_run {
            // A dry run keeps one transaction to the end, so later files see earlier ones.
            if !finishing {
                return Ok(());
            }
            replica.rollback_open()?;
        } else {
            for file in &self.files {
                if file.report.status == FileStatus::Applied {
                    replica.record_applied(&file.report.ledger, &self.now)?;
                }
            }
            crate::failpoint::hit("import.before_commit");
            replica
                .commit_open()
                .with_context(|| format!("cannot commit the applied files to the replica {db}"))?;
            crate::failpoint::hit("import.after_commit");
        }
        self.open = false;
        self.end_bulk(replica)?;
        self.members = 0;
        for file in self.files.drain(..) {
            self.done.push(file.report);
            let Some(archive) = self.archive.as_ref().filter(|_| !self.dry_run) else {
                continue;
            };
            if let Err(e) = move_into(&file.path, archive) {
                let msg = format!(
                    "{} was applied but not archived: {e:#}",
                    file.path.display()
                );
                tracing::warn!("{msg}");
                self.warnings.push(msg);
            }
            crate::failpoint::hit("import.after_archive");
        }
        Ok(())
    }
}

/// Keeps what reading a file found in its ledger row (the counts come from the batches
/// applied); returns its members.
fn keep_read(ledger: &mut FileLedgerRow, read: FileLedgerRow) -> u64 {
    ledger.name = read.name;
    ledger.export_timestamp = read.export_timestamp;
    ledger.file_number = read.file_number;
    ledger.size = read.size;
    ledger.sha256 = read.sha256;
    ledger.members = read.members;
    ledger.phones_as_sent = read.phones_as_sent;
    read.members
}

/// Whether `e` is a refused export file (quarantined, and the files before it committed),
/// rather than a failure of the replica or the disk.
fn is_bad_file(e: &anyhow::Error) -> bool {
    e.downcast_ref::<crate::export_xml::ImportError>().is_some()
}

/// Applies the batch (appends it, in a bulk load), counting each outcome in its file's
/// report (and listing it, in a dry run).
fn apply_batch(
    batch: &mut SortedBatch,
    conn: &rusqlite::Connection,
    now: &str,
    files: &mut [OpenFile],
    dry_run: bool,
    bulk_load: &mut Option<i64>,
) -> rusqlite::Result<()> {
    let record = |slot: usize, contact_id: &str, outcome| {
        let report = &mut files[slot].report;
        count(&mut report.ledger, outcome);
        if dry_run {
            report.actions.push(ContactAction {
                contact_id: contact_id.to_string(),
                action: outcome.as_str(),
            });
        }
    };
    match bulk_load {
        Some(last_row) => batch.append(conn, now, last_row, record),
        None => batch.apply(conn, now, record),
    }
}
