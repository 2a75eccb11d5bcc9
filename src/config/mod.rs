//! Configuration: the TOML file, merged under flags and environment (docs/contract.md §8: flags >
//! environment > config file > defaults). Clap already folds flags and environment together
//! (every flag names its variable, and every fixed-name variable the product reads has a flag),
//! so this tree only has to put the file underneath and apply the defaults.
//! `engage-sync.toml.example` documents every key.
//!
//! [`file`](mod@file) is the file as written and its loading, [`search`] finds it; this module merges the
//! top-level keys into [`Settings`]; each section is resolved in its own module ([`local`],
//! [`sftp`], [`engage`]), and `parse_duration_setting` is the one parser of duration keys.
//! The tree imports neither `commands` nor `sftp`: those use what it resolves.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use crate::error::ConfigError;

pub mod engage;
pub mod file;
pub mod local;
pub mod search;
pub mod sftp;

use crate::normalize::Country;
pub use engage::{EngageAccess, EngageFileConfig};
pub use file::{
    load_file, ConfigSource, ExportFileConfig, FileConfig, LoadedFile, DEFAULT_CONFIG_FILE,
};
pub use local::{LocalFileConfig, LocalSettings, LOCAL_KEY_NAMES};
pub use sftp::{SftpFileConfig, SftpSecrets, SftpSettings};

/// The replica used when neither flag, environment nor config names one.
pub const DEFAULT_DB_FILE: &str = "engage-sync.db";

/// How much of a contact the replica keeps (docs/contract.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// contactId, contactType and the lookup keys only: enough to tag a purchase.
    Keys,
    /// Whole contact objects, every field in `attributes`.
    Full,
}

impl Mode {
    /// The name stored in the replica and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Keys => "keys",
            Mode::Full => "full",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "keys" => Some(Mode::Keys),
            "full" => Some(Mode::Full),
            _ => None,
        }
    }
}

/// Log line format on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Settings after merging flags, environment, file and defaults. Paths are ready to use.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The replica database file.
    pub db: PathBuf,
    /// Mode asked for by flag or config, if any; a new replica without one is full.
    pub mode: Option<Mode>,
    /// `delta`, `changes` and `purge` may create a missing replica (`--create-replica`,
    /// `ENGAGE_SYNC_CREATE_REPLICA`, `create_replica`); see `commands::replica_guard`.
    pub create_replica: bool,
    /// Default country for national phone numbers.
    pub default_country: Country,
    /// Folder `delta` reads when given no paths.
    pub inbox: PathBuf,
    /// Folder applied files are moved to, if any.
    pub archive: Option<PathBuf>,
    /// Files `delta` finds in a folder that changed more recently than this are still being
    /// written, perhaps: left for a later run, not quarantined as truncated.
    pub inbox_min_age: Duration,
    /// Folder malformed files are moved to.
    pub quarantine: PathBuf,
    /// Busy timeout on every database connection.
    pub busy_timeout: Duration,
    /// Export element name → Engage attribute name.
    pub field_map: BTreeMap<String, String>,
    /// Pinged at the end of each job run (success: as is; failure: `/fail` appended).
    pub healthcheck_url: Option<String>,
    /// Offset of export file-name timestamps, in seconds east of UTC.
    pub export_offset_seconds: i32,
    /// `[engage]` with `api_key_file` made absolute.
    pub engage: EngageFileConfig,
    /// Engage's base URL and key from flags or environment (see [`Settings::engage_config`]).
    pub engage_access: EngageAccess,
    /// `[local]` with defaults applied and durations parsed.
    pub local: LocalSettings,
    /// `[sftp]` resolved; `None` when no SFTP host is configured.
    pub sftp: Option<SftpSettings>,
}

/// Values given on the command line or in the environment (clap merged those two already).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--db` / `ENGAGE_SYNC_DB`.
    pub db: Option<PathBuf>,
    /// `--mode` (init).
    pub mode: Option<Mode>,
    /// `--default-country` / `ENGAGE_SYNC_DEFAULT_COUNTRY`.
    pub default_country: Option<String>,
    /// `--archive` (delta).
    pub archive: Option<PathBuf>,
    /// `--quarantine` (delta).
    pub quarantine: Option<PathBuf>,
    /// `--min-age` (delta).
    pub inbox_min_age: Option<Duration>,
    /// `--create-replica` / `ENGAGE_SYNC_CREATE_REPLICA` (delta, changes, purge).
    pub create_replica: Option<bool>,
    /// `--engage-base-url` / `ENGAGE_BASE_URL`, `--engage-api-key` / `ENGAGE_API_KEY`
    /// (changes, full, push-local).
    pub engage: EngageAccess,
    /// `--sftp-password` / `ENGAGE_SYNC_SFTP_PASSWORD`, `--sftp-passphrase` /
    /// `ENGAGE_SYNC_SFTP_PASSPHRASE` (delta).
    pub sftp: SftpSecrets,
}

/// `inbox_min_age` when not set: an export file is copied into the inbox in well under that,
/// and a file that has not changed for this long is not being written any more.
pub const DEFAULT_INBOX_MIN_AGE: Duration = Duration::from_secs(5);

