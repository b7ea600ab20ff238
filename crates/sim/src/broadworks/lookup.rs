//! Reading users and the session: `GET /users` (a group, a service provider, or
//! the whole system by filter), `GET /users/password` and `GET /auth/session`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::handlers::{
    authorize, bad_request, check_group, error, limit, query, required, respond,
};
use super::{Shared, User};
use crate::common::{bearer, json_response, lock};

/// The filters `GET /users` takes (odins-spear's list, from Odin's docs).
const FILTERS: [&str; 7] = [
    "userId",
    "lastName",
    "firstName",
    "dn",
    "emailAddress",
    "extension",
    "macAddress",
];

/// A filter value: `x` equals, `x*` starts with, `*x*` contains. Odin has no
/// "ends with".
enum Pattern {
    Equals(String),
    StartsWith(String),
    Contains(String),
}

impl Pattern {
    fn parse(name: &str, value: &str) -> Result<Pattern, Response> {
        let lead = value.starts_with('*');
        let trail = value.ends_with('*') && value.len() > 1;
        let inner = value.trim_matches('*');
        match (lead, trail) {
            (false, false) => Ok(Pattern::Equals(value.to_owned())),
            (false, true) => Ok(Pattern::StartsWith(inner.to_owned())),
            (true, true) => Ok(Pattern::Contains(inner.to_owned())),
            (true, false) => Err(bad_request(format!(
                "[Error 4001] Invalid filter {name}={value}: endsWith is not supported"
            ))),
        }
    }

    fn matches(&self, value: Option<&str>) -> bool {
        let Some(value) = value else {
            return false;
        };
        let value = value.to_lowercase();
        match self {
            Pattern::Equals(x) => value == x.to_lowercase(),
            Pattern::StartsWith(x) => value.starts_with(&x.to_lowercase()),
            Pattern::Contains(x) => value.contains(&x.to_lowercase()),
        }
    }
}

/// A user's value for a filter.
fn field<'a>(user: &'a User, filter: &str) -> Option<&'a str> {
    match filter {
        "userId" => Some(&user.user_id),
        "lastName" => Some(&user.last_name),
        "firstName" => Some(&user.first_name),
        "extension" => Some(&user.extension),
        // The simulated users have no number, e-mail or device.
        _ => None,
    }
}

/// A user as `GET /users` lists it.
fn user_json(shared: &Shared, user: &User) -> Value {
    json!({
        "userId": user.user_id,
        "lastName": user.last_name,
        "firstName": user.first_name,
        "hiraganaLastName": user.last_name,
        "hiraganaFirstName": user.first_name,
        "phoneNumber": null,
        "extension": user.extension,
        "department": null,
        "emailAddress": null,
        "inTrunkGroup": false,
        "domain": shared.config.domain,
        "serviceProviderId": shared.config.service_provider_id,
        "groupId": shared.config.group_id,
    })
}

/// Which users a `GET /users` asks for: a group (`serviceProviderId` and
/// `groupId`), a service provider, or, with at least one filter, the whole
/// system. A `groupId` alone, or no scope and no filter, is a 400.
fn scope(shared: &Shared, params: &HashMap<String, String>) -> Result<(), Response> {
    match (
        params.contains_key("serviceProviderId"),
        params.contains_key("groupId"),
    ) {
        (_, true) => check_group(shared, params),
        (true, false) => {
            let service_provider = required(params, "serviceProviderId")?;
            if service_provider == shared.config.service_provider_id {
                Ok(())
            } else {
                Err(error(
                    StatusCode::NOT_FOUND,
                    format!("[Error 4010] Service Provider not found: {service_provider}"),
                ))
            }
        }
        (false, false) if FILTERS.iter().any(|f| params.contains_key(*f)) => Ok(()),
        (false, false) => Err(bad_request(
            "[Error 4001] Missing required parameter: serviceProviderId (or a filter such as userId)",
        )),
    }
}

/// `GET /users`. An exact `userId` (no wildcard) answers that user's object, as
/// odins-spear's `get_user_by_id` reads it (404 if unknown); anything else a list.
pub(super) async fn list_users(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    respond(|| {
        let inner = lock(&shared.inner);
        authorize(&shared, &inner, &headers)?;
        let params = query(raw);
        scope(&shared, &params)?;
        let limit = limit(&params, usize::MAX)?.unwrap_or(usize::MAX);
        if let Some(user_id) = params.get("userId").filter(|id| !id.contains('*')) {
            let user = inner.users.get(user_id).ok_or_else(|| {
                error(
                    StatusCode::NOT_FOUND,
                    format!("[Error 4008] User not found: {user_id}"),
                )
            })?;
            return Ok(json_response(StatusCode::OK, user_json(&shared, user)));
        }
        let patterns = FILTERS
            .iter()
            .filter_map(|name| params.get(*name).map(|value| (*name, value)))
            .map(|(name, value)| Pattern::parse(name, value).map(|p| (name, p)))
            .collect::<Result<Vec<_>, _>>()?;
        let users: Vec<Value> = inner
            .users
            .values()
            .filter(|user| {
                patterns
                    .iter()
                    .all(|(name, pattern)| pattern.matches(field(user, name)))
            })
            .take(limit)
            .map(|user| user_json(&shared, user))
            .collect();
        Ok(json_response(StatusCode::OK, Value::Array(users)))
    })
}

/// `GET /users/password?userId`: the web password's login details (the shape is
/// not documented \[INF\]; never the password).
pub(super) async fn get_password_info(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    respond(|| {
        let inner = lock(&shared.inner);
        authorize(&shared, &inner, &headers)?;
        let params = query(raw);
        let user_id = required(&params, "userId")?;
        let user = inner.users.get(user_id).ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                format!("[Error 4008] User not found: {user_id}"),
            )
        })?;
        Ok(json_response(
            StatusCode::OK,
            json!({
                "userId": user.user_id,
                "isLoginDisabled": false,
                "expirationDays": -1,
                "password": "*****",
            }),
        ))
    })
}

/// `GET /auth/session`: the session's details (shape not documented \[INF\]).
pub(super) async fn get_session(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    respond(|| {
        let inner = lock(&shared.inner);
        authorize(&shared, &inner, &headers)?;
        let expires = bearer(&headers)
            .and_then(|token| inner.tokens.get(token))
            .and_then(|token| token.expires.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        Ok(json_response(
            StatusCode::OK,
            json!({
                "username": shared.config.username,
                "loginType": "System",
                "expiration": expires,
            }),
        ))
    })
}
