//! `[sftp]`: where the export files are, how we log in, and how the server proves who it is.
//! `engage-sync.toml.example` documents every key. Secrets never go in the config file:
//! the password comes from `ENGAGE_SYNC_SFTP_PASSWORD` (`--sftp-password`) or `password_file`,
//! a key's passphrase from `ENGAGE_SYNC_SFTP_PASSPHRASE` (`--sftp-passphrase`); clap reads
//! both variables. The files themselves are read when a connection is made (`sftp`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::parse_duration_setting;
use crate::engage::retry::RetryPolicy;
use crate::error::ConfigError;
use crate::secret::Secret;

/// Environment variable holding the SFTP password (wins over `password_file`).
pub const ENV_PASSWORD: &str = "ENGAGE_SYNC_SFTP_PASSWORD";
/// Environment variable holding the passphrase of `private_key_file`.
pub const ENV_PASSPHRASE: &str = "ENGAGE_SYNC_SFTP_PASSPHRASE";

/// Engage's export folder, relative to the SFTP login folder (docs/engage-api.md §5.2).
const DEFAULT_REMOTE_DIR: &str = "integration/customerExport";

/// `[sftp]` as written in the config file. Every key is optional; `host` switches SFTP on.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftpFileConfig {
    /// The server, e.g. `ftp.voyado.com`.
    pub host: Option<String>,
    /// Port (default 22).
    pub port: Option<u16>,
    /// Login name, from the Voyado team.
    pub user: Option<String>,
    /// A file holding only the password (`ENGAGE_SYNC_SFTP_PASSWORD` wins over it).
    pub password_file: Option<PathBuf>,
    /// An OpenSSH private key (passphrase from `ENGAGE_SYNC_SFTP_PASSPHRASE`).
    pub private_key_file: Option<PathBuf>,
    /// The export folder on the server (default `integration/customerExport`).
    pub remote_dir: Option<String>,
    /// OpenSSH `known_hosts` file the host key is checked against (default: `known_hosts`
    /// beside the database).
    pub known_hosts: Option<PathBuf>,
    /// The host key's SHA-256 fingerprint (`SHA256:…`, as `ssh-keygen -l` prints it); when set,
    /// it is checked instead of `known_hosts`.
    pub host_key_fingerprint: Option<String>,
    /// What happens to a file on the server once it is applied: leave (default), delete, move.
    pub after_import: Option<AfterImportName>,
    /// Folder on the server applied files are moved to (`after_import = "move"`).
    pub remote_archive_dir: Option<String>,
    /// Files modified on the server more recently than this are left for the next run, in case
    /// Engage is still writing them, e.g. "1m" (default).
    pub min_age: Option<String>,
    /// TCP connect plus SSH handshake and login, e.g. "30s".
    pub connect_timeout: Option<String>,
    /// The longest wait for one answer from the server (a listing, a block of a file), e.g. "60s".
    pub request_timeout: Option<String>,
    /// Retries after the first attempt (default 6).
    pub max_retries: Option<u32>,
    /// First retry backoff, doubling per retry, e.g. "1s".
    pub retry_base: Option<String>,
    /// Largest retry backoff, e.g. "60s".
    pub retry_cap: Option<String>,
}

/// `after_import` as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterImportName {
    /// Leave applied files on the server.
    Leave,
    /// Delete applied files on the server.
    Delete,
    /// Move applied files to `remote_archive_dir` on the server.
    Move,
}

/// What happens to a file on the server once the replica holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterImport {
    /// Nothing (the default): Engage's own retention, or a later `delete`, cleans up.
    Leave,
    /// Remove it.
    Delete,
    /// Rename it into this folder on the server.
    Move(String),
}

/// How the server's host key is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Against the entries for the host in this OpenSSH `known_hosts` file.
    KnownHosts(PathBuf),
    /// Against one pinned SHA-256 fingerprint (`SHA256:…`).
    Fingerprint(String),
}

/// `[sftp]` resolved: defaults applied, paths absolute, durations parsed.
#[derive(Debug, Clone)]
pub struct SftpSettings {
    /// Server host name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Login name.
    pub user: String,
    /// File holding the password, if any.
    pub password_file: Option<PathBuf>,
    /// Private key file, if any.
    pub private_key_file: Option<PathBuf>,
    /// Export folder on the server.
    pub remote_dir: String,
    /// How the host key is checked.
    pub host_key: HostKeyPolicy,
    /// What happens to applied files on the server.
    pub after_import: AfterImport,
    /// Files younger than this on the server wait for the next run.
    pub min_age: Duration,
    /// TCP connect plus handshake and login.
    pub connect_timeout: Duration,
    /// One answer from the server.
    pub request_timeout: Duration,
    /// Retries and backoff.
    pub(crate) retry: RetryPolicy,
    /// The password from `--sftp-password` / `ENGAGE_SYNC_SFTP_PASSWORD` (wins over
    /// `password_file`).
    pub password: Option<Secret>,
    /// The private key's passphrase from `--sftp-passphrase` / `ENGAGE_SYNC_SFTP_PASSPHRASE`.
    pub passphrase: Option<Secret>,
}

