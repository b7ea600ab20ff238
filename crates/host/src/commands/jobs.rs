//! `rekey jobs` and `rekey report JOB`: what the journal knows, never passwords.
//! Neither waits for a running job.

use std::io::Write;

use serde::Serialize;

use super::{output_written, table};
use crate::engine::UserState;
use crate::exit::{CommandResult, Failure};
use crate::job::JobLock;
use crate::journal::{JobRecord, JobState, Journal};
use crate::state::StateDir;

/// `rekey jobs`: one line per job, newest first.
pub async fn list(state: &StateDir, journal: &Journal) -> CommandResult {
    let jobs = journal.jobs().await.map_err(Failure::usage)?;
    if jobs.is_empty() {
        eprintln!("no jobs in {}", journal.path().display());
        return output_written(Ok(()));
    }
    let mut rows = vec![
        [
            "JOB",
            "STARTED",
            "TARGETS",
            "KIND",
            "RESET",
            "FAILED",
            "SKIPPED",
            "PENDING",
            "PASSWORDS",
            "STATE",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for job in jobs {
        let state = describe_state(state, &job);
        rows.push(vec![
            job.id,
            job.started,
            job.definition.target_names().replace(", ", ","),
            job.definition.kind.to_string(),
            job.counts.reset.to_string(),
            job.counts.failed.to_string(),
            job.counts.set_aside.to_string(),
            job.counts.pending().to_string(),
            if job.holds_passwords {
                "held"
            } else {
                "erased"
            }
            .to_owned(),
            state,
        ]);
    }
    let mut out = std::io::stdout().lock();
    let written = out
        .write_all(table(&rows).as_bytes())
        .and_then(|()| out.flush());
    if journal.scrub_pending().await.unwrap_or(false) {
        eprintln!(
            "note: erased passwords may still linger in {}'s free pages until a rekey command can compact it (another rekey is using it)",
            journal.path().display()
        );
    }
    output_written(written)
}

/// Where a job stands, as `rekey jobs` shows it: a job whose process died while
/// running is shown stopped.
fn describe_state(state: &StateDir, job: &JobRecord) -> String {
    if !job.state.is_closed()
        && let Some(holder) = JobLock::holder_of(state, &job.id)
    {
        return format!("running ({holder})");
    }
    match (&job.state, &job.stop_reason) {
        (JobState::Stopped, Some(reason)) => format!("stopped: {reason}"),
        (JobState::Planning, _) => "stopped while planning (nothing sent)".to_owned(),
        (JobState::Running, _) => "stopped: rekey ended while it ran".to_owned(),
        (state, _) => state.as_str().to_owned(),
    }
}

#[derive(Serialize)]
struct ReportRow<'a> {
    target: &'a str,
    user: &'a str,
    status: &'a str,
    detail: &'a str,
}

/// `rekey report JOB`: each user's outcome as CSV (`target,user,status,detail`).
/// Status is `reset`, `failed`, `skipped` (set aside), `pending` (not attempted
/// yet) or `unknown` (sent, no answer recorded: `rekey resume` settles it).
pub async fn report(journal: &Journal, id: &str) -> CommandResult {
    let job = journal.job(id).await.map_err(Failure::usage)?;
    let mut out = csv::Writer::from_writer(std::io::stdout().lock());
    let written = journal
        .for_each_user(&job.id, |target, user| {
            let status = match user.state {
                UserState::Reset => "reset",
                UserState::Failed => "failed",
                UserState::SetAside => "skipped",
                UserState::Planned => "pending",
                UserState::Sending => "unknown",
            };
            out.serialize(ReportRow {
                target,
                user: &user.user,
                status,
                detail: &user.detail,
            })?;
            Ok(())
        })
        .await;
    let written = match written {
        Ok(()) => out.flush(),
        Err(error) => match error.downcast::<csv::Error>() {
            Ok(error) => Err(std::io::Error::from(error)),
            Err(error) => return Err(Failure::stopped(error.context("reading the journal"))),
        },
    };
    output_written(written)
}
