//! Authentication, concurrent calls, and cancelled calls.

use std::time::Duration;

use futures_util::future::join_all;
use rekey_api::{Capability, Connector, Metadata};

use super::call;
use crate::CheckResult;

/// `check` authenticates.
pub(super) async fn check(connector: &dyn Connector, deadline: Duration) -> CheckResult {
    match call(deadline, connector.check()).await {
        Ok(report) => CheckResult::pass(
            "check",
            match (&report.account, report.detail.as_str()) {
                (Some(account), "") => format!("authenticated as {account}"),
                (Some(account), detail) => format!("authenticated as {account} ({detail})"),
                (None, "") => "authenticated".to_owned(),
                (None, detail) => format!("authenticated ({detail})"),
            },
        ),
        Err(error) => CheckResult::fail("check", error.to_string()),
    }
}

/// The calls the kit makes at once or cancels: the first page of the listing when
/// there is one (it talks to the vendor), else `check`.
async fn probe(
    connector: &dyn Connector,
    metadata: &Metadata,
    deadline: Duration,
) -> Result<(), super::CallError> {
    if metadata.has(Capability::ListUsers) {
        call(deadline, connector.list_users(None)).await.map(drop)
    } else {
        call(deadline, connector.check()).await.map(drop)
    }
}

/// Several calls at once all succeed.
pub(super) async fn concurrency(
    connector: &dyn Connector,
    metadata: &Metadata,
    calls: usize,
    deadline: Duration,
) -> CheckResult {
    let results = join_all((0..calls).map(|_| probe(connector, metadata, deadline))).await;
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| e.to_string()))
        .collect();
    match failed.first() {
        None => CheckResult::pass(
            "concurrency",
            format!("{calls} calls at once all succeeded"),
        ),
        Some(first) => CheckResult::fail(
            "concurrency",
            format!(
                "{} of {calls} calls at once failed, e.g.: {first}",
                failed.len()
            ),
        ),
    }
}

/// A call dropped before it finishes does not wedge the connector: the next call
/// succeeds.
pub(super) async fn cancellation(
    connector: &dyn Connector,
    metadata: &Metadata,
    deadline: Duration,
) -> CheckResult {
    let mut cancelled = 0;
    for delay in [0, 1, 5, 20] {
        let cut = tokio::time::timeout(
            Duration::from_millis(delay),
            probe(connector, metadata, deadline),
        )
        .await;
        if cut.is_err() {
            cancelled += 1;
        }
    }
    match probe(connector, metadata, deadline).await {
        Ok(()) if cancelled == 0 => CheckResult::pass(
            "cancellation",
            "every call finished before it could be cancelled; the next call succeeded",
        ),
        Ok(()) => CheckResult::pass(
            "cancellation",
            format!("{cancelled} calls cancelled midway; the next call succeeded"),
        ),
        Err(error) => CheckResult::fail(
            "cancellation",
            format!("after {cancelled} cancelled calls, the next call failed: {error}"),
        ),
    }
}
