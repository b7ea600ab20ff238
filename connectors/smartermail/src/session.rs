//! Logging in once, and keeping tokens fresh without ever logging in again.
//!
//! The session lives behind one async mutex. A worker that finds the token due for
//! refresh refreshes it while holding the lock, so the others wait for the new
//! token instead of refreshing too: SmarterMail rotates refresh tokens, and a second
//! refresh with the old one would fail.

use std::time::{Duration, SystemTime};

use rekey_api::{ConnectorError, Secret};
use rekey_http::{Method, Response, VendorHttp};
use serde_json::json;
use time::format_description::well_known::Iso8601;
use time::{OffsetDateTime, PrimitiveDateTime};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::api::{ImpersonateReply, LoginBody, RefreshBody, TokenReply, message_of};

/// Token lifetime assumed when the server does not say.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Refresh at most this long before expiry...
const MAX_MARGIN: Duration = Duration::from_secs(60);

/// An access token and the refresh token that renews it.
struct TokenPair {
    access: Secret,
    refresh: Secret,
    refresh_at: Instant,
}

struct Session {
    /// The logged-in account's tokens.
    admin: TokenPair,
    /// In system-admin mode, the impersonation tokens for the managed domain.
    domain: Option<TokenPair>,
    /// Bumped whenever the domain-scope token changes, so a worker that saw a 401
    /// can tell whether someone already refreshed.
    generation: u64,
}

/// The connector's login state.
pub(crate) struct Sessions {
    username: String,
    password: Secret,
    domain: Option<String>,
    state: Mutex<Option<Session>>,
}

impl Sessions {
    pub(crate) fn new(username: String, password: Secret, domain: Option<String>) -> Self {
        Sessions {
            username,
            password,
            domain,
            state: Mutex::new(None),
        }
    }

    /// Logs in unless already logged in, and makes sure the domain-scope token is
    /// fresh. Returns a note for the operator.
    pub(crate) async fn ensure(&self, http: &VendorHttp) -> Result<String, ConnectorError> {
        self.domain_token(http).await?;
        Ok(match &self.domain {
            Some(domain) => format!(
                "logged in as system administrator {}, managing {domain}",
                self.username
            ),
            None => format!("logged in as {}", self.username),
        })
    }

    /// Forgets the session after the server refused it, so that the next
    /// [`ensure`](Self::ensure) logs in afresh.
    pub(crate) async fn forget(&self) {
        *self.state.lock().await = None;
    }

    /// A fresh token for `settings/domain/*` calls, and its generation.
    pub(crate) async fn domain_token(
        &self,
        http: &VendorHttp,
    ) -> Result<(Secret, u64), ConnectorError> {
        let mut state = self.state.lock().await;
        if state.is_none() {
            *state = Some(self.login(http).await?);
        }
        let session = state.as_mut().expect("just logged in");
        let due = match &session.domain {
            Some(pair) => Instant::now() >= pair.refresh_at,
            None => self.domain.is_some() || Instant::now() >= session.admin.refresh_at,
        };
        if due && let Err(error) = self.renew(http, session).await {
            if error.kind == rekey_api::ErrorKind::AuthRefused {
                *state = None;
            }
            return Err(error);
        }
        let session = state.as_ref().expect("still logged in");
        let token = session
            .domain
            .as_ref()
            .unwrap_or(&session.admin)
            .access
            .clone();
        Ok((token, session.generation))
    }

    /// After a 401 on a token of `generation`: refreshes unless another worker
    /// already did.
    pub(crate) async fn refresh_after_401(
        &self,
        http: &VendorHttp,
        generation: u64,
    ) -> Result<(), ConnectorError> {
        let mut state = self.state.lock().await;
        let Some(session) = state.as_mut() else {
            return Err(ConnectorError::auth_refused(
                "the session was refused; log in again",
            ));
        };
        if session.generation != generation {
            return Ok(());
        }
        // Force a refresh of whatever token the domain calls use.
        match &mut session.domain {
            Some(pair) => pair.refresh_at = Instant::now(),
            None => session.admin.refresh_at = Instant::now(),
        }
        let result = self.renew(http, session).await;
        if let Err(error) = &result
            && error.kind == rekey_api::ErrorKind::AuthRefused
        {
            *state = None;
        }
        result
    }

