//! Applying one export file to the replica: the parser's members through the version rule, in one
//! transaction with the file's ledger row (docs/contract.md §4), and [`Importer`], which applies
//! several files per transaction. Around it: what an import reads ([`collect_inputs`]), the
//! one pipeline `delta` and `full` apply an export set with ([`apply_export_set`]), and the
//! refusal of a bad file ([`refuse_file`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

mod ahead;
use ahead::Lookahead;
mod batch;
mod bulk;
mod check;
mod export_set;
mod gaps;
mod inputs;
mod quarantine;
mod sorted;

use anyhow::Context;
use rusqlite::Connection;
use sha2::{Digest, Sha256};

pub use batch::{ImportOptions, Importer};
pub use bulk::BulkLoader;
pub use check::count_members;
pub use export_set::{apply_export_set, ExportSet, Flow, Loader, SetEnd, SetObserver, SetOptions};
pub use gaps::gap_warnings;
pub use inputs::{
    collect_inputs, complete_export_set, escaped, split_names, Input, Inputs, NotUtf8Names,
};
pub use quarantine::{refuse_file, Refusal, RefusedFile};
use sorted::{sort_by_contact, Change, SortedBatch};

use crate::config::{Mode, Settings};
use crate::export_xml::{
    file_parser, line_column, ExportFileName, ExportParser, ImportError, Member, ParseError,
    Section,
};
use crate::normalize::Country;
use crate::progress::Progress;
use crate::replica::{ledger, ApplyOutcome, ContactRow, FileLedgerRow};

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    /// Applied now (or, in a dry run, would be).
    Applied,
    /// Applied before with the same content; skipped.
    AlreadyApplied,
}

/// The result of one file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileReport {
    /// Applied or skipped.
    pub status: FileStatus,
    /// Counts and hash, as written to the ledger.
    #[serde(flatten)]
    pub ledger: FileLedgerRow,
    /// Per-contact actions, in a dry run only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ContactAction>,
}

/// One contact's fate in a dry run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContactAction {
    /// Engage contact id (not personal data).
    pub contact_id: String,
    /// insert, update, delete or skip (stale).
    pub action: &'static str,
}

/// What reading one file into a batch found: the file's ledger row without its counts
/// (they come when the batch is applied), or that the same file was applied before.
enum ReadOutcome {
    /// The file's contacts are in the batch; `ledger` has name, size, hash and members.
    Added(FileLedgerRow),
    /// Applied before with the same content (its stored ledger row, counts zero).
    AlreadyApplied(FileLedgerRow),
}

/// One export file to read, and what its rows are made with.
struct FileToRead<'a> {
    name: &'a ExportFileName,
    path: &'a Path,
    settings: &'a Settings,
    /// The replica's mode: what a row keeps.
    mode: Mode,
    /// The file's parser, if one was started ahead (see [`ahead`]).
    prefetched: Option<Receiver<Chunk>>,
}

impl FileToRead<'_> {
    /// The version of the file's contacts (its export time).
    fn version(&self) -> i64 {
        self.name.version_ms(self.settings.export_offset_seconds)
    }

    /// The file's parser: the one started ahead, or a new one.
    fn parser(&mut self, lookahead: Lookahead) -> anyhow::Result<Receiver<Chunk>> {
        match self.prefetched.take() {
            Some(receiver) => Ok(receiver),
            None => Source::new(self.settings, self.mode).spawn(self.path, lookahead),
        }
    }
}

/// Reads one export file into `sink`'s batch, applying the batch through its `flush` whenever
/// it is full. `earlier` are the files already read in the open transaction (name and hash),
/// which the ledger does not show yet. A malformed file is an [`ImportError`]; a database
/// error is returned as is. Either way part of the file may have been applied, so the caller
/// must roll the transaction back.
fn read_file(
    conn: &Connection,
    mut file: FileToRead<'_>,
    earlier: &[(String, String)],
    mut sink: Sink<'_>,
    progress: &Progress,
) -> anyhow::Result<ReadOutcome> {
    let (name, path) = (file.name, file.path);
    let earlier = earlier
        .iter()
        .find(|(n, _)| *n == name.name)
        .map(|(_, hash)| hash.clone());
    let mut ledger = match check_ledger(conn, name, path, earlier, progress)? {
        Ledger::New(ledger) => ledger,
        Ledger::Applied(ledger) => return Ok(ReadOutcome::AlreadyApplied(ledger)),
    };
    // Parse on one core while the database is written on the other: the parser thread turns
    // the file into ready-made rows, the writer batches and applies them. The thread may have
    // been started ahead, while the file before was being written.
    let receiver = file.parser(Lookahead::WRITER_BOUND)?;
    receive(receiver, &mut ledger, &mut sink, progress).map_err(|e| locate(e, path))?;
    Ok(ReadOutcome::Added(ledger))
}

/// A file as the ledger sees it before it is read.
enum Ledger {
    /// Not applied yet: its ledger row with name and size (the rest comes as it is read).
    New(FileLedgerRow),
    /// Applied before with the same content: its row with the stored hash, counts zero.
    Applied(FileLedgerRow),
}

