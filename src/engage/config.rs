//! Settings of the Engage client: base URL, API key, limits and timeouts (docs/contract.md §5).
//!
//! Invariants enforced here, before any request is made:
//! - the API key never appears in `Debug`, `Display`, logs or error messages ([`ApiKey`]);
//! - the base URL is `https`, or `http` to a loopback host only (tests and local fakes), so the
//!   key is never sent in clear text over a network.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::EngageError;

/// Environment variable holding the base URL, e.g. `https://tenant.voyado.com`.
pub const ENV_BASE_URL: &str = "ENGAGE_BASE_URL";
/// Environment variable holding the API key itself.
pub const ENV_API_KEY: &str = "ENGAGE_API_KEY";

/// The Engage API key. The only way to read it is [`ApiKey::expose`], used for the `apikey`
/// header; `Debug` and `Display` print `***`, so the key cannot leak through `{:?}` of any
/// struct that holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Checks that the key can travel in an HTTP header: not empty, visible ASCII only.
    /// The error never contains the key.
    pub fn new(key: impl Into<String>) -> Result<ApiKey, EngageError> {
        let key = key.into();
        if key.is_empty() {
            return Err(EngageError::Config("the Engage API key is empty".into()));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(EngageError::Config(
                "the Engage API key contains spaces, control or non-ASCII characters; \
                 check ENGAGE_API_KEY / api_key_file"
                    .into(),
            ));
        }
        Ok(ApiKey(key))
    }

    /// The secret itself, for the `apikey` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Which Engage API version the contact, changes, bulk and receipt calls use. `count` and the
/// bulk status poll exist under v2 only (docs/engage-api.md §2.1, §3) and always use v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiVersion {
    /// `/api/v2/…`: no release since 2017, still served.
    V2,
    /// `/api/v3/…`: current and recommended by Voyado.
    #[default]
    V3,
}

impl ApiVersion {
    /// The path segment, `v2` or `v3`.
    pub fn segment(self) -> &'static str {
        match self {
            ApiVersion::V2 => "v2",
            ApiVersion::V3 => "v3",
        }
    }
}

impl std::str::FromStr for ApiVersion {
    type Err = EngageError;

    fn from_str(s: &str) -> Result<ApiVersion, EngageError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "v2" | "2" => Ok(ApiVersion::V2),
            "v3" | "3" => Ok(ApiVersion::V3),
            _ => Err(EngageError::Config(format!(
                "Engage API version {s:?} is unknown; use v2 or v3"
            ))),
        }
    }
}

/// Everything the client needs; one per run. Build it with [`EngageConfig::new`] (defaults)
/// or [`EngageConfig::from_sources`] (flags, environment, config file), then adjust fields.
#[derive(Debug, Clone)]
pub struct EngageConfig {
    /// e.g. `https://tenant.voyado.com` (a trailing `/` is ignored). Checked again when the
    /// client is built, since the field is public.
    pub base_url: String,
    /// The key sent as `apikey`.
    pub api_key: ApiKey,
    /// v3 by default.
    pub api_version: ApiVersion,
    /// Requests started per second, spread evenly (default 50, Engage's "normal operation").
    pub rate_limit_per_sec: f64,
    /// Requests in flight at once (default 8): enough to reach the rate when Engage is slow.
    pub max_concurrency: usize,
    /// TCP + TLS connect timeout (default 10 s).
    pub connect_timeout: Duration,
    /// Whole-request timeout, body included (default 60 s).
    pub request_timeout: Duration,
    /// Retries after the first attempt (default 6).
    pub max_retries: u32,
    /// First backoff ceiling; doubles per retry (default 1 s).
    pub retry_base: Duration,
    /// Largest backoff, and cap on `Retry-After` (default 60 s).
    pub retry_cap: Duration,
    /// Whole-run deadline: no request or retry wait goes past it.
    pub deadline: Option<Instant>,
}

impl EngageConfig {
    /// A config with every default; fails if the base URL is not acceptable.
    pub fn new(base_url: &str, api_key: ApiKey) -> Result<EngageConfig, EngageError> {
        let base_url = parse_base_url(base_url)?;
        Ok(EngageConfig {
            base_url,
            api_key,
            api_version: ApiVersion::V3,
            rate_limit_per_sec: 50.0,
            max_concurrency: 8,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_retries: 6,
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(60),
            deadline: None,
        })
    }

