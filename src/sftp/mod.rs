//! `delta` straight from Engage's SFTP server (docs/engage-api.md §5.1): list the export folder,
//! download the files the replica has not applied into the local inbox, and, once a file is
//! applied, delete it on the server or move it to a remote archive folder (if configured).
//!
//! The import itself is `delta`'s: this module only fills the inbox and cleans up the server
//! afterwards, so a downloaded file is imported exactly like one a mirror script put there.
//!
//! Invariants:
//! - a file reaches its name in the inbox only complete: it is written to a hidden temporary
//!   name (`.<name>.part`, which `delta` ignores), its size checked against the listing and
//!   against a second look at the server after the transfer, flushed to disk, then renamed;
//! - a file is removed from the server only after the replica's ledger holds it, committed,
//!   with the SHA-256 of exactly the bytes downloaded; a quarantined file is never removed;
//! - the server proves its identity with a host key that is in `known_hosts` or matches the
//!   pinned fingerprint; an unknown or changed key ends the run (77) unless the user passes
//!   the key's fingerprint with `--trust-host-key` (see [`hostkey`]);
//! - passwords and passphrases never appear in `Debug`, logs or errors
//!   ([`crate::secret::Secret`]).
//!
//! The SSH stack is russh + russh-sftp: pure Rust on the tokio runtime the HTTP client already
//! uses, with its cryptography from aws-lc-rs, the provider rustls already links, so a clean
//! machine needs neither a system OpenSSL nor libssh2 to build it (the README says more).

mod credentials;
mod error;
mod fetch;
pub mod hostkey;
mod plan;
mod session;
mod transfer;

pub use crate::config::sftp::{AfterImport, HostKeyPolicy, SftpSettings};
pub use error::SftpError;
pub use fetch::{fetch, FetchOptions, Fetched, RemoteFileReport, SftpReport};
pub use plan::{Decision, LocalView, RemoteFile};
