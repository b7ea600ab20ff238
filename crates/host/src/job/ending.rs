//! How a run ends: the results handed over, then the job closed (its passwords
//! erased) or left stopped for `rekey resume`; and `rekey discard`.

use anyhow::anyhow;
use std::io::IsTerminal as _;

use super::delivery::{self, DISCARDED_UNKNOWN, DISCARDED_UNTRIED, Pending};
use super::runner::{Runner, ask};
use crate::engine::UserState;
use crate::exit::{CommandResult, Exit, Failure};
use crate::journal::{Closing, JobRecord, JobState};
use crate::results::ResultsWriter;

impl Runner<'_> {
    /// Ends a new job's live results: if the job stopped, the rows of the users it
    /// did not settle; then everything flushed and synced.
    pub(super) async fn finish_stream(
        &self,
        mut writer: ResultsWriter,
        stopped: Option<&str>,
    ) -> anyhow::Result<()> {
        if let Some(reason) = stopped {
            delivery::write_users(
                self.journal,
                &self.id,
                self.definition.kind,
                &mut writer,
                UserState::is_pending,
                Pending::Stopped(reason),
            )
            .await?;
        }
        Ok(writer.finish()?)
    }

    /// Rewrites a resumed job's whole results file from the journal.
    pub(super) async fn rewrite(&self, stopped: Option<&str>) -> anyhow::Result<()> {
        self.rewrite_as(Pending::Stopped(stopped.unwrap_or("interrupted")))
            .await
    }

    async fn rewrite_as(&self, pending: Pending<'_>) -> anyhow::Result<()> {
        let output = &self.definition.output;
        let identity = delivery::rewrite(
            self.journal,
            &self.id,
            self.definition.kind,
            output,
            pending,
        )
        .await?;
        if output.path.is_some() {
            self.journal.set_results_file(&self.id, identity).await?;
        }
        Ok(())
    }

    /// Leaves the job stopped, resumable.
    pub(super) async fn stop(self, reason: String) -> CommandResult {
        self.journal
            .set_state(&self.id, JobState::Stopped, Some(reason.clone()))
            .await
            .map_err(Failure::stopped)?;
        let counts = self
            .journal
            .counts(&self.id, None)
            .await
            .map_err(Failure::stopped)?;
        eprintln!(
            "job {job} stopped early ({reason}): {} reset, {} failed, {} still to do; finish it with: rekey resume {job}",
            counts.reset,
            counts.failed,
            counts.pending(),
            job = self.id
        );
        Ok(Exit::Stopped)
    }

    /// Closes a job whose results are durable: its passwords erased.
    pub(super) async fn close(self, closing: Closing<'_>) -> CommandResult {
        self.journal
            .close(&self.id, closing)
            .await
            .map_err(|e| {
                Failure::stopped(e.context(format!(
                    "the results are written, but job {} could not be closed: run rekey resume {} to close it",
                    self.id, self.id
                )))
            })?;
        self.lock.release_closed();
        let counts = self
            .journal
            .counts(&self.id, None)
            .await
            .map_err(Failure::stopped)?;
        if let Closing::Discarded { .. } = closing {
            return Ok(Exit::Success);
        }
        tracing::info!(
            job = self.id,
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

    /// `rekey discard`: the results file written with every outcome known, then the
    /// job closed. No vendor is contacted.
    pub(super) async fn discard(
        self,
        record: Option<&JobRecord>,
        confirmed: bool,
    ) -> CommandResult {
        if !confirmed {
            if !std::io::stdin().is_terminal() {
                return Err(Failure::usage(anyhow!(
                    "discarding job {} needs --yes when standard input is not a terminal",
                    self.id
                )));
            }
            let question = format!(
                "Discard job {}? Users whose outcome is unknown will be listed as failed, with the password that may be in effect, and the journal will forget every password. Type yes to continue: ",
                self.id
            );
            if !ask(&question)? {
                return Err(Failure::usage(anyhow!(
                    "not confirmed: nothing was changed"
                )));
            }
        }
        if let Some(record) = record {
            delivery::check_owned(&self.definition.output, record.results_file, &self.id)
                .map_err(Failure::usage)?;
        }
        let before = self
            .journal
            .counts(&self.id, None)
            .await
            .map_err(Failure::stopped)?;
        if let Err(error) = self.rewrite_as(Pending::Discarded).await {
            return Err(Failure::stopped(error.context(format!(
                "cannot write the results file of job {}; nothing was erased: fix the problem and run rekey discard {} again",
                self.id, self.id
            ))));
        }
        let job = self.id.clone();
        let exit = self
            .close(Closing::Discarded {
                unknown: DISCARDED_UNKNOWN,
                untried: DISCARDED_UNTRIED,
            })
            .await?;
        eprintln!(
            "job {job} discarded: {} users whose outcome was unknown are listed as failed, with the password that may be in effect; {} never attempted are listed as skipped; the journal holds no password of it any more",
            before.sending, before.planned
        );
        Ok(exit)
    }
}
