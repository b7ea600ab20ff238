//! The one runner of a job, for `reset`, `resume` and `discard` alike: check the
//! targets, plan the users if the job is still planning, execute, deliver the
//! results, and close the job (or leave it stopped, resumable).

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::anyhow;
use futures_util::future::join_all;
use rekey_api::{CheckReport, Secret};

use super::delivery::{self, Pending};
use super::lock::JobLock;
use super::planning;
use super::spec;
use crate::definition::JobDefinition;
use crate::engine::{self, JobSpec, Scope, StopSignal, Summary, UserRecord, UserState, retrying};
use crate::exit::{CommandResult, Failure};
use crate::interrupts::Interrupts;
use crate::journal::{Closing, JobRecord, JobState, Journal, JournalPlan};
use crate::progress::Progress;
use crate::results::{ResultsWriter, Status};
use crate::target::{Target, target_error};

/// How the runner came to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A new job (`rekey reset`): it exists only in planning, and is forgotten if
    /// anything fails before the first request is sent.
    Start {
        /// Whether the operator already said yes (`--yes`).
        confirmed: bool,
    },
    /// An interrupted job (`rekey resume`).
    Resume,
    /// A stopped job given up (`rekey discard`): no vendor is contacted.
    Discard {
        /// Whether the operator already said yes (`--yes`).
        confirmed: bool,
    },
}

/// A job, locked, with everything it needs to run.
pub struct Runner<'a> {
    /// The journal.
    pub journal: &'a Journal,
    /// The job's lock, held until the runner ends.
    pub lock: JobLock,
    /// The job's id.
    pub id: String,
    /// What the job is.
    pub definition: JobDefinition,
    /// Its one known value, if it has one.
    pub known: Option<Secret>,
    /// Its targets, opened, in the definition's order (none for a discard).
    pub targets: Vec<Target>,
    /// Ctrl-C and SIGTERM.
    pub interrupts: Arc<Interrupts>,
    /// Whether the operator asked for quiet output (no progress bar).
    pub quiet: bool,
}

