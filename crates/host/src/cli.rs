//! The command line, as the product contract defines it.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use rekey_api::CredentialKind;

use crate::engine::Concurrency;
use crate::results::Format;

/// Reset many users' passwords at once on vendor systems through their REST APIs.
#[derive(Debug, Parser)]
#[command(name = "rekey", version, about, max_term_width = 100)]
pub struct Cli {
    /// The config file (default: $REKEY_CONFIG, else ./rekey.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// More log output (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only errors on standard error.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the connectors found on the plugin path.
    Connectors {
        /// `show NAME`: one connector's settings schema.
        #[command(subcommand)]
        show: Option<ConnectorsCommand>,
    },
    /// Authenticate against targets (all when none is named).
    Check {
        /// Targets to check.
        #[arg(value_name = "TARGET")]
        targets: Vec<String>,
    },
    /// List a target's accounts, one id a line.
    Users {
        /// The target.
        target: String,
        /// `text`: one id a line; `json`: one JSON object a line.
        #[arg(long, value_enum, default_value_t = UsersFormat::Text)]
        format: UsersFormat,
    },
    /// Reset users' passwords on one or more targets.
    Reset(Box<ResetArgs>),
    /// List the journaled jobs: id, started, targets, counts, state.
    Jobs,
    /// Finish an interrupted job.
    Resume {
        /// The job's id (or an unambiguous prefix of it).
        job: String,
    },
    /// Show each user's outcome in a job (never passwords).
    Report {
        /// The job's id (or an unambiguous prefix of it).
        job: String,
    },
    /// Check a target's connector against the contract a connector must keep, one
    /// line per check (changes nothing unless --test-user is given).
    Conformance {
        /// The target.
        target: String,
        /// Also reset this one user (journaled), with a generated value.
        #[arg(long, value_name = "ID", requires = "out")]
        test_user: Option<String>,
        /// Where the test user's new password goes (a results file).
        #[arg(long, value_name = "FILE", requires = "test_user")]
        out: Option<PathBuf>,
    },
    /// Give up a stopped job: write its results file with every outcome known,
    /// erase its passwords from the journal, mark it discarded.
    Discard {
        /// The job's id (or an unambiguous prefix of it).
        job: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

/// `rekey connectors show NAME`.
#[derive(Debug, Subcommand)]
pub enum ConnectorsCommand {
    /// Show a connector's settings schema.
    Show {
        /// The connector's name.
        name: String,
    },
}

/// Output of `rekey users`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UsersFormat {
    /// One id a line.
    Text,
    /// One JSON object a line.
    Json,
}

/// `rekey reset`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("who").required(true).args(["user", "users", "all"])))]
#[command(group(ArgGroup::new("source").args(["generate", "vendor_generate", "password_env", "password_file"])))]
pub struct ResetArgs {
    /// The targets (`[targets.NAME]` tables of the config): one job covers them all.
    #[arg(value_name = "TARGET", required = true)]
    pub targets: Vec<String>,

    /// Reset this user (repeatable).
    #[arg(long, value_name = "ID")]
    pub user: Vec<String>,

    /// Reset the users in FILE: one id a line (`#` comments and blank lines ignored),
    /// or a CSV file whose header has a `user` column.
    #[arg(long, value_name = "FILE")]
    pub users: Option<PathBuf>,

    /// Reset every account the connector lists.
    #[arg(long)]
    pub all: bool,

    /// Which credential: password, sip or passcode.
    #[arg(long, default_value = "password", value_parser = parse_kind)]
    pub kind: CredentialKind,

    /// A new random password per user, from the target's policy (the default).
    #[arg(long)]
    pub generate: bool,

    /// Let the vendor make the passwords.
    #[arg(long)]
    pub vendor_generate: bool,

    /// One known value for every user, read from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,

    /// One known value for every user, read from this file.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Never touch this user (repeatable; adds to the target's `exclude`).
    #[arg(long, value_name = "ID")]
    pub exclude: Vec<String>,

    /// Where the results (and new passwords) go; `-` for standard output. Never
    /// overwritten.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Results format: csv or jsonl.
    #[arg(long, default_value = "csv", value_parser = parse_format)]
    pub format: Format,

    /// Encrypt the results to this age recipient: an age public key (age1...) or
    /// an SSH public key (repeatable; replaces the config's `recipients`).
    #[arg(long, value_name = "R")]
    pub recipient: Vec<String>,

    /// Encrypt the results to the recipients in FILE, one a line (`#` comments).
    #[arg(long, value_name = "FILE")]
    pub recipients_file: Option<PathBuf>,

    /// Authenticate, resolve the users, validate, print the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Parallel requests to each target (default: the target's `concurrency`, else
    /// 8); `auto` adapts to the vendor's answers, up to the target's
    /// `max_concurrency` (default 64).
    #[arg(long, value_name = "N|auto", value_parser = parse_concurrency)]
    pub concurrency: Option<Concurrency>,

    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
}

fn parse_kind(text: &str) -> Result<CredentialKind, String> {
    text.parse()
}

fn parse_format(text: &str) -> Result<Format, String> {
    text.parse()
}

fn parse_concurrency(text: &str) -> Result<Concurrency, String> {
    text.parse()
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn reset_needs_exactly_one_selection() {
        assert!(Cli::try_parse_from(["rekey", "reset", "mail"]).is_err());
        assert!(Cli::try_parse_from(["rekey", "reset", "mail", "--all", "--user", "a"]).is_err());
        let cli =
            Cli::try_parse_from(["rekey", "reset", "mail", "--user", "a", "--user", "b"]).unwrap();
        let Command::Reset(args) = cli.command else {
            panic!()
        };
        assert_eq!(args.user, ["a", "b"]);
        assert!(
            Cli::try_parse_from([
                "rekey",
                "reset",
                "mail",
                "--all",
                "--generate",
                "--password-env",
                "X"
            ])
            .is_err()
        );
        assert!(
            Cli::try_parse_from(["rekey", "reset", "mail", "--all", "--kind", "voicemail"])
                .is_err()
        );
        assert!(
            Cli::try_parse_from(["rekey", "reset", "mail", "--all", "--concurrency", "0"]).is_err()
        );
        let cli = Cli::try_parse_from(["rekey", "reset", "mail", "--all", "--concurrency", "auto"])
            .unwrap();
        let Command::Reset(args) = cli.command else {
            panic!()
        };
        assert_eq!(args.concurrency, Some(Concurrency::Auto));
    }
}
