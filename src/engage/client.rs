//! [`EngageClient`]: the operations engage-sync needs, as blocking calls.
//!
//! The rest of engage-sync is synchronous (SQLite, files, cron), so the client owns its tokio
//! runtime and every public method blocks on it. The runtime is multi-threaded with two
//! workers (the machine class engage-sync targets has two cores): requests keep flowing on the
//! workers while [`EngageClient::get_contacts`]'s callback, which typically writes to SQLite,
//! runs on the caller's thread, so a slow write does not stall the network or let rate slots
//! go unused. Do not call these methods from inside another tokio runtime (tokio forbids
//! blocking there).

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::ops::ControlFlow;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::Method;
use serde_json::Value;

use super::config::{ApiVersion, EngageConfig};
use super::error::{error_digest, error_fields, error_for_status, EngageError};
use super::fan_out::{fan_out, OnBreak};
use super::models::{
    parse_change_ids, parse_single_id, ApiContact, BulkOptions, BulkStatus, ChangeType,
    ChangesPage, CreateOptions, CreateOutcome, KeyType, ReceiptOutcome,
};
use super::transport::{encode, Call, Replay, Reply, Transport};

/// Engage's cap on contacts per bulk write (docs/engage-api.md §3).
pub const BULK_MAX: usize = 4000;

/// The smallest changes window [`EngageClient::changes_all`] splits down to before giving up.
pub const MIN_CHANGES_WINDOW: TimeDelta = TimeDelta::seconds(1);

/// Formats a changes-feed bound as `YYYY-MM-DD HH:MM:SS.fff` in UTC. Engage's example has no
/// offset and its time zone is unconfirmed (docs/engage-api.md §4 \[U\]); we assume UTC, the zone
/// the replica stores its cursor in. Sub-millisecond parts are truncated, so two windows
/// split at the same instant share the same bound text.
pub fn format_feed_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// One Engage client per run: one connection pool, rate limiter and deadline shared by every
/// call. The API key is never shown by `Debug`.
pub struct EngageClient {
    api: Api,
    max_concurrency: usize,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for EngageClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngageClient")
            .field("api_version", &self.api.version)
            .field("max_concurrency", &self.max_concurrency)
            .finish_non_exhaustive()
    }
}

