//! `rekey`: reset many users' passwords at once on vendor systems through their REST
//! APIs. See the `rekey_host` library for how it works.

use std::process::ExitCode;

use clap::Parser;
use rekey_host::exit::Exit;
use rekey_host::{cli, commands, logging};

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
