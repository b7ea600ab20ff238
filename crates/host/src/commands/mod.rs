//! One module per command.

mod check;
mod connectors;
mod job;
mod jobs;
mod reset;
mod resume;
mod signals;
mod users;

use rekey_api::{ConnectorError, ErrorKind};
use tracing::level_filters::LevelFilter;

use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::exit::{CommandResult, Failure, UsageContext};
use crate::ffi::LoadOptions;
use crate::plugins::PluginPath;
use crate::target::Context;

/// Runs the command the command line asks for.
pub async fn run(cli: &Cli) -> CommandResult {
    match &cli.command {
        Command::Connectors { show } => connectors::run(cli, show.as_ref()),
        Command::Check { targets } => check::run(&context(cli)?, targets).await,
        Command::Users { target, format } => users::run(&context(cli)?, target, *format).await,
        Command::Reset(args) => reset::run(&context(cli)?, args, cli.quiet).await,
        Command::Resume { job } => resume::run(&context(cli)?, job, cli.quiet).await,
        Command::Jobs => jobs::list(&journal(cli)?).await,
        Command::Report { job } => jobs::report(&journal(cli)?, job).await,
    }
}

/// The journal of the config's state directory (the config is optional here).
fn journal(cli: &Cli) -> CommandResult<crate::journal::Journal> {
    let state_dir = match optional_config(cli)? {
        Some(config) => Context {
            plugins: PluginPath::new(&config.plugin_path),
            config,
            load: load_options(),
        }
        .state_root(),
        None => crate::target::default_state_root(),
    }
    .map_err(Failure::usage)?;
    crate::journal::Journal::open(&state_dir).map_err(Failure::usage)
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

/// Maps a connector's failure to talk to its target onto an exit code: its
/// settings are a config error (2); anything else means the target cannot be
/// worked with now (3).
fn target_failure(target: &str, what: &str, error: ConnectorError) -> Failure {
    let explanation = match error.kind {
        ErrorKind::AuthRefused => "authentication refused",
        ErrorKind::Transient | ErrorKind::RateLimited => "target unreachable",
        _ => "failed",
    };
    let error =
        anyhow::Error::new(error).context(format!("target `{target}`: {what}: {explanation}"));
    match error.downcast_ref::<ConnectorError>().map(|e| e.kind) {
        Some(ErrorKind::InvalidSettings | ErrorKind::Unsupported) => Failure::usage(error),
        _ => Failure::stopped(error),
    }
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
