//! The job engine: from a set of users to one settled outcome per user.
//!
//! A job runs in two steps. [`plan`] resolves who: ids from the command line, a users
//! file or the connector's listing, streamed into a [`PlanSink`], de-duplicated,
//! with excluded users and the connector's own account set aside. [`execute`]
//! resets them: users are taken from a [`JobStore`] in chunks, each chunk gets its
//! passwords (generated, known, or asked of the vendor), which are made durable
//! before anything is sent, and the chunk is split into the connector's batches,
//! run with a bounded number of requests in flight ([`pacing`]: fixed, or adapting
//! to the vendor's answers) and retried within a time budget. Every settled
//! user is one [`UserRecord`], recorded in the store and handed to the caller.
//!
//! The engine owns its types and ports: it knows no journal, results file or
//! command line. The journal implements [`JobStore`] and [`PlanSink`].

mod execute;
pub mod pacing;
mod passwords;
mod plan;
mod retry;
mod stop;
mod store;

pub use execute::{JobSpec, Run, Summary, execute};
pub use pacing::{AdaptiveSettings, Concurrency, Pacing};
pub use passwords::{Generator, PasswordSource};
pub use plan::{PlanEntry, PlanError, PlanSink, Planned, PrintedPlan, Rules, Selection, plan};
pub use retry::{RetryPolicy, retrying};
pub use stop::StopSignal;
pub use store::{Counts, Intent, JobStore, MemoryStore, PendingUser, Scope, UserRecord, UserState};