impl Runner<'_> {
    /// Runs the job as `mode` says. `record` is the job as the journal has it
    /// (`None` for a new job).
    pub async fn run(self, mode: Mode, record: Option<&JobRecord>) -> CommandResult {
        match mode {
            Mode::Discard { confirmed } => self.discard(record, confirmed).await,
            Mode::Start { confirmed } => match self.prepare(mode, record, confirmed).await {
                Ok(prepared) => self.execute_and_deliver(prepared).await,
                Err(failure) => {
                    // Nothing was sent: the job is forgotten, so that it can simply be
                    // run again.
                    if let Err(error) = self.journal.delete_job(&self.id).await {
                        tracing::warn!("cannot forget job {}: {error:#}", self.id);
                    }
                    Err(failure)
                }
            },
            Mode::Resume => {
                let prepared = self.prepare(mode, record, true).await?;
                self.execute_and_deliver(prepared).await
            }
        }
    }

    /// Everything before the first request, on every target: what each target
    /// does resolved (credential kind, policy, pacing), every target
    /// authenticated, users planned on each (if the job is still planning), a new
    /// job's users checked against other open jobs and confirmed, and its results
    /// file created. Every failure here leaves every system untouched (exit 2).
    async fn prepare(
        &self,
        mode: Mode,
        record: Option<&JobRecord>,
        confirmed: bool,
    ) -> Result<Prepared, Failure> {
        let reached = async {
            // Every target's spec (kind, password source, pacing) is resolved before
            // any target is contacted.
            let specs = self
                .targets
                .iter()
                .map(|target| spec::for_target(&self.definition, target, self.known.as_ref()))
                .collect::<anyhow::Result<Vec<_>>>()
                .map_err(Failure::usage)?;
            let reports = self.interruptible(self.check_targets()).await??;
            if record.is_none_or(|r| r.state == JobState::Planning) {
                self.interruptible(self.plan(&reports)).await??;
            }
            Ok::<_, Failure>(specs)
        };
        let specs = match reached.await {
            Ok(specs) => specs,
            // A resumed job has changed things already: it stays, resumable.
            Err(failure) if mode == Mode::Resume => {
                return Err(Failure::stopped(failure.error.context(format!(
                    "job {} was not resumed; fix the problem and run: rekey resume {}",
                    self.id, self.id
                ))));
            }
            Err(failure) => return Err(failure),
        };
        if let Mode::Start { .. } = mode {
            if let Some(open) = self
                .journal
                .open_job_holding_a_user_of(&self.id)
                .await
                .map_err(Failure::usage)?
            {
                return Err(Failure::usage(anyhow!(
                    "user `{}` of target `{}` is still pending in job {}, which is not finished: resetting it again now would let that job set its old password back later. Finish that job with `rekey resume {}`, or give it up with `rekey discard {}`, then run this again",
                    open.user,
                    open.target,
                    open.job,
                    open.job,
                    open.job
                )));
            }
            let counts = self
                .journal
                .counts(&self.id, None)
                .await
                .map_err(Failure::usage)?;
            if !confirmed && !self.confirm(counts.pending())? {
                return Err(Failure::usage(anyhow!(
                    "not confirmed: nothing was changed"
                )));
            }
            let writer = delivery::create(&self.definition.output).map_err(Failure::usage)?;
            let writer = self.start_results(writer).await?;
            return Ok(Prepared {
                writer: Some(writer),
                specs,
            });
        }
        if let Some(record) = record {
            delivery::check_owned(&self.definition.output, record.results_file, &self.id)
                .map_err(Failure::usage)?;
        }
        Ok(Prepared {
            writer: None,
            specs,
        })
    }

    /// Records a new job's results file and writes its set-aside users' rows.
    async fn start_results(&self, mut writer: ResultsWriter) -> Result<ResultsWriter, Failure> {
        self.journal
            .set_results_file(&self.id, writer.identity())
            .await
            .map_err(Failure::usage)?;
        delivery::write_users(
            self.journal,
            &self.id,
            self.definition.kind,
            &mut writer,
            |state| state == UserState::SetAside,
            Pending::Stopped(""),
        )
        .await
        .map_err(|e| Failure::usage(e.context("cannot write the results file")))?;
        Ok(writer)
    }

    /// Authenticates against every target at once; names every target that
    /// failed.
    async fn check_targets(&self) -> Result<Vec<CheckReport>, Failure> {
        let checks = self.targets.iter().map(|target| async move {
            retrying(&spec::retry_policy(target), || target.connector.check())
                .await
                .map_err(|e| target_error(target.name(), "authenticating", e))
        });
        let mut reports = Vec::with_capacity(self.targets.len());
        let mut failed = Vec::new();
        for result in join_all(checks).await {
            match result {
                Ok(report) => reports.push(report),
                Err(error) => failed.push(error),
            }
        }
        match failed.len() {
            0 => Ok(reports),
            1 if self.targets.len() == 1 => Err(Failure::usage(failed.remove(0))),
            _ => {
                let failed: Vec<String> = failed.iter().map(|e| format!("{e:#}")).collect();
                Err(Failure::usage(anyhow!(
                    "{}; nothing was changed on any target",
                    failed.join("; ")
                )))
            }
        }
    }

    /// Resolves each target's users into the journal.
    async fn plan(&self, reports: &[CheckReport]) -> Result<(), Failure> {
        let names: Vec<String> = self.targets.iter().map(|t| t.name().to_owned()).collect();
        for (target, report) in self.targets.iter().zip(reports) {
            let mut sink = JournalPlan {
                journal: self.journal,
                scope: Scope {
                    job: &self.id,
                    target: target.name(),
                },
            };
            planning::plan_target(
                target,
                &self.definition,
                &names,
                report.account.as_deref(),
                &mut sink,
            )
            .await?;
        }
        Ok(())
    }

    /// Runs `work` unless the operator interrupts first (then nothing was sent).
    async fn interruptible<T>(&self, work: impl Future<Output = T>) -> Result<T, Failure> {
        let seen = self.interrupts.count();
        tokio::select! {
            result = work => Ok(result),
            () = self.interrupts.reached(seen + 1) => {
                Err(Failure::usage(anyhow!("interrupted before anything was sent: nothing was changed")))
            }
        }
    }

    /// Asks the operator on the terminal; refuses when there is none to ask.
    fn confirm(&self, count: u64) -> Result<bool, Failure> {
        if !std::io::stdin().is_terminal() {
            return Ok(true);
        }
        let question = format!(
            "Reset the {} of {count} users on {} `{}`? Type yes to continue: ",
            self.definition.kind,
            if self.targets.len() == 1 {
                "target"
            } else {
                "targets"
            },
            self.definition.target_names()
        );
        ask(&question)
    }

    /// Sends, then hands the results over and closes or stops the job.
    async fn execute_and_deliver(self, prepared: Prepared) -> CommandResult {
        let Prepared { writer, specs } = prepared;
        announce(&self.id);
        self.journal
            .set_state(&self.id, JobState::Running, None)
            .await
            .map_err(Failure::stopped)?;
        let writer = writer.map(Mutex::new);
        let outcome = self.execute(&specs, writer.as_ref()).await;
        let stopped = match &outcome {
            Ok(summaries) => stop_reason(summaries),
            Err(error) => Some(format!("{error:#}")),
        };
        let delivered = match writer {
            Some(writer) => {
                let writer = writer.into_inner().unwrap_or_else(PoisonError::into_inner);
                self.finish_stream(writer, stopped.as_deref()).await
            }
            None => self.rewrite(stopped.as_deref()).await,
        };
        if let Err(error) = delivered {
            let reason = format!("cannot write the results file: {error:#}");
            let _ = self
                .journal
                .set_state(&self.id, JobState::Stopped, Some(reason.clone()))
                .await;
            return Err(Failure::stopped(anyhow!(
                "{reason}; the journal keeps every password: fix the problem and run: rekey resume {}",
                self.id
            )));
        }
        match (outcome, stopped) {
            (Err(error), _) => {
                let _ = self
                    .journal
                    .set_state(&self.id, JobState::Stopped, Some(format!("{error:#}")))
                    .await;
                Err(Failure::stopped(error.context(format!(
                    "job {} failed; resume it with: rekey resume {}",
                    self.id, self.id
                ))))
            }
            (Ok(_), Some(reason)) => self.stop(reason).await,
            (Ok(_), None) => self.close(Closing::Finished).await,
        }
    }

    /// Runs every target side by side until each is settled or stopped: each with
    /// its own pacing, retry budget and stop signal, so that one target stopping
    /// (a spent quota, an outage) does not stop the others.
    async fn execute(
        &self,
        specs: &[JobSpec],
        writer: Option<&Mutex<ResultsWriter>>,
    ) -> anyhow::Result<Vec<(String, Summary)>> {
        let mut progress = Progress::new(self.targets.iter().map(Target::name), self.quiet);
        let mut runs = Vec::with_capacity(self.targets.len());
        let mut stops = Vec::with_capacity(self.targets.len());
        for (target, spec) in self.targets.iter().zip(specs) {
            let counts = self.journal.counts(&self.id, Some(target.name())).await?;
            let stop = Arc::new(StopSignal::default());
            stops.push(Arc::clone(&stop));
            let mut shown = progress.target(target.name(), counts.pending());
            runs.push(async move {
                let mut on_settled = |user: &UserRecord| -> anyhow::Result<()> {
                    shown.record(match user.state {
                        UserState::Reset => Status::Reset,
                        _ => Status::Failed,
                    });
                    if let Some(writer) = writer {
                        let mut writer = writer.lock().unwrap_or_else(PoisonError::into_inner);
                        delivery::write_row(
                            &mut writer,
                            target.name(),
                            self.definition.kind,
                            user,
                            Pending::Stopped(""),
                        )?;
                    }
                    Ok(())
                };
                let summary = engine::execute(
                    engine::Run {
                        connector: target.connector.as_ref(),
                        store: self.journal,
                        scope: Scope {
                            job: &self.id,
                            target: target.name(),
                        },
                        spec,
                        stop: &stop,
                    },
                    &mut on_settled,
                )
                .await?;
                anyhow::Ok((target.name().to_owned(), summary))
            });
        }
        let watcher = self.watch_interrupts(stops);
        let summaries = join_all(runs).await;
        watcher.abort();
        progress.finish();
        tracing::debug!(
            "journal: {} commits synced to disk",
            self.journal.synced_commits()
        );
        summaries.into_iter().collect()
    }

    /// Stops every target gracefully at the first interruption, and abandons
    /// requests in flight at the second.
    fn watch_interrupts(&self, stops: Vec<Arc<StopSignal>>) -> tokio::task::JoinHandle<()> {
        let job = self.id.clone();
        let interrupts = Arc::clone(&self.interrupts);
        tokio::spawn(async move {
            let seen = interrupts.count();
            interrupts.reached(seen + 1).await;
            stops.iter().for_each(|s| s.interrupt());
            eprintln!(
                "interrupted: taking no new users and letting requests in flight finish; press Ctrl-C again to stop waiting for them"
            );
            interrupts.reached(seen + 2).await;
            stops.iter().for_each(|s| s.abandon());
            eprintln!(
                "interrupted again: abandoning requests in flight and writing the results; every user is in the journal: finish with rekey resume {job}"
            );
        })
    }
}

