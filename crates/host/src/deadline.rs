//! A bound on every call into a connector, so that a wedged connector cannot hang
//! rekey: past its deadline a call is cancelled and fails as a passing failure
//! whose outcome is unknown (a reset's password is kept and retried).

use std::time::Duration;

use async_trait::async_trait;
use rekey_api::{
    Batching, CheckReport, Connector, ConnectorError, CredentialKind, ResetRequest, Secret,
    UserOutcome, UserPage,
};

/// The deadline of a call when the connector declares no `timeout` setting.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The deadline of one call, from the time one request to the vendor may take: a
/// call may log in again, retry once after a refused token, or split a batch, so
/// it gets three requests' time and a margin.
pub fn call_deadline(request_timeout: Duration) -> Duration {
    request_timeout.saturating_mul(3) + Duration::from_secs(5)
}

/// A connector whose calls each end by a deadline.
pub struct WithDeadline<C> {
    inner: C,
    deadline: Duration,
}

impl<C: Connector> WithDeadline<C> {
    /// Bounds every call of `inner` by `deadline`.
    pub fn new(inner: C, deadline: Duration) -> Self {
        WithDeadline { inner, deadline }
    }

    async fn bounded<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, ConnectorError>>,
    ) -> Result<T, ConnectorError> {
        match tokio::time::timeout(self.deadline, call).await {
            Ok(result) => result,
            Err(_) => Err(ConnectorError::transient(format!(
                "the connector did not finish {what} within {} s; the call was cancelled",
                self.deadline.as_secs()
            ))),
        }
    }
}

#[async_trait]
impl<C: Connector> Connector for WithDeadline<C> {
    fn batching(&self) -> Batching {
        self.inner.batching()
    }

    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        self.bounded("authenticating", self.inner.check()).await
    }

    async fn list_users(&self, cursor: Option<String>) -> Result<UserPage, ConnectorError> {
        self.bounded("listing users", self.inner.list_users(cursor))
            .await
    }

    async fn generate(
        &self,
        kind: CredentialKind,
        count: usize,
    ) -> Result<Vec<Secret>, ConnectorError> {
        self.bounded("making new values", self.inner.generate(kind, count))
            .await
    }

    async fn reset(&self, request: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
        self.bounded("a reset", self.inner.reset(request)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Wedged;

    #[async_trait]
    impl Connector for Wedged {
        async fn check(&self) -> Result<CheckReport, ConnectorError> {
            std::future::pending().await
        }

        async fn reset(&self, _: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
            std::future::pending().await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_never_returns_fails_as_transient_at_its_deadline() {
        let connector = WithDeadline::new(Wedged, Duration::from_secs(8));
        let started = tokio::time::Instant::now();
        let error = connector.check().await.unwrap_err();
        assert_eq!(error.kind, rekey_api::ErrorKind::Transient);
        assert!(error.message.contains("within 8 s"), "{error}");
        assert_eq!(started.elapsed(), Duration::from_secs(8));
        assert_eq!(
            call_deadline(Duration::from_secs(1)),
            Duration::from_secs(8)
        );
    }
}
