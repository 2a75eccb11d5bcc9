//! The use cases behind the till commands (`contact add`, `contact update`, `receipt add`,
//! and `push-local`'s store): opening the till store for a till write, reading the contacts
//! of an input, and what `contact add` / `contact update` report. The commands only map flags
//! and print.

use std::path::Path;
use std::time::Duration;

use rusqlite::Transaction;
use serde::Serialize;
use serde_json::{Map, Value};

use super::fields::{add_flags, masked, FlagField};
use super::input::for_each_document;
use super::till::{Added, Batch, Till, Updated};
use super::OutboxError;
use crate::config::{LocalSettings, Mode};
use crate::error::UsageError;
use crate::normalize::Country;
use crate::replica::{Replica, ReplicaError};
use crate::till_store::TillStore;

/// How many registered contacts a human summary lists one by one.
const LISTED: usize = 20;

/// Opens the till store of the replica at `db` for a till write. The replica must exist (a
/// till command never creates one) and is only read: a sync job holding its write lock cannot
/// make the till wait. `requested`: the mode the settings ask for, if any; a replica of the
/// other mode is refused.
pub fn open_store(
    db: &Path,
    busy_timeout: Duration,
    requested: Option<Mode>,
) -> anyhow::Result<TillStore> {
    let mode = Replica::ready_for_till(db, busy_timeout)?;
    let store = TillStore::open(db, busy_timeout, mode)?;
    if let Some(requested) = requested.filter(|m| *m != store.mode()) {
        return Err(ReplicaError::ModeMismatch {
            db: db.to_path_buf(),
            stored: store.mode().as_str(),
            requested: requested.as_str(),
        }
        .into());
    }
    Ok(store)
}

/// What `contact add` did (its `--json` output).
#[derive(Debug, Serialize)]
pub struct AddReport {
    /// Nothing was written.
    pub dry_run: bool,
    /// How many contacts were registered (or, in a dry run, are valid).
    pub added: usize,
    /// The contacts, in input order.
    pub contacts: Vec<AddedContact>,
}

/// One registered contact, as reported.
#[derive(Debug, Serialize)]
pub struct AddedContact {
    /// Its new local key.
    pub local_key: String,
    /// The keys, masked.
    pub keys: Vec<String>,
}

impl AddReport {
    /// The human summary: the first few contacts, then a total.
    pub fn human_lines(&self) -> Vec<String> {
        let verb = if self.dry_run {
            "would register"
        } else {
            "registered"
        };
        let mut lines: Vec<String> = self
            .contacts
            .iter()
            .take(LISTED)
            .map(|c| format!("{verb} {} ({})", c.local_key, c.keys.join(", ")))
            .collect();
        if self.contacts.len() > LISTED {
            lines.push(format!("… and {} more", self.contacts.len() - LISTED));
        }
        lines.push(if self.dry_run {
            format!(
                "contact add (dry run, nothing written): {} contact(s) valid",
                self.added
            )
        } else {
            format!(
                "contact add: {} contact(s) registered; lookup finds them now (match key \
                 localKey); queued for push-local",
                self.added
            )
        });
        lines
    }
}

/// Registers every contact of `from` (or the one the flags describe) in one transaction on
/// the till store: all of them, or (the first error rolls the transaction back) none. A dry
/// run rolls back what it checked.
pub fn add_contacts(
    store: &mut TillStore,
    country: Country,
    local: &LocalSettings,
    dry_run: bool,
    flags: &[FlagField],
    from: Option<&Path>,
) -> anyhow::Result<AddReport> {
    let till = Till {
        mode: store.mode(),
        country,
        local,
    };
    let added = store.write(!dry_run, |tx| add_all(&till, tx, flags, from))?;
    Ok(AddReport {
        dry_run,
        added: added.len(),
        contacts: added
            .into_iter()
            .map(|c| AddedContact {
                keys: masked_keys(&c.fields),
                local_key: c.local_key,
            })
            .collect(),
    })
}

/// The contact's keys for output, masked.
fn masked_keys(fields: &Map<String, Value>) -> Vec<String> {
    [
        "email",
        "mobilePhone",
        "memberNumber",
        "externalId",
        "socialSecurityNumber",
    ]
    .iter()
    .filter_map(|k| {
        let v = fields.get(*k)?.as_str()?;
        Some(format!("{k} {}", masked(k, v)))
    })
    .collect()
}

