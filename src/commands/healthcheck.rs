//! The optional healthcheck ping (`healthcheck_url`): monitoring learns that a cron job ran and
//! whether it worked, even when nobody reads cron mail.

use std::time::Duration;

use crate::error::ExitCode;
use crate::lock::LockError;

/// How long a ping may take; monitoring must never hold up or fail a run.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Pings `url` after `job`: as is on success, with `/fail` appended on failure. A run skipped
/// because another held the lock pings nothing (it did no work, and it is not broken). A failed
/// ping is a warning only. The URL is not logged (it may carry a secret token).
pub(super) fn ping_after(url: &str, job: &str, result: &anyhow::Result<ExitCode>) {
    let ok = match result {
        Ok(code) => *code == ExitCode::Ok,
        Err(e)
            if e.chain()
                .any(|c| matches!(c.downcast_ref(), Some(LockError::Held { .. }))) =>
        {
            return
        }
        Err(_) => false,
    };
    let target = if ok {
        url.to_string()
    } else {
        format!("{}/fail", url.trim_end_matches('/'))
    };
    if let Err(e) = send(&target) {
        tracing::warn!("the healthcheck ping after {job} failed: {e:#}");
    }
}

fn send(url: &str) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder()
        .timeout(PING_TIMEOUT)
        .user_agent(concat!("engage-sync/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let status = rt
        .block_on(async { client.get(url).send().await.map(|r| r.status()) })
        .map_err(|e| anyhow::anyhow!("{}", e.without_url()))?;
    if !status.is_success() {
        anyhow::bail!("the healthcheck answered HTTP {status}");
    }
    Ok(())
}
