//! The operations on the server: listing the export folder, downloading one file into the
//! inbox (temporary name, size check, second look, fsync, rename), deleting or moving one file.
//! Each is safe to repeat after a dropped connection, which is how [`super::session::Remote`]
//! retries them.

use std::io::{SeekFrom, Write};
use std::path::{Path, PathBuf};

use russh_sftp::client::SftpSession;
use russh_sftp::protocol::StatusCode;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::error::SftpError;
use super::plan::RemoteFile;
use super::session::{is_status, OpError};
use crate::progress::Progress;

/// Read size per call; russh-sftp keeps several requests in flight underneath.
const READ_BUF: usize = 256 * 1024;

/// `dir/name` in the server's `/`-separated paths.
pub(crate) fn remote_path(dir: &str, name: &str) -> String {
    match dir {
        "" | "." => name.to_string(),
        "/" => format!("/{name}"),
        _ => format!("{dir}/{name}"),
    }
}

/// The hidden name a file is downloaded to; `delta` ignores names starting with a dot.
pub(crate) fn temp_path(inbox: &Path, name: &str) -> PathBuf {
    inbox.join(format!(".{name}.part"))
}

/// Regular files in the export folder.
pub(crate) async fn list(
    sftp: &SftpSession,
    dir: &str,
    server: &str,
) -> Result<Vec<RemoteFile>, OpError> {
    let entries = match sftp.read_dir(dir).await {
        Ok(entries) => entries,
        Err(e) if is_status(&e, StatusCode::NoSuchFile) => {
            return Err(OpError::Fatal(SftpError::NoRemoteDir {
                dir: dir.to_string(),
                server: server.to_string(),
            }))
        }
        Err(e) => return Err(e.into()),
    };
    let mut files = Vec::new();
    for entry in entries {
        let mut meta = entry.metadata();
        // Regular files; a server that does not report types (no permissions) is taken at
        // its word that the folder holds files.
        let regular = entry.file_type().is_file()
            || (meta.permissions.is_none() && entry.file_type().is_other());
        if !regular {
            continue;
        }
        if meta.size.is_none() {
            meta = sftp.metadata(entry.path()).await?;
        }
        let Some(size) = meta.size else {
            tracing::warn!(
                "{} on the SFTP server has no size in its listing; left alone",
                entry.file_name()
            );
            continue;
        };
        files.push(RemoteFile {
            name: entry.file_name(),
            size,
            mtime: meta.mtime,
        });
    }
    Ok(files)
}

/// How a download ended.
#[derive(Debug)]
pub(crate) enum Transfer {
    /// The file is in the inbox under its name, complete.
    Complete,
    /// The file changed or vanished on the server during the transfer (Engage may still be
    /// writing it); nothing was kept, the next run tries again.
    Changed(String),
}

/// Downloads `file` from `dir` into `inbox`: appends to the temporary file from where an
/// earlier attempt stopped, checks the size, looks at the server's copy again, flushes and
/// renames. Never leaves a file under its real name unless it is complete.
pub(crate) async fn download(
    sftp: &SftpSession,
    dir: &str,
    file: &RemoteFile,
    inbox: &Path,
    progress: &Progress,
) -> Result<Transfer, OpError> {
    let path = remote_path(dir, &file.name);
    let tmp = temp_path(inbox, &file.name);
    let local_err =
        |what: &str, e| OpError::Fatal(SftpError::local(format!("{what} {}", tmp.display()), e));
    let mut local = open_private_append(&tmp).map_err(|e| local_err("cannot create", e))?;
    let mut offset = local
        .metadata()
        .map_err(|e| local_err("cannot read", e))?
        .len();
    if offset > file.size {
        local
            .set_len(0)
            .map_err(|e| local_err("cannot truncate", e))?;
        offset = 0;
    }
    let mut remote = match sftp.open(path.as_str()).await {
        Ok(f) => f,
        Err(e) if is_status(&e, StatusCode::NoSuchFile) => {
            discard(&tmp);
            return Ok(Transfer::Changed("it disappeared from the server".into()));
        }
        Err(e) => return Err(e.into()),
    };
    if offset > 0 {
        tracing::info!("{}: resuming the download at byte {offset}", file.name);
        remote.seek(SeekFrom::Start(offset)).await?;
    }
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let n = remote.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        local
            .write_all(&buf[..n])
            .map_err(|e| local_err("cannot write", e))?;
        offset += n as u64;
        progress.inc_bytes(n as u64);
        if offset > file.size {
            break;
        }
    }
    drop(remote);
    if offset != file.size {
        discard(&tmp);
        return Ok(Transfer::Changed(format!(
            "its size changed during the download ({} bytes listed, {offset} read)",
            file.size
        )));
    }
    if let Some(why) = changed_since_listing(sftp, &path, file).await? {
        discard(&tmp);
        return Ok(Transfer::Changed(why));
    }
    local.sync_all().map_err(|e| local_err("cannot flush", e))?;
    drop(local);
    let target = inbox.join(&file.name);
    std::fs::rename(&tmp, &target).map_err(|e| {
        OpError::Fatal(SftpError::local(
            format!("cannot rename {} to {}", tmp.display(), target.display()),
            e,
        ))
    })?;
    sync_dir(inbox);
    Ok(Transfer::Complete)
}

