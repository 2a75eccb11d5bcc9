//! `publish` on a hub (issue 21): the replica's changes since the last publication, or the
//! whole replica (`--snapshot`), as contact-export XML files in Engage's own format, which the
//! stores import with `delta` (or `full --from-xml`) and their version rule.
//!
//! What changed is known from the change numbers every writing transaction stamps on the
//! rows it writes (`change_seq`, migration 0007): a delta publication holds the contacts and
//! tombstones numbered above the counter's `published`, each once in its latest state. Order
//! and crash safety:
//!
//! 1. Files are written under hidden temporary names, each flushed to disk (`files`).
//! 2. One transaction records the publication (its names) and advances `published`.
//! 3. The files are renamed into place and the folder flushed.
//!
//! Killed before 2, nothing is recorded and the next run removes the temporary files and
//! publishes the same changes; killed after 2, the next run first renames what is left of the
//! recorded publication (the temporary files are complete), so nothing is published twice and
//! nothing is missed. File names carry a timestamp that rises strictly from one publication
//! to the next, even within a second or when the clock steps back, so stores apply them in
//! order and the data's version rises with them.

mod files;
pub mod gaps;
mod json_xml;
pub mod xml;

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, NaiveDateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use std::io::Write;

use crate::config::Mode;
use crate::error::UsageError;
use crate::export_xml::Section;
use crate::replica::folders::FolderKind;
use files::FileSet;
pub use files::MAX_PER_FILE;
use xml::Lossy;

/// What `publish` is asked to do.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// The folder the stores read.
    pub dir: PathBuf,
    /// The whole replica instead of the changes.
    pub snapshot: bool,
    /// The name part of the file names (before `-dN`).
    pub name: String,
    /// Contacts per file (at most [`MAX_PER_FILE`]).
    pub per_file: usize,
    /// Count and name the files, write nothing.
    pub dry_run: bool,
}

/// What a publication wrote (counts and names only, no personal data).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct PublishSummary {
    /// `delta` or `snapshot`.
    pub kind: &'static str,
    /// Nothing was written.
    pub dry_run: bool,
    /// The delta number in the file names (for a snapshot: the last delta it includes).
    pub delta_number: i64,
    /// The timestamp of the file names; absent when nothing was published.
    pub stamp: Option<String>,
    /// The folder.
    pub dir: String,
    /// The files, in order.
    pub files: Vec<String>,
    /// Members under `<new>`.
    pub new: u64,
    /// Members under `<updated>`.
    pub updated: u64,
    /// Members under `<deleted>`.
    pub deleted: u64,
    /// The change numbers published: above `from_seq`, up to `to_seq`.
    pub from_seq: i64,
    /// See `from_seq`.
    pub to_seq: i64,
    /// What the format could not hold.
    #[serde(flatten)]
    pub lossy: Lossy,
    /// Files of a publication a killed run had recorded, renamed into place by this run.
    pub recovered_files: u64,
    /// Temporary files of a killed run's unrecorded publication, removed.
    pub removed_temporary_files: u64,
    /// Wall time.
    pub elapsed_seconds: f64,
}

/// The last recorded publication.
struct LastPublication {
    delta_number: i64,
    stamp: String,
    dir: String,
    files: Vec<String>,
}

const LAST_PUBLICATION: &str = "SELECT delta_number, stamp, dir, files FROM publication \
     ORDER BY id DESC LIMIT 1";
const LAST_DELTA_DIR: &str =
    "SELECT dir FROM publication WHERE kind = 'delta' ORDER BY id DESC LIMIT 1";
const COUNTER: &str = "SELECT last, published FROM change_counter WHERE id = 1";
/// Advances the cursor, and makes the replica a hub that logs its changes from now on.
const SET_PUBLISHED: &str = "UPDATE change_counter SET published = ?1, logging = 1 WHERE id = 1";
/// Forgets the log up to the cursor.
const PRUNE_LOG: &str = "DELETE FROM change_log WHERE seq <= ?1";
/// Whether the changes since ?1 must be found by reading the whole table: a bulk load's log
/// row (migration 0007).
const BULK_SINCE: &str = "SELECT EXISTS (SELECT 1 FROM change_log WHERE row IS NULL AND seq > ?1)";
/// The logged contacts, once each, in row order.
const LOGGED_ROWS: &str = "(SELECT DISTINCT row FROM change_log \
     WHERE seq > ?1 AND seq <= ?2 AND row IS NOT NULL ORDER BY row) AS l \
     CROSS JOIN contact AS c ON c.id = l.row";