/// Looks a file up in the ledger, or in `earlier` (the hash of a file of the same name read in
/// the open transaction, which the ledger does not show yet). The same name with other
/// content is an [`ImportError::NameConflict`].
fn check_ledger(
    conn: &Connection,
    name: &ExportFileName,
    path: &Path,
    earlier: Option<String>,
    progress: &Progress,
) -> anyhow::Result<Ledger> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    let mut ledger = FileLedgerRow {
        name: name.name.clone(),
        export_timestamp: name.timestamp.clone(),
        file_number: name.file_number,
        size,
        ..FileLedgerRow::default()
    };
    let stored = match earlier {
        Some(hash) => Some(hash),
        None => ledger::applied_hash(conn, &name.name)?,
    };
    let Some(stored) = stored else {
        return Ok(Ledger::New(ledger));
    };
    let found = sha256_file(path)?;
    progress.inc_bytes(size);
    if stored != found {
        return Err(ImportError::NameConflict {
            file: path.to_path_buf(),
            stored,
            found,
        }
        .into());
    }
    ledger.sha256 = stored;
    Ok(Ledger::Applied(ledger))
}

/// Where the writer side puts a file's changes.
struct Sink<'a> {
    batch: &'a mut SortedBatch,
    version: i64,
    file: usize,
    flush: &'a mut dyn FnMut(&mut SortedBatch) -> rusqlite::Result<()>,
}

/// Changes per message from the parser thread, and messages in flight per parser (two run at
/// a file boundary, see [`ahead`]): 8 MB at most in all.
const CHUNK_CHANGES: usize = 1024;
const CHANNEL_CHUNKS: usize = 4;
/// A chunk is also sent once this much of the file went into it, so that members with large
/// fields (a parser limit allows 2 MiB of text each) cannot make the chunks in flight hold
/// hundreds of MB: 5,000 members of 50 KB each peaked at 132 MB before this bound.
const CHUNK_BYTES: u64 = 1 << 20;

/// What the parser thread sends.
enum Chunk {
    Changes { changes: Vec<Change>, bytes: u64 },
    End { sha256: String, bytes: u64 },
    Malformed(ParseError),
    Io(std::io::Error),
}

/// Why applying failed: the file (to be located and quarantined) or anything else.
enum ApplyError {
    Malformed(ParseError),
    Other(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for ApplyError {
    fn from(e: E) -> Self {
        ApplyError::Other(e.into())
    }
}

/// Turns a parse error into an [`ImportError`] with line and column.
fn locate(e: ApplyError, path: &Path) -> anyhow::Error {
    match e {
        ApplyError::Malformed(e) => {
            let (line, column) = line_column(path, e.offset).unwrap_or((0, 0));
            ImportError::Malformed {
                file: path.to_path_buf(),
                line,
                column,
                message: e.message,
            }
            .into()
        }
        ApplyError::Other(e) => e,
    }
}

/// The writer side: receives the parser's chunks into the batch (applying it when full)
/// and fills in the ledger row's members and hash.
fn receive(
    receiver: Receiver<Chunk>,
    ledger: &mut FileLedgerRow,
    sink: &mut Sink<'_>,
    progress: &Progress,
) -> Result<(), ApplyError> {
    loop {
        let chunk = receiver
            .recv()
            .map_err(|_| anyhow::anyhow!("the export parser stopped unexpectedly"))?;
        match chunk {
            Chunk::Changes { changes, bytes } => {
                progress.inc_bytes(bytes);
                progress.inc_contacts(changes.len() as u64);
                ledger.members += changes.len() as u64;
                ledger.phones_as_sent += changes
                    .iter()
                    .filter(|c| matches!(c, Change::Upsert(row) if row.phone_as_sent))
                    .count() as u64;
                sink.batch.extend(changes, sink.version, sink.file);
                if sink.batch.is_full() {
                    (sink.flush)(sink.batch)?;
                }
            }
            Chunk::End { sha256, bytes } => {
                progress.inc_bytes(bytes);
                ledger.sha256 = sha256;
                return Ok(());
            }
            Chunk::Malformed(e) => return Err(ApplyError::Malformed(e)),
            Chunk::Io(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("cannot read {}", ledger.name))
                    .into())
            }
        }
    }
}

/// What the parser thread needs to build rows.
#[derive(Clone)]
struct Source {
    field_map: Arc<BTreeMap<String, String>>,
    mode: Mode,
    country: Country,
    /// Buffers for files read whole, handed from one parser thread to the next.
    buffers: Arc<Mutex<Vec<Vec<u8>>>>,
}

/// Whole-file buffers kept for the next parser: as many as parsers run at once.
const POOLED_BUFFERS: usize = 3;