/// A second look at the server's copy after the transfer: a file Engage was still writing
/// has grown or been touched since it was listed.
async fn changed_since_listing(
    sftp: &SftpSession,
    path: &str,
    file: &RemoteFile,
) -> Result<Option<String>, OpError> {
    let meta = match sftp.metadata(path).await {
        Ok(m) => m,
        Err(e) if is_status(&e, StatusCode::NoSuchFile) => {
            return Ok(Some("it disappeared from the server".into()))
        }
        Err(e) => return Err(e.into()),
    };
    if meta.size != Some(file.size) || (file.mtime.is_some() && meta.mtime != file.mtime) {
        return Ok(Some(format!(
            "it changed on the server during the download (now {} bytes)",
            meta.size.unwrap_or(0)
        )));
    }
    Ok(None)
}

/// Removes a file from the server; one already gone counts as removed.
pub(crate) async fn delete(sftp: &SftpSession, dir: &str, name: &str) -> Result<String, OpError> {
    match sftp.remove_file(remote_path(dir, name)).await {
        Ok(()) => Ok("deleted from the server".into()),
        Err(e) if is_status(&e, StatusCode::NoSuchFile) => {
            Ok("already gone from the server".into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Moves a file into the archive folder on the server (created if missing), adding `.1`,
/// `.2`, … when the name is taken there, as the local archive does.
pub(crate) async fn archive(
    sftp: &SftpSession,
    dir: &str,
    name: &str,
    archive_dir: &str,
) -> Result<String, OpError> {
    if !sftp.try_exists(archive_dir).await? {
        if let Err(e) = sftp.create_dir(archive_dir).await {
            // Another client may have created it meanwhile.
            if !sftp.try_exists(archive_dir).await? {
                return Err(e.into());
            }
        }
    }
    let source = remote_path(dir, name);
    if !sftp.try_exists(source.as_str()).await? {
        return Ok("already gone from the server".into());
    }
    for n in 0..1000 {
        let target = match n {
            0 => remote_path(archive_dir, name),
            n => remote_path(archive_dir, &format!("{name}.{n}")),
        };
        if sftp.try_exists(target.as_str()).await? {
            continue;
        }
        sftp.rename(source.as_str(), target.as_str()).await?;
        return Ok(format!("moved to {target} on the server"));
    }
    Err(OpError::Fatal(SftpError::Remote {
        what: format!("moving {name} to {archive_dir}"),
        server: String::new(),
        message: "a thousand files of that name are in the archive folder already".into(),
    }))
}

/// Creates or opens a file for appending, readable by the owner only (it holds personal data).
/// Never through a symbolic link, and only a plain file of its own (the inbox may be shared).
fn open_private_append(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    crate::fsutil::no_follow_private(&mut o);
    let file = o
        .open(path)
        .map_err(|e| crate::fsutil::refused_link(e, path))?;
    crate::fsutil::check_own_file(&file, path)?;
    Ok(file)
}

/// Removes a temporary file; a failure only leaves a hidden file the next run removes.
fn discard(tmp: &Path) {
    if let Err(e) = std::fs::remove_file(tmp) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("cannot remove {}: {e}", tmp.display());
        }
    }
}

/// Flushes a folder, so a rename in it survives a power cut (best effort).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Removes temporary files an interrupted run left in the inbox; returns how many.
pub(crate) fn remove_stale_temps(inbox: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(inbox) else {
        return 0;
    };
    let mut n = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".part") {
            discard(&entry.path());
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_paths_join_with_slashes() {
        assert_eq!(
            remote_path("integration/customerExport", "a.xml"),
            "integration/customerExport/a.xml"
        );
        assert_eq!(remote_path(".", "a.xml"), "a.xml");
        assert_eq!(remote_path("/", "a.xml"), "/a.xml");
    }

    #[test]
    fn stale_temps_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(temp_path(dir.path(), "x.xml"), "half").expect("write");
        std::fs::write(dir.path().join("x.xml"), "whole").expect("write");
        assert_eq!(remove_stale_temps(dir.path()), 1);
        assert!(dir.path().join("x.xml").exists());
        assert!(!temp_path(dir.path(), "x.xml").exists());
    }
}
