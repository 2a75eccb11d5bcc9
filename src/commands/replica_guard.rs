//! Which commands may create a replica, checked once before any command touches a file.
//!
//! A replica created by accident is worse than an error: a till command (or a cron job) run in
//! the wrong working directory would make a new `./engage-sync.db` and register contacts there
//! that no `push-local` ever sends. So only `init` and `full` (the initial download) create one
//! by themselves; `delta`, `changes` and `purge` create one only when asked (`--create-replica`,
//! `ENGAGE_SYNC_CREATE_REPLICA`, `create_replica = true`); the till commands and `push-local`
//! never do (docs/contract.md §2). The check runs before any lock file, database or folder is
//! made, so a refusal leaves the folder exactly as it was.

use std::path::{Path, PathBuf};

use crate::cli::Command;
use crate::config::{ConfigSource, Settings, DEFAULT_DB_FILE};
use crate::error::{Coded, ExitCode};

/// Whether a command may create a missing replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Creation {
    /// Creates one (`init`, `full`).
    Always,
    /// Only with `create_replica` (`delta`, `changes`, `purge`).
    WhenAsked,
    /// Never (till commands, `push-local`, `publish`: a hub publishes the replica it has).
    Never,
}

/// The command's rule; `None` for the readers (`lookup`, `status`), which never create one
/// and report a missing replica themselves.
fn creation(command: &Command) -> Option<(Creation, &'static str)> {
    Some(match command {
        Command::Init(_) => (Creation::Always, "init"),
        Command::Full(_) => (Creation::Always, "full"),
        Command::Delta(_) => (Creation::WhenAsked, "delta"),
        Command::Changes(_) => (Creation::WhenAsked, "changes"),
        Command::Purge(_) => (Creation::WhenAsked, "purge"),
        Command::PushLocal(_) => (Creation::Never, "push-local"),
        Command::Publish(_) => (Creation::Never, "publish"),
        Command::Contact(crate::cli::ContactCommand::Add(_)) => (Creation::Never, "contact add"),
        Command::Contact(crate::cli::ContactCommand::Update(_)) => {
            (Creation::Never, "contact update")
        }
        Command::Receipt(_) => (Creation::Never, "receipt add"),
        Command::Lookup(_) | Command::Status(_) => return None,
    })
}

/// A writing command found no replica and was not asked to create one (exit 78).
#[derive(Debug, thiserror::Error)]
#[error(
    "{command}: no replica at {db} ({db_from}); config file: {config}. {remedy}; or run it in \
     the right folder, or point --db / ENGAGE_SYNC_DB (or `db` in the config file) at the \
     existing replica. Nothing was created"
)]
pub struct NoReplica {
    /// The command refused.
    pub command: &'static str,
    /// The path looked for, absolute.
    pub db: PathBuf,
    /// Where that path came from.
    pub db_from: String,
    /// Where the config came from.
    pub config: ConfigSource,
    /// How to create it, for this command.
    pub remedy: &'static str,
}

impl Coded for NoReplica {
    fn exit_code(&self) -> ExitCode {
        ExitCode::Config
    }
}

/// Where the configured db path came from, by the rule of `config::resolve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbFrom {
    /// `--db` or `ENGAGE_SYNC_DB`.
    Override,
    /// `db` in the config file.
    ConfigFile,
    /// Neither: the default name in the current folder.
    Default,
}

/// Refuses (before anything is written) when `command` would create a replica it may not.
pub fn check(
    command: &Command,
    settings: &Settings,
    db_from: DbFrom,
    config: &ConfigSource,
) -> Result<(), NoReplica> {
    let Some((rule, name)) = creation(command) else {
        return Ok(());
    };
    if rule == Creation::Always
        || (rule == Creation::WhenAsked && settings.create_replica)
        || present(&settings.db)
    {
        return Ok(());
    }
    let remedy = match rule {
        Creation::WhenAsked => {
            "Create it with `engage-sync init` (or the initial download, `engage-sync full`), or \
             let this command create it with --create-replica (ENGAGE_SYNC_CREATE_REPLICA=1, or \
             `create_replica = true` in the config file)"
        }
        _ => {
            "This command never creates one: create it with `engage-sync init` (or the initial \
             download, `engage-sync full`) first"
        }
    };
    Err(NoReplica {
        command: name,
        db: absolute(&settings.db),
        db_from: describe(db_from, config),
        config: config.clone(),
        remedy,
    })
}

/// True when anything is at `db` (a file, a link made by `full`, or something unreadable that
/// opening will report): only a path that certainly does not exist counts as missing.
fn present(db: &Path) -> bool {
    !matches!(std::fs::symlink_metadata(db), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn describe(db_from: DbFrom, config: &ConfigSource) -> String {
    match (db_from, config) {
        (DbFrom::Override, _) => "given by --db or ENGAGE_SYNC_DB".into(),
        (DbFrom::ConfigFile, ConfigSource::Named(p) | ConfigSource::Found(p)) => {
            format!("`db` in {}", p.display())
        }
        _ => format!(
            "the default, {DEFAULT_DB_FILE} in the current folder: neither --db, \
             ENGAGE_SYNC_DB nor a config file names one"
        ),
    }
}
