//! `rekey reset TARGET (--user ID... | --users FILE | --all) [options]`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail};
use rekey_api::{Capability, CredentialKind, Secret};
use rekey_policy::is_acceptable_passcode;

use super::job::{self, Delivery};
use super::target_failure;
use crate::cli::{ResetArgs, ResultsFormat};
use crate::config::read_secret_file;
use crate::engine::plan::{JournalPlan, PlanError, PrintedPlan, Rules};
use crate::engine::store::JobStore;
use crate::engine::{self, Generator, JobSpec, PasswordSource, RetryPolicy, Selection};
use crate::exit::{CommandResult, Exit, Failure};
use crate::journal::{JobOptions, JobState, Journal, NewJob, SelectionRecord, SourceRecord};
use crate::results::ResultsWriter;
use crate::target::{Context, Target};

/// Concurrency when neither the command line nor the target says.
const DEFAULT_CONCURRENCY: u32 = 8;

pub async fn run(context: &Context, args: &ResetArgs, quiet: bool) -> CommandResult {
    // Everything that can be checked without the vendor is checked first: a usage
    // or config error must leave every system untouched.
    let target = Target::open(context, &args.target).map_err(Failure::usage)?;
    let plan = Plan::new(&target, args).map_err(Failure::usage)?;
    let own_exclude: Vec<String> = target
        .config
        .exclude
        .iter()
        .chain(&args.exclude)
        .cloned()
        .collect();
    let spec = JobSpec {
        kind: args.kind,
        passwords: plan.passwords.clone(),
        concurrency: plan.concurrency as usize,
        retry: retry_policy(&target),
    };

    if args.dry_run {
        let report = engine::retrying(&spec.retry, || target.connector.check())
            .await
            .map_err(|e| target_failure(&args.target, "authenticating", e))?;
        return dry_run(
            &target,
            args,
            &plan,
            &own_exclude,
            report.account.as_deref(),
        )
        .await;
    }

    let journal =
        Journal::open(&context.state_root().map_err(Failure::usage)?).map_err(Failure::usage)?;
    let job = new_job_id();
    journal
        .create_job(NewJob {
            id: job.clone(),
            target: args.target.clone(),
            connector: target.metadata().name.clone(),
            kind: args.kind.as_str().to_owned(),
            options: plan.record(args).map_err(Failure::usage)?,
            known_value: match &plan.passwords {
                PasswordSource::Known(value) => Some(value.clone()),
                _ => None,
            },
        })
        .await
        .map_err(Failure::usage)?;
    job::announce(&job);
    tracing::info!(job = %job, target = %args.target, kind = %args.kind, "starting");

    // Stopped before its users were all planned: the job stays in planning, so
    // that `rekey resume` plans them first.
    let stopped = |failure: Failure| async {
        let reason = format!("{:#}", failure.error);
        let _ = journal
            .set_state(&job, JobState::Planning, Some(reason))
            .await;
        eprintln!("job {job} stopped before it began; finish it with: rekey resume {job}");
        failure
    };
    let report = match engine::retrying(&spec.retry, || target.connector.check()).await {
        Ok(report) => report,
        Err(error) => {
            return Err(stopped(target_failure(&args.target, "authenticating", error)).await);
        }
    };
    let rules = Rules {
        retry: spec.retry,
        exclude: &own_exclude,
        own_account: report.account.as_deref(),
        case_insensitive: target.metadata().case_insensitive_ids,
    };
    let mut sink = JournalPlan {
        journal: &journal,
        job: &job,
    };
    match engine::plan(
        target.connector.as_ref(),
        &plan.selection,
        &rules,
        &mut sink,
    )
    .await
    {
        Ok(planned) if planned.repeated > 0 => {
            tracing::info!("{} repeated user ids ignored", planned.repeated)
        }
        Ok(_) => {}
        Err(PlanError::Input(error)) => {
            let _ = journal.delete_job(&job).await;
            return Err(Failure::usage(error));
        }
        Err(PlanError::Listing(error)) => {
            return Err(stopped(target_failure(&args.target, "listing users", error)).await);
        }
        Err(PlanError::Store(error)) => return Err(stopped(Failure::stopped(error)).await),
    }
    let counts = journal.counts(&job).await.map_err(Failure::stopped)?;
    if !args.yes && std::io::stdin().is_terminal() && !confirm(&target, args, counts.pending())? {
        let _ = journal.delete_job(&job).await;
        return Err(Failure::usage(anyhow!(
            "not confirmed: nothing was changed"
        )));
    }

    let out = plan.out.clone().unwrap_or_else(|| PathBuf::from("-"));
    let mut results = match ResultsWriter::create(&out, args.format, &args.target, args.kind) {
        Ok(results) => results,
        Err(error) => {
            let _ = journal.delete_job(&job).await;
            return Err(Failure::usage(anyhow!(
                "cannot create the results file {}: {error}",
                out.display()
            )));
        }
    };
    job::write_set_aside(&journal, &job, &mut results)
        .await
        .map_err(|e| Failure::stopped(e.context("cannot write the results file")))?;
    job::run(
        &target,
        &journal,
        &job,
        &spec,
        Delivery::Stream(results),
        quiet,
    )
    .await
}

