//! What the Engage API answers, as engage-sync reads it.
//!
//! Engage adds response fields without notice and leaves several shapes unconfirmed
//! (docs/engage-api.md §2.2, §3, §4, §6 marked \[U\]), so every parser here is tolerant: it accepts
//! each plausible shape, ignores unknown fields, and keeps the raw JSON where the shape is unknown.
//! Contact ids are always lower-cased (docs/contract.md §3: GUIDs compare case-insensitively).

use serde_json::{Map, Value};

/// The change types of the bulk-read-changes feed, one per call (docs/engage-api.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeType {
    /// Contacts created in the window.
    Created,
    /// Contacts updated in the window.
    Updated,
    /// Contacts deleted in the window (tombstones).
    Deleted,
}

impl ChangeType {
    /// The exact `changeType` query value Engage expects.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Created => "Created",
            ChangeType::Updated => "Updated",
            ChangeType::Deleted => "Deleted",
        }
    }
}

impl std::fmt::Display for ChangeType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The lookup keys of `GET /contacts/id` (docs/engage-api.md §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// `email`.
    Email,
    /// `mobilePhone`, E.164 (the client sends `+` as `%2B`).
    MobilePhone,
    /// `socialSecurityNumber`.
    SocialSecurityNumber,
    /// `customKey`: memberNumber or externalId, per tenant.
    CustomKey,
    /// `any`: Engage tries email, socialSecurityNumber, mobilePhone, customKey and stops at the
    /// first attribute the value is valid for, even without a match.
    Any,
}

impl KeyType {
    /// The query parameter name.
    pub fn param(self) -> &'static str {
        match self {
            KeyType::Email => "email",
            KeyType::MobilePhone => "mobilePhone",
            KeyType::SocialSecurityNumber => "socialSecurityNumber",
            KeyType::CustomKey => "customKey",
            KeyType::Any => "any",
        }
    }
}

/// One answer of the changes feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangesPage {
    /// The ids changed in the window, lower-cased, in Engage's order.
    Ids(Vec<String>),
    /// Engage answered 400: the window holds more than 250 000 ids, so the caller must split
    /// it. Engage documents no other 400 for well-formed parameters, and the client formats
    /// them itself, so every 400 lands here; `detail` is what of Engage's answer the error
    /// report may show.
    TooMany {
        /// [`super::error::error_digest`] of the body.
        detail: String,
    },
}

/// A contact as `GET /contacts/{id}` returns it (TS-SDK `IApiContact`).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiContact {
    /// The contact id, lower-cased.
    pub id: String,
    /// `contactType`, read from the top level or from `attributes` (placement unconfirmed,
    /// docs/engage-api.md §2.2 \[U\]; the top level wins when both are present).
    pub contact_type: Option<String>,
    /// The tenant-specific attributes as sent (`contactType` stays in here if Engage put it
    /// here).
    pub attributes: Map<String, Value>,
    /// `meta` (contents unconfirmed); empty when absent.
    pub meta: Map<String, Value>,
    /// `preferences` (`acceptsEmail`, `acceptsSms`, `acceptsPostal`); empty when absent.
    pub preferences: Map<String, Value>,
    /// `consents`; empty when absent.
    pub consents: Vec<Value>,
}

impl ApiContact {
    /// Reads a contact object; `Err` says what was missing. Unknown fields are ignored.
    pub fn from_json(value: Value) -> Result<ApiContact, String> {
        let Value::Object(mut o) = value else {
            return Err("a contact must be a JSON object".into());
        };
        let id = match o.remove("id").or_else(|| o.remove("contactId")) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_ascii_lowercase(),
            _ => return Err("the contact has no \"id\"".into()),
        };
        let attributes = take_object(&mut o, "attributes");
        let top_type = o.remove("contactType");
        let contact_type = top_type
            .as_ref()
            .or_else(|| attributes.get("contactType"))
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok(ApiContact {
            id,
            contact_type,
            attributes,
            meta: take_object(&mut o, "meta"),
            preferences: take_object(&mut o, "preferences"),
            consents: match o.remove("consents") {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            },
        })
    }
}

fn take_object(o: &mut Map<String, Value>, key: &str) -> Map<String, Value> {
    match o.remove(key) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// Optional query parameters of a bulk write (docs/engage-api.md §3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkOptions {
    /// `contactType`; Engage defaults to the tenant's default type.
    pub contact_type: Option<String>,
    /// `avoidTriggeringExport=true`: suppresses the BI and XML exports (PATCH only, per Engage).
    pub avoid_triggering_export: bool,
}

