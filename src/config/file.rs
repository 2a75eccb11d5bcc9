//! The config file: its model as written (every key optional, unknown keys refused) and
//! reading it, from the path named by `--config` / `ENGAGE_SYNC_CONFIG` or found by
//! [`super::search`]. Resolving it under flags and environment is the parent module's job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{search, EngageFileConfig, LocalFileConfig, LogFormat, Mode, SftpFileConfig};
use crate::error::ConfigError;

/// The config file used when neither `--config` nor `ENGAGE_SYNC_CONFIG` names one.
pub const DEFAULT_CONFIG_FILE: &str = "engage-sync.toml";
/// The config file as written. Every key is optional; unknown keys are an error, so a typo does
/// not silently fall back to a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The replica database file.
    pub db: Option<PathBuf>,
    /// Mode used when the replica is created.
    pub mode: Option<Mode>,
    /// Let `delta`, `changes` and `purge` create the replica when there is none at `db`
    /// (default false: they refuse, so a run in the wrong folder leaves no stray replica).
    pub create_replica: Option<bool>,
    /// ISO country for national-format phone numbers.
    pub default_country: Option<String>,
    /// Folder `delta` reads when given no paths.
    pub inbox: Option<PathBuf>,
    /// Folder applied export files are moved to.
    pub archive: Option<PathBuf>,
    /// Folder malformed export files are moved to.
    pub quarantine: Option<PathBuf>,
    /// Files in the inbox changed more recently than this are left for a later run.
    pub inbox_min_age: Option<String>,
    /// Log format.
    pub log_format: Option<LogFormat>,
    /// URL pinged at the end of every sync, push or purge run: as is on success, with `/fail`
    /// appended on failure (the healthchecks.io convention).
    pub healthcheck_url: Option<String>,
    /// How long a reader or writer waits for a busy database, e.g. "5s".
    pub busy_timeout: Option<String>,
    /// Contact-export XML settings.
    #[serde(default)]
    pub export: ExportFileConfig,
    /// Engage API settings.
    #[serde(default)]
    pub engage: EngageFileConfig,
    /// Offline outboxes: contacts and receipts registered at the till.
    #[serde(default)]
    pub local: LocalFileConfig,
    /// Engage's SFTP server, where `delta` fetches the export files from.
    #[serde(default)]
    pub sftp: SftpFileConfig,
}

/// `[export]`: per-tenant details of Engage's contact-export files.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportFileConfig {
    /// Element name in the tenant's files → Engage attribute name (`customerNo = "memberNumber"`).
    #[serde(default)]
    pub field_map: BTreeMap<String, String>,
    /// UTC offset of the timestamps in export file names, e.g. "+01:00" (default "+00:00").
    pub timestamp_offset: Option<String>,
}

/// Where the config file came from: what an error about a setting (or a missing replica)
/// reports, so the operator knows which file to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// Named by `--config` / `ENGAGE_SYNC_CONFIG`.
    Named(PathBuf),
    /// The first candidate of the search that exists ([`search::candidates`]).
    Found(PathBuf),
    /// No file named and none of these candidates exists: defaults only.
    NoneFound(Vec<PathBuf>),
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::Named(p) => {
                write!(
                    f,
                    "{} (named by --config / ENGAGE_SYNC_CONFIG)",
                    p.display()
                )
            }
            ConfigSource::Found(p) => write!(
                f,
                "{} (found by the search: ./ first, then the XDG config folder, then /etc)",
                p.display()
            ),
            ConfigSource::NoneFound(searched) => {
                let names: Vec<String> = searched
                    .iter()
                    .map(|p| match p.is_relative() {
                        true => format!("./{}", p.display()),
                        false => p.display().to_string(),
                    })
                    .collect();
                write!(f, "none (looked for {}, in that order)", names.join(", "))
            }
        }
    }
}

/// The config file as read, with where it came from.
#[derive(Debug)]
pub struct LoadedFile {
    /// The parsed file (empty when there is none).
    pub file: FileConfig,
    /// The folder its relative paths are relative to.
    pub base: PathBuf,
    /// Where it came from.
    pub source: ConfigSource,
}

/// Reads the config file: the named one (which must exist), else the first that exists of
/// [`search::candidates`] (the current directory, the XDG config folder, `/etc/engage-sync`),
/// else none.
pub fn load_file(explicit: Option<&Path>) -> anyhow::Result<LoadedFile> {
    let (path, named_by, source) = match explicit {
        Some(p) => (
            p.to_path_buf(),
            "check --config / ENGAGE_SYNC_CONFIG",
            ConfigSource::Named(p.to_path_buf()),
        ),
        None => match search::find() {
            Some(found) => (
                found.clone(),
                "found by the config file search; fix its permissions, or name another file with --config",
                ConfigSource::Found(found),
            ),
            None => {
                return Ok(LoadedFile {
                    file: FileConfig::default(),
                    base: PathBuf::from("."),
                    source: ConfigSource::NoneFound(search::current_candidates()),
                })
            }
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            return Err(ConfigError(format!(
                "cannot read config file {}: {e}; {named_by}",
                path.display()
            ))
            .into())
        }
    };
    let file: FileConfig = toml::from_str(&text).map_err(|e| {
        ConfigError(format!(
            "config file {} is invalid: {}; see engage-sync.toml.example for every key",
            path.display(),
            e.to_string().trim_end()
        ))
    })?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(LoadedFile { file, base, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<FileConfig>("dbb = \"x\"").is_err());
    }
}
