//! The Engage client's typed errors and their exit codes (SPEC §8).
//!
//! Invariants: no message contains the API key; every message names the request by method and
//! path with personal data in the query masked ([`RequestName`]); response bodies quoted in
//! messages are cut to [`BODY_LIMIT`] characters with e-mail addresses and long digit runs
//! masked, since Engage may echo the data it rejected.

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

/// Masks the value of a query parameter if it holds personal data.
pub(crate) fn mask_query_value(name: &str, value: &str) -> String {
    match name {
        "email" => mask::email(value),
        "mobilePhone" => mask::phone(value),
        "socialSecurityNumber" | "customKey" | "any" | "keyValue" | "externalId" => {
            mask::key(value)
        }
        _ => value.to_string(),
    }
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
    #[error("{request} was rejected by Engage with HTTP {status}{}: {body}", detail(.error_code, .message))]
    Permanent {
        /// The request rejected.
        request: RequestName,
        /// The HTTP status.
        status: u16,
        /// Engage's `errorCode`, when the body was JSON with one.
        error_code: Option<String>,
        /// Engage's `message`, when the body was JSON with one.
        message: Option<String>,
        /// The body, cut and masked.
        body: String,
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
    /// (ENGAGE-API.md §7): look the contact up by key; re-post a receipt with the same
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
        /// The body, cut and masked.
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
         (HTTP 400: {message}); more than Engage's 250 000-id cap changed in it, or the feed is \
         not activated for this tenant: ask Voyado, or use the contact-export XML"
    )]
    ChangesWindowTooSmall {
        /// Created, Updated or Deleted.
        change_type: String,
        /// Window start (UTC, as sent).
        from: String,
        /// Window end (UTC, as sent).
        to: String,
        /// Engage's message.
        message: String,
    },
}

fn detail(code: &Option<String>, message: &Option<String>) -> String {
    match (code, message) {
        (Some(c), Some(m)) => format!(" ({c}: {m})"),
        (Some(c), None) => format!(" ({c})"),
        (None, Some(m)) => format!(" ({m})"),
        (None, None) => String::new(),
    }
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
    let (error_code, message) = error_fields(body);
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
            last: format!("HTTP {s}{}", quote_body(body)),
        },
        409 if code_is("MultipleMatches") => EngageError::MultipleMatches { request },
        404 if code_is("ContactNotFound") => EngageError::ContactNotFound { request },
        _ => EngageError::Permanent {
            request,
            status,
            error_code,
            message,
            body: body_excerpt(body),
        },
    }
}

/// `errorCode` and `message` of a JSON error body. Engage's error schema is unconfirmed
/// (ENGAGE-API.md §7 [U]), so a few spellings are tried (ASP.NET's `Message`, problem
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
        get(&["errorCode", "ErrorCode", "code", "error"]),
        get(&["message", "Message", "detail", "title"]),
    )
}

/// The body for an error message: cut to [`BODY_LIMIT`] characters, personal data masked.
pub(crate) fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".into();
    }
    scrub(&cut(text, BODY_LIMIT))
}

fn quote_body(body: &[u8]) -> String {
    if body.iter().all(u8::is_ascii_whitespace) {
        String::new()
    } else {
        format!(": {}", body_excerpt(body))
    }
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
    fn bodies_are_cut_and_scrubbed() {
        let long = "x".repeat(2000);
        assert!(body_excerpt(long.as_bytes()).chars().count() <= BODY_LIMIT + 1);
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
    }
}
