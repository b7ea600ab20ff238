//! SmarterMail's tokens: how to log in and how to renew, for a
//! [`TokenSession`](rekey_api::TokenSession), which does the rest (login once,
//! renewal before expiry, one renewal at a time, once more after a 401).
//!
//! A token is renewed with the rotating refresh token
//! (`POST auth/refresh-token`), never by logging in again. In system-admin mode the
//! calls use the impersonation token of the managed domain
//! (`POST settings/sysadmin/manage-domain/{domain}`): it is renewed with its own
//! refresh token, or, should that fail, by refreshing the administrator's tokens
//! and impersonating again.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use rekey_api::{ConnectorError, Grant, Secret, TokenSource};
use rekey_http::{Method, Response, VendorHttp};
use serde_json::json;
use time::OffsetDateTime;
use time::PrimitiveDateTime;
use time::format_description::well_known::Iso8601;

use crate::api::{ImpersonateReply, LoginBody, RefreshBody, TokenReply, message_of};

/// What renewing a grant takes.
pub(crate) struct Renewal {
    /// The refresh token of the grant's own token.
    refresh: Secret,
    /// In system-admin mode, the administrator's own tokens (access, refresh),
    /// to impersonate again should the impersonation's refresh fail.
    admin: Option<(Secret, Secret)>,
}

/// Logging in to SmarterMail as one administrator.
pub(crate) struct Login {
    pub(crate) http: VendorHttp,
    pub(crate) username: String,
    password: Secret,
    /// In system-admin mode, the domain managed by impersonation.
    pub(crate) domain: Option<String>,
}

impl Login {
    pub(crate) fn new(
        http: VendorHttp,
        username: String,
        password: Secret,
        domain: Option<String>,
    ) -> Self {
        Login {
            http,
            username,
            password,
            domain,
        }
    }

    async fn refresh(&self, refresh: &Secret) -> Result<Pair, ConnectorError> {
        tracing::debug!("refreshing the access token");
        let request = self
            .http
            .request(Method::POST, &["auth", "refresh-token"])
            .header("Accept", "application/json")
            .json(&RefreshBody {
                token: refresh.expose(),
            });
        let response = self.http.send(request).await?;
        self.token_pair(response, "token refresh").await
    }

    async fn impersonate(&self, admin: &Secret) -> Result<Pair, ConnectorError> {
        let domain = self.domain.as_deref().unwrap_or_default();
        tracing::debug!(domain, "managing domain by impersonation");
        let request = self
            .http
            .request(
                Method::POST,
                &["settings", "sysadmin", "manage-domain", domain],
            )
            .bearer_auth(admin.expose())
            .header("Accept", "application/json")
            .json(&json!({}));
        let response = self.http.send(request).await?;
        let status = response.status();
        let date = rekey_http::server_date(response.headers());
        let body = self.http.text(response).await?;
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
            (Some(true), Some(access), Some(refresh)) if !access.is_empty() => Ok(Pair {
                access,
                refresh,
                lifetime: lifetime(reply.impersonate_access_token_expiration.as_deref(), date),
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

    /// Reads a login or refresh reply: refused unless 2xx, `success: true` and an
    /// access token.
    async fn token_pair(&self, response: Response, what: &str) -> Result<Pair, ConnectorError> {
        let status = response.status();
        let date = rekey_http::server_date(response.headers());
        let body = self.http.text(response).await?;
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
            (Some(true), Some(access), Some(refresh)) if !access.is_empty() => Ok(Pair {
                access,
                refresh,
                lifetime: lifetime(reply.access_token_expiration.as_deref(), date),
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

/// An access token, its refresh token, and how long it lives.
struct Pair {
    access: Secret,
    refresh: Secret,
    lifetime: Option<Duration>,
}

impl Pair {
    fn grant(self, admin: Option<(Secret, Secret)>) -> Grant<Renewal> {
        Grant::new(self.access, self.lifetime).with_renewal(Renewal {
            refresh: self.refresh,
            admin,
        })
    }
}

#[async_trait]
impl TokenSource for Login {
    type Renewal = Renewal;

    async fn login(&self) -> Result<Grant<Renewal>, ConnectorError> {
        tracing::info!(username = %self.username, "logging in");
        let request = self
            .http
            .request(Method::POST, &["auth", "authenticate-user"])
            .header("Accept", "application/json")
            .json(&LoginBody {
                username: &self.username,
                password: self.password.expose(),
            });
        let response = self.http.send(request).await?;
        let admin = self.token_pair(response, "login").await?;
        if self.domain.is_none() {
            return Ok(admin.grant(None));
        }
        let domain = self.impersonate(&admin.access).await?;
        Ok(domain.grant(Some((admin.access, admin.refresh))))
    }

    async fn renew(&self, current: &Grant<Renewal>) -> Result<Grant<Renewal>, ConnectorError> {
        let Some((_, admin_refresh)) = &current.renewal.admin else {
            return Ok(self.refresh(&current.renewal.refresh).await?.grant(None));
        };
        if let Ok(renewed) = self.refresh(&current.renewal.refresh).await {
            return Ok(renewed.grant(current.renewal.admin.clone()));
        }
        let admin = self.refresh(admin_refresh).await?;
        let domain = self.impersonate(&admin.access).await?;
        Ok(domain.grant(Some((admin.access, admin.refresh))))
    }
}

/// How long a token that expires at `expiration` (ISO 8601, UTC when no offset is
/// given) has left, judged by the server's own clock (`server_now`, from its `Date`
/// header) so that clock skew between the machines does not matter.
fn lifetime(expiration: Option<&str>, server_now: Option<SystemTime>) -> Option<Duration> {
    let expires = parse_expiration(expiration?)?;
    let now = OffsetDateTime::from(server_now.unwrap_or_else(SystemTime::now));
    Some(Duration::try_from(expires - now).unwrap_or(Duration::ZERO))
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
    fn lifetimes_use_the_servers_clock() {
        // The server says it is 12:00:00 and the token expires at 12:00:10: ten
        // seconds left, whatever this machine's clock says.
        let server_now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_732_800);
        assert_eq!(
            lifetime(Some("2025-01-01T12:00:10Z"), Some(server_now)),
            Some(Duration::from_secs(10))
        );
        // An expired token has none left; an unknown expiry is unknown.
        assert_eq!(
            lifetime(Some("2020-01-01T00:00:00Z"), None),
            Some(Duration::ZERO)
        );
        assert_eq!(lifetime(None, None), None);
        assert_eq!(lifetime(Some("soon"), None), None);
    }
}
