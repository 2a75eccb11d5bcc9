//! Receipts as `receipt add` takes them: Engage's receipt JSON (docs/engage-api.md §6.1), checked
//! for the fields Engage requires, with the contact named by a key or given as data.
//!
//! `createdDate` must carry its UTC offset and is kept exactly as given: Engage wants the
//! store's local time, so it is never converted. The body is stored as given (plus
//! `storeExternalId` from `[local] store_external_id` when missing); only `contact` is replaced
//! at push time by the best match key.

use chrono::DateTime;
use serde_json::{Map, Value};

use super::fields::{json_kind as kind, masked};
use super::OutboxError;
use crate::normalize::{normalize_contact_id, normalize_plain, phone_key, till_email, Country};

/// The match key types engage-sync resolves itself, as Engage's docs spell them, plus
/// `localKey` (a contact registered at the till). Input may use any case or the SDK's
/// PascalCase.
const KEY_TYPES: [&str; 7] = [
    "contactId",
    "localKey",
    "email",
    "mobilePhone",
    "memberNumber",
    "externalId",
    "socialSecurityNumber",
];

/// Further types Engage's SDK lists; passed through unchanged, since only Engage can resolve
/// them.
const PASS_THROUGH_TYPES: [&str; 2] = ["CardId", "MemberNumberWithCardNumberAsFallback"];

/// How a receipt names its customer.
#[derive(Debug, Clone, PartialEq)]
pub enum ContactRef {
    /// `matchKeyType`/`matchKey`, normalised (`contactId` lower-case, phone E.164, …).
    Key {
        /// Canonical key type (see `KEY_TYPES` and `PASS_THROUGH_TYPES`).
        key_type: String,
        /// The value.
        value: String,
    },
    /// Contact attributes for a customer who signed up at the till (not yet validated as a
    /// contact: the caller does that with the tenant's rules).
    Data(Map<String, Value>),
}

/// A receipt that passed the checks.
#[derive(Debug, Clone)]
pub struct ValidReceipt {
    /// Engage's idempotency key.
    pub unique_receipt_id: String,
    /// The body as it will be stored.
    pub body: Value,
    /// Its customer.
    pub contact: ContactRef,
}

/// Checks a receipt. `position` (1-based) names it in errors when it has no id yet;
/// `store_default` fills a missing `storeExternalId`.
pub fn validate(
    value: Value,
    position: usize,
    store_default: Option<&str>,
    country: Country,
) -> Result<ValidReceipt, OutboxError> {
    let Value::Object(mut o) = value else {
        return Err(invalid(
            &format!("receipt #{position}"),
            "(document)",
            "must be a JSON object",
        ));
    };
    let position_item = format!("receipt #{position}");
    let unique = text(&o, "uniqueReceiptId", &position_item, ID_MAX_CHARS)?.ok_or_else(|| {
        invalid(
            &position_item,
            "uniqueReceiptId",
            "is required: the till's unique id of the purchase (Engage ignores a second \
             receipt with the same id)",
        )
    })?;
    let item = format!("receipt {unique}");
    if !o.contains_key("storeExternalId") {
        if let Some(store) = store_default {
            o.insert("storeExternalId".into(), Value::String(store.to_string()));
        }
    }
    check_fields(&o, &item)?;
    let contact = contact_ref(o.get("contact"), &item, country)?;
    Ok(ValidReceipt {
        unique_receipt_id: unique,
        body: Value::Object(o),
        contact,
    })
}

fn invalid(item: &str, field: &str, problem: &str) -> OutboxError {
    OutboxError::Invalid {
        item: item.to_string(),
        field: field.to_string(),
        problem: problem.to_string(),
    }
}

