//! Acme Directory simulator: the fictional in-house system that `connectors/example`
//! (rekey's example connector) talks to. It stands in for "a small JSON API your
//! platform team runs", and is as strict as a careful in-house API would be.
//!
//! Every call carries the API key in `X-Api-Key`; an unknown key gets 401, a key
//! without the scope a call needs gets 403. Errors are `{"error", "message"}`.
//!
//! - `GET /directory/v1/whoami` → `{"id", "name", "scopes"}`: the key's own
//!   service account. Any valid key.
//! - `GET /directory/v1/users?limit=&cursor=` → `{"users": [{"id", "name",
//!   "disabled"}], "next": cursor | null}`: keyset paging in id order, `limit` 1 to
//!   200 (default 50), `cursor` opaque. Scope `users:read`.
//! - `POST /directory/v1/passwords:generate` and `passcodes:generate` with
//!   `{"count": N}` (1 to 100) → `{"passwords": [...]}` / `{"passcodes": [...]}`:
//!   values made by the directory, set on nobody. Scope `passwords:write`.
//! - `POST /directory/v1/passwords:reset` with `{"items": [{"id", "password"} |
//!   {"id", "generate": true}]}`, and `passcodes:reset` with `passcode` instead of
//!   `password` (1 to 100 items) → `{"results": [{"id", "status", "message"}]}`, one
//!   per item in order. `status` is `ok`, `not_found`, `policy`, `protected` (a
//!   service account) or `error` (the store did not confirm the write: it may have
//!   happened). A generated value is set and never returned. The whole request is
//!   validated before any item is applied: a malformed one (unknown field, empty
//!   value, a passcode that is not digits, a repeated id, too many items) gets 400
//!   and changes nothing. Scope `passwords:write`.
//! - More than `rate_limit` requests in one second from one key → 429 with
//!   `Retry-After: 1`. A POST without `Content-Type: application/json` → 415; an
//!   `Accept` that excludes JSON → 406.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Map, Value, json};

pub use self::rules::Credential;
use self::rules::{
    accepts_json, decode_cursor, encode_cursor, make_value, parse_item, policy_violation,
};
use crate::common::{Behaviour, Common, SimServer, has_content_type, json_response, lock};

mod rules;
#[cfg(test)]
mod tests;

/// The most items one reset takes, and the most values one generate call makes.
pub const MAX_ITEMS: usize = 100;
/// The largest `limit` of a users page.
pub const MAX_PAGE: usize = 200;
/// The `limit` of a users page when none is given.
pub const DEFAULT_PAGE: usize = 50;
/// The scope that lists users.
pub const SCOPE_READ: &str = "users:read";
/// The scope that generates and sets credentials.
pub const SCOPE_WRITE: &str = "passwords:write";

/// An API key the directory accepts, and what it may do.
#[derive(Debug, Clone)]
pub struct ApiKey {
    /// The key itself.
    pub key: String,
    /// The service account it belongs to (an account in the directory, which the
    /// API refuses to change: status `protected`).
    pub account: String,
    /// Its scopes.
    pub scopes: Vec<String>,
}

/// How to set up the simulated directory.
#[derive(Debug, Clone)]
pub struct InhouseConfig {
    /// Ordinary users to create: `u00001` and on, with passwords
    /// `Initial-Passw0rd-N` and passcodes `1357N` padded to 8 digits.
    pub users: usize,
    /// Every `disabled_every`-th user is disabled (0: none).
    pub disabled_every: usize,
    /// The keys accepted. By default one key for `svc-rekey` with both scopes.
    pub keys: Vec<ApiKey>,
    /// Requests a second one key may send; more get 429 (`None`: no limit).
    pub rate_limit: Option<u32>,
    /// Users whose writes answer `error`, although the simulator applies them: what
    /// a store that times out after writing looks like.
    pub failing_users: Vec<String>,
    /// Latency and faults.
    pub behaviour: Behaviour,
    /// Port to listen on (0: any free port).
    pub port: u16,
}

/// The default key's value.
pub const DEFAULT_KEY: &str = "acme-test-key-0123456789";
/// The default key's service account.
pub const DEFAULT_ACCOUNT: &str = "svc-rekey";

