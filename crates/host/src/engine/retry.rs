//! Retries of passing failures: exponential backoff with jitter, honouring the
//! target's `Retry-After`, within a budget measured in time.

use std::time::{Duration, Instant};

use rand::RngExt as _;
use rekey_api::ConnectorError;

/// How passing failures are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// How long one batch may keep retrying before the job stops as "target
    /// unreachable".
    pub budget: Duration,
    /// The pause before the first retry.
    pub first_pause: Duration,
    /// The longest pause between retries.
    pub max_pause: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            budget: Duration::from_secs(300),
            first_pause: Duration::from_millis(250),
            max_pause: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `attempt` (1 for the first): exponential, with
    /// jitter over its upper half so that workers do not retry in step, and never
    /// shorter than what the target asked for.
    pub fn pause(&self, attempt: u32, asked: Option<Duration>) -> Duration {
        let exponential = self
            .first_pause
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(16)))
            .min(self.max_pause);
        let half = exponential / 2;
        let jittered = half
            + exponential
                .saturating_sub(half)
                .mul_f64(rand::rng().random_range(0.0..=1.0));
        jittered.max(asked.unwrap_or(Duration::ZERO))
    }
}

/// Runs `call` until it succeeds, fails definitely, or the budget is spent,
/// pausing between passing failures.
pub async fn retrying<T, F, Fut>(policy: &RetryPolicy, mut call: F) -> Result<T, ConnectorError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ConnectorError>>,
{
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        match call().await {
            Err(error) if error.kind.is_retryable() => {
                attempt += 1;
                let pause = policy.pause(attempt, error.retry_after());
                if started.elapsed() + pause > policy.budget {
                    return Err(error);
                }
                tracing::debug!(
                    pause_ms = pause.as_millis() as u64,
                    "retrying after a passing failure: {error}"
                );
                tokio::time::sleep(pause).await;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_with_jitter_and_honour_retry_after() {
        let policy = RetryPolicy::default();
        for attempt in 1..=20 {
            let pause = policy.pause(attempt, None);
            let full = policy
                .first_pause
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(policy.max_pause);
            assert!(
                pause >= full / 2 && pause <= full,
                "attempt {attempt}: {pause:?}"
            );
        }
        assert_eq!(
            policy.pause(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert!(policy.pause(30, None) <= policy.max_pause);
    }

    #[tokio::test]
    async fn retrying_stops_at_a_definite_answer_or_the_budget() {
        let policy = RetryPolicy {
            budget: Duration::from_millis(100),
            first_pause: Duration::from_millis(1),
            max_pause: Duration::from_millis(10),
        };
        let mut calls = 0;
        let result: Result<(), _> = retrying(&policy, || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(ConnectorError::transient("503"))
                } else {
                    Err(ConnectorError::user_not_found("gone"))
                }
            }
        })
        .await;
        assert_eq!(result.unwrap_err().kind, rekey_api::ErrorKind::UserNotFound);
        assert_eq!(calls, 3);
        let result: Result<(), _> =
            retrying(&policy, || async { Err(ConnectorError::transient("503")) }).await;
        assert_eq!(result.unwrap_err().kind, rekey_api::ErrorKind::Transient);
    }
}
