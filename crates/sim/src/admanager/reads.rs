//! The calls that read or authenticate: SearchUser (paged, not counted against
//! the quota), GetAuthInfo and the legacy APIAuthToken.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::directory::Account;
use super::params::Params;
use super::texts::quoted;
use super::{RawRequest, Shared, severe};
use crate::common::{json_response, lock, new_token};

pub(super) async fn search_user(
    State(shared): State<Arc<Shared>>,
    request: RawRequest,
) -> Response {
    let params = match shared.authorise(&request, true, true) {
        Ok(params) => params,
        Err(response) => return response,
    };
    let number = |name: &str, default: usize| match params.get(name) {
        None => Some(default),
        Some(text) => text.parse::<usize>().ok().filter(|&n| n >= 1),
    };
    let (Some(start), Some(range)) = (number("startIndex", 1), number("range", 50)) else {
        return shared.request_error("startIndex and range must be numbers from 1");
    };
    // `filter=(attribute:equal:value)`; `searchText` matches names; `select` is accepted.
    let filter = match params.non_empty("filter") {
        None => None,
        Some(text) => {
            let inner_text = text.trim().trim_start_matches('(').trim_end_matches(')');
            match inner_text.splitn(3, ':').collect::<Vec<_>>()[..] {
                [attribute, "equal", value] => Some((attribute.to_lowercase(), value.to_owned())),
                _ => return shared.request_error("unsupported filter"),
            }
        }
    };
    let search = params.non_empty("searchText").map(str::to_lowercase);
    let inner = lock(&shared.inner);
    let matching: Vec<&Account> = inner
        .accounts
        .iter()
        .filter(|a| {
            filter
                .as_ref()
                .is_none_or(|(attr, value)| a.has(attr, value))
        })
        .filter(|a| {
            search.as_ref().is_none_or(|s| {
                a.sam.to_lowercase().contains(s) || a.display.to_lowercase().contains(s)
            })
        })
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(start - 1)
        .take(range)
        .map(|a| a.row())
        .collect();
    json_response(
        StatusCode::OK,
        json!({ "UsersList": page, "count": matching.len(), "statusMessage": "", "status": "SUCCESS" }),
    )
}

/// The AdmpAuthObject: the technician and the domains it manages, as a JSON string.
fn auth_object(shared: &Shared) -> String {
    json!({
        "LOGIN_NAME": shared.config.technician,
        "LOGIN_ID": "2",
        "DOMAIN_NAME": shared.config.domain,
        "ROLE": "HelpDesk",
        "domainNameList": [{ "DOMAIN_NAME": shared.config.domain }],
    })
    .to_string()
}

pub(super) async fn get_auth_info(
    State(shared): State<Arc<Shared>>,
    request: RawRequest,
) -> Response {
    if let Err(response) = shared.authorise(&request, false, false) {
        return response;
    }
    json_response(
        StatusCode::OK,
        json!({ "AdmpAuthObject": auth_object(&shared) }),
    )
}

/// Legacy `APIAuthToken` (builds 6583–7224): `loginName`, `password`,
/// `domainName` → a new ticket; an `AuthToken` given is invalidated.
pub(super) async fn api_auth_token(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match Params::read(&method, &uri, &headers, &body) {
        Ok(params) => params,
        Err(why) => return shared.request_error(&quoted(&why)),
    };
    let config = &shared.config;
    let valid = params
        .get("loginName")
        .is_some_and(|l| l.eq_ignore_ascii_case(&config.technician))
        && params.get("password") == Some(config.technician_password.as_str())
        && params
            .get("domainName")
            .is_some_and(|d| d.eq_ignore_ascii_case(&config.domain));
    if !valid {
        // The legacy API's refusal carries no ERROR_CODE.
        return severe(shared.texts().bad_login, None);
    }
    let mut inner = lock(&shared.inner);
    if let Some(old) = params.get("AuthToken") {
        inner.tokens.remove(old);
    }
    let token = new_token(&mut inner.rng);
    inner.tokens.insert(token.clone());
    let valid_until = shared.common.clock.now() + std::time::Duration::from_secs(90 * 86_400);
    let millis = valid_until
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    json_response(
        StatusCode::OK,
        json!({
            "AuthTicket": token,
            "LoginName": config.technician,
            "LoginId": "2",
            "LoginStatus": "true",
            "ValidDate": millis.to_string(),
            "LoginStatusMessage": "Success",
            "AdmpAuthObject": auth_object(&shared),
        }),
    )
}