    /// Renews the domain-scope token: by refresh token, or in system-admin mode by
    /// refreshing the impersonation token, falling back to impersonating again.
    async fn renew(&self, http: &VendorHttp, session: &mut Session) -> Result<(), ConnectorError> {
        if self.domain.is_none() {
            session.admin = self.refresh(http, &session.admin.refresh).await?;
            session.generation += 1;
            return Ok(());
        }
        if let Some(pair) = &session.domain
            && let Ok(renewed) = self.refresh(http, &pair.refresh).await
        {
            session.domain = Some(renewed);
            session.generation += 1;
            return Ok(());
        }
        if Instant::now() >= session.admin.refresh_at {
            session.admin = self.refresh(http, &session.admin.refresh).await?;
        }
        session.domain = Some(self.impersonate(http, &session.admin.access).await?);
        session.generation += 1;
        Ok(())
    }

    async fn login(&self, http: &VendorHttp) -> Result<Session, ConnectorError> {
        tracing::info!(username = %self.username, "logging in");
        let request = http
            .request(Method::POST, &["auth", "authenticate-user"])
            .header("Accept", "application/json")
            .json(&LoginBody {
                username: &self.username,
                password: self.password.expose(),
            });
        let response = http.send(request).await?;
        let admin = self.token_pair(http, response, "login").await?;
        let domain = match &self.domain {
            Some(_) => Some(self.impersonate(http, &admin.access).await?),
            None => None,
        };
        Ok(Session {
            admin,
            domain,
            generation: 1,
        })
    }

    async fn refresh(
        &self,
        http: &VendorHttp,
        refresh: &Secret,
    ) -> Result<TokenPair, ConnectorError> {
        tracing::debug!("refreshing the access token");
        let request = http
            .request(Method::POST, &["auth", "refresh-token"])
            .header("Accept", "application/json")
            .json(&RefreshBody {
                token: refresh.expose(),
            });
        let response = http.send(request).await?;
        self.token_pair(http, response, "token refresh").await
    }

    async fn impersonate(
        &self,
        http: &VendorHttp,
        admin: &Secret,
    ) -> Result<TokenPair, ConnectorError> {
        let domain = self.domain.as_deref().expect("system-admin mode");
        tracing::debug!(domain, "managing domain by impersonation");
        let request = http
            .request(
                Method::POST,
                &["settings", "sysadmin", "manage-domain", domain],
            )
            .bearer_auth(admin.expose())
            .header("Accept", "application/json")
            .json(&json!({}));
        let response = http.send(request).await?;
        let status = response.status();
        let date = rekey_http::server_date(response.headers());
        let body = http.text(response).await?;
        if !status.is_success() {
            return Err(ConnectorError::auth_refused(format!(
                "managing domain {domain} as {} was refused (HTTP {status}): {}",
                self.username,
                message_of(&body)
            )));
        }
        let reply: ImpersonateReply = serde_json::from_str(&body).map_err(|e| {
            ConnectorError::fatal(format!(
                "unreadable manage-domain reply: {}",
                rekey_api::json_error_position(&e)
            ))
        })?;
        match (
            reply.success,
            reply.impersonate_access_token,
            reply.impersonate_refresh_token,
        ) {
            (Some(true), Some(access), Some(refresh)) if !access.is_empty() => Ok(TokenPair {
                access,
                refresh,
                refresh_at: refresh_deadline(
                    reply.impersonate_access_token_expiration.as_deref(),
                    date,
                ),
            }),
            _ => Err(ConnectorError::auth_refused(format!(
                "managing domain {domain} as {} was refused: {}",
                self.username,
                reply
                    .message
                    .unwrap_or_else(|| "no impersonation token in the reply".into())
            ))),
        }
    }

