//! The list of typed errors that carry their own exit code. Kept apart from `error.rs` so that
//! adding a new typed error is one line here.

use std::error::Error as StdError;

use crate::error::{Coded, ConfigError, ExitCode, PartialFailure, UsageError};

/// The exit code of `cause` if it is one of the crate's typed errors.
pub(crate) fn typed_code(cause: &(dyn StdError + 'static)) -> Option<ExitCode> {
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
        crate::commands::BuildPaused,
        crate::engage::EngageError,
        crate::outbox::OutboxError,
        crate::sftp::SftpError,
        crate::till_store::SchemaError,
        crate::db_owner::ForeignDatabase,
        crate::commands::NotUtf8Names,
        crate::commands::replica_guard::NoReplica,
    );
    None
}
