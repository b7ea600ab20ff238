//! `rekey jobs` and `rekey report JOB`: what the journal knows, never passwords.

use std::io::Write;

use anyhow::Context as _;
use serde::Serialize;

use super::table;
use crate::engine::store::UserState;
use crate::exit::{CommandResult, Exit, Failure};
use crate::journal::{JobState, Journal};

/// `rekey jobs`: one line per job, newest first.
pub async fn list(journal: &Journal) -> CommandResult {
    let jobs = journal.jobs().await.map_err(Failure::usage)?;
    if jobs.is_empty() {
        eprintln!("no jobs in {}", journal.path().display());
        return Ok(Exit::Success);
    }
    let mut rows = vec![
        [
            "JOB", "STARTED", "TARGET", "KIND", "RESET", "FAILED", "SKIPPED", "PENDING", "STATE",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for job in jobs {
        let state = match (&job.state, &job.stop_reason) {
            (JobState::Stopped, Some(reason)) => format!("stopped: {reason}"),
            (JobState::Planning, Some(reason)) => format!("stopped while planning: {reason}"),
            (state, _) => state.as_str().to_owned(),
        };
        rows.push(vec![
            job.id,
            job.started,
            job.target,
            job.kind,
            job.counts.reset.to_string(),
            job.counts.failed.to_string(),
            job.counts.set_aside.to_string(),
            job.counts.pending().to_string(),
            state,
        ]);
    }
    print!("{}", table(&rows));
    Ok(Exit::Success)
}

#[derive(Serialize)]
struct ReportRow<'a> {
    user: &'a str,
    status: &'a str,
    detail: &'a str,
}

/// `rekey report JOB`: each user's outcome as CSV (`user,status,detail`). Status is
/// `reset`, `failed`, `skipped` (set aside), `pending` (not attempted yet) or
/// `unknown` (sent, no answer recorded: `rekey resume` settles it).
pub async fn report(journal: &Journal, id: &str) -> CommandResult {
    let job = journal.job(id).await.map_err(Failure::usage)?;
    let mut out = csv::Writer::from_writer(std::io::stdout().lock());
    journal
        .for_each_user(&job.id, |user| {
            let status = match user.state {
                UserState::Reset => "reset",
                UserState::Failed => "failed",
                UserState::SetAside => "skipped",
                UserState::Planned => "pending",
                UserState::Sending => "unknown",
            };
            out.serialize(ReportRow {
                user: &user.user,
                status,
                detail: user.detail.as_deref().unwrap_or(""),
            })
            .context("writing the report")
        })
        .await
        .map_err(Failure::stopped)?;
    out.flush()
        .context("writing the report")
        .map_err(Failure::stopped)?;
    let _ = std::io::stdout().flush();
    Ok(Exit::Success)
}
