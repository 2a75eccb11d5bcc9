//! `engage-sync contact add` and `contact update`: contacts registered or changed at the till,
//! offline (docs/contract.md §2, §6).
//!
//! These run at checkout, so they never take the writer lock (a sync may hold it for minutes):
//! each run is one short IMMEDIATE SQLite transaction, which the busy timeout serialises with
//! whatever else writes.

use rusqlite::Transaction;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{print_json, print_lines, Ctx};
use crate::cli::{ContactAddArgs, ContactCommand, ContactFieldArgs, ContactUpdateArgs};
use crate::error::{ExitCode, UsageError};
use crate::outbox::fields::{add_flags, from_flags, masked, FlagField};
use crate::outbox::input::for_each_document;
use crate::outbox::till::{Added, Batch, Till, Updated};
use crate::outbox::OutboxError;
use crate::replica::{LookupKey, Replica, ReplicaError};
use crate::till_store::TillStore;

/// How many registered contacts a human summary lists one by one.
const LISTED: usize = 20;

/// Runs `contact add` or `contact update`.
pub fn run(ctx: &Ctx, cmd: &ContactCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ContactCommand::Add(a) => add(ctx, a),
        ContactCommand::Update(a) => update(ctx, a),
    }
}

/// Opens the till store for a till write. The replica must exist (a till command never
/// creates one) and is only read: a sync job holding its write lock cannot make the till wait.
pub(super) fn open(ctx: &Ctx) -> anyhow::Result<TillStore> {
    let s = &ctx.settings;
    let mode = Replica::ready_for_till(&s.db, s.busy_timeout)?;
    let store = TillStore::open(&s.db, s.busy_timeout, mode)?;
    if let Some(requested) = s.mode.filter(|m| *m != store.mode()) {
        return Err(ReplicaError::ModeMismatch {
            db: s.db.clone(),
            stored: store.mode().as_str(),
            requested: requested.as_str(),
        }
        .into());
    }
    Ok(store)
}

/// The field flags, the selector / e-mail / phone ones (`extra`) first, as Engage attributes.
fn common_flags(
    f: &ContactFieldArgs,
    extra: &[(&str, &str, &Option<String>)],
) -> anyhow::Result<Vec<FlagField>> {
    let mut pairs = extra.to_vec();
    pairs.extend([
        ("firstName", "--first-name", &f.first_name),
        ("lastName", "--last-name", &f.last_name),
        ("memberNumber", "--member-number", &f.member_number),
        ("externalId", "--external-id", &f.external_id),
        ("socialSecurityNumber", "--ssn", &f.ssn),
    ]);
    from_flags(&pairs, &f.fields)
}

#[derive(Debug, Serialize)]
struct AddOutput {
    dry_run: bool,
    added: usize,
    contacts: Vec<AddedContact>,
}

#[derive(Debug, Serialize)]
struct AddedContact {
    local_key: String,
    /// The keys, masked.
    keys: Vec<String>,
}

