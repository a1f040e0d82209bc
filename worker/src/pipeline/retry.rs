//! In-process retries of short blips: exponential backoff with jitter
//! (`backon`), honouring the remote side's `Retry-After` (and HubSpot's
//! rate-limit policy, whose wait `shared::hubspot` turns into one). Waits
//! longer than [`ShortRetry::max_wait`] are not slept on: the failure goes
//! back to the caller, and the message to the delay-queue ladder.

use std::{future::Future, time::Duration};

use backon::{ExponentialBuilder, Retryable};
use domain::failure::Failure;
use shared::config::Settings;

/// The in-process retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortRetry {
    /// Retries after the first try (0: none).
    pub attempts: u32,
    /// First delay; doubles each time, with jitter.
    pub base: Duration,
    /// Longest single wait slept on in process.
    pub max_wait: Duration,
}

impl ShortRetry {
    /// The policy of the settings (`CONNECTOR_RETRY_INPROCESS_*`).
    pub fn from_settings(s: &Settings) -> Self {
        Self {
            attempts: s.retry_inprocess_attempts,
            base: Duration::from_millis(s.retry_inprocess_base_ms),
            max_wait: Duration::from_millis(s.retry_inprocess_max_wait_ms),
        }
    }

    /// Runs `op`, retrying transient failures whose wait fits in process.
    pub async fn run<T, F, Fut>(&self, what: &'static str, op: F) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        if self.attempts == 0 {
            let mut op = op;
            return op().await;
        }
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.base)
            .with_max_delay(self.max_wait)
            .with_max_times(self.attempts as usize)
            .with_jitter();
        let max_wait = self.max_wait;
        op.retry(backoff)
            .when(|f: &Failure| retryable(f, max_wait))
            .adjust(move |f: &Failure, planned| wait(f, planned, max_wait))
            .notify(|f: &Failure, after: Duration| {
                metrics::counter!("worker_inprocess_retries_total", "reason" => f.reason.as_str())
                    .increment(1);
                tracing::debug!(what, reason = f.reason.as_str(), retry_in = ?after, "transient failure; retrying in process");
            })
            .await
    }
}

/// True when a failure may be retried in process: transient, and the remote
/// side did not ask for a longer wait than we sleep on.
pub fn retryable(f: &Failure, max_wait: Duration) -> bool {
    f.is_transient() && f.retry_after.is_none_or(|w| w <= max_wait)
}

/// The wait before the next try: the backoff's, or the remote side's
/// `Retry-After` when longer; `None` (stop) once it exceeds `max_wait`.
pub fn wait(f: &Failure, planned: Option<Duration>, max_wait: Duration) -> Option<Duration> {
    let planned = planned?;
    let wanted = f.retry_after.map_or(planned, |ra| ra.max(planned));
    (wanted <= max_wait).then_some(wanted)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use domain::failure::FailureReason;

    use super::*;

    fn policy() -> ShortRetry {
        ShortRetry {
            attempts: 3,
            base: Duration::from_millis(1),
            max_wait: Duration::from_millis(50),
        }
    }

    #[tokio::test]
    async fn transient_blips_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let r = policy()
            .run("test", || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(Failure::transient(FailureReason::ImpactUnavailable, "503"))
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(r, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn permanent_failures_and_long_waits_are_not_retried_in_process() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = policy()
            .run("test", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Failure::permanent(FailureReason::ImpactRejected, "400"))
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let daily = Failure {
            retry_after: Some(Duration::from_secs(3600)),
            ..Failure::transient(FailureReason::HubspotRateLimited, "DAILY")
        };
        assert!(!retryable(&daily, Duration::from_secs(2)));
        assert_eq!(
            wait(
                &daily,
                Some(Duration::from_millis(1)),
                Duration::from_secs(2)
            ),
            None
        );
    }

    #[test]
    fn retry_after_lengthens_the_backoff() {
        let f = Failure {
            retry_after: Some(Duration::from_millis(30)),
            ..Failure::transient(FailureReason::ImpactRateLimited, "429")
        };
        let max = Duration::from_millis(50);
        assert_eq!(
            wait(&f, Some(Duration::from_millis(5)), max),
            Some(Duration::from_millis(30))
        );
        assert_eq!(wait(&f, None, max), None);
        let plain = Failure::transient(FailureReason::ImpactUnavailable, "503");
        assert_eq!(
            wait(&plain, Some(Duration::from_millis(5)), max),
            Some(Duration::from_millis(5))
        );
    }
}