/// What is settled before anything is sent.
struct Prepared {
    /// A new job's results file, written as users are settled.
    writer: Option<ResultsWriter>,
    /// What the job does on each target, in the targets' order.
    specs: Vec<JobSpec>,
}

/// Why a run stopped, if any target did: the reason alone for one target, each
/// stopped target's otherwise.
fn stop_reason(summaries: &[(String, Summary)]) -> Option<String> {
    let stopped: Vec<(&str, &str)> = summaries
        .iter()
        .filter_map(|(target, s)| s.stopped.as_deref().map(|r| (target.as_str(), r)))
        .collect();
    match stopped.as_slice() {
        [] => None,
        [(_, reason)] if summaries.len() == 1 => Some((*reason).to_owned()),
        many => Some(
            many.iter()
                .map(|(target, reason)| format!("{target}: {reason}"))
                .collect::<Vec<_>>()
                .join("; "),
        ),
    }
}

/// Says on standard error which job this is, once the targets are checked and
/// before anything is sent (with `-q` too): the journal holds everything needed to
/// finish it.
fn announce(job: &str) {
    let _ = writeln!(std::io::stderr(), "job {job}");
}

/// Asks a yes/no question on the terminal.
pub(super) fn ask(question: &str) -> Result<bool, Failure> {
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "{question}");
    let _ = stderr.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Failure::usage(anyhow!("cannot read the answer: {e}")))?;
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}