/// The retry policy of a target: its `retry_budget`, else the default.
pub(super) fn retry_policy(target: &Target) -> RetryPolicy {
    let mut policy = RetryPolicy::default();
    if let Some(seconds) = target.config.retry_budget {
        policy.budget = Duration::from_secs(seconds);
    }
    policy
}

/// `--dry-run`: the plan on standard output, nothing changed, nothing journaled.
async fn dry_run(
    target: &Target,
    args: &ResetArgs,
    plan: &Plan,
    exclude: &[String],
    own: Option<&str>,
) -> CommandResult {
    let rules = Rules {
        retry: retry_policy(target),
        exclude,
        own_account: own,
        case_insensitive: target.metadata().case_insensitive_ids,
    };
    let mut printed = PrintedPlan::new(std::io::stdout());
    let planned = engine::plan(
        target.connector.as_ref(),
        &plan.selection,
        &rules,
        &mut printed,
    )
    .await
    .map_err(|e| match e {
        PlanError::Input(e) => Failure::usage(e),
        PlanError::Listing(e) => target_failure(&args.target, "listing users", e),
        PlanError::Store(e) => Failure::stopped(e),
    })?;
    eprintln!(
        "dry run: would reset the {} of {} users on target `{}` ({}); {} set aside; nothing was changed",
        args.kind,
        planned.selected,
        args.target,
        target.metadata().name,
        planned.set_aside
    );
    Ok(Exit::Success)
}

/// What `reset` will do, worked out from the arguments and the target before any
/// contact with the vendor.
struct Plan {
    selection: Selection,
    passwords: PasswordSource,
    out: Option<PathBuf>,
    concurrency: u32,
}

impl Plan {
    fn new(target: &Target, args: &ResetArgs) -> anyhow::Result<Plan> {
        let meta = target.metadata();
        if !meta.kinds.contains(&args.kind) {
            let kinds: Vec<&str> = meta.kinds.iter().map(|k| k.as_str()).collect();
            bail!(
                "the {} connector of target `{}` cannot reset `{}` credentials; it supports: {}",
                meta.name,
                args.target,
                args.kind,
                kinds.join(", ")
            );
        }
        let selection = if args.all {
            if !meta.has(Capability::ListUsers) {
                bail!(
                    "the {} connector cannot list users, so --all is not possible: use --user or --users",
                    meta.name
                );
            }
            Selection::All
        } else if let Some(file) = &args.users {
            if !file.is_file() {
                bail!("users file {} does not exist", file.display());
            }
            Selection::File(file.clone())
        } else {
            Selection::Ids(args.user.clone())
        };
        let passwords = Self::passwords(target, args)?;
        let out = match &args.out {
            Some(path) if path != Path::new("-") && path.exists() => {
                bail!(
                    "results file {} already exists: rekey never overwrites one; choose another --out",
                    path.display()
                )
            }
            Some(path) => Some(path.clone()),
            None if passwords.knows_passwords() && !args.dry_run => {
                bail!(
                    "--out FILE is required: this run will know new passwords and must hand them over (use --out - for standard output)"
                )
            }
            None => None,
        };
        let concurrency = args
            .concurrency
            .or(target.config.concurrency)
            .unwrap_or(DEFAULT_CONCURRENCY);
        Ok(Plan {
            selection,
            passwords,
            out,
            concurrency,
        })
    }

