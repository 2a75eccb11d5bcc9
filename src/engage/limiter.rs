//! Client-side rate limit, shared by every request of the client: request starts spaced
//! evenly, and never more than the limit's worth of starts in any trailing window.
//!
//! Why not a general token-bucket crate (e.g. `governor`): with a burst of one, a token bucket
//! is exactly "the next request may start one period after the previous slot", which is a
//! mutex and an `Instant`; this version also refuses a slot past the run's deadline without
//! waiting for it, and keeps the trailing-window count below, which a general limiter does not
//! offer.
//!
//! Two rules, both needed:
//! 1. **Spacing.** Slots are handed out `(1 s + SLACK) / rate` apart, so requests flow evenly
//!    with no burst (Engage asks clients to stay below 50 requests/s in normal operation).
//! 2. **Trailing window.** A request whose slot has come starts only if fewer than `⌊rate⌋`
//!    requests *actually started* in the trailing `1 s + SLACK`; otherwise it waits until the
//!    oldest of them leaves the window. The start is stamped when the waiter really wakes (after
//!    its sleep, under the lock), not when its slot was reserved. Spacing alone bounds slots,
//!    not starts: a waiter woken late (a busy core, a thread descheduled, as seen with receipts
//!    posted from eight threads) started after its slot, the next ones on time, and Engage saw
//!    52 requests in one second at a limit of 50 (the push benchmark, 100,000 receipts). With
//!    the window rule, any `⌊rate⌋ + 1` starts span at least `1 s + SLACK`, however late some
//!    of them ran.
//!
//! What remains is jitter after the start (sending, the network, the server reading): up to
//! [`SLACK`] of it is absorbed, since `⌊rate⌋ + 1` arrivals then still span more than a second.
//! The slack costs 5 % of throughput (rate / (1 + SLACK)); measured on this 2-core machine.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Jitter absorbed per one-second window (see the module doc).
pub const SLACK: Duration = Duration::from_millis(50);

/// Hands out request starts.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    period: Duration,
    /// The trailing window (1 s + SLACK) and the starts it may hold.
    window: Duration,
    per_window: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The earliest start of the next slot; `None` before the first request, so the first
    /// request starts at once and there is never a burst.
    next: Option<Instant>,
    /// Starts within the trailing window, oldest first (at most `per_window`).
    starts: VecDeque<Instant>,
}

/// The next slot lies after the deadline.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PastDeadline;

impl RateLimiter {
    /// `per_sec` must be positive and finite (checked when the client is built).
    pub(crate) fn new(per_sec: f64) -> RateLimiter {
        let window = Duration::from_secs(1) + SLACK;
        RateLimiter {
            period: window.div_f64(per_sec),
            window,
            // A fractional rate rounds down (49.5/s may start 49 in a window); below 1/s the
            // spacing alone keeps it, as a window then never holds two.
            per_window: (per_sec.floor() as usize).max(1),
            state: Mutex::new(State::default()),
        }
    }

    /// Time between two request starts.
    #[cfg(test)]
    pub(crate) fn period(&self) -> Duration {
        self.period
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked between plain assignments; the
        // stored instants are still valid, so keep using them.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves the next slot, or refuses (reserving nothing) when it lies after `deadline`.
    fn reserve(&self, now: Instant, deadline: Option<Instant>) -> Result<Instant, PastDeadline> {
        let mut st = self.state();
        let slot = st.next.map_or(now, |n| n.max(now));
        if deadline.is_some_and(|d| slot >= d) {
            return Err(PastDeadline);
        }
        st.next = Some(slot + self.period);
        Ok(slot)
    }

    /// Stamps a start at `now` if the trailing window has room; otherwise returns when it
    /// will have.
    fn try_start(&self, now: Instant) -> Result<(), Instant> {
        let mut st = self.state();
        while st
            .starts
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            st.starts.pop_front();
        }
        if st.starts.len() < self.per_window {
            st.starts.push_back(now);
            return Ok(());
        }
        // Full: the oldest start leaves the window at `oldest + window`.
        Err(st.starts[0] + self.window)
    }

