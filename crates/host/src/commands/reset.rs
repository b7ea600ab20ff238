//! `rekey reset TARGET... (--user ID... | --users FILE | --all) [options]`: builds
//! the job's definition, checks everything that can be checked without a vendor,
//! and hands the job to the runner.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail};
use rekey_api::{Capability, CredentialKind, Secret};
use rekey_policy::{begins_formula, is_acceptable_passcode};

use super::open_state;
use crate::cli::ResetArgs;
use crate::config::read_secret_file;
use crate::definition::{JobDefinition, JobTarget, Output, PasswordChoice};
use crate::engine::{PrintedPlan, Selection, retrying};
use crate::exit::{CommandResult, Exit, Failure};
use crate::interrupts::Interrupts;
use crate::job::{JobLock, LockError, Mode, Runner, password_source, plan_target, retry_policy};
use crate::results::Recipients;
use crate::target::{Context, Target, target_error};
use crate::users_file::check_user_id;

pub async fn run(
    context: &Context,
    args: &ResetArgs,
    quiet: bool,
    interrupts: Arc<Interrupts>,
) -> CommandResult {
    // Everything that can be checked without the vendor is checked first: a usage
    // or config error must leave every system untouched.
    let (state, journal) = open_state(context).await?;
    let mut names: Vec<&String> = Vec::new();
    for name in &args.targets {
        if names.contains(&name) {
            return Err(Failure::usage(anyhow!("target `{name}` is named twice")));
        }
        names.push(name);
    }
    let targets = names
        .iter()
        .map(|name| Target::open(context, &state, name))
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(Failure::usage)?;
    let known = known_value(args).map_err(Failure::usage)?;
    let recipients = recipients(context, args).map_err(Failure::usage)?;
    let definition =
        definition(&targets, args, known.as_ref(), recipients).map_err(Failure::usage)?;

    if args.dry_run {
        let seen = interrupts.count();
        return tokio::select! {
            result = dry_run(&targets, &definition) => result,
            () = interrupts.reached(seen + 1) => Err(Failure::usage(anyhow!("interrupted: nothing was changed"))),
        };
    }

    let id = super::new_job_id();
    let lock = JobLock::acquire(&state, &id).map_err(|e| match e {
        LockError::Running { .. } => Failure::usage(anyhow!("job id {id} is taken; run again")),
        LockError::Io(e) => Failure::usage(e),
    })?;
    journal
        .create_job(&id, &definition, known.as_ref())
        .await
        .map_err(Failure::usage)?;
    tracing::info!(
        job = %id,
        targets = %definition.target_names(),
        kind = %args.kind,
        "starting"
    );
    Runner {
        journal: &journal,
        lock,
        id,
        definition,
        known,
        targets,
        interrupts,
        quiet,
    }
    .run(
        Mode::Start {
            confirmed: args.yes,
        },
        None,
    )
    .await
}