/// The SFTP secrets given by flag or environment (clap folds the two), never in the file.
#[derive(Debug, Default, Clone)]
pub struct SftpSecrets {
    /// `--sftp-password` / `ENGAGE_SYNC_SFTP_PASSWORD`.
    pub password: Option<Secret>,
    /// `--sftp-passphrase` / `ENGAGE_SYNC_SFTP_PASSPHRASE`.
    pub passphrase: Option<Secret>,
}

impl SftpSettings {
    /// `user@host:port`, for messages.
    pub fn server(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }
}

/// Resolves `[sftp]`: `None` when no host is configured (SFTP off). `rel` makes a config-file
/// path absolute; `db_dir` is where the default `known_hosts` lives; an empty secret counts as
/// unset.
pub fn resolve(
    file: &SftpFileConfig,
    rel: impl Fn(&PathBuf) -> PathBuf,
    db_dir: &Path,
    secrets: &SftpSecrets,
) -> Result<Option<SftpSettings>, ConfigError> {
    let host = file.host.as_deref().map(str::trim).unwrap_or_default();
    if host.is_empty() {
        return Ok(None);
    }
    let user = file.user.as_deref().map(str::trim).unwrap_or_default();
    if user.is_empty() {
        return Err(ConfigError(
            "[sftp] user is missing: set the login name the Voyado team gave you".into(),
        ));
    }
    let host_key = match file.host_key_fingerprint.as_deref().map(str::trim) {
        Some(fp) if !fp.is_empty() => HostKeyPolicy::Fingerprint(
            parse_fingerprint(fp).map_err(|e| ConfigError(format!("[sftp] {e}")))?,
        ),
        _ => HostKeyPolicy::KnownHosts(
            file.known_hosts
                .as_ref()
                .map(&rel)
                .unwrap_or_else(|| db_dir.join("known_hosts")),
        ),
    };
    let duration = |key: &str, v: &Option<String>, default: u64| match v {
        Some(v) => parse_duration_setting(&format!("[sftp] {key}"), v),
        None => Ok(Duration::from_secs(default)),
    };
    let retry = RetryPolicy {
        max_retries: file.max_retries.unwrap_or(6),
        base: duration("retry_base", &file.retry_base, 1)?,
        cap: duration("retry_cap", &file.retry_cap, 60)?,
    };
    let request_timeout = duration("request_timeout", &file.request_timeout, 60)?;
    if request_timeout < Duration::from_secs(1) {
        return Err(ConfigError(
            "[sftp] request_timeout must be at least 1s".into(),
        ));
    }
    Ok(Some(SftpSettings {
        host: host.to_string(),
        port: file.port.unwrap_or(22),
        user: user.to_string(),
        password_file: file.password_file.as_ref().map(&rel),
        private_key_file: file.private_key_file.as_ref().map(&rel),
        remote_dir: remote_dir(file)?,
        host_key,
        after_import: after_import(file)?,
        min_age: duration("min_age", &file.min_age, 60)?,
        connect_timeout: duration("connect_timeout", &file.connect_timeout, 30)?,
        request_timeout,
        retry,
        password: nonempty(&secrets.password),
        passphrase: nonempty(&secrets.passphrase),
    }))
}

fn nonempty(secret: &Option<Secret>) -> Option<Secret> {
    secret.clone().filter(|s| !s.expose().is_empty())
}

fn remote_dir(file: &SftpFileConfig) -> Result<String, ConfigError> {
    let dir = file
        .remote_dir
        .as_deref()
        .map(str::trim)
        .unwrap_or(DEFAULT_REMOTE_DIR);
    let dir = if dir.len() > 1 {
        dir.trim_end_matches('/')
    } else {
        dir
    };
    if dir.is_empty() {
        return Err(ConfigError(
            "[sftp] remote_dir is empty: use \".\" for the login folder, or Engage's export \
             folder (integration/customerExport)"
                .into(),
        ));
    }
    Ok(dir.to_string())
}

fn after_import(file: &SftpFileConfig) -> Result<AfterImport, ConfigError> {
    let archive = file
        .remote_archive_dir
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty());
    match (file.after_import, archive) {
        (None | Some(AfterImportName::Leave), None) => Ok(AfterImport::Leave),
        (Some(AfterImportName::Delete), None) => Ok(AfterImport::Delete),
        (None | Some(AfterImportName::Move), Some(dir)) => Ok(AfterImport::Move(
            if dir.len() > 1 {
                dir.trim_end_matches('/')
            } else {
                dir
            }
            .to_string(),
        )),
        (Some(AfterImportName::Move), None) => Err(ConfigError(
            "[sftp] after_import = \"move\" needs remote_archive_dir, the folder on the server \
             applied files are moved to"
                .into(),
        )),
        (Some(other), Some(_)) => Err(ConfigError(format!(
            "[sftp] remote_archive_dir is set but after_import = {:?}; set after_import = \
             \"move\" or remove remote_archive_dir",
            format!("{other:?}").to_lowercase()
        ))),
    }
}

