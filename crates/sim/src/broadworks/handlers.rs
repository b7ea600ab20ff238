//! The simulated Odin API's endpoints.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::rules::{generate_passcode, generate_password};
use super::{Credential, Inner, Shared, User};
use crate::common::{bearer, has_content_type, json_response, lock};

/// The most values one generator call hands out.
const MAX_LIMIT: usize = 100;

/// Odin's error body.
pub(super) fn error(status: StatusCode, details: impl Into<String>) -> Response {
    json_response(
        status,
        json!({
            "details": details.into(),
            "status": status.as_u16(),
            "error": status.canonical_reason().unwrap_or("Error"),
        }),
    )
}

pub(super) fn bad_request(details: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, details)
}

/// Checks the request's Bearer token: known, unexpired, not marked stale.
pub(super) fn authorize(
    shared: &Shared,
    inner: &Inner,
    headers: &HeaderMap,
) -> Result<(), Response> {
    let token = bearer(headers).and_then(|t| inner.tokens.get(t));
    match token {
        Some(t) if t.expires > shared.common.clock.now() && !t.stale => Ok(()),
        Some(t) if !t.stale => Err(error(
            StatusCode::UNAUTHORIZED,
            "The token has expired; log in again",
        )),
        _ => Err(error(StatusCode::UNAUTHORIZED, "Invalid or missing token")),
    }
}

/// The query parameters (the first of repeated ones).
pub(super) fn query(raw: Option<String>) -> HashMap<String, String> {
    let mut params = HashMap::new();
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        params
            .entry(key.into_owned())
            .or_insert_with(|| value.into_owned());
    }
    params
}

pub(super) fn required<'a>(
    params: &'a HashMap<String, String>,
    name: &str,
) -> Result<&'a str, Response> {
    match params.get(name).map(String::as_str) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(bad_request(format!(
            "[Error 4001] Missing required parameter: {name}"
        ))),
    }
}

/// Checks `serviceProviderId` and `groupId`: given, and the simulated ones.
pub(super) fn check_group(
    shared: &Shared,
    params: &HashMap<String, String>,
) -> Result<(), Response> {
    let service_provider = required(params, "serviceProviderId")?;
    let group = required(params, "groupId")?;
    if service_provider != shared.config.service_provider_id {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("[Error 4010] Service Provider not found: {service_provider}"),
        ));
    }
    if group != shared.config.group_id {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("[Error 4011] Group not found: {group}"),
        ));
    }
    Ok(())
}

/// `limit`, if given: a whole number from 1 to `max`.
pub(super) fn limit(
    params: &HashMap<String, String>,
    max: usize,
) -> Result<Option<usize>, Response> {
    let Some(text) = params.get("limit") else {
        return Ok(None);
    };
    match text.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
        _ => Err(bad_request(format!(
            "[Error 4001] Invalid parameter: limit must be a number from 1 to {max}"
        ))),
    }
}

/// A JSON object body, sent as `application/json`.
fn object_body(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, Response> {
    if !has_content_type(headers, "application/json") {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(bad_request(
            "[Error 4001] The request body must be a JSON object",
        )),
    }
}

/// A string field of a body: absent is `None`, another type is a 400.
fn string_field<'a>(
    object: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, Response> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad_request(format!(
            "[Error 4001] Invalid field: {name} must be a string"
        ))),
    }
}

fn required_field<'a>(object: &'a Map<String, Value>, name: &str) -> Result<&'a str, Response> {
    match string_field(object, name)? {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(bad_request(format!(
            "[Error 4001] Missing required field: {name}"
        ))),
    }
}

fn user_mut<'a>(inner: &'a mut Inner, user_id: &str) -> Result<&'a mut User, Response> {
    inner.users.get_mut(user_id).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            format!("[Error 4008] User not found: {user_id}"),
        )
    })
}

fn no_authentication_service(user_id: &str) -> Response {
    bad_request(format!(
        "[Error 4410] Service not assigned to user {user_id}: Authentication"
    ))
}

/// Runs `handle` and answers with its response either way.
pub(super) fn respond(handle: impl FnOnce() -> Result<Response, Response>) -> Response {
    handle().unwrap_or_else(|response| response)
}

