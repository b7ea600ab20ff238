//! Running the resets of a job.
//!
//! Users come from the store in chunks, in selection order. Each chunk's planned
//! users get their passwords, which are recorded as intents and made durable
//! before any of them is sent; users whose outcome is unknown from an earlier run
//! are sent again with the password already journaled. The chunk is split into the
//! connector's batches, and batches run with bounded concurrency. Passing failures
//! are retried with backoff within a time budget; an authentication failure
//! re-authenticates once; a refused login, a spent quota, an exhausted retry budget
//! or an interruption stops the job, leaving every unsettled user in the store for
//! `rekey resume`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{StreamExt as _, stream};
use rekey_api::{
    Applied, Connector, ConnectorError, CredentialKind, ErrorKind, NewPassword, ResetItem,
    ResetRequest, Secret,
};
use tokio::sync::Mutex;

use super::passwords::PasswordSource;
use super::retry::RetryPolicy;
use super::stop::StopSignal;
use super::store::{Intent, JobStore, PasswordUpdate, PendingUser, Settled, UserState};
use crate::results::{ResultRow, Status};

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
    /// Batches in flight at once.
    pub concurrency: usize,
    /// How passing failures are retried.
    pub retry: RetryPolicy,
}

/// What one run of a job did.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Users reset by this run.
    pub reset: usize,
    /// Users whose reset failed in this run.
    pub failed: usize,
    /// Users this run did not settle (the job stopped before them).
    pub unsettled: usize,
    /// Why the job stopped early, if it did.
    pub stopped: Option<String>,
}

/// Everything a run works with.
pub struct Run<'a> {
    /// The connector.
    pub connector: &'a dyn Connector,
    /// Where the job's users live.
    pub store: &'a dyn JobStore,
    /// The job's id in the store.
    pub job: &'a str,
    /// What to do.
    pub spec: &'a JobSpec,
    /// When to stop.
    pub stop: &'a StopSignal,
}

/// A user and the value sent to it, with its place in the store.
#[derive(Debug, Clone)]
struct Item {
    seq: i64,
    reset: ResetItem,
    /// Whether an earlier attempt may have set this password (it was sent and
    /// no answer came back). A later refusal then proves nothing: the vendor may be
    /// refusing to set the same password twice.
    maybe_applied: bool,
}

/// How one user's attempt ended.
enum Ending {
    /// Settled: recorded in the store, and a results row.
    Settled(Settled, ResultRow),
    /// Not settled: the job stopped first. The user stays pending in the store
    /// (with its journaled password) and gets a `skipped` row.
    Unsettled(i64, ResultRow),
}

/// Users taken from the store whose row has not been given yet: at most a few
/// chunks. Whatever is left here when the job stops gets an "unsettled" row.
#[derive(Default)]
struct InFlight(std::sync::Mutex<BTreeMap<i64, Taken>>);

/// A user taken from the store: id, password, and whether it may have been sent.
type Taken = (String, Option<Secret>, bool);

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i64, Taken>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The connector's re-authentication, done at most once per job.
#[derive(Default)]
struct ReAuth {
    /// Bumped by the re-authentication; `done` once it happened.
    state: Mutex<(u64, bool)>,
}

