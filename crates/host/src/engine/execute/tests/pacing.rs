//! Adaptive pacing against a vendor of fixed capacity.

use super::*;

/// A vendor that works on `capacity` requests at once, each taking `latency`, and
/// refuses any request above that at once with 429 (no `Retry-After`).
struct Capacity {
    capacity: usize,
    latency: Duration,
    in_flight: std::sync::atomic::AtomicUsize,
    peak: std::sync::atomic::AtomicUsize,
    requests: std::sync::atomic::AtomicUsize,
    refused: std::sync::atomic::AtomicUsize,
}

impl Capacity {
    fn new(capacity: usize, latency: Duration) -> Capacity {
        Capacity {
            capacity,
            latency,
            in_flight: 0.into(),
            peak: 0.into(),
            requests: 0.into(),
            refused: 0.into(),
        }
    }
}

#[async_trait]
impl Connector for Capacity {
    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        Ok(CheckReport::default())
    }

    async fn reset(&self, request: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.requests.fetch_add(1, SeqCst);
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.peak.fetch_max(now, SeqCst);
        let result = if now > self.capacity {
            self.refused.fetch_add(1, SeqCst);
            Err(ConnectorError::new(
                ErrorKind::RateLimited,
                "429 Too Many Requests",
            ))
        } else {
            tokio::time::sleep(self.latency).await;
            Ok(request
                .items
                .into_iter()
                .map(|item| UserOutcome {
                    user: item.user,
                    result: Ok(rekey_api::Applied::default()),
                })
                .collect())
        };
        self.in_flight.fetch_sub(1, SeqCst);
        result
    }
}

#[tokio::test(start_paused = true)]
async fn adaptive_pacing_finds_the_vendors_capacity() {
    use std::sync::atomic::Ordering::SeqCst;
    let vendor = Capacity::new(12, Duration::from_millis(40));
    let store = MemoryStore::with_users(users(600));
    let mut spec = spec();
    spec.retry = RetryPolicy::default();
    spec.pacing = Pacing::Adaptive(crate::engine::AdaptiveSettings {
        max: 64,
        rate: None,
    });
    let started = tokio::time::Instant::now();
    let (summary, _) = run_job(&vendor, &store, &spec, &StopSignal::default()).await;
    let elapsed = started.elapsed();
    assert_eq!((summary.reset, summary.failed), (600, 0));
    let (requests, refused) = (vendor.requests.load(SeqCst), vendor.refused.load(SeqCst));
    assert!(
        refused * 100 <= requests * 5,
        "{refused} of {requests} requests refused"
    );
    // The best fixed setting, 12, takes 600 × 40 ms / 12 = 2 s.
    assert!(
        elapsed <= Duration::from_millis(2600),
        "{elapsed:?} (peak {} in flight)",
        vendor.peak.load(SeqCst)
    );

    // A fixed setting is what it always was: that many in flight, refused or not.
    let vendor = Capacity::new(12, Duration::from_millis(40));
    let store = MemoryStore::with_users(users(100));
    spec.pacing = Pacing::Fixed(4);
    run_job(&vendor, &store, &spec, &StopSignal::default()).await;
    assert_eq!(vendor.peak.load(SeqCst), 4);
    assert_eq!(vendor.refused.load(SeqCst), 0);
}
