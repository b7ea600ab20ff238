//! The rekey host: everything behind the `rekey` binary, which is a thin layer over
//! this library.
//!
//! rekey resets many users' passwords at once on vendor systems through their REST
//! APIs. The host knows no vendor: connectors are plugin libraries, chosen by the
//! config. The modules: the command line ([`cli`]) and its commands
//! ([`commands`]); the config ([`config`]); finding connector libraries
//! ([`plugins`]) and loading them ([`ffi`], the host's only `unsafe` code); opening targets ([`target`]); the job engine ([`engine`]); the
//! durable journal of jobs ([`journal`]); the results file ([`results`]); progress
//! and logging.

pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod exit;
pub mod ffi;
pub mod journal;
pub mod logging;
pub mod plugins;
pub mod progress;
pub mod results;
pub mod target;
pub mod users_file;