impl EngageClient {
    /// Checks the config and builds the client; no request is made.
    pub fn new(cfg: &EngageConfig) -> Result<EngageClient, EngageError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("engage-http")
            .enable_all()
            .build()
            .map_err(|e| EngageError::Setup(format!("cannot start the async runtime: {e}")))?;
        let transport = {
            let _guard = rt.enter();
            Transport::new(cfg)?
        };
        Ok(EngageClient {
            api: Api {
                t: Arc::new(transport),
                version: cfg.api_version,
            },
            max_concurrency: cfg.max_concurrency,
            rt,
        })
    }

    /// HTTP requests this client has sent, every retry counted (a command's own counts are of
    /// calls, each of which may be tried several times).
    pub fn requests_sent(&self) -> u64 {
        self.api.t.sent()
    }

    /// Number of live contacts (`GET /api/v2/contacts/count`; Engage caches it ~20 min).
    /// Cheap: use it as a smoke test of URL, key and network.
    pub fn count(&self) -> Result<u64, EngageError> {
        self.rt.block_on(self.api.count())
    }

    /// One changes-feed call for `[from, to)`; see [`ChangesPage`] for the "too many" answer.
    pub fn changes(
        &self,
        change_type: ChangeType,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<ChangesPage, EngageError> {
        self.rt.block_on(self.api.changes(change_type, from, to))
    }

    /// Every id changed in `[from, to)`, splitting the window in halves (depth first, oldest
    /// half first) whenever Engage answers "too many", down to [`MIN_CHANGES_WINDOW`]. Ids are
    /// lower-cased and deduplicated, in time order of the windows. Depth first means a 400 that
    /// is not about volume fails after about log2(window / 1 s) calls, not a whole tree of
    /// them.
    pub fn changes_all(
        &self,
        change_type: ChangeType,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<String>, EngageError> {
        self.rt
            .block_on(self.api.changes_all(change_type, from, to))
    }

    /// One contact by id; `None` when Engage answers 404 (unknown or deleted).
    pub fn get_contact(&self, id: &str) -> Result<Option<ApiContact>, EngageError> {
        self.rt.block_on(self.api.get_contact(id.to_string()))
    }

    /// Fetches many contacts concurrently within the rate limit and concurrency bound, calling
    /// `on_result` on this thread as each answer arrives (not in input order). Memory stays
    /// constant: `ids` is read lazily and at most `2 × max_concurrency` fetches are pending.
    ///
    /// `on_result` returns [`ControlFlow::Break`] to stop early. An error that ends the run
    /// ([`EngageError::ends_run`]: deadline, refused key, Engage unreachable) stops the fetch
    /// and is returned instead of being passed on; the ids not yet delivered were not fetched
    /// (or their answers were dropped).
    pub fn get_contacts<I, F>(&self, ids: I, mut on_result: F) -> Result<(), EngageError>
    where
        I: IntoIterator<Item = String>,
        F: FnMut(String, Result<Option<ApiContact>, EngageError>) -> ControlFlow<()>,
    {
        let window = self.max_concurrency.saturating_mul(2);
        let mut ids = ids.into_iter();
        let mut failed = None;
        let next = || {
            let id = ids.next()?;
            let api = self.api.clone();
            Some((id.clone(), async move { api.get_contact(id).await }))
        };
        let done = |id, result| match result {
            Err(e) if EngageError::ends_run(&e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
            result => on_result(id, result),
        };
        self.rt
            .block_on(fan_out(window, OnBreak::Abort, next, done));
        failed.map_or(Ok(()), Err)
    }

    /// The contact id for a key (`GET /contacts/id?email=…`); `None` on 404. Several matches
    /// give [`EngageError::MultipleMatches`].
    pub fn find_contact_id(
        &self,
        key_type: KeyType,
        value: &str,
    ) -> Result<Option<String>, EngageError> {
        self.rt.block_on(self.api.find_contact_id(key_type, value))
    }

    /// Creates one contact. Not repeated once it may have reached Engage: on
    /// [`EngageError::OutcomeUnknown`] look the key up before creating again.
    pub fn create_contact(
        &self,
        attributes: &Value,
        opts: &CreateOptions,
    ) -> Result<CreateOutcome, EngageError> {
        self.rt.block_on(self.api.create_contact(attributes, opts))
    }

    /// Partial update of one contact (v3 `PATCH`, v2 `POST /contacts/{id}`). Send only the
    /// changed fields: `""`/`null` clear a field in Engage. `None` on 404. Retried like a GET.
    pub fn update_contact(
        &self,
        id: &str,
        changes: &Value,
    ) -> Result<Option<ApiContact>, EngageError> {
        self.rt.block_on(self.api.update_contact(id, changes))
    }

    /// `POST /contacts/bulk` with 1..=4000 flat contacts; returns the batch id. Store it before
    /// polling (docs/contract.md §5). Not repeated once it may have reached Engage.
    pub fn bulk_create(
        &self,
        contacts: &[Value],
        opts: &BulkOptions,
    ) -> Result<String, EngageError> {
        self.rt
            .block_on(self.api.bulk(Method::POST, contacts, opts))
    }

    /// `PATCH /contacts/bulk` with 1..=4000 updates keyed by `contactId`; returns the batch id.
    /// Not repeated once it may have reached Engage (a replayed old update could overwrite a
    /// newer change made meanwhile).
    pub fn bulk_update(
        &self,
        contacts: &[Value],
        opts: &BulkOptions,
    ) -> Result<String, EngageError> {
        self.rt
            .block_on(self.api.bulk(Method::PATCH, contacts, opts))
    }

    /// Polls a batch (`GET /api/v2/contacts/bulk/status?batchId=`; the path is confirmed only
    /// under v2, so v2 is used whatever `api_version` says).
    pub fn bulk_status(&self, batch_id: &str) -> Result<BulkStatus, EngageError> {
        self.rt.block_on(self.api.bulk_status(batch_id))
    }

    /// Posts many receipts concurrently within the rate limit and concurrency bound, as
    /// [`EngageClient::get_contacts`] fetches: the requests run as tasks on the client's
    /// runtime, not on a thread each, so no blocked thread can wake late and send a burst.
    /// `feed` supplies the receipts (asked again whenever its last batch is all started, while
    /// those posts are still under way, so preparing the next batch costs no rate slots) and
    /// takes each answer on this thread as it arrives.
    ///
    /// When [`ReceiptFeed::posted`] breaks, no new post starts; posts already started still
    /// finish and reach it (their request may have reached Engage, so their outcome must be
    /// recorded). Every error reaches the feed. At most `max_concurrency` posts are under way.
    /// Returns the receipts supplied but never posted.
    pub fn post_receipts<F: ReceiptFeed>(&self, feed: &mut F) -> Vec<F::Key> {
        let window = self.max_concurrency.max(1);
        let feed = RefCell::new(feed);
        let mut queue = VecDeque::new();
        let mut dry = false;
        let next = || {
            if queue.is_empty() && !dry {
                queue.extend(feed.borrow_mut().next_receipts());
                dry = queue.is_empty();
            }
            let (key, body) = queue.pop_front()?;
            let api = self.api.clone();
            Some((key, async move { api.post_receipt(&body).await }))
        };
        let done = |key, result| feed.borrow_mut().posted(key, result);
        self.rt
            .block_on(fan_out(window, OnBreak::Drain, next, done));
        queue.into_iter().map(|(key, _)| key).collect()
    }

    /// Looks many keys up concurrently (`GET /contacts/id`), as
    /// [`post_receipts`](Self::post_receipts) posts: at most `max_concurrency` under way, each
    /// answer taken by `done` on this thread as it arrives. `key` gives an input's key; an input
    /// without one makes no request and reaches `done` with `None`. When `done` breaks, no new
    /// lookup starts; those under way finish and reach it. Returns the inputs never started.
    pub fn find_contact_ids<I: Send + 'static>(
        &self,
        inputs: Vec<I>,
        key: impl Fn(&I) -> Option<(KeyType, String)>,
        done: impl FnMut(I, Option<Result<Option<String>, EngageError>>) -> ControlFlow<()>,
    ) -> Vec<I> {
        let request = |api: Api, input: &I| {
            let key = key(input);
            async move {
                match key {
                    None => None,
                    Some((key_type, value)) => Some(api.find_contact_id(key_type, &value).await),
                }
            }
        };
        self.each_input(inputs, request, done)
    }

    /// Reads many contacts back concurrently (`GET /contacts/{id}`; `id` gives an input's),
    /// with the concurrency and stop of [`find_contact_ids`](Self::find_contact_ids). Returns
    /// the inputs never started.
    pub fn read_contacts<I: Send + 'static>(
        &self,
        inputs: Vec<I>,
        id: impl Fn(&I) -> String,
        done: impl FnMut(I, Result<Option<ApiContact>, EngageError>) -> ControlFlow<()>,
    ) -> Vec<I> {
        let request = |api: Api, input: &I| {
            let id = id(input);
            async move { api.get_contact(id).await }
        };
        self.each_input(inputs, request, done)
    }

    /// One request per input ([`fan_out`], draining on break); returns the inputs never
    /// started.
    fn each_input<I, R, Fut>(
        &self,
        inputs: Vec<I>,
        request: impl Fn(Api, &I) -> Fut,
        done: impl FnMut(I, R) -> ControlFlow<()>,
    ) -> Vec<I>
    where
        I: Send + 'static,
        R: Send + 'static,
        Fut: std::future::Future<Output = R> + Send + 'static,
    {
        let window = self.max_concurrency.max(1);
        let mut queue: VecDeque<I> = inputs.into();
        let next = || {
            let input = queue.pop_front()?;
            let answer = request(self.api.clone(), &input);
            Some((input, answer))
        };
        self.rt
            .block_on(fan_out(window, OnBreak::Drain, next, done));
        queue.into()
    }

    /// Posts a finalized receipt. Repeating a receipt with the same `uniqueReceiptId` is safe
    /// (Engage ignores duplicates), but the client still does not repeat one that may have
    /// arrived: it returns [`EngageError::OutcomeUnknown`] and the caller re-posts on its next
    /// pass, getting [`ReceiptOutcome::Duplicate`] if the first one did arrive.
    pub fn post_receipt(&self, receipt: &Value) -> Result<ReceiptOutcome, EngageError> {
        self.rt.block_on(self.api.post_receipt(receipt))
    }
}