    /// Resolves base URL and key from `sources` and the process environment.
    pub fn from_sources(sources: &EngageSources) -> Result<EngageConfig, EngageError> {
        Self::from_sources_with_env(sources, |name| std::env::var(name).ok())
    }

    /// As [`EngageConfig::from_sources`], reading the environment through `env` (for tests).
    /// Precedence follows docs/contract.md §8 (flags > environment > config file); an empty value
    /// counts as unset.
    ///
    /// - base URL: `sources.base_url` > `ENGAGE_BASE_URL` > `sources.file_base_url`;
    /// - key: `sources.api_key` > `sources.api_key_file` > `ENGAGE_API_KEY` >
    ///   `sources.file_api_key_file`.
    pub fn from_sources_with_env(
        sources: &EngageSources,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<EngageConfig, EngageError> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let base = nonempty(&sources.base_url)
            .or_else(|| env(ENV_BASE_URL))
            .or_else(|| nonempty(&sources.file_base_url))
            .ok_or_else(|| {
                EngageError::Config(format!(
                    "no Engage base URL: set {ENV_BASE_URL} or base_url in the config file, \
                     e.g. https://<tenant>.voyado.com"
                ))
            })?;
        let key = resolve_key(sources, &env)?;
        EngageConfig::new(&base, key)
    }
}

/// Where the base URL and key may come from, besides the environment. The caller fills what
/// flags and the config file gave.
#[derive(Debug, Clone, Default)]
pub struct EngageSources {
    /// Base URL given on the command line (wins over everything).
    pub base_url: Option<String>,
    /// The key itself, given programmatically (wins over everything).
    pub api_key: Option<ApiKey>,
    /// A file holding only the key, given on the command line.
    pub api_key_file: Option<PathBuf>,
    /// `base_url` from the config file (below the environment).
    pub file_base_url: Option<String>,
    /// `api_key_file` from the config file (below the environment).
    pub file_api_key_file: Option<PathBuf>,
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.as_ref().filter(|s| !s.trim().is_empty()).cloned()
}

fn resolve_key(
    sources: &EngageSources,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<ApiKey, EngageError> {
    if let Some(k) = &sources.api_key {
        return Ok(k.clone());
    }
    if let Some(path) = &sources.api_key_file {
        return read_key_file(path);
    }
    if let Some(k) = env(ENV_API_KEY) {
        return ApiKey::new(k.trim());
    }
    if let Some(path) = &sources.file_api_key_file {
        return read_key_file(path);
    }
    Err(EngageError::Config(format!(
        "no Engage API key: set {ENV_API_KEY}, or api_key_file (a file holding only the key) \
         in the config file"
    )))
}

/// Reads a key file, dropping the trailing newline editors add (and any other surrounding
/// whitespace, which a key cannot contain).
fn read_key_file(path: &Path) -> Result<ApiKey, EngageError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        EngageError::Config(format!("cannot read api_key_file {}: {e}", path.display()))
    })?;
    let key = text.trim();
    if key.is_empty() {
        return Err(EngageError::Config(format!(
            "api_key_file {} is empty",
            path.display()
        )));
    }
    ApiKey::new(key).map_err(|e| EngageError::Config(format!("in {}: {e}", path.display())))
}

