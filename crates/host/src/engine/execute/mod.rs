//! Running the resets of one target of a job.
//!
//! Users come from the store in chunks, in selection order. Each chunk's planned
//! users get their passwords, which are recorded as intents and made durable
//! before any of them is sent; users whose outcome is unknown from an earlier run
//! are sent again with the password already journaled. The chunk is split into the
//! connector's batches ([`batch`]), and every request passes the run's
//! [`Limiter`], fixed or adaptive.
//! Every settled user is one [`UserRecord`] ([`outcome`]): recorded in the store and
//! handed to the caller, which renders the results row from it. A user the job did
//! not settle stays pending in the store, with its journaled password.

mod batch;
mod outcome;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures_util::{StreamExt as _, stream};
use rekey_api::{Connector, CredentialKind, NewPassword, ResetItem};

use self::batch::{Item, ReAuth, run_batch};
use super::pacing::{Limiter, Pacing};
use super::passwords::PasswordSource;
use super::retry::RetryPolicy;
use super::stop::StopSignal;
use super::store::{Intent, JobStore, PendingUser, Scope, UserRecord, UserState};

/// Users read from the store and given passwords at once (rounded up to whole
/// batches).
const CHUNK: usize = 512;

/// Chunks prepared (passwords made and journaled) ahead of sending.
const PREPARED_AHEAD: usize = 3;

/// Outcomes handed to the store at once.
const OUTCOMES_AT_ONCE: usize = 256;

/// How long requests in flight may take to finish after the operator interrupts.
const GRACE: Duration = Duration::from_secs(20);

/// What to reset, and how.
#[derive(Debug)]
pub struct JobSpec {
    /// The credential kind.
    pub kind: CredentialKind,
    /// Where the new values come from.
    pub passwords: PasswordSource,
    /// Requests in flight at once.
    pub pacing: Pacing,
    /// How passing failures are retried.
    pub retry: RetryPolicy,
}

/// What one run of a job's target did.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Users reset by this run.
    pub reset: usize,
    /// Users whose reset failed in this run.
    pub failed: usize,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
}

/// Everything a run works with.
pub struct Run<'a> {
    /// The connector.
    pub connector: &'a dyn Connector,
    /// Where the job's users live.
    pub store: &'a dyn JobStore,
    /// The job and target in the store.
    pub scope: Scope<'a>,
    /// What to do.
    pub spec: &'a JobSpec,
    /// When to stop.
    pub stop: &'a StopSignal,
}

