//! Retry policy (PROTOCOL 2.7, case B06): exponential backoff (base, doubling, capped) with
//! upward jitter, never shorter than what the server asked for. The wait after the k-th
//! failure is `max(server delay, base * 2^(k-1) capped) + jitter`, jitter in
//! `[0, step/5)` drawn from a ChaCha stream seeded by the work key and attempt, so runs are
//! reproducible and concurrent retries of one cell do not fire in lock-step.
//!
//! What a failure class allows is decided here, not in the providers:
//! transient and rate-limited failures retry until the cell's attempt budget is spent;
//! deterministic outcomes (refusal, safety block, reasoning used up the budget) are re-asked
//! at most their own small budget; fatal errors stop the cell. A server-directed delay at
//! least `park_threshold` long parks the whole cell (other cells keep running); one longer
//! than `max_park` stops the cell for this run.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::study::Settings;
use crate::providers::RetryClass;

/// Backoff step after `failures` failures (1-based): base, 2 base, 4 base, ... capped.
pub fn backoff_step(base: Duration, cap: Duration, failures: u32) -> Duration {
    let shift = failures.saturating_sub(1).min(30);
    base.saturating_mul(1u32 << shift).min(cap)
}

/// Wait before the next attempt: `max(server, step) + jitter`, jitter in `[0, step/5)`.
pub fn wait_before_retry(
    settings: &Settings,
    failures: u32,
    server: Option<Duration>,
    seed: u64,
) -> Duration {
    let step = backoff_step(settings.backoff_base, settings.backoff_cap, failures);
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ settings.seed.rotate_left(17) ^ u64::from(failures));
    let jitter_max = step.as_secs_f64() / 5.0;
    let jitter = if jitter_max > 0.0 {
        Duration::from_secs_f64(rng.random_range(0.0..jitter_max))
    } else {
        Duration::ZERO
    };
    server.unwrap_or(Duration::ZERO).max(step) + jitter
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Sleep this long, then try again.
    Retry(Duration),
    /// Park the whole cell this long, then try again.
    ParkCell(Duration),
    /// This item is finished as invalid for this run.
    GiveUp,
    /// Stop the cell for this run (reported once).
    StopCell(String),
}

/// Decide after a failure. `attempts` = attempts made for the item in this run,
/// `same_reason` = how many of them failed deterministically with this same reason.
pub fn decide(
    settings: &Settings,
    class: &RetryClass,
    attempts: u32,
    max_attempts: u32,
    same_reason: u32,
    seed: u64,
) -> Decision {
    match class {
        RetryClass::Fatal => Decision::StopCell("fatal error".into()),
        RetryClass::Deterministic { reasks } => {
            if same_reason > *reasks || attempts >= max_attempts {
                Decision::GiveUp
            } else {
                Decision::Retry(wait_before_retry(settings, attempts, None, seed))
            }
        }
        RetryClass::Transient { after } | RetryClass::RateLimited { after } => {
            if let Some(a) = after {
                if *a > settings.max_park {
                    return Decision::StopCell(format!(
                        "server asked to wait {} s (more than max_park_s)",
                        a.as_secs()
                    ));
                }
            }
            if attempts >= max_attempts {
                return Decision::GiveUp;
            }
            let wait = wait_before_retry(settings, attempts, *after, seed);
            match after {
                Some(a) if *a >= settings.park_threshold => Decision::ParkCell(wait),
                _ => Decision::Retry(wait),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s() -> Settings {
        Settings::default()
    }

    #[test]
    fn published_schedule_without_jitter_is_1_2_4_8_16_32_32() {
        let steps: Vec<u64> = (1..=7)
            .map(|k| backoff_step(Duration::from_secs(1), Duration::from_secs(32), k).as_secs())
            .collect();
        assert_eq!(steps, vec![1, 2, 4, 8, 16, 32, 32]);
    }

    #[test]
    fn never_sooner_than_server_or_backoff() {
        for k in 1..7 {
            for seed in 0..50 {
                let w = wait_before_retry(&s(), k, Some(Duration::from_secs(30)), seed);
                assert!(w >= Duration::from_secs(30));
                let step = backoff_step(s().backoff_base, s().backoff_cap, k);
                let w = wait_before_retry(&s(), k, None, seed);
                assert!(w >= step && w < step + step / 5 + Duration::from_millis(1));
            }
        }
    }

    #[test]
    fn decisions() {
        let st = s();
        let t = RetryClass::Transient { after: None };
        assert!(matches!(decide(&st, &t, 1, 7, 0, 1), Decision::Retry(_)));
        assert_eq!(decide(&st, &t, 7, 7, 0, 1), Decision::GiveUp);
        let long = RetryClass::RateLimited {
            after: Some(Duration::from_secs(600)),
        };
        match decide(&st, &long, 1, 7, 0, 1) {
            Decision::ParkCell(w) => assert!(w >= Duration::from_secs(600)),
            d => panic!("{d:?}"),
        }
        let huge = RetryClass::RateLimited {
            after: Some(Duration::from_secs(86_400)),
        };
        assert!(matches!(
            decide(&st, &huge, 1, 7, 0, 1),
            Decision::StopCell(_)
        ));
        let refusal = RetryClass::Deterministic { reasks: 1 };
        assert!(matches!(
            decide(&st, &refusal, 1, 7, 1, 1),
            Decision::Retry(_)
        ));
        assert_eq!(decide(&st, &refusal, 2, 7, 2, 1), Decision::GiveUp);
        assert_eq!(
            decide(&st, &RetryClass::Deterministic { reasks: 0 }, 1, 7, 1, 1),
            Decision::GiveUp
        );
        assert!(matches!(
            decide(&st, &RetryClass::Fatal, 1, 7, 0, 1),
            Decision::StopCell(_)
        ));
    }
}
