//! The engine's port to durable storage: where a job's users and their outcomes
//! live while it runs.
//!
//! The engine reads pending users in chunks, records each user's new password as an
//! *intent* that must be durable before the request leaves, and records each
//! settled outcome. [`Journal`](crate::journal::Journal) is the durable store;
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
    /// Never to be reset (excluded, the connector's own account, or not attempted
    /// in a discarded job).
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

    /// The inverse of [`code`](Self::code); `None` for a number no rekey writes.
    pub fn from_code(code: i64) -> Option<UserState> {
        Some(match code {
            0 => UserState::Planned,
            1 => UserState::Sending,
            2 => UserState::Reset,
            3 => UserState::Failed,
            4 => UserState::SetAside,
            _ => return None,
        })
    }

    /// Whether the user still has to be settled (planned, or sent with an unknown
    /// outcome).
    pub fn is_pending(self) -> bool {
        matches!(self, UserState::Planned | UserState::Sending)
    }
}

/// Which users of which job a store call is about: a job resets users on one or
/// more targets, and the engine runs one target at a time.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The job's id.
    pub job: &'a str,
    /// The target's name.
    pub target: &'a str,
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
#[derive(Debug)]
pub struct Intent {
    /// The user's position.
    pub seq: i64,
    /// The new password, or `None` when the vendor makes it in place.
    pub password: Option<Secret>,
}

/// A user as the job knows it: the journal's row, and the one event the engine
/// emits when a user is settled. The results file is rendered from this alone,
/// whether live or when a stopped job's results are rewritten.
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// Position in the job's selection.
    pub seq: i64,
    /// The user id.
    pub user: String,
    /// Where the user stands.
    pub state: UserState,
    /// The password to hand over: in effect, or possibly in effect. `None` when
    /// rekey does not know one (never sent, definitely refused, or kept by the
    /// vendor).
    pub password: Option<Secret>,
    /// The vendor's message or the reason.
    pub detail: String,
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

    /// Adds `n` users in `state`.
    pub fn add(&mut self, state: UserState, n: u64) {
        match state {
            UserState::Planned => self.planned += n,
            UserState::Sending => self.sending += n,
            UserState::Reset => self.reset += n,
            UserState::Failed => self.failed += n,
            UserState::SetAside => self.set_aside += n,
        }
    }
}

/// The store the engine runs a job against.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Up to `limit` pending users of `scope` after position `after`, in order.
    async fn pending(
        &self,
        scope: Scope<'_>,
        after: i64,
        limit: usize,
    ) -> anyhow::Result<Vec<PendingUser>>;

    /// Records new passwords; returns once they are durable. No request may leave
    /// before. Fails, recording nothing, if any of the users is no longer planned
    /// (another process is running the job).
    async fn record_intents(&self, scope: Scope<'_>, intents: Vec<Intent>) -> anyhow::Result<()>;

    /// Records settled users (durable by the next [`flush`](Self::flush)). Only a
    /// user that is still sending is updated.
    fn record_outcomes(&self, scope: Scope<'_>, outcomes: Vec<UserRecord>);

    /// Waits until everything recorded so far is durable.
    async fn flush(&self) -> anyhow::Result<()>;
}

/// A [`JobStore`] in memory for one job and target: nothing survives the process.
/// For tests, and as the baseline when measuring the journal's cost.
#[derive(Debug, Default)]
pub struct MemoryStore {
    users: Mutex<BTreeMap<i64, UserRecord>>,
}

impl MemoryStore {
    /// A store holding `users` as planned, in order.
    pub fn with_users(users: impl IntoIterator<Item = String>) -> Self {
        let store = MemoryStore::default();
        {
            let mut map = store.lock();
            for (seq, user) in users.into_iter().enumerate() {
                let seq = seq as i64 + 1;
                map.insert(
                    seq,
                    UserRecord {
                        seq,
                        user,
                        state: UserState::Planned,
                        password: None,
                        detail: String::new(),
                    },
                );
            }
        }
        store
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i64, UserRecord>> {
        self.users.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A user's record (tests).
    pub fn user(&self, user: &str) -> Option<UserRecord> {
        self.lock().values().find(|u| u.user == user).cloned()
    }

    /// The users by state.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for user in self.lock().values() {
            counts.add(user.state, 1);
        }
        counts
    }
}

#[async_trait]
impl JobStore for MemoryStore {
    async fn pending(
        &self,
        _scope: Scope<'_>,
        after: i64,
        limit: usize,
    ) -> anyhow::Result<Vec<PendingUser>> {
        Ok(self
            .lock()
            .range(after + 1..)
            .filter(|(_, user)| user.state.is_pending())
            .take(limit)
            .map(|(seq, user)| PendingUser {
                seq: *seq,
                user: user.user.clone(),
                state: user.state,
                password: user.password.clone(),
            })
            .collect())
    }

    async fn record_intents(&self, _scope: Scope<'_>, intents: Vec<Intent>) -> anyhow::Result<()> {
        let mut users = self.lock();
        if let Some(intent) = intents
            .iter()
            .find(|i| users.get(&i.seq).map(|u| u.state) != Some(UserState::Planned))
        {
            anyhow::bail!("user #{} is no longer planned", intent.seq);
        }
        for intent in intents {
            if let Some(user) = users.get_mut(&intent.seq) {
                user.state = UserState::Sending;
                user.password = intent.password;
            }
        }
        Ok(())
    }

    fn record_outcomes(&self, _scope: Scope<'_>, outcomes: Vec<UserRecord>) {
        let mut users = self.lock();
        for outcome in outcomes {
            if let Some(user) = users.get_mut(&outcome.seq)
                && user.state == UserState::Sending
            {
                *user = outcome;
            }
        }
    }

    async fn flush(&self) -> anyhow::Result<()> {
        Ok(())
    }
}