/// Runs the pending users of `run.scope`, calling `on_settled` with each user as
/// soon as it is settled. If `on_settled` fails (the results file cannot be
/// written), no further user is sent and the run stops, with every outcome still
/// recorded in the store.
pub async fn execute(
    run: Run<'_>,
    on_settled: &mut (dyn FnMut(&UserRecord) -> anyhow::Result<()> + Send),
) -> anyhow::Result<Summary> {
    let batching = run.connector.batching();
    let per_batch = if batching.shared_password && !run.spec.passwords.is_shared() {
        1
    } else {
        batching.max_users.max(1)
    };
    let chunk_size = CHUNK.div_ceil(per_batch) * per_batch;
    let cursor = AtomicI64::new(0);
    let reauth = ReAuth::default();
    let limiter = Limiter::new(run.spec.pacing);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);

    let chunks = stream::unfold((), |()| async {
        if run.stop.is_set() {
            return None;
        }
        let after = cursor.load(Ordering::SeqCst);
        match run.store.pending(run.scope, after, chunk_size).await {
            Ok(users) if users.is_empty() => None,
            Ok(users) => {
                cursor.store(users.last().map_or(after, |u| u.seq), Ordering::SeqCst);
                Some((users, ()))
            }
            Err(error) => {
                run.stop.stop(format!("the journal failed: {error:#}"));
                *failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
                None
            }
        }
    });
    let settled = chunks
        // Chunks are prepared ahead, so that making a chunk's intents durable (a
        // disk sync) overlaps with sending the ones before.
        .map(|users| prepare(&run, users, per_batch))
        .buffered(PREPARED_AHEAD)
        .flat_map(stream::iter)
        .map(|batch| run_batch(&run, &reauth, &limiter, batch))
        .buffer_unordered(limiter.batches());
    let mut settled = std::pin::pin!(settled);
    let give_up = async {
        tokio::select! {
            () = async {
                run.stop.interrupted().await;
                tokio::time::sleep(GRACE).await;
                tracing::warn!(
                    "requests still in flight after {} s: abandoning them; their users' outcomes are unknown and stay in the journal for `rekey resume`",
                    GRACE.as_secs()
                );
            } => {}
            () = run.stop.abandoned() => {}
        }
    };
    let mut give_up = std::pin::pin!(give_up);
    let mut summary = Summary::default();
    let mut handing_over = true;
    // Outcomes go to the store in groups. One lost in a crash only means that its
    // user is sent the same password again on resume.
    let mut recorded = Vec::with_capacity(OUTCOMES_AT_ONCE);
    loop {
        let batch = tokio::select! {
            batch = settled.next() => batch,
            () = &mut give_up => break,
        };
        let Some(batch) = batch else { break };
        for user in batch {
            match user.state {
                UserState::Reset => summary.reset += 1,
                _ => summary.failed += 1,
            }
            if handing_over && let Err(error) = on_settled(&user) {
                handing_over = false;
                run.stop
                    .stop(format!("cannot write the results file: {error:#}"));
            }
            recorded.push(user);
        }
        if recorded.len() >= OUTCOMES_AT_ONCE {
            run.store
                .record_outcomes(run.scope, std::mem::take(&mut recorded));
        }
    }
    if !recorded.is_empty() {
        run.store.record_outcomes(run.scope, recorded);
    }
    if let Some(report) = limiter
        .report()
        .filter(|_| summary.reset + summary.failed > 0)
    {
        tracing::debug!(
            target = run.scope.target,
            "adaptive concurrency settled at {} requests in flight ({}% of the run; from {} to {}; {} back-offs; latency floor {} ms)",
            report.settled,
            report.settled_percent,
            report.lowest,
            report.highest,
            report.backoffs,
            report.floor.map_or(0, |f| f.as_millis())
        );
    }
    run.store.flush().await?;
    if let Some(error) = failure
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    {
        return Err(error);
    }
    summary.stopped = run.stop.reason();
    Ok(summary)
}

/// Gives a chunk's planned users their passwords, makes the intents durable, and
/// splits the chunk into batches. Users already sending keep their password.
async fn prepare(run: &Run<'_>, users: Vec<PendingUser>, per_batch: usize) -> Vec<Vec<Item>> {
    let planned = users
        .iter()
        .filter(|u| u.state == UserState::Planned)
        .count();
    let mut fresh = match batch::assign(run, planned).await {
        Ok(values) => values.into_iter(),
        Err(reason) => {
            run.stop.stop(reason);
            return Vec::new();
        }
    };
    let mut intents = Vec::with_capacity(planned);
    let mut items = Vec::with_capacity(users.len());
    for user in users {
        let maybe_applied = user.state == UserState::Sending;
        let password = match (user.state, user.password) {
            (UserState::Planned, _) => {
                let Some(password) = fresh.next() else {
                    run.stop
                        .stop("the password source gave fewer values than users");
                    return Vec::new();
                };
                intents.push(Intent {
                    seq: user.seq,
                    password: password.known().cloned(),
                });
                password
            }
            (_, Some(password)) => NewPassword::Known(password),
            (_, None) => NewPassword::VendorGenerated,
        };
        items.push(Item {
            seq: user.seq,
            reset: ResetItem {
                user: user.user,
                password,
            },
            maybe_applied,
        });
    }
    if !intents.is_empty()
        && let Err(error) = run.store.record_intents(run.scope, intents).await
    {
        // Nothing may be sent whose password is not safely recorded.
        run.stop.stop(format!(
            "cannot record new passwords in the journal: {error:#}"
        ));
        return Vec::new();
    }
    let mut batches = Vec::with_capacity(items.len().div_ceil(per_batch));
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        batches.push(items.by_ref().take(per_batch).collect());
    }
    batches
}

#[cfg(test)]
mod tests;
