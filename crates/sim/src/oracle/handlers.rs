//! The simulator's HTTP handlers: authentication, content negotiation, and the
//! endpoints of vendor-apis.md §3.3.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use serde_json::{Map, Value, json};

use super::{
    Account, DISABLED_MESSAGE, IDENTITY_ERROR, INVALID_INPUT, Inner, ManualResetReply,
    Notification, PasswordChange, ResetCall, Shared, key,
};
use crate::common::{has_content_type, json_response, lock};

fn text(status: StatusCode, body: &'static str) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn invalid() -> Response {
    text(StatusCode::BAD_REQUEST, INVALID_INPUT)
}

/// Whether the `Accept` header (absent means anything) allows `media`.
fn accepts(headers: &HeaderMap, media: &str) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let family = media.split('/').next().unwrap_or_default();
    accept.split(',').any(|range| {
        let range = range.split(';').next().unwrap_or_default().trim();
        range == "*/*" || range.eq_ignore_ascii_case(media) || range == format!("{family}/*")
    })
}

/// A user's e-mail address.
fn email(login_id: &str) -> String {
    format!("{}@example.com", login_id.to_lowercase())
}

/// The `User` object of an account: never its password.
fn user_json(account: &Account, admin: &str) -> Value {
    let n = account.number;
    json!({
        "id": account.id,
        "loginId": account.login_id,
        "emailAddress": email(&account.login_id),
        "firstName": if account.admin { "Cloud".to_owned() } else { "User".to_owned() },
        "lastName": if account.admin { "Administrator".to_owned() } else { format!("{n:04}") },
        "middleName": "",
        "employeeNumber": format!("E{n:05}"),
        "admin": account.admin,
        "disabled": account.disabled,
        "locked": account.locked,
        "loginAttemptsCtr": "0",
        "organization": {
            "associations": [],
            "bidderCompany": false,
            "isDeletable": false,
            "inheritedPolicy": false,
            "displayName": "sfo",
            "id": "4",
            "name": "sfo",
        },
        "roles": [{
            "displayName": "Primavera Unifier Production",
            "id": "77",
            "name": "PrimaveraUnifierProduction",
        }],
        "status": if account.disabled { "Inactive" } else { "Active" },
        "statusInfo": "",
        "statusInfoOK": true,
        "userType": "EMP",
        "createdBy": admin,
        "createdDate": "2018-01-17T15:41:26",
        "updatedDate": "2018-02-15T16:16:08",
        "pwdExpireDate": "2030-11-13T15:46:30",
        "pwdExpired": false,
        "pwdCantChange": false,
        "pwdWarned": false,
        "changePwdAtNextLogin": false,
    })
}

impl Shared {
    /// Checks Basic credentials and Primavera Administration rights: `401` with an
    /// empty body, or `403`.
    fn authenticate(&self, inner: &Inner, headers: &HeaderMap) -> Result<(), Response> {
        let credentials = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Basic"))
            .and_then(|(_, encoded)| {
                base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .ok()
            })
            .and_then(|decoded| String::from_utf8(decoded).ok());
        let account = credentials.as_deref().and_then(|c| {
            let (login_id, password) = c.split_once(':')?;
            inner
                .accounts
                .get(&key(login_id))
                .filter(|a| a.password == password && !a.disabled && !a.locked)
        });
        match account {
            None => {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = StatusCode::UNAUTHORIZED;
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"Primavera Administration\""),
                );
                Err(response)
            }
            Some(account) if !account.admin => Err(text(StatusCode::FORBIDDEN, "Forbidden")),
            Some(_) => Ok(()),
        }
    }
}

/// The checks every endpoint taking JSON makes after authentication: a JSON body
/// (`415`) and a JSON reply the client accepts (`406`).
fn json_exchange(headers: &HeaderMap) -> Result<(), Response> {
    if !has_content_type(headers, "application/json") {
        return Err(text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type",
        ));
    }
    if !accepts(headers, "application/json") {
        return Err(text(StatusCode::NOT_ACCEPTABLE, "Not Acceptable"));
    }
    Ok(())
}