fn add(ctx: &Ctx, a: &ContactAddArgs) -> anyhow::Result<ExitCode> {
    let flags = common_flags(
        &a.fields,
        &[
            ("email", "--email", &a.email),
            ("mobilePhone", "--mobile", &a.mobile),
            ("contactType", "--contact-type", &a.contact_type),
        ],
    )?;
    if a.fields.from.is_none() && flags.is_empty() {
        return Err(UsageError(
            "give the contact's fields as flags (--email, --mobile, --first-name, …) or as a JSON \
             object with --from FILE (- for stdin)"
                .into(),
        )
        .into());
    }
    let mut replica = open(ctx)?;
    let till = Till {
        mode: replica.mode(),
        country: ctx.settings.default_country,
        local: &ctx.settings.local,
    };
    let added = replica.write(!a.dry_run, |tx| add_all(&till, tx, &flags, a))?;
    let output = AddOutput {
        dry_run: a.dry_run,
        added: added.len(),
        contacts: added
            .into_iter()
            .map(|c| AddedContact {
                keys: masked_keys(&c.fields),
                local_key: c.local_key,
            })
            .collect(),
    };
    print_add(ctx, &output)?;
    Ok(ExitCode::Ok)
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

/// Registers every contact of `--from` (or the one the flags describe) inside `tx`: all of
/// them, or (the first error rolls the transaction back) none.
fn add_all(
    till: &Till<'_>,
    tx: &Transaction<'_>,
    flags: &[FlagField],
    a: &ContactAddArgs,
) -> anyhow::Result<Vec<Added>> {
    let mut added = Vec::new();
    let mut batch = Batch::default();
    let source = from_name(a.fields.from.as_deref());
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
    match &a.fields.from {
        Some(path) => {
            for_each_document(Some(path), &mut each)?;
        }
        None => each(0, Value::Object(Map::new()))?,
    }
    Ok(added)
}

/// How `--from` is named in a conflict with a flag.
fn from_name(from: Option<&std::path::Path>) -> String {
    match from {
        Some(p) if p.as_os_str() != "-" => format!("--from {}", p.display()),
        _ => "--from - (stdin)".to_string(),
    }
}

fn print_add(ctx: &Ctx, out: &AddOutput) -> anyhow::Result<()> {
    if ctx.json {
        return print_json(out);
    }
    let verb = if out.dry_run {
        "would register"
    } else {
        "registered"
    };
    let mut lines: Vec<String> = out
        .contacts
        .iter()
        .take(LISTED)
        .map(|c| format!("{verb} {} ({})", c.local_key, c.keys.join(", ")))
        .collect();
    if out.contacts.len() > LISTED {
        lines.push(format!("… and {} more", out.contacts.len() - LISTED));
    }
    lines.push(if out.dry_run {
        format!(
            "contact add (dry run, nothing written): {} contact(s) valid",
            out.added
        )
    } else {
        format!(
            "contact add: {} contact(s) registered; lookup finds them now (match key localKey); \
             queued for push-local",
            out.added
        )
    });
    print_lines(lines)
}

#[derive(Debug, Serialize)]
struct UpdateOutput {
    dry_run: bool,
    #[serde(flatten)]
    updated: Updated,
}

fn update(ctx: &Ctx, a: &ContactUpdateArgs) -> anyhow::Result<ExitCode> {
    let (attribute, value) = selector(ctx, a)?;
    let mut wanted = Map::new();
    if let Some(path) = &a.fields.from {
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
    let flags = common_flags(
        &a.fields,
        &[
            ("email", "--new-email", &a.new_email),
            ("mobilePhone", "--new-mobile", &a.new_mobile),
        ],
    )?;
    add_flags(&mut wanted, &flags, &from_name(a.fields.from.as_deref()))?;
    if wanted.is_empty() {
        return Err(UsageError(
            "give at least one field to change (--new-email, --new-mobile, --first-name, --field \
             NAME=VALUE, or --from FILE)"
                .into(),
        )
        .into());
    }
    let mut replica = open(ctx)?;
    let till = Till {
        mode: replica.mode(),
        country: ctx.settings.default_country,
        local: &ctx.settings.local,
    };
    let updated = replica.write(!a.dry_run, |tx| {
        till.update_contact(tx, attribute, &value, wanted)
    })?;
    let out = UpdateOutput {
        dry_run: a.dry_run,
        updated,
    };
    if ctx.json {
        print_json(&out)?;
    } else {
        let u = &out.updated;
        let prefix = if out.dry_run {
            "contact update (dry run, nothing written)"
        } else {
            "contact update"
        };
        let line = if u.fields.is_empty() {
            format!("{prefix}: {}: nothing changed, nothing queued", u.contact)
        } else {
            format!(
                "{prefix}: {}: changed {}; {}",
                u.contact,
                u.fields.join(", "),
                u.queued
            )
        };
        print_lines([line])?;
    }
    Ok(ExitCode::Ok)
}

/// The selector as (attribute, normalised value).
fn selector(ctx: &Ctx, a: &ContactUpdateArgs) -> anyhow::Result<(&'static str, String)> {
    let (attribute, key) = match (&a.contact_id, &a.local_key, &a.email, &a.mobile) {
        (Some(v), _, _, _) => ("contactId", LookupKey::ContactId(v.clone())),
        (_, Some(v), _, _) => ("localKey", LookupKey::LocalKey(v.clone())),
        (_, _, Some(v), _) => ("email", LookupKey::Email(v.clone())),
        (_, _, _, Some(v)) => ("mobilePhone", LookupKey::Mobile(v.clone())),
        _ => {
            return Err(UsageError(
                "select the contact with --contact-id, --local-key, --email or --mobile".into(),
            )
            .into())
        }
    };
    let (_, value) = key.normalized(ctx.settings.default_country)?;
    Ok((attribute, value))
}