/// The job's definition, from the arguments and the opened targets.
fn definition(
    targets: &[Target],
    args: &ResetArgs,
    known: Option<&Secret>,
    recipients: Recipients,
) -> anyhow::Result<JobDefinition> {
    let selection = if args.all {
        Selection::All
    } else if let Some(file) = &args.users {
        if !file.is_file() {
            bail!("users file {} does not exist", file.display());
        }
        Selection::File(absolute(file)?)
    } else {
        for id in &args.user {
            check_user_id(id).map_err(|why| anyhow!("--user {why}"))?;
        }
        Selection::Ids(args.user.clone())
    };
    let passwords = if args.vendor_generate {
        PasswordChoice::Vendor
    } else if known.is_some() {
        PasswordChoice::Known
    } else {
        PasswordChoice::Generate
    };
    let mut knows_passwords = false;
    for target in targets {
        let meta = target.metadata();
        if !meta.kinds.contains(&args.kind) {
            let kinds: Vec<&str> = meta.kinds.iter().map(|k| k.as_str()).collect();
            bail!(
                "the {} connector of target `{}` cannot reset `{}` credentials; it supports: {}",
                meta.name,
                target.name(),
                args.kind,
                kinds.join(", ")
            );
        }
        if args.all && !meta.has(Capability::ListUsers) {
            bail!(
                "the {} connector of target `{}` cannot list users, so --all is not possible: use --user or --users",
                meta.name,
                target.name()
            );
        }
        if let Some(value) = known {
            check_known_value(target, args.kind, value)?;
        }
        knows_passwords |= password_source(passwords, target, args.kind, known)?.knows_passwords();
    }
    let path = match &args.out {
        Some(path) if path == Path::new("-") => None,
        Some(path) if path.exists() => bail!(
            "results file {} already exists: rekey never overwrites one; choose another --out",
            path.display()
        ),
        Some(path) => Some(absolute(path)?),
        None if knows_passwords && !args.dry_run => bail!(
            "--out FILE is required: this run will know new passwords and must hand them over (use --out - for standard output)"
        ),
        None => None,
    };
    if path.is_none() && !recipients.is_empty() && !args.dry_run && std::io::stdout().is_terminal()
    {
        bail!(
            "the results are encrypted, and standard output is a terminal: redirect it to a file, or give --out FILE"
        );
    }
    Ok(JobDefinition {
        targets: targets
            .iter()
            .map(|t| JobTarget {
                name: t.name().to_owned(),
                connector: t.metadata().name.clone(),
            })
            .collect(),
        kind: args.kind,
        selection,
        exclude: args.exclude.clone(),
        passwords,
        concurrency: args.concurrency,
        output: Output {
            path,
            format: args.format,
            recipients,
        },
    })
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    Ok(if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()?.join(path)
    })
}

/// The age recipients of the results: `--recipient` and `--recipients-file`, else
/// the config's `[rekey] recipients`.
fn recipients(context: &Context, args: &ResetArgs) -> anyhow::Result<Recipients> {
    if args.recipient.is_empty() && args.recipients_file.is_none() {
        return Ok(context.config.recipients.clone());
    }
    let mut recipients = Recipients::parse(&args.recipient, "--recipient")?;
    if let Some(file) = &args.recipients_file {
        recipients.extend(Recipients::read_file(file)?);
    }
    Ok(recipients)
}

/// `--password-env` or `--password-file`, if given.
fn known_value(args: &ResetArgs) -> anyhow::Result<Option<Secret>> {
    Ok(match (&args.password_env, &args.password_file) {
        (Some(var), _) => Some(match std::env::var(var) {
            Ok(value) if !value.is_empty() => Secret::new(value),
            Ok(_) => bail!("environment variable {var} (--password-env) is empty"),
            Err(_) => bail!("environment variable {var} (--password-env) is not set"),
        }),
        (_, Some(file)) => Some(read_secret_file(file)?),
        _ => None,
    })
}

/// Refuses a known value the vendor would refuse anyway, or that a spreadsheet
/// would take for a formula, before anything is sent. Never quotes the value.
fn check_known_value(target: &Target, kind: CredentialKind, value: &Secret) -> anyhow::Result<()> {
    if begins_formula(value.expose()) {
        bail!(
            "the new password begins with =, +, - or @, which a spreadsheet opening the results would take for a formula: choose a value that does not"
        );
    }
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
                "the new password does not suit the {} connector of target `{}`: {why}",
                target.metadata().name,
                target.name()
            )
        })
}

/// `--dry-run`: the plan on standard output, nothing changed, nothing journaled.
async fn dry_run(targets: &[Target], definition: &JobDefinition) -> CommandResult {
    let names: Vec<String> = targets.iter().map(|t| t.name().to_owned()).collect();
    for target in targets {
        let report = retrying(&retry_policy(target), || target.connector.check())
            .await
            .map_err(|e| Failure::usage(target_error(target.name(), "authenticating", e)))?;
        let label = (targets.len() > 1).then(|| target.name());
        let mut printed = PrintedPlan::new(std::io::stdout(), label);
        let planned = plan_target(
            target,
            definition,
            &names,
            report.account.as_deref(),
            &mut printed,
        )
        .await?;
        eprintln!(
            "dry run: would reset the {} of {} users on target `{}` ({}); {} set aside; nothing was changed",
            definition.kind,
            planned.selected,
            target.name(),
            target.metadata().name,
            planned.set_aside
        );
    }
    Ok(Exit::Success)
}