/// Runs the job's pending users, calling `on_row` with each user's row as soon as
/// it is known (settled users, then, if the job stopped, every user left pending).
pub async fn execute(
    run: Run<'_>,
    on_row: &mut (dyn FnMut(ResultRow) -> anyhow::Result<()> + Send),
) -> anyhow::Result<Summary> {
    let batching = run.connector.batching();
    let per_batch = if batching.shared_password && !run.spec.passwords.is_shared() {
        1
    } else {
        batching.max_users.max(1)
    };
    let chunk_size = CHUNK.div_ceil(per_batch) * per_batch;
    let cursor = AtomicI64::new(0);
    let in_flight = InFlight::default();
    let reauth = ReAuth::default();
    let failure: std::sync::Mutex<Option<anyhow::Error>> = std::sync::Mutex::new(None);
    let mut summary = Summary::default();

    let chunks = stream::unfold((), |()| async {
        if run.stop.is_set() {
            return None;
        }
        let after = cursor.load(Ordering::SeqCst);
        match run.store.pending(run.job, after, chunk_size).await {
            Ok(users) if users.is_empty() => None,
            Ok(users) => {
                cursor.store(users.last().map_or(after, |u| u.seq), Ordering::SeqCst);
                let mut taken = in_flight.lock();
                for user in &users {
                    let maybe_sent = user.state == UserState::Sending;
                    taken.insert(
                        user.seq,
                        (user.user.clone(), user.password.clone(), maybe_sent),
                    );
                }
                Some((users, ()))
            }
            Err(error) => {
                run.stop.stop(format!("the journal failed: {error:#}"));
                *failure
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error);
                None
            }
        }
    });
    let endings = chunks
        // Chunks are prepared ahead, so that making a chunk's intents durable (a
        // disk sync) overlaps with sending the ones before.
        .map(|users| prepare(&run, &in_flight, users, per_batch))
        .buffered(PREPARED_AHEAD)
        .flat_map(stream::iter)
        .map(|batch| run_batch(&run, &reauth, batch))
        .buffer_unordered(run.spec.concurrency.max(1));
    let mut endings = std::pin::pin!(endings);
    let give_up = async {
        run.stop.interrupted().await;
        tokio::time::sleep(GRACE).await;
    };
    let mut give_up = std::pin::pin!(give_up);
    // Outcomes go to the store in groups. One lost in a crash only means that its
    // user is sent the same password again on resume.
    let mut settled = Vec::with_capacity(OUTCOMES_AT_ONCE);
    loop {
        let batch = tokio::select! {
            batch = endings.next() => batch,
            () = &mut give_up => {
                tracing::warn!(
                    "requests still in flight after {} s: abandoning them; their users' outcomes are unknown and stay in the journal for `rekey resume`",
                    GRACE.as_secs()
                );
                break;
            }
        };
        let Some(batch) = batch else { break };
        for ending in batch {
            let row = match ending {
                Ending::Settled(outcome, row) => {
                    in_flight.lock().remove(&outcome.seq);
                    settled.push(outcome);
                    row
                }
                Ending::Unsettled(seq, row) => {
                    in_flight.lock().remove(&seq);
                    row
                }
            };
            count(&mut summary, &row);
            on_row(row)?;
        }
        if settled.len() >= OUTCOMES_AT_ONCE {
            run.store
                .record_outcomes(run.job, std::mem::take(&mut settled));
        }
    }
    if !settled.is_empty() {
        run.store.record_outcomes(run.job, settled);
    }
    run.store.flush().await?;
    if let Some(error) = failure
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
    {
        return Err(error);
    }

    if let Some(reason) = run.stop.reason() {
        // Every user still pending gets its row: those taken but abandoned in flight,
        // then those never reached.
        let abandoned = std::mem::take(&mut *in_flight.lock());
        for (user, password, maybe_sent) in abandoned.into_values() {
            let row = unsettled_row(user, password, maybe_sent, &reason);
            count(&mut summary, &row);
            on_row(row)?;
        }
        let mut after = cursor.load(Ordering::SeqCst);
        loop {
            let users = run.store.pending(run.job, after, 1024).await?;
            let Some(last) = users.last() else { break };
            after = last.seq;
            for user in users {
                let row = unsettled_row(
                    user.user,
                    user.password,
                    user.state == UserState::Sending,
                    &reason,
                );
                count(&mut summary, &row);
                on_row(row)?;
            }
        }
        summary.stopped = Some(reason);
    }
    Ok(summary)
}

fn count(summary: &mut Summary, row: &ResultRow) {
    match row.status {
        Status::Reset => summary.reset += 1,
        Status::Failed => summary.failed += 1,
        Status::Skipped => summary.unsettled += 1,
    }
}

