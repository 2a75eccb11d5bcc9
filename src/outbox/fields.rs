//! Contact fields as given at the till (flags or a JSON object of Engage attribute names),
//! checked and normalised the way the replica stores them, so that what the POS sees, what is
//! compared for a change, and what is sent to Engage are the same values.

use serde_json::{Map, Value};

use super::input::{MAX_KEY_CHARS, MAX_STRING_CHARS};
use super::OutboxError;
use crate::error::UsageError;
use crate::mask;
use crate::normalize::{till_email, till_mobile, Country};

/// Attributes that identify a contact when Engage creates it; a new contact needs one
/// (docs/engage-api.md §2.3: the tenant key must be present).
pub const CREATE_KEYS: [&str; 4] = ["email", "mobilePhone", "externalId", "socialSecurityNumber"];

/// Names engage-sync manages itself and never takes from input.
const RESERVED: [&str; 3] = ["contactId", "id", "localKey"];

/// What the fields are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A new contact: empty and null values are left out; a create key is required.
    Create,
    /// A change: `null` or `""` clears the field in Engage, so it is kept (as `null`).
    Update,
}

/// The tenant's rules the fields are checked against.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// For national-format phone numbers.
    pub country: Country,
    /// The tenant's contact types (`[local] contact_types`).
    pub contact_types: &'a [String],
}

/// Checks and normalises `raw`: strings trimmed, e-mail lower-cased and plausible, mobile
/// phone to E.164, contact type one of the tenant's (create only: Engage changes a type only
/// with its own call). `item` names the contact in errors.
pub fn normalize(
    raw: Map<String, Value>,
    rules: &Rules<'_>,
    purpose: Purpose,
    item: &str,
) -> Result<Map<String, Value>, OutboxError> {
    let invalid = |field: &str, problem: String| OutboxError::Invalid {
        item: item.to_string(),
        field: field.to_string(),
        problem,
    };
    let mut out = Map::new();
    for (name, value) in raw {
        if name.trim().is_empty() || name.chars().any(char::is_whitespace) {
            return Err(invalid(&name, "is not an Engage attribute name".into()));
        }
        if RESERVED.contains(&name.as_str()) {
            return Err(invalid(
                &name,
                "is assigned by engage-sync or Engage and cannot be given".into(),
            ));
        }
        check_size(&name, &value).map_err(|p| invalid(&name, p))?;
        let value = match value {
            Value::String(s) => Value::String(s.trim().to_string()),
            v => v,
        };
        if is_blank(&value) {
            if purpose == Purpose::Update {
                out.insert(name, Value::Null);
            }
            continue;
        }
        let value = normalize_value(&name, value, rules, purpose).map_err(|p| invalid(&name, p))?;
        out.insert(name, value);
    }
    if purpose == Purpose::Create {
        if !CREATE_KEYS.iter().any(|k| out.contains_key(*k)) {
            return Err(invalid(
                "email/mobilePhone/externalId/socialSecurityNumber",
                "a new contact needs at least one of these keys (Engage refuses a contact \
                 without one)"
                    .into(),
            ));
        }
        let default_type = rules.contact_types[0].clone();
        out.entry("contactType")
            .or_insert(Value::String(default_type));
    }
    Ok(out)
}

