//! `fake-engage`: a stateful fake of Voyado Engage's HTTP API for
//! engage-sync's integration tests and benchmarks.
//!
//! It serves real HTTP/1.1 on loopback from a background thread with its own
//! tokio runtime, so tests drive it with plain synchronous calls and the
//! client under test talks to it exactly as it would to Engage. It is never
//! part of the shipped binary.
//!
//! ```no_run
//! use fake_engage::{FakeConfig, FakeEngage, Fault, FaultKind};
//! let fake = FakeEngage::start(FakeConfig::default());
//! let id = fake.add_contact(serde_json::json!({"email": "anna@example.com"}));
//! fake.inject(Fault::on("POST", "/api/v3/receipts", FaultKind::ApplyThenDrop));
//! // … run engage-sync against fake.base_url() with fake.api_key() …
//! assert_eq!(fake.contact_count(), 1);
//! # let _ = id;
//! ```
//!
//! See README.md for the endpoints and the shapes chosen where Engage's real
//! behaviour is unconfirmed.

mod api;
mod endpoint;
mod seed;
mod server;
mod state;
mod store;
mod types;
mod util;

pub use endpoint::endpoint;
pub use types::{
    BulkRequestRecord, ChangeRecord, ChangeType, FakeConfig, Fault, FaultKind, Matcher,
    RequestRecord, RetryAfter, StoredReceipt,
};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use server::Cmd;
use state::{Net, RandomFaults, Shared};
use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use store::Store;
use tokio::sync::mpsc;
use util::{format_guid, normalize_key, parse_guid, KeyAttr, SplitMix64};

/// Handle to a running fake. Dropping it stops the server and frees the port.
pub struct FakeEngage {
    shared: Arc<Shared>,
    addr: SocketAddr,
    cmds: mpsc::UnboundedSender<Cmd>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeEngage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeEngage")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FakeEngage {
    /// Starts the fake; panics if the port cannot be bound (a test setup
    /// error). Use [`FakeEngage::try_start`] to handle that instead.
    pub fn start(cfg: FakeConfig) -> FakeEngage {
        match FakeEngage::try_start(cfg) {
            Ok(f) => f,
            Err(e) => panic!("fake-engage: cannot start: {e}"),
        }
    }