/// Gives a chunk's planned users their passwords, makes the intents durable, and
/// splits the chunk into batches. Users already sending keep their password.
async fn prepare(
    run: &Run<'_>,
    in_flight: &InFlight,
    users: Vec<PendingUser>,
    per_batch: usize,
) -> Vec<Vec<Item>> {
    let planned = users
        .iter()
        .filter(|u| u.state == UserState::Planned)
        .count();
    let mut fresh = match assign(run, planned).await {
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
        let password = match user.state {
            UserState::Planned => {
                let password = fresh.next().expect("one value per planned user");
                intents.push(Intent {
                    seq: user.seq,
                    password: password.known().cloned(),
                });
                password
            }
            _ => match user.password {
                Some(password) => NewPassword::Known(password),
                None => NewPassword::VendorGenerated,
            },
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
    if !intents.is_empty() {
        let recorded: Vec<(i64, Option<Secret>)> = intents
            .iter()
            .map(|i| (i.seq, i.password.clone()))
            .collect();
        if let Err(error) = run.store.record_intents(run.job, intents).await {
            // Nothing may be sent whose password is not safely recorded.
            run.stop.stop(format!(
                "cannot record new passwords in the journal: {error:#}"
            ));
            return Vec::new();
        }
        let mut taken = in_flight.lock();
        for (seq, password) in recorded {
            if let Some(entry) = taken.get_mut(&seq) {
                entry.1 = password;
                entry.2 = true;
            }
        }
    }
    let mut batches = Vec::with_capacity(items.len().div_ceil(per_batch));
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        batches.push(items.by_ref().take(per_batch).collect());
    }
    batches
}

/// New values for `count` users, retrying passing failures of a vendor generator
/// within the budget. Returns the reason to stop on failure.
async fn assign(run: &Run<'_>, count: usize) -> Result<Vec<NewPassword>, String> {
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
/// or until the job must stop.
async fn run_batch(run: &Run<'_>, reauth: &ReAuth, batch: Vec<Item>) -> Vec<Ending> {
    let started = Instant::now();
    let mut pending = batch;
    let mut endings = Vec::with_capacity(pending.len());
    let mut attempt = 0;
    while !pending.is_empty() {
        if let Some(reason) = run.stop.reason() {
            endings.extend(pending.into_iter().map(|item| abandon(item, &reason)));
            return endings;
        }
        let generation = reauth.state.lock().await.0;
        let request = ResetRequest {
            kind: run.spec.kind,
            items: pending.iter().map(|item| item.reset.clone()).collect(),
        };
        let mut outcomes: HashMap<String, Result<Applied, ConnectorError>> =
            match run.connector.reset(request).await {
                Ok(outcomes) => outcomes.into_iter().map(|o| (o.user, o.result)).collect(),
                Err(error) => pending
                    .iter()
                    .map(|i| (i.reset.user.clone(), Err(error.clone())))
                    .collect(),
            };
        let mut retry = Vec::new();
        let mut asked_pause = None;
        let mut last_error = None;
        for item in pending {
            let result = outcomes.remove(&item.reset.user).unwrap_or_else(|| {
                Err(ConnectorError::fatal(
                    "the connector gave no outcome for this user",
                ))
            });
            match result {
                Ok(applied) => endings.push(applied_ending(item, applied)),
                Err(error) if error.kind.is_retryable() => {
                    asked_pause = asked_pause.max(error.retry_after());
                    let mut item = item;
                    item.maybe_applied |= !error.kind.definitely_not_applied();
                    last_error = Some(error);
                    retry.push(item);
                }
                Err(error) if error.kind == ErrorKind::AuthRefused => {
                    if reauthenticate(run, reauth, generation, &error).await {
                        retry.push(item);
                    } else {
                        endings.push(abandon(
                            item,
                            &run.stop.reason().unwrap_or_else(|| error.to_string()),
                        ));
                    }
                }
                Err(error) if error.kind == ErrorKind::QuotaExhausted => {
                    run.stop.stop(error.to_string());
                    endings.push(abandon(item, &error.to_string()));
                }
                Err(error) => endings.push(failed_ending(item, error)),
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
    endings
}

/// Re-authenticates once per job after the target refused the connector's session.
/// Returns whether the refused call may be retried.
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

fn applied_ending(item: Item, applied: Applied) -> Ending {
    let vendor_kept_it = matches!(item.reset.password, NewPassword::VendorGenerated)
        && applied.vendor_password.is_none();
    let detail = match (vendor_kept_it, applied.detail) {
        (true, Some(detail)) => {
            format!("{detail} (the vendor set the password and did not return it)")
        }
        (true, None) => "the vendor set the password and did not return it".to_owned(),
        (false, detail) => detail.unwrap_or_default(),
    };
    let known = item.reset.password.known().cloned();
    let update = match &applied.vendor_password {
        Some(value) => PasswordUpdate::Set(value.clone()),
        None => PasswordUpdate::Keep,
    };
    let password = applied.vendor_password.or_else(|| known.clone());
    let detail = scrub(detail, known.as_ref());
    Ending::Settled(
        Settled {
            seq: item.seq,
            state: UserState::Reset,
            password: update,
            detail: detail.clone(),
        },
        ResultRow {
            user: item.reset.user,
            status: Status::Reset,
            password,
            detail,
        },
    )
}

fn failed_ending(item: Item, error: ConnectorError) -> Ending {
    let known = item.reset.password.known().cloned();
    let definite = error.kind.definitely_not_applied() && !item.maybe_applied;
    let (password, detail) = if definite {
        (None, error.message)
    } else if error.kind.definitely_not_applied() {
        let detail = format!(
            "{} (refused on a retry; an earlier attempt's outcome is unknown, so this password may be in effect)",
            error.message
        );
        (known.clone(), detail)
    } else {
        let detail = match &known {
            Some(_) => format!("outcome unknown ({error}); this password may now be in effect"),
            None => format!("outcome unknown ({error}); the vendor may have set a new password"),
        };
        (known.clone(), detail)
    };
    let detail = scrub(detail, known.as_ref());
    Ending::Settled(
        Settled {
            seq: item.seq,
            state: UserState::Failed,
            password: if definite {
                PasswordUpdate::Clear
            } else {
                PasswordUpdate::Keep
            },
            detail: detail.clone(),
        },
        ResultRow {
            user: item.reset.user,
            status: Status::Failed,
            password,
            detail,
        },
    )
}

/// A user left unsettled because the job stopped: its intent stays in the store.
fn abandon(item: Item, reason: &str) -> Ending {
    Ending::Unsettled(
        item.seq,
        unsettled_row(
            item.reset.user,
            item.reset.password.known().cloned(),
            true,
            reason,
        ),
    )
}

/// The `skipped` row of a user the job did not settle. A user that may have been
/// sent keeps its password in the row: it may be in effect.
pub fn unsettled_row(
    user: String,
    password: Option<Secret>,
    maybe_sent: bool,
    reason: &str,
) -> ResultRow {
    let detail = if maybe_sent && password.is_some() {
        format!(
            "outcome unknown: the job stopped ({reason}); this password may now be in effect; resume the job to settle it"
        )
    } else {
        format!("not attempted: the job stopped ({reason}); resume it to finish")
    };
    ResultRow {
        user,
        status: Status::Skipped,
        password: if maybe_sent { password } else { None },
        detail,
    }
}

/// Removes the password from a vendor message that echoes it.
fn scrub(detail: String, password: Option<&Secret>) -> String {
    match password {
        Some(password) if password.len() >= 4 && detail.contains(password.expose()) => {
            detail.replace(password.expose(), "[redacted]")
        }
        _ => detail,
    }
}

#[cfg(test)]
mod tests;
