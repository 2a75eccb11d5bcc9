//! Settings of the Engage client: base URL, API key, limits and timeouts (docs/contract.md §5).
//! Where they come from (flags, environment, config file, key file) is `config::engage`'s
//! business: this module only holds and checks the value the client is built from.
//!
//! Invariants enforced here, before any request is made:
//! - the API key never appears in `Debug`, `Display`, logs or error messages ([`Secret`]),
//!   and is sendable as a header ([`check_api_key`]);
//! - the base URL is `https`, or `http` to a loopback host only (tests and local fakes), so the
//!   key is never sent in clear text over a network.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::error::EngageError;
use crate::secret::Secret;

/// Checks that the key can travel in an HTTP header: not empty, visible ASCII only.
/// The error never contains the key.
pub fn check_api_key(key: &Secret) -> Result<(), EngageError> {
    let key = key.expose();
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
    Ok(())
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

/// Everything the client needs; one per run. Build it with [`EngageConfig::new`] (defaults),
/// then adjust fields (`config::engage` does so from the merged settings).
#[derive(Debug, Clone)]
pub struct EngageConfig {
    /// e.g. `https://tenant.voyado.com` (a trailing `/` is ignored). Checked again when the
    /// client is built, since the field is public.
    pub base_url: String,
    /// The key sent as `apikey`. Checked again when the client is built, since the field is
    /// public.
    pub api_key: Secret,
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
    /// A config with every default; fails if the key ([`check_api_key`]) or the base URL is
    /// not acceptable, in that order.
    pub fn new(base_url: &str, api_key: Secret) -> Result<EngageConfig, EngageError> {
        check_api_key(&api_key)?;
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
        let k = Secret::new("s3cret-Key");
        check_api_key(&k).expect("valid");
        assert_eq!(format!("{k:?} {k}"), "*** ***");
        let cfg = EngageConfig::new("https://t.voyado.com", k).expect("valid");
        assert!(!format!("{cfg:?}").contains("s3cret"));
        let e = check_api_key(&Secret::new("s3cret key")).expect_err("space");
        assert!(!e.to_string().contains("s3cret"));
        let e = EngageConfig::new("https://t.voyado.com", Secret::new("s3cret key"));
        assert!(!e.expect_err("space").to_string().contains("s3cret"));
    }
}
