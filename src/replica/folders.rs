//! The local folders this replica has put export files in (archive, quarantine) or staged
//! them in (the inbox), recorded when a run uses them, so that `purge` covers every one of
//! them whatever the flags and config of the purge run itself (docs/contract.md §7).

use std::path::{Path, PathBuf};

use anyhow::Context;
use rusqlite::{params, Connection};
use serde::Serialize;

/// What a folder was used for; decides what purge deletes there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FolderKind {
    /// Applied export files moved there (`--archive`, `archive`).
    Archive,
    /// Refused export files moved there (`--quarantine`, `quarantine`).
    Quarantine,
    /// Where `delta` reads files (and the SFTP fetch downloads them): purge deletes only the
    /// files applied already and the fetch's unfinished downloads, never a file not imported.
    Inbox,
    /// Where a hub's `publish` writes files for the stores: purge deletes the published files
    /// (and temporary ones a killed `publish` left) older than the age.
    Published,
}

impl FolderKind {
    /// The name stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            FolderKind::Archive => "archive",
            FolderKind::Quarantine => "quarantine",
            FolderKind::Inbox => "inbox",
            FolderKind::Published => "published",
        }
    }

    fn parse(s: &str) -> Option<FolderKind> {
        [
            FolderKind::Archive,
            FolderKind::Quarantine,
            FolderKind::Inbox,
            FolderKind::Published,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A folder and what it was used for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UsedFolder {
    /// Canonical absolute path.
    pub path: PathBuf,
    /// What for.
    pub kind: FolderKind,
}

const UPSERT: &str = "INSERT INTO used_folder (path, kind, first_used_at, last_used_at) \
     VALUES (?1, ?2, ?3, ?3) ON CONFLICT(path, kind) DO UPDATE SET last_used_at = excluded.last_used_at";
const ALL: &str = "SELECT path, kind FROM used_folder ORDER BY path, kind";

/// Records `dir` by its canonical absolute path (see [`canonical`]), before any file goes
/// there: a crash between the two never leaves a folder purge does not know. The folder is not
/// created here: a run that cannot create it goes on as before (an archive that cannot be
/// written is a warning of the import, not a failure of the run). Returns the path recorded.
pub fn record(
    conn: &Connection,
    dir: &Path,
    kind: FolderKind,
    now: &str,
) -> anyhow::Result<PathBuf> {
    let path = canonical(dir);
    let text = path.to_str().with_context(|| {
        format!(
            "the {} folder {} is not valid UTF-8; use a folder with a plain name",
            kind.as_str(),
            path.display()
        )
    })?;
    conn.execute(UPSERT, params![text, kind.as_str(), now])
        .with_context(|| format!("cannot record the {} folder {}", kind.as_str(), text))?;
    Ok(path)
}

/// `dir` made absolute with symbolic links resolved, as far as it exists: the canonical form
/// of its nearest existing ancestor joined with the rest, so a folder created later (by the
/// move that first puts a file there) is recorded as it will be found.
pub fn canonical(dir: &Path) -> PathBuf {
    let absolute = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(dir))
            .unwrap_or_else(|_| dir.to_path_buf())
    };
    let mut rest = Vec::new();
    let mut cur = absolute.as_path();
    loop {
        if let Ok(real) = std::fs::canonicalize(cur) {
            return rest.iter().rev().fold(real, |p, part| p.join(part));
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                cur = parent;
            }
            _ => return absolute,
        }
    }
}

/// Every folder recorded (kinds this binary does not know are skipped).
pub fn all(conn: &Connection) -> rusqlite::Result<Vec<UsedFolder>> {
    let mut stmt = conn.prepare(ALL)?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (path, kind) = row?;
        if let Some(kind) = FolderKind::parse(&kind) {
            out.push(UsedFolder {
                path: PathBuf::from(path),
                kind,
            });
        }
    }
    Ok(out)
}
