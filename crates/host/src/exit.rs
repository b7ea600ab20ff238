//! Exit codes (the product contract) and the error type commands return.

use std::fmt;
use std::process::ExitCode;

/// What `rekey` exits with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every selected user was reset.
    Success = 0,
    /// The job finished, and some users failed or were skipped.
    Partial = 1,
    /// Usage or config error: nothing was changed anywhere.
    Usage = 2,
    /// The job stopped early (target unreachable, authentication refused, quota
    /// spent, interrupted); it can be resumed.
    Stopped = 3,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// A command's failure: the message chain to print and the exit code.
pub struct Failure {
    /// The exit code.
    pub exit: Exit,
    /// What went wrong, with context.
    pub error: anyhow::Error,
}

impl Failure {
    /// A usage or config error (exit 2): nothing was changed.
    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            exit: Exit::Usage,
            error: error.into(),
        }
    }

    /// The job stopped early (exit 3).
    pub fn stopped(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            exit: Exit::Stopped,
            error: error.into(),
        }
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} (exit {})", self.error, self.exit as u8)
    }
}

/// Shorthand for results of commands.
pub type CommandResult<T = Exit> = Result<T, Failure>;

/// Turns any error into a usage failure (exit 2).
pub trait UsageContext<T> {
    /// Marks the error as a usage or config error, with context.
    fn usage(self, context: impl fmt::Display) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> UsageContext<T> for Result<T, E> {
    fn usage(self, context: impl fmt::Display) -> Result<T, Failure> {
        self.map_err(|e| Failure::usage(e.into().context(context.to_string())))
    }
}