pub(super) async fn login(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(|| {
        let object = object_body(&headers, &body)?;
        let username = required_field(&object, "username")?;
        let password = required_field(&object, "password")?;
        let mut inner = lock(&shared.inner);
        if username != shared.config.username || password != shared.config.password {
            inner.failed_logins += 1;
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "Invalid username or password",
            ));
        }
        inner.logins += 1;
        let token = shared.issue(&mut inner);
        Ok(json_response(StatusCode::OK, json!({ "token": token })))
    })
}

pub(super) async fn refresh(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let mut inner = lock(&shared.inner);
    let now = shared.common.clock.now();
    let valid = bearer(&headers)
        .and_then(|t| inner.tokens.get(t))
        .is_some_and(|t| t.expires > now);
    if !valid {
        inner.failed_refreshes += 1;
        return error(
            StatusCode::UNAUTHORIZED,
            "Invalid or expired token: log in again",
        );
    }
    inner.refreshes += 1;
    let token = shared.issue(&mut inner);
    json_response(StatusCode::OK, json!({ "token": token }))
}

pub(super) async fn get_authentication(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    respond(|| {
        let mut inner = lock(&shared.inner);
        authorize(&shared, &inner, &headers)?;
        let params = query(raw);
        let user_id = required(&params, "userId")?;
        let user = user_mut(&mut inner, user_id)?;
        let sip = user
            .sip
            .as_ref()
            .ok_or_else(|| no_authentication_service(user_id))?;
        Ok(json_response(
            StatusCode::OK,
            json!({ "userId": user.user_id, "userName": sip.user_name }),
        ))
    })
}

pub(super) async fn put_authentication(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(|| {
        let mut inner = lock(&shared.inner);
        authorize(&shared, &inner, &headers)?;
        let object = object_body(&headers, &body)?;
        let user_id = required_field(&object, "userId")?;
        let new_password = required_field(&object, "newPassword")?;
        let user_name = string_field(&object, "userName")?;
        let user = user_mut(&mut inner, user_id)?;
        let Some(sip) = user.sip.as_mut() else {
            return Err(no_authentication_service(user_id));
        };
        if user_name.is_some_and(|n| n != sip.user_name) {
            return Err(bad_request(
                "[Error 4100] userName is not the user's authentication name",
            ));
        }
        if let Some(why) = shared
            .config
            .sip_rules
            .violation(new_password, &sip.user_name)
        {
            return Err(bad_request(format!(
                "[Error 4963] Authentication password does not meet the rules: {why}"
            )));
        }
        sip.password = new_password.to_owned();
        let user_name = sip.user_name.clone();
        user.history
            .entry(Credential::Sip)
            .or_default()
            .push(new_password.to_owned());
        Ok(json_response(
            StatusCode::OK,
            json!({ "userId": user_id, "userName": user_name, "newPassword": "" }),
        ))
    })
}

pub(super) async fn get_passcode(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    respond(|| {
        let mut inner = lock(&shared.inner);
        authorize(&shared, &inner, &headers)?;
        let params = query(raw);
        let user_id = required(&params, "userId")?;
        let user = user_mut(&mut inner, user_id)?;
        Ok(json_response(
            StatusCode::OK,
            json!({
                "isLoginDisabled": false,
                "expirationDays": 30,
                "passcode": "*****",
                "userId": user.user_id,
            }),
        ))
    })
}

pub(super) async fn put_passcode(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(|| {
        let mut inner = lock(&shared.inner);
        authorize(&shared, &inner, &headers)?;
        let object = object_body(&headers, &body)?;
        let user_id = required_field(&object, "userId")?;
        let passcode = required_field(&object, "newPasscode")?;
        let user = user_mut(&mut inner, user_id)?;
        if let Some(why) = shared.config.passcode_rules.violation(passcode) {
            return Err(bad_request(format!(
                "[Error 4962] Passcode does not meet the passcode rules: {why}"
            )));
        }
        user.passcode = passcode.to_owned();
        user.history
            .entry(Credential::Passcode)
            .or_default()
            .push(passcode.to_owned());
        Ok(json_response(StatusCode::OK, json!([])))
    })
}

