//! The job engine: from a set of users to one outcome row per user.
//!
//! A job runs in two steps. [`select`] resolves who: ids from the command line, a
//! users file or the connector's listing, streamed, de-duplicated, with excluded
//! users and the connector's own account set aside as `skipped` rows.
//! [`execute`] resets them: users are taken in chunks, each chunk gets its
//! passwords (generated, known, or asked of the vendor), is split into the
//! connector's batches, and the batches run with bounded concurrency. Every
//! outcome flows through one place, the `on_row` callback, as soon as it arrives.

mod execute;
mod passwords;
pub mod select;

pub use execute::{JobSpec, execute};
pub use passwords::{Generator, PasswordSource};
pub use select::{Selected, Selection, select};
