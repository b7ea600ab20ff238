//! Authenticated calls to the Odin API and the classification of their answers.

use rekey_api::{ConnectorError, ErrorKind, Secret, StatusMap, TokenSession};
use rekey_http::{Method, StatusCode, VendorHttp};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api;
use crate::session::{DEFAULT_LIFETIME, OdinLogin, json_headers};

/// An Odin API server, logged in as one administrator.
pub(crate) struct Odin {
    session: TokenSession<OdinLogin>,
}

/// A reply that was not a 403, read in full.
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

    /// The body as JSON; an unreadable one is [`ErrorKind::Fatal`], described by
    /// position only.
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

    /// The error for a failed call, its kind from `statuses`. A definite refusal
    /// carries Odin's own words (and the status's hint); an unknown outcome also
    /// names the call.
    pub fn error(&self, statuses: &StatusMap) -> ConnectorError {
        let failure = self.failure();
        let kind = statuses.kind(self.status.as_u16());
        let mut message = if kind.definitely_not_applied() {
            failure.message
        } else {
            format!("{}: {}", self.what, failure.message)
        };
        if self.status == StatusCode::NOT_FOUND && !failure.from_odin {
            message.push_str(" (not an Odin error reply: is url the Odin server's root?)");
        } else if let Some(hint) = statuses.hint_for(self.status.as_u16()) {
            message.push_str(&format!(" ({hint})"));
        }
        ConnectorError::new(kind, message)
    }
}

/// What Odin's statuses mean: on a call about one user, a 404 is an unknown user;
/// on a call about the group (listing, generating), an unknown service provider or
/// group, which is the target's settings to fix.
pub(crate) struct Statuses {
    pub user: StatusMap,
    pub group: StatusMap,
}

impl Statuses {
    pub(crate) fn new(service_provider_id: &str, group_id: &str) -> Self {
        Statuses {
            user: StatusMap::new().on(404, ErrorKind::UserNotFound),
            group: StatusMap::new().on(404, ErrorKind::InvalidSettings).hint(
                404,
                format!(
                    "check service_provider_id `{service_provider_id}` and group_id `{group_id}`"
                ),
            ),
        }
    }
}

impl Odin {
    pub(crate) fn new(http: VendorHttp, username: String, password: Secret) -> Self {
        Odin {
            session: TokenSession::new(OdinLogin::new(http, username, password))
                .default_lifetime(DEFAULT_LIFETIME),
        }
    }

    /// Logs in unless already logged in (afresh if Odin refused the session).
    pub(crate) async fn ensure_session(&self) -> Result<(), ConnectorError> {
        self.session.ensure().await.map(|_| ())
    }

    /// Sends an authenticated request with a fresh token (renewed once on a 401:
    /// Odin refused it, so nothing was applied). A second 401, or a 403, is
    /// [`AuthRefused`](ErrorKind::AuthRefused). Everything else is the caller's
    /// to read.
    pub(crate) async fn call<B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&B>,
    ) -> Result<Reply, ConnectorError> {
        let http = &self.session.source().http;
        let what = format!("{method} {}", segments.join("/"));
        let mut request = json_headers(http.request(method, segments));
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = http.send_with_token(&self.session, request).await?;
        let status = response.status();
        let reply = Reply {
            status,
            body: http.body(response).await?,
            what,
        };
        if status == StatusCode::FORBIDDEN {
            return Err(ConnectorError::auth_refused(format!(
                "{} may not do {} (is it an administrator of this group?): {}",
                self.session.source().username,
                reply.what,
                reply.failure().message
            )));
        }
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
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
        let user = Statuses::new("SP", "G").user;
        let odin = r#"{"details":"[Error 4008] User not found","status":404,"error":"Not Found"}"#;
        let e = reply(404, odin).error(&user);
        assert_eq!(e.kind, ErrorKind::UserNotFound);
        assert_eq!(e.message, "[Error 4008] User not found 404: Not Found");
        let e = reply(404, "<html>").error(&user);
        assert_eq!(e.kind, ErrorKind::UserNotFound);
        assert!(e.message.contains("url"), "{}", e.message);
        let e = reply(
            400,
            r#"{"details":"[Error 4961] rules","status":400,"error":"Bad Request"}"#,
        )
        .error(&user);
        assert_eq!(e.kind, ErrorKind::Rejected);
        assert_eq!(e.message, "[Error 4961] rules 400: Bad Request");
        let e = reply(500, "").error(&user);
        assert_eq!(e.kind, ErrorKind::Fatal);
        assert!(!e.kind.definitely_not_applied());
        assert_eq!(
            e.message,
            "PUT users/passwords: HTTP 500 Internal Server Error"
        );
    }

    #[test]
    fn group_errors_name_the_settings() {
        let group = Statuses::new("SP", "G").group;
        let e = reply(404, r#"{"details":"Group not found"}"#).error(&group);
        assert_eq!(e.kind, ErrorKind::InvalidSettings);
        assert!(e.message.contains("group_id `G`"), "{}", e.message);
    }
}
