//! Logging in to Odin once, and keeping the token fresh without logging in again.
//!
//! The token lives behind one async mutex. A worker that finds it due refreshes it
//! (`PUT auth/token`) while holding the lock, so the others wait for the new token
//! instead of refreshing too. Odin only refreshes a token that is still valid, so
//! the refresh happens shortly before expiry; a token refused with 401 is refreshed
//! once, by the first worker to report it. A failed refresh forgets the session and
//! is `AuthRefused`: the host stops, and the next `check()` logs in afresh.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rekey_api::{ConnectorError, ErrorKind, Secret};
use rekey_http::{Method, Response, StatusCode, VendorHttp};
use serde_json::Value;
use time::format_description::well_known::Iso8601;
use time::{OffsetDateTime, PrimitiveDateTime};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::api::{self, LoginBody, TokenReply};

/// Token lifetime assumed when the server does not say: "a new one which will
/// expire in 24hr" (odins-spear's refresh docstring).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// Refresh at most this long before expiry (and at least a fifth of the lifetime).
const MAX_MARGIN: Duration = Duration::from_secs(60);
/// The `Date` header counts whole seconds: the server's clock may be up to this
/// much later than it says.
const DATE_RESOLUTION: Duration = Duration::from_secs(1);
/// A token said to live less than this is taken to be misread, not used as is
/// (it would have every call refresh it).
const MIN_BELIEVABLE: Duration = Duration::from_secs(1);

struct Session {
    token: Secret,
    refresh_at: Instant,
}

#[derive(Default)]
struct State {
    session: Option<Session>,
    /// Bumped whenever the token changes, so a worker that saw a 401 can tell
    /// whether someone already refreshed. Never reset, even by a new login.
    generation: u64,
    /// Odin refused the session: only [`Sessions::ensure`] (the host's `check()`)
    /// logs in again, so a refused run does not quietly log in behind the host.
    refused: bool,
}

/// The connector's login state.
pub(crate) struct Sessions {
    username: String,
    password: Secret,
    state: Mutex<State>,
}

impl Sessions {
    pub(crate) fn new(username: String, password: Secret) -> Self {
        Sessions {
            username,
            password,
            state: Mutex::new(State::default()),
        }
    }

    /// Logs in unless logged in, also after Odin refused the session.
    pub(crate) async fn ensure(&self, http: &VendorHttp) -> Result<(), ConnectorError> {
        self.fresh_token(http, true).await.map(|_| ())
    }

    /// A token fresh enough to use, logging in (the first time) or refreshing as
    /// needed, and its generation.
    pub(crate) async fn token(&self, http: &VendorHttp) -> Result<(Secret, u64), ConnectorError> {
        self.fresh_token(http, false).await
    }

    async fn fresh_token(
        &self,
        http: &VendorHttp,
        relogin: bool,
    ) -> Result<(Secret, u64), ConnectorError> {
        let mut state = self.state.lock().await;
        let due = match &state.session {
            None if state.refused && !relogin => return Err(logged_out()),
            None => {
                let session = self.login(http).await?;
                state.session = Some(session);
                state.generation += 1;
                state.refused = false;
                false
            }
            Some(session) => Instant::now() >= session.refresh_at,
        };
        if due {
            tracing::debug!("the token is due for refresh");
            self.refresh(http, &mut state).await?;
        }
        let session = state.session.as_ref().ok_or_else(logged_out)?;
        Ok((session.token.clone(), state.generation))
    }

    /// After a 401 on a token of `generation`: refreshes unless another worker
    /// already did.
    pub(crate) async fn refresh_after_401(
        &self,
        http: &VendorHttp,
        generation: u64,
    ) -> Result<(), ConnectorError> {
        let mut state = self.state.lock().await;
        if state.session.is_none() {
            return Err(logged_out());
        }
        if state.generation != generation {
            return Ok(());
        }
        tracing::debug!("the token was refused (401); refreshing once");
        self.refresh(http, &mut state).await
    }

    /// Forgets the session after the server refused a fresh token of
    /// `generation` (unless it has changed since), so that the next
    /// [`ensure`](Self::ensure) logs in afresh.
    pub(crate) async fn forget(&self, generation: u64) {
        let mut state = self.state.lock().await;
        if state.generation == generation {
            state.session = None;
            state.refused = true;
        }
    }

    async fn login(&self, http: &VendorHttp) -> Result<Session, ConnectorError> {
        tracing::info!(username = %self.username, "logging in to Odin");
        let request =
            json_headers(http.request(Method::POST, &["auth", "token"])).json(&LoginBody {
                username: &self.username,
                password: self.password.expose(),
            });
        let response = http.send(request).await?;
        self.read_token(http, response, "login").await
    }