    /// The plan as the journal records it, to finish the job later.
    fn record(&self, args: &ResetArgs) -> anyhow::Result<JobOptions> {
        let absolute = |path: &Path| -> anyhow::Result<PathBuf> {
            Ok(if path.is_absolute() {
                path.to_owned()
            } else {
                std::env::current_dir()?.join(path)
            })
        };
        Ok(JobOptions {
            selection: match &self.selection {
                Selection::Ids(ids) => SelectionRecord::Ids(ids.clone()),
                Selection::File(path) => SelectionRecord::File(absolute(path)?),
                Selection::All => SelectionRecord::All,
            },
            exclude: args.exclude.clone(),
            source: match &self.passwords {
                PasswordSource::Generate(_) => SourceRecord::Generate,
                PasswordSource::Known(_) => SourceRecord::Known,
                PasswordSource::VendorValues => SourceRecord::VendorValues,
                PasswordSource::VendorInPlace => SourceRecord::VendorInPlace,
            },
            concurrency: self.concurrency,
            out: self.out.as_deref().map(absolute).transpose()?,
            format: match args.format {
                ResultsFormat::Csv => "csv".into(),
                ResultsFormat::Jsonl => "jsonl".into(),
            },
        })
    }

    fn passwords(target: &Target, args: &ResetArgs) -> anyhow::Result<PasswordSource> {
        let meta = target.metadata();
        if args.vendor_generate {
            return if meta.has(Capability::VendorValues) {
                Ok(PasswordSource::VendorValues)
            } else if meta.has(Capability::VendorReset) {
                Ok(PasswordSource::VendorInPlace)
            } else {
                bail!(
                    "the {} connector cannot have the vendor make passwords; drop --vendor-generate",
                    meta.name
                )
            };
        }
        let known = match (&args.password_env, &args.password_file) {
            (Some(var), _) => Some(read_env_password(var)?),
            (_, Some(file)) => Some(read_secret_file(file)?),
            _ => None,
        };
        if let Some(value) = known {
            check_known_value(target, args.kind, &value)?;
            return Ok(PasswordSource::Known(value));
        }
        let generator = match args.kind {
            CredentialKind::Passcode => {
                Generator::Passcode(target.config.passcode_policy.generator()?)
            }
            CredentialKind::Password | CredentialKind::Sip => {
                Generator::Password(Box::new(target.config.policy.generator()?))
            }
        };
        Ok(PasswordSource::Generate(generator))
    }
}

/// The local generator for `kind` from the target's policies.
pub(super) fn generator(target: &Target, kind: CredentialKind) -> anyhow::Result<Generator> {
    Ok(match kind {
        CredentialKind::Passcode => Generator::Passcode(target.config.passcode_policy.generator()?),
        CredentialKind::Password | CredentialKind::Sip => {
            Generator::Password(Box::new(target.config.policy.generator()?))
        }
    })
}

fn read_env_password(var: &str) -> anyhow::Result<Secret> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Ok(Secret::new(value)),
        Ok(_) => bail!("environment variable {var} (--password-env) is empty"),
        Err(_) => bail!("environment variable {var} (--password-env) is not set"),
    }
}

/// Refuses a known value the vendor would refuse anyway, before anything is sent.
fn check_known_value(target: &Target, kind: CredentialKind, value: &Secret) -> anyhow::Result<()> {
    if kind == CredentialKind::Passcode {
        if !value.expose().bytes().all(|b| b.is_ascii_digit()) {
            bail!("the new passcode must be digits only");
        }
        if !is_acceptable_passcode(value.expose()) {
            tracing::warn!(
                "the new passcode repeats a digit three times or runs four digits in a row; PBXs often refuse that"
            );
        }
        return Ok(());
    }
    target
        .metadata()
        .password_rules
        .check(value.expose())
        .map_err(|why| {
            anyhow!(
                "the new password does not suit the {} connector: {why}",
                target.metadata().name
            )
        })
}

/// Asks the operator on the terminal.
fn confirm(target: &Target, args: &ResetArgs, count: u64) -> Result<bool, Failure> {
    let mut stderr = std::io::stderr();
    let _ = write!(
        stderr,
        "Reset the {} of {count} users on target `{}` ({})? Type yes to continue: ",
        args.kind,
        args.target,
        target.metadata().name
    );
    let _ = stderr.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Failure::usage(anyhow!("cannot read the answer: {e}")))?;
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}

/// A new job id: the UTC time and a random suffix (`20261123-150412-3f9a`).
fn new_job_id() -> String {
    let now = time::OffsetDateTime::now_utc();
    let stamp = now
        .format(time::macros::format_description!(
            "[year][month][day]-[hour][minute][second]"
        ))
        .unwrap_or_default();
    format!("{stamp}-{:04x}", rand::random::<u16>())
}
