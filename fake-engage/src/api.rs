//! Engage's endpoints: header checks, routing, validation and the JSON shapes.
//! Every shape the real API leaves unconfirmed is marked `[U]` here and listed
//! in README.md.

use crate::state::{Request, Response, Shared};
use crate::store::{Batch, BulkRow, ContactView, Meta, Store};
use crate::types::{BulkRequestRecord, ChangeType, FakeConfig, StoredReceipt};
use crate::util::{
    format_guid, iso_millis, millis_to_dt, parse_feed_datetime, parse_guid, parse_offset_datetime,
    query_get, valid_e164, valid_email, valid_ssn, value_as_key, KeyAttr,
};
use serde_json::{json, Map, Value};

const JSON: &str = "application/json; charset=utf-8";

/// Engage's standard contact fields (DEV contact-field-definitions) that a
/// create or update may set. Computed, read-only fields (age, rfm, …) are not
/// here, so they are ignored like any unknown field.
pub(crate) const STANDARD_ATTRIBUTES: [&str; 21] = [
    "contactType",
    "firstName",
    "lastName",
    "memberNumber",
    "socialSecurityNumber",
    "email",
    "mobilePhone",
    "externalId",
    "createdInStore",
    "store",
    "street",
    "zipCode",
    "city",
    "careOf",
    "country",
    "countryCode",
    "birthDay",
    "gender",
    "acceptsEmail",
    "acceptsSms",
    "acceptsPostal",
];

/// Flat attributes that are shown under `preferences` instead of `attributes`.
const PREFERENCES: [&str; 3] = ["acceptsEmail", "acceptsSms", "acceptsPostal"];

/// The keys one of which a new contact must carry.
const CREATE_KEYS: [KeyAttr; 4] = [
    KeyAttr::Email,
    KeyAttr::MobilePhone,
    KeyAttr::ExternalId,
    KeyAttr::SocialSecurityNumber,
];

fn json_resp(status: u16, v: &Value) -> Response {
    Response {
        status,
        content_type: JSON,
        headers: Vec::new(),
        body: v.to_string().into_bytes(),
    }
}

