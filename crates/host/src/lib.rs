//! The rekey host: everything behind the `rekey` binary, which is a thin layer over
//! this library.
//!
//! rekey resets many users' passwords at once on vendor systems through their REST
//! APIs. The host knows no vendor: connectors are plugin libraries or programs,
//! chosen by the config. The modules, from the outside in: the command line
//! ([`cli`]) and its commands ([`commands`]), which build or load a job's
//! [`definition`] and hand it to the [`job`] runner; the config ([`config`]);
//! finding connectors ([`plugins`]) and loading libraries ([`ffi`], the one module
//! that calls into foreign code) or running programs ([`program`]), both spoken to
//! in the ABI's messages ([`wire`]), and opening targets ([`target`], with a
//! [`deadline`] on every connector call); the job [`engine`], which owns its types
//! and ports; the durable [`journal`] that implements them, in the [`state`]
//! directory; the [`results`] file; progress, logging and [`interrupts`]; and the
//! [`trust`] checks on the files rekey reads or runs.

pub mod cli;
pub mod commands;
pub mod config;
pub mod deadline;
pub mod definition;
pub mod engine;
pub mod exit;
mod fault;
pub mod ffi;
pub mod interrupts;
pub mod job;
pub mod journal;
pub mod logging;
pub mod plugins;
pub mod program;
pub mod progress;
pub mod results;
pub mod state;
pub mod target;
pub mod trust;
pub mod users_file;
pub mod wire;
