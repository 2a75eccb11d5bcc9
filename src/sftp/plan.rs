//! Deciding, per file in the server's export folder, whether to download it: a pure function
//! of the listing, the inbox, the replica's ledger and quarantine records, so it is tested
//! without a server and `--dry-run` reports exactly what a real run would do.

use std::time::{Duration, SystemTime};

use crate::export_xml::ExportFileName;

/// A regular file in the server's export folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// File name (no folder).
    pub name: String,
    /// Size in bytes, from the listing.
    pub size: u64,
    /// Modification time in seconds since the Unix epoch, if the server sent one.
    pub mtime: Option<u32>,
}

/// What the local side knows about a file name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalView {
    /// Size of a complete file of that name already in the inbox.
    pub inbox_size: Option<u64>,
    /// Size and SHA-256 of the ledger's applied file of that name.
    pub applied: Option<(u64, String)>,
    /// The file was quarantined earlier: the size of the quarantined copy, if it is still
    /// there (purge removes old copies).
    pub quarantined: Option<Option<u64>>,
}

/// What to do with one remote file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// New: download it, then import it.
    Download,
    /// Applied before (same name and size), but files are removed from the server after
    /// import: download it again so its content is compared with the ledger's hash before the
    /// server's copy is removed.
    Confirm,
    /// A complete copy is in the inbox already (an earlier run downloaded it): import it.
    InInbox,
    /// Applied before (same name and size): not downloaded again.
    AlreadyApplied,
    /// Quarantined earlier and unchanged on the server: not downloaded again (`status` lists
    /// it; fix it with Voyado, then put a good copy in the inbox).
    QuarantinedBefore,
    /// The inbox holds another file of that name (other size): the inbox copy is imported,
    /// the server's copy is left alone.
    InboxDiffers,
    /// Modified on the server within `min_age`: Engage may still be writing it; next run.
    TooNew,
    /// Not an export file name (or an unsafe one): left alone.
    NotAnExport(String),
}

impl Decision {
    /// The name used in reports and JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Download => "download",
            Decision::Confirm => "download_to_confirm",
            Decision::InInbox => "in_inbox",
            Decision::AlreadyApplied => "already_applied",
            Decision::QuarantinedBefore => "quarantined_before",
            Decision::InboxDiffers => "inbox_differs",
            Decision::TooNew => "too_new",
            Decision::NotAnExport(_) => "not_an_export_file",
        }
    }

    /// True when the file is transferred.
    pub fn downloads(&self) -> bool {
        matches!(self, Decision::Download | Decision::Confirm)
    }

    /// True when the file may be removed from the server after the import (if it is then in
    /// the ledger with the hash of the local copy).
    pub fn may_clean_up(&self) -> bool {
        matches!(
            self,
            Decision::Download | Decision::Confirm | Decision::InInbox
        )
    }
}

/// Decides about one file. `removes` is true when applied files are deleted or moved on the
/// server; `now` and `min_age` hold back files Engage may still be writing.
pub fn decide(
    file: &RemoteFile,
    local: &LocalView,
    removes: bool,
    now: SystemTime,
    min_age: Duration,
) -> Decision {
    if let Some(why) = unsafe_name(&file.name) {
        return Decision::NotAnExport(why);
    }
    if let Err(why) = ExportFileName::parse(&file.name) {
        return Decision::NotAnExport(why);
    }
    if let Some(size) = local.inbox_size {
        return if size == file.size {
            Decision::InInbox
        } else {
            Decision::InboxDiffers
        };
    }
    if let Some((size, _)) = &local.applied {
        if *size == file.size {
            return if removes {
                Decision::Confirm
            } else {
                Decision::AlreadyApplied
            };
        }
        // Same name, other size: downloaded, so the import refuses it loudly (docs/contract.md §4).
    }
    if let Some(copy) = local.quarantined {
        if copy.is_none_or(|size| size == file.size) {
            return Decision::QuarantinedBefore;
        }
    }
    let modified = file
        .mtime
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(s)));
    if modified.is_some_and(|m| now.duration_since(m).unwrap_or(Duration::ZERO) < min_age) {
        return Decision::TooNew;
    }
    Decision::Download
}

/// A name a server could send that must never become a local path: separators, NUL, a
/// leading dot (hidden; our temporary names start with one).
fn unsafe_name(name: &str) -> Option<String> {
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\', '\0']) {
        Some(format!("{name:?} is not a plain file name"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "20260101100000_0_customers.xml";

    fn file(size: u64, mtime: u32) -> RemoteFile {
        RemoteFile {
            name: NAME.into(),
            size,
            mtime: Some(mtime),
        }
    }

    fn decide_at(f: &RemoteFile, l: &LocalView, removes: bool) -> Decision {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        decide(f, l, removes, now, Duration::from_secs(60))
    }

    #[test]
    fn new_files_download_unless_too_new() {
        let l = LocalView::default();
        assert_eq!(decide_at(&file(10, 9_000), &l, false), Decision::Download);
        assert_eq!(decide_at(&file(10, 9_990), &l, false), Decision::TooNew);
        // A clock ahead of ours: too new until our clock catches up.
        assert_eq!(decide_at(&file(10, 20_000), &l, false), Decision::TooNew);
        let no_time = RemoteFile {
            mtime: None,
            ..file(10, 0)
        };
        assert_eq!(decide_at(&no_time, &l, false), Decision::Download);
    }

    #[test]
    fn the_ledger_and_inbox_spare_downloads() {
        let applied = LocalView {
            applied: Some((10, "abc".into())),
            ..LocalView::default()
        };
        let f = file(10, 9_000);
        assert_eq!(decide_at(&f, &applied, false), Decision::AlreadyApplied);
        assert_eq!(decide_at(&f, &applied, true), Decision::Confirm);
        // Other content under an applied name is downloaded, so the import refuses it.
        assert_eq!(
            decide_at(&file(11, 9_000), &applied, false),
            Decision::Download
        );
        let inbox = LocalView {
            inbox_size: Some(10),
            ..LocalView::default()
        };
        assert_eq!(decide_at(&f, &inbox, true), Decision::InInbox);
        assert_eq!(
            decide_at(&file(9, 9_000), &inbox, true),
            Decision::InboxDiffers
        );
    }

    #[test]
    fn quarantined_files_wait_for_a_human() {
        let q = |copy| LocalView {
            quarantined: Some(copy),
            ..LocalView::default()
        };
        let f = file(10, 9_000);
        assert_eq!(
            decide_at(&f, &q(Some(10)), true),
            Decision::QuarantinedBefore
        );
        assert_eq!(decide_at(&f, &q(None), true), Decision::QuarantinedBefore);
        assert_eq!(decide_at(&f, &q(Some(7)), true), Decision::Download);
    }

    #[test]
    fn odd_names_are_left_alone() {
        for name in [
            "notes.txt",
            "../20260101100000_0_x.xml",
            ".20260101100000_0_x.xml",
        ] {
            let f = RemoteFile {
                name: name.into(),
                ..file(1, 1)
            };
            assert!(matches!(
                decide_at(&f, &LocalView::default(), true),
                Decision::NotAnExport(_)
            ));
        }
        let f = RemoteFile {
            name: "20260101100000_0_a/b.xml".into(),
            ..file(1, 1)
        };
        assert!(matches!(
            decide_at(&f, &LocalView::default(), true),
            Decision::NotAnExport(_)
        ));
    }
}