fn empty(status: u16) -> Response {
    Response {
        status,
        content_type: JSON,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// Error body `{"errorCode": …, "message": …}` [U: Engage's error schema is
/// unconfirmed; `errorCode` names come from the find-contact docs].
fn error(status: u16, code: &str, message: &str) -> Response {
    json_resp(status, &json!({ "errorCode": code, "message": message }))
}

fn message(status: u16, message: &str) -> Response {
    json_resp(status, &json!({ "message": message }))
}

fn not_found(req: &Request) -> Response {
    message(
        404,
        &format!(
            "No HTTP resource was found that matches the request URI '{}'.",
            req.target
        ),
    )
}

fn contact_not_found() -> Response {
    error(404, "ContactNotFound", "Contact not found.")
}

fn parse_body(req: &Request) -> Result<Value, Response> {
    let body = req.body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&req.body);
    serde_json::from_slice(body).map_err(|e| {
        error(
            400,
            "InvalidRequest",
            &format!("The request body is not valid JSON: {e}"),
        )
    })
}

/// Entry point for every request that no fault replaced.
pub(crate) fn handle(shared: &Shared, req: &Request) -> Response {
    let cfg = &shared.cfg;
    // Header rules (DEV api-authentication). 401's body [U].
    if req.header("apikey") != Some(cfg.api_key.as_str()) {
        return message(401, "Authorization has been denied for this request.");
    }
    if req.header("user-agent").is_none_or(|v| v.trim().is_empty()) {
        // [U] status and body; Engage only says the header is mandatory.
        return message(
            400,
            "A User-Agent header naming the calling system is required.",
        );
    }
    let ct_ok = req.header("content-type").is_some_and(|v| {
        v.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    });
    if !ct_ok {
        // Confirmed: Engage answers a missing Content-Type with 500.
        return message(500, "An error has occurred.");
    }

    let segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    if segs.len() < 3 || !segs[0].eq_ignore_ascii_case("api") {
        return not_found(req);
    }
    let version = match segs[1].to_ascii_lowercase().as_str() {
        "v2" => 2,
        "v3" => 3,
        _ => return not_found(req),
    };
    let lower: Vec<String> = segs[2..].iter().map(|s| s.to_ascii_lowercase()).collect();
    let r: Vec<&str> = lower.iter().map(String::as_str).collect();
    let raw = &segs[2..];
    match (req.method.as_str(), r.as_slice()) {
        ("GET", ["contacts", "count"]) if version == 2 => count(shared, None),
        ("GET", ["contacts", "id"]) => find_id(shared, req),
        ("GET", ["contacts", "changes"]) => changes(shared, req),
        ("POST", ["contacts", "bulk"]) => bulk_create(shared, req),
        ("PATCH", ["contacts", "bulk"]) => bulk_update(shared, req),
        ("GET", ["contacts", "bulk", "status"]) => bulk_status(shared, req),
        ("POST", ["contacts"]) => create(shared, req, version),
        ("GET", ["contacts", _, "count"]) if version == 2 => count(shared, Some(raw[1])),
        ("GET", ["contacts", id]) => with_guid(req, id, |g| get(shared, g)),
        ("PATCH", ["contacts", id]) if version == 3 => {
            with_guid(req, id, |g| update(shared, req, g))
        }
        ("POST", ["contacts", id]) if version == 2 => {
            with_guid(req, id, |g| update(shared, req, g))
        }
        ("DELETE", ["contacts", id]) => with_guid(req, id, |g| delete(shared, g)),
        ("POST", ["contacts", id, "updatecontacttype"]) => {
            with_guid(req, id, |g| update_contact_type(shared, req, g))
        }
        ("POST", ["receipts"]) => receipt(shared, req),
        _ => not_found(req),
    }
}

/// A `{contactId}` segment that is no GUID does not match the route at all
/// (ASP.NET route constraint), hence the generic 404.
fn with_guid(req: &Request, id: &str, f: impl FnOnce(u128) -> Response) -> Response {
    match parse_guid(id) {
        Some(g) => f(g),
        None => not_found(req),
    }
}

fn canonical_type(cfg: &FakeConfig, t: &str) -> Option<String> {
    cfg.contact_types
        .iter()
        .find(|c| c.eq_ignore_ascii_case(t.trim()))
        .cloned()
}

// ---- rendering ---------------------------------------------------------------

/// IApiContact. [U] `contactType` sits in `attributes` unless
/// `contact_type_top_level`; `meta` holds what the fake knows (createdOn,
/// modifiedOn, source, storeExternalId, isApproved).
pub(crate) fn render_contact(cfg: &FakeConfig, v: &ContactView) -> Value {
    let mut attrs = v.attrs.clone();
    let mut prefs = Map::new();
    for p in PREFERENCES {
        let b = attrs.remove(p).and_then(|x| x.as_bool()).unwrap_or(false);
        prefs.insert(p.to_string(), Value::Bool(b));
    }
    let top_type = if cfg.contact_type_top_level {
        attrs.remove("contactType")
    } else {
        None
    };
    let mut o = json!({
        "id": format_guid(v.id, cfg.uppercase_ids),
        "attributes": attrs,
        "meta": {
            "createdOn": iso_millis(millis_to_dt(v.created)),
            "modifiedOn": iso_millis(millis_to_dt(v.modified)),
            "source": v.meta.source,
            "storeExternalId": v.meta.store_external_id,
            "isApproved": !v.meta.unapproved,
        },
        "preferences": prefs,
        "consents": [],
    });
    if let Some(t) = top_type {
        o["contactType"] = t;
    }
    o
}

fn contact_resp(shared: &Shared, st: &Store, slot: u32, status: u16) -> Response {
    json_resp(status, &render_contact(&shared.cfg, &st.view(slot)))
}

fn id_string(cfg: &FakeConfig, g: u128) -> String {
    format_guid(g, cfg.uppercase_ids)
}

// ---- contact rules -------------------------------------------------------------

/// Why a create or update was refused.
pub(crate) enum WriteError {
    /// 400 with this errorCode and message.
    Invalid(&'static str, String),
    /// A unique key belongs to this live contact.
    Exists(u128),
    NotFound,
}

impl WriteError {
    fn response(&self, cfg: &FakeConfig) -> Response {
        match self {
            WriteError::Invalid(code, msg) => error(400, code, msg),
            // [U] duplicate create: 409 with the existing id.
            WriteError::Exists(id) => json_resp(
                409,
                &json!({
                    "errorCode": "ContactAlreadyExists",
                    "message": "A contact with the same key already exists.",
                    "contactId": id_string(cfg, *id),
                }),
            ),
            WriteError::NotFound => contact_not_found(),
        }
    }

    fn row_message(&self) -> String {
        match self {
            WriteError::Invalid(code, msg) => format!("{code}: {msg}"),
            WriteError::Exists(_) => "ContactAlreadyExists".into(),
            WriteError::NotFound => "ContactNotFound".into(),
        }
    }
}

/// Drops what Engage would silently ignore: unknown and read-only fields, ids.
fn filter_attributes(cfg: &FakeConfig, input: &Map<String, Value>) -> Map<String, Value> {
    input
        .iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            if k == "id" || k == "contactId" {
                return false;
            }
            cfg.accept_unknown_attributes
                || STANDARD_ATTRIBUTES.contains(&k)
                || cfg.extra_attributes.iter().any(|e| e == k)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// (attribute, format check, errorCode when the check fails).
type KeyCheck = (&'static str, fn(&str) -> bool, &'static str);

/// Format checks on key fields. Blank values pass (they clear the field).
fn validate_keys(attrs: &Map<String, Value>) -> Result<(), WriteError> {
    let checks: [KeyCheck; 3] = [
        ("email", valid_email, "InvalidEmailAddress"),
        ("mobilePhone", valid_e164, "InvalidPhoneNumber"),
        (
            "socialSecurityNumber",
            valid_ssn,
            "InvalidSocialSecurityNumber",
        ),
    ];
    for (name, ok, code) in checks {
        if let Some(v) = attrs.get(name) {
            if is_blank(v) {
                continue;
            }
            if !v.as_str().is_some_and(ok) {
                return Err(WriteError::Invalid(
                    code,
                    format!("The value of '{name}' is not valid: {v}"),
                ));
            }
        }
    }
    Ok(())
}

fn unique_attrs(cfg: &FakeConfig) -> Vec<KeyAttr> {
    cfg.unique_keys
        .iter()
        .filter_map(|k| KeyAttr::from_name(k))
        .collect()
}

/// A live contact other than `except` holding one of the unique keys in `attrs`.
fn conflicting(
    cfg: &FakeConfig,
    st: &Store,
    attrs: &Map<String, Value>,
    except: Option<u32>,
) -> Option<u128> {
    for k in unique_attrs(cfg) {
        if let Some(v) = attrs.get(k.name()).and_then(value_as_key) {
            if let Some(s) = st.find(k, &v).into_iter().find(|s| Some(*s) != except) {
                return Some(st.id_of(s));
            }
        }
    }
    None
}

/// Single create and bulk-create row: Engage's rules, then insert.
pub(crate) fn create_contact(
    cfg: &FakeConfig,
    st: &mut Store,
    input: &Map<String, Value>,
    default_type: &str,
    meta: Meta,
) -> Result<u128, WriteError> {
    let mut attrs = filter_attributes(cfg, input);
    attrs.retain(|_, v| !is_blank(v));
    let ty_raw = attrs
        .get("contactType")
        .and_then(Value::as_str)
        .unwrap_or(default_type)
        .to_string();
    let ty = canonical_type(cfg, &ty_raw).ok_or_else(|| {
        WriteError::Invalid(
            "InvalidContactType",
            format!("Unknown contact type '{ty_raw}'."),
        )
    })?;
    attrs.insert("contactType".into(), Value::String(ty.clone()));
    validate_keys(&attrs)?;
    if !CREATE_KEYS
        .iter()
        .any(|k| attrs.get(k.name()).and_then(value_as_key).is_some())
    {
        return Err(WriteError::Invalid(
            "MissingContactKey",
            "A contact key (email, mobilePhone, externalId or socialSecurityNumber) is required."
                .into(),
        ));
    }
    if let Some(existing) = conflicting(cfg, st, &attrs, None) {
        return Err(WriteError::Exists(existing));
    }
    if ty == "Member" && cfg.assign_member_numbers && !attrs.contains_key("memberNumber") {
        let n = st.next_member_number();
        attrs.insert("memberNumber".into(), Value::String(n));
    }
    if let Some(store) = &meta.store_external_id {
        attrs
            .entry("createdInStore")
            .or_insert_with(|| Value::String(store.clone()));
    }
    let t = st.now().timestamp_millis();
    st.count_create(&attrs);
    Ok(st.insert(attrs, t, Some(meta)))
}

/// Single update and bulk-update row. `""`/`null` overwrite, unknown fields
/// are ignored, `contactType` is ignored (v3: only `updateContactType`
/// changes it), and `createdInStore` cannot change once set.
pub(crate) fn update_contact(
    cfg: &FakeConfig,
    st: &mut Store,
    id: u128,
    input: &Map<String, Value>,
) -> Result<u32, WriteError> {
    let slot = st.live_slot(id).ok_or(WriteError::NotFound)?;
    let mut patch = filter_attributes(cfg, input);
    patch.remove("contactType");
    if st
        .attr(slot, "createdInStore")
        .is_some_and(|v| !is_blank(&v))
    {
        patch.remove("createdInStore");
    }
    validate_keys(&patch)?;
    if let Some(other) = conflicting(cfg, st, &patch, Some(slot)) {
        return Err(WriteError::Exists(other));
    }
    if !patch.is_empty() {
        let t = st.now().timestamp_millis();
        st.patch(slot, &patch, t);
    }
    Ok(slot)
}

fn bool_param(v: Option<&str>, name: &str) -> Result<bool, Response> {
    match v.map(str::trim) {
        None | Some("") => Ok(false),
        Some(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(s) => Err(error(
            400,
            "InvalidRequest",
            &format!("The value '{s}' is not valid for {name}."),
        )),
    }
}

// ---- endpoints ------------------------------------------------------------------

fn count(shared: &Shared, contact_type: Option<&str>) -> Response {
    let st = shared.store();
    let n = match contact_type {
        None => st.live_count(),
        Some(t) => match canonical_type(&shared.cfg, t) {
            Some(t) => st.count_of_type(&t),
            None => return error(400, "InvalidContactType", "Unknown contact type."),
        },
    };
    json_resp(200, &json!(n))
}

fn find_id(shared: &Shared, req: &Request) -> Response {
    let cfg = &shared.cfg;
    let names = [
        "email",
        "mobilePhone",
        "socialSecurityNumber",
        "customKey",
        "any",
    ];
    let given: Vec<(&str, &str)> = names
        .iter()
        .filter_map(|n| query_get(&req.query, n).map(|v| (*n, v)))
        .filter(|(_, v)| !v.trim().is_empty())
        .collect();
    if given.len() != 1 {
        return error(
            400,
            "InvalidSearchQuery",
            "Give exactly one of email, mobilePhone, socialSecurityNumber, customKey or any.",
        );
    }
    let contact_type = match query_get(&req.query, "contactType").filter(|t| !t.trim().is_empty()) {
        None => None,
        Some(t) => match canonical_type(cfg, t) {
            Some(t) => Some(t),
            None => return error(400, "InvalidContactType", "Unknown contact type."),
        },
    };
    let custom = KeyAttr::from_name(&cfg.custom_key_attribute).unwrap_or(KeyAttr::MemberNumber);
    let (name, value) = given[0];
    let value = value.trim();
    // `any`: email → socialSecurityNumber → mobilePhone → customKey, stopping
    // at the first attribute the value is valid for (MINT find-contact).
    let name = if name == "any" {
        if valid_email(value) {
            "email"
        } else if valid_ssn(value) {
            "socialSecurityNumber"
        } else if valid_e164(value) {
            "mobilePhone"
        } else {
            "customKey"
        }
    } else {
        name
    };
    let attr = match name {
        "email" if !valid_email(value) => {
            return error(400, "InvalidEmailAddress", "Invalid email address.")
        }
        "email" => KeyAttr::Email,
        "mobilePhone" if !valid_e164(value) => {
            return error(400, "InvalidPhoneNumber", "Invalid phone number.")
        }
        "mobilePhone" => KeyAttr::MobilePhone,
        "socialSecurityNumber" if !valid_ssn(value) => {
            return error(
                400,
                "InvalidSocialSecurityNumber",
                "Invalid social security number.",
            )
        }
        "socialSecurityNumber" => KeyAttr::SocialSecurityNumber,
        _ => custom,
    };
    let st = shared.store();
    let hits: Vec<u32> = st
        .find(attr, value)
        .into_iter()
        .filter(|s| {
            contact_type.as_ref().is_none_or(|t| {
                st.attr(*s, "contactType")
                    .and_then(|v| v.as_str().map(|x| x.eq_ignore_ascii_case(t)))
                    .unwrap_or(false)
            })
        })
        .collect();
    match hits.as_slice() {
        [] => contact_not_found(),
        [one] => json_resp(200, &json!(id_string(cfg, st.id_of(*one)))),
        _ => error(409, "MultipleMatches", "More than one contact matches."),
    }
}

fn get(shared: &Shared, id: u128) -> Response {
    let st = shared.store();
    match st.live_slot(id) {
        Some(slot) => contact_resp(shared, &st, slot, 200),
        None => contact_not_found(),
    }
}

fn create(shared: &Shared, req: &Request, version: u8) -> Response {
    let cfg = &shared.cfg;
    // v3 takes these in the query and ignores headers; v2 took headers.
    let param = |name: &str| -> Option<String> {
        if version == 3 {
            query_get(&req.query, name).map(str::to_string)
        } else {
            req.header(&name.to_ascii_lowercase()).map(str::to_string)
        }
        .filter(|s| !s.trim().is_empty())
    };
    let unapproved = match bool_param(param("createAsUnapproved").as_deref(), "createAsUnapproved")
    {
        Ok(b) => b,
        Err(r) => return r,
    };
    let body = match parse_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(obj) = body.as_object() else {
        return error(400, "InvalidRequest", "The contact must be a JSON object.");
    };
    let meta = Meta {
        source: param("source"),
        store_external_id: param("storeExternalId"),
        unapproved,
    };
    let mut st = shared.store();
    match create_contact(cfg, &mut st, obj, "Member", meta) {
        Ok(id) => match st.live_slot(id) {
            Some(slot) => contact_resp(shared, &st, slot, cfg.create_contact_status),
            None => message(500, "An error has occurred."),
        },
        Err(e) => e.response(cfg),
    }
}

fn update(shared: &Shared, req: &Request, id: u128) -> Response {
    let cfg = &shared.cfg;
    let body = match parse_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(obj) = body.as_object() else {
        return error(400, "InvalidRequest", "The update must be a JSON object.");
    };
    let mut st = shared.store();
    match update_contact(cfg, &mut st, id, obj) {
        Ok(slot) => contact_resp(shared, &st, slot, 200),
        Err(e) => e.response(cfg),
    }
}

fn delete(shared: &Shared, id: u128) -> Response {
    let mut st = shared.store();
    match st.live_slot(id) {
        Some(slot) => {
            let t = st.now().timestamp_millis();
            st.delete(slot, t);
            // [U] delete status.
            empty(204)
        }
        None => contact_not_found(),
    }
}

fn update_contact_type(shared: &Shared, req: &Request, id: u128) -> Response {
    let cfg = &shared.cfg;
    let Some(t) = query_get(&req.query, "contactTypeId").and_then(|t| canonical_type(cfg, t))
    else {
        return error(
            400,
            "InvalidContactType",
            "Unknown or missing contactTypeId.",
        );
    };
    let mut st = shared.store();
    let Some(slot) = st.live_slot(id) else {
        return contact_not_found();
    };
    let mut patch = Map::new();
    patch.insert("contactType".into(), Value::String(t));
    let now = st.now().timestamp_millis();
    st.patch(slot, &patch, now);
    contact_resp(shared, &st, slot, 200)
}

fn changes(shared: &Shared, req: &Request) -> Response {
    let Some(kind) = query_get(&req.query, "changeType").and_then(ChangeType::parse) else {
        return message(
            400,
            "The changeType parameter is required and must be Created, Updated or Deleted.",
        );
    };
    let from = match query_get(&req.query, "fromDate") {
        None => return message(400, "The fromDate parameter is required."),
        Some(s) => match parse_feed_datetime(s) {
            Some(t) => t,
            None => return message(400, &format!("The value '{s}' is not valid for fromDate.")),
        },
    };
    let mut st = shared.store();
    let to = match query_get(&req.query, "toDate").filter(|s| !s.trim().is_empty()) {
        None => st.now(),
        Some(s) => match parse_feed_datetime(s) {
            Some(t) => t,
            None => return message(400, &format!("The value '{s}' is not valid for toDate.")),
        },
    };
    let ids = st.changes_between(kind, from.timestamp_millis(), to.timestamp_millis());
    if ids.len() > st.changes_cap {
        // [U] message text; the 400 itself is confirmed.
        return message(
            400,
            &format!(
                "Too many changes: {} contacts changed in the interval, the maximum is {}. Use a smaller interval.",
                ids.len(),
                st.changes_cap
            ),
        );
    }
    let cfg = &shared.cfg;
    let arr: Vec<Value> = ids
        .into_iter()
        .map(|g| Value::String(id_string(cfg, g)))
        .collect();
    json_resp(200, &Value::Array(arr))
}

/// The key a bulk row is reported under: its first create key.
fn row_key(o: &Map<String, Value>) -> Option<String> {
    CREATE_KEYS
        .iter()
        .find_map(|k| o.get(k.name()).and_then(value_as_key))
}

/// Common part of bulk create and update: body checks, rows, batch, record.
fn bulk(
    shared: &Shared,
    req: &Request,
    row: impl Fn(&FakeConfig, &mut Store, &Value) -> BulkRow,
) -> Response {
    let cfg = &shared.cfg;
    let rec = |st: &mut Store, size: usize, batch: Option<String>, status: u16| {
        st.bulk_requests.push(BulkRequestRecord {
            method: req.method.clone(),
            path: req.target.clone(),
            size,
            batch_id: batch,
            status,
        });
    };
    let body = match parse_body(req) {
        Ok(b) => b,
        Err(r) => {
            rec(&mut shared.store(), 0, None, r.status);
            return r;
        }
    };
    let Some(rows) = body.as_array() else {
        rec(&mut shared.store(), 0, None, 400);
        return message(400, "The request body must be a JSON array of contacts.");
    };
    if rows.is_empty() || rows.len() > cfg.bulk_max {
        rec(&mut shared.store(), rows.len(), None, 400);
        return message(
            400,
            &format!(
                "A bulk request must hold between 1 and {} contacts; this one holds {}.",
                cfg.bulk_max,
                rows.len()
            ),
        );
    }
    let mut st = shared.store();
    let results: Vec<BulkRow> = rows.iter().map(|r| row(cfg, &mut st, r)).collect();
    let batch = st.rng.next_guid();
    let polls = st.bulk_processing_polls;
    let reports_failed = st.bulk_batches_to_fail > 0;
    st.bulk_batches_to_fail = st.bulk_batches_to_fail.saturating_sub(1);
    st.batches.insert(
        batch,
        Batch {
            polls_left: polls,
            rows: results,
            reports_failed,
        },
    );
    let batch_id = id_string(cfg, batch);
    rec(&mut st, rows.len(), Some(batch_id.clone()), 200);
    // [C?] the answer is a bare JSON string holding the batch id.
    json_resp(200, &json!(batch_id))
}

fn failed(key: Option<String>, msg: String) -> BulkRow {
    BulkRow {
        status: "Failed",
        contact_id: None,
        key,
        message: Some(msg),
    }
}

fn bulk_create(shared: &Shared, req: &Request) -> Response {
    let default_type = match query_get(&req.query, "contactType").filter(|s| !s.trim().is_empty()) {
        None => "Member".to_string(),
        Some(t) => match canonical_type(&shared.cfg, t) {
            Some(t) => t,
            None => return error(400, "InvalidContactType", "Unknown contact type."),
        },
    };
    bulk(shared, req, |cfg, st, row| {
        let Some(o) = row.as_object() else {
            return failed(
                None,
                "InvalidRequest: a contact must be a JSON object".into(),
            );
        };
        let key = row_key(o);
        match create_contact(cfg, st, o, &default_type, Meta::default()) {
            Ok(id) => BulkRow {
                status: "Created",
                contact_id: Some(id),
                key,
                message: None,
            },
            Err(WriteError::Exists(id)) => BulkRow {
                status: "AlreadyExists",
                contact_id: Some(id),
                key,
                message: None,
            },
            Err(e) => failed(key, e.row_message()),
        }
    })
}

fn bulk_update(shared: &Shared, req: &Request) -> Response {
    bulk(shared, req, |cfg, st, row| {
        let Some(o) = row.as_object() else {
            return failed(
                None,
                "InvalidRequest: a contact must be a JSON object".into(),
            );
        };
        // [U] the element key: `contactId`, also `id`.
        let raw = o
            .get("contactId")
            .or_else(|| o.get("id"))
            .and_then(Value::as_str);
        let key = raw.map(str::to_string);
        let Some(id) = raw.and_then(parse_guid) else {
            return failed(
                key,
                "InvalidRequest: contactId missing or not a GUID".into(),
            );
        };
        match update_contact(cfg, st, id, o) {
            Ok(_) => BulkRow {
                status: "Updated",
                contact_id: Some(id),
                key,
                message: None,
            },
            Err(e) => failed(key, e.row_message()),
        }
    })
}

/// [U] The status shape is ours: see README.
fn bulk_status(shared: &Shared, req: &Request) -> Response {
    let cfg = &shared.cfg;
    let Some(raw) = query_get(&req.query, "batchId").filter(|s| !s.trim().is_empty()) else {
        return message(400, "The batchId parameter is required.");
    };
    let mut st = shared.store();
    let Some(batch) = parse_guid(raw).and_then(|g| st.batches.get_mut(&g)) else {
        return error(404, "BatchNotFound", "No bulk batch with that id.");
    };
    let total = batch.rows.len();
    if batch.polls_left > 0 {
        batch.polls_left -= 1;
        return json_resp(
            200,
            &json!({
                "batchId": raw.trim(),
                "status": "Processing",
                "total": total,
                "succeeded": 0,
                "failed": 0,
                "results": [],
            }),
        );
    }
    if batch.reports_failed {
        return json_resp(
            200,
            &json!({
                "batchId": raw.trim(),
                "status": "Failed",
                "total": total,
                "succeeded": 0,
                "failed": total,
                "results": [],
            }),
        );
    }
    let failed = batch.rows.iter().filter(|r| r.status == "Failed").count();
    let shown = if cfg.bulk_status_results {
        batch.rows.as_slice()
    } else {
        &[]
    };
    let results: Vec<Value> = shown
        .iter()
        .enumerate()
        .filter(|(i, _)| !cfg.bulk_status_rows_left_out.contains(i))
        .map(|(i, r)| {
            json!({
                "index": i,
                "status": r.status,
                "contactId": r.contact_id.map(|g| id_string(cfg, g)),
                "key": r.key,
                "message": r.message,
            })
        })
        .collect();
    json_resp(
        200,
        &json!({
            "batchId": raw.trim(),
            "status": "Completed",
            "total": total,
            "succeeded": total - failed,
            "failed": failed,
            "results": results,
        }),
    )
}

// ---- receipts ------------------------------------------------------------------

fn field<'a>(o: &'a Map<String, Value>, path: &str, name: &str) -> Result<&'a Value, String> {
    match o.get(name) {
        None | Some(Value::Null) => Err(format!("The field '{path}{name}' is required.")),
        Some(v) => Ok(v),
    }
}

fn req_str(o: &Map<String, Value>, path: &str, name: &str) -> Result<String, String> {
    match field(o, path, name)? {
        Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(format!(
            "The field '{path}{name}' must be a non-empty string."
        )),
    }
}

fn req_num(o: &Map<String, Value>, path: &str, name: &str) -> Result<f64, String> {
    match field(o, path, name)? {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| format!("The field '{path}{name}' must be a number.")),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("The field '{path}{name}' must be a number.")),
        _ => Err(format!("The field '{path}{name}' must be a number.")),
    }
}

