//! `rekey reset TARGET (--user ID... | --users FILE | --all) [options]`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail};
use rekey_api::{Capability, CredentialKind, Secret};
use rekey_policy::is_acceptable_passcode;

use super::target_failure;
use crate::cli::ResetArgs;
use crate::config::read_secret_file;
use crate::engine::{self, Generator, JobSpec, PasswordSource, Selection};
use crate::exit::{CommandResult, Exit, Failure};
use crate::progress::Progress;
use crate::results::{ResultRow, ResultsWriter};
use crate::target::{Context, Target};

/// Concurrency when neither the command line nor the target says.
const DEFAULT_CONCURRENCY: u32 = 8;

pub async fn run(context: &Context, args: &ResetArgs, quiet: bool) -> CommandResult {
    // Everything that can be checked without the vendor is checked first: a usage
    // or config error must leave every system untouched.
    let target = Target::open(context, &args.target).map_err(Failure::usage)?;
    let plan = Plan::new(&target, args).map_err(Failure::usage)?;
    let job_id = new_job_id();
    if !args.dry_run {
        eprintln!("job {job_id}");
    }
    tracing::info!(job = %job_id, target = %args.target, kind = %args.kind, "starting");

    let report = target
        .connector
        .check()
        .await
        .map_err(|e| target_failure(&args.target, "authenticating", e))?;
    let selected = engine::select(
        &target,
        &plan.selection,
        &args.exclude,
        report.account.as_deref(),
    )
    .await
    .map_err(|e| match e {
        engine::select::SelectError::Input(e) => Failure::usage(e),
        engine::select::SelectError::Listing(e) => target_failure(&args.target, "listing users", e),
    })?;
    if selected.duplicates > 0 {
        tracing::info!("{} repeated user ids ignored", selected.duplicates);
    }

    if args.dry_run {
        return Ok(print_plan(&target, args, &selected));
    }
    if !args.yes && std::io::stdin().is_terminal() && !confirm(&target, args, selected.users.len())?
    {
        return Err(Failure::usage(anyhow!(
            "not confirmed: nothing was changed"
        )));
    }

    let mut results = match &plan.out {
        Some(path) => ResultsWriter::create(path, args.format, &args.target, args.kind),
        None => ResultsWriter::create(Path::new("-"), args.format, &args.target, args.kind),
    }
    .map_err(|e| Failure::usage(anyhow!("cannot create the results file: {e}")))?;
    for row in &selected.set_aside {
        results.write(row).map_err(results_failure)?;
    }

    let spec = JobSpec {
        kind: args.kind,
        passwords: plan.passwords,
        concurrency: plan.concurrency as usize,
    };
    let mut progress = Progress::new(selected.users.len() as u64, quiet);
    let mut write_error = None;
    let summary = engine::execute(&target, &spec, &selected.users, &mut |row: ResultRow| {
        tracing::debug!(user = %row.user, status = %row.status, "outcome");
        progress.record(row.status);
        if write_error.is_none() {
            write_error = results.write(&row).err();
        }
        Ok(())
    })
    .await
    .map_err(Failure::stopped)?;
    progress.finish();
    if let Some(error) = write_error {
        return Err(results_failure(error));
    }
    results.finish().map_err(results_failure)?;

    let set_aside = selected.set_aside.len();
    tracing::info!(
        job = %job_id,
        "finished: {} reset, {} failed, {} skipped{}",
        summary.reset,
        summary.failed,
        summary.skipped,
        if set_aside > 0 { format!(" ({set_aside} more set aside: excluded or the connector's own account)") } else { String::new() }
    );
    if let Some(reason) = &summary.stopped {
        eprintln!("job {job_id} stopped early: {reason}");
    }
    Ok(summary.exit())
}

fn results_failure(error: std::io::Error) -> Failure {
    Failure::stopped(anyhow!("cannot write the results file: {error}"))
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
fn confirm(target: &Target, args: &ResetArgs, count: usize) -> Result<bool, Failure> {
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

/// `--dry-run`: the plan on standard output, nothing changed.
fn print_plan(target: &Target, args: &ResetArgs, selected: &engine::Selected) -> Exit {
    let mut out = std::io::stdout().lock();
    for user in &selected.users {
        let _ = writeln!(out, "reset\t{user}");
    }
    for row in &selected.set_aside {
        let _ = writeln!(out, "skip\t{}\t{}", row.user, row.detail);
    }
    let _ = out.flush();
    eprintln!(
        "dry run: would reset the {} of {} users on target `{}` ({}); {} set aside; nothing was changed",
        args.kind,
        selected.users.len(),
        args.target,
        target.metadata().name,
        selected.set_aside.len()
    );
    Exit::Success
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
