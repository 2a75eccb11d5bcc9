//! Public value types: configuration, faults and the records tests inspect.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::time::{Duration, Instant};

/// How the fake behaves. Every field where the real Engage API is unconfirmed
/// is a knob here, so engage-sync's tests can prove the client tolerates each
/// plausible answer (see README "Unconfirmed shapes").
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Port to bind on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The only key accepted in the `apikey` header.
    pub api_key: String,
    /// Put `contactType` at the top level of IApiContact instead of inside
    /// `attributes` (the real placement is unconfirmed).
    pub contact_type_top_level: bool,
    /// Print contact ids in upper case (Engage's XML examples do; its JSON
    /// examples do not), to prove the client compares ids case-insensitively.
    pub uppercase_ids: bool,
    /// Most ids one changes-feed answer may hold; more gives 400. Engage: 250 000.
    pub changes_cap: usize,
    /// Most contacts one bulk request may hold; more gives 400. Engage: 4000.
    pub bulk_max: usize,
    /// How many status polls a bulk batch answers "Processing" before "Completed".
    pub bulk_processing_polls: u32,
    /// Whether a completed batch's status lists a result row per contact (index, word,
    /// contactId). Engage's per-contact reporting is unconfirmed: `false` answers only the
    /// counts, with `"results": []`, so a client must find the contacts some other way.
    pub bulk_status_results: bool,
    /// Request rows (0-based) whose result row a completed batch's status leaves out, as an
    /// answer that names only some contacts would: the client must not take the others as
    /// done. Only with `bulk_status_results`.
    pub bulk_status_rows_left_out: Vec<usize>,
    /// Attributes that must be unique among live contacts: a create (single or
    /// bulk row) repeating one gets 409 / "AlreadyExists". Make it empty to let
    /// duplicates through, so `creates_per_key` shows a client's double create.
    pub unique_keys: Vec<String>,
    /// What `/contacts/id?customKey=` searches: `memberNumber` or `externalId`
    /// (tenant-specific in Engage).
    pub custom_key_attribute: String,
    /// Contact types the tenant has; anything else is `InvalidContactType`.
    pub contact_types: Vec<String>,
    /// Tenant-specific attributes accepted besides Engage's standard ones.
    pub extra_attributes: Vec<String>,
    /// Keep unknown attributes instead of silently dropping them (Engage drops).
    pub accept_unknown_attributes: bool,
    /// Give new Members a `memberNumber` from a sequence when none is sent, as
    /// Engage does.
    pub assign_member_numbers: bool,
    /// Status of a successful single create (unconfirmed: 200 or 201).
    pub create_contact_status: u16,
    /// Status of a newly stored receipt (unconfirmed).
    pub receipt_created_status: u16,
    /// Status of a receipt whose uniqueReceiptId is already stored (unconfirmed:
    /// 200 or 204; it is ignored either way).
    pub duplicate_receipt_status: u16,
    /// Server-side rate limit: requests beyond this many in any trailing second
    /// get 429 (Engage: 200/s). `None` = no limit, the default, so slow debug
    /// test runs never trip it by accident.
    pub rate_limit_per_sec: Option<usize>,
    /// Keep a log of every request (turn off for million-request benchmarks).
    pub record_requests: bool,
    /// Seed for generated contact ids and batch ids; `None` = from the clock.
    pub id_seed: Option<u64>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            port: 0,
            api_key: "fake-engage-test-key".into(),
            contact_type_top_level: false,
            uppercase_ids: false,
            changes_cap: 250_000,
            bulk_max: 4000,
            bulk_processing_polls: 1,
            bulk_status_results: true,
            bulk_status_rows_left_out: Vec::new(),
            unique_keys: ["email", "mobilePhone", "externalId", "socialSecurityNumber"]
                .map(String::from)
                .to_vec(),
            custom_key_attribute: "memberNumber".into(),
            contact_types: vec!["Member".into(), "Contact".into()],
            extra_attributes: Vec::new(),
            accept_unknown_attributes: false,
            assign_member_numbers: true,
            create_contact_status: 201,
            receipt_created_status: 201,
            duplicate_receipt_status: 204,
            rate_limit_per_sec: None,
            record_requests: true,
            id_seed: None,
        }
    }
}

/// Value of a `Retry-After` header on an injected 429.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: <seconds>`.
    Seconds(u64),
    /// `Retry-After: <HTTP-date>` for a fixed instant.
    Date(DateTime<Utc>),
    /// `Retry-After: <HTTP-date>` this long after the response is sent (real
    /// clock), since a test cannot know the send time in advance.
    DateIn(Duration),
}

