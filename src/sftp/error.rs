//! What can go wrong fetching from the SFTP server, each with its exit code (docs/contract.md §8):
//! an unreachable server 69, a dropped or stalled connection 75, a refused login or host key 77, a
//! wrong setting 78. Messages name the server and the file, and never a password.

use crate::error::{Coded, ExitCode};

/// Everything that can go wrong talking to the SFTP server.
#[derive(Debug, thiserror::Error)]
pub enum SftpError {
    /// A setting is wrong or missing (78).
    #[error("{0}")]
    Config(String),
    /// The server's host key is unknown, changed, or does not match the pin (77). The message
    /// names the presented fingerprint and how to trust it.
    #[error("{0}")]
    HostKey(String),
    /// The server refused the login (77).
    #[error(
        "the SFTP server {server} refused the login ({tried}): check [sftp] user, the key \
         (its public half must be registered with Voyado) or the password"
    )]
    Auth {
        /// `user@host:port`.
        server: String,
        /// The methods tried, e.g. "public key /etc/engage-sync/id_ed25519, password".
        tried: String,
    },
    /// No attempt got a working SSH session (69).
    #[error(
        "cannot connect to the SFTP server {server} ({attempts} attempts): {cause}; check \
         [sftp] host and port, DNS, the firewall, and that Voyado allows this machine's address"
    )]
    Unavailable {
        /// `user@host:port`.
        server: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        cause: String,
    },
    /// The connection kept dropping or stalling during an operation (75).
    #[error(
        "{what} on the SFTP server {server} failed {attempts} times, last: {cause}; nothing \
         incomplete was imported, and the next run continues where this one stopped"
    )]
    Transient {
        /// The operation, e.g. "downloading 20260101100000_0_customers.xml".
        what: String,
        /// `user@host:port`.
        server: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        cause: String,
    },
    /// A file the ledger holds under this name is on the server with other content (same
    /// name and size): not removed from the server (65).
    #[error(
        "{name} on the SFTP server {server} is not the file of that name applied earlier (same \
         size, other content, SHA-256 {found}): it was left on the server and not imported. \
         Ask Voyado why an export was rewritten under an old name; to import it, download it, \
         give it a new export file name and put it in the inbox"
    )]
    Differs {
        /// The file name.
        name: String,
        /// `user@host:port`.
        server: String,
        /// The server copy's SHA-256.
        found: String,
    },
    /// The run's deadline passed (75).
    #[error("the run's deadline passed while {what}; the rest is left for the next run")]
    Deadline {
        /// What was going on.
        what: String,
    },
    /// The server denied an operation (77).
    #[error(
        "{what}: the SFTP server {server} denied permission ({message}); ask the Voyado team \
         for the right, or change [sftp] after_import / remote_archive_dir"
    )]
    Permission {
        /// The operation.
        what: String,
        /// `user@host:port`.
        server: String,
        /// The server's message.
        message: String,
    },
    /// The export folder does not exist on the server (78).
    #[error(
        "the folder {dir:?} does not exist on the SFTP server {server}: check [sftp] \
         remote_dir (Engage's export folder is integration/customerExport, in older setups \
         integration/contactExport)"
    )]
    NoRemoteDir {
        /// The folder.
        dir: String,
        /// `user@host:port`.
        server: String,
    },
    /// The server answered an operation with an error other than the above (69).
    #[error("{what} failed on the SFTP server {server}: {message}")]
    Remote {
        /// The operation.
        what: String,
        /// `user@host:port`.
        server: String,
        /// The server's message.
        message: String,
    },
    /// A local file could not be written (74, or 77 for permission denied).
    #[error("{what}: {source}")]
    Local {
        /// What was being done, naming the file.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The SSH client could not be set up (74).
    #[error("cannot set up the SFTP client: {0}")]
    Setup(String),
}

impl SftpError {
    /// A local I/O failure.
    pub(crate) fn local(what: impl Into<String>, source: std::io::Error) -> SftpError {
        SftpError::Local {
            what: what.into(),
            source,
        }
    }
}

impl Coded for SftpError {
    fn exit_code(&self) -> ExitCode {
        match self {
            SftpError::Config(_) | SftpError::NoRemoteDir { .. } => ExitCode::Config,
            SftpError::HostKey(_) | SftpError::Auth { .. } | SftpError::Permission { .. } => {
                ExitCode::NoPerm
            }
            SftpError::Unavailable { .. } | SftpError::Remote { .. } => ExitCode::Unavailable,
            SftpError::Transient { .. } | SftpError::Deadline { .. } => ExitCode::TempFail,
            SftpError::Local { source, .. } => match source.kind() {
                std::io::ErrorKind::PermissionDenied => ExitCode::NoPerm,
                _ => ExitCode::IoErr,
            },
            SftpError::Setup(_) => ExitCode::IoErr,
            SftpError::Differs { .. } => ExitCode::DataErr,
        }
    }
}
