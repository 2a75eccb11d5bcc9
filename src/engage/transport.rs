//! Sending one logical request: concurrency bound, rate limit, timeouts, retries, deadline.
//!
//! Every request goes through [`Transport::execute`], which guarantees:
//! - at most `max_concurrency` requests in flight, and request starts spaced by the
//!   [`RateLimiter`] (a retry is a new start and takes a new slot); the concurrency permit is
//!   taken *before* the rate slot, so requests queued for a permit cannot pile up behind it and
//!   then start in a burst; it is released during backoff waits;
//! - no attempt and no wait runs past the run's deadline (each attempt's timeout is trimmed
//!   to the time left);
//! - a request whose replay is [`Replay::Unsafe`] is repeated only when Engage certainly did
//!   not process it (connect failure, 429); otherwise the caller gets
//!   [`EngageError::OutcomeUnknown`] (docs/engage-api.md §7: check with a GET before re-posting).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use reqwest::Method;
use tokio::sync::Semaphore;

use super::config::{check_api_key, is_loopback, parse_base_url, EngageConfig};
use super::error::{
    error_digest, error_for_status, is_retryable_status, mask_path, mask_query_value, EngageError,
    RequestName,
};
use super::limiter::RateLimiter;
use super::retry::{parse_retry_after, RetryPolicy};

/// Whether a request may be sent again after it may have reached Engage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Repeating it changes nothing: GETs, updates by id, status polls.
    Safe,
    /// Repeating it could create twice: creates, bulk writes, receipts.
    Unsafe,
}

/// One logical request.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) method: Method,
    /// Path below the base URL, segments already encoded (see [`encode`]).
    pub(crate) path: String,
    /// Query parameters, raw; encoded when sent, masked when named.
    pub(crate) query: Vec<(&'static str, String)>,
    /// Extra headers (v2 create takes its options as headers).
    pub(crate) headers: Vec<(&'static str, String)>,
    /// JSON body.
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) replay: Replay,
    /// Error statuses the caller interprets itself (404 "not found" → `None`, the changes
    /// feed's 400 "too many"), handed back as a [`Reply`] instead of an error.
    pub(crate) pass: &'static [u16],
    /// False when a 2xx status alone answers the question, so a body cut off after a 2xx
    /// status line is no failure (receipts).
    pub(crate) body_needed: bool,
}

impl Call {
    /// A safe GET whose answer body is needed.
    pub(crate) fn get(path: String) -> Call {
        Call {
            method: Method::GET,
            path,
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            replay: Replay::Safe,
            pass: &[],
            body_needed: true,
        }
    }

    /// An unsafe write (POST/PATCH) with a JSON body.
    pub(crate) fn write(method: Method, path: String, body: Vec<u8>) -> Call {
        Call {
            method,
            body: Some(body),
            replay: Replay::Unsafe,
            ..Call::get(path)
        }
    }

    /// Hands these error statuses back as replies.
    pub(crate) fn passing(mut self, statuses: &'static [u16]) -> Call {
        self.pass = statuses;
        self
    }

    /// Adds a query parameter.
    pub(crate) fn query(mut self, name: &'static str, value: impl Into<String>) -> Call {
        self.query.push((name, value.into()));
        self
    }

    /// Method and path with personal values masked, in the query and in the path: the one
    /// place a request is named for logs and errors (docs/contract.md §8).
    pub(crate) fn name(&self) -> RequestName {
        RequestName {
            method: method_name(&self.method),
            path: format!(
                "{}{}",
                mask_path(&self.path),
                self.target(mask_query_value)
                    .strip_prefix(self.path.as_str())
                    .unwrap_or_default()
            ),
        }
    }

    /// Path and query with each value rendered by `value` (encoded or masked).
    fn target(&self, value: impl Fn(&str, &str) -> String) -> String {
        let mut t = self.path.clone();
        for (i, (n, v)) in self.query.iter().enumerate() {
            t.push(if i == 0 { '?' } else { '&' });
            t.push_str(n);
            t.push('=');
            t.push_str(&value(n, v));
        }
        t
    }
}

/// The method as a static name (the client uses only these four).
fn method_name(m: &Method) -> &'static str {
    [Method::GET, Method::POST, Method::PATCH, Method::DELETE]
        .into_iter()
        .zip(["GET", "POST", "PATCH", "DELETE"])
        .find_map(|(known, name)| (*m == known).then_some(name))
        .unwrap_or("HTTP")
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so `+` in a phone number
/// becomes `%2B` (Engage decodes a bare `+` as a space) and a space becomes `%20`, as in
/// Engage's own examples (`fromDate=2023-05-04%2011%3A05%3A00.000`).
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A response worth handing to the caller: 2xx, or a status in [`Call::pass`].
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