/// The logged contacts that were created (some may have been created before the last
/// publication and logged as created again later: `created_seq` decides), once each.
const LOGGED_NEW_ROWS: &str = "(SELECT DISTINCT row FROM change_log \
     WHERE seq > ?1 AND seq <= ?2 AND row IS NOT NULL AND inserted ORDER BY row) AS l \
     CROSS JOIN contact AS c ON c.id = l.row";
const INSERT_PUBLICATION: &str = "INSERT INTO publication (kind, delta_number, stamp, dir, \
     files, from_seq, to_seq, contacts, deleted, published_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
const CONTACT_COLUMNS: &str = "SELECT contact_id, member_number, email, mobile_phone, \
     external_id, social_security_number, contact_type, first_name, last_name, attributes \
     FROM";
const DELTA_TOMBSTONES: &str =
    "SELECT contact_id FROM tombstone WHERE change_seq > ?1 AND change_seq <= ?2";
const SNAPSHOT_TOMBSTONES: &str = "SELECT contact_id FROM tombstone";

/// Publishes (see the module documentation). The caller holds the writer lock.
pub fn publish(
    conn: &mut Connection,
    mode: Mode,
    opts: &PublishOptions,
) -> anyhow::Result<PublishSummary> {
    let kind = if opts.snapshot { "snapshot" } else { "delta" };
    let dir = folder(&opts.dir, opts.dry_run)?;
    let mut summary = PublishSummary {
        kind,
        dry_run: opts.dry_run,
        dir: dir.display().to_string(),
        ..PublishSummary::default()
    };
    let last = finish_interrupted(conn, &dir, opts, &mut summary)?;
    if opts.snapshot {
        refuse_delta_folder(conn, &dir)?;
    }
    let tx = rusqlite::Transaction::new(conn, rusqlite::TransactionBehavior::Immediate)?;
    let (last_seq, published): (i64, i64) =
        tx.query_row(COUNTER, [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let last_delta = last_delta_number(&last);
    summary.from_seq = if opts.snapshot { 0 } else { published };
    summary.to_seq = last_seq;
    summary.delta_number = if opts.snapshot {
        last_delta
    } else {
        last_delta + 1
    };
    if !opts.snapshot && published >= last_seq {
        summary.delta_number = last_delta;
        return Ok(summary);
    }
    let stamp = next_stamp(last.as_ref().map(|l| l.stamp.as_str()), Utc::now());
    let label = if opts.snapshot {
        format!("{}-snapshot-d{}", opts.name, summary.delta_number)
    } else {
        format!("{}-d{}", opts.name, summary.delta_number)
    };
    let mut set = FileSet::new(&dir, &stamp, &label, opts.per_file, opts.dry_run);
    write_members(&tx, mode, opts.snapshot, &mut set, &mut summary)?;
    let (names, lossy) = set.finish()?;
    summary.lossy = lossy;
    if names.is_empty() {
        // Numbers handed out by transactions that changed nothing: move on without a file.
        summary.delta_number = last_delta;
        if !opts.dry_run && !opts.snapshot {
            set_published(&tx, last_seq)?;
            tx.commit()?;
        }
        return Ok(summary);
    }
    summary.stamp = Some(stamp.clone());
    summary.files = names;
    if opts.dry_run {
        return Ok(summary);
    }
    crate::failpoint::hit("publish.files_written");
    record(&tx, &summary, &stamp)?;
    tx.commit()?;
    crate::failpoint::hit("publish.recorded");
    files::rename_into_place(&dir, &summary.files)?;
    Ok(summary)
}

/// Before a publication: records the folder (before any file goes there, so that purge
/// always covers it), renames what a killed run left of the last recorded publication, and
/// removes the temporary files of one it never recorded. Returns the last publication.
fn finish_interrupted(
    conn: &Connection,
    dir: &Path,
    opts: &PublishOptions,
    summary: &mut PublishSummary,
) -> anyhow::Result<Option<LastPublication>> {
    let last = last_publication(conn)?;
    if opts.dry_run {
        return Ok(last);
    }
    let now = crate::time::now_rfc3339();
    crate::replica::folders::record(conn, dir, FolderKind::Published, &now)?;
    if let Some(last) = &last {
        summary.recovered_files = files::rename_into_place(Path::new(&last.dir), &last.files)?;
    }
    summary.removed_temporary_files =
        files::remove_unrecorded(dir, |name| is_publication_file(name, &opts.name))?;
    Ok(last)
}

/// Records the publication and, for a delta, advances the cursor (in the caller's
/// transaction).
fn record(tx: &Connection, s: &PublishSummary, stamp: &str) -> anyhow::Result<()> {
    tx.execute(
        INSERT_PUBLICATION,
        params![
            s.kind,
            s.delta_number,
            stamp,
            s.dir,
            serde_json::to_string(&s.files)?,
            s.from_seq,
            s.to_seq,
            (s.new + s.updated) as i64,
            s.deleted as i64,
            crate::time::now_rfc3339(),
        ],
    )?;
    if s.kind == "delta" {
        set_published(tx, s.to_seq)?;
    }
    Ok(())
}

/// Advances the cursor to `to` (see [`SET_PUBLISHED`], [`PRUNE_LOG`]).
fn set_published(tx: &Connection, to: i64) -> rusqlite::Result<()> {
    tx.execute(SET_PUBLISHED, [to])?;
    tx.execute(PRUNE_LOG, [to])?;
    Ok(())
}

/// The folder, made if missing (mode 0750: the account that serves it reads it through its
/// group), as an absolute canonical path.
fn folder(dir: &Path, dry_run: bool) -> anyhow::Result<PathBuf> {
    if !dir.exists() && !dry_run {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o750);
        }
        builder
            .create(dir)
            .with_context(|| format!("cannot create the folder {}", dir.display()))?;
    }
    if dry_run && !dir.exists() {
        return Ok(std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()));
    }
    dir.canonicalize()
        .with_context(|| format!("cannot open the folder {}", dir.display()))
}

