//! The SFTP part of one `delta` run: [`fetch`] before the import (list, decide, download into
//! the inbox), [`Fetched::after_import`] after it (remove applied files from the server), and
//! the report both fill in.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use rusqlite::Connection;
use serde::Serialize;

use super::credentials::Credentials;
use super::error::SftpError;
use super::hostkey::HostKeyCheck;
use super::plan::{decide, Decision, LocalView, RemoteFile};
use super::session::Remote;
use super::transfer::{self, Transfer};
use crate::config::sftp::{AfterImport, SftpSettings};
use crate::export_xml::ExportFileName;
use crate::fsutil::create_private_dir;
use crate::import::sha256_file;
use crate::progress::Progress;
use crate::replica::ledger;

/// How `delta` runs the fetch.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// List and decide only: no download, no removal, no `known_hosts` change.
    pub dry_run: bool,
    /// The run's deadline: no connection, retry wait or transfer goes past it.
    pub deadline: Option<Instant>,
    /// `--trust-host-key`: the fingerprint of a host key the user trusts explicitly.
    pub trust_host_key: Option<String>,
    /// Show a progress bar on a terminal (else periodic log lines).
    pub show_progress: bool,
}

/// What happened on the server, for the summary and `--json`.
#[derive(Debug, Default, Serialize)]
pub struct SftpReport {
    /// `user@host:port`.
    pub server: String,
    /// The export folder.
    pub remote_dir: String,
    /// Regular files listed in the folder.
    pub files_listed: u64,
    /// Files downloaded (complete, in the inbox).
    pub files_downloaded: u64,
    /// Bytes of those files.
    pub bytes_downloaded: u64,
    /// Files deleted or moved on the server after they were applied.
    pub files_removed: u64,
    /// Per file, in import order.
    pub files: Vec<RemoteFileReport>,
    /// Things the user should know (a key trusted, a file held back or left alone).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The failure that stopped the fetch, if any (the import of complete files still ran).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One file in the export folder.
#[derive(Debug, Clone, Serialize)]
pub struct RemoteFileReport {
    /// File name.
    pub name: String,
    /// Size on the server.
    pub size: u64,
    /// What was done: downloaded, already_applied, in_inbox, too_new, would_download, …
    pub action: String,
    /// What happened on the server after the import, when files are removed there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_import: Option<String>,
}

/// A file that may be removed from the server after the import.
struct Candidate {
    /// Index into `report.files`.
    index: usize,
    /// The server's file as listed.
    file: RemoteFile,
    /// SHA-256 of the copy downloaded in this run; `None` for a copy an earlier run left in
    /// the inbox, which is not proof of what the server holds now: the file is downloaded
    /// again and compared before it is removed.
    sha: Option<String>,
}

/// The state between fetch and cleanup.
pub struct Fetched {
    remote: Option<Remote>,
    after: AfterImport,
    remote_dir: String,
    dry_run: bool,
    /// Files that may be removed from the server (only if the ledger holds exactly their
    /// content).
    candidates: Vec<Candidate>,
    /// Where a file the ledger holds is downloaded again to compare it before its removal.
    verify_dir: PathBuf,
    /// The report.
    pub report: SftpReport,
    /// Why the fetch stopped early; `delta` imports what is complete, then reports it.
    pub error: Option<anyhow::Error>,
}

/// Lists the export folder, decides per file, and (unless a dry run) downloads what is new
/// into `inbox`, in import order. Never fails as a whole: a failure stops the fetch, is kept in
/// [`Fetched::error`], and the files downloaded before it are still imported.
pub fn fetch(s: &SftpSettings, inbox: &Path, conn: &Connection, opts: &FetchOptions) -> Fetched {
    let mut f = Fetched {
        remote: None,
        after: s.after_import.clone(),
        remote_dir: s.remote_dir.clone(),
        dry_run: opts.dry_run,
        candidates: Vec::new(),
        verify_dir: inbox.join(".verify"),
        report: SftpReport {
            server: s.server(),
            remote_dir: s.remote_dir.clone(),
            ..SftpReport::default()
        },
        error: None,
    };
    if let Err(e) = f.run(s, inbox, conn, opts) {
        f.report.error = Some(format!("{e:#}"));
        f.error = Some(e);
    }
    if let Some(remote) = f.remote.as_mut() {
        f.report.warnings.extend(remote.take_notes());
    }
    f
}

impl Fetched {
    fn run(
        &mut self,
        s: &SftpSettings,
        inbox: &Path,
        conn: &Connection,
        opts: &FetchOptions,
    ) -> anyhow::Result<()> {
        let creds = Credentials::load(s)?;
        let check = HostKeyCheck::new(
            &s.host,
            s.port,
            s.host_key.clone(),
            opts.trust_host_key.clone(),
        );
        let remote = self
            .remote
            .insert(Remote::new(s, creds, check, opts.dry_run, opts.deadline)?);
        let (dir, server) = (s.remote_dir.clone(), s.server());
        let listing = remote.call(&format!("listing {dir}"), async |sftp| {
            transfer::list(sftp, &dir, &server).await
        })?;
        tracing::info!(
            "{} files in {dir} on the SFTP server {server}",
            listing.len()
        );
        self.report.files_listed = listing.len() as u64;
        let planned = plan(s, inbox, conn, listing)?;
        if !opts.dry_run {
            create_private_dir(inbox)?;
            let stale = transfer::remove_stale_temps(inbox);
            if stale > 0 {
                tracing::info!("removed {stale} incomplete download(s) of an interrupted run");
            }
        }
        self.report_plan(&planned);
        if opts.dry_run {
            return Ok(());
        }
        self.download_all(&planned, inbox, opts.show_progress)
    }