impl Shared {
    /// A random password the policy accepts, as the vendor's auto-reset makes.
    fn random_password(&self, rng: &mut StdRng) -> String {
        const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
        const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
        const DIGIT: &[u8] = b"23456789";
        let all: Vec<u8> = [UPPER, LOWER, DIGIT].concat();
        let length = self.config.policy.min_length.max(12);
        let mut bytes: Vec<u8> = [UPPER, LOWER, DIGIT]
            .iter()
            .filter_map(|class| class.choose(rng).copied())
            .collect();
        while bytes.len() < length {
            bytes.extend(all.choose(rng).copied());
        }
        bytes.shuffle(rng);
        bytes.into_iter().map(char::from).collect()
    }

    /// Sets a password the vendor made, e-mails it, and returns its message.
    fn auto_reset_account(&self, inner: &mut Inner, key: &str) -> &'static str {
        let password = self.random_password(&mut inner.rng);
        let Some(account) = inner.accounts.get_mut(key) else {
            return "";
        };
        if account.disabled {
            return DISABLED_MESSAGE;
        }
        account.password = password.clone();
        account.history.push(PasswordChange {
            password,
            vendor_made: true,
            emailed: true,
        });
        let notification = Notification {
            login_id: account.login_id.clone(),
            email: email(&account.login_id),
            vendor_made: true,
        };
        inner.notifications.push(notification);
        ""
    }
}

pub(super) async fn list_users(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let inner = lock(&shared.inner);
    if let Err(response) = shared.authenticate(&inner, &headers) {
        return response;
    }
    if !accepts(&headers, "application/json") {
        return text(StatusCode::NOT_ACCEPTABLE, "Not Acceptable");
    }
    let users: Vec<Value> = inner
        .accounts
        .values()
        .map(|a| user_json(a, &shared.config.admin))
        .collect();
    json_response(StatusCode::OK, Value::Array(users))
}

/// One entry of a manual-reset-pwd body, checked: the account's key and the new
/// password. `None` when the entry makes the whole batch invalid.
fn manual_entry(
    shared: &Shared,
    inner: &Inner,
    entry: &Value,
    seen: &mut HashSet<String>,
) -> Option<(String, String)> {
    let entry: &Map<String, Value> = entry.as_object()?;
    let login_id = entry.get("loginId")?.as_str()?;
    let key = key(login_id);
    if !inner.accounts.contains_key(&key) || !seen.insert(key.clone()) {
        return None;
    }
    let password: String = match entry.get("password")? {
        Value::Array(chars) => {
            let mut password = String::with_capacity(chars.len());
            for one in chars {
                let one = one.as_str()?;
                let mut iter = one.chars();
                password.push(iter.next()?);
                if iter.next().is_some() {
                    return None;
                }
            }
            password
        }
        Value::String(plain) if shared.config.accept_plain_password => plain.clone(),
        _ => return None,
    };
    let printable = password.chars().all(|c| c == ' ' || c.is_ascii_graphic());
    (!password.is_empty() && printable).then_some((key, password))
}