impl Default for InhouseConfig {
    fn default() -> Self {
        InhouseConfig {
            users: 20,
            disabled_every: 10,
            keys: vec![ApiKey {
                key: DEFAULT_KEY.into(),
                account: DEFAULT_ACCOUNT.into(),
                scopes: vec![SCOPE_READ.into(), SCOPE_WRITE.into()],
            }],
            rate_limit: None,
            failing_users: Vec::new(),
            behaviour: Behaviour::default(),
            port: 0,
        }
    }
}

/// One credential change made through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Which credential.
    pub credential: Credential,
    /// The value set.
    pub value: String,
    /// Whether the directory made the value itself (`generate: true`).
    pub generated_in_place: bool,
}

#[derive(Debug, Clone)]
struct Account {
    name: String,
    disabled: bool,
    protected: bool,
    password: String,
    passcode: String,
    history: Vec<Change>,
}

#[derive(Debug)]
struct Inner {
    accounts: BTreeMap<String, Account>,
    handed_out: Vec<(Credential, String)>,
    reset_batches: Vec<usize>,
    windows: HashMap<String, (u64, u32)>,
    rng: StdRng,
}

#[derive(Debug)]
struct Shared {
    common: Arc<Common>,
    config: InhouseConfig,
    inner: Mutex<Inner>,
}

/// A running Acme Directory simulator.
#[derive(Debug)]
pub struct InhouseSim {
    server: SimServer,
    shared: Arc<Shared>,
}

impl InhouseSim {
    /// Starts the simulator on 127.0.0.1. Must be called inside a tokio runtime.
    pub async fn start(config: InhouseConfig) -> std::io::Result<Self> {
        let account = |name: String, disabled, password: String, passcode: String| Account {
            name,
            disabled,
            protected: false,
            password,
            passcode,
            history: Vec::new(),
        };
        let mut accounts: BTreeMap<String, Account> = (1..=config.users)
            .map(|i| {
                let disabled = config.disabled_every > 0 && i % config.disabled_every == 0;
                let password = format!("Initial-Passw0rd-{i}");
                let passcode = format!("{:08}", 13_570_000 + i % 10_000);
                (
                    user_id(i),
                    account(format!("User {i}"), disabled, password, passcode),
                )
            })
            .collect();
        for key in &config.keys {
            let name = format!("Service account {}", key.account);
            let service = account(name, false, "Service-Passw0rd-1".into(), "97531864".into());
            accounts.insert(
                key.account.clone(),
                Account {
                    protected: true,
                    ..service
                },
            );
        }
        let common = Common::new(config.behaviour.clone());
        let shared = Arc::new(Shared {
            common: Arc::clone(&common),
            inner: Mutex::new(Inner {
                accounts,
                handed_out: Vec::new(),
                reset_batches: Vec::new(),
                windows: HashMap::new(),
                rng: StdRng::seed_from_u64(config.behaviour.seed ^ 0xac3e),
            }),
            config,
        });
        let router = Router::new()
            .route("/directory/v1/whoami", get(whoami))
            .route("/directory/v1/users", get(users))
            .route(
                "/directory/v1/passwords:generate",
                post(|s, h, b| generate(s, h, b, Credential::Password)),
            )
            .route(
                "/directory/v1/passcodes:generate",
                post(|s, h, b| generate(s, h, b, Credential::Passcode)),
            )
            .route(
                "/directory/v1/passwords:reset",
                post(|s, h, b| reset(s, h, b, Credential::Password)),
            )
            .route(
                "/directory/v1/passcodes:reset",
                post(|s, h, b| reset(s, h, b, Credential::Passcode)),
            )
            .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
            .with_state(Arc::clone(&shared));
        let server = SimServer::start(shared.config.port, router, common).await?;
        Ok(InhouseSim { server, shared })
    }