/// A snapshot in the folder of the delta publications would be imported by every store's
/// `delta`: refused.
fn refuse_delta_folder(conn: &Connection, dir: &Path) -> anyhow::Result<()> {
    let delta_dir: Option<String> = conn
        .query_row(LAST_DELTA_DIR, [], |r| r.get(0))
        .optional()?;
    if delta_dir.as_deref() == Some(&dir.display().to_string()) {
        return Err(UsageError(format!(
            "{} is the folder the changes are published to, which the stores import with \
             `delta`; write the snapshot to another folder (stores load it with `full \
             --from-xml`)",
            dir.display()
        ))
        .into());
    }
    Ok(())
}

fn last_publication(conn: &Connection) -> anyhow::Result<Option<LastPublication>> {
    let row = conn
        .query_row(LAST_PUBLICATION, [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?))
        })
        .optional()?;
    row.map(
        |(delta_number, stamp, dir, files): (i64, String, String, String)| {
            let files = serde_json::from_str(&files).with_context(|| {
                format!("the replica's record of publication {stamp} is damaged")
            })?;
            Ok(LastPublication {
                delta_number,
                stamp,
                dir,
                files,
            })
        },
    )
    .transpose()
}

/// The number of the last delta publication (0 before the first).
fn last_delta_number(last: &Option<LastPublication>) -> i64 {
    last.as_ref().map_or(0, |l| l.delta_number)
}

