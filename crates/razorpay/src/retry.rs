//! Exponential backoff with jitter, bounded in attempts and in total time.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included. 1 disables retries.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// No retry starts once this much time has passed since the first attempt.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
            max_elapsed: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The pause before retry number `retry` (1 for the first retry): doubling from
    /// `initial_backoff`, capped, with ±25 % jitter so that many clients don't retry in step.
    /// A server's Retry-After wins when it is longer.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.max_backoff);
        let millis = exp.as_millis() as u64;
        let spread = millis / 2; // the full width of ±25 %
        let jittered = if spread == 0 {
            millis
        } else {
            millis - spread / 2 + getrandom::u64().unwrap_or(0) % (spread + 1)
        };
        let delay = Duration::from_millis(jittered);
        match retry_after {
            Some(server) if server > delay => server.min(self.max_backoff.max(delay)),
            _ => delay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_stay_within_jitter_and_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1_000),
            max_elapsed: Duration::from_secs(10),
        };
        for _ in 0..200 {
            let d1 = policy.delay(1, None).as_millis();
            let d2 = policy.delay(2, None).as_millis();
            let d9 = policy.delay(9, None).as_millis();
            assert!((75..=125).contains(&d1), "{d1}");
            assert!((150..=250).contains(&d2), "{d2}");
            assert!((750..=1_250).contains(&d9), "{d9}");
        }
        let server = policy.delay(1, Some(Duration::from_millis(900)));
        assert_eq!(server, Duration::from_millis(900));
    }
}
