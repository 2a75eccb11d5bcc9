//! Building the run's Engage client from the merged settings (docs/contract.md §5).

use std::time::Instant;

use crate::config::parse_duration_setting;
use crate::engage::{EngageClient, EngageConfig, EngageSources};
use crate::error::ConfigError;

use super::Ctx;

/// The Engage client for this run: base URL and key from the environment or `[engage]`,
/// tuning from `[engage]`, and the run's deadline, past which no request starts.
pub(crate) fn engage_client(ctx: &Ctx, deadline: Option<Instant>) -> anyhow::Result<EngageClient> {
    let e = &ctx.settings.engage;
    let sources = EngageSources {
        file_base_url: e.base_url.clone(),
        file_api_key_file: e.api_key_file.clone(),
        ..EngageSources::default()
    };
    let mut cfg = EngageConfig::from_sources(&sources)?;
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
            ))
            .into());
        }
        cfg.rate_limit_per_sec = rate;
    }
    if let Some(n) = e.max_concurrency {
        if n == 0 {
            return Err(ConfigError("[engage] max_concurrency must be at least 1".into()).into());
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
    cfg.deadline = deadline;
    Ok(EngageClient::new(&cfg)?)
}
