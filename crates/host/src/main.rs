//! `rekey`: reset many users' passwords at once on vendor systems through their REST
//! APIs. The host knows no vendor: connectors are plugin libraries, chosen by the
//! config. This binary is a thin layer over its modules: the command line
//! ([`cli`]), the config ([`config`]), connector discovery ([`plugins`]), targets
//! ([`target`]), the job engine ([`engine`]) and the results file ([`results`]).

mod cli;
mod commands;
mod config;
mod engine;
mod exit;
mod logging;
mod plugins;
mod progress;
mod results;
mod target;
mod users_file;

use std::process::ExitCode;

use clap::Parser;

use crate::exit::Exit;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.verbose, cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return Exit::Stopped.into();
        }
    };
    match runtime.block_on(commands::run(&cli)) {
        Ok(exit) => exit.into(),
        Err(failure) => {
            eprintln!("error: {:#}", failure.error);
            failure.exit.into()
        }
    }
}