/// What [`EngageClient::post_receipts`] posts, and where the answers go. Both methods run on
/// the caller's thread.
pub trait ReceiptFeed {
    /// Names a receipt to the feed.
    type Key: Send + 'static;
    /// The next receipts (key and body); none when there are no more.
    fn next_receipts(&mut self) -> Vec<(Self::Key, Value)>;
    /// One post's answer; `Break` stops starting new posts.
    fn posted(
        &mut self,
        key: Self::Key,
        result: Result<ReceiptOutcome, EngageError>,
    ) -> ControlFlow<()>;
}

/// The async operations; cheap to clone into tasks.
#[derive(Debug, Clone)]
struct Api {
    t: Arc<Transport>,
    version: ApiVersion,
}

impl Api {
    /// `/api/{v2|v3}/{rest}`.
    fn path(&self, rest: &str) -> String {
        format!("/api/{}/{rest}", self.version.segment())
    }

    async fn count(&self) -> Result<u64, EngageError> {
        let call = Call::get("/api/v2/contacts/count".into());
        let reply = self.t.execute(&call).await?;
        let count = match parse_json(&call, &reply)? {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        count.ok_or_else(|| unexpected(&call, &reply, "not a count"))
    }

    async fn changes(
        &self,
        change_type: ChangeType,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<ChangesPage, EngageError> {
        let call = Call::get(self.path("contacts/changes"))
            .query("changeType", change_type.as_str())
            .query("fromDate", format_feed_time(from))
            .query("toDate", format_feed_time(to))
            .passing(&[400]);
        let reply = self.t.execute(&call).await?;
        if reply.status == 400 {
            return Ok(ChangesPage::TooMany {
                detail: error_digest(&reply.body),
            });
        }
        let ids = parse_change_ids(parse_json(&call, &reply)?);
        ids.map(ChangesPage::Ids)
            .map_err(|d| unexpected(&call, &reply, &d))
    }

    async fn changes_all(
        &self,
        change_type: ChangeType,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<String>, EngageError> {
        let mut windows = vec![(from, to)];
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        while let Some((a, b)) = windows.pop() {
            match self.changes(change_type, a, b).await? {
                ChangesPage::Ids(ids) => {
                    out.extend(ids.into_iter().filter(|id| seen.insert(id.clone())));
                }
                ChangesPage::TooMany { detail } => {
                    let Some(mid) = split_point(a, b) else {
                        return Err(EngageError::ChangesWindowTooSmall {
                            change_type: change_type.to_string(),
                            from: format_feed_time(a),
                            to: format_feed_time(b),
                            detail,
                        });
                    };
                    tracing::debug!(%change_type, from = %format_feed_time(a), to = %format_feed_time(b), "too many changes; splitting the window");
                    windows.push((mid, b));
                    windows.push((a, mid));
                }
            }
        }
        Ok(out)
    }

    async fn get_contact(&self, id: String) -> Result<Option<ApiContact>, EngageError> {
        let call = Call::get(self.path(&format!("contacts/{}", encode(&id)))).passing(&[404]);
        let reply = self.t.execute(&call).await?;
        if reply.status == 404 {
            return Ok(None);
        }
        let contact = ApiContact::from_json(parse_json(&call, &reply)?);
        contact.map(Some).map_err(|d| unexpected(&call, &reply, &d))
    }

    async fn find_contact_id(
        &self,
        key_type: KeyType,
        value: &str,
    ) -> Result<Option<String>, EngageError> {
        let call = Call::get(self.path("contacts/id"))
            .query(key_type.param(), value)
            .passing(&[404, 409]);
        let reply = self.t.execute(&call).await?;
        match reply.status {
            404 => Ok(None),
            // The only 409 find-contact documents is MultipleMatches.
            409 => Err(EngageError::MultipleMatches {
                request: call.name(),
            }),
            _ => parse_single_id(&reply.body, &["id", "contactId"])
                .map(Some)
                .map_err(|d| unexpected(&call, &reply, &d)),
        }
    }

    async fn create_contact(
        &self,
        attributes: &Value,
        opts: &CreateOptions,
    ) -> Result<CreateOutcome, EngageError> {
        let mut call = Call::write(Method::POST, self.path("contacts"), json_body(attributes));
        call = call.passing(&[409]);
        let params = [
            ("source", opts.source.clone()),
            ("storeExternalId", opts.store_external_id.clone()),
            (
                "createAsUnapproved",
                opts.create_as_unapproved.then(|| "true".into()),
            ),
        ];
        for (name, value) in params {
            let Some(value) = value else { continue };
            // v3 takes these in the query and ignores them as headers; v2 the other way round.
            match self.version {
                ApiVersion::V3 => call.query.push((name, value)),
                ApiVersion::V2 => call.headers.push((name, value)),
            }
        }
        let reply = self.t.execute(&call).await?;
        if reply.status == 409 {
            let existing = serde_json::from_slice::<Value>(&reply.body).ok();
            let contact_id = existing
                .as_ref()
                .and_then(|v| v.get("contactId").or_else(|| v.get("id")))
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase);
            return Ok(CreateOutcome::AlreadyExists { contact_id });
        }
        created(&call, &reply)
    }

    async fn update_contact(
        &self,
        id: &str,
        changes: &Value,
    ) -> Result<Option<ApiContact>, EngageError> {
        let method = match self.version {
            ApiVersion::V3 => Method::PATCH,
            ApiVersion::V2 => Method::POST,
        };
        let path = self.path(&format!("contacts/{}", encode(id)));
        let mut call = Call::write(method, path, json_body(changes)).passing(&[404]);
        call.replay = Replay::Safe;
        let reply = self.t.execute(&call).await?;
        if reply.status == 404 {
            return Ok(None);
        }
        let contact = ApiContact::from_json(parse_json(&call, &reply)?);
        contact.map(Some).map_err(|d| unexpected(&call, &reply, &d))
    }

    async fn bulk(
        &self,
        method: Method,
        contacts: &[Value],
        opts: &BulkOptions,
    ) -> Result<String, EngageError> {
        if contacts.is_empty() || contacts.len() > BULK_MAX {
            return Err(EngageError::BulkSize {
                len: contacts.len(),
                max: BULK_MAX,
            });
        }
        let mut call = Call::write(method, self.path("contacts/bulk"), json_body(&contacts));
        if let Some(t) = &opts.contact_type {
            call = call.query("contactType", t.as_str());
        }
        if opts.avoid_triggering_export {
            call = call.query("avoidTriggeringExport", "true");
        }
        let reply = self.t.execute(&call).await?;
        parse_single_id(&reply.body, &["batchId", "id"]).map_err(|d| unexpected(&call, &reply, &d))
    }

    async fn bulk_status(&self, batch_id: &str) -> Result<BulkStatus, EngageError> {
        let call = Call::get("/api/v2/contacts/bulk/status".into()).query("batchId", batch_id);
        let reply = self.t.execute(&call).await?;
        BulkStatus::from_json(parse_json(&call, &reply)?).map_err(|d| unexpected(&call, &reply, &d))
    }

    async fn post_receipt(&self, receipt: &Value) -> Result<ReceiptOutcome, EngageError> {
        let mut call = Call::write(Method::POST, self.path("receipts"), json_body(receipt));
        call = call.passing(&[409]);
        call.body_needed = false;
        let reply = self.t.execute(&call).await?;
        if says_duplicate(&reply.body) || reply.status == 204 {
            return Ok(ReceiptOutcome::Duplicate);
        }
        if reply.status == 409 {
            return Err(error_for_status(&call.name(), 409, &reply.body, 1));
        }
        Ok(ReceiptOutcome::Created)
    }
}

/// The answer to a create: a contact object, or a bare id.
fn created(call: &Call, reply: &Reply) -> Result<CreateOutcome, EngageError> {
    match parse_json(call, reply)? {
        Value::String(s) => Ok(CreateOutcome::Created {
            contact_id: s.trim().to_ascii_lowercase(),
            contact: None,
        }),
        v => {
            let c = ApiContact::from_json(v).map_err(|d| unexpected(call, reply, &d))?;
            Ok(CreateOutcome::Created {
                contact_id: c.id.clone(),
                contact: Some(c),
            })
        }
    }
}

/// Whether an answer to a receipt post says "duplicate" (the duplicate status is unconfirmed:
/// 204, or 200/409 with such a message, are all read as duplicate).
fn says_duplicate(body: &[u8]) -> bool {
    let (code, message) = error_fields(body);
    [code, message]
        .iter()
        .flatten()
        .any(|s| s.to_ascii_lowercase().contains("duplicate"))
}

/// The halfway instant, in whole milliseconds (the precision sent), or `None` when the window
/// is already at [`MIN_CHANGES_WINDOW`] or less.
fn split_point(a: DateTime<Utc>, b: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if b - a <= MIN_CHANGES_WINDOW {
        return None;
    }
    let mid_ms = a.timestamp_millis() + (b - a).num_milliseconds() / 2;
    DateTime::from_timestamp_millis(mid_ms).filter(|m| *m > a && *m < b)
}

fn json_body<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Only `serde_json::Value`s reach here: their keys are strings and the writer is a Vec,
    // the two things that can make serde_json fail, so serialising cannot fail.
    serde_json::to_vec(value).expect("a serde_json::Value always serialises")
}

fn parse_json(call: &Call, reply: &Reply) -> Result<Value, EngageError> {
    let body = reply
        .body
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(&reply.body);
    serde_json::from_slice(body).map_err(|e| unexpected(call, reply, &format!("not JSON: {e}")))
}

fn unexpected(call: &Call, reply: &Reply, detail: &str) -> EngageError {
    EngageError::UnexpectedResponse {
        request: call.name(),
        status: reply.status,
        detail: detail.to_string(),
        body: error_digest(&reply.body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_times_are_utc_with_milliseconds() {
        let t = DateTime::from_timestamp_millis(1_683_198_300_123).expect("valid");
        assert_eq!(format_feed_time(t), "2023-05-04 11:05:00.123");
    }

    #[test]
    fn windows_split_in_halves_down_to_the_minimum() {
        let a = DateTime::from_timestamp_millis(0).expect("valid");
        let b = DateTime::from_timestamp_millis(10_000).expect("valid");
        assert_eq!(split_point(a, b).map(|m| m.timestamp_millis()), Some(5_000));
        let c = DateTime::from_timestamp_millis(1_000).expect("valid");
        assert_eq!(split_point(a, c), None);
    }

    #[test]
    fn duplicate_answers_are_recognised() {
        assert!(says_duplicate(
            br#"{"message":"Duplicate receipt ignored."}"#
        ));
        assert!(says_duplicate(br#"{"errorCode":"DuplicateReceipt"}"#));
        assert!(!says_duplicate(br#"{"uniqueReceiptId":"1"}"#));
        assert!(!says_duplicate(b""));
    }
}
