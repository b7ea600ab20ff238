//! The checks, in the order they run.

mod listing;
mod resets;
mod schema;
mod session;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use rekey_api::{Connector, ConnectorError, Settings};

pub use resets::reset_test_user;

use crate::{CheckResult, Kit, Report, Subject};

/// Runs every check of `kit` against `subject`.
pub(crate) async fn run(kit: &Kit, subject: &dyn Subject) -> Report {
    let mut report = Report::default();
    let metadata = subject.metadata();
    report.checks.push(schema::describe(&metadata));
    report
        .checks
        .push(schema::settings(&metadata, &kit.settings));

    let connector = match create(subject, &metadata, kit) {
        Ok(connector) => {
            report.checks.push(CheckResult::pass(
                "create",
                "created from the settings given",
            ));
            connector
        }
        Err(why) => {
            report.checks.push(CheckResult::fail("create", why));
            skip_the_rest(&mut report, "the connector could not be created");
            return report;
        }
    };
    let check = session::check(connector.as_ref(), kit.deadline).await;
    let authenticated = check.verdict == crate::Verdict::Pass;
    report.checks.push(check);
    if !authenticated {
        skip_the_rest(&mut report, "check did not authenticate");
        return report;
    }
    let listing = listing::listing(connector.as_ref(), &metadata, kit.deadline).await;
    report.checks.push(listing.result);
    let mut replies = resets::Replies::default();
    report.checks.push(
        resets::unknown_user(
            connector.as_ref(),
            &metadata,
            kit,
            listing.sample.as_deref(),
            &mut replies,
        )
        .await,
    );
    report.checks.push(replies.verdict());
    report.checks.push(
        session::concurrency(
            connector.as_ref(),
            &metadata,
            kit.concurrent_calls,
            kit.deadline,
        )
        .await,
    );
    report
        .checks
        .push(session::cancellation(connector.as_ref(), &metadata, kit.deadline).await);
    report
}

/// The checks that need a connector that exists and authenticates.
const AFTER_CREATE: [&str; 6] = [
    "check",
    "listing",
    "unknown-user",
    "reset-replies",
    "concurrency",
    "cancellation",
];

fn skip_the_rest(report: &mut Report, why: &str) {
    for name in AFTER_CREATE {
        if report.check(name).is_none() {
            report.checks.push(CheckResult::skip(name, why));
        }
    }
}

/// Creates the connector from the kit's settings, as the host does.
fn create(
    subject: &dyn Subject,
    metadata: &rekey_api::Metadata,
    kit: &Kit,
) -> Result<Arc<dyn Connector>, String> {
    let settings = Settings::check(&metadata.settings, kit.settings.clone())
        .map_err(|e| format!("the settings given do not suit the schema: {e}"))?;
    match std::panic::catch_unwind(AssertUnwindSafe(|| subject.create(settings))) {
        Ok(Ok(connector)) => Ok(connector),
        Ok(Err(error)) => Err(format!("creating the connector failed: {error}")),
        Err(_) => Err("the connector panicked while being created".to_owned()),
    }
}

/// Why a call did not give its answer.
pub(crate) enum CallError {
    /// It failed.
    Failed(ConnectorError),
    /// It panicked (an in-process connector; a library's panics come back as
    /// errors of kind `panicked`).
    Panicked,
    /// It did not return within the deadline.
    Wedged(Duration),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Failed(error) => write!(f, "{error}"),
            CallError::Panicked => f.write_str("the connector panicked"),
            CallError::Wedged(deadline) => {
                write!(f, "the call did not return within {} s", deadline.as_secs())
            }
        }
    }
}

/// Runs one call with a deadline, catching an in-process panic.
pub(crate) async fn call<T>(
    deadline: Duration,
    work: impl Future<Output = Result<T, ConnectorError>>,
) -> Result<T, CallError> {
    match tokio::time::timeout(deadline, AssertUnwindSafe(work).catch_unwind()).await {
        Ok(Ok(Ok(value))) => Ok(value),
        Ok(Ok(Err(error))) => Err(CallError::Failed(error)),
        Ok(Err(_)) => Err(CallError::Panicked),
        Err(_) => Err(CallError::Wedged(deadline)),
    }
}