/// Merges overrides over the file over the defaults.
pub fn resolve(file: &FileConfig, base: &Path, over: &Overrides) -> anyhow::Result<Settings> {
    let rel = |p: &PathBuf| {
        if p.is_absolute() {
            p.clone()
        } else {
            base.join(p)
        }
    };
    let db = over
        .db
        .clone()
        .or_else(|| file.db.as_ref().map(rel))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DB_FILE));
    let country_name = over
        .default_country
        .clone()
        .or_else(|| file.default_country.clone())
        .unwrap_or_else(|| "SE".to_string());
    let default_country = Country::from_iso(&country_name).ok_or_else(|| {
        ConfigError(format!(
            "default_country {country_name:?} is not a country with a numbering plan in \
             libphonenumber; use a two-letter ISO 3166 code such as SE, NO, DK, FI, DE, HU, CZ"
        ))
    })?;
    let db_dir = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let busy_timeout = match &file.busy_timeout {
        Some(s) => humantime::parse_duration(s)
            .map_err(|e| ConfigError(format!("busy_timeout {s:?} is not a duration: {e}")))?,
        None => Duration::from_secs(10),
    };
    let inbox_min_age = match (&over.inbox_min_age, &file.inbox_min_age) {
        (Some(d), _) => *d,
        (None, Some(s)) => humantime::parse_duration(s)
            .map_err(|e| ConfigError(format!("inbox_min_age {s:?} is not a duration: {e}")))?,
        (None, None) => DEFAULT_INBOX_MIN_AGE,
    };
    let export_offset_seconds = match &file.export.timestamp_offset {
        Some(s) => parse_offset(s).with_context(|| "in [export] timestamp_offset")?,
        None => 0,
    };
    Ok(Settings {
        mode: over.mode.or(file.mode),
        create_replica: over.create_replica.or(file.create_replica).unwrap_or(false),
        default_country,
        inbox: file
            .inbox
            .as_ref()
            .map(rel)
            .unwrap_or_else(|| PathBuf::from("inbox")),
        archive: over
            .archive
            .clone()
            .or_else(|| file.archive.as_ref().map(rel)),
        inbox_min_age,
        quarantine: over
            .quarantine
            .clone()
            .or_else(|| file.quarantine.as_ref().map(rel))
            .unwrap_or_else(|| db_dir.join("quarantine")),
        busy_timeout,
        field_map: file.export.field_map.clone(),
        export_offset_seconds,
        healthcheck_url: file
            .healthcheck_url
            .clone()
            .filter(|u| !u.trim().is_empty()),
        engage: EngageFileConfig {
            api_key_file: file.engage.api_key_file.as_ref().map(rel),
            ..file.engage.clone()
        },
        engage_access: over.engage.clone(),
        local: local::resolve_local(&file.local)?,
        sftp: sftp::resolve(&file.sftp, rel, &db_dir, &over.sftp)?,
        db,
    })
}

/// Parses a duration setting ("10s", "5m"), naming the key when it is wrong.
pub fn parse_duration_setting(key: &str, value: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(value).map_err(|e| {
        ConfigError(format!(
            "{key} = {value:?} is not a duration like \"10s\": {e}"
        ))
    })
}

/// Parses "+01:00", "-05:30", "Z" or "UTC" to seconds east of UTC.
fn parse_offset(s: &str) -> Result<i32, ConfigError> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") {
        return Ok(0);
    }
    let bad = || ConfigError(format!("{s:?} is not a UTC offset like \"+01:00\""));
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let h: i32 = h.parse().map_err(|_| bad())?;
    let m: i32 = m.parse().map_err(|_| bad())?;
    if h > 14 || m > 59 {
        return Err(bad());
    }
    Ok(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse() {
        assert_eq!(parse_offset("+01:00").ok(), Some(3600));
        assert_eq!(parse_offset("-05:30").ok(), Some(-(5 * 3600 + 30 * 60)));
        assert_eq!(parse_offset("UTC").ok(), Some(0));
        assert!(parse_offset("01:00").is_err());
    }

    #[test]
    fn flags_win_over_file_and_file_paths_are_relative_to_it() {
        let file: FileConfig = toml::from_str(
            "db = \"data/r.db\"\ndefault_country = \"NO\"\ninbox = \"in\"\n[export.field_map]\ncustNo = \"memberNumber\"\n",
        )
        .expect("valid toml");
        let base = Path::new("/etc/engage-sync");
        let s = resolve(&file, base, &Overrides::default()).expect("resolves");
        assert_eq!(s.db, PathBuf::from("/etc/engage-sync/data/r.db"));
        assert_eq!(s.inbox, PathBuf::from("/etc/engage-sync/in"));
        assert_eq!(
            s.quarantine,
            PathBuf::from("/etc/engage-sync/data/quarantine")
        );
        assert_eq!(s.default_country.iso(), "NO");
        let over = Overrides {
            db: Some(PathBuf::from("x.db")),
            default_country: Some("se".into()),
            ..Overrides::default()
        };
        let s = resolve(&file, base, &over).expect("resolves");
        assert_eq!(s.db, PathBuf::from("x.db"));
        assert_eq!(s.default_country.iso(), "SE");
    }
}
