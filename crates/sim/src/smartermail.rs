//! SmarterMail simulator (vendor-apis.md §1.9).
//!
//! - `POST /api/v1/auth/authenticate-user` (JSON or form) → the login envelope; bad
//!   credentials answer HTTP 200 with `success: false` (or 401 if configured).
//! - `POST /api/v1/auth/refresh-token {token}` → a new pair; the old refresh token
//!   stops working (rotation).
//! - `POST /api/v1/settings/sysadmin/manage-domain/{domain}` → impersonation tokens.
//! - `GET /api/v1/settings/domain/list-users` → every user at once. A system
//!   administrator's token needs impersonation or `X-SmarterMailDomain`, else
//!   `success: false`, "Failed list users for the domain. The domain not found".
//! - `POST /api/v1/settings/domain/post-user[/]` → a partial merge of `userData`;
//!   the password policy is enforced with `success: false`, and an unknown address
//!   gets "User does not exist.".
//! - A missing, unknown or expired bearer token → 401; a plain user's token on a
//!   domain endpoint → 403; a body that is not JSON where JSON is expected → 415.
//! - Field names in JSON and form bodies are bound without regard to case
//!   (`{"Username":..}` works), as the real server's .NET model binding does
//!   (vendor-apis.md §5).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use self::policy::SmarterMailPolicy;
use crate::common::{
    Behaviour, Common, SimServer, bearer, has_content_type, json_response, lock, new_token,
};

mod auth;
mod bodies;
mod policy;

use self::auth::{login, refresh};
use self::bodies::field;

/// How to set up the simulated server.
#[derive(Debug, Clone)]
pub struct SmarterMailConfig {
    /// The one domain on the server.
    pub domain: String,
    /// Local part of the domain administrator (`admin` → `admin@example.com`).
    pub domain_admin: String,
    /// The domain administrator's password.
    pub admin_password: String,
    /// The system administrator's login name.
    pub sysadmin: String,
    /// The system administrator's password.
    pub sysadmin_password: String,
    /// Ordinary users to create: `user00001@domain` and on.
    pub users: usize,
    /// Access-token lifetime.
    pub token_lifetime: Duration,
    /// The domain's password rules.
    pub policy: SmarterMailPolicy,
    /// Answer bad logins with HTTP 401 instead of 200 + `success: false`.
    pub bad_login_401: bool,
    /// Latency and faults.
    pub behaviour: Behaviour,
    /// Port to listen on (0: any free port).
    pub port: u16,
}

impl Default for SmarterMailConfig {
    fn default() -> Self {
        SmarterMailConfig {
            domain: "example.com".into(),
            domain_admin: "admin".into(),
            admin_password: "Admin-Passw0rd!".into(),
            sysadmin: "sysadmin".into(),
            sysadmin_password: "Sys-Passw0rd!".into(),
            users: 10,
            token_lifetime: Duration::from_secs(15 * 60),
            policy: SmarterMailPolicy::default(),
            bad_login_401: false,
            behaviour: Behaviour::default(),
            port: 0,
        }
    }
}

#[derive(Debug, Clone)]
struct Mailbox {
    email: String,
    user_name: String,
    full_name: String,
    password: String,
    history: Vec<String>,
    domain_admin: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Principal {
    SysAdmin,
    User { domain: String, admin: bool },
    Impersonation { domain: String },
}

#[derive(Debug, Clone)]
struct Token {
    principal: Principal,
    expires: SystemTime,
}

#[derive(Debug)]
struct Inner {
    mailboxes: BTreeMap<String, Mailbox>,
    access: HashMap<String, Token>,
    refresh: HashMap<String, Token>,
    logins: usize,
    failed_logins: usize,
    refreshes: usize,
    rng: StdRng,
}

#[derive(Debug)]
struct Shared {
    common: Arc<Common>,
    config: SmarterMailConfig,
    inner: Mutex<Inner>,
}

/// A running SmarterMail simulator.
#[derive(Debug)]
pub struct SmarterMailSim {
    server: SimServer,
    shared: Arc<Shared>,
}

impl SmarterMailSim {
    /// Starts the simulator on 127.0.0.1. Must be called inside a tokio runtime.
    pub async fn start(config: SmarterMailConfig) -> std::io::Result<Self> {
        let mut mailboxes = BTreeMap::new();
        let admin = format!("{}@{}", config.domain_admin, config.domain);
        mailboxes.insert(
            admin.to_lowercase(),
            Mailbox {
                email: admin.clone(),
                user_name: config.domain_admin.clone(),
                full_name: "Domain Administrator".into(),
                password: config.admin_password.clone(),
                history: Vec::new(),
                domain_admin: true,
            },
        );
        for i in 1..=config.users {
            let name = format!("user{i:05}");
            let email = format!("{name}@{}", config.domain);
            mailboxes.insert(
                email.to_lowercase(),
                Mailbox {
                    email,
                    full_name: format!("User {i}"),
                    user_name: name,
                    password: format!("Initial-{i}-Passw0rd"),
                    history: Vec::new(),
                    domain_admin: false,
                },
            );
        }
        let common = Common::new(config.behaviour.clone());
        let shared = Arc::new(Shared {
            common: Arc::clone(&common),
            inner: Mutex::new(Inner {
                mailboxes,
                access: HashMap::new(),
                refresh: HashMap::new(),
                logins: 0,
                failed_logins: 0,
                refreshes: 0,
                rng: StdRng::seed_from_u64(config.behaviour.seed ^ 0x5eed),
            }),
            config,
        });
        let router = Router::new()
            .route("/api/v1/auth/authenticate-user", post(login))
            .route("/api/v1/auth/refresh-token", post(refresh))
            .route(
                "/api/v1/settings/sysadmin/manage-domain/{domain}",
                post(manage_domain),
            )
            .route("/api/v1/settings/domain/list-users", get(list_users))
            .route("/api/v1/settings/domain/post-user", post(post_user))
            .route("/api/v1/settings/domain/post-user/", post(post_user))
            .with_state(Arc::clone(&shared));
        let server = SimServer::start(shared.config.port, router, common).await?;
        Ok(SmarterMailSim { server, shared })
    }