    /// The server's root URL (what the connector's `url` takes).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &InhouseConfig {
        &self.shared.config
    }

    /// Latency, faults, request log and clock.
    pub fn common(&self) -> &Common {
        &self.shared.common
    }

    /// Every account id, service accounts included, in id order.
    pub fn users(&self) -> Vec<String> {
        lock(&self.shared.inner).accounts.keys().cloned().collect()
    }

    /// An account's current password.
    pub fn password(&self, id: &str) -> Option<String> {
        lock(&self.shared.inner)
            .accounts
            .get(id)
            .map(|a| a.password.clone())
    }

    /// An account's current passcode.
    pub fn passcode(&self, id: &str) -> Option<String> {
        lock(&self.shared.inner)
            .accounts
            .get(id)
            .map(|a| a.passcode.clone())
    }

    /// Every change made to an account through the API, in order.
    pub fn history(&self, id: &str) -> Vec<Change> {
        lock(&self.shared.inner)
            .accounts
            .get(id)
            .map(|a| a.history.clone())
            .unwrap_or_default()
    }

    /// Every value `:generate` handed out for `credential`, in order.
    pub fn handed_out(&self, credential: Credential) -> Vec<String> {
        lock(&self.shared.inner)
            .handed_out
            .iter()
            .filter(|(c, _)| *c == credential)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The item count of every reset request that passed validation, in order.
    pub fn reset_batches(&self) -> Vec<usize> {
        lock(&self.shared.inner).reset_batches.clone()
    }
}

/// The id of ordinary user `n`.
pub fn user_id(n: usize) -> String {
    format!("u{n:05}")
}

/// An error reply: `{"error": code, "message": message}`.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, json!({ "error": code, "message": message }))
}

fn bad_request(message: impl AsRef<str>) -> Response {
    error(StatusCode::BAD_REQUEST, "bad_request", message.as_ref())
}

