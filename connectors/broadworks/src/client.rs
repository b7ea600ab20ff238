//! Authenticated calls to the Odin API and the classification of their answers.

use rekey_api::{ConnectorError, Secret};
use rekey_http::{Method, StatusCode, VendorHttp};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api;
use crate::session::{Sessions, json_headers};

/// An Odin API server, logged in as one administrator.
pub(crate) struct Odin {
    http: VendorHttp,
    sessions: Sessions,
    username: String,
}

/// A reply that was neither a 401 nor a 403, read in full.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: Vec<u8>,
    /// `METHOD path`, for messages.
    pub what: String,
}

impl Reply {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// The body as JSON; an unreadable one is [`ErrorKind::Fatal`](rekey_api::ErrorKind),
    /// described by position only.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ConnectorError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ConnectorError::fatal(format!(
                "unreadable reply to {}: {}",
                self.what,
                rekey_api::json_error_position(&e)
            ))
        })
    }

    /// The error reply described for the operator.
    pub fn failure(&self) -> api::Failure {
        api::failure(self.status, &self.body)
    }

    /// The error for a failed call that concerns one user: 404 is
    /// [`UserNotFound`](rekey_api::ErrorKind::UserNotFound), another 4xx is
    /// [`Rejected`](rekey_api::ErrorKind::Rejected) (Odin refused it: nothing was
    /// applied), a 5xx is [`Fatal`](rekey_api::ErrorKind::Fatal) (outcome unknown).
    pub fn user_error(&self) -> ConnectorError {
        let failure = self.failure();
        match self.status {
            StatusCode::NOT_FOUND if failure.from_odin => {
                ConnectorError::user_not_found(failure.message)
            }
            StatusCode::NOT_FOUND => ConnectorError::user_not_found(format!(
                "{} (not an Odin error reply: is url the Odin server's root?)",
                failure.message
            )),
            status if status.is_client_error() => ConnectorError::rejected(failure.message),
            _ => ConnectorError::fatal(format!("{}: {}", self.what, failure.message)),
        }
    }

    /// The error for a failed call about the group (listing, generating): 404
    /// means the service provider or group is unknown.
    pub fn group_error(&self, service_provider_id: &str, group_id: &str) -> ConnectorError {
        let failure = self.failure();
        match self.status {
            StatusCode::NOT_FOUND => ConnectorError::invalid_settings(format!(
                "{}: {} (check service_provider_id `{service_provider_id}` and group_id `{group_id}`)",
                self.what, failure.message
            )),
            status if status.is_client_error() => {
                ConnectorError::rejected(format!("{}: {}", self.what, failure.message))
            }
            _ => ConnectorError::fatal(format!("{}: {}", self.what, failure.message)),
        }
    }
}

impl Odin {
    pub(crate) fn new(http: VendorHttp, username: String, password: Secret) -> Self {
        Odin {
            sessions: Sessions::new(username.clone(), password),
            http,
            username,
        }
    }

    /// Logs in unless already logged in (afresh if Odin refused the session).
    pub(crate) async fn ensure_session(&self) -> Result<(), ConnectorError> {
        self.sessions.ensure(&self.http).await
    }

    /// Sends an authenticated request with a fresh token. A 401 refreshes the
    /// token once (unless another worker already did) and sends the request again:
    /// Odin refused it, so nothing was applied. A second 401, or a 403, is
    /// [`AuthRefused`](rekey_api::ErrorKind::AuthRefused). Everything else is the
    /// caller's to read.
    pub(crate) async fn call<B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&B>,
    ) -> Result<Reply, ConnectorError> {
        let what = format!("{method} {}", segments.join("/"));
        let mut refreshed = false;
        loop {
            let (token, generation) = self.sessions.token(&self.http).await?;
            let mut request = json_headers(self.http.request(method.clone(), segments))
                .bearer_auth(token.expose());
            if !query.is_empty() {
                request = request.query(query);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = self.http.send(request).await?;
            let status = response.status();
            let body = self.http.body(response).await?;
            let reply = Reply {
                status,
                body,
                what: what.clone(),
            };
            match status {
                StatusCode::UNAUTHORIZED if !refreshed => {
                    self.sessions
                        .refresh_after_401(&self.http, generation)
                        .await?;
                    refreshed = true;
                }
                StatusCode::UNAUTHORIZED => {
                    self.sessions.forget(generation).await;
                    return Err(ConnectorError::auth_refused(format!(
                        "Odin refused a freshly refreshed token on {what}: {}",
                        reply.failure().message
                    )));
                }
                StatusCode::FORBIDDEN => {
                    return Err(ConnectorError::auth_refused(format!(
                        "{} may not do {what} (is it an administrator of this group?): {}",
                        self.username,
                        reply.failure().message
                    )));
                }
                _ => return Ok(reply),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rekey_api::ErrorKind;

    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            body: body.as_bytes().to_vec(),
            what: "PUT users/passwords".into(),
        }
    }

    #[test]
    fn user_errors_are_classified() {
        let odin = r#"{"details":"[Error 4008] User not found","status":404,"error":"Not Found"}"#;
        let e = reply(404, odin).user_error();
        assert_eq!(e.kind, ErrorKind::UserNotFound);
        assert_eq!(e.message, "[Error 4008] User not found 404: Not Found");
        let e = reply(404, "<html>").user_error();
        assert_eq!(e.kind, ErrorKind::UserNotFound);
        assert!(e.message.contains("url"), "{}", e.message);
        let e = reply(
            400,
            r#"{"details":"[Error 4961] rules","status":400,"error":"Bad Request"}"#,
        )
        .user_error();
        assert_eq!(e.kind, ErrorKind::Rejected);
        assert_eq!(e.message, "[Error 4961] rules 400: Bad Request");
        let e = reply(500, "").user_error();
        assert_eq!(e.kind, ErrorKind::Fatal);
        assert!(!e.kind.definitely_not_applied());
        assert_eq!(
            e.message,
            "PUT users/passwords: HTTP 500 Internal Server Error"
        );
    }

    #[test]
    fn group_errors_name_the_settings() {
        let e = reply(404, r#"{"details":"Group not found"}"#).group_error("SP", "G");
        assert_eq!(e.kind, ErrorKind::InvalidSettings);
        assert!(e.message.contains("group_id `G`"), "{}", e.message);
    }
}
