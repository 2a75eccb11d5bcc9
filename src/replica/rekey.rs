//! Bringing stored keys to the current normalisation rules, once, after an upgrade.
//!
//! Migration 6 (`migrations/0006_key_rules.sql`) only marks a replica that holds contacts:
//! reading a national or country-code-without-`+` number needs the default country, which the
//! schema does not know and the sync jobs do. The first job after the upgrade calls
//! [`rekey_if_marked`], which re-normalises every row's keys with the functions import uses
//! and removes the mark in the same transaction, so a crash leaves either the old keys and the
//! mark (done again next time) or the new keys and no mark.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::queries;
use crate::normalize::{
    normalize_email, normalize_plain, phone_key, undo_doubled_country_code, Country,
};

/// What re-normalising changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RekeyReport {
    /// Rows read.
    pub rows: u64,
    /// Rows with at least one key changed.
    pub changed_rows: u64,
    /// Rows whose mobile number key changed.
    pub phones_changed: u64,
    /// Rows whose e-mail key changed.
    pub emails_changed: u64,
    /// Rows whose member number, external id or personal identity number changed.
    pub other_keys_changed: u64,
    /// Mobile numbers still kept as sent (not readable as phone numbers).
    pub phones_as_sent: u64,
}

impl RekeyReport {
    /// One line for a command's summary.
    pub fn line(&self) -> String {
        format!(
            "keys re-normalised after the upgrade: {} of {} contacts changed (mobile numbers: \
             {}, e-mail addresses: {}, other keys: {}); mobile numbers kept as sent: {}",
            self.changed_rows,
            self.rows,
            self.phones_changed,
            self.emails_changed,
            self.other_keys_changed,
            self.phones_as_sent
        )
    }
}

/// The keys of one row, as stored or as they should be.
#[derive(Debug, PartialEq, Eq)]
struct Keys {
    mobile_phone: Option<String>,
    email: Option<String>,
    member_number: Option<String>,
    external_id: Option<String>,
    social_security_number: Option<String>,
}

impl super::Replica {
    /// [`rekey_if_marked`] on this replica, the error naming it.
    pub fn rekey_if_marked(&mut self, country: Country) -> anyhow::Result<Option<RekeyReport>> {
        use anyhow::Context;
        let db = self.path().display().to_string();
        rekey_if_marked(&mut self.conn, country)
            .with_context(|| format!("cannot re-normalise the stored keys of the replica {db}"))
    }
}

/// Re-normalises every stored key if the replica is marked (see the module documentation);
/// `None` when it is not. Runs in its own transaction, so the caller must have none open.
pub fn rekey_if_marked(
    conn: &mut Connection,
    country: Country,
) -> rusqlite::Result<Option<RekeyReport>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let marked: Option<String> = tx
        .query_row(queries::REKEY_PENDING, [], |r| r.get(0))
        .optional()?;
    if marked.is_none() {
        return Ok(None);
    }
    let mut report = RekeyReport::default();
    let mut changed = Vec::new();
    {
        let mut stmt = tx.prepare(queries::REKEY_ROWS)?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            report.rows += 1;
            let stored = Keys {
                mobile_phone: r.get(1)?,
                email: r.get(2)?,
                member_number: r.get(3)?,
                external_id: r.get(4)?,
                social_security_number: r.get(5)?,
            };
            // Full mode keeps the number as Engage sent it: the better source.
            let sent: Option<String> =
                r.get::<_, Option<rusqlite::types::Value>>(6)?
                    .and_then(|v| match v {
                        rusqlite::types::Value::Text(t) => Some(t),
                        _ => None,
                    });
            let wanted = renormalised(&stored, sent.as_deref(), country, &mut report);
            if wanted != stored {
                count_changes(&stored, &wanted, &mut report);
                changed.push((r.get::<_, i64>(0)?, wanted));
            }
        }
    }
    let mut update = tx.prepare(queries::REKEY_UPDATE)?;
    for (id, k) in &changed {
        update.execute(params![
            id,
            k.mobile_phone,
            k.email,
            k.member_number,
            k.external_id,
            k.social_security_number
        ])?;
    }
    drop(update);
    crate::failpoint::hit("rekey.updated");
    tx.execute(queries::REKEY_DONE, [])?;
    tx.commit()?;
    Ok(Some(report))
}

/// The keys import would store for this row today.
fn renormalised(
    stored: &Keys,
    sent: Option<&str>,
    country: Country,
    report: &mut RekeyReport,
) -> Keys {
    // Without the number as sent (keys mode), a key the old rules garbled is undone first.
    let undone = match sent {
        Some(_) => None,
        None => stored
            .mobile_phone
            .as_deref()
            .and_then(|k| undo_doubled_country_code(k, country)),
    };
    let source = sent
        .or(undone.as_deref())
        .or(stored.mobile_phone.as_deref());
    let mobile_phone = source.and_then(|raw| match phone_key(raw, country) {
        Ok(key) => Some(key),
        Err(_) => {
            let kept = raw.trim();
            report.phones_as_sent += u64::from(!kept.is_empty());
            (!kept.is_empty()).then(|| kept.to_string())
        }
    });
    let plain = |v: &Option<String>| v.as_deref().and_then(normalize_plain);
    Keys {
        mobile_phone,
        email: stored.email.as_deref().and_then(normalize_email),
        member_number: plain(&stored.member_number),
        external_id: plain(&stored.external_id),
        social_security_number: plain(&stored.social_security_number),
    }
}

fn count_changes(stored: &Keys, wanted: &Keys, report: &mut RekeyReport) {
    report.changed_rows += 1;
    report.phones_changed += u64::from(stored.mobile_phone != wanted.mobile_phone);
    report.emails_changed += u64::from(stored.email != wanted.email);
    report.other_keys_changed += u64::from(
        stored.member_number != wanted.member_number
            || stored.external_id != wanted.external_id
            || stored.social_security_number != wanted.social_security_number,
    );
}
