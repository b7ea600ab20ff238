//! Running the resets of a job.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use futures_util::{StreamExt as _, stream};
use rekey_api::{
    Applied, ConnectorError, CredentialKind, ErrorKind, NewPassword, ResetItem, ResetRequest,
};

use super::passwords::PasswordSource;
use crate::exit::Exit;
use crate::results::{ResultRow, Status};
use crate::target::Target;

/// Users that get their passwords at once (rounded up to whole batches).
const CHUNK: usize = 256;

/// What to reset, and how.
#[derive(Debug)]
pub struct JobSpec {
    /// The credential kind.
    pub kind: CredentialKind,
    /// Where the new values come from.
    pub passwords: PasswordSource,
    /// Batches in flight at once.
    pub concurrency: usize,
}

/// Counts of a finished (or stopped) job.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Users reset.
    pub reset: usize,
    /// Users whose reset failed.
    pub failed: usize,
    /// Selected users not reset (the job stopped before them).
    pub skipped: usize,
    /// Why the job stopped early, if it did.
    pub stopped: Option<String>,
}

impl Summary {
    /// The exit code this outcome calls for.
    pub fn exit(&self) -> Exit {
        if self.stopped.is_some() {
            Exit::Stopped
        } else if self.failed + self.skipped > 0 {
            Exit::Partial
        } else {
            Exit::Success
        }
    }

    fn count(&mut self, status: Status) {
        match status {
            Status::Reset => self.reset += 1,
            Status::Failed => self.failed += 1,
            Status::Skipped => self.skipped += 1,
        }
    }
}

/// The first reason the job must stop; once set, no further batch is sent.
#[derive(Debug, Default)]
struct Stop(Mutex<Option<String>>);

