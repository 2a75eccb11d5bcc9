//! The error chain → exit code mapping (docs/contract.md §8), at the top of the crate beside the
//! commands: it is the only code that knows every typed error, so no lower module has to import
//! the modules above it to find a code. Adding a new typed error is one line in `typed_code`.

use std::error::Error as StdError;

use crate::error::{untyped_code, Coded, ConfigError, ExitCode, PartialFailure, UsageError};
use crate::replica::RunOutcome;

/// The exit code for an error: the first typed error in the chain decides; plain I/O and
/// SQLite errors are EX_IOERR (or EX_NOPERM for permission denied); anything else is EX_IOERR.
pub fn exit_code_for(err: &anyhow::Error) -> ExitCode {
    err.chain()
        .find_map(typed_code)
        .unwrap_or_else(|| untyped_code(err))
}

/// How a run ended, for its row in the run log: exit 0, or the failure's code and its whole
/// error chain.
pub fn run_outcome<T>(result: &anyhow::Result<T>) -> RunOutcome {
    match result {
        Ok(_) => RunOutcome::ok(),
        Err(e) => RunOutcome::failed(exit_code_for(e).code(), format!("{e:#}")),
    }
}

/// True when the run was skipped because another run holds the lock: nothing failed and the
/// next run catches up, so main prints it as a warning (still exit 75), not as an error that
/// pages someone.
pub fn is_lock_skip(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        matches!(
            c.downcast_ref::<crate::lock::LockError>(),
            Some(crate::lock::LockError::Held { .. })
        )
    })
}

/// The exit code of `cause` if it is one of the crate's typed errors.
fn typed_code(cause: &(dyn StdError + 'static)) -> Option<ExitCode> {
    macro_rules! try_types {
        ($($t:ty),* $(,)?) => {
            $(if let Some(e) = cause.downcast_ref::<$t>() { return Some(e.exit_code()); })*
        };
    }
    try_types!(
        UsageError,
        ConfigError,
        PartialFailure,
        crate::lock::LockError,
        crate::replica::ReplicaError,
        crate::export_xml::ImportError,
        crate::full_build::BuildPaused,
        crate::engage::EngageError,
        crate::outbox::OutboxError,
        crate::sftp::SftpError,
        crate::till_store::SchemaError,
        crate::db_owner::ForeignDatabase,
        crate::import::NotUtf8Names,
        super::replica_guard::NoReplica,
    );
    None
}