/// Optional parameters of a single contact create (docs/engage-api.md §2.3): query parameters in
/// v3, headers in v2.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// `source`, e.g. "POS".
    pub source: Option<String>,
    /// `storeExternalId` of the store creating the contact.
    pub store_external_id: Option<String>,
    /// `createAsUnapproved`.
    pub create_as_unapproved: bool,
}

/// What a single contact create did.
#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    /// Engage created the contact. `contact` is `None` when Engage answered a bare id (the
    /// TS-SDK says a create whose key exists may return the existing id that way, so callers
    /// should look the key up first, as Engage's docs advise).
    Created {
        /// The (lower-cased) id.
        contact_id: String,
        /// The contact, when Engage returned one.
        contact: Option<ApiContact>,
    },
    /// Engage answered 409: a contact with that key exists (its id when Engage named it).
    /// The 409 shape is unconfirmed (docs/engage-api.md §11).
    AlreadyExists {
        /// The existing contact's id, when the answer held one.
        contact_id: Option<String>,
    },
}

/// Where a bulk batch (one `POST`/`PATCH /contacts/bulk` request) is in Engage; not to be
/// confused with a replica's bulk load (`replica::bulk::BulkState`). Engage's status shape is
/// unconfirmed (docs/engage-api.md §3 \[U\]); the words are matched case-insensitively and
/// anything unknown is kept as `Other`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchState {
    /// Still being processed: poll again later.
    Processing,
    /// Done; `results` says what happened to each row.
    Completed,
    /// The batch as a whole failed.
    Failed,
    /// A word the client does not know; callers should treat it as not finished and report it.
    Other(String),
}

impl BatchState {
    fn parse(s: &str) -> BatchState {
        let w = s.trim().to_ascii_lowercase();
        match w.as_str() {
            "processing" | "pending" | "queued" | "inprogress" | "in progress" | "running"
            | "started" | "notstarted" => BatchState::Processing,
            "completed" | "complete" | "done" | "finished" | "succeeded" | "success" => {
                BatchState::Completed
            }
            "failed" | "failure" | "error" | "aborted" => BatchState::Failed,
            _ => BatchState::Other(s.to_string()),
        }
    }
}

/// One row of a finished batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkRowResult {
    /// Position of the row in the request, when reported.
    pub index: Option<u64>,
    /// Engage's word for the row ("Created", "AlreadyExists", "Updated", "Failed", …).
    pub status: String,
    /// The contact the row created, matched or updated (lower-cased).
    pub contact_id: Option<String>,
    /// The row's key as Engage reported it.
    pub key: Option<String>,
    /// Engage's message for a failed row.
    pub message: Option<String>,
}

/// The answer of `GET /contacts/bulk/status`.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkStatus {
    /// The batch id, when the answer repeats it.
    pub batch_id: Option<String>,
    /// Where the batch is.
    pub state: BatchState,
    /// Per-row results (empty while processing, or if Engage reports none).
    pub results: Vec<BulkRowResult>,
    /// The answer as received, since its real shape is unconfirmed.
    pub raw: Value,
}

impl BulkStatus {
    /// Reads a status answer: an object with `status` (or `state`) and a `results` (or `items`,
    /// `rows`, `contacts`) array, or a bare status string.
    pub fn from_json(raw: Value) -> Result<BulkStatus, String> {
        let (batch_id, state, results) = match &raw {
            Value::String(s) => (None, BatchState::parse(s), Vec::new()),
            Value::Object(o) => {
                let state = ["status", "state", "batchStatus"]
                    .iter()
                    .find_map(|k| o.get(*k).and_then(Value::as_str))
                    .map(BatchState::parse)
                    .ok_or("the bulk status has no \"status\"")?;
                let rows = ["results", "items", "rows", "contacts"]
                    .iter()
                    .find_map(|k| o.get(*k).and_then(Value::as_array));
                let results = rows.map(|r| r.iter().map(row_result).collect());
                let batch_id = str_field(o, &["batchId", "id"]);
                (batch_id, state, results.unwrap_or_default())
            }
            _ => return Err("the bulk status is neither an object nor a string".into()),
        };
        Ok(BulkStatus {
            batch_id,
            state,
            results,
            raw,
        })
    }
}

fn row_result(v: &Value) -> BulkRowResult {
    let empty = Map::new();
    let o = v.as_object().unwrap_or(&empty);
    BulkRowResult {
        index: o.get("index").and_then(Value::as_u64),
        status: str_field(o, &["status", "state", "result"]).unwrap_or_default(),
        contact_id: str_field(o, &["contactId", "id"]).map(|s| s.to_ascii_lowercase()),
        key: str_field(o, &["key"]),
        message: str_field(o, &["message", "error", "errorMessage"]),
    }
}

fn str_field(o: &Map<String, Value>, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|k| o.get(*k).and_then(Value::as_str))
        .map(str::to_string)
}