    /// Fills the report from the decisions, warns about files left alone, and notes the
    /// files in the inbox that may be removed from the server after the import.
    fn report_plan(&mut self, planned: &[(RemoteFile, Decision)]) {
        let removes = self.after != AfterImport::Leave;
        for (file, decision) in planned {
            let action = match (self.dry_run, decision) {
                (true, d) if d.downloads() => format!("would_{}", d.as_str()),
                (_, d) => d.as_str().to_string(),
            };
            if let Some(w) = warning(file, decision) {
                tracing::warn!("{w}");
                self.report.warnings.push(w);
            }
            let after_import =
                (removes && decision.may_clean_up() && self.dry_run).then(|| self.would_remove());
            self.report.files.push(RemoteFileReport {
                name: file.name.clone(),
                size: file.size,
                action,
                after_import,
            });
            if removes && !self.dry_run && *decision == Decision::InInbox {
                self.candidates.push(Candidate {
                    index: self.report.files.len() - 1,
                    file: file.clone(),
                    sha: None,
                });
            }
        }
    }

    fn would_remove(&self) -> String {
        match &self.after {
            AfterImport::Move(dir) => format!("would be moved to {dir} on the server once applied"),
            _ => "would be deleted from the server once applied".into(),
        }
    }

    /// Downloads the files decided so, in order; stops at the first failure (the files
    /// before it are complete and get imported).
    fn download_all(
        &mut self,
        planned: &[(RemoteFile, Decision)],
        inbox: &Path,
        show_progress: bool,
    ) -> anyhow::Result<()> {
        let removes = self.after != AfterImport::Leave;
        let total: u64 = planned
            .iter()
            .filter(|(_, d)| d.downloads())
            .map(|(f, _)| f.size)
            .sum();
        let progress = Progress::new("download", total, show_progress).counting("files");
        let dir = self.remote_dir.clone();
        let Some(remote) = self.remote.as_mut() else {
            return Ok(());
        };
        let mut failure = None;
        for (i, (file, decision)) in planned.iter().enumerate() {
            if !decision.downloads() {
                continue;
            }
            if failure.is_some() {
                self.report.files[i].action = "not_tried".into();
                continue;
            }
            let started = Instant::now();
            let result = remote.call(&format!("downloading {}", file.name), async |sftp| {
                transfer::download(sftp, &dir, file, inbox, &progress).await
            });
            let entry = &mut self.report.files[i];
            match result {
                Ok(Transfer::Complete) => {
                    entry.action = match decision {
                        Decision::Confirm => "downloaded_to_confirm".into(),
                        _ => "downloaded".into(),
                    };
                    self.report.files_downloaded += 1;
                    self.report.bytes_downloaded += file.size;
                    progress.inc_items(1);
                    tracing::info!(
                        "downloaded {} ({} bytes) in {:.1} s",
                        file.name,
                        file.size,
                        started.elapsed().as_secs_f64()
                    );
                    if removes {
                        let sha = sha256_file(&inbox.join(&file.name))?;
                        self.candidates.push(Candidate {
                            index: i,
                            file: file.clone(),
                            sha: Some(sha),
                        });
                    }
                }
                Ok(Transfer::Changed(why)) => {
                    entry.action = "changing".into();
                    let w = format!(
                        "{} was not downloaded: {why}; the next run tries again",
                        file.name
                    );
                    tracing::warn!("{w}");
                    self.report.warnings.push(w);
                }
                Err(e) => {
                    entry.action = "failed".into();
                    failure = Some(e);
                }
            }
        }
        progress.finish();
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// After the import: deletes or moves on the server each downloaded (or inbox) file the
    /// ledger now holds, committed, with the SHA-256 of the local copy. Files not applied
    /// (quarantined, not tried, refused) stay on the server. Returns the first failure.
    pub fn after_import(&mut self, conn: &Connection) -> anyhow::Result<()> {
        if self.dry_run || self.candidates.is_empty() || self.after == AfterImport::Leave {
            return Ok(());
        }
        if !conn.is_autocommit() {
            let w = "the replica's transaction is still open, so no file is removed from the \
                     server in this run"
                .to_string();
            tracing::warn!("{w}");
            self.report.warnings.push(w);
            return Ok(());
        }
        let Some(remote) = self.remote.as_mut() else {
            return Ok(());
        };
        let dir = self.remote_dir.clone();
        let mut first_error: Option<SftpError> = None;
        let server = self.report.server.clone();
        for candidate in std::mem::take(&mut self.candidates) {
            let entry = &mut self.report.files[candidate.index];
            if first_error.as_ref().is_some_and(ends_cleanup) {
                entry.after_import = Some("left on the server: the run stopped before".into());
                continue;
            }
            let Some(applied) = ledger::applied_hash(conn, &entry.name)? else {
                entry.after_import = Some("left on the server: not applied".into());
                continue;
            };
            // A copy downloaded in this run went through the import, which refused it if it
            // was another file under an applied name; one compared here is refused here.
            let compared = candidate.sha.is_none();
            let sha = match candidate.sha {
                Some(sha) => sha,
                None => match verify(remote, &dir, &candidate.file, &self.verify_dir) {
                    Ok(Some(sha)) => sha,
                    Ok(None) => {
                        entry.after_import =
                            Some("left on the server: it changed while it was compared".into());
                        continue;
                    }
                    Err(e) => {
                        entry.after_import = Some(format!("left on the server: {e}"));
                        first_error.get_or_insert(e);
                        continue;
                    }
                },
            };
            if applied != sha {
                entry.after_import =
                    Some("left on the server: its content is not the applied file's".into());
                if compared {
                    let e = SftpError::Differs {
                        name: entry.name.clone(),
                        server: server.clone(),
                        found: sha,
                    };
                    tracing::error!("{e}");
                    first_error.get_or_insert(e);
                }
                continue;
            }
            let name = entry.name.clone();
            let result = match &self.after {
                AfterImport::Move(archive) => remote
                    .call(&format!("moving {name} to {archive}"), async |sftp| {
                        transfer::archive(sftp, &dir, &name, archive).await
                    }),
                _ => remote.call(&format!("deleting {name}"), async |sftp| {
                    transfer::delete(sftp, &dir, &name).await
                }),
            };
            match result {
                Ok(done) => {
                    tracing::info!("{name}: {done}");
                    entry.after_import = Some(done);
                    self.report.files_removed += 1;
                }
                Err(e) => {
                    entry.after_import = Some(format!("left on the server: {e}"));
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Ends the SSH session.
    pub fn close(&mut self) {
        if let Some(remote) = self.remote.as_mut() {
            remote.close();
        }
    }
}

/// Downloads the server's `file` again into `verify_dir` and returns its SHA-256 (`None` if it
/// changed or vanished meanwhile); the copy is removed afterwards.
fn verify(
    remote: &mut Remote,
    dir: &str,
    file: &RemoteFile,
    verify_dir: &Path,
) -> Result<Option<String>, SftpError> {
    create_private_dir(verify_dir).map_err(|e| SftpError::Setup(format!("{e:#}")))?;
    // A link planted there would have the copy renamed into another folder.
    if !std::fs::symlink_metadata(verify_dir).is_ok_and(|m| m.is_dir()) {
        return Err(SftpError::Setup(format!(
            "{} is not a folder of its own (a symbolic link?); remove it",
            verify_dir.display()
        )));
    }
    let progress = Progress::hidden();
    let result = remote.call(
        &format!("downloading {} to compare it", file.name),
        async |sftp| transfer::download(sftp, dir, file, verify_dir, &progress).await,
    );
    let copy = verify_dir.join(&file.name);
    let sha = match result {
        Ok(Transfer::Complete) => sha256_file(&copy)
            .map(Some)
            .map_err(|e| SftpError::Setup(format!("cannot read {}: {e:#}", copy.display()))),
        Ok(Transfer::Changed(_)) => Ok(None),
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_file(&copy);
    sha
}

/// Errors after which no further operation in this run can succeed.
fn ends_cleanup(e: &SftpError) -> bool {
    matches!(
        e,
        SftpError::Deadline { .. } | SftpError::Unavailable { .. } | SftpError::Transient { .. }
    )
}

/// Decides per file, export files in import order (timestamp, file number), others after.
fn plan(
    s: &SftpSettings,
    inbox: &Path,
    conn: &Connection,
    listing: Vec<RemoteFile>,
) -> anyhow::Result<Vec<(RemoteFile, Decision)>> {
    let removes = s.after_import != AfterImport::Leave;
    let now = SystemTime::now();
    let mut planned = Vec::with_capacity(listing.len());
    for file in listing {
        let view = local_view(conn, inbox, &file.name)?;
        let decision = decide(&file, &view, removes, now, s.min_age);
        planned.push((file, decision));
    }
    planned.sort_by(|(a, _), (b, _)| {
        let key = |f: &RemoteFile| {
            ExportFileName::parse(&f.name)
                .ok()
                .map(|n| (n.timestamp.clone(), n.file_number))
        };
        match (key(a), key(b)) {
            (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.name.cmp(&b.name)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.name.cmp(&b.name),
        }
    });
    Ok(planned)
}

/// What the inbox, the ledger and the quarantine records know about a name.
fn local_view(conn: &Connection, inbox: &Path, name: &str) -> anyhow::Result<LocalView> {
    if name.contains(['/', '\\', '\0']) {
        return Ok(LocalView::default());
    }
    let size_of = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    };
    Ok(LocalView {
        inbox_size: size_of(&inbox.join(name)),
        applied: ledger::applied_size_and_hash(conn, name)?,
        quarantined: ledger::last_quarantine(conn, name)?
            .map(|moved_to| moved_to.and_then(|p| size_of(Path::new(&p)))),
    })
}

/// The warning for a file left alone, if it deserves one.
fn warning(file: &RemoteFile, decision: &Decision) -> Option<String> {
    let name = &file.name;
    match decision {
        Decision::QuarantinedBefore => Some(format!(
            "{name} is still on the SFTP server but was quarantined earlier (see `engage-sync \
             status`), so it is not downloaded again: ask Voyado for a corrected export, or \
             put a fixed copy in the inbox"
        )),
        Decision::InboxDiffers => Some(format!(
            "the inbox holds another file named {name} (the server's is {} bytes); the inbox \
             copy is imported and the server's is left alone",
            file.size
        )),
        Decision::NotAnExport(why) if name.to_ascii_lowercase().ends_with(".xml") => {
            Some(format!("{name} on the SFTP server is left alone: {why}"))
        }
        Decision::NotAnExport(_) => {
            tracing::debug!("{name} on the SFTP server is not an export file; left alone");
            None
        }
        Decision::TooNew => {
            tracing::info!(
                "{name} changed on the SFTP server within [sftp] min_age; Engage may still be \
                 writing it, so the next run takes it"
            );
            None
        }
        _ => None,
    }
}
