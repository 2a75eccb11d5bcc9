//! When to try again: exponential backoff with full jitter, and `Retry-After`.
//!
//! Full jitter (a uniform wait between zero and the exponential ceiling) spreads the retries
//! of concurrent requests apart, so a struggling Engage is not hit by a synchronised wave.
//! Engage's retry policy asks clients to back off in rising steps (docs/engage-api.md §7); the
//! defaults (1 s doubling to a 60 s cap, 6 retries) wait about a minute in all at worst, which
//! suits a cron job that runs again later anyway.

use std::time::{Duration, SystemTime};

/// Retry settings of one client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Retries after the first attempt.
    pub(crate) max_retries: u32,
    /// The first ceiling; it doubles with each retry.
    pub(crate) base: Duration,
    /// The largest ceiling, and the most a `Retry-After` is honoured.
    pub(crate) cap: Duration,
}

impl RetryPolicy {
    /// The ceiling before retry number `retry` (1-based): `min(cap, base * 2^(retry-1))`.
    pub(crate) fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32 << retry.saturating_sub(1).min(30);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// How long to wait before retry number `retry`: what Engage asked for (capped), else a
    /// uniform draw in `[0, ceiling]`.
    pub(crate) fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(asked) = retry_after {
            return asked.min(self.cap);
        }
        let ceiling = u64::try_from(self.ceiling(retry).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=ceiling))
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP-date (RFC 9110 §10.2.3). A date in
/// the past means "now". Anything else is ignored (`None`), and the normal backoff applies.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is RFC 2822 syntax with the GMT zone.
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let when = SystemTime::from(when);
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 6,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        }
    }

    #[test]
    fn ceilings_double_up_to_the_cap_and_draws_stay_below() {
        let p = policy();
        let secs: Vec<u64> = (1..=8).map(|r| p.ceiling(r).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(p.ceiling(500), p.cap);
        for r in 1..=8 {
            assert!(p.delay(r, None) <= p.ceiling(r));
        }
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let p = policy();
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(p.delay(1, Some(Duration::from_secs(3600))), p.cap);
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_770); // 08:49:30 GMT
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }
}
