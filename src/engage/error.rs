//! The Engage client's typed errors and their exit codes (docs/contract.md §8).
//!
//! Invariants: no message contains the API key; every message names the request by method and
//! path with personal data in the path and query masked ([`RequestName`]); a response body is
//! never quoted, only its digest ([`error_digest`]: error code, field names, correlation id),
//! since Engage may echo the data it rejected and a proxy may echo the request's headers.

use crate::error::{Coded, ExitCode};
use crate::mask::{self, scrub};

/// How much of a response body an error quotes.
pub const BODY_LIMIT: usize = 500;

/// A request as logs and errors name it: method and path, query values that hold personal data
/// masked (`GET /api/v3/contacts/id?email=a***@example.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestName {
    /// `GET`, `POST`, `PATCH` or `DELETE`.
    pub method: &'static str,
    /// Path and masked query.
    pub path: String,
}

impl std::fmt::Display for RequestName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// Query parameters known to carry no personal data (window bounds, change and contact types,
/// flags, batch ids): shown as they are.
const PLAIN_QUERY_PARAMS: &[&str] = &[
    "changeType",
    "fromDate",
    "toDate",
    "contactType",
    "avoidTriggeringExport",
    "batchId",
];

/// Masks the value of a query parameter unless it is known to hold no personal data: a
/// parameter added later is masked until it is listed in [`PLAIN_QUERY_PARAMS`].
pub(crate) fn mask_query_value(name: &str, value: &str) -> String {
    match name {
        "email" => mask::email(value),
        "mobilePhone" => mask::phone(value),
        n if PLAIN_QUERY_PARAMS.contains(&n) => value.to_string(),
        _ => mask::key(value),
    }
}

