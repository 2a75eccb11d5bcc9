//! `engage-sync contact add` and `contact update`: contacts registered or changed at the till,
//! offline (docs/contract.md §2, §6). The work is in [`crate::outbox::register`]; this module
//! maps the flags and prints.
//!
//! These run at checkout, so they never take the writer lock (a sync may hold it for minutes):
//! each run is one short IMMEDIATE SQLite transaction, which the busy timeout serialises with
//! whatever else writes.

use super::{print_json, print_lines, Ctx};
use crate::cli::{ContactAddArgs, ContactCommand, ContactFieldArgs, ContactUpdateArgs};
use crate::error::{ExitCode, UsageError};
use crate::outbox::fields::{from_flags, FlagField};
use crate::outbox::register::{self, add_contacts, update_contact, wanted_changes};
use crate::replica::LookupKey;
use crate::till_store::TillStore;

/// Runs `contact add` or `contact update`.
pub fn run(ctx: &Ctx, cmd: &ContactCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ContactCommand::Add(a) => add(ctx, a),
        ContactCommand::Update(a) => update(ctx, a),
    }
}

/// Opens the till store for a till write ([`register::open_store`]).
pub(super) fn open(ctx: &Ctx) -> anyhow::Result<TillStore> {
    let s = &ctx.settings;
    register::open_store(&s.db, s.busy_timeout, s.mode)
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
    let mut store = open(ctx)?;
    let s = &ctx.settings;
    let from = a.fields.from.as_deref();
    let report = add_contacts(
        &mut store,
        s.default_country,
        &s.local,
        a.dry_run,
        &flags,
        from,
    )?;
    if ctx.json {
        print_json(&report)?;
    } else {
        print_lines(report.human_lines())?;
    }
    Ok(ExitCode::Ok)
}

fn update(ctx: &Ctx, a: &ContactUpdateArgs) -> anyhow::Result<ExitCode> {
    let (attribute, value) = selector(ctx, a)?;
    let from = a.fields.from.as_deref();
    let wanted = wanted_changes(from, || {
        common_flags(
            &a.fields,
            &[
                ("email", "--new-email", &a.new_email),
                ("mobilePhone", "--new-mobile", &a.new_mobile),
            ],
        )
    })?;
    let mut store = open(ctx)?;
    let s = &ctx.settings;
    let selector = (attribute, value.as_str());
    let report = update_contact(
        &mut store,
        s.default_country,
        &s.local,
        a.dry_run,
        selector,
        wanted,
    )?;
    if ctx.json {
        print_json(&report)?;
    } else {
        print_lines([report.human_line()])?;
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
