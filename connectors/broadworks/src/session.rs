//! Odin's tokens: how to log in and how to renew, for a
//! [`TokenSession`](rekey_api::TokenSession), which does the rest (login once,
//! renewal before expiry, one renewal at a time, once more after a 401, and no
//! new login after a refusal until the host's `check`).
//!
//! Login is `POST auth/token`; renewal is `PUT auth/token` with the current token,
//! which Odin only accepts while that token is still valid, so the session renews
//! it shortly before expiry. How long a token lives is read from the JWT's `exp` or
//! an expiry field of the reply, judged by the server's `Date`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use rekey_api::{ConnectorError, Grant, Secret, TokenSource};
use rekey_http::{Method, Response, StatusCode, VendorHttp};
use serde_json::Value;
use time::format_description::well_known::Iso8601;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::api::{self, LoginBody, TokenReply};

/// Token lifetime assumed when the server does not say: "a new one which will
/// expire in 24hr" (odins-spear's refresh docstring).
pub(crate) const DEFAULT_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// The `Date` header counts whole seconds: the server's clock may be up to this
/// much later than it says.
const DATE_RESOLUTION: Duration = Duration::from_secs(1);
/// A token said to live less than this is taken to be misread, not used as is
/// (it would have every call renew it).
const MIN_BELIEVABLE: Duration = Duration::from_secs(1);

/// Logging in to Odin as one administrator.
pub(crate) struct OdinLogin {
    pub(crate) http: VendorHttp,
    pub(crate) username: String,
    password: Secret,
}

impl OdinLogin {
    pub(crate) fn new(http: VendorHttp, username: String, password: Secret) -> Self {
        OdinLogin {
            http,
            username,
            password,
        }
    }

    /// Reads a login or refresh reply: refused unless 2xx with a `token`.
    async fn read_token(&self, response: Response, what: &str) -> Result<Grant, ConnectorError> {
        let status = response.status();
        let server_now = rekey_http::server_date(response.headers());
        let body = self.http.body(response).await?;
        if !status.is_success() {
            let hint = if status == StatusCode::NOT_FOUND {
                " (is url the Odin server's root? rekey adds /api/v2)"
            } else {
                ""
            };
            return Err(ConnectorError::auth_refused(format!(
                "{what} as {} was refused: {}{hint}",
                self.username,
                api::failure(status, &body).message
            )));
        }
        let mut reply: TokenReply = serde_json::from_slice(&body).map_err(|e| {
            ConnectorError::auth_refused(format!(
                "unreadable {what} reply: {}",
                rekey_api::json_error_position(&e)
            ))
        })?;
        let token = reply
            .token
            .take()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ConnectorError::auth_refused(format!("the {what} reply holds no token"))
            })?;
        let lifetime = lifetime(&reply, &token, server_now);
        Ok(Grant::new(token, lifetime))
    }
}

#[async_trait]
impl TokenSource for OdinLogin {
    type Renewal = ();

    async fn login(&self) -> Result<Grant, ConnectorError> {
        tracing::info!(username = %self.username, "logging in to Odin");
        let request =
            json_headers(self.http.request(Method::POST, &["auth", "token"])).json(&LoginBody {
                username: &self.username,
                password: self.password.expose(),
            });
        let response = self.http.send(request).await?;
        self.read_token(response, "login").await
    }

    /// `PUT auth/token` with the current token.
    async fn renew(&self, current: &Grant) -> Result<Grant, ConnectorError> {
        let request = json_headers(self.http.request(Method::PUT, &["auth", "token"]))
            .bearer_auth(current.token.expose());
        let response = self.http.send(request).await?;
        self.read_token(response, "token refresh").await
    }
}

/// Odin's headers on every call (odins-spear sends them always, bodies or not).
pub(crate) fn json_headers(request: rekey_http::RequestBuilder) -> rekey_http::RequestBuilder {
    request
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
}

