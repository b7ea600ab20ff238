//! Signing in: `authenticate-user` and `refresh-token`, which issue token pairs.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::bodies::{credentials, string_field};
use super::{Principal, Shared, bad_request, envelope, iso, unsupported_media};
use crate::common::{has_content_type, json_response, lock};

/// `POST /api/v1/auth/authenticate-user`: the login envelope, or HTTP 200 with
/// `success: false` (401 if configured) for bad credentials.
pub(super) async fn login(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let credentials = match credentials(&headers, &body) {
        Ok(c) => c,
        Err(response) => return response,
    };
    let config = &shared.config;
    let mut inner = lock(&shared.inner);
    let principal = if credentials.username == config.sysadmin {
        (credentials.password == config.sysadmin_password).then_some(Principal::SysAdmin)
    } else {
        inner
            .mailboxes
            .get(&credentials.username.to_lowercase())
            .filter(|m| m.password == credentials.password)
            .map(|m| Principal::User {
                domain: config.domain.clone(),
                admin: m.domain_admin,
            })
    };
    let Some(principal) = principal else {
        inner.failed_logins += 1;
        let message = "Invalid username or password";
        return if config.bad_login_401 {
            json_response(StatusCode::UNAUTHORIZED, json!({ "message": message }))
        } else {
            json_response(StatusCode::OK, envelope(false, Some(message), 401))
        };
    };
    inner.logins += 1;
    let is_admin = principal == Principal::SysAdmin;
    let is_domain_admin = matches!(principal, Principal::User { admin: true, .. });
    let (access, refresh, expires) = shared.issue(&mut inner, principal);
    let email = if is_admin {
        String::new()
    } else {
        credentials.username.clone()
    };
    json_response(
        StatusCode::OK,
        json!({
            "emailAddress": email,
            "changePasswordNeeded": false,
            "displayWelcomeWizard": false,
            "isAdmin": is_admin,
            "isDomainAdmin": is_domain_admin,
            "isLicensed": true,
            "autoLoginToken": null,
            "autoLoginUrl": null,
            "localeId": "en",
            "isImpersonating": false,
            "canViewPasswords": false,
            "accessToken": access,
            "refreshToken": refresh,
            "accessTokenExpiration": iso(expires),
            "username": credentials.username,
            "success": true,
            "resultCode": 200,
            "message": null,
            "debugInfo": null,
        }),
    )
}

/// `POST /api/v1/auth/refresh-token`: a new pair; the old refresh token stops working.
pub(super) async fn refresh(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !has_content_type(&headers, "application/json") {
        return unsupported_media();
    }
    let token = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(object)) => string_field(&object, "token"),
        _ => None,
    };
    let Some(token) = token else {
        return bad_request("token is required.");
    };
    let mut inner = lock(&shared.inner);
    let now = shared.common.clock.now();
    // Rotation: a refresh token works once.
    match inner.refresh.remove(&token) {
        Some(old) if old.expires > now => {
            inner.refreshes += 1;
            let is_impersonating = matches!(old.principal, Principal::Impersonation { .. });
            let (access, refresh, expires) = shared.issue(&mut inner, old.principal);
            json_response(
                StatusCode::OK,
                json!({
                    "isImpersonating": is_impersonating,
                    "canViewPasswords": false,
                    "accessToken": access,
                    "refreshToken": refresh,
                    "accessTokenExpiration": iso(expires),
                    "username": null,
                    "success": true,
                    "resultCode": 200,
                    "message": null,
                    "debugInfo": null,
                }),
            )
        }
        _ => json_response(
            StatusCode::OK,
            envelope(
                false,
                Some("The refresh token is invalid or has expired."),
                401,
            ),
        ),
    }
}