/// Whether `name` is a file name of a publication labelled `name_part`.
fn is_publication_file(file: &str, name_part: &str) -> bool {
    crate::export_xml::ExportFileName::parse(file).is_ok_and(|f| {
        f.label
            .strip_prefix(name_part)
            .and_then(|rest| {
                rest.strip_prefix("-d")
                    .or_else(|| rest.strip_prefix("-snapshot-d"))
            })
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// The file names' timestamp: now (UTC), or one second after the last publication's when
/// that is not earlier (several publications in one second, or a clock that stepped back).
pub fn next_stamp(last: Option<&str>, now: DateTime<Utc>) -> String {
    const FORMAT: &str = "%Y%m%d%H%M%S";
    let now = now.naive_utc();
    let at = match last.and_then(|l| NaiveDateTime::parse_from_str(l, FORMAT).ok()) {
        Some(last) if last.and_utc().timestamp() >= now.and_utc().timestamp() => {
            last + chrono::Duration::seconds(1)
        }
        _ => now,
    };
    at.format(FORMAT).to_string()
}

/// Writes the members: new contacts, updated ones, then deletes (a snapshot: every contact
/// under `<new>`, every tombstone under `<deleted>`).
fn write_members(
    tx: &Connection,
    mode: Mode,
    snapshot: bool,
    set: &mut FileSet,
    summary: &mut PublishSummary,
) -> anyhow::Result<()> {
    let (from, to) = (summary.from_seq, summary.to_seq);
    if snapshot {
        set.begin(Section::New);
        let sql = format!("{CONTACT_COLUMNS} contact NOT INDEXED WHERE contact_id IS NOT NULL");
        summary.new = write_contacts(tx, &sql, params![], mode, set)?;
    } else {
        // The first publication, or one after a bulk load: the whole table; else the log.
        let whole = from == 0 || tx.query_row(BULK_SINCE, [from], |r| r.get(0))?;
        let (source, new_source) = if whole {
            ("contact NOT INDEXED", "contact NOT INDEXED")
        } else {
            (LOGGED_ROWS, LOGGED_NEW_ROWS)
        };
        let range = "WHERE change_seq > ?1 AND change_seq <= ?2 AND contact_id IS NOT NULL";
        set.begin(Section::New);
        let sql = format!("{CONTACT_COLUMNS} {new_source} {range} AND created_seq > ?1");
        summary.new = write_contacts(tx, &sql, params![from, to], mode, set)?;
        set.begin(Section::Updated);
        let sql = format!("{CONTACT_COLUMNS} {source} {range} AND created_seq <= ?1");
        summary.updated = write_contacts(tx, &sql, params![from, to], mode, set)?;
    }
    set.begin(Section::Deleted);
    let mut stmt = if snapshot {
        tx.prepare(SNAPSHOT_TOMBSTONES)?
    } else {
        tx.prepare(DELTA_TOMBSTONES)?
    };
    let mut rows = if snapshot {
        stmt.query([])?
    } else {
        stmt.query(params![from, to])?
    };
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        set.member(|out, lossy| xml::write_member_fields(out, &id, &[], lossy))?;
        summary.deleted += 1;
    }
    Ok(())
}

/// The key columns a member is written from when no stored fields are (keys mode), in
/// [`CONTACT_COLUMNS`] order from its second column.
const COLUMN_FIELDS: [&str; 8] = [
    "memberNumber",
    "email",
    "mobilePhone",
    "externalId",
    "socialSecurityNumber",
    "contactType",
    "firstName",
    "lastName",
];

/// Writes the contacts `sql` selects ([`CONTACT_COLUMNS`]); returns how many. Values are read
/// in place from SQLite's row, and a full contact's fields straight from its JSON
/// (`json_xml`), so writing a member allocates nothing.
fn write_contacts(
    tx: &Connection,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
    mode: Mode,
    set: &mut FileSet,
) -> anyhow::Result<u64> {
    let mut stmt = tx.prepare(sql)?;
    let mut rows = stmt.query(params)?;
    let mut body = Vec::with_capacity(4096);
    let mut n = 0;
    while let Some(r) = rows.next()? {
        let id = r.get_ref(0)?.as_str()?;
        let attributes = match mode {
            Mode::Full => r.get_ref(9)?.as_str_or_null()?,
            Mode::Keys => None,
        };
        let mut member_lossy = Lossy::default();
        // A stored object that does not parse (never written so) falls back to the columns.
        let source = attributes
            .and_then(|json| json_xml::member_body(json, &mut body, &mut member_lossy).ok());
        match source {
            Some(source) => set.member(|out, lossy| {
                lossy.add(member_lossy);
                xml::write_member_open(out, source.as_deref(), lossy)?;
                xml::write_text_element(out, "contactId", id, lossy)?;
                out.write_all(&body)?;
                out.write_all(b"</member>\n")
            })?,
            None => {
                let mut fields = [("", None); 8];
                for (i, name) in COLUMN_FIELDS.iter().enumerate() {
                    fields[i] = (*name, r.get_ref(i + 1)?.as_str_or_null()?);
                }
                set.member(|out, lossy| xml::write_member_fields(out, id, &fields, lossy))?
            }
        }
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M%S")
            .expect("time")
            .and_utc()
    }

    /// Timestamps rise strictly: now when later than the last, else one second after it
    /// (same second, or a clock that stepped back).
    #[test]
    fn stamps_rise_strictly() {
        assert_eq!(next_stamp(None, at("20261206070000")), "20261206070000");
        assert_eq!(
            next_stamp(Some("20261206065959"), at("20261206070000")),
            "20261206070000"
        );
        assert_eq!(
            next_stamp(Some("20261206070000"), at("20261206070000")),
            "20261206070001"
        );
        assert_eq!(
            next_stamp(Some("20261206080000"), at("20261206070000")),
            "20261206080001"
        );
        assert_eq!(
            next_stamp(Some("20261231235959"), at("20261206070000")),
            "20270101000000"
        );
    }

    #[test]
    fn publication_files_are_told_from_others() {
        assert!(is_publication_file("20261206070000_0_hub-d12.xml", "hub"));
        assert!(is_publication_file(
            "20261206070000_3_hub-snapshot-d0.xml",
            "hub"
        ));
        assert!(!is_publication_file("20261206070000_0_hub-d.xml", "hub"));
        assert!(!is_publication_file("20261206070000_0_members.xml", "hub"));
        assert!(!is_publication_file("20261206070000_0_hubx-d1.xml", "hub"));
    }
}