/// Checks and normalises a base URL: `https`, or `http` to a loopback host (127.0.0.0/8, ::1,
/// localhost); no credentials, query or fragment. Returns it without a trailing `/`, so paths
/// can be appended as they are.
pub(crate) fn parse_base_url(raw: &str) -> Result<String, EngageError> {
    let shown = redact_url(raw.trim());
    let bad = |why: &str| EngageError::Config(format!("Engage base URL {shown:?} {why}"));
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| bad(&format!("is not a URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "must not contain a user or password (shown as ***): remove them from \
             ENGAGE_BASE_URL / base_url; Engage authenticates with the API key",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(bad(
                "uses http: the API key would travel unencrypted; use https (http is only \
                 allowed to loopback addresses such as 127.0.0.1)",
            ))
        }
        _ => return Err(bad("must start with https://")),
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// The URL as it may be shown: anything before an `@` in the authority (user, password)
/// becomes `***`, and so do the query and fragment (they may hold a key). Done on the text, so
/// it works on a URL that does not parse too.
pub(crate) fn redact_url(raw: &str) -> String {
    let (scheme, rest) = match raw.find("://") {
        Some(i) => raw.split_at(i + 3),
        None => ("", raw),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rfind('@') {
        Some(i) => format!("***{}", &authority[i..]),
        None => authority.to_string(),
    };
    let tail = match tail.find(['?', '#']) {
        Some(i) => format!("{}{}***", &tail[..i], &tail[i..i + 1]),
        None => tail.to_string(),
    };
    format!("{scheme}{authority}{tail}")
}

/// True for `localhost` and loopback IP literals (`url` normalises `127.1` to `127.0.0.1` and
/// brackets IPv6 as `[::1]`).
pub(crate) fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn credentials_in_a_base_url_are_never_echoed() {
        let e = parse_base_url("https://bob:s3cr3t-pw@t.voyado.com/x?k=v").expect_err("refused");
        let text = e.to_string();
        assert!(text.contains("https://***@t.voyado.com/x?***"), "{text}");
        assert!(!text.contains("s3cr3t") && !text.contains("bob"), "{text}");
        assert_eq!(redact_url("ht tp://u:p@h"), "ht tp://***@h");
        assert_eq!(redact_url("u:p@h/x#f"), "***@h/x#***");
        assert_eq!(redact_url("https://h:9/a"), "https://h:9/a");
    }

    #[test]
    fn base_urls_must_be_https_unless_loopback() {
        for ok in [
            "https://t.voyado.com/",
            "http://127.0.0.1:8080",
            "http://127.3.4.5",
            "http://[::1]:9/",
            "http://LOCALHOST:1",
        ] {
            assert!(parse_base_url(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            parse_base_url("https://t.voyado.com/").ok().as_deref(),
            Some("https://t.voyado.com")
        );
        for bad in [
            "http://t.voyado.com",
            "http://10.0.0.1",
            "ftp://t",
            "t.voyado.com",
            "https://u:p@t.voyado.com",
            "https://t?x=1",
        ] {
            let e = parse_base_url(bad).expect_err(bad);
            assert!(matches!(e, EngageError::Config(_)), "{bad}");
        }
    }

    #[test]
    fn the_key_never_prints() {
        let k = ApiKey::new("s3cret-Key").expect("valid");
        assert_eq!(format!("{k:?} {k}"), "*** ***");
        let cfg = EngageConfig::new("https://t.voyado.com", k).expect("valid");
        assert!(!format!("{cfg:?}").contains("s3cret"));
        let e = ApiKey::new("s3cret key").expect_err("space");
        assert!(!e.to_string().contains("s3cret"));
    }

    #[test]
    fn sources_follow_precedence_and_name_the_missing_setting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("key");
        std::fs::write(&file, "from-file\n").expect("write");
        let env: HashMap<&str, &str> = [(ENV_BASE_URL, "https://env.voyado.com")].into();
        let getenv = |n: &str| env.get(n).map(|v| v.to_string());
        let src = EngageSources {
            file_base_url: Some("https://file.voyado.com".into()),
            file_api_key_file: Some(file.clone()),
            ..EngageSources::default()
        };
        let cfg = EngageConfig::from_sources_with_env(&src, getenv).expect("resolves");
        assert_eq!(cfg.base_url, "https://env.voyado.com");
        assert_eq!(cfg.api_key.expose(), "from-file");
        let with_env_key = |n: &str| (n == ENV_API_KEY).then(|| "env-key".to_string());
        let cfg = EngageConfig::from_sources_with_env(&src, with_env_key).expect("resolves");
        assert_eq!(cfg.api_key.expose(), "env-key");
        assert_eq!(cfg.base_url, "https://file.voyado.com");
        let none = EngageSources::default();
        let e = EngageConfig::from_sources_with_env(&none, |_| None).expect_err("no url");
        assert!(e.to_string().contains(ENV_BASE_URL));
        let url_only = EngageSources {
            base_url: Some("https://x.voyado.com".into()),
            ..EngageSources::default()
        };
        let e = EngageConfig::from_sources_with_env(&url_only, |_| None).expect_err("no key");
        assert!(e.to_string().contains(ENV_API_KEY) && e.to_string().contains("api_key_file"));
    }
}
