//! `[engage]`: how to reach Engage's API, and the one place its sources meet (docs/contract.md
//! §5, §8): the base URL and key from flags or environment (clap folds `--engage-base-url` /
//! `ENGAGE_BASE_URL` and `--engage-api-key` / `ENGAGE_API_KEY`), else the config file; the
//! tuning from the config file. The result is the [`EngageConfig`] value the client is built
//! from. It is made when a command first needs Engage, not when the settings are merged, so a
//! command that never calls Engage never reads the key file or fails on a missing key.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Deserialize;

use super::{parse_duration_setting, Settings};
use crate::engage::{check_api_key, EngageConfig, EngageError};
use crate::error::ConfigError;
use crate::secret::Secret;

/// Environment variable holding the base URL, e.g. `https://tenant.voyado.com`.
pub const ENV_BASE_URL: &str = "ENGAGE_BASE_URL";
/// Environment variable holding the API key itself.
pub const ENV_API_KEY: &str = "ENGAGE_API_KEY";

/// `[engage]`: how to reach Engage's API. The key itself never goes in this file: use
/// `api_key_file` or the `ENGAGE_API_KEY` environment variable.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngageFileConfig {
    /// `https://<tenant>.voyado.com` (env `ENGAGE_BASE_URL` wins over this).
    pub base_url: Option<String>,
    /// A file holding only the API key (mode 0600 recommended).
    pub api_key_file: Option<PathBuf>,
    /// "v3" (default) or "v2".
    pub api_version: Option<String>,
    /// Requests per second (default 50; Engage answers 429 above 200).
    pub rate_limit: Option<f64>,
    /// Requests in flight at once (default 8).
    pub max_concurrency: Option<usize>,
    /// TCP + TLS connect timeout, e.g. "10s".
    pub connect_timeout: Option<String>,
    /// Whole-request timeout, e.g. "60s".
    pub request_timeout: Option<String>,
    /// Retries after the first attempt (default 6).
    pub max_retries: Option<u32>,
    /// First retry backoff, doubling per retry, e.g. "1s".
    pub retry_base: Option<String>,
    /// Largest retry backoff and cap on Retry-After, e.g. "60s".
    pub retry_cap: Option<String>,
    /// How far `changes` re-reads before its cursor, e.g. "5m" (default).
    pub changes_overlap: Option<String>,
}

/// Base URL and key as given by flag or environment (clap merged the two); each wins over the
/// config file. An empty or blank value counts as unset.
#[derive(Debug, Default, Clone)]
pub struct EngageAccess {
    /// `--engage-base-url` / `ENGAGE_BASE_URL`.
    pub base_url: Option<String>,
    /// `--engage-api-key` / `ENGAGE_API_KEY`.
    pub api_key: Option<Secret>,
}

impl Settings {
    /// The Engage client's config for this run: base URL and key by [`resolve_access`], tuning
    /// from `[engage]`, and the run's deadline, past which no request starts.
    pub fn engage_config(&self, deadline: Option<Instant>) -> anyhow::Result<EngageConfig> {
        let mut cfg = resolve_access(&self.engage, &self.engage_access)?;
        tune(&mut cfg, &self.engage)?;
        cfg.deadline = deadline;
        Ok(cfg)
    }
}

/// Base URL and key by docs/contract.md §8 (flags > environment > config file):
///
/// - base URL: `--engage-base-url` / `ENGAGE_BASE_URL` > `[engage] base_url`;
/// - key: `--engage-api-key` / `ENGAGE_API_KEY` > the file named by `[engage] api_key_file`.
pub fn resolve_access(
    file: &EngageFileConfig,
    access: &EngageAccess,
) -> Result<EngageConfig, EngageError> {
    let base = nonempty(access.base_url.as_deref())
        .or_else(|| nonempty(file.base_url.as_deref()))
        .ok_or_else(|| {
            EngageError::Config(format!(
                "no Engage base URL: set {ENV_BASE_URL} or base_url in the config file, \
                 e.g. https://<tenant>.voyado.com"
            ))
        })?;
    let key = resolve_key(file, access)?;
    EngageConfig::new(base, key)
}

fn nonempty(v: Option<&str>) -> Option<&str> {
    v.filter(|s| !s.trim().is_empty())
}

fn resolve_key(file: &EngageFileConfig, access: &EngageAccess) -> Result<Secret, EngageError> {
    if let Some(k) = access.api_key.as_ref().map(Secret::expose) {
        if let Some(k) = nonempty(Some(k)) {
            let key = Secret::new(k.trim());
            check_api_key(&key)?;
            return Ok(key);
        }
    }
    if let Some(path) = &file.api_key_file {
        return read_key_file(path);
    }
    Err(EngageError::Config(format!(
        "no Engage API key: set {ENV_API_KEY}, or api_key_file (a file holding only the key) \
         in the config file"
    )))
}

