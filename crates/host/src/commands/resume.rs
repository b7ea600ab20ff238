//! `rekey resume JOB`: finish an interrupted job.
//!
//! Users already reset keep the password they got; users whose outcome is unknown
//! are sent again with the very same password; users never attempted are reset;
//! and the results file is rewritten, complete, at the job's `--out` path.

use anyhow::{anyhow, bail};

use super::job::{self, Delivery};
use super::reset::{generator, retry_policy};
use super::target_failure;
use crate::cli::ResultsFormat;
use crate::engine::plan::{JournalPlan, PlanError, Rules};
use crate::engine::{self, JobSpec, PasswordSource, Selection};
use crate::exit::{CommandResult, Failure};
use crate::journal::{JobRecord, JobState, Journal, SelectionRecord, SourceRecord};
use crate::target::{Context, Target};

pub async fn run(context: &Context, id: &str, quiet: bool) -> CommandResult {
    let journal =
        Journal::open(&context.state_root().map_err(Failure::usage)?).map_err(Failure::usage)?;
    let record = journal.job(id).await.map_err(Failure::usage)?;
    let job = record.id.clone();
    if record.state == JobState::Finished {
        return Err(Failure::usage(anyhow!(
            "job {job} is already finished; `rekey report {job}` shows its outcomes"
        )));
    }
    let target = Target::open(context, &record.target).map_err(Failure::usage)?;
    if target.metadata().name != record.connector {
        return Err(Failure::usage(anyhow!(
            "job {job} ran on target `{}` with the {} connector, but that target now uses {}: restore the target's config to resume",
            record.target,
            record.connector,
            target.metadata().name
        )));
    }
    let spec = spec(&target, &journal, &record)
        .await
        .map_err(Failure::usage)?;
    job::announce(&job);
    tracing::info!(job = %job, target = %record.target, "resuming");

    let report = engine::retrying(&spec.retry, || target.connector.check())
        .await
        .map_err(|e| target_failure(&record.target, "authenticating", e))?;
    if record.state == JobState::Planning {
        // Planning was interrupted: finish it. Users already planned are kept as they
        // are; nothing was sent while planning.
        let exclude: Vec<String> = target
            .config
            .exclude
            .iter()
            .chain(&record.options.exclude)
            .cloned()
            .collect();
        let rules = Rules {
            retry: spec.retry,
            exclude: &exclude,
            own_account: report.account.as_deref(),
            case_insensitive: target.metadata().case_insensitive_ids,
        };
        let selection = match &record.options.selection {
            SelectionRecord::Ids(ids) => Selection::Ids(ids.clone()),
            SelectionRecord::File(path) => Selection::File(path.clone()),
            SelectionRecord::All => Selection::All,
        };
        let mut sink = JournalPlan {
            journal: &journal,
            job: &job,
        };
        engine::plan(target.connector.as_ref(), &selection, &rules, &mut sink)
            .await
            .map_err(|e| match e {
                PlanError::Input(e) => Failure::usage(e),
                PlanError::Listing(e) => target_failure(&record.target, "listing users", e),
                PlanError::Store(e) => Failure::stopped(e),
            })?;
    }
    let format = if record.options.format == "jsonl" {
        ResultsFormat::Jsonl
    } else {
        ResultsFormat::Csv
    };
    let delivery = Delivery::Rewrite {
        out: record.options.out.clone(),
        format,
    };
    job::run(&target, &journal, &job, &spec, delivery, quiet).await
}

/// The job's spec, rebuilt from what the journal recorded and the target's
/// current config.
async fn spec(target: &Target, journal: &Journal, record: &JobRecord) -> anyhow::Result<JobSpec> {
    let kind = record.kind.parse().map_err(|e: String| anyhow!(e))?;
    let passwords = match record.options.source {
        SourceRecord::Generate => PasswordSource::Generate(generator(target, kind)?),
        SourceRecord::Known => match journal.known_value(&record.id).await? {
            Some(value) => PasswordSource::Known(value),
            None => bail!(
                "job {} lost its known value; it cannot be resumed",
                record.id
            ),
        },
        SourceRecord::VendorValues => PasswordSource::VendorValues,
        SourceRecord::VendorInPlace => PasswordSource::VendorInPlace,
    };
    Ok(JobSpec {
        kind,
        passwords,
        concurrency: record.options.concurrency.max(1) as usize,
        retry: retry_policy(target),
    })
}
