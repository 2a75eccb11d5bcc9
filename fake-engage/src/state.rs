//! What the server and the API handlers share: the fake's state (data, faults, latencies, the
//! request log) and the parsed request and the response passed between them. Kept apart from
//! `server.rs` so that the handlers (`api.rs`) and the server each depend on this, not on
//! each other.

use crate::store::Store;
use crate::types::{FakeConfig, Fault, FaultKind, Matcher, RequestRecord};
use crate::util::SplitMix64;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// State shared by the handle and the server thread.
pub(crate) struct Shared {
    pub(crate) cfg: FakeConfig,
    pub(crate) store: Mutex<Store>,
    pub(crate) net: Mutex<Net>,
}

impl Shared {
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().expect("fake-engage store mutex poisoned")
    }

    pub(crate) fn net(&self) -> MutexGuard<'_, Net> {
        self.net.lock().expect("fake-engage net mutex poisoned")
    }
}

pub(crate) struct RandomFaults {
    pub(crate) rng: SplitMix64,
    pub(crate) probability: f64,
    pub(crate) kinds: Vec<FaultKind>,
}

/// Network-side state: faults, latencies and the request log. Separate from
/// the data so seeding a million contacts does not stall the request log.
#[derive(Default)]
pub(crate) struct Net {
    pub(crate) faults: VecDeque<Fault>,
    pub(crate) random: Option<RandomFaults>,
    pub(crate) latencies: Vec<(Matcher, Duration)>,
    pub(crate) requests: Vec<RequestRecord>,
    recent: VecDeque<Instant>,
}

pub(crate) struct Decision {
    pub(crate) fault: Option<FaultKind>,
    pub(crate) latency: Duration,
    pub(crate) rate_limited: bool,
}

impl Net {
    pub(crate) fn decide(
        &mut self,
        cfg: &FakeConfig,
        method: &str,
        target: &str,
        at: Instant,
    ) -> Decision {
        let mut fault = None;
        if let Some(pos) = self
            .faults
            .iter()
            .position(|f| f.count > 0 && f.matcher.matches(method, target))
        {
            let f = &mut self.faults[pos];
            f.count -= 1;
            fault = Some(f.kind.clone());
            if f.count == 0 {
                self.faults.remove(pos);
            }
        } else if let Some(r) = self.random.as_mut() {
            if !r.kinds.is_empty() && r.rng.next_f64() < r.probability {
                let i = (r.rng.next_u64() % r.kinds.len() as u64) as usize;
                fault = Some(r.kinds[i].clone());
            }
        }
        let latency = self
            .latencies
            .iter()
            .filter(|(m, _)| m.matches(method, target))
            .map(|(_, d)| *d)
            .max()
            .unwrap_or_default();
        let mut rate_limited = false;
        if let Some(limit) = cfg.rate_limit_per_sec {
            while self
                .recent
                .front()
                .is_some_and(|t| at.duration_since(*t) >= Duration::from_secs(1))
            {
                self.recent.pop_front();
            }
            if self.recent.len() >= limit {
                rate_limited = true;
            } else {
                self.recent.push_back(at);
            }
        }
        Decision {
            fault,
            latency,
            rate_limited,
        }
    }
}

/// A parsed request.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) method: String,
    /// Path and query as sent.
    pub(crate) target: String,
    /// Percent-decoded path.
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
    /// Names in lower case.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) keep_alive: bool,
    /// When the request had been read whole: a receipt post counts as a repost only if it
    /// arrived after an earlier post's answer went out, not if it was applied later (a
    /// `Delay` fault applies a request after the client may have retried it).
    pub(crate) arrived: std::time::Instant,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A response to write.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}
