//! Per-provider rate limits: two token buckets per limit group, requests per minute and
//! tokens per minute (input + output). A call reserves one request and its estimated
//! tokens before it is sent and settles the difference once usage is known, so the
//! bucket may go into debt after a long answer and later calls wait it off.
//!
//! Reservation, not polling: `reserve` takes from the bucket at once and returns how long
//! the caller must sleep for the balance to be non-negative, so waiting callers queue in
//! order without a timer loop. Burst capacity is a tenth of a minute's allowance (at
//! least one unit), so a fresh run does not fire a whole minute's worth at once.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::study::Limit;

/// One token bucket.
#[derive(Debug)]
pub struct Bucket {
    per_sec: f64,
    capacity: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    /// A bucket refilled at `per_minute`, starting full.
    pub fn per_minute(per_minute: f64) -> Bucket {
        let capacity = (per_minute / 10.0).max(1.0);
        Bucket {
            per_sec: per_minute / 60.0,
            capacity,
            state: Mutex::new((capacity, Instant::now())),
        }
    }

    /// Take `n` units now; returns how long to wait before using them.
    pub fn reserve(&self, n: f64) -> Duration {
        let now = Instant::now();
        let Ok(mut st) = self.state.lock() else {
            return Duration::ZERO;
        };
        let (level, last) = *st;
        let level =
            (level + now.duration_since(last).as_secs_f64() * self.per_sec).min(self.capacity) - n;
        *st = (level, now);
        if level >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-level / self.per_sec)
        }
    }

    /// Give back (`delta` < 0) or take more (`delta` > 0) units after the fact.
    pub fn adjust(&self, delta: f64) {
        if let Ok(mut st) = self.state.lock() {
            st.0 = (st.0 - delta).min(self.capacity);
        }
    }
}

/// The requests and tokens buckets of one limit group.
#[derive(Debug, Default)]
pub struct Limiter {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
}

impl Limiter {
    /// A limiter for `limit` (unlimited dimensions are `None`).
    pub fn new(limit: Limit) -> Limiter {
        Limiter {
            requests: limit.rpm.map(Bucket::per_minute),
            tokens: limit.tpm.map(Bucket::per_minute),
        }
    }

    /// Wait until one request with `est_tokens` may be sent.
    pub async fn acquire(&self, est_tokens: u64) {
        let w1 = self
            .requests
            .as_ref()
            .map(|b| b.reserve(1.0))
            .unwrap_or_default();
        let w2 = self
            .tokens
            .as_ref()
            .map(|b| b.reserve(est_tokens as f64))
            .unwrap_or_default();
        let w = w1.max(w2);
        if !w.is_zero() {
            tokio::time::sleep(w).await;
        }
    }

    /// Settle the token estimate with the actual count.
    pub fn settle(&self, est_tokens: u64, actual_tokens: u64) {
        if let Some(b) = &self.tokens {
            b.adjust(actual_tokens as f64 - est_tokens as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_paces_after_the_burst() {
        let b = Bucket::per_minute(600.0); // 10 per second, burst 60
        for _ in 0..60 {
            assert_eq!(b.reserve(1.0), Duration::ZERO);
        }
        let w = b.reserve(1.0);
        assert!(
            w > Duration::from_millis(80) && w <= Duration::from_millis(101),
            "{w:?}"
        );
        let w = b.reserve(1.0);
        assert!(
            w > Duration::from_millis(180) && w <= Duration::from_millis(201),
            "{w:?}"
        );
    }

    #[test]
    fn settle_creates_debt() {
        let b = Bucket::per_minute(60.0); // 1 per second, capacity 6
        assert_eq!(b.reserve(6.0), Duration::ZERO);
        b.adjust(3.0);
        let w = b.reserve(0.0);
        assert!(w > Duration::from_millis(2900), "{w:?}");
    }
}