/// Reads a key file, dropping the trailing newline editors add (and any other surrounding
/// whitespace, which a key cannot contain).
fn read_key_file(path: &Path) -> Result<Secret, EngageError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        EngageError::Config(format!("cannot read api_key_file {}: {e}", path.display()))
    })?;
    let text = Secret::new(text);
    let key = text.expose().trim();
    if key.is_empty() {
        return Err(EngageError::Config(format!(
            "api_key_file {} is empty",
            path.display()
        )));
    }
    let key = Secret::new(key);
    check_api_key(&key).map_err(|e| EngageError::Config(format!("in {}: {e}", path.display())))?;
    Ok(key)
}

/// Applies `[engage]`'s tuning (version, rate, concurrency, retries, timeouts) over the
/// defaults, checking each value.
fn tune(cfg: &mut EngageConfig, e: &EngageFileConfig) -> Result<(), ConfigError> {
    if let Some(v) = &e.api_version {
        cfg.api_version = v.parse().map_err(|_| {
            ConfigError(format!(
                "[engage] api_version = {v:?}: use \"v3\" or \"v2\""
            ))
        })?;
    }
    if let Some(rate) = e.rate_limit {
        if !(rate > 0.0 && rate <= 200.0) {
            return Err(ConfigError(format!(
                "[engage] rate_limit = {rate}: use requests per second above 0 and at most 200 \
                 (Engage answers 429 above 200; 50 is its normal-operation limit)"
            )));
        }
        cfg.rate_limit_per_sec = rate;
    }
    if let Some(n) = e.max_concurrency {
        if n == 0 {
            return Err(ConfigError(
                "[engage] max_concurrency must be at least 1".into(),
            ));
        }
        cfg.max_concurrency = n;
    }
    if let Some(n) = e.max_retries {
        cfg.max_retries = n;
    }
    for (key, value, field) in [
        (
            "[engage] connect_timeout",
            &e.connect_timeout,
            &mut cfg.connect_timeout,
        ),
        (
            "[engage] request_timeout",
            &e.request_timeout,
            &mut cfg.request_timeout,
        ),
        ("[engage] retry_base", &e.retry_base, &mut cfg.retry_base),
        ("[engage] retry_cap", &e.retry_cap, &mut cfg.retry_cap),
    ] {
        if let Some(v) = value {
            *field = parse_duration_setting(key, v)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_follow_precedence_and_name_the_missing_setting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("key");
        std::fs::write(&file, "from-file\n").expect("write");
        let from_file = EngageFileConfig {
            base_url: Some("https://file.voyado.com".into()),
            api_key_file: Some(file.clone()),
            ..EngageFileConfig::default()
        };
        let env_url = EngageAccess {
            base_url: Some("https://env.voyado.com".into()),
            ..EngageAccess::default()
        };
        let cfg = resolve_access(&from_file, &env_url).expect("resolves");
        assert_eq!(cfg.base_url, "https://env.voyado.com");
        assert_eq!(cfg.api_key.expose(), "from-file");
        let env_key = EngageAccess {
            api_key: Some(Secret::new("env-key")),
            ..EngageAccess::default()
        };
        let cfg = resolve_access(&from_file, &env_key).expect("resolves");
        assert_eq!(cfg.api_key.expose(), "env-key");
        assert_eq!(cfg.base_url, "https://file.voyado.com");
        let none = EngageFileConfig::default();
        let e = resolve_access(&none, &EngageAccess::default()).expect_err("no url");
        assert!(e.to_string().contains(ENV_BASE_URL));
        let url_only = EngageAccess {
            base_url: Some("https://x.voyado.com".into()),
            ..EngageAccess::default()
        };
        let e = resolve_access(&none, &url_only).expect_err("no key");
        assert!(e.to_string().contains(ENV_API_KEY) && e.to_string().contains("api_key_file"));
    }

    #[test]
    fn blank_values_count_as_unset_and_the_key_is_trimmed() {
        let blank = EngageAccess {
            base_url: Some("  ".into()),
            api_key: Some(Secret::new(" \t")),
        };
        let e = resolve_access(&EngageFileConfig::default(), &blank).expect_err("no url");
        assert!(e.to_string().contains(ENV_BASE_URL), "{e}");
        let padded = EngageAccess {
            base_url: Some("https://t.voyado.com".into()),
            api_key: Some(Secret::new(" k3y\n")),
        };
        let cfg = resolve_access(&EngageFileConfig::default(), &padded).expect("resolves");
        assert_eq!(cfg.api_key.expose(), "k3y");
    }
}
