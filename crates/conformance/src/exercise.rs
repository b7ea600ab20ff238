//! Every call of a connector made once, whatever the vendor answers: for tests
//! that feed a connector hostile replies and expect errors, never a panic.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt as _;
use rekey_api::{
    Capability, Connector, ConnectorError, Metadata, NewPassword, ResetItem, ResetRequest, Secret,
};

/// Calls `check`, `list_users` (first page, and the next one if offered),
/// `generate` and `reset` of `user` (to `password`, and to a vendor-made value
/// where declared) on `connector`, each bounded by `deadline`. Returns the errors
/// seen; panics, naming the call, if the connector panicked or an error quotes
/// `password` or one of `secrets` (the target's own).
pub async fn exercise(
    connector: &dyn Connector,
    metadata: &Metadata,
    user: &str,
    password: &Secret,
    secrets: &[&str],
    deadline: Duration,
) -> Vec<ConnectorError> {
    let mut errors = Vec::new();
    let kind = metadata.kinds[0];
    note("check", deadline, connector.check(), &mut errors).await;
    if metadata.has(Capability::ListUsers) {
        let first = note(
            "list_users",
            deadline,
            connector.list_users(None),
            &mut errors,
        )
        .await;
        if let Some(next) = first.and_then(|page| page.next) {
            note(
                "list_users",
                deadline,
                connector.list_users(Some(next)),
                &mut errors,
            )
            .await;
        }
    }
    if metadata.has(Capability::VendorValues) {
        note(
            "generate",
            deadline,
            connector.generate(kind, 2),
            &mut errors,
        )
        .await;
    }
    let mut passwords = vec![NewPassword::Known(password.clone())];
    if metadata.has(Capability::VendorReset) {
        passwords.push(NewPassword::VendorGenerated);
    }
    for password in passwords {
        let request = ResetRequest {
            kind,
            items: vec![ResetItem {
                user: user.to_owned(),
                password,
            }],
        };
        note("reset", deadline, connector.reset(request), &mut errors).await;
    }
    for error in &errors {
        for secret in secrets.iter().copied().chain([password.expose()]) {
            assert!(
                !error.message.contains(secret),
                "an error quotes a secret: {}",
                error.kind
            );
        }
    }
    errors
}

async fn note<T>(
    call: &str,
    deadline: Duration,
    work: impl Future<Output = Result<T, ConnectorError>>,
    errors: &mut Vec<ConnectorError>,
) -> Option<T> {
    match tokio::time::timeout(deadline, AssertUnwindSafe(work).catch_unwind()).await {
        Ok(Ok(Ok(value))) => Some(value),
        Ok(Ok(Err(error))) => {
            errors.push(error);
            None
        }
        Ok(Err(_)) => panic!("the connector panicked in {call}"),
        Err(_) => None,
    }
}