/// A buffer from a [`Source`]'s pool, returned to it when dropped. Each parser thread
/// allocating and freeing its own 5-8 MB buffer raised glibc's mmap threshold (it follows the
/// largest block freed), after which the buffers came from the heap and were never returned
/// to the OS: a bulk load of 1,000,000 contacts peaked at 126 MB instead of 59 MB.
struct PooledBuffer {
    buf: Vec<u8>,
    pool: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl PooledBuffer {
    fn take(pool: &Arc<Mutex<Vec<Vec<u8>>>>) -> PooledBuffer {
        let buf = pool
            .lock()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_default();
        PooledBuffer {
            buf,
            pool: Arc::clone(pool),
        }
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let Ok(mut free) = self.pool.lock() {
            if free.len() < POOLED_BUFFERS {
                let mut buf = std::mem::take(&mut self.buf);
                buf.clear();
                free.push(buf);
            }
        }
    }
}

impl Source {
    fn new(settings: &Settings, mode: Mode) -> Source {
        Source {
            field_map: Arc::new(settings.field_map.clone()),
            mode,
            country: settings.default_country,
            buffers: Arc::default(),
        }
    }

    /// Starts a parser thread on `path`; its chunks arrive on the receiver, which holds up to
    /// `lookahead.chunks` of them.
    fn spawn(self, path: &Path, lookahead: Lookahead) -> anyhow::Result<Receiver<Chunk>> {
        let input = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let (sender, receiver) = mpsc::sync_channel(lookahead.chunks);
        std::thread::Builder::new()
            .name("export-parser".into())
            .spawn(move || self.parse(input, &sender, lookahead.whole_files))
            .context("cannot start the export parser thread")?;
        Ok(receiver)
    }

    /// Parses `file` into chunks of changes, then sends its hash. Stops quietly when the
    /// writer hangs up (it failed, and reports why). With `read_whole`, a file of up to
    /// [`crate::export_xml::WHOLE_DOCUMENT_MAX`] bytes (8 MiB; Engage's are about 5 MB) is read
    /// and hashed whole first and parsed in memory, which halves the parse time; a larger one
    /// is streamed, as every file is without `read_whole`.
    fn parse(self, file: File, sender: &SyncSender<Chunk>, read_whole: bool) {
        let size = match file.metadata() {
            Ok(metadata) => metadata.len(),
            Err(e) => {
                let _ = sender.send(Chunk::Io(e));
                return;
            }
        };
        let mut hashing = HashingReader {
            inner: file,
            hasher: Sha256::new(),
            bytes: 0,
        };
        let mut sent_bytes = 0;
        let mut chunk = Vec::with_capacity(CHUNK_CHANGES);
        let mut whole = PooledBuffer::take(&self.buffers);
        let mut parser = if read_whole {
            match file_parser(
                &mut hashing,
                size,
                &mut whole.buf,
                &self.field_map,
                256 * 1024,
            ) {
                Ok(parser) => parser,
                Err(e) => {
                    let _ = sender.send(Chunk::Io(e));
                    return;
                }
            }
        } else {
            ExportParser::new(
                BufReader::with_capacity(256 * 1024, &mut hashing),
                &self.field_map,
            )
        };
        let failure = loop {
            match parser.next_member() {
                Ok(Some(member)) => {
                    chunk.push(self.change(member));
                    // (Saturating: a document in memory that falls back to streaming starts
                    // over, though it only returns once past where it was.)
                    let read = parser.position();
                    let bytes = read.saturating_sub(sent_bytes);
                    if chunk.len() == CHUNK_CHANGES || bytes >= CHUNK_BYTES {
                        let mut changes =
                            std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_CHANGES));
                        sort_by_contact(&mut changes);
                        sent_bytes += bytes;
                        if sender.send(Chunk::Changes { changes, bytes }).is_err() {
                            return;
                        }
                    }
                }
                Ok(None) => break None,
                Err(e) => break Some(Chunk::Malformed(e)),
            }
        };
        drop(parser);
        let last = match failure {
            Some(failure) => failure,
            None => {
                sort_by_contact(&mut chunk);
                if sender
                    .send(Chunk::Changes {
                        changes: chunk,
                        bytes: 0,
                    })
                    .is_err()
                {
                    return;
                }
                // Read what the parser left (trailing bytes after the root), so the hash
                // covers the whole file.
                match std::io::copy(&mut hashing, &mut std::io::sink()) {
                    Ok(_) => Chunk::End {
                        bytes: hashing.bytes - sent_bytes,
                        sha256: hex::encode(hashing.hasher.finalize()),
                    },
                    Err(e) => Chunk::Io(e),
                }
            }
        };
        let _ = sender.send(last);
    }

    fn change(&self, member: Member) -> Change {
        match member.section {
            Section::Deleted => Change::Delete(member.contact_id),
            Section::New | Section::Updated => Change::Upsert(ContactRow::from_fields(
                member.contact_id,
                member.fields,
                self.mode,
                self.country,
            )),
        }
    }
}

/// Counts one change's outcome in its file's ledger row.
fn count(ledger: &mut FileLedgerRow, outcome: ApplyOutcome) {
    match outcome {
        ApplyOutcome::Inserted => ledger.inserted += 1,
        ApplyOutcome::Updated => ledger.updated += 1,
        ApplyOutcome::Deleted => ledger.deleted += 1,
        ApplyOutcome::Stale => ledger.stale += 1,
    }
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Hashes and counts everything read through it, so the file is read once.
struct HashingReader {
    inner: File,
    hasher: Sha256,
    bytes: u64,
}

impl Read for HashingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}