/// The required fields of docs/engage-api.md §6.1, besides `contact` and `uniqueReceiptId`, each
/// of its JSON type: text is a string, an amount a number; nothing is coerced (a string
/// `"200"` where a number belongs is refused, as is a number where text belongs).
fn check_fields(o: &Map<String, Value>, item: &str) -> Result<(), OutboxError> {
    let created = text(o, "createdDate", item, ID_MAX_CHARS)?
        .ok_or_else(|| invalid(item, "createdDate", "is required"))?;
    if !has_offset(&created) {
        return Err(invalid(
            item,
            "createdDate",
            &format!(
                "{created:?} must be ISO 8601 local time with its UTC offset, e.g. \
                 2018-09-06T15:55:54+01:00 (kept as given, never converted)"
            ),
        ));
    }
    text(o, "storeExternalId", item, ID_MAX_CHARS)?.ok_or_else(|| {
        invalid(
            item,
            "storeExternalId",
            "is required (or set [local] store_external_id in the config)",
        )
    })?;
    text(o, "receiptNumber", item, ID_MAX_CHARS)?;
    let currency = text(o, "currency", item, ID_MAX_CHARS)?.unwrap_or_default();
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(invalid(
            item,
            "currency",
            "must be an ISO 4217 code such as SEK",
        ));
    }
    required_number(
        o,
        "totalGrossPrice",
        item,
        "must be a number (negative for a return)",
    )?;
    optional_number(o, "exchangeRateToGroupCurrency", item)?;
    for (i, p) in objects(o, "paymentMethods", item)?.iter().enumerate() {
        let path = format!("paymentMethods[{i}].");
        text(p, "type", item, ID_MAX_CHARS)
            .map_err(|e| prefixed(e, &path))?
            .ok_or_else(|| invalid(item, &format!("{path}type"), "is required"))?;
        required_number(p, "value", item, "must be a number").map_err(|e| prefixed(e, &path))?;
    }
    for (i, it) in objects(o, "items", item)?.iter().enumerate() {
        check_item(it, &format!("items[{i}]."), item)?;
    }
    Ok(())
}

fn check_item(it: &Map<String, Value>, path: &str, item: &str) -> Result<(), OutboxError> {
    let at = |e| prefixed(e, path);
    let ty = text(it, "type", item, ID_MAX_CHARS)
        .map_err(at)?
        .unwrap_or_default();
    if !["PURCHASE", "RETURN", "ADJUSTMENT"]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(&ty))
    {
        return Err(invalid(
            item,
            &format!("{path}type"),
            "must be PURCHASE, RETURN or ADJUSTMENT",
        ));
    }
    for (name, max) in [
        ("sku", ID_MAX_CHARS),
        ("articleNumber", ID_MAX_CHARS),
        ("articleName", NAME_MAX_CHARS),
    ] {
        text(it, name, item, max)
            .map_err(at)?
            .ok_or_else(|| invalid(item, &format!("{path}{name}"), "is required"))?;
    }
    for name in ["quantity", "grossPaidPrice", "taxAmount", "taxPercent"] {
        required_number(it, name, item, "must be a number").map_err(at)?;
    }
    for name in ["packQuantity", "marginPercent"] {
        optional_number(it, name, item).map_err(at)?;
    }
    Ok(())
}

/// Longest accepted identifier (`uniqueReceiptId`, `receiptNumber`, `storeExternalId`, a
/// match key, `sku`, `articleNumber`, …), in characters.
pub const ID_MAX_CHARS: usize = 100;
/// Longest accepted name (`articleName`), in characters.
pub const NAME_MAX_CHARS: usize = 256;

/// `e` with its field prefixed by `path` (`items[2].`).
fn prefixed(e: OutboxError, path: &str) -> OutboxError {
    match e {
        OutboxError::Invalid {
            item,
            field,
            problem,
        } => OutboxError::Invalid {
            item,
            field: format!("{path}{field}"),
            problem,
        },
        other => other,
    }
}

/// A text field: `None` when missing, `null` or blank; refused when it is not a JSON string
/// or longer than `max` characters.
fn text(
    o: &Map<String, Value>,
    name: &str,
    item: &str,
    max: usize,
) -> Result<Option<String>, OutboxError> {
    match o.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.chars().count() > max {
                return Err(invalid(
                    item,
                    name,
                    &format!("is longer than {max} characters, the limit for this field"),
                ));
            }
            Ok(Some(s.to_string()))
        }
        Some(other) => Err(invalid(
            item,
            name,
            &format!(
                "must be text (a JSON string), not {}; write it in quotes",
                kind(other)
            ),
        )),
    }
}

/// A required amount: a JSON number, never text holding one.
fn required_number(
    o: &Map<String, Value>,
    name: &str,
    item: &str,
    missing: &str,
) -> Result<f64, OutboxError> {
    optional_number(o, name, item)?.ok_or_else(|| invalid(item, name, missing))
}

