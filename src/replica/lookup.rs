//! Lookups by one key, with the same normalisation as import.

use serde::Serialize;

use super::{queries, Replica};
use crate::error::UsageError;
use crate::mask;
use crate::normalize::{
    lookup_phone_key, normalize_contact_id, normalize_email, normalize_plain, Country,
};

/// The key a lookup searches by, as typed by the user.
#[derive(Debug, Clone)]
pub enum LookupKey {
    /// `--mobile`
    Mobile(String),
    /// `--email`
    Email(String),
    /// `--member-number`
    MemberNumber(String),
    /// `--contact-id`
    ContactId(String),
    /// `--external-id`
    ExternalId(String),
    /// `--ssn`
    Ssn(String),
    /// `--local-key`
    LocalKey(String),
}

impl LookupKey {
    /// The view column and the normalised value, or a usage error naming what is wrong.
    pub fn normalized(&self, country: Country) -> Result<(&'static str, String), UsageError> {
        let bad = |what: &str, hint: &str| UsageError(format!("{what}: {hint}"));
        Ok(match self {
            LookupKey::Mobile(v) => (
                "mobile_phone",
                lookup_phone_key(v, country).map_err(|e| {
                    UsageError(format!(
                        "--mobile {} {e} (a national number is read as one of the default \
                         country {}, --default-country)",
                        mask::phone(v),
                        country.iso()
                    ))
                })?,
            ),
            LookupKey::Email(v) => (
                "email",
                normalize_email(v).ok_or_else(|| bad("--email is empty", "give an address"))?,
            ),
            LookupKey::ContactId(v) => (
                "contact_id",
                normalize_contact_id(v).ok_or_else(|| {
                    bad(
                        "--contact-id is not a GUID",
                        "expected 8-4-4-4-12 hex digits, e.g. 1c277c0a-8d2f-4e6b-93dc-0123456789ab",
                    )
                })?,
            ),
            LookupKey::MemberNumber(v) => ("member_number", plain(v, "--member-number")?),
            LookupKey::ExternalId(v) => ("external_id", plain(v, "--external-id")?),
            LookupKey::Ssn(v) => ("social_security_number", plain(v, "--ssn")?),
            LookupKey::LocalKey(v) => ("local_key", plain(v, "--local-key")?),
        })
    }
}

fn plain(v: &str, flag: &str) -> Result<String, UsageError> {
    normalize_plain(v).ok_or_else(|| UsageError(format!("{flag} is empty: give a value")))
}

/// A row of the public `contacts` view.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ContactView {
    /// Engage GUID, `None` for a local contact Engage does not know yet.
    pub contact_id: Option<String>,
    /// Local integration key.
    pub local_key: Option<String>,
    /// `memberNumber`.
    pub member_number: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `mobilePhone`.
    pub mobile_phone: Option<String>,
    /// `externalId`.
    pub external_id: Option<String>,
    /// `socialSecurityNumber`.
    pub social_security_number: Option<String>,
    /// `contactType`.
    pub contact_type: Option<String>,
    /// `firstName`.
    pub first_name: Option<String>,
    /// `lastName`.
    pub last_name: Option<String>,
    /// Every field (full mode), parsed.
    pub attributes: Option<serde_json::Value>,
    /// When the row was last written, UTC.
    pub updated_at: String,
}

impl Replica {
    /// Contacts matching `column = value`, most recently written first (at most 50).
    /// `column` comes from [`LookupKey::normalized`], never from user input.
    pub fn lookup(&self, column: &'static str, value: &str) -> anyhow::Result<Vec<ContactView>> {
        let mut stmt = self.conn.prepare(&queries::lookup_by(column))?;
        let rows = stmt.query_map([value], |r| {
            let attributes: Option<String> = r.get(10)?;
            Ok(ContactView {
                contact_id: r.get(0)?,
                local_key: r.get(1)?,
                member_number: r.get(2)?,
                email: r.get(3)?,
                mobile_phone: r.get(4)?,
                external_id: r.get(5)?,
                social_security_number: r.get(6)?,
                contact_type: r.get(7)?,
                first_name: r.get(8)?,
                last_name: r.get(9)?,
                attributes: attributes.and_then(|a| serde_json::from_str(&a).ok()),
                updated_at: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
