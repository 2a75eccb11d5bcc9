//! Building the run's Engage client from the merged settings (docs/contract.md §5); where base
//! URL, key and tuning come from is `config::engage`'s business.

use std::time::Instant;

use crate::engage::EngageClient;

use super::Ctx;

/// The Engage client for this run: base URL and key from flags, environment or `[engage]`,
/// tuning from `[engage]`, and the run's deadline, past which no request starts.
pub(crate) fn engage_client(ctx: &Ctx, deadline: Option<Instant>) -> anyhow::Result<EngageClient> {
    let cfg = ctx.settings.engage_config(deadline)?;
    Ok(EngageClient::new(&cfg)?)
}