fn req_array<'a>(o: &'a Map<String, Value>, name: &str) -> Result<&'a Vec<Value>, String> {
    match field(o, "", name)? {
        Value::Array(a) if !a.is_empty() => Ok(a),
        _ => Err(format!("The field '{name}' must be a non-empty array.")),
    }
}

/// Checks the receipt's required fields; the error names the first bad one.
/// Returns (matchKey, matchKeyType).
fn validate_receipt(o: &Map<String, Value>) -> Result<(String, String), String> {
    let contact = match field(o, "", "contact")? {
        Value::Object(c) => c,
        _ => return Err("The field 'contact' must be an object.".into()),
    };
    let key = req_str(contact, "contact.", "matchKey")?;
    let key_type = req_str(contact, "contact.", "matchKeyType")?;
    req_str(o, "", "uniqueReceiptId")?;
    let created = req_str(o, "", "createdDate")?;
    if !parse_offset_datetime(&created) {
        return Err(
            "The field 'createdDate' must be an ISO 8601 date-time with an offset, e.g. 2018-09-06T15:55:54+01:00."
                .into(),
        );
    }
    req_str(o, "", "storeExternalId")?;
    let currency = req_str(o, "", "currency")?;
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err("The field 'currency' must be an ISO 4217 code.".into());
    }
    req_num(o, "", "totalGrossPrice")?;
    for (i, p) in req_array(o, "paymentMethods")?.iter().enumerate() {
        let path = format!("paymentMethods[{i}].");
        let p = p
            .as_object()
            .ok_or_else(|| format!("The field 'paymentMethods[{i}]' must be an object."))?;
        req_str(p, &path, "type")?;
        req_num(p, &path, "value")?;
    }
    for (i, it) in req_array(o, "items")?.iter().enumerate() {
        let path = format!("items[{i}].");
        let it = it
            .as_object()
            .ok_or_else(|| format!("The field 'items[{i}]' must be an object."))?;
        let ty = req_str(it, &path, "type")?;
        if !["PURCHASE", "RETURN", "ADJUSTMENT"]
            .iter()
            .any(|t| t.eq_ignore_ascii_case(&ty))
        {
            return Err(format!(
                "The field '{path}type' must be PURCHASE, RETURN or ADJUSTMENT."
            ));
        }
        req_str(it, &path, "sku")?;
        req_num(it, &path, "quantity")?;
        req_num(it, &path, "grossPaidPrice")?;
        req_num(it, &path, "taxAmount")?;
        req_num(it, &path, "taxPercent")?;
        req_str(it, &path, "articleNumber")?;
        req_str(it, &path, "articleName")?;
    }
    Ok((key, key_type))
}