    /// The server's root URL.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The domain administrator's address.
    pub fn domain_admin(&self) -> String {
        format!(
            "{}@{}",
            self.shared.config.domain_admin, self.shared.config.domain
        )
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &SmarterMailConfig {
        &self.shared.config
    }

    /// Latency, faults, request log and clock.
    pub fn common(&self) -> &Common {
        &self.shared.common
    }

    /// Every mailbox address, the domain administrator's included.
    pub fn users(&self) -> Vec<String> {
        lock(&self.shared.inner)
            .mailboxes
            .values()
            .map(|m| m.email.clone())
            .collect()
    }

    /// A user's current password.
    pub fn password(&self, email: &str) -> Option<String> {
        lock(&self.shared.inner)
            .mailboxes
            .get(&email.to_lowercase())
            .map(|m| m.password.clone())
    }

    /// Every password set for a user through the API, in order.
    pub fn history(&self, email: &str) -> Vec<String> {
        lock(&self.shared.inner)
            .mailboxes
            .get(&email.to_lowercase())
            .map(|m| m.history.clone())
            .unwrap_or_default()
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

    /// Revokes every access and refresh token, as an administrator signing all
    /// sessions out would: clients must log in again.
    pub fn revoke_sessions(&self) {
        let mut inner = lock(&self.shared.inner);
        inner.access.clear();
        inner.refresh.clear();
    }

    /// Changes a mailbox's password behind the client's back (an administrator
    /// rotating the domain admin's password, say).
    pub fn set_password(&self, email: &str, password: &str) {
        if let Some(mailbox) = lock(&self.shared.inner)
            .mailboxes
            .get_mut(&email.to_lowercase())
        {
            mailbox.password = password.to_owned();
        }
    }
}

fn iso(time: SystemTime) -> String {
    OffsetDateTime::from(time)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn unauthorized(message: &str) -> Response {
    json_response(StatusCode::UNAUTHORIZED, json!({ "message": message }))
}

fn envelope(success: bool, message: Option<&str>, code: u16) -> Value {
    json!({ "success": success, "resultCode": code, "message": message, "debugInfo": null })
}

pub(super) fn unsupported_media() -> Response {
    json_response(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        json!({ "message": "Unsupported Media Type: send application/json" }),
    )
}

pub(super) fn bad_request(message: &str) -> Response {
    json_response(StatusCode::BAD_REQUEST, json!({ "message": message }))
}

impl Shared {
    fn issue(&self, inner: &mut Inner, principal: Principal) -> (String, String, SystemTime) {
        let now = self.common.clock.now();
        let expires = now + self.config.token_lifetime;
        let access = new_token(&mut inner.rng);
        let refresh = new_token(&mut inner.rng);
        inner.access.insert(
            access.clone(),
            Token {
                principal: principal.clone(),
                expires,
            },
        );
        inner.refresh.insert(
            refresh.clone(),
            Token {
                principal,
                expires: now + self.config.token_lifetime.max(Duration::from_secs(60)) * 24,
            },
        );
        (access, refresh, expires)
    }

    /// The principal of a request's bearer token, or the 401 to answer.
    fn principal(&self, inner: &Inner, headers: &HeaderMap) -> Result<Principal, Response> {
        let Some(token) = bearer(headers) else {
            return Err(unauthorized(
                "Authorization has been denied for this request.",
            ));
        };
        match inner.access.get(token) {
            Some(t) if t.expires > self.common.clock.now() => Ok(t.principal.clone()),
            Some(_) => Err(unauthorized("The access token has expired.")),
            None => Err(unauthorized(
                "Authorization has been denied for this request.",
            )),
        }
    }

    /// The domain a `settings/domain/*` call acts on, or the answer to give.
    fn domain_scope(
        &self,
        inner: &Inner,
        headers: &HeaderMap,
        failure: &str,
    ) -> Result<String, Response> {
        match self.principal(inner, headers)? {
            Principal::User {
                domain,
                admin: true,
            }
            | Principal::Impersonation { domain } => Ok(domain),
            Principal::User { admin: false, .. } => Err(json_response(
                StatusCode::FORBIDDEN,
                json!({ "message": "Access to this resource is forbidden." }),
            )),
            Principal::SysAdmin => {
                let header = headers
                    .get("X-SmarterMailDomain")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                match header {
                    Some(domain) if domain.eq_ignore_ascii_case(&self.config.domain) => {
                        Ok(self.config.domain.clone())
                    }
                    _ => Err(json_response(
                        StatusCode::OK,
                        envelope(false, Some(failure), 400),
                    )),
                }
            }
        }
    }
}

async fn manage_domain(
    State(shared): State<Arc<Shared>>,
    Path(domain): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut inner = lock(&shared.inner);
    match shared.principal(&inner, &headers) {
        Ok(Principal::SysAdmin) => {}
        Ok(_) => {
            return json_response(
                StatusCode::FORBIDDEN,
                json!({ "message": "Access to this resource is forbidden." }),
            );
        }
        Err(response) => return response,
    }
    if !domain.eq_ignore_ascii_case(&shared.config.domain) {
        return json_response(
            StatusCode::NOT_FOUND,
            envelope(false, Some("Domain not found."), 404),
        );
    }
    let domain = shared.config.domain.clone();
    let (access, refresh, expires) = shared.issue(
        &mut inner,
        Principal::Impersonation {
            domain: domain.clone(),
        },
    );
    json_response(
        StatusCode::OK,
        json!({
            "impersonateAccessToken": access,
            "impersonateRefreshToken": refresh,
            "impersonateAccessTokenExpiration": iso(expires),
            "username": format!("{}@{}", shared.config.domain_admin, domain),
            "email": format!("{}@{}", shared.config.domain_admin, domain),
            "success": true,
            "resultCode": 200,
        }),
    )
}

async fn list_users(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let inner = lock(&shared.inner);
    if let Err(response) = shared.domain_scope(
        &inner,
        &headers,
        "Failed list users for the domain. The domain not found",
    ) {
        return response;
    }
    let users: Vec<Value> = inner
        .mailboxes
        .values()
        .map(|m| {
            json!({
                "userName": m.user_name,
                "emailAddress": m.email,
                "fullName": m.full_name,
                "securityFlags": { "isDomainAdmin": m.domain_admin, "isDisabled": false },
                "isPrimaryDomainAdmin": m.domain_admin,
                "currentMailboxSize": 123_456,
                "maxMailboxSize": 0,
                "lastLoginTime": "2025-01-01T00:00:00",
            })
        })
        .collect();
    let mut reply = envelope(true, None, 200);
    reply["userData"] = Value::Array(users);
    json_response(StatusCode::OK, reply)
}

async fn post_user(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let mut inner = lock(&shared.inner);
    if let Err(response) = shared.domain_scope(
        &inner,
        &headers,
        "Failed to update the user. The domain not found",
    ) {
        return response;
    }
    if !has_content_type(&headers, "application/json") {
        return unsupported_media();
    }
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("The request body is not valid JSON.");
    };
    let Some(email) = field(&request, "email").and_then(Value::as_str) else {
        return bad_request("email is required.");
    };
    let Some(user_data) = field(&request, "userData").and_then(Value::as_object) else {
        return bad_request("userData is required.");
    };
    let key = email.to_lowercase();
    let Some(mailbox) = inner.mailboxes.get(&key).cloned() else {
        return json_response(
            StatusCode::OK,
            envelope(false, Some("User does not exist."), 400),
        );
    };
    // A partial merge: only the fields sent change. The simulator models the password.
    if let Some(password) = field(user_data, "password") {
        let Some(password) = password.as_str() else {
            return bad_request("userData.password must be a string.");
        };
        if let Some(violation) = shared.config.policy.violation(&mailbox.user_name, password) {
            return json_response(StatusCode::OK, envelope(false, Some(&violation), 400));
        }
        let mailbox = inner.mailboxes.get_mut(&key).expect("looked up above");
        mailbox.password = password.to_owned();
        mailbox.history.push(password.to_owned());
    }
    json_response(StatusCode::OK, envelope(true, None, 200))
}
