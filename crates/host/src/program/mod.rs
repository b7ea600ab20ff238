//! Connector programs: a connector written in any language, run as a process of
//! its own and spoken to in JSON lines over its standard input and output (the
//! envelope of `rekey_abi::program`, carrying the library ABI's messages).
//!
//! - [`Program::start`] runs the program with a minimal environment (`PATH`,
//!   `HOME`, `LANG` and the target's `connector_env`: never another target's
//!   secrets), asks it to describe itself and checks its protocol version and
//!   metadata. Settings, secrets included, cross only the pipe, never the
//!   program's arguments or environment.
//! - [`Program::create`] sends it the target's settings and gives a
//!   [`ProgramConnector`], which implements [`Connector`](rekey_api::Connector):
//!   the rest of rekey cannot tell it from a library. Calls run concurrently,
//!   told apart by their ids; a call dropped before its reply is cancelled in the
//!   program.
//! - A program that dies, closes its output, writes something that is not a reply,
//!   or leaves a call unanswered past its deadline and a grace period after its
//!   cancellation is stopped; its calls in flight, and every later one, fail as
//!   [`Cancelled`](rekey_api::ErrorKind::Cancelled), which stops the job (their
//!   outcomes are unknown: the journal keeps their passwords for `rekey resume`).
//! - Its standard error becomes log lines (target `rekey::program`), labelled
//!   with the target.
//! - When the last handle goes, the program gets the shutdown message and a few
//!   seconds to exit before it is killed.

mod connector;
mod lines;
mod process;

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rekey_abi::program::{Control, PROTOCOL_VERSION, ProgramInfo, reply_of};
use rekey_abi::protocol::{CreateReply, CreateRequestRef};
use rekey_api::{ConnectorError, CreateContext, ErrorKind, Settings};
use serde::Deserialize;

pub use connector::{ProgramCalls, ProgramConnector};
use process::Process;

/// How long a program has to describe itself, and to create its connector (which
/// must not touch the network).
const STARTUP: Duration = Duration::from_secs(15);

/// What to run, and for whom.
#[derive(Debug, Clone)]
pub struct ProgramSpec {
    /// The program file.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// The directory it runs in (rekey's own when `None`).
    pub dir: Option<PathBuf>,
    /// Variables of rekey's environment passed on, besides `PATH`, `HOME`, `LANG`.
    pub env: Vec<String>,
    /// The target it runs for, labelling its log lines.
    pub target: Option<String>,
}

impl ProgramSpec {
    /// The program and its arguments, as one line.
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.display().to_string())
            .chain(self.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `connector program PATH`, with its arguments if it has any.
    pub fn describe(&self) -> String {
        if self.args.is_empty() {
            format!("connector program {}", self.program.display())
        } else {
            format!("connector program `{}`", self.command_line())
        }
    }
}

/// Why a program could not be used; the message names it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProgramError(String);

/// A connector program, started and described: what creates its connector.
pub struct Program {
    spec: ProgramSpec,
    info: ProgramInfo,
    /// The described process, until [`create`](Self::create) takes it.
    idle: Mutex<Option<Process>>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("program", &self.spec.program)
            .field("name", &self.info.metadata.name)
            .finish()
    }
}

#[derive(Deserialize)]
struct ProtocolOnly {
    protocol: u32,
}

impl Program {
    /// Starts the program and asks it to describe itself: its protocol version must
    /// be this rekey's, and its metadata well formed.
    pub fn start(spec: ProgramSpec) -> Result<Program, ProgramError> {
        let (process, info) = describe(&spec)?;
        Ok(Program {
            spec,
            info,
            idle: Mutex::new(Some(process)),
        })
    }

    /// What the program says about itself.
    pub fn info(&self) -> &ProgramInfo {
        &self.info
    }

    /// What is run.
    pub fn spec(&self) -> &ProgramSpec {
        &self.spec
    }

    /// Creates the connector from a target's checked settings, each call ending by
    /// `deadline`. The first connector runs in the process already started; another
    /// gets a process of its own.
    pub fn create(
        &self,
        settings: &Settings,
        context: CreateContext,
        deadline: Duration,
    ) -> Result<ProgramConnector, ConnectorError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let process = match idle {
            Some(process) => process,
            None => {
                describe(&self.spec)
                    .map_err(|e| ConnectorError::new(ErrorKind::Cancelled, e.0))?
                    .0
            }
        };
        let create = Control::Create(CreateRequestRef {
            settings,
            context: &context,
        });
        let (status, line) = process
            .call_blocking(&create, "create", STARTUP)
            .map_err(|error| unusable(&process, error, "before it created its connector"))?;
        let reply: CreateReply = reply_of(&line, status, "create reply")?;
        Ok(ProgramCalls::connector(process, reply.batching, deadline))
    }
}

/// Starts the program of `spec` and has it describe itself.
fn describe(spec: &ProgramSpec) -> Result<(Process, ProgramInfo), ProgramError> {
    let process =
        Process::spawn(spec).map_err(|what| ProgramError(format!("{} {what}", spec.describe())))?;
    let describe = Control::Describe {
        protocol: PROTOCOL_VERSION,
    };
    let (status, line) = process
        .call_blocking(&describe, "describe", STARTUP)
        .map_err(|error| {
            ProgramError(unusable(&process, error, "before it described itself").message)
        })?;
    let refused = |error: ConnectorError| {
        ProgramError(format!(
            "{} could not describe itself: {}",
            process.name(),
            error.message
        ))
    };
    let protocol = reply_of::<ProtocolOnly>(&line, status, "describe reply")
        .map_err(refused)?
        .protocol;
    if protocol != PROTOCOL_VERSION {
        return Err(ProgramError(format!(
            "{} speaks program protocol {protocol}, and this rekey {} speaks program protocol {PROTOCOL_VERSION}: use a version of the program written for protocol {PROTOCOL_VERSION}",
            process.name(),
            env!("CARGO_PKG_VERSION"),
        )));
    }
    let info: ProgramInfo = reply_of(&line, status, "describe reply").map_err(refused)?;
    info.metadata
        .validate()
        .map_err(|why| ProgramError(format!("{} gave unusable metadata: {why}", process.name())))?;
    Ok((process, info))
}

/// A program that could not answer a start-up call: what it did instead.
fn unusable(process: &Process, error: ConnectorError, when: &str) -> ConnectorError {
    match process.dead() {
        Some(reason) => ConnectorError::new(ErrorKind::Cancelled, format!("{reason} {when}")),
        None => error,
    }
}
