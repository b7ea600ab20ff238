//! A fake MyDirectory on 127.0.0.1 for the connector's tests, at least as strict as
//! the real one (content types, body shapes, tokens that expire):
//!
//! - `POST /api/login` `{"username", "password"}` → `{"access_token", "token_type",
//!   "expires_in"}`; 401 for wrong credentials.
//! - `GET /api/accounts?page=N` (N from 1) → `[{"id", "name"}]`, 50 a page, by id.
//! - `PUT /api/accounts/{id}/password` `{"password"}` → 204; 404 for an unknown
//!   account; 422 for a password shorter than 12 characters or without an upper-case
//!   letter, a lower-case letter and a digit.
//! - Every call but login wants `Authorization: Bearer` with a token that has not
//!   expired: 401 otherwise.
//!
//! Rewrite it for your own directory, from its documentation; it is shared by the
//! connector's tests and by rekey's own test of this template.

// Each test crate that includes this module uses a part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rekey_api::testing::{FakeVendor, Request, Response, Value, json};

/// The account rekey logs in as, and its password.
pub const ADMIN: &str = "admin";
/// The admin account's password.
pub const ADMIN_PASSWORD: &str = "Admin-Passw0rd-1";
/// Accounts a page.
const PAGE: usize = 50;

/// A running fake directory.
pub struct FakeDirectory {
    /// The server, and every request it received.
    pub vendor: FakeVendor,
    state: Arc<Mutex<State>>,
}

struct State {
    /// Each account's password (the admin's too).
    passwords: BTreeMap<String, String>,
    /// Tokens given out, and when each expires.
    tokens: Vec<(String, Instant)>,
    lifetime: Duration,
    /// Requests refused for an unknown or expired token.
    refused: usize,
}

impl FakeDirectory {
    /// A directory with the admin and `accounts` more (`u001`, `u002`, ...), whose
    /// tokens live `lifetime` (whole seconds).
    pub async fn start(accounts: usize, lifetime: Duration) -> FakeDirectory {
        let mut passwords = BTreeMap::from([(ADMIN.to_owned(), ADMIN_PASSWORD.to_owned())]);
        for n in 1..=accounts {
            passwords.insert(format!("u{n:03}"), format!("Initial-Passw0rd-{n}"));
        }
        let state =
            Arc::new(Mutex::new(State { passwords, tokens: Vec::new(), lifetime, refused: 0 }));
        let (for_login, for_list, for_set) = (state.clone(), state.clone(), state.clone());
        let vendor = FakeVendor::builder()
            .route("POST", "/api/login", move |r| login(&mut lock(&for_login), r))
            .route("GET", "/api/accounts", move |r| accounts_page(&mut lock(&for_list), r))
            .route("PUT", "/api/accounts/{id}/password", move |r| {
                set_password(&mut lock(&for_set), r)
            })
            .start()
            .await
            .expect("start the fake directory");
        FakeDirectory { vendor, state }
    }

    /// The directory's root: the target's `url`.
    pub fn url(&self) -> String {
        self.vendor.url()
    }

    /// An account's password.
    pub fn password(&self, id: &str) -> Option<String> {
        lock(&self.state).passwords.get(id).cloned()
    }

    /// How many logins succeeded.
    pub fn logins(&self) -> usize {
        lock(&self.state).tokens.len()
    }

    /// How many requests came with an unknown or expired token.
    pub fn refused(&self) -> usize {
        lock(&self.state).refused
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn problem(status: u16, message: &str) -> Response {
    Response::json(status, json!({ "message": message }))
}

/// The request's JSON body, if it is declared and is JSON.
fn json_body(request: &Request) -> Option<Value> {
    let declared =
        request.header("content-type").is_some_and(|t| t.starts_with("application/json"));
    declared.then(|| request.json()).flatten()
}

/// Whether the request carries a live token; counts it refused if not.
fn authorized(state: &mut State, request: &Request) -> bool {
    let now = Instant::now();
    let live = request
        .bearer()
        .is_some_and(|token| state.tokens.iter().any(|(t, end)| t == token && now < *end));
    if !live {
        state.refused += 1;
    }
    live
}

fn login(state: &mut State, request: &Request) -> Response {
    let Some(body) = json_body(request) else {
        return problem(400, "the body must be JSON: {\"username\", \"password\"}");
    };
    let (Some(user), Some(password)) = (body["username"].as_str(), body["password"].as_str())
    else {
        return problem(400, "username and password are required");
    };
    if user != ADMIN || state.passwords.get(user).map(String::as_str) != Some(password) {
        return problem(401, "invalid username or password");
    }
    let token = format!("token-{}", state.tokens.len() + 1);
    state.tokens.push((token.clone(), Instant::now() + state.lifetime));
    Response::json(
        200,
        json!({ "access_token": token, "token_type": "Bearer", "expires_in": state.lifetime.as_secs() }),
    )
}

fn accounts_page(state: &mut State, request: &Request) -> Response {
    if !authorized(state, request) {
        return problem(401, "log in first");
    }
    let Some(page) = request.query("page").and_then(|p| p.parse::<usize>().ok()) else {
        return problem(400, "page must be a number from 1");
    };
    if page == 0 {
        return problem(400, "page must be a number from 1");
    }
    let accounts: Vec<Value> = state
        .passwords
        .keys()
        .skip((page - 1) * PAGE)
        .take(PAGE)
        .map(|id| json!({ "id": id, "name": format!("Account {id}") }))
        .collect();
    Response::json(200, accounts)
}

fn set_password(state: &mut State, request: &Request) -> Response {
    if !authorized(state, request) {
        return problem(401, "log in first");
    }
    let Some(password) = json_body(request).and_then(|b| b["password"].as_str().map(str::to_owned))
    else {
        return problem(400, "the body must be JSON: {\"password\"}");
    };
    let id = request.param("id").unwrap_or_default();
    if !state.passwords.contains_key(id) {
        return problem(404, "no such account");
    }
    let strong = password.chars().count() >= 12
        && password.chars().any(|c| c.is_ascii_uppercase())
        && password.chars().any(|c| c.is_ascii_lowercase())
        && password.chars().any(|c| c.is_ascii_digit());
    if !strong {
        return problem(
            422,
            "the password needs 12 characters or more, with an upper-case letter, a lower-case letter and a digit",
        );
    }
    state.passwords.insert(id.to_owned(), password);
    Response::status(204)
}