    /// Waits for this request's slot, then for room in the trailing window, and stamps the
    /// start. Refuses when either wait would end past `deadline`.
    pub(crate) async fn acquire(&self, deadline: Option<Instant>) -> Result<(), PastDeadline> {
        let slot = self.reserve(Instant::now(), deadline)?;
        tokio::time::sleep_until(tokio::time::Instant::from_std(slot)).await;
        loop {
            match self.try_start(Instant::now()) {
                Ok(()) => return Ok(()),
                Err(room) if deadline.is_some_and(|d| room >= d) => return Err(PastDeadline),
                Err(room) => tokio::time::sleep_until(tokio::time::Instant::from_std(room)).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_evenly_spaced_without_a_first_burst() {
        let l = RateLimiter::new(50.0);
        assert_eq!(l.period(), Duration::from_micros(21_000));
        let t0 = Instant::now();
        let slots: Vec<Instant> = (0..5)
            .map(|_| l.reserve(t0, None).expect("no deadline"))
            .collect();
        assert_eq!(slots[0], t0);
        for w in slots.windows(2) {
            assert_eq!(w[1] - w[0], l.period());
        }
        // After an idle gap the next request starts at once, but still no burst follows.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(l.reserve(later, None), Ok(later));
        assert_eq!(l.reserve(later, None), Ok(later + l.period()));
    }

    #[test]
    fn a_slot_past_the_deadline_is_refused_and_not_reserved() {
        let l = RateLimiter::new(1.0);
        let t0 = Instant::now();
        let deadline = Some(t0 + Duration::from_millis(500));
        assert!(l.reserve(t0, deadline).is_ok());
        assert_eq!(l.reserve(t0, deadline), Err(PastDeadline));
        assert_eq!(l.reserve(t0, None), Ok(t0 + l.period()));
    }

    #[test]
    fn late_starts_cannot_crowd_a_window() {
        // 5/s: slots 210 ms apart. Five waiters woke late, all at t0 + 1 s (a stalled thread
        // pool), so they start together; the next, on time for its slot, must wait until the
        // first of them is a whole window old.
        let l = RateLimiter::new(5.0);
        let t0 = Instant::now();
        let late = t0 + Duration::from_secs(1);
        for _ in 0..5 {
            assert_eq!(l.try_start(late), Ok(()));
        }
        assert_eq!(l.try_start(late), Err(late + l.window));
        assert_eq!(
            l.try_start(late + l.window - Duration::from_millis(1)),
            Err(late + l.window)
        );
        assert_eq!(l.try_start(late + l.window), Ok(()));
    }

    #[test]
    fn any_rate_plus_one_starts_span_the_window() {
        // Starts stamped at random late times: however they fall, no window holds more than
        // the rate.
        let l = RateLimiter::new(10.0);
        let mut rng = fastrand::Rng::with_seed(7);
        let t0 = Instant::now();
        let mut now = t0;
        let mut starts = Vec::new();
        for _ in 0..500 {
            now += Duration::from_millis(rng.u64(0..150));
            match l.try_start(now) {
                Ok(()) => starts.push(now),
                Err(room) => {
                    assert!(room > now);
                    now = room;
                    assert_eq!(l.try_start(now), Ok(()));
                    starts.push(now);
                }
            }
        }
        for w in starts.windows(11) {
            assert!(
                w[10] - w[0] >= l.window,
                "11 starts within {:?}",
                w[10] - w[0]
            );
        }
    }

    #[test]
    fn a_full_window_past_the_deadline_is_refused_at_once() {
        let l = RateLimiter::new(2.0);
        let t0 = Instant::now();
        assert_eq!(l.try_start(t0), Ok(()));
        assert_eq!(l.try_start(t0), Ok(()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        // A slot is free now, but the window holds two starts until t0 + 1.05 s.
        let deadline = Some(t0 + Duration::from_millis(300));
        assert_eq!(rt.block_on(l.acquire(deadline)), Err(PastDeadline));
        assert!(
            t0.elapsed() < Duration::from_millis(250),
            "refused without waiting"
        );
    }
}