/// Masks a path for logs and errors: a segment that is not a plain word or a GUID (it holds
/// `@`, `%`, `+`, or a run of six digits: a key put in the path) is masked as a key.
pub(crate) fn mask_path(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            let digits = seg.chars().filter(char::is_ascii_digit).count();
            let odd = seg.contains(['@', '%', '+']) || (digits >= 6 && !is_guid(seg));
            if odd {
                mask::key(seg)
            } else {
                seg.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Everything that can go wrong talking to Engage.
#[derive(Debug, thiserror::Error)]
pub enum EngageError {
    /// Base URL, key or limits are wrong or missing (78).
    #[error("{0}")]
    Config(String),
    /// The HTTP client could not be set up (runtime or TLS initialisation) (74).
    #[error("cannot set up the Engage HTTP client: {0}")]
    Setup(String),
    /// Engage refused the key (401/403) (77).
    #[error(
        "Engage refused the API key (HTTP {status} on {request}): check ENGAGE_API_KEY / \
         api_key_file, and that this machine's IP address is on the key's allow-list \
         (Engage Config Hub → API connections)"
    )]
    Auth {
        /// The request refused.
        request: RequestName,
        /// 401 or 403.
        status: u16,
    },
    /// Engage rejected the request for good (a 4xx other than 401/403/408/429). Exit 65 when
    /// it rejected our data (400/404/409/422), else 69.
    #[error("{request} was rejected by Engage with HTTP {status}: {detail}")]
    Permanent {
        /// The request rejected.
        request: RequestName,
        /// The HTTP status.
        status: u16,
        /// What of the body may be shown ([`error_digest`]).
        detail: String,
    },
    /// More than one contact matches the key (409 MultipleMatches) (65).
    #[error("{request}: more than one Engage contact matches this key (HTTP 409 MultipleMatches)")]
    MultipleMatches {
        /// The lookup or receipt post.
        request: RequestName,
    },
    /// The contact a receipt (or update) names does not exist (404 ContactNotFound) (65).
    #[error("{request}: Engage has no such contact (HTTP 404 ContactNotFound)")]
    ContactNotFound {
        /// The request.
        request: RequestName,
    },
    /// Engage kept answering 429 until the retries ran out (75).
    #[error("{request}: Engage is rate limiting this key (HTTP 429) and still was after {attempts} attempts; try again later")]
    RateLimited {
        /// The request.
        request: RequestName,
        /// Attempts made.
        attempts: u32,
    },
    /// 5xx, timeouts or broken connections until the retries ran out (75).
    #[error("{request} failed {attempts} times, last: {last}; try again later")]
    Transient {
        /// The request.
        request: RequestName,
        /// Attempts made.
        attempts: u32,
        /// The last failure (status and body start, or the transport error).
        last: String,
    },
    /// No attempt could even connect (69).
    #[error("cannot connect to Engage for {request} ({attempts} attempts): {cause}; check ENGAGE_BASE_URL, DNS and the network")]
    Unavailable {
        /// The request.
        request: RequestName,
        /// Attempts made.
        attempts: u32,
        /// The last connect error.
        cause: String,
    },
    /// A request that must not be repeated blindly (creates, bulk writes, receipts) may have
    /// reached Engage, but no answer came back (75). The caller must check before repeating
    /// (docs/engage-api.md §7): look the contact up by key; re-post a receipt with the same
    /// `uniqueReceiptId`, which Engage ignores as a duplicate.
    #[error("{request} may or may not have reached Engage ({cause}); not repeated blindly: check Engage before sending it again")]
    OutcomeUnknown {
        /// The request.
        request: RequestName,
        /// What happened after sending.
        cause: String,
    },
    /// The run's deadline came before the request could finish (75).
    #[error("the run's deadline passed during {request}; the rest is left for the next run")]
    Deadline {
        /// The request cut short.
        request: RequestName,
    },
    /// Engage answered a success with a body of an unknown shape (69: retrying will not help,
    /// and nothing in our data is wrong).
    #[error("{request}: Engage answered HTTP {status} with a body engage-sync cannot read ({detail}): {body}")]
    UnexpectedResponse {
        /// The request.
        request: RequestName,
        /// The HTTP status.
        status: u16,
        /// What did not fit.
        detail: String,
        /// What of the body may be shown ([`error_digest`]).
        body: String,
    },
    /// A bulk write must hold 1 to 4000 contacts (65).
    #[error("a bulk write must hold 1 to {max} contacts; this one holds {len}: split it")]
    BulkSize {
        /// Contacts given.
        len: usize,
        /// Engage's maximum.
        max: usize,
    },
    /// The changes feed still answered "too many" for the smallest window the client splits to
    /// (69: the API cannot serve it; use the XML export or a full download).
    #[error(
        "the Engage changes feed ({change_type}) still refuses the window {from} .. {to} \
         (HTTP 400: {detail}); more than Engage's 250 000-id cap changed in it, or the feed is \
         not activated for this tenant: ask Voyado, or use the contact-export XML"
    )]
    ChangesWindowTooSmall {
        /// Created, Updated or Deleted.
        change_type: String,
        /// Window start (UTC, as sent).
        from: String,
        /// Window end (UTC, as sent).
        to: String,
        /// What of Engage's answer may be shown ([`error_digest`]).
        detail: String,
    },
}

impl EngageError {
    /// Errors after which no further request of this run can succeed, so bulk fetches stop:
    /// the deadline passed, the key is refused, Engage cannot be reached, bad configuration.
    pub fn ends_run(&self) -> bool {
        matches!(
            self,
            EngageError::Deadline { .. }
                | EngageError::Auth { .. }
                | EngageError::Unavailable { .. }
                | EngageError::Config(_)
                | EngageError::Setup(_)
        )
    }

    /// The HTTP status Engage answered, for errors that carry one.
    pub fn status(&self) -> Option<u16> {
        match self {
            EngageError::Auth { status, .. }
            | EngageError::Permanent { status, .. }
            | EngageError::UnexpectedResponse { status, .. } => Some(*status),
            EngageError::MultipleMatches { .. } => Some(409),
            EngageError::ContactNotFound { .. } => Some(404),
            EngageError::RateLimited { .. } => Some(429),
            _ => None,
        }
    }
}

