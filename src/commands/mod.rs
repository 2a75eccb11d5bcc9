//! One module per command. [`run`] loads the configuration, sets up logging and dispatches.

mod changes;
mod contact;
mod delta;
mod engage_setup;
pub mod exit;
mod full;
mod healthcheck;
mod init;
mod lookup;
mod publish;
mod purge;
mod push_local;
mod receipt;
pub mod replica_guard;
mod status;

use std::io::Write;

use serde::Serialize;

use crate::cli::{Cli, Command};
use crate::config::{self, Overrides, Settings};
use crate::error::ExitCode;
use crate::replica::{Replica, DEFAULT_MODE};

/// What every command gets besides its own arguments.
#[derive(Debug)]
pub struct Ctx {
    /// Merged settings.
    pub settings: Settings,
    /// `--json`.
    pub json: bool,
    /// -v count minus -q count.
    pub verbosity: i8,
}

impl Ctx {
    /// Whether a job prints its human summary. Under `-q` a run that succeeded prints nothing,
    /// so cron mails only runs that need a look; a failed run keeps its summary, and `--json`
    /// and `--dry-run` reports are always printed (they were asked for).
    pub(crate) fn prints_summary(&self, succeeded: bool, dry_run: bool) -> bool {
        self.json || dry_run || self.verbosity >= 0 || !succeeded
    }

    /// Opens the replica in service for writing (creating or migrating it as needed), in the
    /// mode the settings ask for; a new replica without one gets [`DEFAULT_MODE`]. The one
    /// way a command opens it, so that every command creates the same replica. The caller
    /// holds the writer lock.
    pub(crate) fn open_writer(&self) -> anyhow::Result<Replica> {
        let s = &self.settings;
        Replica::open_writer(&s.db, s.mode, DEFAULT_MODE, s.busy_timeout)
    }
}

/// Runs the parsed command line; returns the exit code for a run that did not fail.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config::LoadedFile { file, base, source } =
        config::load_file(cli.global.config.as_deref())?;
    let verbosity = cli.global.verbose as i8 - cli.global.quiet as i8;
    crate::logging::init(
        cli.global
            .log_format
            .or(file.log_format)
            .unwrap_or_default(),
        verbosity,
        cli.global.log_filter.as_deref(),
    );
    let mut overrides = Overrides {
        db: cli.global.db.clone(),
        default_country: cli.global.default_country.clone(),
        ..Overrides::default()
    };
    match &cli.command {
        Command::Init(a) => overrides.mode = a.mode,
        Command::Delta(a) => {
            overrides.archive = a.archive.clone();
            overrides.quarantine = a.quarantine.clone();
            overrides.inbox_min_age = a.min_age;
            overrides.create_replica = a.create.create_replica;
            overrides.sftp = a.sftp.secrets();
        }
        Command::Full(a) => (overrides.mode, overrides.engage) = (a.mode, a.engage.access()),
        Command::Changes(a) => {
            overrides.create_replica = a.create.create_replica;
            overrides.engage = a.engage.access();
        }
        Command::Purge(a) => overrides.create_replica = a.create.create_replica,
        Command::Lookup(_) | Command::Status(_) => {}
        Command::PushLocal(a) => overrides.engage = a.engage.access(),
        Command::Contact(_) | Command::Receipt(_) => {}
        Command::Publish(_) => {}
    }
    let ctx = Ctx {
        settings: config::resolve(&file, &base, &overrides)?,
        json: cli.global.json,
        verbosity,
    };
    let db_from = match (&overrides.db, &file.db) {
        (Some(_), _) => replica_guard::DbFrom::Override,
        (None, Some(_)) => replica_guard::DbFrom::ConfigFile,
        (None, None) => replica_guard::DbFrom::Default,
    };
    replica_guard::check(&cli.command, &ctx.settings, db_from, &source)?;
    let job = job_name(&cli.command);
    let result = match cli.command {
        Command::Init(a) => init::run(&ctx, &a),
        Command::Delta(a) => delta::run(&ctx, &a),
        Command::Full(a) => full::run(&ctx, &a),
        Command::Changes(a) => changes::run(&ctx, &a),
        Command::Lookup(a) => lookup::run(&ctx, &a),
        Command::Status(a) => status::run(&ctx, &a),
        Command::Purge(a) => purge::run(&ctx, &a),
        Command::Contact(c) => contact::run(&ctx, &c),
        Command::Receipt(c) => receipt::run(&ctx, &c),
        Command::PushLocal(a) => push_local::run(&ctx, &a),
        Command::Publish(a) => publish::run(&ctx, &a),
    };
    if let (Some(url), Some(job)) = (&ctx.settings.healthcheck_url, job) {
        healthcheck::ping_after(url, job, &result);
    }
    result
}

/// The jobs that ping the healthcheck URL (runs that cron or a timer starts), unless dry runs.
fn job_name(command: &Command) -> Option<&'static str> {
    match command {
        Command::Delta(a) if !a.write.dry_run => Some("delta"),
        Command::Changes(a) if !a.write.dry_run => Some("changes"),
        Command::Full(a) if !a.write.dry_run => Some("full"),
        Command::Purge(a) if !a.write.dry_run => Some("purge"),
        Command::PushLocal(a) if !a.write.dry_run => Some("push-local"),
        Command::Publish(a) if !a.write.dry_run => Some("publish"),
        _ => None,
    }
}

/// Re-normalises the replica's stored keys once after an upgrade (`replica::rekey`), except in
/// a dry run (which changes nothing; the next real run does it). The report goes into the
/// command's summary.
pub(crate) fn rekey(
    replica: &mut crate::replica::Replica,
    settings: &Settings,
    dry_run: bool,
) -> anyhow::Result<Option<crate::replica::rekey::RekeyReport>> {
    if dry_run {
        return Ok(None);
    }
    replica.rekey_if_marked(settings.default_country)
}

/// The version of every `--json` document (its top-level `"schema"` field; docs/json.md).
/// Raised only when a field is removed, renamed or changes type or meaning; new fields may
/// appear within a version, so readers must ignore keys they do not know.
pub const JSON_SCHEMA: u32 = 1;

/// A command's JSON document with the schema version as its first field.
#[derive(Serialize)]
struct Versioned<'a, T: Serialize> {
    schema: u32,
    #[serde(flatten)]
    document: &'a T,
}

/// Writes one JSON document (with `"schema"`, [`JSON_SCHEMA`]) and a newline to stdout. The
/// one way `--json` output is printed, so every command's document is versioned.
pub(crate) fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let value = Versioned {
        schema: JSON_SCHEMA,
        document: value,
    };
    // Serialise first, so a closed pipe surfaces as an io::Error (a clean exit in main).
    let text = serde_json::to_string_pretty(&value)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    Ok(())
}

/// Writes lines to stdout, propagating a broken pipe (main turns it into a clean exit). The
/// one way human output is printed: control characters from file names and contact values are
/// escaped here ([`crate::printable`]), so no value can forge a line or move the cursor.
pub(crate) fn print_lines<I: IntoIterator<Item = String>>(lines: I) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for line in lines {
        writeln!(out, "{}", crate::printable::escape(&line))?;
    }
    Ok(())
}
