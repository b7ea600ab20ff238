//! Oracle Primavera Administration simulator (vendor-apis.md §3.6), under
//! `/cloudapi/restapi`.
//!
//! - Basic authentication on every request. A missing, malformed or wrong
//!   `Authorization`, or a disabled or locked account, gets `401` with an empty
//!   body; a user without Primavera Administration rights gets `403`.
//! - `GET user` → every user at once, as full `User` objects (never a password).
//! - `PUT user/manual-reset-pwd/{true|false}` (`application/json`, else `415`; any
//!   other segment `404`): a JSON array of `{loginId, password}`, the password an
//!   array of one-character strings (a plain string is refused unless
//!   [`OracleConfig::accept_plain_password`]). One unknown, repeated or
//!   unreadable entry, a missing password or a character outside printable ASCII
//!   fails the whole batch with `400` `text/plain` "Invalid input, Please check.";
//!   a password the identity domain's [`OraclePolicy`] refuses fails it with `500`
//!   "...Underlying Identity Management System threw an error...". Either way
//!   nothing changes. Otherwise every password is set at once, `true` e-mails the
//!   users, and the reply is, as documented (seed 002, vendor-apis.md §5), a
//!   single `User` object (the batch's first user), or with
//!   [`ManualResetReply::Array`] an array of every user's.
//! - `PUT user/auto-reset-pwd` (JSON array of loginIds): one unknown id fails the
//!   batch with `400`; otherwise a map `{loginId: message}`, empty for a user given
//!   a random password (e-mailed to them), a message for a disabled account, which
//!   is left alone.
//! - `PUT user/{loginId}/auto-reset-pwd` → `text/plain` `Success`.
//! - `PUT user/change-lock` (JSON array of users) unlocks them.
//!
//! Login ids compare without regard to case, as identity-domain user names do; the
//! replies spell them as stored (upper case).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::{get, put};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng};

use crate::common::{Behaviour, Common, SimServer, lock};

/// The body of every `400`.
pub const INVALID_INPUT: &str = "Invalid input, Please check.";
/// The body of a `500` from the identity domain (a password it refused).
pub const IDENTITY_ERROR: &str = "Internal Server Error. Underlying Identity Management System threw an error, Please check the logs.";
/// The message auto-reset gives for a disabled account.
pub const DISABLED_MESSAGE: &str = "The user account is disabled; the password was not reset.";

/// The identity domain's password policy (Primavera leaves passwords to it).
#[derive(Debug, Clone)]
pub struct OraclePolicy {
    /// Shortest accepted password.
    pub min_length: usize,
    /// Needs an upper-case letter.
    pub require_upper: bool,
    /// Needs a lower-case letter.
    pub require_lower: bool,
    /// Needs a digit.
    pub require_digit: bool,
}

impl Default for OraclePolicy {
    fn default() -> Self {
        OraclePolicy {
            min_length: 8,
            require_upper: true,
            require_lower: true,
            require_digit: true,
        }
    }
}

impl OraclePolicy {
    /// Whether the identity domain accepts `password`.
    pub fn accepts(&self, password: &str) -> bool {
        password.chars().count() >= self.min_length
            && (!self.require_upper || password.chars().any(|c| c.is_ascii_uppercase()))
            && (!self.require_lower || password.chars().any(|c| c.is_ascii_lowercase()))
            && (!self.require_digit || password.chars().any(|c| c.is_ascii_digit()))
    }
}

/// The body of a successful `manual-reset-pwd`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ManualResetReply {
    /// One `User` object, as the documentation's 200 response says (the batch's
    /// first user).
    #[default]
    Object,
    /// An array of every user's `User` object.
    Array,
}

/// How to set up the simulated tenant.
#[derive(Debug, Clone)]
pub struct OracleConfig {
    /// The administrator's login id.
    pub admin: String,
    /// The administrator's password.
    pub admin_password: String,
    /// Ordinary users to create: `USER0001` and on (each with password
    /// `Initial-{n}-Passw0rd` and no administration rights).
    pub users: usize,
    /// The identity domain's password policy.
    pub policy: OraclePolicy,
    /// Accept a plain string as `password` in manual-reset-pwd (Jackson binds a
    /// string to `char[]` too \[INF\]); by default only the documented array is.
    pub accept_plain_password: bool,
    /// The body of a successful manual-reset-pwd.
    pub manual_reset_reply: ManualResetReply,
    /// Login ids of accounts that start disabled.
    pub disabled: Vec<String>,
    /// Login ids of accounts that start locked.
    pub locked: Vec<String>,
    /// Latency and faults.
    pub behaviour: Behaviour,
    /// Port to listen on (0: any free port).
    pub port: u16,
}

impl Default for OracleConfig {
    fn default() -> Self {
        OracleConfig {
            admin: "COADMIN".into(),
            admin_password: "Admin-Passw0rd!".into(),
            users: 10,
            policy: OraclePolicy::default(),
            accept_plain_password: false,
            manual_reset_reply: ManualResetReply::default(),
            disabled: Vec::new(),
            locked: Vec::new(),
            behaviour: Behaviour::default(),
            port: 0,
        }
    }
}

/// One password set through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordChange {
    /// The value set.
    pub password: String,
    /// Whether the vendor made it (auto-reset) rather than the caller.
    pub vendor_made: bool,
    /// Whether the user was e-mailed about it.
    pub emailed: bool,
}

