//! `rekey resume JOB` and `rekey discard JOB`: load a journaled job, lock it, and
//! hand it to the runner.
//!
//! Resuming: users already reset keep the password they got; users whose outcome
//! is unknown are sent again with the very same password; users never attempted
//! are reset; and the results file is rewritten, complete, at the job's `--out`
//! path. Discarding contacts no vendor.

use std::sync::Arc;

use anyhow::anyhow;

use super::open_state;
use crate::exit::{CommandResult, Failure};
use crate::interrupts::Interrupts;
use crate::job::{JobLock, LockError, Mode, Runner};
use crate::journal::{JobRecord, Journal};
use crate::state::StateDir;
use crate::target::{Context, Target};

/// `rekey resume JOB`.
pub async fn resume(
    context: &Context,
    id: &str,
    quiet: bool,
    interrupts: Arc<Interrupts>,
) -> CommandResult {
    let (state, journal) = open_state(context).await?;
    let (record, lock) = locked_job(&state, &journal, id).await?;
    let targets = record
        .definition
        .targets
        .iter()
        .map(|planned| {
            let target = Target::open(context, &state, &planned.name)?;
            if target.metadata().name != planned.connector {
                anyhow::bail!(
                    "job {} ran on target `{}` with the {} connector, but that target now uses {}: restore the target's config to resume",
                    record.id,
                    planned.name,
                    planned.connector,
                    target.metadata().name
                );
            }
            Ok(target)
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(Failure::usage)?;
    let known = journal
        .known_value(&record.id)
        .await
        .map_err(Failure::usage)?;
    tracing::info!(job = %record.id, targets = %record.definition.target_names(), "resuming");
    Runner {
        journal: &journal,
        lock,
        id: record.id.clone(),
        definition: record.definition.clone(),
        known,
        targets,
        interrupts,
        quiet,
    }
    .run(Mode::Resume, Some(&record))
    .await
}

/// `rekey discard JOB [--yes]`.
pub async fn discard(
    context: &Context,
    id: &str,
    yes: bool,
    interrupts: Arc<Interrupts>,
) -> CommandResult {
    let (state, journal) = open_state(context).await?;
    let (record, lock) = locked_job(&state, &journal, id).await?;
    Runner {
        journal: &journal,
        lock,
        id: record.id.clone(),
        definition: record.definition.clone(),
        known: None,
        targets: Vec::new(),
        interrupts,
        quiet: true,
    }
    .run(Mode::Discard { confirmed: yes }, Some(&record))
    .await
}

/// The job `id` names, locked for this process, and still open.
async fn locked_job(
    state: &StateDir,
    journal: &Journal,
    id: &str,
) -> CommandResult<(JobRecord, JobLock)> {
    let found = journal.job(id).await.map_err(Failure::usage)?;
    let lock = JobLock::acquire(state, &found.id).map_err(|e| match e {
        LockError::Running { .. } => Failure::usage(anyhow!(e)),
        LockError::Io(e) => Failure::usage(e),
    })?;
    // Read again under the lock: the job may have ended meanwhile.
    let record = journal.job(&found.id).await.map_err(Failure::usage)?;
    if record.state.is_closed() {
        return Err(Failure::usage(anyhow!(
            "job {} is already {}; `rekey report {}` shows its outcomes",
            record.id,
            record.state.as_str(),
            record.id
        )));
    }
    Ok((record, lock))
}
