//! Running a journaled job to its end (or its stop), for `reset` and `resume`, and
//! handing over its results.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use rekey_api::CredentialKind;

use super::signals;
use crate::cli::ResultsFormat;
use crate::engine::store::{JobStore, UserState};
use crate::engine::{self, JobSpec, StopSignal};
use crate::exit::{CommandResult, Exit, Failure};
use crate::journal::{JobState, Journal, UserRecord};
use crate::progress::Progress;
use crate::results::{ResultRow, ResultsWriter, Status, sync_dir};
use crate::target::Target;

/// How a run hands over its results.
pub enum Delivery {
    /// Rows are written as they come (a job's first run).
    Stream(ResultsWriter),
    /// The whole results file is written from the journal at the end (a resumed job).
    Rewrite {
        /// The results file, or `None` for standard output.
        out: Option<PathBuf>,
        /// Its format.
        format: ResultsFormat,
    },
}

/// Runs job `job` of `target` until every user is settled or the job stops, hands
/// over the results, and on completion erases the journal's passwords.
pub async fn run(
    target: &Target,
    journal: &Journal,
    job: &str,
    spec: &JobSpec,
    mut delivery: Delivery,
    quiet: bool,
) -> CommandResult {
    journal
        .set_state(job, JobState::Running, None)
        .await
        .map_err(Failure::stopped)?;
    let stop = Arc::new(StopSignal::default());
    let watcher = signals::watch(Arc::clone(&stop), job.to_owned());
    let counts = journal.counts(job).await.map_err(Failure::stopped)?;
    let mut progress = Progress::new(counts.pending(), quiet);
    let mut write_error = None;
    let result = engine::execute(
        engine::Run {
            connector: target.connector.as_ref(),
            store: journal,
            job,
            spec,
            stop: &stop,
        },
        &mut |row: ResultRow| {
            tracing::debug!(user = %row.user, status = %row.status, "outcome");
            progress.record(row.status);
            if let Delivery::Stream(writer) = &mut delivery
                && write_error.is_none()
            {
                write_error = writer.write(&row).err();
            }
            Ok(())
        },
    )
    .await;
    watcher.abort();
    progress.finish();
    tracing::debug!(
        "journal: {} commits synced to disk",
        journal.synced_commits()
    );
    let summary = match result {
        Ok(summary) => summary,
        Err(error) => {
            let _ = journal
                .set_state(job, JobState::Stopped, Some(format!("{error:#}")))
                .await;
            return Err(Failure::stopped(error.context(format!(
                "job {job} failed; resume it with: rekey resume {job}"
            ))));
        }
    };

    let delivered = match delivery {
        Delivery::Stream(writer) => match write_error {
            Some(error) => Err(anyhow!(error)),
            None => writer.finish().map_err(anyhow::Error::from),
        },
        Delivery::Rewrite { out, format } => {
            let record = journal.job(job).await.map_err(Failure::stopped)?;
            let kind: CredentialKind = record
                .kind
                .parse()
                .map_err(|e: String| Failure::stopped(anyhow!(e)))?;
            rewrite_results(
                journal,
                job,
                &record.target,
                kind,
                out.as_deref(),
                format,
                summary.stopped.as_deref(),
            )
            .await
        }
    };
    if let Err(error) = delivered {
        let reason = format!("cannot write the results file: {error:#}");
        let _ = journal
            .set_state(job, JobState::Stopped, Some(reason.clone()))
            .await;
        return Err(Failure::stopped(anyhow!(
            "{reason}; the journal keeps every password: fix the problem and run: rekey resume {job}"
        )));
    }

    let counts = journal.counts(job).await.map_err(Failure::stopped)?;
    if let Some(reason) = summary.stopped {
        journal
            .set_state(job, JobState::Stopped, Some(reason.clone()))
            .await
            .map_err(Failure::stopped)?;
        eprintln!(
            "job {job} stopped early ({reason}): {} reset, {} failed, {} still to do; finish it with: rekey resume {job}",
            counts.reset,
            counts.failed,
            counts.pending()
        );
        return Ok(Exit::Stopped);
    }
    journal
        .set_state(job, JobState::Finished, None)
        .await
        .map_err(Failure::stopped)?;
    if let Err(error) = journal.erase_passwords(job).await {
        tracing::warn!(
            "the results are delivered, but the journal's passwords could not be erased yet: {error:#}"
        );
    }
    tracing::info!(
        job,
        "finished: {} reset, {} failed{}",
        counts.reset,
        counts.failed,
        if counts.set_aside > 0 {
            format!(
                ", {} set aside (excluded or the connector's own account)",
                counts.set_aside
            )
        } else {
            String::new()
        }
    );
    Ok(if counts.failed > 0 {
        Exit::Partial
    } else {
        Exit::Success
    })
}

/// Writes the whole results file from the journal: a private temporary file next
/// to `out`, synced, then renamed over it (or standard output).
async fn rewrite_results(
    journal: &Journal,
    job: &str,
    target: &str,
    kind: CredentialKind,
    out: Option<&Path>,
    format: ResultsFormat,
    stopped: Option<&str>,
) -> anyhow::Result<()> {
    let Some(out) = out else {
        let mut writer = ResultsWriter::create(Path::new("-"), format, target, kind)?;
        write_rows(journal, job, &mut writer, stopped).await?;
        return Ok(writer.finish()?);
    };
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("results");
    let temp = dir.join(format!(".{name}.rekey-{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    let mut writer = ResultsWriter::create(&temp, format, target, kind)
        .with_context(|| format!("cannot create {}", temp.display()))?;
    let written = write_rows(journal, job, &mut writer, stopped)
        .await
        .and_then(|()| Ok(writer.finish()?));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(error);
    }
    std::fs::rename(&temp, out)
        .with_context(|| format!("cannot move the results into {}", out.display()))?;
    sync_dir(dir);
    Ok(())
}

async fn write_rows(
    journal: &Journal,
    job: &str,
    writer: &mut ResultsWriter,
    stopped: Option<&str>,
) -> anyhow::Result<()> {
    journal
        .for_each_user(job, |user| {
            Ok(writer.write(&row_of(user, stopped.unwrap_or("interrupted")))?)
        })
        .await
}

/// The results row of a user as the journal has it.
fn row_of(user: UserRecord, stop_reason: &str) -> ResultRow {
    let detail = user.detail.unwrap_or_default();
    match user.state {
        UserState::Reset => ResultRow {
            user: user.user,
            status: Status::Reset,
            password: user.password,
            detail,
        },
        UserState::Failed => ResultRow {
            user: user.user,
            status: Status::Failed,
            password: user.password,
            detail,
        },
        UserState::SetAside => ResultRow {
            user: user.user,
            status: Status::Skipped,
            password: None,
            detail,
        },
        UserState::Planned | UserState::Sending => engine::unsettled_row(
            user.user,
            user.password,
            user.state == UserState::Sending,
            stop_reason,
        ),
    }
}

/// Writes the set-aside users' rows at the start of a streamed results file.
pub async fn write_set_aside(
    journal: &Journal,
    job: &str,
    writer: &mut ResultsWriter,
) -> anyhow::Result<()> {
    journal
        .for_each_user(job, |user| match user.state {
            UserState::SetAside => Ok(writer.write(&row_of(user, ""))?),
            _ => Ok(()),
        })
        .await
}

/// Says on standard error that the command line is not needed to finish: the
/// journal holds everything.
pub fn announce(job: &str) {
    let mut stderr = std::io::stderr();
    let _ = writeln!(stderr, "job {job}");
}