    /// Starts the fake on 127.0.0.1 (`cfg.port`, or a free port when 0).
    pub fn try_start(cfg: FakeConfig) -> io::Result<FakeEngage> {
        let seed = cfg.id_seed.unwrap_or_else(|| {
            let t = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
            t ^ (std::process::id() as u64).rotate_left(32)
        });
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(seed, cfg.changes_cap, cfg.bulk_processing_polls)),
            net: Mutex::new(Net::default()),
            cfg,
        });
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<SocketAddr>>();
        let port = shared.cfg.port;
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fake-engage-{port}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("fake-engage-worker")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let want = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                    let listener = match server::bind(want).and_then(|l| {
                        let a = l.local_addr()?;
                        Ok((l, a))
                    }) {
                        Ok(x) => x,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(listener.1));
                    server::run(thread_shared, listener.0, listener.1, cmd_rx).await;
                });
                rt.shutdown_timeout(Duration::from_millis(200));
            })?;
        let addr = ready_rx
            .recv()
            .map_err(|_| io::Error::other("fake-engage server thread died during start"))??;
        Ok(FakeEngage {
            shared,
            addr,
            cmds: cmd_tx,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn api_key(&self) -> String {
        self.shared.cfg.api_key.clone()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn config(&self) -> &FakeConfig {
        &self.shared.cfg
    }

    // ---- clock ---------------------------------------------------------------

    /// The fake's current time (what changes are stamped with).
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.store().now()
    }

    /// Freezes the fake clock at `t`. It stays there until `advance`,
    /// another `set_now` or `use_real_time`.
    pub fn set_now(&self, t: DateTime<Utc>) {
        self.shared.store().set_clock(Some(t));
    }

    /// Moves the fake clock forward (freezing it first if it ran in real time).
    pub fn advance(&self, d: Duration) {
        let mut st = self.shared.store();
        let now =
            st.now() + chrono::Duration::from_std(d).unwrap_or_else(|_| chrono::Duration::zero());
        st.set_clock(Some(now));
    }

    /// Back to the real clock (the default).
    pub fn use_real_time(&self) {
        self.shared.store().set_clock(None);
    }

    // ---- contacts ------------------------------------------------------------

    /// Adds a contact with these flat attributes verbatim (no validation, no
    /// uniqueness check, so tests can build MultipleMatches), recording a
    /// Created change at the fake's now. `contactType` defaults to Member.
    /// Returns the lower-case id. Panics if `attrs` is not a JSON object.
    pub fn add_contact(&self, attrs: Value) -> String {
        let t = self.now();
        self.add_contact_at(attrs, t)
    }

    /// As [`FakeEngage::add_contact`], with the Created change at `time`.
    pub fn add_contact_at(&self, attrs: Value, time: DateTime<Utc>) -> String {
        let Value::Object(mut m) = attrs else {
            panic!("fake-engage: add_contact needs a JSON object of attributes");
        };
        m.entry("contactType")
            .or_insert_with(|| Value::String("Member".into()));
        let id = self.shared.store().insert(m, time.timestamp_millis(), None);
        format_guid(id, false)
    }

    /// Merges `patch` into a live contact (`null`/`""` stored as sent) and
    /// records an Updated change at now. False if no such live contact.
    pub fn update_contact(&self, id: &str, patch: Value) -> bool {
        let t = self.now();
        self.update_contact_at(id, patch, t)
    }

    pub fn update_contact_at(&self, id: &str, patch: Value, time: DateTime<Utc>) -> bool {
        let Value::Object(p) = patch else {
            panic!("fake-engage: update_contact needs a JSON object patch");
        };
        let mut st = self.shared.store();
        match parse_guid(id).and_then(|g| st.live_slot(g)) {
            Some(slot) => {
                st.patch(slot, &p, time.timestamp_millis());
                true
            }
            None => false,
        }
    }

    /// Soft-deletes a contact (gone from look-ups and GET, listed in the
    /// Deleted feed). False if no such live contact.
    pub fn delete_contact(&self, id: &str) -> bool {
        let t = self.now();
        self.delete_contact_at(id, t)
    }

    pub fn delete_contact_at(&self, id: &str, time: DateTime<Utc>) -> bool {
        let mut st = self.shared.store();
        match parse_guid(id).and_then(|g| st.live_slot(g)) {
            Some(slot) => {
                st.delete(slot, time.timestamp_millis());
                true
            }
            None => false,
        }
    }

    /// Flat attributes of a live contact (`contactType` included; preferences
    /// such as `acceptsEmail` are flat here too). Id in any case.
    pub fn contact(&self, id: &str) -> Option<Value> {
        let st = self.shared.store();
        let slot = parse_guid(id).and_then(|g| st.live_slot(g))?;
        Some(Value::Object(st.view(slot).attrs))
    }

    /// The IApiContact JSON `GET /contacts/{id}` would answer.
    pub fn contact_json(&self, id: &str) -> Option<Value> {
        let st = self.shared.store();
        let slot = parse_guid(id).and_then(|g| st.live_slot(g))?;
        Some(api::render_contact(&self.shared.cfg, &st.view(slot)))
    }

    /// Every live contact as (lower-case id, flat attributes), in creation order.
    pub fn contacts(&self) -> Vec<(String, Value)> {
        let st = self.shared.store();
        st.live_slots()
            .map(|s| {
                let v = st.view(s);
                (format_guid(v.id, false), Value::Object(v.attrs))
            })
            .collect()
    }

    /// Ids of every live contact, lower case, in creation order.
    pub fn contact_ids(&self) -> Vec<String> {
        let st = self.shared.store();
        st.live_slots()
            .map(|s| format_guid(st.id_of(s), false))
            .collect()
    }

    pub fn contact_count(&self) -> usize {
        self.shared.store().live_count()
    }

    /// Ids of live contacts whose `attr` (email, mobilePhone, externalId,
    /// socialSecurityNumber or memberNumber) matches `value` as Engage
    /// compares it (e-mail case-insensitively).
    pub fn find_contacts(&self, attr: &str, value: &str) -> Vec<String> {
        let Some(k) = KeyAttr::from_name(attr) else {
            return Vec::new();
        };
        let st = self.shared.store();
        st.find(k, value)
            .into_iter()
            .map(|s| format_guid(st.id_of(s), false))
            .collect()
    }

    /// Adds `n` synthetic Members created 1 ms apart from `time` (spread so a
    /// client can split a changes window below the cap). Attributes: firstName
    /// and lastName with Nordic letters, email, mobilePhone `+467…`,
    /// memberNumber, countryCode, city, acceptsEmail. Each costs ~150 bytes.
    pub fn seed_contacts(&self, n: usize, time: DateTime<Utc>) {
        self.seed_contacts_spaced(n, time, Duration::from_millis(1));
    }

    /// As [`FakeEngage::seed_contacts`] with `step` between creation times.
    pub fn seed_contacts_spaced(&self, n: usize, start: DateTime<Utc>, step: Duration) {
        let step_ms = i64::try_from(step.as_millis()).unwrap_or(i64::MAX / 4);
        self.shared
            .store()
            .seed(n, start.timestamp_millis(), step_ms);
    }

    /// The change log behind `/contacts/changes`, oldest first.
    pub fn changes_log(&self) -> Vec<ChangeRecord> {
        self.shared.store().change_log(false)
    }

    // ---- counters ----------------------------------------------------------------

    /// How many contacts were created over the API (single create or bulk row)
    /// per key, as `"attr:normalised value"`, e.g. `"email:anna@example.com"`,
    /// `"mobilePhone:+46701234567"`. Contacts added through this handle are
    /// not counted.
    pub fn creates_per_key(&self) -> HashMap<String, usize> {
        self.shared.store().creates_per_key()
    }

    /// `creates_per_key` for one key, normalising `value` the way Engage does.
    pub fn creates_for(&self, attr: &str, value: &str) -> usize {
        let Some(k) = KeyAttr::from_name(attr) else {
            return 0;
        };
        let key = format!("{}:{}", k.name(), normalize_key(k, value));
        self.shared
            .store()
            .creates_per_key()
            .get(&key)
            .copied()
            .unwrap_or(0)
    }

    /// Receipts stored, in arrival order (duplicates are not stored twice).
    pub fn receipts(&self) -> Vec<StoredReceipt> {
        self.shared.store().receipts()
    }

    /// How many POSTs carried this uniqueReceiptId, whatever their outcome
    /// (stored, ignored as duplicate, rejected) — for exactly-once checks.
    pub fn receipt_post_count(&self, unique_receipt_id: &str) -> usize {
        self.shared.store().receipt_post_count(unique_receipt_id)
    }

    /// Receipts posted again after their 2xx answer had reached the client whole (no fault
    /// cut or delayed it), with how many times: always empty for a client that posts each
    /// receipt once. A post counts by when it arrived, so a delayed original applied after a
    /// retry was answered is no repost. Retrying after a lost or cut answer is not counted;
    /// that is at-least-once done right, and Engage ignores the duplicate.
    pub fn receipt_reposts(&self) -> std::collections::HashMap<String, usize> {
        self.shared.store().receipt_reposts()
    }

    /// The next `n` bulk batches answer "Failed" once processed, although their rows were
    /// applied (contacts created or updated): a client must check before sending them again.
    pub fn fail_next_bulk_batches(&self, n: u32) {
        self.shared.store().bulk_batches_to_fail = n;
    }

    /// Every bulk write request that reached the handler.
    pub fn bulk_requests(&self) -> Vec<BulkRequestRecord> {
        self.shared.store().bulk_requests.clone()
    }

    /// Sets how many status polls a new bulk batch stays "Processing".
    pub fn set_bulk_processing_polls(&self, polls: u32) {
        self.shared.store().bulk_processing_polls = polls;
    }

    // ---- request log ---------------------------------------------------------------

    /// Every request answered or dropped since start or `clear_requests`.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.net().requests.clone()
    }

    /// How many requests reached each endpoint (named by [`endpoint`], e.g.
    /// `"GET /contacts/id"`) since start or `clear_requests`, answered or not.
    pub fn requests_per_endpoint(&self) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for r in self.shared.net().requests.iter() {
            *counts.entry(endpoint(&r.method, &r.path)).or_insert(0) += 1;
        }
        counts
    }

    /// The most requests that arrived within any `window`-long interval
    /// (half-open), e.g. `Duration::from_secs(1)` for a requests/second check.
    pub fn max_requests_in_any_window(&self, window: Duration) -> usize {
        let mut at: Vec<_> = self.shared.net().requests.iter().map(|r| r.at).collect();
        at.sort_unstable();
        let mut best = 0;
        let mut lo = 0;
        for hi in 0..at.len() {
            while lo <= hi && at[hi].duration_since(at[lo]) >= window {
                lo += 1;
            }
            best = best.max(hi + 1 - lo);
        }
        best
    }

    pub fn clear_requests(&self) {
        self.shared.net().requests.clear();
    }

    // ---- faults ----------------------------------------------------------------------

    /// Queues a fault. Each request takes the first queued fault that matches
    /// it (in injection order); a fault is used up after `count` requests.
    pub fn inject(&self, fault: Fault) {
        if fault.count > 0 {
            self.shared.net().faults.push_back(fault);
        }
    }

    /// Drops every queued fault not yet used.
    pub fn clear_faults(&self) {
        self.shared.net().faults.clear();
    }

    /// Queued faults not yet used up.
    pub fn pending_faults(&self) -> Vec<Fault> {
        self.shared.net().faults.iter().cloned().collect()
    }

    /// A fault storm: each request that no queued fault hits gets, with
    /// `probability`, one of `kinds` (chosen uniformly). The sequence of
    /// draws is fixed by `seed`, so a storm replays identically for the same
    /// order of requests.
    pub fn set_random_faults(&self, seed: u64, probability: f64, kinds: Vec<FaultKind>) {
        self.shared.net().random = Some(RandomFaults {
            rng: SplitMix64::new(seed),
            probability,
            kinds,
        });
    }

    pub fn clear_random_faults(&self) {
        self.shared.net().random = None;
    }

    /// A fixed latency before every matching request is handled, e.g.
    /// `set_latency("/api/v3/contacts/", 100ms)` or
    /// `set_latency(Matcher::method("GET", "/api/v3/contacts/"), …)`. A zero
    /// duration removes the latency for that matcher.
    pub fn set_latency(&self, matcher: impl Into<Matcher>, latency: Duration) {
        let m = matcher.into();
        let mut net = self.shared.net();
        net.latencies.retain(|(x, _)| *x != m);
        if !latency.is_zero() {
            net.latencies.push((m, latency));
        }
    }

    pub fn clear_latency(&self) {
        self.shared.net().latencies.clear();
    }

    /// `true` closes the listener (new connects get "connection refused") and
    /// drops every open connection; `false` listens again on the same port.
    /// State is kept. Returns once the change is in effect.
    pub fn refuse_connections(&self, refuse: bool) -> io::Result<()> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.cmds
            .send(Cmd::Refuse(refuse, tx))
            .map_err(|_| io::Error::other("fake-engage server has stopped"))?;
        rx.recv()
            .map_err(|_| io::Error::other("fake-engage server has stopped"))?
    }

    /// The changes feed answers 400 when a window holds more than `n` ids.
    pub fn set_changes_cap(&self, n: usize) {
        self.shared.store().changes_cap = n;
    }
}

impl Drop for FakeEngage {
    fn drop(&mut self) {
        let _ = self.cmds.send(Cmd::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Builds a flat attribute object; a small convenience for tests.
pub fn attrs<const N: usize>(pairs: [(&str, &str); N]) -> Value {
    let m: Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    Value::Object(m)
}