/// What an injected fault does to the request it hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// 429 Too Many Requests, not applied.
    Status429 { retry_after: Option<RetryAfter> },
    /// Any status (500, 502, 503, 504…), not applied. 502–504 get an HTML body
    /// as a gateway would send; others Engage's JSON error body.
    Status(u16),
    /// Wait, then handle normally. The request is applied after the wait even
    /// if the client gave up meanwhile, as a slow server would.
    Delay(Duration),
    /// Read the request, close the socket, apply nothing.
    DropBeforeResponse,
    /// Apply the request (create the contact, store the receipt…), then close
    /// the socket without answering: "it reached Engage but the answer was lost".
    ApplyThenDrop,
    /// Answer this status, not applied, with a JSON error body that echoes the request
    /// (target, headers with the API key, body), as a misbehaving API or proxy might: for
    /// tests that no echoed value is stored or printed. Engage-shaped parts: `errorCode`
    /// `InvalidData`, `errors` keyed by the body's field names, `correlationId` `corr-4711`.
    EchoRequest(u16),
    /// Apply the request, send the status line and headers with the full
    /// Content-Length, then half the body, then close. An empty body is cut
    /// inside the header block instead.
    TruncatedBody,
}

/// Which requests a fault or latency applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// Every request.
    Any,
    /// Requests whose method matches (any method when `None`) and whose target
    /// (path plus query, as sent) starts with `path_prefix`, ignoring ASCII case.
    Request {
        method: Option<String>,
        path_prefix: String,
    },
}

impl Matcher {
    /// Any method, target starting with `prefix`.
    pub fn prefix(prefix: &str) -> Matcher {
        Matcher::Request {
            method: None,
            path_prefix: prefix.to_string(),
        }
    }

    /// This method, target starting with `prefix`.
    pub fn method(method: &str, prefix: &str) -> Matcher {
        Matcher::Request {
            method: Some(method.to_string()),
            path_prefix: prefix.to_string(),
        }
    }

    pub(crate) fn matches(&self, method: &str, target: &str) -> bool {
        match self {
            Matcher::Any => true,
            Matcher::Request {
                method: m,
                path_prefix,
            } => {
                m.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
                    && target.len() >= path_prefix.len()
                    && target.is_char_boundary(path_prefix.len())
                    && target[..path_prefix.len()].eq_ignore_ascii_case(path_prefix)
            }
        }
    }
}

impl From<&str> for Matcher {
    fn from(prefix: &str) -> Matcher {
        Matcher::prefix(prefix)
    }
}

/// A queued fault: hits the next `count` requests that match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub matcher: Matcher,
    pub count: usize,
    pub kind: FaultKind,
}

impl Fault {
    /// Hits the next request, whatever it is.
    pub fn new(kind: FaultKind) -> Fault {
        Fault {
            matcher: Matcher::Any,
            count: 1,
            kind,
        }
    }

    /// Hits the next request with this method and target prefix.
    pub fn on(method: &str, path_prefix: &str, kind: FaultKind) -> Fault {
        Fault {
            matcher: Matcher::method(method, path_prefix),
            count: 1,
            kind,
        }
    }

    /// Hits this many matching requests instead of one.
    pub fn times(mut self, count: usize) -> Fault {
        self.count = count;
        self
    }

    /// Replaces the matcher.
    pub fn matching(mut self, matcher: impl Into<Matcher>) -> Fault {
        self.matcher = matcher.into();
        self
    }
}

/// One HTTP request as the fake saw it.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// When the request had been read completely (monotonic, for rate checks).
    pub at: Instant,
    /// Real wall-clock time of the same moment (not the fake clock).
    pub wall: DateTime<Utc>,
    pub method: String,
    /// Path and query exactly as sent.
    pub path: String,
    /// Status answered; `None` when the socket was closed without an answer
    /// (DropBeforeResponse, ApplyThenDrop).
    pub status: Option<u16>,
    pub apikey_present: bool,
    pub user_agent: Option<String>,
    /// The injected fault that hit this request, if any.
    pub fault: Option<FaultKind>,
    pub body_len: usize,
}

/// One bulk write request that reached the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkRequestRecord {
    /// "POST" (create) or "PATCH" (update).
    pub method: String,
    pub path: String,
    /// Number of array elements in the body (0 when the body was no array).
    pub size: usize,
    /// The batch id answered; `None` when the request was rejected.
    pub batch_id: Option<String>,
    pub status: u16,
}

/// A receipt the fake stored (first POST of its uniqueReceiptId).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReceipt {
    pub unique_receipt_id: String,
    /// Lower-case id of the contact the match key resolved to.
    pub contact_id: String,
    pub body: Value,
    /// Fake-clock time of storage.
    pub received_at: DateTime<Utc>,
}

/// The three change types of Engage's changes feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeType {
    Created,
    Updated,
    Deleted,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Created => "Created",
            ChangeType::Updated => "Updated",
            ChangeType::Deleted => "Deleted",
        }
    }

    /// Case-insensitive, as ASP.NET binds enums.
    pub fn parse(s: &str) -> Option<ChangeType> {
        [
            ChangeType::Created,
            ChangeType::Updated,
            ChangeType::Deleted,
        ]
        .into_iter()
        .find(|c| c.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// One entry of the fake's change log, which feeds `/contacts/changes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    pub change_type: ChangeType,
    pub contact_id: String,
    pub at: DateTime<Utc>,
}