/// Why one attempt did not produce a [`Reply`].
enum Failure {
    /// Engage answered 408, 429 or 5xx.
    Status {
        status: u16,
        body: Vec<u8>,
        retry_after: Option<Duration>,
    },
    /// No connection could be made: the request was certainly not sent.
    Connect(String),
    /// Sent (or possibly sent), then timed out or the connection broke.
    AfterSend(String),
    /// Nothing to retry.
    Final(EngageError),
}

/// `250 ms`, `1.5 s`: a retry's wait, for people.
fn readable(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

impl Failure {
    /// What went wrong, for the retry warning: a status, or the transport error's chain (which
    /// [`error_chain`] keeps free of the URL and its query).
    fn describe(&self) -> String {
        match self {
            Failure::Status { status, .. } => format!("HTTP {status}"),
            Failure::Connect(cause) => format!("cannot connect: {cause}"),
            Failure::AfterSend(cause) => format!("no answer: {cause}"),
            Failure::Final(e) => e.to_string(),
        }
    }
}

/// The shared state behind a client: one HTTP connection pool, limiter and semaphore.
#[derive(Debug)]
pub(crate) struct Transport {
    http: reqwest::Client,
    base: String,
    limiter: RateLimiter,
    slots: Semaphore,
    policy: RetryPolicy,
    request_timeout: Duration,
    deadline: Option<Instant>,
    /// Tries sent, retries included (see [`Transport::sent`]).
    sent: AtomicU64,
}

impl Transport {
    /// Checks the key, the base URL and the limits (the config's fields are public) and builds
    /// the HTTP client with the headers every request carries.
    pub(crate) fn new(cfg: &EngageConfig) -> Result<Transport, EngageError> {
        check_api_key(&cfg.api_key)?;
        let base = parse_base_url(&cfg.base_url)?;
        check_limits(cfg)?;
        let mut builder = reqwest::Client::builder()
            .default_headers(default_headers(cfg)?)
            .user_agent(concat!("engage-sync/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(cfg.connect_timeout)
            // Engage does not redirect API calls, and following one would hand the `apikey`
            // header to whatever host it names: a 3xx is reported, not followed.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(cfg.max_concurrency);
        // A proxy from the environment must not see loopback test traffic.
        if reqwest::Url::parse(&base).is_ok_and(|u| is_loopback(&u)) {
            builder = builder.no_proxy();
        }
        let http = builder
            .build()
            .map_err(|e| EngageError::Setup(error_chain(&e)))?;
        Ok(Transport {
            http,
            base,
            limiter: RateLimiter::new(cfg.rate_limit_per_sec),
            slots: Semaphore::new(cfg.max_concurrency),
            policy: RetryPolicy {
                max_retries: cfg.max_retries,
                base: cfg.retry_base,
                cap: cfg.retry_cap,
            },
            request_timeout: cfg.request_timeout,
            deadline: cfg.deadline,
            sent: AtomicU64::new(0),
        })
    }

    /// HTTP requests sent so far, every try counted: what Engage's rate limit and its logs
    /// see, unlike a command's count of calls. A try counts once it is handed to the network,
    /// also when its connection is refused or dropped.
    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Sends `call`, retrying as the module doc says, until a 2xx reply or a typed error.
    pub(crate) async fn execute(&self, call: &Call) -> Result<Reply, EngageError> {
        let name = call.name();
        let mut ever_connected = false;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let failure = match self.attempt(call, &name, attempt).await {
                Ok(reply) => return Ok(reply),
                Err(Failure::Final(e)) => return Err(e),
                Err(f) => f,
            };
            ever_connected |= !matches!(failure, Failure::Connect(_));
            let retry_after = may_retry(call.replay, &name, &failure)?;
            if attempt > self.policy.max_retries {
                return Err(give_up(&name, failure, attempt, ever_connected));
            }
            let delay = self.policy.delay(attempt, retry_after);
            if self.deadline.is_some_and(|d| Instant::now() + delay >= d) {
                return Err(EngageError::Deadline { request: name });
            }
            // A warning, so that a run waiting on retries (up to minutes) says so, even under -q.
            tracing::warn!(
                "Engage request {name} failed ({}); retry {attempt} of {} in {}",
                failure.describe(),
                self.policy.max_retries,
                readable(delay)
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// One try: permit, rate slot, send, read the body, sort the status.
    async fn attempt(
        &self,
        call: &Call,
        name: &RequestName,
        attempt: u32,
    ) -> Result<Reply, Failure> {
        let deadline_error = || {
            Failure::Final(EngageError::Deadline {
                request: name.clone(),
            })
        };
        let acquire = self.slots.acquire();
        let permit = match self.deadline {
            Some(d) => tokio::time::timeout_at(d.into(), acquire)
                .await
                .map_err(|_| deadline_error())?,
            None => acquire.await,
        };
        // The semaphore is never closed, so acquiring can only fail if it were.
        let _permit = permit.map_err(|_| deadline_error())?;
        self.limiter
            .acquire(self.deadline)
            .await
            .map_err(|_| deadline_error())?;
        let timeout = self.attempt_timeout().ok_or_else(deadline_error)?;
        let started = Instant::now();
        self.sent.fetch_add(1, Ordering::Relaxed);
        let result = self.send(call, timeout).await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match &result {
            Ok(r) => {
                tracing::debug!(request = %name, status = r.0, elapsed_ms, attempt, "engage request")
            }
            Err(e) => {
                tracing::debug!(request = %name, error = %e, elapsed_ms, attempt, "engage request failed")
            }
        }
        let (status, retry_after, body) = result.map_err(classify_transport)?;
        sort_status(call, name, status, retry_after, body)
    }

    /// The request timeout, trimmed to the time left before the deadline; `None` when none is
    /// left.
    fn attempt_timeout(&self) -> Option<Duration> {
        match self.deadline {
            None => Some(self.request_timeout),
            Some(d) => {
                let left = d.checked_duration_since(Instant::now())?;
                (!left.is_zero()).then(|| left.min(self.request_timeout))
            }
        }
    }

    /// Sends and reads the whole body. A body that breaks off is returned as `Err` inside, so
    /// the status is still known.
    async fn send(&self, call: &Call, timeout: Duration) -> Result<SendResult, reqwest::Error> {
        let url = format!("{}{}", self.base, call.target(|_, v| encode(v)));
        let mut req = self.http.request(call.method.clone(), url).timeout(timeout);
        for (k, v) in &call.headers {
            req = req.header(*k, v.as_str());
        }
        if let Some(body) = &call.body {
            req = req.body(body.clone());
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = resp.bytes().await.map(Vec::from);
        Ok((status, retry_after, body))
    }
}

/// Status, `Retry-After`, and the body or the error that cut it off.
type SendResult = (u16, Option<Duration>, Result<Vec<u8>, reqwest::Error>);

fn check_limits(cfg: &EngageConfig) -> Result<(), EngageError> {
    if !(cfg.rate_limit_per_sec.is_finite() && cfg.rate_limit_per_sec > 0.0) {
        return Err(EngageError::Config(format!(
            "the Engage rate limit must be a positive number of requests per second, not {}",
            cfg.rate_limit_per_sec
        )));
    }
    if cfg.max_concurrency == 0 || cfg.max_concurrency > Semaphore::MAX_PERMITS {
        return Err(EngageError::Config(
            "the Engage concurrency must be at least 1".into(),
        ));
    }
    Ok(())
}

/// `apikey` (marked sensitive, so the HTTP stack redacts it in its own debug output),
/// `Content-Type` (Engage answers 500 without it, even on GET) and `Accept`.
fn default_headers(cfg: &EngageConfig) -> Result<HeaderMap, EngageError> {
    let mut key = HeaderValue::from_str(cfg.api_key.expose())
        .map_err(|_| EngageError::Config("the Engage API key cannot be sent as a header".into()))?;
    key.set_sensitive(true);
    let mut h = HeaderMap::new();
    h.insert("apikey", key);
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(ACCEPT, HeaderValue::from_static("application/json"));
    Ok(h)
}

/// Sorts an answered attempt: 2xx is a reply, 408/429/5xx may be retried, the rest is final.
fn sort_status(
    call: &Call,
    name: &RequestName,
    status: u16,
    retry_after: Option<Duration>,
    body: Result<Vec<u8>, reqwest::Error>,
) -> Result<Reply, Failure> {
    let success = (200..300).contains(&status);
    let passed = call.pass.contains(&status);
    let body = match body {
        Ok(b) => b,
        Err(e) if success && call.body_needed => {
            return Err(Failure::AfterSend(format!(
                "HTTP {status}, then the body broke off: {}",
                error_chain(&e)
            )))
        }
        // The status alone answers (or it is an error status): the body is only decoration.
        Err(_) => Vec::new(),
    };
    if success || passed {
        Ok(Reply { status, body })
    } else if is_retryable_status(status) {
        Err(Failure::Status {
            status,
            body,
            retry_after,
        })
    } else {
        Err(Failure::Final(error_for_status(name, status, &body, 1)))
    }
}

/// A transport error that stopped the attempt before any status arrived.
fn classify_transport(e: reqwest::Error) -> Failure {
    if e.is_connect() {
        Failure::Connect(error_chain(&e))
    } else if e.is_timeout() {
        Failure::AfterSend("no answer before the request timeout".into())
    } else {
        Failure::AfterSend(error_chain(&e))
    }
}

/// The wait Engage asked for when a retry is allowed; the final error when it is not, because
/// repeating an unsafe request that may have been processed could apply it twice.
fn may_retry(
    replay: Replay,
    name: &RequestName,
    failure: &Failure,
) -> Result<Option<Duration>, EngageError> {
    let unknown = |cause: String| EngageError::OutcomeUnknown {
        request: name.clone(),
        cause,
    };
    match (failure, replay) {
        // 429 means "not processed", and a failed connect sent nothing: safe for any request.
        (
            Failure::Status {
                status: 429,
                retry_after,
                ..
            },
            _,
        ) => Ok(*retry_after),
        (Failure::Connect(_), _) => Ok(None),
        (Failure::Status { retry_after, .. }, Replay::Safe) => Ok(*retry_after),
        (Failure::AfterSend(_), Replay::Safe) => Ok(None),
        (Failure::Status { status, body, .. }, Replay::Unsafe) => {
            Err(unknown(format!("HTTP {status}: {}", error_digest(body))))
        }
        (Failure::AfterSend(cause), Replay::Unsafe) => Err(unknown(cause.clone())),
        (Failure::Final(_), _) => Ok(None),
    }
}

/// The error once the retries are used up.
fn give_up(
    name: &RequestName,
    failure: Failure,
    attempts: u32,
    ever_connected: bool,
) -> EngageError {
    match failure {
        Failure::Status { status, body, .. } => error_for_status(name, status, &body, attempts),
        Failure::Connect(cause) if !ever_connected => EngageError::Unavailable {
            request: name.clone(),
            attempts,
            cause,
        },
        Failure::Connect(last) | Failure::AfterSend(last) => EngageError::Transient {
            request: name.clone(),
            attempts,
            last,
        },
        Failure::Final(e) => e,
    }
}

/// An error and its sources on one line. reqwest's own message would include the URL, whose
/// query may hold personal data, so it is dropped first.
fn error_chain(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        let text = match text.find(" for url (") {
            Some(i) => text[..i].to_string(),
            None => text,
        };
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded_for_the_wire_and_masked_for_names() {
        let call = Call::get("/api/v3/contacts/id".into()).query("mobilePhone", "+46701234567");
        assert_eq!(
            call.target(|_, v| encode(v)),
            "/api/v3/contacts/id?mobilePhone=%2B46701234567"
        );
        assert_eq!(
            call.name().to_string(),
            "GET /api/v3/contacts/id?mobilePhone=+4670*****67"
        );
        assert_eq!(
            encode("2023-05-04 11:05:00.000"),
            "2023-05-04%2011%3A05%3A00.000"
        );
    }

    #[test]
    fn unsafe_requests_are_only_retried_when_certainly_unprocessed() {
        let name = Call::get("/x".into()).name();
        let s = |status| Failure::Status {
            status,
            body: Vec::new(),
            retry_after: None,
        };
        assert!(may_retry(Replay::Unsafe, &name, &s(429)).is_ok());
        assert!(may_retry(Replay::Unsafe, &name, &Failure::Connect("refused".into())).is_ok());
        let e = may_retry(Replay::Unsafe, &name, &s(503)).expect_err("unsafe 503");
        assert!(matches!(e, EngageError::OutcomeUnknown { .. }));
        let e = may_retry(Replay::Unsafe, &name, &Failure::AfterSend("reset".into()));
        assert!(matches!(e, Err(EngageError::OutcomeUnknown { .. })));
        assert!(may_retry(Replay::Safe, &name, &s(503)).is_ok());
        assert!(may_retry(Replay::Safe, &name, &Failure::AfterSend("reset".into())).is_ok());
    }

    #[test]
    fn only_connect_failures_throughout_mean_unavailable() {
        let name = Call::get("/x".into()).name();
        let e = give_up(&name, Failure::Connect("refused".into()), 7, false);
        assert!(matches!(e, EngageError::Unavailable { attempts: 7, .. }));
        let e = give_up(&name, Failure::Connect("refused".into()), 7, true);
        assert!(matches!(e, EngageError::Transient { .. }));
    }
}
