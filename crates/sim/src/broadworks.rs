//! BroadWorks through the Odin API: a simulator (vendor-apis.md §2.6).
//!
//! Everything is under `/api/v2`; every error is `{details, status, error}`.
//!
//! - `POST /auth/token {username, password}` → `{"token"}`, a JWT-like
//!   `header.payload.signature` (base64url) whose payload has `exp`; bad
//!   credentials → 401. `PUT /auth/token` with a valid, unexpired Bearer token → a
//!   new token (the old one stays valid until it expires, as JWTs do).
//! - Every other endpoint needs a valid, unexpired Bearer token (else 401).
//!   `GET /auth/session` → the session's details.
//! - `GET /users?serviceProviderId&groupId` → every user of the group at once;
//!   `serviceProviderId` alone → its users; without either, the whole system by
//!   filter (`userId`, `lastName`, `firstName`, `extension`, ...: `x`, `x*`,
//!   `*x*`; "ends with" is a 400), as odins-spear asks (vendor-apis.md §5). An
//!   exact `userId` answers that user's object. A `groupId` alone, or no scope
//!   and no filter, is a 400; an unknown service provider or group a 404.
//!   `GET /users/password?userId` → the web password's login details.
//! - `GET /password/generate` and `/passcode/generate` (with `serviceProviderId`
//!   and `groupId`; `password/generate` also without both, under the system's
//!   rules, as odins-spear's bulk SIP path asks): `{"password"}`/`{"passcode"}`
//!   without `limit`, `{"passwords":[..]}`/`{"passcodes":[..]}` with `limit` (1
//!   to 100, else 400). `GET /sip-password/generate` takes no parameters and always answers
//!   the singular `{"password"}`: it ignores `limit`, so a client that asks for
//!   many values at once gets one, in the singular shape (the reference does not
//!   know whether the real server takes `limit`; a client must not rely on it).
//!   Generated values keep the simulator's own rules.
//! - `GET /users/authentication?userId` → `{userId, userName}`; `PUT
//!   /users/authentication {userId, newPassword, userName?}` (a `userName`, if
//!   given, must be the user's) → the SIP rules; 400 when the user lacks the
//!   Authentication service.
//! - `GET /users/portal-passcode?userId`; `PUT /users/portal-passcode {userId,
//!   newPasscode}` → the passcode rules; success → `[]`.
//! - `PUT /users/passwords {userId, newPassword}` (or `password`, as odins-spear
//!   2.3.0 sends it) → the web password rules.
//! - An unknown user → 404. A body without `Content-Type: application/json` → 415;
//!   a body that is not a JSON object or lacks a field → 400.

mod handlers;
mod lookup;
mod rules;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::{get, post, put};
use base64::Engine as _;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;

pub use self::rules::{PasscodeRules, PasswordRules};
use crate::common::{Behaviour, Common, SimServer, lock, new_token};

/// How to set up the simulated Odin server.
#[derive(Debug, Clone)]
pub struct BroadWorksConfig {
    /// The Odin administrator's login name.
    pub username: String,
    /// Its password.
    pub password: String,
    /// The one service provider.
    pub service_provider_id: String,
    /// The one group, in that service provider.
    pub group_id: String,
    /// The users' domain: user ids are `user0001@<domain>` and on.
    pub domain: String,
    /// Users in the group.
    pub users: usize,
    /// How many users (the last ones) lack the Authentication service, and so have
    /// no SIP password to set.
    pub without_authentication: usize,
    /// Token lifetime (whole seconds, at least one).
    pub token_lifetime: Duration,
    /// Web password rules.
    pub web_rules: PasswordRules,
    /// SIP authentication password rules.
    pub sip_rules: PasswordRules,
    /// Passcode rules.
    pub passcode_rules: PasscodeRules,
    /// Length of generated web passwords (18 in Odin's examples).
    pub generated_password_length: usize,
    /// Length of generated SIP passwords (12 in Odin's examples).
    pub generated_sip_length: usize,
    /// Length of generated passcodes (8 in Odin's examples).
    pub generated_passcode_length: usize,
    /// Latency and faults.
    pub behaviour: Behaviour,
    /// Port to listen on (0: any free port).
    pub port: u16,
}

impl Default for BroadWorksConfig {
    fn default() -> Self {
        BroadWorksConfig {
            username: "odin-admin".into(),
            password: "Odin-Admin-Passw0rd!".into(),
            service_provider_id: "ServiceProvider1".into(),
            group_id: "Group1".into(),
            domain: "testdomain.net".into(),
            users: 10,
            without_authentication: 0,
            token_lifetime: Duration::from_secs(24 * 60 * 60),
            web_rules: PasswordRules::web(),
            sip_rules: PasswordRules::sip(),
            passcode_rules: PasscodeRules::default(),
            generated_password_length: 18,
            generated_sip_length: 12,
            generated_passcode_length: 8,
            behaviour: Behaviour::default(),
            port: 0,
        }
    }
}