impl Coded for EngageError {
    fn exit_code(&self) -> ExitCode {
        match self {
            EngageError::Config(_) => ExitCode::Config,
            EngageError::Setup(_) => ExitCode::IoErr,
            EngageError::Auth { .. } => ExitCode::NoPerm,
            EngageError::Permanent { status, .. } => match status {
                400 | 404 | 409 | 422 => ExitCode::DataErr,
                _ => ExitCode::Unavailable,
            },
            EngageError::MultipleMatches { .. }
            | EngageError::ContactNotFound { .. }
            | EngageError::BulkSize { .. } => ExitCode::DataErr,
            EngageError::RateLimited { .. }
            | EngageError::Transient { .. }
            | EngageError::OutcomeUnknown { .. }
            | EngageError::Deadline { .. } => ExitCode::TempFail,
            EngageError::Unavailable { .. }
            | EngageError::UnexpectedResponse { .. }
            | EngageError::ChangesWindowTooSmall { .. } => ExitCode::Unavailable,
        }
    }
}

/// True for statuses worth repeating: 408, 429 and 5xx.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..=599).contains(&status)
}

/// The one place that turns an HTTP error status and its body into a typed error.
/// `attempts` is how many tries were made (it matters only for retryable statuses, which reach
/// here once the retries are used up).
pub(crate) fn error_for_status(
    request: &RequestName,
    status: u16,
    body: &[u8],
    attempts: u32,
) -> EngageError {
    let request = request.clone();
    let (error_code, _) = error_fields(body);
    let code_is = |c: &str| {
        error_code
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case(c))
    };
    match status {
        401 | 403 => EngageError::Auth { request, status },
        429 => EngageError::RateLimited { request, attempts },
        s if is_retryable_status(s) => EngageError::Transient {
            request,
            attempts,
            last: format!("HTTP {s}: {}", error_digest(body)),
        },
        409 if code_is("MultipleMatches") => EngageError::MultipleMatches { request },
        404 if code_is("ContactNotFound") => EngageError::ContactNotFound { request },
        _ => EngageError::Permanent {
            request,
            status,
            detail: error_digest(body),
        },
    }
}

/// `errorCode` and `message` of a JSON error body, for deciding (MultipleMatches, duplicate),
/// never for showing: show [`error_digest`]. Engage's error schema is unconfirmed
/// (docs/engage-api.md §7 [U]), so a few spellings are tried (ASP.NET's `Message`, problem
/// details' `title`/`detail`).
pub(crate) fn error_fields(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(serde_json::Value::Object(o)) = serde_json::from_slice(body) else {
        return (None, None);
    };
    let get = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| o.get(*n).and_then(|v| v.as_str()))
            .map(|s| scrub(&cut(s, BODY_LIMIT)))
    };
    (
        get(&CODE_KEYS),
        get(&["message", "Message", "detail", "title"]),
    )
}

const CODE_KEYS: [&str; 5] = ["errorCode", "ErrorCode", "code", "error", "errorType"];
const FIELD_LISTS: [&str; 6] = [
    "errors",
    "Errors",
    "modelState",
    "ModelState",
    "validationErrors",
    "invalidFields",
];
const FIELD_KEYS: [&str; 7] = [
    "field",
    "fieldName",
    "propertyName",
    "PropertyName",
    "property",
    "parameterName",
    "memberNames",
];
const CORRELATION_KEYS: [&str; 7] = [
    "correlationId",
    "CorrelationId",
    "correlation_id",
    "traceId",
    "TraceId",
    "requestId",
    "traceIdentifier",
];
/// Cap of a digest, in characters.
const DIGEST_LIMIT: usize = 300;

