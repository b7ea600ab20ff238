//! Vendor API simulators for rekey's tests and demo.
//!
//! Each simulator is an HTTP server on 127.0.0.1 that speaks one vendor's protocol
//! as `vendor-apis.md` describes it, with its quirks (HTTP 200 on failure, rotating
//! refresh tokens, whole-batch failures, quotas), and is at least as strict as the
//! real product: wrong content types, malformed bodies and expired tokens are
//! refused. Every simulator also offers what tests need and vendors do not:
//! latency, injected faults ([`Behaviour`]), a controllable clock ([`SimClock`]),
//! and inspection of its state (each user's current password and the history of
//! passwords set).
//!
//! - [`smartermail`]: SmarterMail (REST API v1: rotating refresh tokens, `success`
//!   flags, system-admin impersonation).
//! - [`broadworks`]: Cisco/Oracle BroadWorks through the Odin API (v2).
//! - [`oracle`]: Oracle Primavera Administration (Basic auth, passwords as arrays of
//!   characters, whole-batch failures).
//! - [`admanager`]: ManageEngine ADManager Plus (form parameters, SEVERE envelopes,
//!   the daily quota).
//! - [`inhouse`]: no vendor's product: Acme Directory, the fictional in-house system
//!   that `connectors/example` talks to.
//!
//! [`recorder`] is no simulator: a fake that answers canned replies and records
//! requests whole, for golden tests against the vendors' documented samples.
//!
//! Start one inside a tokio runtime and point a target's `url` at
//! [`SimServer::url`]. The `rekey-sim` binary runs them from the command line.

// Handlers return early answers as `Err(Response)`; the size of that error does not
// matter in a test server.
#![allow(clippy::result_large_err)]

pub mod admanager;
pub mod broadworks;
pub mod common;
#[cfg(feature = "hostile")]
pub mod hostile;
pub mod inhouse;
pub mod oracle;
pub mod recorder;
pub mod smartermail;

pub use common::{Behaviour, Faults, LoggedRequest, SimClock, SimServer};