/// Checks a fingerprint (pinned, or from `--trust-host-key`): `SHA256:` and 43 characters of
/// unpadded base64, as `ssh-keygen -l` and the refusal message print it. A trailing `=` is
/// tolerated.
pub fn parse_fingerprint(value: &str) -> Result<String, String> {
    let v = value.trim();
    let Some(b64) = v.strip_prefix("SHA256:") else {
        return Err(format!(
            "host key fingerprint {v:?} must look like SHA256:… (as `ssh-keygen -lf` prints it; \
             MD5 fingerprints are not accepted)"
        ));
    };
    let b64 = b64.trim_end_matches('=');
    let ok = b64.len() == 43
        && b64
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    if !ok {
        return Err(format!(
            "host key fingerprint {v:?} is not a SHA-256 fingerprint (SHA256: followed by 43 \
             base64 characters)"
        ));
    }
    Ok(format!("SHA256:{b64}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<SftpSettings>, ConfigError> {
        let file: SftpFileConfig = toml::from_str(text).expect("valid toml");
        resolve(
            &file,
            |p| Path::new("/etc/es").join(p),
            Path::new("/var/lib/es"),
            &SftpSecrets::default(),
        )
    }

    #[test]
    fn no_host_means_off_and_defaults_follow_the_docs() {
        assert!(parse("").expect("ok").is_none());
        let s = parse("host = \"ftp.voyado.com\"\nuser = \"t\"\nprivate_key_file = \"id\"")
            .expect("ok")
            .expect("on");
        assert_eq!(s.port, 22);
        assert_eq!(s.remote_dir, "integration/customerExport");
        assert_eq!(s.after_import, AfterImport::Leave);
        assert_eq!(
            s.host_key,
            HostKeyPolicy::KnownHosts(PathBuf::from("/var/lib/es/known_hosts"))
        );
        assert_eq!(s.private_key_file, Some(PathBuf::from("/etc/es/id")));
        assert_eq!(s.min_age, Duration::from_secs(60));
        assert_eq!(s.server(), "t@ftp.voyado.com:22");
    }

    #[test]
    fn after_import_and_archive_dir_must_agree() {
        let base = "host = \"h\"\nuser = \"u\"\n";
        let s = parse(&format!("{base}remote_archive_dir = \"done/\"")).expect("ok");
        assert_eq!(
            s.expect("on").after_import,
            AfterImport::Move("done".into())
        );
        let s = parse(&format!("{base}after_import = \"delete\"")).expect("ok");
        assert_eq!(s.expect("on").after_import, AfterImport::Delete);
        let e = parse(&format!("{base}after_import = \"move\"")).expect_err("no dir");
        assert!(e.0.contains("remote_archive_dir"), "{e}");
        let e = parse(&format!(
            "{base}after_import = \"delete\"\nremote_archive_dir = \"x\""
        ))
        .expect_err("both");
        assert!(e.0.contains("\"delete\""), "{e}");
        assert!(parse("host = \"h\"")
            .expect_err("no user")
            .0
            .contains("user"));
        assert!(toml::from_str::<SftpFileConfig>("hots = \"h\"").is_err());
    }

    #[test]
    fn fingerprints_are_checked() {
        let fp = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s";
        assert_eq!(parse_fingerprint(fp).as_deref(), Ok(fp));
        assert_eq!(parse_fingerprint(&format!(" {fp}= ")).as_deref(), Ok(fp));
        assert!(parse_fingerprint("MD5:16:27:ac").is_err());
        assert!(parse_fingerprint("SHA256:short").is_err());
        let s = parse(&format!(
            "host = \"h\"\nuser = \"u\"\nhost_key_fingerprint = \"{fp}\""
        ))
        .expect("ok")
        .expect("on");
        assert_eq!(s.host_key, HostKeyPolicy::Fingerprint(fp.into()));
    }

    #[test]
    fn the_example_config_parses_and_resolves() {
        let text = include_str!("../../engage-sync.toml.example");
        let file: crate::config::FileConfig = toml::from_str(text).expect("example parses");
        let s = resolve(
            &file.sftp,
            |p| p.clone(),
            Path::new("/db"),
            &SftpSecrets::default(),
        )
        .expect("resolves")
        .expect("on");
        assert_eq!(s.server(), "yourtenant@ftp.voyado.com:22");
        assert_eq!(s.after_import, AfterImport::Leave);
    }
}
