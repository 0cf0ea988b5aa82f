//! Rate limits per caller (client.md §6.6 "Rate limits"): a token bucket per `sub`
//! ([`RATE_PER_SEC`] per second, [`BURST`] at most) for every call, and at most
//! [`TOPUPS_PER_WINDOW`] top-up requests per [`TOPUP_WINDOW_SECS`] per `sub`.
//!
//! No I/O and no clock: the time is an argument, in milliseconds, and integer arithmetic in
//! thousandths of a bucket token keeps the refill exact.

use std::collections::{HashMap, VecDeque};

use crate::proposals::{BURST, RATE_PER_SEC, TOPUP_WINDOW_SECS, TOPUPS_PER_WINDOW};

/// One bucket token, in the thousandths the buckets count.
const UNIT: u64 = 1000;

/// How many callers are kept before idle ones are forgotten.
const PRUNE_AT: usize = 1024;

/// A refusal: try again in `retry_after_secs` seconds (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many requests; retry after {retry_after_secs} s")]
#[non_exhaustive]
pub struct Limited {
    /// When a call would be taken again, whole seconds rounded up.
    pub retry_after_secs: u64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Thousandths of a token.
    level: u64,
    /// When `level` was last brought up to date, ms.
    at_ms: u64,
}

impl Bucket {
    fn full(now_ms: u64) -> Self {
        Self {
            level: BURST * UNIT,
            at_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        // A clock that steps back adds nothing and takes nothing.
        let elapsed = now_ms.saturating_sub(self.at_ms);
        // RATE_PER_SEC tokens per 1000 ms = RATE_PER_SEC thousandths per ms.
        self.level = self
            .level
            .saturating_add(elapsed.saturating_mul(RATE_PER_SEC))
            .min(BURST * UNIT);
        self.at_ms = self.at_ms.max(now_ms);
    }
}

/// The limits of every caller.
#[derive(Debug, Clone, Default)]
pub struct RateLimiter {
    buckets: HashMap<String, Bucket>,
    topups: HashMap<String, VecDeque<u64>>,
}

impl RateLimiter {
    /// No caller seen yet: every bucket starts full.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one call of `sub` at `now_ms` from its bucket, or says when to retry.
    pub fn call(&mut self, sub: &str, now_ms: u64) -> Result<(), Limited> {
        if self.buckets.len() >= PRUNE_AT && !self.buckets.contains_key(sub) {
            self.prune(now_ms);
        }
        let bucket = self
            .buckets
            .entry(sub.to_string())
            .or_insert_with(|| Bucket::full(now_ms));
        bucket.refill(now_ms);
        if bucket.level >= UNIT {
            bucket.level -= UNIT;
            Ok(())
        } else {
            let missing_ms = (UNIT - bucket.level).div_ceil(RATE_PER_SEC);
            Err(Limited {
                retry_after_secs: missing_ms.div_ceil(1000).max(1),
            })
        }
    }

    /// Counts one top-up request of `sub` at `now_ms` against its hourly allowance, or says
    /// when the oldest one leaves the window. A refused request is not counted.
    pub fn topup(&mut self, sub: &str, now_ms: u64) -> Result<(), Limited> {
        let window_ms = TOPUP_WINDOW_SECS * 1000;
        let times = self.topups.entry(sub.to_string()).or_default();
        while times
            .front()
            .is_some_and(|&t| now_ms.saturating_sub(t) >= window_ms)
        {
            times.pop_front();
        }
        if times.len() < TOPUPS_PER_WINDOW {
            times.push_back(now_ms);
            return Ok(());
        }
        let oldest = times.front().copied().unwrap_or(now_ms);
        let free_at = oldest.saturating_add(window_ms);
        Err(Limited {
            retry_after_secs: free_at.saturating_sub(now_ms).div_ceil(1000).max(1),
        })
    }

    /// Forgets callers whose bucket is full again and who have no top-up in the window: they
    /// would start from the same state.
    pub fn prune(&mut self, now_ms: u64) {
        self.buckets.retain(|_, bucket| {
            bucket.refill(now_ms);
            bucket.level < BURST * UNIT
        });
        let window_ms = TOPUP_WINDOW_SECS * 1000;
        self.topups.retain(|_, times| {
            times
                .back()
                .is_some_and(|&t| now_ms.saturating_sub(t) < window_ms)
        });
    }

    /// The number of callers with a bucket kept.
    pub fn callers(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_ten_then_five_per_second() {
        let mut limiter = RateLimiter::new();
        let t0 = 1_000_000;
        for i in 0..BURST {
            assert_eq!(limiter.call("app", t0), Ok(()), "call {i}");
        }
        assert_eq!(
            limiter.call("app", t0),
            Err(Limited {
                retry_after_secs: 1
            })
        );
        // 200 ms gives back exactly one token at 5/s.
        assert_eq!(
            limiter.call("app", t0 + 199),
            Err(Limited {
                retry_after_secs: 1
            })
        );
        assert_eq!(limiter.call("app", t0 + 200), Ok(()));
        assert!(limiter.call("app", t0 + 200).is_err());
        // From an empty bucket, calls every 10 ms for 10 s get exactly 5·10 through.
        let mut taken = 0;
        for ms in (10..=10_000).step_by(10) {
            if limiter.call("app", t0 + 200 + ms).is_ok() {
                taken += 1;
            }
        }
        assert_eq!(taken, 50);
    }

    #[test]
    fn callers_have_buckets_of_their_own() {
        let mut limiter = RateLimiter::new();
        for _ in 0..BURST {
            limiter.call("a", 0).unwrap();
        }
        assert!(limiter.call("a", 0).is_err());
        assert_eq!(limiter.call("b", 0), Ok(()));
    }

    #[test]
    fn three_top_ups_per_hour_in_a_sliding_window() {
        let mut limiter = RateLimiter::new();
        let hour = TOPUP_WINDOW_SECS * 1000;
        for t in [0, 10_000, 20_000] {
            assert_eq!(limiter.topup("app", t), Ok(()));
        }
        assert_eq!(
            limiter.topup("app", 30_000),
            Err(Limited {
                retry_after_secs: (hour - 30_000) / 1000
            })
        );
        assert_eq!(limiter.topup("other", 30_000), Ok(()));
        // The first leaves the window at exactly one hour.
        assert!(limiter.topup("app", hour - 1).is_err());
        assert_eq!(limiter.topup("app", hour), Ok(()));
        assert!(limiter.topup("app", hour + 1).is_err());
    }

    #[test]
    fn a_clock_stepping_back_gives_nothing() {
        let mut limiter = RateLimiter::new();
        for _ in 0..BURST {
            limiter.call("app", 50_000).unwrap();
        }
        assert!(limiter.call("app", 0).is_err());
        assert!(limiter.call("app", 50_000).is_err());
        assert_eq!(limiter.call("app", 50_200), Ok(()));
    }

    #[test]
    fn idle_callers_are_pruned() {
        let mut limiter = RateLimiter::new();
        limiter.call("a", 0).unwrap();
        limiter.call("b", 1_000).unwrap();
        limiter.prune(1_100);
        // "a" refilled by then, "b" is still 0.5 token short.
        assert_eq!(limiter.callers(), 1);
    }
}