pub(super) async fn manual_reset(
    State(shared): State<Arc<Shared>>,
    Path(notify): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = lock(&shared.inner);
    if let Err(response) = shared.authenticate(&inner, &headers) {
        return response;
    }
    // A boolean path parameter that does not convert: JAX-RS answers 404.
    let notify = match notify.as_str() {
        "true" => true,
        "false" => false,
        _ => return text(StatusCode::NOT_FOUND, "Not Found"),
    };
    if let Err(response) = json_exchange(&headers) {
        return response;
    }
    let entries = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    let record = |inner: &mut Inner, status: StatusCode| {
        inner.calls.push(ResetCall {
            endpoint: "manual-reset-pwd",
            users: entries.len(),
            status: status.as_u16(),
        });
    };
    let mut seen = HashSet::new();
    let changes: Option<Vec<(String, String)>> = entries
        .iter()
        .map(|entry| manual_entry(&shared, &inner, entry, &mut seen))
        .collect();
    let changes = match changes {
        Some(changes) if !changes.is_empty() => changes,
        _ => {
            record(&mut inner, StatusCode::BAD_REQUEST);
            return invalid();
        }
    };
    if changes
        .iter()
        .any(|(_, password)| !shared.config.policy.accepts(password))
    {
        record(&mut inner, StatusCode::INTERNAL_SERVER_ERROR);
        return text(StatusCode::INTERNAL_SERVER_ERROR, IDENTITY_ERROR);
    }
    record(&mut inner, StatusCode::OK);
    let mut reply = Vec::with_capacity(changes.len());
    for (key, password) in changes {
        let Some(account) = inner.accounts.get_mut(&key) else {
            continue;
        };
        account.password = password.clone();
        account.history.push(PasswordChange {
            password,
            vendor_made: false,
            emailed: notify,
        });
        let account = account.clone();
        if notify {
            inner.notifications.push(Notification {
                login_id: account.login_id.clone(),
                email: email(&account.login_id),
                vendor_made: false,
            });
        }
        reply.push(user_json(&account, &shared.config.admin));
    }
    match shared.config.manual_reset_reply {
        ManualResetReply::Object => json_response(StatusCode::OK, reply.swap_remove(0)),
        ManualResetReply::Array => json_response(StatusCode::OK, Value::Array(reply)),
    }
}

pub(super) async fn auto_reset(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = lock(&shared.inner);
    if let Err(response) = shared
        .authenticate(&inner, &headers)
        .and_then(|()| json_exchange(&headers))
    {
        return response;
    }
    let entries = serde_json::from_slice::<Vec<Value>>(&body).unwrap_or_default();
    let ids: Option<Vec<String>> = entries.iter().map(|id| id.as_str().map(key)).collect();
    let mut seen = HashSet::new();
    let valid = ids.filter(|ids| {
        !ids.is_empty()
            && ids
                .iter()
                .all(|id| inner.accounts.contains_key(id) && seen.insert(id.clone()))
    });
    inner.calls.push(ResetCall {
        endpoint: "auto-reset-pwd",
        users: entries.len(),
        status: if valid.is_some() { 200 } else { 400 },
    });
    let Some(ids) = valid else {
        return invalid();
    };
    let mut reply = Map::new();
    for id in ids {
        let message = shared.auto_reset_account(&mut inner, &id);
        let login_id = inner.accounts.get(&id).map(|a| a.login_id.clone());
        reply.insert(login_id.unwrap_or(id), Value::from(message));
    }
    json_response(StatusCode::OK, Value::Object(reply))
}

pub(super) async fn auto_reset_one(
    State(shared): State<Arc<Shared>>,
    Path(login_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut inner = lock(&shared.inner);
    if let Err(response) = shared.authenticate(&inner, &headers) {
        return response;
    }
    if !accepts(&headers, "text/plain") {
        return text(StatusCode::NOT_ACCEPTABLE, "Not Acceptable");
    }
    let key = key(&login_id);
    if !inner.accounts.contains_key(&key) {
        return invalid();
    }
    match shared.auto_reset_account(&mut inner, &key) {
        "" => text(StatusCode::OK, "Success"),
        _ => invalid(),
    }
}

pub(super) async fn change_lock(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = lock(&shared.inner);
    if let Err(response) = shared
        .authenticate(&inner, &headers)
        .and_then(|()| json_exchange(&headers))
    {
        return response;
    }
    let keys: Option<Vec<String>> = serde_json::from_slice::<Vec<Value>>(&body)
        .ok()
        .filter(|users| !users.is_empty())
        .and_then(|users| {
            users
                .iter()
                .map(|u| u.get("loginId")?.as_str().map(key))
                .collect()
        })
        .filter(|keys: &Vec<String>| keys.iter().all(|k| inner.accounts.contains_key(k)));
    let Some(keys) = keys else {
        return invalid();
    };
    let mut reply = Vec::with_capacity(keys.len());
    for key in keys {
        if let Some(account) = inner.accounts.get_mut(&key) {
            account.locked = false;
            reply.push(user_json(account, &shared.config.admin));
        }
    }
    json_response(StatusCode::OK, Value::Array(reply))
}