impl Shared {
    /// Checks the key, the rate and the scope; returns the key.
    fn authorize(&self, headers: &HeaderMap, scope: Option<&str>) -> Result<ApiKey, Response> {
        if !accepts_json(headers) {
            return Err(error(
                StatusCode::NOT_ACCEPTABLE,
                "not_acceptable",
                "this API only answers application/json",
            ));
        }
        let given = headers.get("X-Api-Key").and_then(|v| v.to_str().ok());
        let Some(key) = given.and_then(|g| self.config.keys.iter().find(|k| k.key == g)) else {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "missing or unknown API key (send it in the X-Api-Key header)",
            ));
        };
        if let Some(limit) = self.config.rate_limit {
            let second = self
                .common
                .clock
                .now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let mut inner = lock(&self.inner);
            let window = inner.windows.entry(key.key.clone()).or_insert((second, 0));
            if window.0 != second {
                *window = (second, 0);
            }
            window.1 += 1;
            if window.1 > limit {
                let mut response = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    &format!("more than {limit} requests a second from this key"),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return Err(response);
            }
        }
        if let Some(scope) = scope
            && !key.scopes.iter().any(|s| s == scope)
        {
            return Err(error(
                StatusCode::FORBIDDEN,
                "forbidden",
                &format!("this API key lacks the {scope} scope"),
            ));
        }
        Ok(key.clone())
    }

    /// The JSON object of a POST body, or the answer to give.
    fn json_body(&self, headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, Response> {
        if !has_content_type(headers, "application/json") {
            return Err(error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        match serde_json::from_slice(body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(bad_request("the body must be a JSON object")),
        }
    }

    fn users_page(&self, headers: &HeaderMap, query: Option<&str>) -> Result<Response, Response> {
        self.authorize(headers, Some(SCOPE_READ))?;
        let mut limit = DEFAULT_PAGE;
        let mut after = None;
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match name.as_ref() {
                "limit" => {
                    limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE).contains(n))
                        .ok_or_else(|| {
                            bad_request(format!("limit must be a number from 1 to {MAX_PAGE}"))
                        })?;
                }
                "cursor" if value.is_empty() => {}
                "cursor" => {
                    after = Some(decode_cursor(&value).ok_or_else(|| {
                        error(StatusCode::BAD_REQUEST, "invalid_cursor", "unknown cursor")
                    })?);
                }
                other => return Err(bad_request(format!("unknown query parameter `{other}`"))),
            }
        }
        let inner = lock(&self.inner);
        // Keyset paging: the page after the last id seen, stable while users come
        // and go.
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut rest = inner.accounts.range((lower, Bound::Unbounded));
        let page: Vec<(&String, &Account)> = rest.by_ref().take(limit).collect();
        let next = match (rest.next(), page.last()) {
            (Some(_), Some((last, _))) => Value::String(encode_cursor(last)),
            _ => Value::Null,
        };
        let users: Vec<Value> = page
            .iter()
            .map(|(id, a)| json!({ "id": id, "name": a.name, "disabled": a.disabled }))
            .collect();
        Ok(json_response(
            StatusCode::OK,
            json!({ "users": users, "next": next }),
        ))
    }

    fn generate(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        credential: Credential,
    ) -> Result<Response, Response> {
        self.authorize(headers, Some(SCOPE_WRITE))?;
        let body = self.json_body(headers, body)?;
        if let Some(other) = body.keys().find(|k| *k != "count") {
            return Err(bad_request(format!("unknown field `{other}`")));
        }
        let count = body
            .get("count")
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=MAX_ITEMS).contains(n))
            .ok_or_else(|| bad_request(format!("count must be a number from 1 to {MAX_ITEMS}")))?;
        let mut inner = lock(&self.inner);
        let values: Vec<String> = (0..count)
            .map(|_| make_value(&mut inner.rng, credential))
            .collect();
        inner
            .handed_out
            .extend(values.iter().map(|v| (credential, v.clone())));
        let field = format!("{}s", credential.field());
        Ok(json_response(StatusCode::OK, json!({ field: values })))
    }

    fn reset(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        credential: Credential,
    ) -> Result<Response, Response> {
        self.authorize(headers, Some(SCOPE_WRITE))?;
        let body = self.json_body(headers, body)?;
        if let Some(other) = body.keys().find(|k| *k != "items") {
            return Err(bad_request(format!("unknown field `{other}`")));
        }
        let Some(Value::Array(items)) = body.get("items") else {
            return Err(bad_request("items must be an array"));
        };
        if items.is_empty() || items.len() > MAX_ITEMS {
            return Err(bad_request(format!(
                "items must hold 1 to {MAX_ITEMS} entries, not {}",
                items.len()
            )));
        }
        // Validate everything before applying anything.
        let mut wanted = Vec::with_capacity(items.len());
        let mut seen = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            let (id, value) = parse_item(i, item, credential).map_err(bad_request)?;
            if !seen.insert(id.clone()) {
                return Err(bad_request(format!("items[{i}]: id `{id}` appears twice")));
            }
            wanted.push((id, value));
        }
        let mut inner = lock(&self.inner);
        inner.reset_batches.push(wanted.len());
        let results: Vec<Value> = wanted
            .into_iter()
            .map(|(id, value)| {
                let (status, message) = self.apply(&mut inner, &id, value, credential);
                json!({ "id": id, "status": status, "message": message })
            })
            .collect();
        Ok(json_response(StatusCode::OK, json!({ "results": results })))
    }

    /// Applies one validated item: its status and message.
    fn apply(
        &self,
        inner: &mut Inner,
        id: &str,
        value: Option<String>,
        credential: Credential,
    ) -> (&'static str, Option<String>) {
        let what = credential.field();
        let generated_in_place = value.is_none();
        let value = match value {
            Some(value) => value,
            None => make_value(&mut inner.rng, credential),
        };
        let Some(account) = inner.accounts.get_mut(id) else {
            return ("not_found", Some(format!("no user with id {id}")));
        };
        if account.protected {
            return (
                "protected",
                Some(format!(
                    "{id} is a service account; its {what} is managed by the directory team"
                )),
            );
        }
        if let Some(why) = policy_violation(id, &value, credential) {
            return ("policy", Some(why));
        }
        match credential {
            Credential::Password => account.password.clone_from(&value),
            Credential::Passcode => account.passcode.clone_from(&value),
        }
        account.history.push(Change {
            credential,
            value,
            generated_in_place,
        });
        if self.config.failing_users.iter().any(|u| u == id) {
            return (
                "error",
                Some(
                    "the credential store did not confirm the write; it may have been applied"
                        .into(),
                ),
            );
        }
        let message = generated_in_place.then(|| {
            format!("a new {what} was generated and set; it was sent to the user's registered e-mail address")
        });
        ("ok", message)
    }
}

async fn whoami(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match shared.authorize(&headers, None) {
        Ok(key) => json_response(
            StatusCode::OK,
            json!({
                "id": key.account,
                "name": format!("Service account {}", key.account),
                "scopes": key.scopes,
            }),
        ),
        Err(response) => response,
    }
}

async fn users(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    shared
        .users_page(&headers, query.as_deref())
        .unwrap_or_else(|r| r)
}

async fn generate(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
    credential: Credential,
) -> Response {
    shared
        .generate(&headers, &body, credential)
        .unwrap_or_else(|r| r)
}

async fn reset(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
    credential: Credential,
) -> Response {
    shared
        .reset(&headers, &body, credential)
        .unwrap_or_else(|r| r)
}
