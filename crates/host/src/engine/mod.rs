//! The job engine: from a set of users to one settled outcome per user.
//!
//! A job runs in two steps. [`plan`] resolves who: ids from the command line, a users
//! file or the connector's listing, streamed into the job's store, de-duplicated,
//! with excluded users and the connector's own account set aside. [`execute`]
//! resets them: users are taken from the store in chunks, each chunk gets its
//! passwords (generated, known, or asked of the vendor), which are made durable
//! before anything is sent, and the chunk is split into the connector's batches,
//! run with bounded concurrency and retried within a time budget. Every outcome
//! flows through one place: into the store, and to the `on_row` callback as soon as
//! it arrives.

mod execute;
mod passwords;
pub mod plan;
mod retry;
mod stop;
pub mod store;

pub use execute::{JobSpec, Run, Summary, execute, unsettled_row};
pub use passwords::{Generator, PasswordSource};
pub use plan::{Selection, plan};
pub use retry::{RetryPolicy, retrying};
pub use stop::StopSignal;