    /// Reads a login or refresh reply: failed unless 2xx, `success: true` and an
    /// access token.
    async fn token_pair(
        &self,
        http: &VendorHttp,
        response: Response,
        what: &str,
    ) -> Result<TokenPair, ConnectorError> {
        let status = response.status();
        let date = rekey_http::server_date(response.headers());
        let body = http.text(response).await?;
        if !status.is_success() {
            let hint = if status == rekey_http::StatusCode::NOT_FOUND {
                " (is url the SmarterMail server's root?)"
            } else {
                ""
            };
            return Err(ConnectorError::auth_refused(format!(
                "{what} as {} was refused (HTTP {status}): {}{hint}",
                self.username,
                message_of(&body)
            )));
        }
        let reply: TokenReply = serde_json::from_str(&body).map_err(|e| {
            ConnectorError::fatal(format!(
                "unreadable {what} reply: {}",
                rekey_api::json_error_position(&e)
            ))
        })?;
        match (reply.success, reply.access_token, reply.refresh_token) {
            (Some(true), Some(access), Some(refresh)) if !access.is_empty() => Ok(TokenPair {
                access,
                refresh,
                refresh_at: refresh_deadline(reply.access_token_expiration.as_deref(), date),
            }),
            (_, _, _) => Err(ConnectorError::auth_refused(format!(
                "{what} as {} was refused: {}",
                self.username,
                reply
                    .message
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| "no access token in the reply".into())
            ))),
        }
    }
}

/// When to refresh a token that expires at `expiration` (ISO 8601, UTC when no
/// offset is given), judged by the server's own clock (`server_now`, from its `Date`
/// header) so that clock skew between the machines does not matter. The margin is a
/// fifth of the lifetime, at most a minute.
fn refresh_deadline(expiration: Option<&str>, server_now: Option<SystemTime>) -> Instant {
    let lifetime = expiration
        .and_then(parse_expiration)
        .map(|expires| {
            let now = OffsetDateTime::from(server_now.unwrap_or_else(SystemTime::now));
            let remaining = expires - now;
            Duration::try_from(remaining).unwrap_or(Duration::ZERO)
        })
        .unwrap_or(DEFAULT_LIFETIME);
    let margin = (lifetime / 5).min(MAX_MARGIN);
    Instant::now() + lifetime.saturating_sub(margin)
}

fn parse_expiration(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Iso8601::DEFAULT)
        .ok()
        .or_else(|| {
            PrimitiveDateTime::parse(text, &Iso8601::DEFAULT)
                .ok()
                .map(PrimitiveDateTime::assume_utc)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expirations_parse_with_and_without_offset() {
        let utc = parse_expiration("2025-01-01T12:34:56Z").unwrap();
        let bare = parse_expiration("2025-01-01T12:34:56").unwrap();
        let offset = parse_expiration("2025-01-01T14:34:56+02:00").unwrap();
        assert_eq!(utc, bare);
        assert_eq!(utc, offset);
        assert!(parse_expiration("yesterday").is_none());
        assert!(parse_expiration("2025-01-01T12:34:56.1234567Z").is_some());
    }

    #[test]
    fn deadline_uses_the_servers_clock() {
        // The server says it is 12:00:00 and the token expires at 12:00:10: refresh in
        // about 8 seconds, whatever this machine's clock says.
        let server_now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_732_800);
        let deadline = refresh_deadline(Some("2025-01-01T12:00:10Z"), Some(server_now));
        let left = deadline - Instant::now();
        assert!(
            left > Duration::from_secs(7) && left <= Duration::from_secs(8),
            "{left:?}"
        );
        // Long-lived tokens refresh a minute early.
        let deadline = refresh_deadline(Some("2025-01-01T13:00:00Z"), Some(server_now));
        let left = deadline - Instant::now();
        assert!(
            left > Duration::from_secs(3538) && left <= Duration::from_secs(3540),
            "{left:?}"
        );
        // An expired or missing expiry refreshes at once, or after the default.
        assert!(refresh_deadline(Some("2020-01-01T00:00:00Z"), None) <= Instant::now());
        assert!(refresh_deadline(None, None) > Instant::now() + Duration::from_secs(600));
    }
}
