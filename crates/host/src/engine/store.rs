//! Where a job's users and their outcomes live while it runs: the seam between the
//! engine and the journal.
//!
//! The engine reads pending users in chunks, records each user's new password as an
//! *intent* that must be durable before the request leaves, and records each
//! outcome. [`Journal`](crate::journal::Journal) is the durable store;
//! [`MemoryStore`] keeps everything in memory (tests, and the benchmark baseline
//! that measures what the journal costs).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use rekey_api::Secret;

/// Where a user stands in a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserState {
    /// Selected; no password given yet.
    Planned,
    /// A new password is journaled and the request may have left: the outcome is
    /// unknown until the vendor answers.
    Sending,
    /// The new password is in effect.
    Reset,
    /// The reset failed.
    Failed,
    /// Never to be reset (excluded, or the connector's own account).
    SetAside,
}

impl UserState {
    /// The number the journal stores.
    pub fn code(self) -> i64 {
        match self {
            UserState::Planned => 0,
            UserState::Sending => 1,
            UserState::Reset => 2,
            UserState::Failed => 3,
            UserState::SetAside => 4,
        }
    }

    /// The inverse of [`code`](Self::code); an unknown number reads as planned,
    /// the state that loses nothing.
    pub fn from_code(code: i64) -> UserState {
        match code {
            1 => UserState::Sending,
            2 => UserState::Reset,
            3 => UserState::Failed,
            4 => UserState::SetAside,
            _ => UserState::Planned,
        }
    }
}

/// A user still to be reset (planned, or sending with an unknown outcome).
#[derive(Debug, Clone)]
pub struct PendingUser {
    /// Position in the job's selection.
    pub seq: i64,
    /// The user id.
    pub user: String,
    /// [`UserState::Planned`] or [`UserState::Sending`].
    pub state: UserState,
    /// The journaled password of a sending user (`None` when the vendor makes it).
    pub password: Option<Secret>,
}

/// A password about to be sent to a user.
#[derive(Debug, Clone)]
pub struct Intent {
    /// The user's position.
    pub seq: i64,
    /// The new password, or `None` when the vendor makes it in place.
    pub password: Option<Secret>,
}

/// A user's settled outcome.
#[derive(Debug, Clone)]
pub struct Settled {
    /// The user's position.
    pub seq: i64,
    /// [`UserState::Reset`] or [`UserState::Failed`].
    pub state: UserState,
    /// What becomes of the journaled password.
    pub password: PasswordUpdate,
    /// The vendor's message or the reason.
    pub detail: String,
}

/// What a settled outcome does to the password journaled with the intent.
#[derive(Debug, Clone)]
pub enum PasswordUpdate {
    /// Keep it: it is in effect, or may be.
    Keep,
    /// Drop it: the reset definitely did not happen.
    Clear,
    /// Replace it with the value the vendor made and returned.
    Set(Secret),
}

/// How many users of a job are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Planned, not yet attempted.
    pub planned: u64,
    /// Outcome unknown.
    pub sending: u64,
    /// Reset.
    pub reset: u64,
    /// Failed.
    pub failed: u64,
    /// Set aside.
    pub set_aside: u64,
}

impl Counts {
    /// Users still to be settled.
    pub fn pending(&self) -> u64 {
        self.planned + self.sending
    }
}

/// The store the engine runs a job against.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Up to `limit` pending users of `job` after position `after`, in order.
    async fn pending(
        &self,
        job: &str,
        after: i64,
        limit: usize,
    ) -> anyhow::Result<Vec<PendingUser>>;

    /// Records new passwords; returns once they are durable. No request may leave
    /// before.
    async fn record_intents(&self, job: &str, intents: Vec<Intent>) -> anyhow::Result<()>;

    /// Records outcomes (durable by the next [`flush`](Self::flush)).
    fn record_outcomes(&self, job: &str, outcomes: Vec<Settled>);

    /// Waits until everything recorded so far is durable.
    async fn flush(&self) -> anyhow::Result<()>;

    /// The job's users by state.
    async fn counts(&self, job: &str) -> anyhow::Result<Counts>;
}

/// A [`JobStore`] in memory: nothing survives the process. For tests, and as the
/// baseline when measuring the journal's cost.
#[derive(Debug, Default)]
pub struct MemoryStore {
    users: Mutex<BTreeMap<i64, MemoryUser>>,
}

/// A user in a [`MemoryStore`]: id, state, password, detail.
type MemoryUser = (String, UserState, Option<Secret>, String);

impl MemoryStore {
    /// A store holding `users` as planned (and `set_aside` as set aside), in order.
    pub fn with_users(users: impl IntoIterator<Item = String>) -> Self {
        let store = MemoryStore::default();
        {
            let mut map = store.lock();
            for (seq, user) in users.into_iter().enumerate() {
                map.insert(
                    seq as i64 + 1,
                    (user, UserState::Planned, None, String::new()),
                );
            }
        }
        store
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i64, MemoryUser>> {
        self.users.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A user's state, password and detail (tests).
    pub fn user(&self, user: &str) -> Option<(UserState, Option<Secret>, String)> {
        self.lock()
            .values()
            .find(|(u, ..)| u == user)
            .map(|(_, state, password, detail)| (*state, password.clone(), detail.clone()))
    }
}

#[async_trait]
impl JobStore for MemoryStore {
    async fn pending(
        &self,
        _job: &str,
        after: i64,
        limit: usize,
    ) -> anyhow::Result<Vec<PendingUser>> {
        Ok(self
            .lock()
            .range(after + 1..)
            .filter(|(_, (_, state, ..))| matches!(state, UserState::Planned | UserState::Sending))
            .take(limit)
            .map(|(seq, (user, state, password, _))| PendingUser {
                seq: *seq,
                user: user.clone(),
                state: *state,
                password: password.clone(),
            })
            .collect())
    }

    async fn record_intents(&self, _job: &str, intents: Vec<Intent>) -> anyhow::Result<()> {
        let mut users = self.lock();
        for intent in intents {
            if let Some(entry) = users.get_mut(&intent.seq) {
                entry.1 = UserState::Sending;
                entry.2 = intent.password;
            }
        }
        Ok(())
    }

    fn record_outcomes(&self, _job: &str, outcomes: Vec<Settled>) {
        let mut users = self.lock();
        for outcome in outcomes {
            if let Some(entry) = users.get_mut(&outcome.seq) {
                entry.1 = outcome.state;
                match outcome.password {
                    PasswordUpdate::Keep => {}
                    PasswordUpdate::Clear => entry.2 = None,
                    PasswordUpdate::Set(password) => entry.2 = Some(password),
                }
                entry.3 = outcome.detail;
            }
        }
    }

    async fn flush(&self) -> anyhow::Result<()> {
        Ok(())
    }

    async fn counts(&self, _job: &str) -> anyhow::Result<Counts> {
        let mut counts = Counts::default();
        for (_, state, ..) in self.lock().values() {
            match state {
                UserState::Planned => counts.planned += 1,
                UserState::Sending => counts.sending += 1,
                UserState::Reset => counts.reset += 1,
                UserState::Failed => counts.failed += 1,
                UserState::SetAside => counts.set_aside += 1,
            }
        }
        Ok(counts)
    }
}
