//! Applying one export file to the replica: the parser's members through the version rule,
//! in one transaction with the file's ledger row (SPEC §4). Used by `delta` (and by
//! `full --from-xml` once it exists).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::export_xml::{line_column, ExportFileName, ExportParser, ImportError, Section};
use crate::progress::Progress;
use crate::replica::{ledger, ApplyOutcome, ContactRow, ContactWriter, FileLedgerRow, Replica};
use crate::time::now_rfc3339;

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

/// Applies one export file. A malformed file is an [`ImportError`] and changes nothing; a
/// database error is returned as is (the file is fine, the database is not). `dry_run` only
/// records per-contact actions: the caller runs a dry run inside a transaction it rolls back.
pub fn apply_file(
    replica: &mut Replica,
    name: &ExportFileName,
    path: &Path,
    settings: &Settings,
    dry_run: bool,
    progress: &Progress,
) -> anyhow::Result<FileReport> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if let Some(stored) = ledger::applied_hash(replica.conn(), &name.name)? {
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
        return Ok(FileReport {
            status: FileStatus::AlreadyApplied,
            ledger: FileLedgerRow {
                name: name.name.clone(),
                export_timestamp: name.timestamp.clone(),
                file_number: name.file_number,
                size,
                sha256: stored,
                ..FileLedgerRow::default()
            },
            actions: Vec::new(),
        });
    }
    let mode = replica.mode();
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hashing = HashingReader {
        inner: file,
        hasher: Sha256::new(),
        progress,
    };
    let mut ledger = FileLedgerRow {
        name: name.name.clone(),
        export_timestamp: name.timestamp.clone(),
        file_number: name.file_number,
        size,
        ..FileLedgerRow::default()
    };
    let version = name.version_ms(settings.export_offset_seconds);
    let now = now_rfc3339();
    let mut actions = Vec::new();
    // A savepoint: a transaction of its own normally, nested in the dry run's outer
    // transaction (so later files see earlier ones, and everything is rolled back at the end).
    let tx = replica.conn().savepoint()?;
    {
        let mut writer = ContactWriter::new(&tx, now.clone())?;
        let mut parser = ExportParser::new(
            BufReader::with_capacity(256 * 1024, &mut hashing),
            &settings.field_map,
        );
        loop {
            let member = match parser.next_member() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    let (line, column) = line_column(path, e.offset).unwrap_or((0, 0));
                    return Err(ImportError::Malformed {
                        file: path.to_path_buf(),
                        line,
                        column,
                        message: e.message,
                    }
                    .into());
                }
            };
            ledger.members += 1;
            let outcome = match member.section {
                Section::Deleted => writer.delete(&member.contact_id, version)?,
                Section::New | Section::Updated => {
                    let row = ContactRow::from_fields(
                        member.contact_id.clone(),
                        member.fields,
                        mode,
                        settings.default_country,
                    );
                    writer.upsert(&row, version)?
                }
            };
            count(&mut ledger, outcome);
            if dry_run {
                actions.push(ContactAction {
                    contact_id: member.contact_id,
                    action: outcome.as_str(),
                });
            }
        }
        progress.inc_contacts(ledger.members);
    }
    // Read what the parser left (nothing but trailing bytes after the root), so the hash covers
    // the whole file.
    std::io::copy(&mut hashing, &mut std::io::sink())
        .with_context(|| format!("cannot read {}", path.display()))?;
    ledger.sha256 = hex::encode(hashing.hasher.finalize());
    ledger::insert_applied(&tx, &ledger, &now)?;
    tx.commit()
        .with_context(|| format!("cannot commit {} to the replica", name.name))?;
    Ok(FileReport {
        status: FileStatus::Applied,
        ledger,
        actions,
    })
}

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
struct HashingReader<'p> {
    inner: File,
    hasher: Sha256,
    progress: &'p Progress,
}

impl Read for HashingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.progress.inc_bytes(n as u64);
        Ok(n)
    }
}
