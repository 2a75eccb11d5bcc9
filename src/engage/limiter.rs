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
//!    requests *actually started* within `1 s + SLACK` of now; otherwise it waits until the
//!    oldest of them is that old. The start is stamped when the waiter really wakes (after its
//!    sleep, under the lock; lateness up to `WAKE_TOLERANCE`, 2 ms of timer granularity, is
//!    forgiven), not when its slot was reserved. Spacing alone bounds slots, not starts: a
//!    waiter woken late (a busy core, a descheduled thread, as with receipts posted from eight
//!    threads) started after its slot while the next ones started on time, and Engage saw 52
//!    requests in one second at a limit of 50 (the push benchmark, 100,000 receipts). With the
//!    window rule, any `⌊rate⌋ + 1` starts span at least `1 s + SLACK - 2 ms`, however late
//!    some of them ran.
//!
//! What remains is jitter after the start (sending, the network, the server reading): up to
//! 48 ms of it is absorbed, since `⌊rate⌋ + 1` arrivals then still span more than a second.
//! Measured at the fake on this 2-core machine, it used up to 41 ms (`full` from the API,
//! 10,000 GETs). The slack costs 5 % of throughput: at most `rate / (1 + SLACK)`, 47.6/s for 50.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Jitter absorbed per one-second window (see the module doc).
pub const SLACK: Duration = Duration::from_millis(50);

/// Timer wake-ups come a little late (tokio's timer ticks in whole milliseconds, then the task
/// must be scheduled). A start at most this late for the time it was allowed is stamped at that
/// time: stamped as it happened, the lateness would delay the request a window later, and the
/// next, adding up to about 0.2 % of throughput. Later starts (a stalled thread) are stamped as
/// they happened. It comes out of [`SLACK`]: any `⌊rate⌋ + 1` starts span at least
/// `1 s + SLACK - WAKE_TOLERANCE`.
const WAKE_TOLERANCE: Duration = Duration::from_millis(2);

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

    /// Stamps a start at `stamp` if fewer than `per_window` stamps lie within a window of it
    /// (before or after: stamps may arrive up to [`WAKE_TOLERANCE`] out of order); otherwise
    /// returns the earliest stamp that would have room. Invariant: any `per_window + 1` stamps
    /// span at least `window`.
    fn try_start(&self, stamp: Instant) -> Result<(), Instant> {
        let mut st = self.state();
        // Stamps no later stamp can be within a window of (kept sorted, oldest first).
        while st
            .starts
            .front()
            .is_some_and(|t| stamp.saturating_duration_since(*t) >= self.window + WAKE_TOLERANCE)
        {
            st.starts.pop_front();
        }
        let first_live = st
            .starts
            .partition_point(|t| stamp.saturating_duration_since(*t) >= self.window);
        let live = st.starts.len() - first_live;
        if live < self.per_window {
            let at = st.starts.partition_point(|t| *t <= stamp);
            st.starts.insert(at, stamp);
            return Ok(());
        }
        // Room comes when enough of the live stamps are a whole window old.
        Err(st.starts[first_live + live - self.per_window] + self.window)
    }

    /// Waits for this request's slot, then for room in the trailing window, and stamps the
    /// start. Refuses when either wait would end past `deadline`.
    pub(crate) async fn acquire(&self, deadline: Option<Instant>) -> Result<(), PastDeadline> {
        let mut allowed = self.reserve(Instant::now(), deadline)?;
        loop {
            // Timers never fire early, so `allowed <= now` after the sleep.
            tokio::time::sleep_until(tokio::time::Instant::from_std(allowed)).await;
            let now = Instant::now();
            let stamp = allowed.max(now.checked_sub(WAKE_TOLERANCE).unwrap_or(now));
            match self.try_start(stamp) {
                Ok(()) => return Ok(()),
                Err(room) if deadline.is_some_and(|d| room >= d) => return Err(PastDeadline),
                Err(room) => allowed = room,
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
    fn room_comes_when_the_oldest_live_start_is_a_window_old() {
        // 2/s with starts 100 ms apart: the third waits for the first, not the second.
        let l = RateLimiter::new(2.0);
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(l.try_start(t0), Ok(()));
        assert_eq!(l.try_start(t1), Ok(()));
        assert_eq!(
            l.try_start(t1 + Duration::from_millis(100)),
            Err(t0 + l.window)
        );
    }

    #[test]
    fn any_rate_plus_one_starts_span_the_window() {
        // Stamps at random times, each up to the wake tolerance behind a clock that only moves
        // forward (as `acquire` makes them): no window ever holds more than the rate.
        let l = RateLimiter::new(10.0);
        let mut rng = fastrand::Rng::with_seed(7);
        let mut clock = Instant::now() + Duration::from_secs(1);
        let mut starts = Vec::new();
        for _ in 0..2000 {
            clock += Duration::from_micros(rng.u64(0..150_000));
            let mut stamp = clock - Duration::from_micros(rng.u64(0..=2000));
            loop {
                match l.try_start(stamp) {
                    Ok(()) => break,
                    Err(room) => {
                        assert!(room > stamp);
                        clock = clock.max(room);
                        stamp = room;
                    }
                }
            }
            starts.push(stamp);
        }
        starts.sort_unstable();
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