pub(super) async fn put_web_password(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(|| {
        let mut inner = lock(&shared.inner);
        authorize(&shared, &inner, &headers)?;
        let object = object_body(&headers, &body)?;
        let user_id = required_field(&object, "userId")?;
        // odins-spear 2.3.0 sends `password`; the Odin UI and older versions
        // `newPassword`.
        let password = match string_field(&object, "newPassword")? {
            Some(password) => Some(password),
            None => string_field(&object, "password")?,
        };
        let Some(password) = password.filter(|p| !p.is_empty()) else {
            return Err(bad_request(
                "[Error 4001] Missing required field: newPassword",
            ));
        };
        let user = user_mut(&mut inner, user_id)?;
        if let Some(why) = shared.config.web_rules.violation(password, user.name()) {
            return Err(bad_request(format!(
                "[Error 4961] Password does not meet the password rules: {why}"
            )));
        }
        user.web_password = password.to_owned();
        user.history
            .entry(Credential::Web)
            .or_default()
            .push(password.to_owned());
        Ok(json_response(StatusCode::OK, json!({})))
    })
}

/// `GET /password/generate` and `GET /passcode/generate`.
fn generate_for_group(
    shared: &Shared,
    headers: &HeaderMap,
    raw: Option<String>,
    credential: Credential,
) -> Response {
    respond(|| {
        let mut inner = lock(&shared.inner);
        authorize(shared, &inner, headers)?;
        match credential {
            Credential::Passcode => inner.generate_calls.passcode += 1,
            _ => inner.generate_calls.password += 1,
        }
        let params = query(raw);
        // odins-spear's bulk SIP path asks `password/generate?limit=N` without a
        // group, and the real server answers (vendor-apis.md §5): the system's
        // rules apply then. Passcodes always need the group.
        let system_wide = credential == Credential::Web
            && !params.contains_key("serviceProviderId")
            && !params.contains_key("groupId");
        if !system_wide {
            check_group(shared, &params)?;
        }
        let limit = limit(&params, MAX_LIMIT)?;
        let config = &shared.config;
        let values: Vec<String> = (0..limit.unwrap_or(1))
            .map(|_| match credential {
                Credential::Passcode => generate_passcode(
                    &mut inner.rng,
                    &config.passcode_rules,
                    config.generated_passcode_length,
                ),
                _ => generate_password(
                    &mut inner.rng,
                    &config.web_rules,
                    config.generated_password_length,
                ),
            })
            .collect();
        inner.generated.extend(values.iter().cloned());
        let (one, many) = match credential {
            Credential::Passcode => ("passcode", "passcodes"),
            _ => ("password", "passwords"),
        };
        let mut body = Map::new();
        match limit {
            Some(_) => body.insert(many.into(), json!(values)),
            None => body.insert(one.into(), json!(values[0])),
        };
        Ok(json_response(StatusCode::OK, Value::Object(body)))
    })
}

pub(super) async fn generate_passwords(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    generate_for_group(&shared, &headers, raw, Credential::Web)
}

pub(super) async fn generate_passcodes(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    generate_for_group(&shared, &headers, raw, Credential::Passcode)
}

/// `GET /sip-password/generate`: no parameters; any `limit` is ignored and the
/// reply is always the singular `{"password"}`.
pub(super) async fn generate_sip_password(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Response {
    respond(|| {
        let mut inner = lock(&shared.inner);
        authorize(&shared, &inner, &headers)?;
        inner.generate_calls.sip += 1;
        let config = &shared.config;
        let password = generate_password(
            &mut inner.rng,
            &config.sip_rules,
            config.generated_sip_length,
        );
        inner.generated.insert(password.clone());
        Ok(json_response(
            StatusCode::OK,
            json!({ "password": password }),
        ))
    })
}

pub(super) async fn not_found(uri: Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("No such endpoint: {}", uri.path()),
    )
}

pub(super) async fn method_not_allowed(uri: Uri) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method not allowed on {}", uri.path()),
    )
}