fn receipt(shared: &Shared, req: &Request) -> Response {
    let cfg = &shared.cfg;
    let body = match parse_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(o) = body.as_object() else {
        return error(400, "InvalidReceipt", "The receipt must be a JSON object.");
    };
    let unique = o.get("uniqueReceiptId").and_then(value_as_key);
    let mut st = shared.store();
    if let Some(u) = &unique {
        st.count_receipt_post(u, req.arrived);
    }
    let (key, key_type) = match validate_receipt(o) {
        Ok(k) => k,
        Err(msg) => return error(400, "InvalidReceipt", &msg),
    };
    let Some(unique) = unique else {
        return error(
            400,
            "InvalidReceipt",
            "The field 'uniqueReceiptId' is required.",
        );
    };
    if st.has_receipt(&unique) {
        // Confirmed: a duplicate is ignored. [U] its status.
        let s = cfg.duplicate_receipt_status;
        return if s == 204 {
            empty(204)
        } else {
            json_resp(
                s,
                &json!({ "message": "Duplicate receipt ignored.", "uniqueReceiptId": unique }),
            )
        };
    }
    // [U] matchKeyType case sensitivity: accepted in any case.
    let slots: Vec<u32> = if key_type.eq_ignore_ascii_case("contactId") {
        parse_guid(&key)
            .and_then(|g| st.live_slot(g))
            .into_iter()
            .collect()
    } else {
        match KeyAttr::from_name(&key_type) {
            Some(k) => st.find(k, &key),
            None => {
                return error(
                    400,
                    "InvalidReceipt",
                    &format!("The matchKeyType '{key_type}' is not supported."),
                )
            }
        }
    };
    let slot = match slots.as_slice() {
        // [U] unknown contact: 404 ContactNotFound.
        [] => return contact_not_found(),
        [one] => *one,
        _ => return error(409, "MultipleMatches", "More than one contact matches."),
    };
    let contact_id = format_guid(st.id_of(slot), false);
    let now = st.now();
    st.store_receipt(StoredReceipt {
        unique_receipt_id: unique.clone(),
        contact_id: contact_id.clone(),
        body: body.clone(),
        received_at: now,
    });
    // [U] success status and body.
    json_resp(
        cfg.receipt_created_status,
        &json!({ "uniqueReceiptId": unique, "contactId": id_string(cfg, st.id_of(slot)) }),
    )
}