/// An amount if given: a JSON number (`"200"`, text, is refused rather than converted).
fn optional_number(
    o: &Map<String, Value>,
    name: &str,
    item: &str,
) -> Result<Option<f64>, OutboxError> {
    match o.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(other) => Err(invalid(
            item,
            name,
            &format!(
                "must be a number (a JSON number such as 200.0), not {}",
                kind(other)
            ),
        )),
    }
}

/// A non-empty array of objects.
fn objects<'a>(
    o: &'a Map<String, Value>,
    name: &str,
    item: &str,
) -> Result<Vec<&'a Map<String, Value>>, OutboxError> {
    let arr = match o.get(name) {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => return Err(invalid(item, name, "must be a non-empty array")),
    };
    arr.iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_object()
                .ok_or_else(|| invalid(item, &format!("{name}[{i}]"), "must be an object"))
        })
        .collect()
}

/// ISO 8601 date-time with an explicit offset (`Z` counts: a till in UTC).
fn has_offset(s: &str) -> bool {
    DateTime::parse_from_rfc3339(s).is_ok()
        || DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z").is_ok()
        || DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M%z").is_ok()
}

/// The receipt's customer: a match key, or contact data.
fn contact_ref(
    contact: Option<&Value>,
    item: &str,
    country: Country,
) -> Result<ContactRef, OutboxError> {
    let Some(Value::Object(c)) = contact else {
        return Err(invalid(
            item,
            "contact",
            "is required: {\"matchKeyType\": \"contactId\", \"matchKey\": \"…\"}, or the \
             customer's contact data",
        ));
    };
    match (c.get("matchKeyType"), c.get("matchKey")) {
        (None, None) => Ok(ContactRef::Data(c.clone())),
        (Some(t), Some(v)) => {
            let Value::String(t) = t else {
                return Err(invalid(
                    item,
                    "contact.matchKeyType",
                    &format!("must be text (a JSON string), not {}", kind(t)),
                ));
            };
            let t = t.trim();
            let key_type = canonical_key_type(t).ok_or_else(|| {
                invalid(
                    item,
                    "contact.matchKeyType",
                    &format!(
                        "{t:?} is not a key type: use one of {}",
                        KEY_TYPES.join(", ")
                    ),
                )
            })?;
            let raw = match v {
                Value::String(s) if s.chars().count() > ID_MAX_CHARS => {
                    return Err(invalid(
                        item,
                        "contact.matchKey",
                        &format!("is longer than {ID_MAX_CHARS} characters, the limit for a key"),
                    ))
                }
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => {
                    return Err(invalid(
                        item,
                        "contact.matchKey",
                        &format!(
                            "must be text (a JSON string), not {}; write it in quotes",
                            kind(other)
                        ),
                    ))
                }
            };
            let value = normalize_key(&key_type, &raw, country).map_err(|problem| {
                invalid(
                    item,
                    "contact.matchKey",
                    &format!("{} {problem}", masked(&key_type, &raw)),
                )
            })?;
            Ok(ContactRef::Key { key_type, value })
        }
        _ => Err(invalid(
            item,
            "contact",
            "give both matchKeyType and matchKey, or neither (contact data)",
        )),
    }
}

/// The canonical spelling of a key type, matched without case.
pub fn canonical_key_type(t: &str) -> Option<String> {
    KEY_TYPES
        .iter()
        .chain(PASS_THROUGH_TYPES.iter())
        .find(|k| k.eq_ignore_ascii_case(t))
        .map(|k| (*k).to_string())
}

/// A match key normalised as the replica stores it (the same functions as import and
/// lookup), or what is wrong with it. An e-mail address must also be one (a match key that
/// cannot be an address would never find anyone).
pub fn normalize_key(key_type: &str, raw: &str, country: Country) -> Result<String, String> {
    match key_type {
        "contactId" => normalize_contact_id(raw).ok_or_else(|| {
            "is not a contact id (expected a GUID of 8-4-4-4-12 hex digits)".to_string()
        }),
        "email" => till_email(raw).map_err(|e| e.to_string()),
        "mobilePhone" => phone_key(raw, country).map_err(|e| e.to_string()),
        _ => normalize_plain(raw).ok_or_else(|| "is empty".to_string()),
    }
}