/// One field's normalised value, or what is wrong with it.
fn normalize_value(
    name: &str,
    value: Value,
    rules: &Rules<'_>,
    purpose: Purpose,
) -> Result<Value, String> {
    // Nothing is coerced: a phone number or member number given as a JSON number is refused
    // (a number loses leading zeros and a leading +), as is an object or a list.
    let text = || match &value {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!(
            "must be text (a JSON string), not {}; write it in quotes",
            json_kind(other)
        )),
    };
    match name {
        "email" => {
            let t = text()?;
            till_email(&t)
                .map(Value::String)
                .map_err(|e| format!("{} {e}", mask::email(&t)))
        }
        "mobilePhone" => {
            let t = text()?;
            till_mobile(&t, rules.country)
                .map(Value::String)
                .map_err(|e| {
                    format!(
                        "{} {e} (a national number is read as one of the default country {})",
                        mask::phone(&t),
                        rules.country.iso()
                    )
                })
        }
        "contactType" if purpose == Purpose::Update => Err(
            "cannot be changed by an update (Engage changes a contact's type only with its \
             updateContactType call)"
                .into(),
        ),
        "contactType" => {
            let t = text()?;
            rules
                .contact_types
                .iter()
                .find(|c| c.eq_ignore_ascii_case(&t))
                .map(|c| Value::String(c.clone()))
                .ok_or_else(|| {
                    format!(
                        "{t:?} is not one of the tenant's contact types ({}; see [local] \
                         contact_types)",
                        rules.contact_types.join(", ")
                    )
                })
        }
        "memberNumber" | "externalId" | "socialSecurityNumber" | "firstName" | "lastName" => {
            text().map(Value::String)
        }
        _ => Ok(value),
    }
}

/// Longest accepted identifier (`memberNumber`, `externalId`, `socialSecurityNumber`,
/// `contactType`), in characters.
pub const ID_MAX_CHARS: usize = 100;
/// Longest accepted name (`firstName`, `lastName`), in characters.
pub const NAME_MAX_CHARS: usize = 256;

/// The length limits of a field, from flags or JSON alike: its name, and its text (by field:
/// identifiers, names, anything else as the JSON reader's limit). `email` is left to its own
/// check (RFC 5321 lengths, in `normalize`).
fn check_size(name: &str, value: &Value) -> Result<(), String> {
    if name.chars().count() > MAX_KEY_CHARS {
        return Err(format!(
            "the name is longer than {MAX_KEY_CHARS} characters, the limit for a field name"
        ));
    }
    let Value::String(s) = value else {
        return Ok(());
    };
    let max = match name {
        "memberNumber" | "externalId" | "socialSecurityNumber" | "contactType" => ID_MAX_CHARS,
        "firstName" | "lastName" => NAME_MAX_CHARS,
        _ => MAX_STRING_CHARS,
    };
    if s.trim().chars().count() > max {
        return Err(format!(
            "is longer than {max} characters, the limit for this field"
        ));
    }
    Ok(())
}