/// How long a new token lives, judged by the server's clock (`server_now`, from its
/// `Date` header) so that skew between the machines does not matter: the earliest of
/// the reply's own expiry fields and the JWT's `exp`; `None` (the default 24 hours)
/// when none says, or what they say cannot be believed.
fn lifetime(
    reply: &TokenReply,
    token: &Secret,
    server_now: Option<SystemTime>,
) -> Option<Duration> {
    // The Date header is whole seconds: assume the server is up to a second later.
    let now = match server_now {
        Some(date) => date + DATE_RESOLUTION,
        None => SystemTime::now(),
    };
    let absolute = [&reply.expiration, &reply.expires, &reply.expires_at]
        .into_iter()
        .flatten()
        .filter_map(instant_of)
        .chain(jwt_expiry(token.expose()))
        .map(|at| at.duration_since(now).unwrap_or(Duration::ZERO));
    let relative = [&reply.expires_in, &reply.expires_in_snake]
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64);
    let lifetime = absolute.chain(relative).min()?;
    if lifetime < MIN_BELIEVABLE {
        tracing::warn!(
            lifetime_ms = lifetime.as_millis() as u64,
            "the token's stated expiry is already past or imminent; assuming the default lifetime"
        );
        return None;
    }
    Some(lifetime)
}

/// The `exp` claim of a JWT (`header.payload.signature`, base64url), if the token
/// is one.
fn jwt_expiry(token: &str) -> Option<SystemTime> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD_INDIFFERENT
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    instant_of(claims.get("exp")?)
}

/// A point in time given as Unix seconds (or milliseconds, when too large to be
/// seconds), as a numeric string, or as ISO 8601 (UTC when no offset is given).
fn instant_of(value: &Value) -> Option<SystemTime> {
    let number = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    if let Some(number) = number {
        if !number.is_finite() || number <= 0.0 {
            return None;
        }
        // Seconds until the year 5138; beyond that it must be milliseconds.
        let seconds = if number > 1e11 {
            number / 1000.0
        } else {
            number
        };
        return UNIX_EPOCH.checked_add(Duration::from_secs_f64(seconds));
    }
    let text = value.as_str()?.trim();
    let at = OffsetDateTime::parse(text, &Iso8601::DEFAULT)
        .ok()
        .or_else(|| {
            PrimitiveDateTime::parse(text, &Iso8601::DEFAULT)
                .ok()
                .map(PrimitiveDateTime::assume_utc)
        })?;
    Some(SystemTime::from(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_735_732_800; // 2025-01-01T12:00:00Z

    fn server_now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW)
    }

    fn jwt(claims: &str) -> Secret {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        Secret::new(format!(
            "{}.{}.c2lnbmF0dXJl",
            engine.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
            engine.encode(claims)
        ))
    }

    fn reply(json: &str) -> TokenReply {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn jwt_exp_is_read_by_the_servers_clock() {
        let token = jwt(&format!(r#"{{"sub":"admin","exp":{}}}"#, NOW + 600));
        let life = lifetime(&reply("{}"), &token, Some(server_now()));
        assert_eq!(
            life,
            Some(Duration::from_secs(599)),
            "a second for the Date header"
        );
        // Milliseconds are recognised.
        let token = jwt(&format!(r#"{{"exp":{}}}"#, (NOW + 600) * 1000));
        let life = lifetime(&reply("{}"), &token, Some(server_now()));
        assert_eq!(life, Some(Duration::from_secs(599)));
    }

    #[test]
    fn reply_fields_count_and_the_earliest_wins() {
        let token = jwt(&format!(r#"{{"exp":{}}}"#, NOW + 3600));
        let life = lifetime(
            &reply(r#"{"expiration":"2025-01-01T12:10:01Z"}"#),
            &token,
            Some(server_now()),
        );
        assert_eq!(life, Some(Duration::from_secs(600)));
        let life = lifetime(
            &reply(r#"{"expiresIn":120}"#),
            &Secret::from("opaque"),
            None,
        );
        assert_eq!(life, Some(Duration::from_secs(120)));
        let life = lifetime(
            &reply(r#"{"expires":"2025-01-01T12:00:31"}"#),
            &Secret::from("opaque"),
            Some(server_now()),
        );
        assert_eq!(life, Some(Duration::from_secs(30)));
    }

    #[test]
    fn unknown_or_unbelievable_expiry_falls_back_to_the_default() {
        let opaque = Secret::from("not-a-jwt");
        assert_eq!(lifetime(&reply("{}"), &opaque, None), None);
        let expired = jwt(&format!(r#"{{"exp":{}}}"#, NOW - 10));
        assert_eq!(lifetime(&reply("{}"), &expired, Some(server_now())), None);
        let garbage = reply(r#"{"expiration":"soon","expiresIn":"x","expires":null}"#);
        assert_eq!(lifetime(&garbage, &opaque, None), None);
        assert!(jwt_expiry("a.!!!.c").is_none());
        assert!(jwt_expiry("a.b").is_none());
        assert!(jwt_expiry(jwt(r#"{"sub":"x"}"#).expose()).is_none());
    }
}