/// A credential of a simulated user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Credential {
    /// The web (portal login) password.
    Web,
    /// The SIP authentication password.
    Sip,
    /// The voicemail/portal passcode.
    Passcode,
}

/// How many times each generator endpoint was called.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenerateCalls {
    /// `GET /password/generate`.
    pub password: usize,
    /// `GET /passcode/generate`.
    pub passcode: usize,
    /// `GET /sip-password/generate`.
    pub sip: usize,
}

#[derive(Debug, Clone)]
struct SipAuth {
    user_name: String,
    password: String,
}

#[derive(Debug, Clone)]
struct User {
    user_id: String,
    first_name: String,
    last_name: String,
    extension: String,
    web_password: String,
    /// `None` when the user lacks the Authentication service.
    sip: Option<SipAuth>,
    passcode: String,
    history: BTreeMap<Credential, Vec<String>>,
}

impl User {
    /// The user id's local part, which web passwords may not contain.
    fn name(&self) -> &str {
        self.user_id.split('@').next().unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
struct Token {
    expires: SystemTime,
    /// Refused on API calls (a test hook), though still good for a refresh.
    stale: bool,
}

#[derive(Debug)]
struct Inner {
    /// By user id, which is case-sensitive.
    users: BTreeMap<String, User>,
    tokens: HashMap<String, Token>,
    logins: usize,
    failed_logins: usize,
    refreshes: usize,
    failed_refreshes: usize,
    generate_calls: GenerateCalls,
    generated: HashSet<String>,
    rng: StdRng,
}

#[derive(Debug)]
struct Shared {
    common: Arc<Common>,
    config: BroadWorksConfig,
    inner: Mutex<Inner>,
}

/// A running Odin API simulator.
#[derive(Debug)]
pub struct BroadWorksSim {
    server: SimServer,
    shared: Arc<Shared>,
}

impl BroadWorksSim {
    /// Starts the simulator on 127.0.0.1. Must be called inside a tokio runtime.
    pub async fn start(config: BroadWorksConfig) -> std::io::Result<Self> {
        let with_authentication = config.users.saturating_sub(config.without_authentication);
        let users = (1..=config.users)
            .map(|i| {
                let name = format!("user{i:04}");
                let user = User {
                    user_id: format!("{name}@{}", config.domain),
                    first_name: "User".into(),
                    last_name: format!("{i:04}"),
                    extension: format!("{}", 1000 + i),
                    web_password: format!("Initial-{i}-Web"),
                    sip: (i <= with_authentication).then(|| SipAuth {
                        user_name: name.clone(),
                        password: format!("Initial-{i}-Sip"),
                    }),
                    passcode: "13579".into(),
                    history: BTreeMap::new(),
                };
                (user.user_id.clone(), user)
            })
            .collect();
        let common = Common::new(config.behaviour.clone());
        let shared = Arc::new(Shared {
            common: Arc::clone(&common),
            inner: Mutex::new(Inner {
                users,
                tokens: HashMap::new(),
                logins: 0,
                failed_logins: 0,
                refreshes: 0,
                failed_refreshes: 0,
                generate_calls: GenerateCalls::default(),
                generated: HashSet::new(),
                rng: StdRng::seed_from_u64(config.behaviour.seed ^ 0x0d1e),
            }),
            config,
        });
        let router = Router::new()
            .route(
                "/api/v2/auth/token",
                post(handlers::login).put(handlers::refresh),
            )
            .route("/api/v2/auth/session", get(lookup::get_session))
            .route("/api/v2/users", get(lookup::list_users))
            .route("/api/v2/users/password", get(lookup::get_password_info))
            .route(
                "/api/v2/users/authentication",
                get(handlers::get_authentication).put(handlers::put_authentication),
            )
            .route(
                "/api/v2/users/portal-passcode",
                get(handlers::get_passcode).put(handlers::put_passcode),
            )
            .route("/api/v2/users/passwords", put(handlers::put_web_password))
            .route(
                "/api/v2/password/generate",
                get(handlers::generate_passwords),
            )
            .route(
                "/api/v2/passcode/generate",
                get(handlers::generate_passcodes),
            )
            .route(
                "/api/v2/sip-password/generate",
                get(handlers::generate_sip_password),
            )
            .fallback(handlers::not_found)
            .method_not_allowed_fallback(handlers::method_not_allowed)
            .with_state(Arc::clone(&shared));
        let server = SimServer::start(shared.config.port, router, common).await?;
        Ok(BroadWorksSim { server, shared })
    }

    /// The server's root URL (the connector adds `/api/v2`).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &BroadWorksConfig {
        &self.shared.config
    }

    /// Latency, faults, request log and clock.
    pub fn common(&self) -> &Common {
        &self.shared.common
    }

    /// The id of the `n`th user (from 1).
    pub fn user_id(&self, n: usize) -> String {
        format!("user{n:04}@{}", self.shared.config.domain)
    }

    /// Every user id of the group.
    pub fn users(&self) -> Vec<String> {
        lock(&self.shared.inner).users.keys().cloned().collect()
    }

    fn with_user<T>(&self, user: &str, read: impl FnOnce(&User) -> T) -> Option<T> {
        lock(&self.shared.inner).users.get(user).map(read)
    }

    /// A user's current web password.
    pub fn web_password(&self, user: &str) -> Option<String> {
        self.with_user(user, |u| u.web_password.clone())
    }

    /// A user's current SIP authentication password (`None` without the
    /// Authentication service).
    pub fn sip_password(&self, user: &str) -> Option<String> {
        self.with_user(user, |u| u.sip.as_ref().map(|s| s.password.clone()))
            .flatten()
    }

    /// A user's SIP authentication name.
    pub fn sip_user_name(&self, user: &str) -> Option<String> {
        self.with_user(user, |u| u.sip.as_ref().map(|s| s.user_name.clone()))
            .flatten()
    }

    /// Whether a user has the Authentication service.
    pub fn has_authentication(&self, user: &str) -> bool {
        self.with_user(user, |u| u.sip.is_some()).unwrap_or(false)
    }

    /// A user's current passcode.
    pub fn passcode(&self, user: &str) -> Option<String> {
        self.with_user(user, |u| u.passcode.clone())
    }

    /// Every value of `credential` set for a user through the API, in order.
    pub fn history(&self, user: &str, credential: Credential) -> Vec<String> {
        self.with_user(user, |u| u.history.get(&credential).cloned())
            .flatten()
            .unwrap_or_default()
    }

    /// Whether one of the generator endpoints handed out `value`.
    pub fn was_generated(&self, value: &str) -> bool {
        lock(&self.shared.inner).generated.contains(value)
    }

    /// Why the simulator would refuse `code` as a passcode, if it would.
    pub fn passcode_violation(&self, code: &str) -> Option<String> {
        self.shared.config.passcode_rules.violation(code)
    }

    /// Successful logins so far.
    pub fn logins(&self) -> usize {
        lock(&self.shared.inner).logins
    }

    /// Refused logins so far.
    pub fn failed_logins(&self) -> usize {
        lock(&self.shared.inner).failed_logins
    }

    /// Successful token refreshes so far.
    pub fn refreshes(&self) -> usize {
        lock(&self.shared.inner).refreshes
    }

    /// Refused token refreshes so far.
    pub fn failed_refreshes(&self) -> usize {
        lock(&self.shared.inner).failed_refreshes
    }

    /// Calls to each generator endpoint so far (answered with values or not).
    pub fn generate_calls(&self) -> GenerateCalls {
        lock(&self.shared.inner).generate_calls
    }

    /// Test hook: every token issued so far is refused (401) on API calls from now
    /// on, but can still be refreshed while unexpired. Tokens issued later work.
    pub fn reject_issued_tokens(&self) {
        for token in lock(&self.shared.inner).tokens.values_mut() {
            token.stale = true;
        }
    }

    /// Test hook: forgets every token (as a restart with a new signing key
    /// would): API calls and refreshes with them get 401.
    pub fn revoke_tokens(&self) {
        lock(&self.shared.inner).tokens.clear();
    }
}

impl Shared {
    /// Issues a JWT-like token for the administrator: `exp` is whole seconds, as
    /// JWT issuers write it, and the token is valid until then.
    fn issue(&self, inner: &mut Inner) -> String {
        let now = self
            .common
            .clock
            .now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let exp = now + self.config.token_lifetime.as_secs().max(1);
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = engine.encode(json!({ "alg": "HS256", "typ": "JWT" }).to_string());
        let payload = engine.encode(
            json!({
                "sub": self.config.username,
                "iat": now,
                "exp": exp,
                "jti": new_token(&mut inner.rng),
            })
            .to_string(),
        );
        let mut signature = [0u8; 32];
        rand::Rng::fill_bytes(&mut inner.rng, &mut signature);
        let token = format!("{header}.{payload}.{}", engine.encode(signature));
        inner.tokens.insert(
            token.clone(),
            Token {
                expires: UNIX_EPOCH + Duration::from_secs(exp),
                stale: false,
            },
        );
        token
    }
}