/// The JSON type of a value, for messages.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `null`, or text that is empty after trimming.
pub fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// The fields of `wanted` whose value differs from `current`. A clear (`null`) counts only
/// when a value is stored. `current_is_complete` is false when `current` holds only the keys
/// (keys-mode replica): any other field given then counts as changed, since its stored value
/// is unknown here.
pub fn changed(
    current: &Map<String, Value>,
    wanted: &Map<String, Value>,
    current_is_complete: bool,
) -> Map<String, Value> {
    wanted
        .iter()
        .filter(|(name, value)| {
            let known = current_is_complete || is_key_field(name);
            !known || !same(current.get(name.as_str()), value)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Whether a stored value equals a wanted (normalised) one.
fn same(current: Option<&Value>, wanted: &Value) -> bool {
    match (current, wanted) {
        (None, w) => is_blank(w),
        (Some(c), w) if is_blank(c) || is_blank(w) => is_blank(c) && is_blank(w),
        (Some(Value::String(c)), Value::String(w)) => {
            // Only e-mail addresses compare without case; everything else must match exactly.
            let c = c.trim();
            c == w || (c.contains('@') && c.eq_ignore_ascii_case(w))
        }
        (Some(Value::String(c)), Value::Number(n)) | (Some(Value::Number(n)), Value::String(c)) => {
            c.trim() == n.to_string()
        }
        (Some(c), w) => c == w,
    }
}

/// The attributes the replica keeps as columns (in keys mode, the only ones it knows).
pub fn is_key_field(name: &str) -> bool {
    matches!(
        name,
        "email"
            | "mobilePhone"
            | "externalId"
            | "socialSecurityNumber"
            | "memberNumber"
            | "contactType"
    )
}

/// Applies `changes` to `fields`: `null` removes the field, anything else sets it.
pub fn apply(fields: &mut Map<String, Value>, changes: &Map<String, Value>) {
    for (k, v) in changes {
        if v.is_null() {
            fields.remove(k);
        } else {
            fields.insert(k.clone(), v.clone());
        }
    }
}

/// Merges a later change into an earlier queued one: the later value of a field wins.
pub fn merge(earlier: &mut Map<String, Value>, later: &Map<String, Value>) {
    for (k, v) in later {
        earlier.insert(k.clone(), v.clone());
    }
}

/// A field as given on the command line: the Engage attribute, the flag that gave it
/// (`--email`, `--field email=…`) and its value.
#[derive(Debug, Clone)]
pub struct FlagField {
    /// The Engage attribute name.
    pub name: String,
    /// How it was given, for messages.
    pub flag: String,
    /// The value as given.
    pub value: String,
}

/// Reads field flags: `(attribute, flag, value)` for the named flags, then `--field
/// NAME=VALUE`. A field given twice (a flag and `--field` for the same attribute, or `--field`
/// twice, names compared without letter case) is refused as a conflict: engage-sync does not
/// pick one.
pub fn from_flags(
    pairs: &[(&str, &str, &Option<String>)],
    extra: &[String],
) -> anyhow::Result<Vec<FlagField>> {
    let mut out: Vec<FlagField> = Vec::new();
    for (name, flag, value) in pairs {
        if let Some(v) = value {
            out.push(FlagField {
                name: (*name).to_string(),
                flag: (*flag).to_string(),
                value: v.clone(),
            });
        }
    }
    for f in extra {
        let (name, value) = f.split_once('=').ok_or_else(|| {
            UsageError(format!(
                "--field {f:?}: use NAME=VALUE, e.g. --field city=Umeå"
            ))
        })?;
        let name = name.trim();
        if name.is_empty() {
            return Err(UsageError(format!("--field {f:?}: the name is empty")).into());
        }
        let field = FlagField {
            name: name.to_string(),
            flag: format!("--field {name}=…"),
            value: value.to_string(),
        };
        if let Some(earlier) = out.iter().find(|e| e.name.eq_ignore_ascii_case(name)) {
            return Err(conflict(&earlier.flag, &field.flag, name).into());
        }
        out.push(field);
    }
    Ok(out)
}

/// Adds flag fields to fields read from `source` (a JSON document), refusing a field both
/// give (names compared without letter case).
pub fn add_flags(
    fields: &mut Map<String, Value>,
    flags: &[FlagField],
    source: &str,
) -> Result<(), OutboxError> {
    for f in flags {
        if let Some(given) = fields.keys().find(|k| k.eq_ignore_ascii_case(&f.name)) {
            return Err(conflict(
                &format!("{source} (\"{given}\")"),
                &f.flag,
                &f.name,
            ));
        }
    }
    for f in flags {
        fields.insert(f.name.clone(), Value::String(f.value.clone()));
    }
    Ok(())
}

/// Two sources give the same field.
fn conflict(first: &str, second: &str, name: &str) -> OutboxError {
    OutboxError::Conflict {
        first: first.to_string(),
        second: second.to_string(),
        field: name.to_string(),
    }
}

/// A key value masked for logs and messages, by attribute.
pub fn masked(name: &str, value: &str) -> String {
    match name {
        "email" => mask::email(value),
        "mobilePhone" => mask::phone(value),
        "contactId" | "localKey" => value.to_string(),
        _ => mask::key(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::Country;
    use serde_json::json;

    fn rules(types: &[String]) -> Rules<'_> {
        Rules {
            country: Country::from_iso("SE").expect("SE"),
            contact_types: types,
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn create_fields_are_normalised_and_need_a_key() {
        let types = vec!["Member".to_string(), "Contact".to_string()];
        let f = normalize(
            obj(
                json!({"email": " Anna@Example.COM ", "mobilePhone": "070-123 45 67",
                       "firstName": " Anna ", "city": "", "contactType": "contact"}),
            ),
            &rules(&types),
            Purpose::Create,
            "contact 1",
        )
        .expect("valid");
        assert_eq!(f["email"], "anna@example.com");
        assert_eq!(f["mobilePhone"], "+46701234567");
        assert_eq!(f["firstName"], "Anna");
        assert_eq!(f["contactType"], "Contact");
        assert!(!f.contains_key("city"));
        let e = normalize(
            obj(json!({"firstName": "A"})),
            &rules(&types),
            Purpose::Create,
            "contact 2",
        )
        .expect_err("no key");
        assert!(
            e.to_string().starts_with("contact 2: email/mobilePhone"),
            "{e}"
        );
        let e = normalize(
            obj(json!({"email": "anna.example.com"})),
            &rules(&types),
            Purpose::Create,
            "contact 3",
        )
        .expect_err("bad email");
        assert!(!e.to_string().contains("anna.example"), "masked: {e}");
        for (bad, field) in [
            (json!({"mobilePhone": "call me"}), "mobilePhone"),
            (
                json!({"email": "a@b.se", "contactType": "Vip"}),
                "contactType",
            ),
        ] {
            let e = normalize(obj(bad), &rules(&types), Purpose::Create, "c").expect_err(field);
            assert!(e.to_string().contains(field), "{e}");
        }
    }

    #[test]
    fn updates_keep_clears_and_diff_only_real_changes() {
        let types = vec!["Member".to_string()];
        let wanted = normalize(
            obj(
                json!({"email": "ANNA@example.com", "mobilePhone": "0701234568",
                       "city": null, "street": "", "firstName": "Anna"}),
            ),
            &rules(&types),
            Purpose::Update,
            "c",
        )
        .expect("valid");
        assert_eq!(wanted["city"], Value::Null);
        let current = obj(
            json!({"email": "anna@example.com", "mobilePhone": "+46701234567",
                                 "street": "Storgatan 1", "firstName": "Anna"}),
        );
        let diff = changed(&current, &wanted, true);
        let names: Vec<&String> = diff.keys().collect();
        assert_eq!(names, ["mobilePhone", "street"]);
        // Keys mode: non-key fields are unknown, so they are sent.
        let diff = changed(&current, &wanted, false);
        assert!(diff.contains_key("firstName") && !diff.contains_key("email"));
    }

    /// What `normalize` says about `raw` as an update of a tenant with one contact type.
    fn update_error(raw: Value) -> String {
        let types = vec!["Member".to_string()];
        normalize(obj(raw), &rules(&types), Purpose::Update, "c")
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn names_that_cannot_be_engage_attributes_are_refused() {
        for name in ["", " ", "first name", "city\t", "\ncity"] {
            let e = update_error(json!({ name: "x" }));
            assert!(
                e.contains("is not an Engage attribute name"),
                "{name:?}: {e}"
            );
        }
        let e = update_error(json!({"contactType": "Member"}));
        assert!(e.contains("cannot be changed by an update"), "{e}");
    }

    #[test]
    fn length_limits_take_the_limit_and_refuse_one_more() {
        let types = vec!["Member".to_string()];
        let ok = |raw: Value| normalize(obj(raw), &rules(&types), Purpose::Update, "c");
        let name = "a".repeat(MAX_KEY_CHARS);
        assert!(
            ok(json!({ name.as_str(): "x" })).is_ok(),
            "a name of the limit"
        );
        let longer = "a".repeat(MAX_KEY_CHARS + 1);
        let e = update_error(json!({ longer.as_str(): "x" }));
        assert!(e.contains(&format!("longer than {MAX_KEY_CHARS}")), "{e}");
        for (field, max) in [
            ("memberNumber", ID_MAX_CHARS),
            ("externalId", ID_MAX_CHARS),
            ("socialSecurityNumber", ID_MAX_CHARS),
            ("firstName", NAME_MAX_CHARS),
            ("lastName", NAME_MAX_CHARS),
            ("city", MAX_STRING_CHARS),
        ] {
            // Surrounding spaces are trimmed before counting.
            let at = format!(" {} ", "7".repeat(max));
            let f = ok(json!({ field: at })).expect("the limit is taken");
            assert_eq!(f[field].as_str().map(str::len), Some(max), "{field}");
            let e = update_error(json!({ field: "7".repeat(max + 1) }));
            assert!(
                e.contains(&format!("longer than {max} characters")),
                "{field}: {e}"
            );
        }
    }

    #[test]
    fn a_value_of_the_wrong_json_type_is_named() {
        for (value, kind) in [
            (json!(46701234567u64), "a number"),
            (json!(true), "true/false"),
            (json!(["a@b.se"]), "a list"),
            (json!({"a": 1}), "an object"),
        ] {
            let e = update_error(json!({ "email": value }));
            assert!(
                e.contains(&format!("must be text (a JSON string), not {kind};")),
                "{e}"
            );
        }
        assert_eq!(json_kind(&Value::Null), "null");
        assert_eq!(json_kind(&json!("x")), "text");
    }

    #[test]
    fn a_change_is_only_a_change_of_value() {
        let current = obj(
            json!({"city": "", "street": " ", "points": 12, "code": "12",
                                 "vip": true, "note": null, "zip": "90325"}),
        );
        let unchanged = obj(
            json!({"city": null, "street": "", "points": "12", "code": 12,
                                   "vip": true, "note": "", "zip": "90325", "absent": null}),
        );
        assert_eq!(changed(&current, &unchanged, true), Map::new());
        let wanted = obj(
            json!({"city": "Umeå", "street": "Storgatan 1", "points": "13",
                                "code": 13, "vip": false, "note": "hej", "zip": null,
                                "absent": "x"}),
        );
        let diff = changed(&current, &wanted, true);
        assert_eq!(diff, wanted, "every field differs");
    }

    #[test]
    fn flags_and_field_pairs_build_an_object() {
        let v = Some("Anna".to_string());
        let flags =
            from_flags(&[("firstName", "--first-name", &v)], &["city=Umeå".into()]).expect("valid");
        let mut m = Map::new();
        add_flags(&mut m, &flags, "--from").expect("no conflict");
        assert_eq!(m["firstName"], "Anna");
        assert_eq!(m["city"], "Umeå");
        assert!(from_flags(&[], &["city".into()]).is_err());
    }

    #[test]
    fn a_field_given_twice_is_a_conflict() {
        let e = Some("a@example.com".to_string());
        for (pairs, extra, needles) in [
            (
                vec![("email", "--email", &e)],
                vec!["email=b@example.com".to_string()],
                ["--email", "--field email=…"],
            ),
            (
                vec![("email", "--email", &e)],
                vec!["Email=b@example.com".to_string()],
                ["--email", "--field Email=…"],
            ),
            (
                vec![],
                vec!["city=A".to_string(), " city =A".to_string()],
                ["--field city=…", "--field city=…"],
            ),
        ] {
            let err = from_flags(&pairs, &extra).expect_err("conflict");
            let text = err.to_string();
            for n in needles {
                assert!(text.contains(n), "{text}");
            }
        }
        let flags = from_flags(&[("email", "--email", &e)], &[]).expect("valid");
        let mut m = Map::new();
        m.insert("EMAIL".into(), Value::String("c@example.com".into()));
        let err = add_flags(&mut m, &flags, "--from").expect_err("conflict");
        assert!(
            err.to_string().contains("--from (\"EMAIL\") and --email"),
            "{err}"
        );
        assert_eq!(m.len(), 1, "nothing added");
    }
}
