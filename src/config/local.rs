//! `[local]`: contacts and receipts registered at the till while Engage may be unreachable
//! (docs/contract.md §6): the section as written, and resolved with its defaults.

use std::time::Duration;

use serde::Deserialize;

use super::parse_duration_setting;
use crate::error::ConfigError;

/// `[local]`: contacts and receipts registered at the till while Engage may be unreachable
/// (docs/contract.md §6). `engage-sync.toml.example` explains every key.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalFileConfig {
    /// Prefix of local contact keys, unique per installation (default `L<store>-` or `L-`).
    pub key_prefix: Option<String>,
    /// This store's external id: receipts without `storeExternalId` get it, local contacts
    /// without `createdInStore` get it, and it is part of the default key prefix.
    pub store_external_id: Option<String>,
    /// Key a receipt is tagged with when no contactId is known (default `mobilePhone`).
    pub secondary_key: Option<String>,
    /// Look each local contact up in Engage by key before creating it (default true).
    pub lookup_before_create: Option<bool>,
    /// Engage attribute the local key is sent as when creating (e.g. `externalId`; default none).
    pub local_key_attribute: Option<String>,
    /// Contact types the tenant has (default `["Member", "Contact"]`).
    pub contact_types: Option<Vec<String>>,
    /// First wait before polling a bulk batch's status, e.g. "1s".
    pub bulk_poll_interval: Option<String>,
    /// How long one run polls a batch before leaving it to the next run, e.g. "15m".
    pub bulk_poll_timeout: Option<String>,
    /// How long after sending a bulk write with no answer its contacts are checked by key, e.g.
    /// "10m".
    pub recheck_after: Option<String>,
}

/// The keys a local contact or receipt may name, as Engage spells them.
pub const LOCAL_KEY_NAMES: [&str; 5] = [
    "email",
    "mobilePhone",
    "socialSecurityNumber",
    "externalId",
    "memberNumber",
];

/// `[local]` resolved (see [`LocalFileConfig`]).
#[derive(Debug, Clone)]
pub struct LocalSettings {
    /// Prefix of local contact keys.
    pub key_prefix: String,
    /// This store's external id, if configured.
    pub store_external_id: Option<String>,
    /// One of [`LOCAL_KEY_NAMES`].
    pub secondary_key: String,
    /// Look local contacts up in Engage before creating them.
    pub lookup_before_create: bool,
    /// Engage attribute the local key is sent as, if any.
    pub local_key_attribute: Option<String>,
    /// Contact types the tenant has.
    pub contact_types: Vec<String>,
    /// First wait before polling a bulk batch.
    pub bulk_poll_interval: Duration,
    /// Longest a run polls one batch.
    pub bulk_poll_timeout: Duration,
    /// When a bulk write without an answer is checked by key.
    pub recheck_after: Duration,
}

/// Applies `[local]`'s defaults and checks its values.
pub(super) fn resolve_local(l: &LocalFileConfig) -> Result<LocalSettings, ConfigError> {
    let store = l
        .store_external_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let key_prefix = match (&l.key_prefix, &store) {
        (Some(p), _) => p.trim().to_string(),
        (None, Some(s)) => format!("L{s}-"),
        (None, None) => "L-".to_string(),
    };
    if key_prefix.is_empty()
        || key_prefix
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ConfigError(format!(
            "[local] key_prefix = {key_prefix:?}: use a non-empty prefix without spaces, e.g. \"L0600-\""
        )));
    }
    let secondary_key = l
        .secondary_key
        .clone()
        .unwrap_or_else(|| "mobilePhone".into());
    if !LOCAL_KEY_NAMES.contains(&secondary_key.as_str()) {
        return Err(ConfigError(format!(
            "[local] secondary_key = {secondary_key:?}: use one of {}",
            LOCAL_KEY_NAMES.join(", ")
        )));
    }
    let contact_types = l
        .contact_types
        .clone()
        .unwrap_or_else(|| vec!["Member".into(), "Contact".into()]);
    if contact_types.is_empty() {
        return Err(ConfigError(
            "[local] contact_types is empty: list the tenant's contact types, e.g. [\"Member\"]"
                .into(),
        ));
    }
    let duration = |key: &str, v: &Option<String>, default: u64| match v {
        Some(v) => parse_duration_setting(key, v),
        None => Ok(Duration::from_secs(default)),
    };
    Ok(LocalSettings {
        key_prefix,
        store_external_id: store,
        secondary_key,
        lookup_before_create: l.lookup_before_create.unwrap_or(true),
        local_key_attribute: l
            .local_key_attribute
            .clone()
            .filter(|a| !a.trim().is_empty()),
        contact_types,
        bulk_poll_interval: duration("[local] bulk_poll_interval", &l.bulk_poll_interval, 1)?,
        bulk_poll_timeout: duration("[local] bulk_poll_timeout", &l.bulk_poll_timeout, 900)?,
        recheck_after: duration("[local] recheck_after", &l.recheck_after, 600)?,
    })
}