/// An e-mail the tenant sent about a password reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The user's login id.
    pub login_id: String,
    /// Where it went.
    pub email: String,
    /// Whether it carried a password the vendor made.
    pub vendor_made: bool,
}

/// One call to a bulk reset endpoint that got past authentication and the
/// path, content-type and `Accept` checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetCall {
    /// `manual-reset-pwd` or `auto-reset-pwd`.
    pub endpoint: &'static str,
    /// Entries in the request body (0 when it was not an array).
    pub users: usize,
    /// The status answered.
    pub status: u16,
}

#[derive(Debug, Clone)]
struct Account {
    login_id: String,
    id: String,
    number: usize,
    password: String,
    history: Vec<PasswordChange>,
    disabled: bool,
    locked: bool,
    admin: bool,
}

#[derive(Debug)]
struct Inner {
    /// By upper-cased login id.
    accounts: BTreeMap<String, Account>,
    notifications: Vec<Notification>,
    calls: Vec<ResetCall>,
    rng: StdRng,
}

#[derive(Debug)]
struct Shared {
    common: Arc<Common>,
    config: OracleConfig,
    inner: Mutex<Inner>,
}

/// A running Primavera Administration simulator.
#[derive(Debug)]
pub struct OracleSim {
    server: SimServer,
    shared: Arc<Shared>,
}

fn key(login_id: &str) -> String {
    login_id.to_uppercase()
}

impl OracleSim {
    /// Starts the simulator on 127.0.0.1. Must be called inside a tokio runtime.
    pub async fn start(config: OracleConfig) -> std::io::Result<Self> {
        let mut rng = StdRng::seed_from_u64(config.behaviour.seed ^ 0x04ac1e);
        let mut accounts = BTreeMap::new();
        let mut add = |login_id: String, password: String, number: usize, admin: bool| {
            let id = (0..16)
                .map(|_| format!("{:02x}", rng.random::<u8>()))
                .collect();
            let account = Account {
                disabled: config.disabled.iter().any(|d| key(d) == key(&login_id)),
                locked: config.locked.iter().any(|l| key(l) == key(&login_id)),
                login_id,
                id,
                number,
                password,
                history: Vec::new(),
                admin,
            };
            accounts.insert(key(&account.login_id), account);
        };
        add(config.admin.clone(), config.admin_password.clone(), 0, true);
        for n in 1..=config.users {
            add(
                format!("USER{n:04}"),
                format!("Initial-{n}-Passw0rd"),
                n,
                false,
            );
        }
        let common = Common::new(config.behaviour.clone());
        let shared = Arc::new(Shared {
            common: Arc::clone(&common),
            inner: Mutex::new(Inner {
                accounts,
                notifications: Vec::new(),
                calls: Vec::new(),
                rng,
            }),
            config,
        });
        let router = Router::new()
            .route("/cloudapi/restapi/user", get(handlers::list_users))
            .route(
                "/cloudapi/restapi/user/manual-reset-pwd/{notify}",
                put(handlers::manual_reset),
            )
            .route(
                "/cloudapi/restapi/user/auto-reset-pwd",
                put(handlers::auto_reset),
            )
            .route(
                "/cloudapi/restapi/user/{login_id}/auto-reset-pwd",
                put(handlers::auto_reset_one),
            )
            .route(
                "/cloudapi/restapi/user/change-lock",
                put(handlers::change_lock),
            )
            .with_state(Arc::clone(&shared));
        let server = SimServer::start(shared.config.port, router, common).await?;
        Ok(OracleSim { server, shared })
    }

    /// The server's root URL (the connector adds `/cloudapi/restapi`).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &OracleConfig {
        &self.shared.config
    }

    /// Latency, faults, request log and clock.
    pub fn common(&self) -> &Common {
        &self.shared.common
    }

    /// Every login id, the administrator's included.
    pub fn users(&self) -> Vec<String> {
        lock(&self.shared.inner)
            .accounts
            .values()
            .map(|a| a.login_id.clone())
            .collect()
    }

    /// A user's current password.
    pub fn password(&self, login_id: &str) -> Option<String> {
        lock(&self.shared.inner)
            .accounts
            .get(&key(login_id))
            .map(|a| a.password.clone())
    }

    /// Every password set for a user through the API, in order.
    pub fn history(&self, login_id: &str) -> Vec<String> {
        self.changes(login_id)
            .into_iter()
            .map(|c| c.password)
            .collect()
    }

    /// Every password change made for a user through the API, in order.
    pub fn changes(&self, login_id: &str) -> Vec<PasswordChange> {
        lock(&self.shared.inner)
            .accounts
            .get(&key(login_id))
            .map(|a| a.history.clone())
            .unwrap_or_default()
    }

    /// Whether a user's account is locked.
    pub fn is_locked(&self, login_id: &str) -> Option<bool> {
        lock(&self.shared.inner)
            .accounts
            .get(&key(login_id))
            .map(|a| a.locked)
    }

    /// The password e-mails sent so far.
    pub fn notifications(&self) -> Vec<Notification> {
        lock(&self.shared.inner).notifications.clone()
    }

    /// The calls to the bulk reset endpoints so far, in order.
    pub fn reset_calls(&self) -> Vec<ResetCall> {
        lock(&self.shared.inner).calls.clone()
    }
}

mod handlers;
#[cfg(test)]
mod tests;