/// The body to post: `contact` replaced by the match key chosen at push time. The contact
/// type given at the till travels along, except with `contactId` (Engage does not need it).
pub fn body_with_key(stored: &Value, key_type: &str, key: &str) -> Value {
    let mut body = stored.clone();
    if let Value::Object(o) = &mut body {
        let contact_type = o
            .get("contact")
            .and_then(|c| c.get("contactType"))
            .cloned()
            .filter(|_| key_type != "contactId");
        let mut contact = Map::new();
        contact.insert("matchKeyType".into(), Value::String(key_type.into()));
        contact.insert("matchKey".into(), Value::String(key.into()));
        if let Some(t) = contact_type {
            contact.insert("contactType".into(), t);
        }
        o.insert("contact".into(), Value::Object(contact));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::Country;
    use serde_json::json;

    fn se() -> Country {
        Country::from_iso("SE").expect("SE")
    }

    fn receipt() -> Value {
        json!({
            "contact": {"matchKey": "070-123 45 67", "matchKeyType": "MobilePhone"},
            "uniqueReceiptId": "R1", "receiptNumber": "1",
            "createdDate": "2018-09-06T15:55:54+01:00", "currency": "SEK",
            "totalGrossPrice": 200.0,
            "paymentMethods": [{"type": "Card", "value": 200.0}],
            "items": [{"type": "PURCHASE", "quantity": 2, "grossPaidPrice": 200.0,
                       "taxAmount": 40.0, "taxPercent": 25.0, "sku": "1",
                       "articleNumber": "2", "articleName": "Socks"}]
        })
    }

    #[test]
    fn a_valid_receipt_keeps_its_date_and_gets_the_store() {
        let r = validate(receipt(), 1, Some("0600"), se()).expect("valid");
        assert_eq!(r.unique_receipt_id, "R1");
        assert_eq!(r.body["createdDate"], "2018-09-06T15:55:54+01:00");
        assert_eq!(r.body["storeExternalId"], "0600");
        assert_eq!(
            r.contact,
            ContactRef::Key {
                key_type: "mobilePhone".into(),
                value: "+46701234567".into()
            }
        );
    }

    /// Each written form of a local time with its offset is accepted on its own (`Z` for a
    /// till in UTC, an offset without a colon, minutes without seconds); without an offset
    /// the date is refused.
    #[test]
    fn created_dates_are_accepted_in_each_form_with_an_offset() {
        for date in [
            "2018-09-06T15:55:54Z",
            "2018-09-06T15:55:54.250+01:00",
            "2018-09-06T15:55:54+0100",
            "2018-09-06T15:55+01:00",
        ] {
            let mut r = receipt();
            r["createdDate"] = json!(date);
            let valid = validate(r, 1, Some("1"), se()).expect(date);
            assert_eq!(valid.body["createdDate"], date, "kept as given");
        }
        for date in ["2018-09-06T15:55:54", "2018-09-06", "15:55:54+01:00"] {
            let mut r = receipt();
            r["createdDate"] = json!(date);
            validate(r, 1, Some("1"), se()).expect_err(date);
        }
    }

    /// A match key of exactly the limit is taken; one character more is refused.
    #[test]
    fn a_match_key_may_be_as_long_as_the_limit() {
        let key = |n: usize| {
            let mut r = receipt();
            r["contact"] = json!({"matchKeyType": "externalId", "matchKey": "k".repeat(n)});
            validate(r, 1, Some("1"), se())
        };
        assert!(key(ID_MAX_CHARS).is_ok());
        let e = key(ID_MAX_CHARS + 1).expect_err("too long");
        assert!(e.to_string().contains("contact.matchKey"), "{e}");
    }

    /// The posted body carries the key chosen at push time; the contact type given at the
    /// till goes along with every key but the contact id.
    #[test]
    fn the_posted_body_names_the_chosen_key_and_keeps_the_contact_type_unless_by_id() {
        let mut stored = receipt();
        stored["contact"] = json!({"email": "a@example.com", "contactType": "Member"});
        let by_email = body_with_key(&stored, "email", "a@example.com");
        assert_eq!(
            by_email["contact"],
            json!({"matchKeyType": "email", "matchKey": "a@example.com", "contactType": "Member"})
        );
        let by_id = body_with_key(&stored, "contactId", "c1");
        assert_eq!(
            by_id["contact"],
            json!({"matchKeyType": "contactId", "matchKey": "c1"})
        );
        assert_eq!(by_id["uniqueReceiptId"], "R1");
    }

    #[test]
    fn errors_name_the_receipt_and_the_field() {
        let mut r = receipt();
        r["createdDate"] = json!("2018-09-06T15:55:54");
        let e = validate(r, 1, Some("1"), se()).expect_err("no offset");
        assert!(e.to_string().starts_with("receipt R1: createdDate:"), "{e}");
        let mut r = receipt();
        r["items"][0].as_object_mut().expect("object").remove("sku");
        let e = validate(r, 1, Some("1"), se()).expect_err("no sku");
        assert!(e.to_string().contains("items[0].sku"), "{e}");
        let e = validate(receipt(), 1, None, se()).expect_err("no store");
        assert!(e.to_string().contains("storeExternalId"), "{e}");
        let mut r = receipt();
        r.as_object_mut().expect("object").remove("uniqueReceiptId");
        let e = validate(r, 3, Some("1"), se()).expect_err("no id");
        assert!(
            e.to_string().starts_with("receipt #3: uniqueReceiptId"),
            "{e}"
        );
    }

    #[test]
    fn wrong_json_types_are_refused_not_coerced() {
        let cases: [(&str, Value, &str); 8] = [
            (
                "/totalGrossPrice",
                json!("200"),
                "totalGrossPrice: must be a number",
            ),
            (
                "/uniqueReceiptId",
                json!(12345),
                "uniqueReceiptId: must be text",
            ),
            ("/receiptNumber", json!(321), "receiptNumber: must be text"),
            (
                "/items/0/quantity",
                json!("2"),
                "items[0].quantity: must be a number",
            ),
            (
                "/items/0/sku",
                json!(10015563434_u64),
                "items[0].sku: must be text",
            ),
            (
                "/paymentMethods/0/value",
                json!("200.0"),
                "paymentMethods[0].value",
            ),
            (
                "/contact/matchKey",
                json!(46701234567_u64),
                "contact.matchKey: must be text",
            ),
            (
                "/items/0/marginPercent",
                json!("10"),
                "items[0].marginPercent",
            ),
        ];
        for (pointer, value, needle) in cases {
            let mut r = receipt();
            r["items"][0]["marginPercent"] = json!(10.0);
            *r.pointer_mut(pointer).expect(pointer) = value;
            let e = validate(r, 1, Some("1"), se()).expect_err(pointer);
            assert!(e.to_string().contains(needle), "{pointer}: {e}");
        }
    }

    #[test]
    fn identifiers_and_names_are_bounded() {
        let mut r = receipt();
        r["uniqueReceiptId"] = json!("R".repeat(ID_MAX_CHARS + 1));
        let e = validate(r, 4, Some("1"), se()).expect_err("long id");
        assert!(
            e.to_string()
                .starts_with("receipt #4: uniqueReceiptId: is longer than 100 characters"),
            "{e}"
        );
        let mut r = receipt();
        r["items"][0]["articleName"] = json!("n".repeat(NAME_MAX_CHARS + 1));
        let e = validate(r, 1, Some("1"), se()).expect_err("long name");
        assert!(e.to_string().contains("items[0].articleName"), "{e}");
        let mut r = receipt();
        r["items"][0]["articleName"] = json!("n".repeat(NAME_MAX_CHARS));
        validate(r, 1, Some("1"), se()).expect("at the limit");
    }

    #[test]
    fn contact_data_and_key_body() {
        let mut r = receipt();
        r["contact"] = json!({"email": "a@example.com", "firstName": "A"});
        let v = validate(r, 1, Some("1"), se()).expect("valid");
        assert!(matches!(v.contact, ContactRef::Data(_)));
        let body = body_with_key(&v.body, "contactId", "abc");
        assert_eq!(
            body["contact"],
            json!({"matchKeyType": "contactId", "matchKey": "abc"})
        );
    }
}