/// What posting a receipt did. Receipts are idempotent by `uniqueReceiptId` (docs/engage-api.md
/// §6.1), so `Duplicate` is a success for the caller: the receipt is in Engage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptOutcome {
    /// Engage stored it (200/201; exact code unconfirmed).
    Created,
    /// Engage already had this `uniqueReceiptId` and ignored the post (204, or a 200/409 whose
    /// body says duplicate; exact code unconfirmed).
    Duplicate,
}

/// Reads the ids of a changes answer: a JSON array of id strings (confirmed), or an object
/// holding such an array under `ids`, `contactIds` or `items` (an unconfirmed shape accepted in
/// case Engage wraps it). Array elements may also be objects with `contactId`/`id`.
pub(crate) fn parse_change_ids(v: Value) -> Result<Vec<String>, String> {
    let arr = match v {
        Value::Array(a) => a,
        Value::Object(mut o) => {
            match ["ids", "contactIds", "items"]
                .iter()
                .find_map(|k| match o.remove(*k) {
                    Some(Value::Array(a)) => Some(a),
                    _ => None,
                }) {
                Some(a) => a,
                None => return Err("an object without an ids array".into()),
            }
        }
        _ => return Err("neither an array nor an object".into()),
    };
    arr.into_iter()
        .map(|e| match e {
            Value::String(s) => Ok(s.trim().to_ascii_lowercase()),
            Value::Object(o) => str_field(&o, &["contactId", "id"])
                .map(|s| s.trim().to_ascii_lowercase())
                .ok_or_else(|| "an element without an id".to_string()),
            _ => Err("an element that is not an id".into()),
        })
        .collect()
}

/// Reads an answer that should be a single id: a bare JSON string (confirmed for
/// `/contacts/id`; assumed for the bulk batch id), an object with one of `names`, or the id as
/// plain text. Lower-cased.
pub(crate) fn parse_single_id(body: &[u8], names: &[&str]) -> Result<String, String> {
    let id = match serde_json::from_slice::<Value>(body) {
        Ok(Value::String(s)) => s,
        Ok(Value::Object(o)) => str_field(&o, names).ok_or("an object without an id")?,
        Ok(_) => return Err("neither a string nor an object".into()),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let id = id.trim();
    if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("no usable id".into());
    }
    Ok(id.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn contact_type_is_found_in_either_place_and_ids_are_lowered() {
        let inside = json!({"id": "ABC-1", "attributes": {"contactType": "Member", "email": "x"}});
        let c = ApiContact::from_json(inside).expect("valid");
        assert_eq!(c.id, "abc-1");
        assert_eq!(c.contact_type.as_deref(), Some("Member"));
        let top = json!({"id": "abc-2", "contactType": "Contact", "attributes": {}});
        let c = ApiContact::from_json(top).expect("valid");
        assert_eq!(c.contact_type.as_deref(), Some("Contact"));
        assert!(ApiContact::from_json(json!({"attributes": {}})).is_err());
    }

    #[test]
    fn change_ids_accept_both_shapes() {
        let ids = parse_change_ids(json!(["A", "b"])).expect("array");
        assert_eq!(ids, ["a", "b"]);
        let ids = parse_change_ids(json!({"contactIds": ["C"]})).expect("object");
        assert_eq!(ids, ["c"]);
        assert!(parse_change_ids(json!({"x": 1})).is_err());
        assert!(parse_change_ids(json!(3)).is_err());
    }

    #[test]
    fn single_ids_accept_string_object_and_text() {
        assert_eq!(parse_single_id(b"\"AB\"", &["id"]).ok(), Some("ab".into()));
        assert_eq!(
            parse_single_id(br#"{"batchId":"Z"}"#, &["batchId"]).ok(),
            Some("z".into())
        );
        assert_eq!(parse_single_id(b"  q1 \n", &["id"]).ok(), Some("q1".into()));
        assert!(parse_single_id(b"", &["id"]).is_err());
    }

    #[test]
    fn bulk_status_is_tolerant() {
        let s = BulkStatus::from_json(json!({"batchId": "b", "status": "Completed",
            "results": [{"index": 0, "status": "Created", "contactId": "X"}]}))
        .expect("valid");
        assert_eq!(s.state, BatchState::Completed);
        assert_eq!(s.results[0].contact_id.as_deref(), Some("x"));
        let s = BulkStatus::from_json(json!("InProgress")).expect("valid");
        assert_eq!(s.state, BatchState::Processing);
        let s = BulkStatus::from_json(json!({"state": "Weird"})).expect("valid");
        assert_eq!(s.state, BatchState::Other("Weird".into()));
        assert!(BulkStatus::from_json(json!({"results": []})).is_err());
    }
}
