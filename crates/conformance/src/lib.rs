//! The rekey connector conformance kit: the checks a connector must pass before an
//! operator runs it against production.
//!
//! A connector keeps a contract with rekey: it describes itself validly; its
//! settings schema refuses missing and mistyped settings; `check` authenticates;
//! listing pages end, and ids are unique and stable across two listings; a reset
//! of an unknown user fails for that user alone (as "user not found" where the
//! vendor tells that apart from a refusal); every reset reply has exactly one
//! outcome per user asked and none for others; concurrent calls work; a cancelled
//! call does not wedge it. [`Kit::run`] checks each against a [`Subject`]: a
//! connector rekey loaded (what `rekey conformance TARGET` does), or one created
//! in-process by a connector's own tests ([`InProcess`]).
//!
//! Without a test user the kit changes nothing on the target: the only reset it
//! sends is for a user that does not exist. [`reset_test_user`] resets one real
//! user and checks the outcome.
//!
//! ```no_run
//! # async fn demo<Mine: rekey_api::Plugin>(settings: Vec<(String, rekey_api::SettingValue)>) {
//! let kit = rekey_conformance::Kit::new(settings, "A-valid-new-password-1".into());
//! let subject = rekey_conformance::InProcess::<Mine>::new(std::env::temp_dir());
//! kit.run(&subject).await.assert_passed();
//! # }
//! ```

mod checks;
mod exercise;
mod in_process;
mod report;

use std::sync::Arc;
use std::time::Duration;

use rekey_api::{Connector, ConnectorError, Metadata, Secret, SettingValue, Settings};

pub use checks::reset_test_user;
pub use exercise::exercise;
pub use in_process::InProcess;
pub use report::{CheckResult, Report, Verdict};

/// What the kit checks: a connector's description, and a way to create it.
pub trait Subject: Send + Sync {
    /// The connector's metadata.
    fn metadata(&self) -> Metadata;

    /// Creates a connector from settings already checked against its schema.
    fn create(&self, settings: Settings) -> Result<Arc<dyn Connector>, ConnectorError>;
}

/// The kit, set up for one target.
#[derive(Debug, Clone)]
pub struct Kit {
    settings: Vec<(String, SettingValue)>,
    new_password: Secret,
    deadline: Duration,
    unknown_user: Option<String>,
    concurrent_calls: usize,
}

impl Kit {
    /// A kit for a target with these (valid) settings; `new_password` is a value
    /// the target would accept, sent only to a user that does not exist.
    pub fn new(settings: Vec<(String, SettingValue)>, new_password: Secret) -> Kit {
        Kit {
            settings,
            new_password,
            deadline: Duration::from_secs(30),
            unknown_user: None,
            concurrent_calls: 8,
        }
    }

    /// How long one call may take before it counts as wedged (default 30 s).
    pub fn deadline(mut self, deadline: Duration) -> Kit {
        self.deadline = deadline;
        self
    }

    /// The id of a user that does not exist on the target (default: one made up in
    /// the shape of the target's ids, e.g. with their e-mail domain).
    pub fn unknown_user(mut self, id: impl Into<String>) -> Kit {
        self.unknown_user = Some(id.into());
        self
    }

    /// Runs every check against `subject`, in order; a check whose prerequisite
    /// failed is skipped, saying which.
    pub async fn run(&self, subject: &dyn Subject) -> Report {
        checks::run(self, subject).await
    }
}
