//! One module per command. Commands parse, build or load what they work on, and
//! hand jobs to the [runner](crate::job::Runner).

mod check;
mod conformance;
mod connectors;
mod jobs;
mod reset;
mod resume;
mod users;

use anyhow::anyhow;
use tracing::level_filters::LevelFilter;

use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::exit::{CommandResult, Exit, Failure, UsageContext};
use crate::ffi::LoadOptions;
use crate::interrupts::Interrupts;
use crate::journal::Journal;
use crate::plugins::PluginPath;
use crate::state::StateDir;
use crate::target::{Context, default_state_root};

/// Runs the command the command line asks for.
pub async fn run(cli: &Cli) -> CommandResult {
    let interrupts = Interrupts::watch();
    let quiet = cli.quiet;
    match &cli.command {
        Command::Connectors { show } => connectors::run(cli, show.as_ref()),
        Command::Check { targets } => {
            interruptible(&interrupts, check::run(&context(cli)?, targets)).await
        }
        Command::Users { target, format } => {
            interruptible(&interrupts, users::run(&context(cli)?, target, *format)).await
        }
        Command::Reset(args) => reset::run(&context(cli)?, args, quiet, interrupts).await,
        Command::Resume { job } => resume::resume(&context(cli)?, job, quiet, interrupts).await,
        Command::Discard { job, yes } => {
            resume::discard(&context(cli)?, job, *yes, interrupts).await
        }
        Command::Jobs => {
            let (state, journal) = journal(cli).await?;
            interruptible(&interrupts, jobs::list(&state, &journal)).await
        }
        Command::Conformance {
            target,
            test_user,
            out,
        } => {
            let test = test_user
                .as_deref()
                .zip(out.as_deref())
                .map(|(id, out)| conformance::TestUser { id, out });
            conformance::run(&context(cli)?, target, test, interrupts).await
        }
        Command::Report { job } => {
            let (_, journal) = journal(cli).await?;
            interruptible(&interrupts, jobs::report(&journal, job)).await
        }
    }
}

/// Runs a command that changes nothing, unless the operator interrupts it first.
async fn interruptible(
    interrupts: &Interrupts,
    command: impl Future<Output = CommandResult>,
) -> CommandResult {
    tokio::select! {
        result = command => result,
        () = interrupts.reached(1) => Err(Failure::usage(anyhow!("interrupted: nothing was changed"))),
    }
}

/// The state directory and journal of the config (which is optional here).
async fn journal(cli: &Cli) -> CommandResult<(StateDir, Journal)> {
    let state = match optional_config(cli)? {
        Some(config) => Context {
            plugins: PluginPath::new(&config.plugin_path),
            config,
            load: load_options(),
        }
        .state(),
        None => default_state_root().and_then(|root| StateDir::open(&root)),
    }
    .map_err(Failure::usage)?;
    let journal = Journal::open(&state).await.map_err(Failure::usage)?;
    Ok((state, journal))
}

/// Opens the state directory and its journal, which finishes any erasure a crash
/// left undone.
async fn open_state(context: &Context) -> CommandResult<(StateDir, Journal)> {
    let state = context.state().map_err(Failure::usage)?;
    let journal = Journal::open(&state).await.map_err(Failure::usage)?;
    Ok((state, journal))
}

/// How connector libraries are started: two runtime threads each, logging at the
/// host's level.
fn load_options() -> LoadOptions {
    LoadOptions {
        worker_threads: 2,
        max_log_level: LevelFilter::current(),
    }
}

/// Loads the config and sets up the plugin path.
fn context(cli: &Cli) -> CommandResult<Context> {
    let path = Config::locate(cli.config.as_deref()).map_err(Failure::usage)?;
    let config = Config::load(&path).map_err(Failure::usage)?;
    Ok(Context {
        plugins: PluginPath::new(&config.plugin_path),
        config,
        load: load_options(),
    })
}

/// The config when one is given or present (for commands that can do without).
fn optional_config(cli: &Cli) -> CommandResult<Option<Config>> {
    let explicit =
        cli.config.is_some() || std::env::var_os("REKEY_CONFIG").is_some_and(|v| !v.is_empty());
    match Config::locate(cli.config.as_deref()) {
        Ok(path) => Config::load(&path).map(Some).usage("reading the config"),
        Err(error) if explicit => Err(Failure::usage(error)),
        Err(_) => Ok(None),
    }
}

/// Output to standard output that ends quietly when the reader goes away
/// (`rekey users T | head`): a closed pipe is not an error.
fn output_written(result: std::io::Result<()>) -> CommandResult {
    match result {
        Ok(()) => Ok(Exit::Success),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(Exit::Success),
        Err(error) => Err(Failure::stopped(
            anyhow::Error::new(error).context("cannot write to standard output"),
        )),
    }
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

/// Lays out rows as aligned columns (the last column is not padded).
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let rows = vec![
            vec!["NAME".into(), "VERSION".into(), "FILE".into()],
            vec!["smartermail".into(), "0.1.0".into(), "/x".into()],
        ];
        assert_eq!(
            table(&rows),
            "NAME         VERSION  FILE\nsmartermail  0.1.0    /x\n"
        );
    }
}
