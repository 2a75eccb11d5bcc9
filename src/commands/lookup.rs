//! `engage-sync lookup`: find a contact by one key and print the key to tag a purchase with.

use serde::Serialize;

use super::{print_json, print_lines, Ctx};
use crate::cli::LookupArgs;
use crate::error::{ExitCode, UsageError};
use crate::mask;
use crate::replica::{ContactView, LookupKey, Replica};

/// What a POS should put in the receipt's `contact` (docs/engage-api.md §6.1).
#[derive(Debug, Serialize)]
struct Match<'a> {
    /// `contactId` when Engage knows the contact; `localKey` for a contact registered at the
    /// till and not yet pushed (buffer the receipt with it; `push-local` resolves it).
    match_key_type: &'static str,
    match_key: &'a str,
    contact: &'a ContactView,
}

#[derive(Debug, Serialize)]
struct LookupOutput<'a> {
    found: bool,
    /// The best match: most recently written.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    best: Option<Match<'a>>,
    /// How many contacts matched (more than one: Engage would answer 409 MultipleMatches).
    matches: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    other_matches: Vec<Match<'a>>,
}

/// Looks the key up; exit 0 when found, 1 when not.
pub fn run(ctx: &Ctx, args: &LookupArgs) -> anyhow::Result<ExitCode> {
    let key = lookup_key(args)?;
    let (column, value) = key.normalized(ctx.settings.default_country)?;
    let replica = Replica::open_for_lookup(&ctx.settings.db, ctx.settings.busy_timeout)?;
    let contacts = replica.lookup(column, &value)?;
    let mut matches = contacts.iter().filter_map(to_match);
    let best = matches.next();
    let output = LookupOutput {
        found: best.is_some(),
        best,
        matches: contacts.len(),
        other_matches: matches.collect(),
    };
    if ctx.json {
        print_json(&output)?;
    } else if let Some(best) = &output.best {
        print_human(best, &output.other_matches)?;
    } else {
        tracing::info!("no contact matches {column} {}", masked(column, &value));
    }
    Ok(if output.found {
        ExitCode::Ok
    } else {
        ExitCode::NotFound
    })
}

fn lookup_key(a: &LookupArgs) -> Result<LookupKey, UsageError> {
    let pick = [
        a.mobile.clone().map(LookupKey::Mobile),
        a.email.clone().map(LookupKey::Email),
        a.member_number.clone().map(LookupKey::MemberNumber),
        a.contact_id.clone().map(LookupKey::ContactId),
        a.external_id.clone().map(LookupKey::ExternalId),
        a.ssn.clone().map(LookupKey::Ssn),
        a.local_key.clone().map(LookupKey::LocalKey),
    ];
    pick.into_iter()
        .flatten()
        .next()
        .ok_or_else(|| UsageError("give one key to look up, e.g. --mobile or --email".into()))
}

fn to_match(c: &ContactView) -> Option<Match<'_>> {
    let (match_key_type, match_key) = match (&c.contact_id, &c.local_key) {
        (Some(id), _) => ("contactId", id.as_str()),
        (None, Some(local)) => ("localKey", local.as_str()),
        (None, None) => return None,
    };
    Some(Match {
        match_key_type,
        match_key,
        contact: c,
    })
}

fn print_human(best: &Match<'_>, others: &[Match<'_>]) -> anyhow::Result<()> {
    let c = best.contact;
    let mut lines = vec![format!(
        "match key:      {} {}",
        best.match_key_type, best.match_key
    )];
    let fields = [
        ("contact id", &c.contact_id),
        ("local key", &c.local_key),
        ("contact type", &c.contact_type),
        ("member number", &c.member_number),
        ("first name", &c.first_name),
        ("last name", &c.last_name),
        ("email", &c.email),
        ("mobile phone", &c.mobile_phone),
        ("external id", &c.external_id),
        ("ssn", &c.social_security_number),
    ];
    for (label, value) in fields {
        if let Some(v) = value {
            lines.push(format!("{:<15} {v}", format!("{label}:")));
        }
    }
    lines.push(format!("{:<15} {}", "updated at:", c.updated_at));
    if !others.is_empty() {
        lines.push(format!(
            "note: {} more contact(s) match this key (Engage would answer MultipleMatches); \
             tag with the match key above or ask the customer for another key",
            others.len()
        ));
        for m in others {
            lines.push(format!("  also: {} {}", m.match_key_type, m.match_key));
        }
    }
    print_lines(lines)
}

fn masked(column: &str, value: &str) -> String {
    match column {
        "email" => mask::email(value),
        "mobile_phone" => mask::phone(value),
        "contact_id" | "local_key" => value.to_string(),
        _ => mask::key(value),
    }
}
