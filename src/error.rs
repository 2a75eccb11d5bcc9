//! Exit codes (docs/contract.md §8, sysexits), the [`Coded`] trait and the typed errors every
//! layer shares. The bottom of the crate: it imports nothing from it, so any module may raise
//! these errors.
//!
//! Errors are typed where the caller (or the exit code) depends on what went wrong; everything
//! else travels as `anyhow::Error` with context. The one function that turns an error chain into
//! an exit code, `commands::exit::exit_code_for`, sits at the top, beside the commands: it is
//! the only code that needs to know every typed error of the crate. It walks the whole chain, so
//! a typed error keeps its code however much context was added on top of it.

use std::io;

/// The process exit codes engage-sync documents (README, man pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Success.
    Ok = 0,
    /// `lookup` found nothing.
    NotFound = 1,
    /// The command line was wrong (EX_USAGE).
    Usage = 64,
    /// Input data was bad: malformed XML, an invalid receipt (EX_DATAERR).
    DataErr = 65,
    /// Engage could not be reached (EX_UNAVAILABLE).
    Unavailable = 69,
    /// A file or directory could not be created (EX_CANTCREAT).
    CantCreate = 73,
    /// Reading or writing a file or the database failed (EX_IOERR).
    IoErr = 74,
    /// Temporary failure; the next run will likely succeed (EX_TEMPFAIL): lock held, 429, 5xx.
    TempFail = 75,
    /// Permission denied, by the OS or by Engage (401/403) (EX_NOPERM).
    NoPerm = 77,
    /// The configuration is wrong (EX_CONFIG).
    Config = 78,
}

impl ExitCode {
    /// The numeric code handed to the OS.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// An error that decides its own exit code. Every typed error of the crate implements this,
/// and `commands::exit::exit_code_for` consults it.
pub trait Coded {
    /// The exit code this error should end the process with.
    fn exit_code(&self) -> ExitCode;
}

/// A wrong command-line value that clap could not catch (e.g. an unparsable phone number).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl Coded for UsageError {
    fn exit_code(&self) -> ExitCode {
        ExitCode::Usage
    }
}

/// A wrong configuration value (file, environment or flag).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Coded for ConfigError {
    fn exit_code(&self) -> ExitCode {
        ExitCode::Config
    }
}

/// Some items failed but `--keep-going` let the run continue; the summary was printed already.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} {what} failed (see the errors above); the others were processed")]
pub struct PartialFailure {
    /// How many items failed.
    pub failed: usize,
    /// How many items there were.
    pub total: usize,
    /// What the items are ("files").
    pub what: &'static str,
    /// The exit code of the first failure, which decides the run's code.
    pub code: ExitCode,
}

impl Coded for PartialFailure {
    fn exit_code(&self) -> ExitCode {
        self.code
    }
}

/// The exit code for an error chain without a typed error: plain I/O and SQLite errors are
/// EX_IOERR (or EX_NOPERM for permission denied, EX_TEMPFAIL for a busy database); anything
/// else is EX_IOERR. `commands::exit::exit_code_for` asks the typed errors first.
pub fn untyped_code(err: &anyhow::Error) -> ExitCode {
    for cause in err.chain() {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            return match io.kind() {
                io::ErrorKind::PermissionDenied => ExitCode::NoPerm,
                _ => ExitCode::IoErr,
            };
        }
        if let Some(sql) = cause.downcast_ref::<rusqlite::Error>() {
            return sqlite_code(sql);
        }
    }
    ExitCode::IoErr
}

/// What to do about an error whose own message cannot say it, if anything: SQLite's "database
/// is locked" names neither the cause nor the remedy.
pub fn hint_for(err: &anyhow::Error) -> Option<&'static str> {
    let full = err.chain().any(|cause| {
        cause
            .downcast_ref::<rusqlite::Error>()
            .is_some_and(|e| e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull))
            || cause
                .downcast_ref::<io::Error>()
                .is_some_and(|e| e.raw_os_error() == Some(libc::ENOSPC))
    });
    if full {
        return Some(
            "the disk holding the database (named above) is full: nothing of the unfinished \
             transaction was kept, and the files not applied are still in the inbox. Free \
             space there (a first import needs room for the whole replica, and temporary \
             space while it builds its indexes) and run the command again",
        );
    }
    let busy = err
        .chain()
        .any(|cause| cause.downcast_ref::<rusqlite::Error>().is_some_and(is_busy));
    busy.then_some(
        "the database (named above: the replica, or the till store) stayed busy for longer than \
         busy_timeout (another engage-sync command, or a program of yours, held its write \
         lock); nothing of this step was written. Run the command again, or raise busy_timeout \
         in the config file (default 10s)",
    )
}

/// SQLite's "database is locked/busy", which it gives after the busy timeout.
fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// A busy database is temporary; the rest is I/O.
fn sqlite_code(err: &rusqlite::Error) -> ExitCode {
    if is_busy(err) {
        return ExitCode::TempFail;
    }
    match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::PermissionDenied) | Some(rusqlite::ErrorCode::ReadOnly) => {
            ExitCode::NoPerm
        }
        Some(rusqlite::ErrorCode::CannotOpen) => ExitCode::CantCreate,
        _ => ExitCode::IoErr,
    }
}

/// True when the error is a broken pipe on stdout (`engage-sync lookup … | head`): a clean exit.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