/// What of an Engage error body may be stored and shown (docs/contract.md §8): Engage's error code,
/// the names of the fields it objects to, a correlation id, and the body's size; never the body
/// itself, its messages or any value in it (a body may echo the submitted contact, or, from a
/// misbehaving proxy, the request's headers with the API key). The one function behind every
/// rejection reason in the outbox, `status`, `--json` and the logs. Capped in length; only plain
/// identifier characters get through, so no value and no control character can.
pub fn error_digest(body: &[u8]) -> String {
    let text = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if text.iter().all(u8::is_ascii_whitespace) {
        return "empty body".into();
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(text) else {
        let kind = if text.trim_ascii_start().starts_with(b"<") {
            "HTML/XML"
        } else {
            "text"
        };
        return format!("{kind} body of {} bytes, not shown", body.len());
    };
    let mut parts = Vec::new();
    if let Some(code) = first_word(&value, &CODE_KEYS, 64) {
        parts.push(format!("errorCode {code}"));
    }
    let fields = field_names(&value);
    if !fields.is_empty() {
        parts.push(format!("fields {}", fields.join(", ")));
    }
    if let Some(id) = first_word(&value, &CORRELATION_KEYS, 100) {
        parts.push(format!("correlation id {id}"));
    }
    parts.push(format!(
        "JSON body of {} bytes, values not shown",
        body.len()
    ));
    cut(&parts.join("; "), DIGEST_LIMIT)
}

/// A bulk row's outcome as it may be stored and shown: Engage's word for it, the error codes
/// and field names its message mentions, never the message (it may quote the rejected value or
/// name the person).
pub fn row_digest(status: &str, message: Option<&str>) -> String {
    let word = plain_word(status, 64).unwrap_or_else(|| "(unreadable status)".into());
    let Some(message) = message.filter(|m| !m.trim().is_empty()) else {
        return word;
    };
    let tokens: Vec<&str> = message
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    let pick = |keep: fn(&str) -> bool| {
        let mut v: Vec<&str> = tokens.iter().copied().filter(|t| keep(t)).collect();
        v.dedup();
        v.truncate(10);
        v.join(", ")
    };
    let mut out = word;
    for (label, found) in [
        ("errorCode", pick(looks_like_code)),
        ("fields", pick(looks_like_field)),
    ] {
        if !found.is_empty() {
            out.push_str(&format!("; {label} {found}"));
        }
    }
    out.push_str(&format!(
        "; message of {} characters not shown",
        message.chars().count()
    ));
    cut(&out, DIGEST_LIMIT)
}

/// Engage's error codes as they appear in free text (`InvalidSocialSecurityNumber`,
/// `ContactNotFound`, `MultipleMatches`): a PascalCase word with an error-like first or last
/// part, so that a name such as `McDonald` is not taken for one.
fn looks_like_code(t: &str) -> bool {
    const FIRST: [&str; 7] = [
        "Invalid",
        "Missing",
        "Multiple",
        "Duplicate",
        "Unknown",
        "Contact",
        "Required",
    ];
    const LAST: [&str; 5] = ["Error", "Exists", "NotFound", "Matches", "Exception"];
    let pascal = t.starts_with(|c: char| c.is_ascii_uppercase())
        && t.chars().all(|c| c.is_ascii_alphanumeric())
        && t.chars().filter(char::is_ascii_uppercase).count() >= 2;
    pascal && (FIRST.iter().any(|p| t.starts_with(p)) || LAST.iter().any(|s| t.ends_with(s)))
}

/// Engage's one-word attribute names, and any camelCase identifier.
fn looks_like_field(t: &str) -> bool {
    const ONE_WORD: [&str; 8] = [
        "email",
        "city",
        "country",
        "gender",
        "street",
        "id",
        "contactId",
        "zipCode",
    ];
    let camel = t.starts_with(|c: char| c.is_ascii_lowercase())
        && t.chars().any(|c| c.is_ascii_uppercase())
        && t.chars().all(|c| c.is_ascii_alphanumeric());
    camel || ONE_WORD.contains(&t)
}

/// The first of `keys` in a JSON object that holds a plain word (string or number).
fn first_word(v: &serde_json::Value, keys: &[&str], max: usize) -> Option<String> {
    keys.iter().find_map(|k| match v.get(*k)? {
        serde_json::Value::String(s) => plain_word(s, max),
        serde_json::Value::Number(n) => Some(scrub(&n.to_string())),
        _ => None,
    })
}

/// Field names: the keys of an `errors`-like object, the `field`-like values of its array
/// elements, and a top-level `field`; at most ten.
fn field_names(v: &serde_json::Value) -> Vec<String> {
    let mut out = named_fields(v);
    for list in FIELD_LISTS {
        match v.get(list) {
            Some(serde_json::Value::Object(o)) => {
                out.extend(o.keys().filter_map(|k| plain_word(k, 64)));
            }
            Some(serde_json::Value::Array(a)) => out.extend(a.iter().flat_map(named_fields)),
            _ => {}
        }
    }
    out.dedup();
    out.truncate(10);
    out
}

/// The values of `field`-like keys of one object.
fn named_fields(item: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for k in FIELD_KEYS {
        match item.get(k) {
            Some(serde_json::Value::String(s)) => out.extend(plain_word(s, 64)),
            Some(serde_json::Value::Array(a)) => out.extend(
                a.iter()
                    .filter_map(|x| x.as_str())
                    .filter_map(|s| plain_word(s, 64)),
            ),
            _ => {}
        }
    }
    out
}

/// `s` if it is a plain identifier (letters, digits, `_ . - : [ ] $ |`) of at most `max`
/// characters: codes, field paths and ids are; values with spaces, `@` or `+` are not, and
/// digit runs that could be keys are masked.
fn plain_word(s: &str, max: usize) -> Option<String> {
    let s = s.trim();
    let plain = !s.is_empty()
        && s.chars().count() <= max
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-:[]$|".contains(c));
    // A run of digits in a "code" may still be a phone or personal number: masked as keys.
    plain.then(|| scrub(s))
}

fn cut(s: &str, limit: usize) -> String {
    match s.char_indices().nth(limit) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> RequestName {
        RequestName {
            method: "POST",
            path: "/api/v3/receipts".into(),
        }
    }

    #[test]
    fn statuses_map_to_types_and_exit_codes() {
        let e = error_for_status(&name(), 401, b"{}", 1);
        assert_eq!(e.exit_code(), ExitCode::NoPerm);
        let e = error_for_status(&name(), 429, b"", 7);
        assert!(matches!(e, EngageError::RateLimited { attempts: 7, .. }));
        assert_eq!(e.exit_code(), ExitCode::TempFail);
        let e = error_for_status(&name(), 503, b"<html>x</html>", 7);
        assert!(e.to_string().contains("HTTP 503"), "{e}");
        let body = br#"{"errorCode":"ContactNotFound","message":"Contact not found."}"#;
        let e = error_for_status(&name(), 404, body, 1);
        assert!(matches!(e, EngageError::ContactNotFound { .. }));
        let body = br#"{"errorCode":"InvalidEmailAddress","message":"bad anna@example.com"}"#;
        let e = error_for_status(&name(), 400, body, 1);
        assert_eq!(e.exit_code(), ExitCode::DataErr);
        let text = e.to_string();
        assert!(text.contains("InvalidEmailAddress") && text.contains("POST /api/v3/receipts"));
        assert!(!text.contains("anna@"), "{text}");
        let e = error_for_status(&name(), 405, b"", 1);
        assert_eq!(e.exit_code(), ExitCode::Unavailable);
    }

    #[test]
    fn free_text_is_scrubbed() {
        let s = scrub("value '+46701234567' for anna@example.com id 1c277c0a-aaaa-bbbb");
        assert!(!s.contains("701234") && !s.contains("anna@"), "{s}");
        assert!(s.contains("1c277c0a-aaaa-bbbb"), "{s}");
    }

    #[test]
    fn query_values_with_personal_data_are_masked() {
        assert_eq!(
            mask_query_value("email", "anna@example.com"),
            "a***@example.com"
        );
        assert_eq!(
            mask_query_value("mobilePhone", "+46701234567"),
            "+4670*****67"
        );
        assert_eq!(mask_query_value("changeType", "Created"), "Created");
        assert_eq!(mask_query_value("memberNumber", "M1234567"), "******67");
        assert_eq!(
            mask_path("/api/v3/contacts/6f1c2e4a-3b1d-4c8e-9a0b-000000000001"),
            "/api/v3/contacts/6f1c2e4a-3b1d-4c8e-9a0b-000000000001"
        );
        assert_eq!(
            mask_path("/api/v2/contacts/a%40b.se"),
            "/api/v2/contacts/******se"
        );
    }
}
