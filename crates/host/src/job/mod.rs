//! Running a job: one [`Runner`] for `reset`, `resume` and `discard`, a lock so that
//! a job runs in one process at a time, and the delivery of its results.
//!
//! The commands only build a job (`reset`) or load it (`resume`, `discard`); the
//! runner does the rest in one order: check the targets, plan the users if the job
//! is still planning, execute, deliver the results, then close the job (erasing
//! its passwords) or leave it stopped. A new job that fails before anything is sent
//! is forgotten (exit 2); a job that stops after it began sending stays in the
//! journal for `rekey resume` (exit 3).

mod delivery;
mod ending;
mod lock;
mod planning;
mod runner;
mod spec;

pub use delivery::{Pending, write_row};
pub use lock::{JobLock, LockError};
pub use planning::plan_target;
pub use runner::{Mode, Runner};
pub use spec::{DEFAULT_CONCURRENCY, password_source, retry_policy};

#[cfg(test)]
mod tests;