/// Registers every contact of the input inside `tx`.
fn add_all(
    till: &Till<'_>,
    tx: &Transaction<'_>,
    flags: &[FlagField],
    from: Option<&Path>,
) -> anyhow::Result<Vec<Added>> {
    let mut added = Vec::new();
    let mut batch = Batch::default();
    let source = from_name(from);
    let mut each = |i: usize, doc: Value| -> anyhow::Result<()> {
        let item = format!("contact #{}", i + 1);
        let Value::Object(mut raw) = doc else {
            return Err(OutboxError::Invalid {
                item,
                field: "(document)".into(),
                problem: "must be a JSON object of Engage attributes".into(),
            }
            .into());
        };
        if i > 0 && !flags.is_empty() {
            return Err(UsageError(
                "field flags apply to one contact, but --from holds several; put the fields in \
                 the JSON"
                    .into(),
            )
            .into());
        }
        add_flags(&mut raw, flags, &source)?;
        added.push(till.add_contact(tx, &item, raw, Some(&mut batch))?);
        Ok(())
    };
    match from {
        Some(path) => {
            for_each_document(Some(path), &mut each)?;
        }
        None => each(0, Value::Object(Map::new()))?,
    }
    Ok(added)
}

/// How `--from` is named in a conflict with a flag.
pub fn from_name(from: Option<&Path>) -> String {
    match from {
        Some(p) if p.as_os_str() != "-" => format!("--from {}", p.display()),
        _ => "--from - (stdin)".to_string(),
    }
}

/// What `contact update` did (its `--json` output).
#[derive(Debug, Serialize)]
pub struct UpdateReport {
    /// Nothing was written.
    pub dry_run: bool,
    /// The contact, the fields changed and where the change went.
    #[serde(flatten)]
    pub updated: Updated,
}

impl UpdateReport {
    /// The human summary, one line.
    pub fn human_line(&self) -> String {
        let u = &self.updated;
        let prefix = if self.dry_run {
            "contact update (dry run, nothing written)"
        } else {
            "contact update"
        };
        if u.fields.is_empty() {
            format!("{prefix}: {}: nothing changed, nothing queued", u.contact)
        } else {
            format!(
                "{prefix}: {}: changed {}; {}",
                u.contact,
                u.fields.join(", "),
                u.queued
            )
        }
    }
}

/// The fields a `contact update` asks for: the one JSON object of `from`, then the flags
/// (`flags` reads them once `from` is read, so that errors come in that order).
pub fn wanted_changes(
    from: Option<&Path>,
    flags: impl FnOnce() -> anyhow::Result<Vec<FlagField>>,
) -> anyhow::Result<Map<String, Value>> {
    let mut wanted = Map::new();
    if let Some(path) = from {
        for_each_document(Some(path), |i, doc| {
            match doc {
                Value::Object(m) if i == 0 => wanted = m,
                _ => {
                    return Err(UsageError(
                        "contact update --from takes one JSON object of the fields to change"
                            .into(),
                    )
                    .into())
                }
            }
            Ok(())
        })?;
    }
    add_flags(&mut wanted, &flags()?, &from_name(from))?;
    if wanted.is_empty() {
        return Err(UsageError(
            "give at least one field to change (--new-email, --new-mobile, --first-name, --field \
             NAME=VALUE, or --from FILE)"
                .into(),
        )
        .into());
    }
    Ok(wanted)
}

/// Changes the contact whose `attribute` is `value` (normalised) to `wanted`, in one
/// transaction on the till store (rolled back in a dry run).
pub fn update_contact(
    store: &mut TillStore,
    country: Country,
    local: &LocalSettings,
    dry_run: bool,
    selector: (&str, &str),
    wanted: Map<String, Value>,
) -> anyhow::Result<UpdateReport> {
    let till = Till {
        mode: store.mode(),
        country,
        local,
    };
    let (attribute, value) = selector;
    let updated = store.write(!dry_run, |tx| {
        till.update_contact(tx, attribute, value, wanted)
    })?;
    Ok(UpdateReport { dry_run, updated })
}