impl Stop {
    fn set(&self, reason: String) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(reason);
    }

    fn reason(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// One unit of work for the worker pool.
enum Work {
    /// A batch to send.
    Batch(Vec<ResetItem>),
    /// Rows already decided (the chunk could not be prepared).
    Done(Vec<ResultRow>),
}

/// Resets `users` on `target`, calling `on_row` with each outcome as it arrives.
/// Stops early (without sending anything more) when the target refuses the
/// connector's credentials or its quota is spent; users not attempted then get
/// `skipped` rows.
pub async fn execute(
    target: &Target,
    spec: &JobSpec,
    users: &[String],
    on_row: &mut (dyn FnMut(ResultRow) -> anyhow::Result<()> + Send),
) -> anyhow::Result<Summary> {
    let stop = Stop::default();
    let batching = target.connector.batching();
    let per_batch = if batching.shared_password && !spec.passwords.is_shared() {
        1
    } else {
        batching.max_users.max(1)
    };
    let chunk_size = CHUNK.div_ceil(per_batch) * per_batch;
    let taken = AtomicUsize::new(0);
    let mut summary = Summary::default();

    let rows = stream::iter(users.chunks(chunk_size))
        .take_while(|_| std::future::ready(stop.reason().is_none()))
        .then(|chunk| {
            taken.fetch_add(chunk.len(), Ordering::Relaxed);
            prepare(target, spec, &stop, chunk, per_batch)
        })
        .flat_map(stream::iter)
        .map(|work| async {
            match work {
                Work::Batch(items) => run_batch(target, spec, &stop, items).await,
                Work::Done(rows) => rows,
            }
        })
        .buffer_unordered(spec.concurrency.max(1));
    let mut rows = std::pin::pin!(rows);
    while let Some(batch_rows) = rows.next().await {
        for row in batch_rows {
            summary.count(row.status);
            on_row(row)?;
        }
    }

    if let Some(reason) = stop.reason() {
        for user in &users[taken.load(Ordering::Relaxed)..] {
            let row = not_attempted(user.clone(), &reason);
            summary.count(row.status);
            on_row(row)?;
        }
        summary.stopped = Some(reason);
    }
    Ok(summary)
}

/// Gives a chunk of users their passwords and splits it into batches.
async fn prepare(
    target: &Target,
    spec: &JobSpec,
    stop: &Stop,
    chunk: &[String],
    per_batch: usize,
) -> Vec<Work> {
    match spec.passwords.assign(target, spec.kind, chunk.len()).await {
        Ok(passwords) => {
            let items: Vec<ResetItem> = chunk
                .iter()
                .zip(passwords)
                .map(|(user, password)| ResetItem {
                    user: user.clone(),
                    password,
                })
                .collect();
            let mut work = Vec::with_capacity(items.len().div_ceil(per_batch));
            let mut items = items.into_iter().peekable();
            while items.peek().is_some() {
                work.push(Work::Batch(items.by_ref().take(per_batch).collect()));
            }
            work
        }
        Err(error) => {
            // Nothing was set for these users: stop rather than guess.
            let reason = format!("the vendor could not make new values: {error}");
            stop.set(reason.clone());
            vec![Work::Done(
                chunk
                    .iter()
                    .map(|u| not_attempted(u.clone(), &reason))
                    .collect(),
            )]
        }
    }
}

/// Sends one batch and turns its outcomes into rows.
async fn run_batch(
    target: &Target,
    spec: &JobSpec,
    stop: &Stop,
    items: Vec<ResetItem>,
) -> Vec<ResultRow> {
    if let Some(reason) = stop.reason() {
        return items
            .into_iter()
            .map(|i| not_attempted(i.user, &reason))
            .collect();
    }
    let request = ResetRequest {
        kind: spec.kind,
        items: items.clone(),
    };
    let mut outcomes: HashMap<String, Result<Applied, ConnectorError>> =
        match target.connector.reset(request).await {
            Ok(outcomes) => outcomes.into_iter().map(|o| (o.user, o.result)).collect(),
            Err(error) => items
                .iter()
                .map(|i| (i.user.clone(), Err(error.clone())))
                .collect(),
        };
    items
        .into_iter()
        .map(|item| {
            let result = outcomes.remove(&item.user).unwrap_or_else(|| {
                Err(ConnectorError::fatal(
                    "the connector gave no outcome for this user",
                ))
            });
            row_for(item, result, stop)
        })
        .collect()
}

/// The results row for one user's outcome.
fn row_for(item: ResetItem, result: Result<Applied, ConnectorError>, stop: &Stop) -> ResultRow {
    let known = item.password.known().cloned();
    let row = match result {
        Ok(applied) => {
            let vendor_kept_it = matches!(item.password, NewPassword::VendorGenerated)
                && applied.vendor_password.is_none();
            let detail = match (vendor_kept_it, applied.detail) {
                (true, Some(detail)) => {
                    format!("{detail} (the vendor set the password and did not return it)")
                }
                (true, None) => "the vendor set the password and did not return it".to_owned(),
                (false, detail) => detail.unwrap_or_default(),
            };
            ResultRow {
                user: item.user,
                status: Status::Reset,
                password: applied.vendor_password.or_else(|| known.clone()),
                detail,
            }
        }
        Err(error)
            if matches!(
                error.kind,
                ErrorKind::AuthRefused | ErrorKind::QuotaExhausted
            ) =>
        {
            let reason = error.to_string();
            stop.set(reason.clone());
            not_attempted(item.user, &reason)
        }
        Err(error) if error.kind.definitely_not_applied() => ResultRow {
            user: item.user,
            status: Status::Failed,
            password: None,
            detail: error.message,
        },
        Err(error) => {
            let detail = match &known {
                Some(_) => format!("outcome unknown ({error}); this password may now be in effect"),
                None => {
                    format!("outcome unknown ({error}); the vendor may have set a new password")
                }
            };
            ResultRow {
                user: item.user,
                status: Status::Failed,
                password: known.clone(),
                detail,
            }
        }
    };
    scrub(row, known.as_ref().map(|k| k.expose()))
}

/// A `skipped` row for a user the job did not get to.
fn not_attempted(user: String, reason: &str) -> ResultRow {
    ResultRow {
        user,
        status: Status::Skipped,
        password: None,
        detail: format!("not attempted: the job stopped ({reason}); resume it to finish"),
    }
}

/// Removes the password from a vendor message that echoes it.
fn scrub(mut row: ResultRow, password: Option<&str>) -> ResultRow {
    if let Some(password) = password
        && password.len() >= 4
        && row.detail.contains(password)
    {
        row.detail = row.detail.replace(password, "[redacted]");
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_outcomes_keep_the_password() {
        let stop = Stop::default();
        let item = ResetItem {
            user: "u".into(),
            password: NewPassword::Known("Secret-123".into()),
        };
        let row = row_for(
            item.clone(),
            Err(ConnectorError::fatal("reply unreadable")),
            &stop,
        );
        assert_eq!(row.status, Status::Failed);
        assert_eq!(row.password.unwrap().expose(), "Secret-123");
        assert!(row.detail.contains("may now be in effect"));

        let row = row_for(
            item.clone(),
            Err(ConnectorError::rejected("bad Secret-123 value")),
            &stop,
        );
        assert!(row.password.is_none());
        assert_eq!(row.detail, "bad [redacted] value");
        assert!(stop.reason().is_none());

        let row = row_for(
            item,
            Err(ConnectorError::auth_refused("token revoked")),
            &stop,
        );
        assert_eq!(row.status, Status::Skipped);
        assert!(stop.reason().unwrap().contains("token revoked"));
    }

    #[test]
    fn vendor_kept_passwords_are_said_so() {
        let stop = Stop::default();
        let item = ResetItem {
            user: "u".into(),
            password: NewPassword::VendorGenerated,
        };
        let row = row_for(item, Ok(Applied::default()), &stop);
        assert_eq!(row.status, Status::Reset);
        assert!(row.password.is_none());
        assert!(row.detail.contains("did not return it"));
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Summary::default().exit(), Exit::Success);
        let failed = Summary {
            failed: 1,
            ..Summary::default()
        };
        assert_eq!(failed.exit(), Exit::Partial);
        let stopped = Summary {
            stopped: Some("x".into()),
            ..Summary::default()
        };
        assert_eq!(stopped.exit(), Exit::Stopped);
    }
}
