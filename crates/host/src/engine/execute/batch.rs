//! One batch of users, sent until each is settled or the job stops: passing
//! failures retried with backoff within the budget, a refused session renewed once
//! per job, a spent quota stopping the job.

use std::collections::HashMap;
use std::time::Instant;

use rekey_api::{Applied, ConnectorError, ErrorKind, NewPassword, ResetItem, ResetRequest};
use tokio::sync::Mutex;

use super::Run;
use super::outcome;
use crate::engine::pacing::Limiter;
use crate::engine::store::UserRecord;

/// A user and the value sent to it, with its place in the store.
#[derive(Debug)]
pub(super) struct Item {
    pub seq: i64,
    pub reset: ResetItem,
    /// Whether an earlier attempt may have set this password (it was sent and
    /// no answer came back). A later refusal then proves nothing: the vendor may be
    /// refusing to set the same password twice.
    pub maybe_applied: bool,
}

/// The connector's re-authentication, done at most once per run.
#[derive(Default)]
pub(super) struct ReAuth {
    /// Bumped by the re-authentication; `done` once it happened.
    state: Mutex<(u64, bool)>,
}

/// New values for `count` users, retrying passing failures of a vendor generator
/// within the budget. Returns the reason to stop on failure.
pub(super) async fn assign(run: &Run<'_>, count: usize) -> Result<Vec<NewPassword>, String> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        match run
            .spec
            .passwords
            .assign(run.connector, run.spec.kind, count)
            .await
        {
            Ok(values) => return Ok(values),
            Err(error) if error.kind.is_retryable() => {
                attempt += 1;
                let pause = run.spec.retry.pause(attempt, error.retry_after());
                if started.elapsed() + pause > run.spec.retry.budget {
                    return Err(format!(
                        "target unreachable: the vendor could not make new values: {error}"
                    ));
                }
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = run.stop.stopped() => return Err(run.stop.reason().unwrap_or_default()),
                }
            }
            Err(error) => return Err(format!("the vendor could not make new values: {error}")),
        }
    }
}

/// Sends one batch until every user in it is settled, retrying passing failures,
/// or until the job must stop. Returns the settled users; the others stay pending
/// in the store.
pub(super) async fn run_batch(
    run: &Run<'_>,
    reauth: &ReAuth,
    limiter: &Limiter,
    batch: Vec<Item>,
) -> Vec<UserRecord> {
    let started = Instant::now();
    let mut pending = batch;
    let mut settled = Vec::with_capacity(pending.len());
    let mut attempt = 0;
    while !pending.is_empty() {
        if run.stop.is_set() {
            return settled;
        }
        let generation = reauth.state.lock().await.0;
        let request = ResetRequest {
            kind: run.spec.kind,
            items: pending.iter().map(|item| item.reset.clone()).collect(),
        };
        let permit = tokio::select! {
            permit = limiter.acquire() => permit,
            () = run.stop.stopped() => return settled,
        };
        let mut outcomes: HashMap<String, Result<Applied, ConnectorError>> =
            match run.connector.reset(request).await {
                Ok(outcomes) => outcomes.into_iter().map(|o| (o.user, o.result)).collect(),
                Err(error) => pending
                    .iter()
                    .map(|i| (i.reset.user.clone(), Err(error.clone())))
                    .collect(),
            };
        // A passing failure of any user is the vendor saying "too much".
        let passing: Vec<&ConnectorError> = outcomes
            .values()
            .filter_map(|r| r.as_ref().err())
            .filter(|e| e.kind.is_retryable())
            .collect();
        if passing.is_empty() {
            permit.answered();
        } else {
            permit.overloaded(passing.iter().filter_map(|e| e.retry_after()).max());
        }
        let mut retry = Vec::new();
        let mut asked_pause = None;
        let mut last_error = None;
        for mut item in pending {
            let result = outcomes.remove(&item.reset.user).unwrap_or_else(|| {
                Err(ConnectorError::fatal(
                    "the connector gave no outcome for this user",
                ))
            });
            match result {
                Ok(applied) => settled.push(outcome::applied(item, applied)),
                Err(error) if error.kind.is_retryable() => {
                    asked_pause = asked_pause.max(error.retry_after());
                    item.maybe_applied |= !error.kind.definitely_not_applied();
                    last_error = Some(error);
                    retry.push(item);
                }
                Err(error) if error.kind == ErrorKind::AuthRefused => {
                    if reauthenticate(run, reauth, generation, &error).await {
                        retry.push(item);
                    }
                }
                // The quota is spent, or the connector cannot go on (its program died
                // or stopped answering): the job stops, and the user stays unsettled
                // with its intent kept, for `rekey resume`.
                Err(error)
                    if matches!(error.kind, ErrorKind::QuotaExhausted | ErrorKind::Cancelled) =>
                {
                    run.stop.stop(error.to_string());
                }
                Err(error) => settled.push(outcome::failed(item, error)),
            }
        }
        pending = retry;
        if pending.is_empty() {
            break;
        }
        attempt += 1;
        let pause = run.spec.retry.pause(attempt, asked_pause);
        if started.elapsed() + pause > run.spec.retry.budget {
            let error = last_error.map_or_else(String::new, |e| e.to_string());
            run.stop.stop(format!(
                "target unreachable: still failing after {} s of retries ({error})",
                run.spec.retry.budget.as_secs()
            ));
            continue;
        }
        if last_error.is_some() {
            tracing::debug!(
                users = pending.len(),
                pause_ms = pause.as_millis() as u64,
                "retrying after a passing failure"
            );
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = run.stop.stopped() => {}
            }
        }
    }
    settled
}

/// Re-authenticates once per run after the target refused the connector's
/// session. Returns whether the refused call may be retried.
async fn reauthenticate(
    run: &Run<'_>,
    reauth: &ReAuth,
    sent_at: u64,
    error: &ConnectorError,
) -> bool {
    let mut state = reauth.state.lock().await;
    if state.0 != sent_at {
        // Someone re-authenticated after this call was sent: just retry.
        return !run.stop.is_set();
    }
    if state.1 {
        run.stop.stop(format!(
            "authentication refused again after re-authenticating: {}",
            error.message
        ));
        return false;
    }
    state.1 = true;
    state.0 += 1;
    tracing::warn!(
        "the target refused the session ({}); authenticating again",
        error.message
    );
    match run.connector.check().await {
        Ok(_) => true,
        Err(again) => {
            run.stop
                .stop(format!("authentication refused: {}", again.message));
            false
        }
    }
}