    /// `PUT auth/token` with the current token. Any refusal forgets the session.
    async fn refresh(&self, http: &VendorHttp, state: &mut State) -> Result<(), ConnectorError> {
        let Some(session) = &state.session else {
            return Err(logged_out());
        };
        let request = json_headers(http.request(Method::PUT, &["auth", "token"]))
            .bearer_auth(session.token.expose());
        let result = match http.send(request).await {
            Ok(response) => self.read_token(http, response, "token refresh").await,
            Err(error) => Err(error),
        };
        match result {
            Ok(session) => {
                state.session = Some(session);
                state.generation += 1;
                Ok(())
            }
            Err(error) => {
                if error.kind == ErrorKind::AuthRefused {
                    state.session = None;
                    state.refused = true;
                }
                Err(error)
            }
        }
    }

    /// Reads a login or refresh reply: refused unless 2xx with a `token`.
    async fn read_token(
        &self,
        http: &VendorHttp,
        response: Response,
        what: &str,
    ) -> Result<Session, ConnectorError> {
        let status = response.status();
        let server_now = rekey_http::server_date(response.headers());
        let body = http.body(response).await?;
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
        let margin = (lifetime / 5).min(MAX_MARGIN);
        tracing::debug!(
            lifetime_s = lifetime.as_secs(),
            "{what}: got a token; refreshing {}s before it expires",
            margin.as_secs()
        );
        Ok(Session {
            token,
            refresh_at: Instant::now() + lifetime.saturating_sub(margin),
        })
    }
}

/// Odin's headers on every call (odins-spear sends them always, bodies or not).
pub(crate) fn json_headers(request: rekey_http::RequestBuilder) -> rekey_http::RequestBuilder {
    request
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
}

fn logged_out() -> ConnectorError {
    ConnectorError::auth_refused("Odin refused the session; it logs in again at the next check")
}

/// How long a new token lives, judged by the server's clock (`server_now`, from its
/// `Date` header) so that skew between the machines does not matter: the earliest of
/// the reply's own expiry fields and the JWT's `exp`, else the default 24 hours.
fn lifetime(reply: &TokenReply, token: &Secret, server_now: Option<SystemTime>) -> Duration {
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
    match absolute.chain(relative).min() {
        Some(lifetime) if lifetime >= MIN_BELIEVABLE => lifetime,
        Some(lifetime) => {
            tracing::warn!(
                lifetime_ms = lifetime.as_millis() as u64,
                "the token's stated expiry is already past or imminent; assuming the default lifetime"
            );
            DEFAULT_LIFETIME
        }
        None => DEFAULT_LIFETIME,
    }
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
            Duration::from_secs(599),
            "a second for the Date header"
        );
        // Milliseconds are recognised.
        let token = jwt(&format!(r#"{{"exp":{}}}"#, (NOW + 600) * 1000));
        let life = lifetime(&reply("{}"), &token, Some(server_now()));
        assert_eq!(life, Duration::from_secs(599));
    }

    #[test]
    fn reply_fields_count_and_the_earliest_wins() {
        let token = jwt(&format!(r#"{{"exp":{}}}"#, NOW + 3600));
        let life = lifetime(
            &reply(r#"{"expiration":"2025-01-01T12:10:01Z"}"#),
            &token,
            Some(server_now()),
        );
        assert_eq!(life, Duration::from_secs(600));
        let life = lifetime(
            &reply(r#"{"expiresIn":120}"#),
            &Secret::from("opaque"),
            None,
        );
        assert_eq!(life, Duration::from_secs(120));
        let life = lifetime(
            &reply(r#"{"expires":"2025-01-01T12:00:31"}"#),
            &Secret::from("opaque"),
            Some(server_now()),
        );
        assert_eq!(life, Duration::from_secs(30));
    }

    #[test]
    fn unknown_or_unbelievable_expiry_falls_back_to_a_day() {
        let opaque = Secret::from("not-a-jwt");
        assert_eq!(lifetime(&reply("{}"), &opaque, None), DEFAULT_LIFETIME);
        let expired = jwt(&format!(r#"{{"exp":{}}}"#, NOW - 10));
        assert_eq!(
            lifetime(&reply("{}"), &expired, Some(server_now())),
            DEFAULT_LIFETIME
        );
        let garbage = reply(r#"{"expiration":"soon","expiresIn":"x","expires":null}"#);
        assert_eq!(lifetime(&garbage, &opaque, None), DEFAULT_LIFETIME);
        assert!(jwt_expiry("a.!!!.c").is_none());
        assert!(jwt_expiry("a.b").is_none());
        assert!(jwt_expiry(jwt(r#"{"sub":"x"}"#).expose()).is_none());
    }
}
