//! [`StatusMap`]: what a vendor's HTTP status means, as an [`ErrorKind`], tuned in
//! one place.
//!
//! Most vendors mean the same by most statuses, so a connector starts from the
//! default table and changes only what its vendor means otherwise ("a 404 on this
//! call is an unknown user", "422 is a password the policy refused"). The kind
//! decides what the host does, so the default errs on the side of *unknown* where a
//! status does not prove that nothing was applied:
//!
//! | status | kind | why |
//! | --- | --- | --- |
//! | 401, 403, 407 | [`AuthRefused`](ErrorKind::AuthRefused) | the connector's own credentials or rights were refused; every further call would be too |
//! | 408 | [`Transient`](ErrorKind::Transient) | the server gave up waiting for the request |
//! | 429 | [`RateLimited`](ErrorKind::RateLimited) | slow down (`rekey-http` adds the `Retry-After`) |
//! | any other 4xx | [`Rejected`](ErrorKind::Rejected) | the request was refused as it stood, before it was applied |
//! | 502, 503, 504 | [`Transient`](ErrorKind::Transient) | a gateway or an overloaded server; retried with the same value |
//! | any other status | [`Fatal`](ErrorKind::Fatal) | a 500 may come after a change was written: the outcome is unknown |
//!
//! ```
//! use rekey_api::{ErrorKind, StatusMap};
//!
//! // In the connector: 404 on a user's endpoint is an unknown account, 422 a weak
//! // password.
//! let statuses = StatusMap::new()
//!     .on(404, ErrorKind::UserNotFound)
//!     .on(422, ErrorKind::PolicyRejected)
//!     .hint(401, "check the target's api_key");
//!
//! let error = statuses.error(422, "PUT accounts/jdoe/password", Some("too short"));
//! assert_eq!(error.kind, ErrorKind::PolicyRejected);
//! assert_eq!(error.message, "PUT accounts/jdoe/password: HTTP 422: too short");
//! let error = statuses.error(401, "GET whoami", None);
//! assert_eq!(error.message, "GET whoami: HTTP 401: no message: check the target's api_key");
//! assert_eq!(statuses.kind(500), ErrorKind::Fatal);
//! ```

use crate::{ConnectorError, ErrorKind};

/// The meaning of a vendor's HTTP statuses: the default table of the
/// [module docs](self), with the connector's own changes.
#[derive(Debug, Clone, Default)]
pub struct StatusMap {
    kinds: Vec<(u16, ErrorKind)>,
    hints: Vec<(u16, String)>,
    /// The field of a JSON error body that holds the vendor's message; `None`:
    /// `message`.
    message_field: Option<String>,
}

impl StatusMap {
    /// The default table.
    pub fn new() -> Self {
        StatusMap::default()
    }

    /// `status` means `kind` (replacing the default or an earlier change).
    pub fn on(mut self, status: u16, kind: ErrorKind) -> Self {
        self.kinds.retain(|(s, _)| *s != status);
        self.kinds.push((status, kind));
        self
    }

    /// Adds what the operator can do about `status` to its messages.
    pub fn hint(mut self, status: u16, hint: impl Into<String>) -> Self {
        self.hints.retain(|(s, _)| *s != status);
        self.hints.push((status, hint.into()));
        self
    }

    /// Where the vendor's JSON error bodies hold their message for people
    /// (`{"details": "..."}`); the default is `message`. Read by
    /// [`error_in_body`](Self::error_in_body).
    pub fn message_field(mut self, field: impl Into<String>) -> Self {
        self.message_field = Some(field.into());
        self
    }

    /// The kind `status` means.
    pub fn kind(&self, status: u16) -> ErrorKind {
        self.kinds
            .iter()
            .find(|(s, _)| *s == status)
            .map_or_else(|| default_kind(status), |(_, kind)| *kind)
    }

    /// The hint given for `status`, if any.
    pub fn hint_for(&self, status: u16) -> Option<&str> {
        self.hints
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, hint)| hint.as_str())
    }

    /// The error for a reply with `status` to `what` (`"POST passwords:reset"`),
    /// carrying the vendor's own `message` (a field the vendor meant for people,
    /// never a raw body, which may echo a password) and the status's hint.
    pub fn error(&self, status: u16, what: &str, message: Option<&str>) -> ConnectorError {
        let said = message
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .unwrap_or("no message");
        let mut text = format!("{what}: HTTP {status}: {said}");
        if let Some(hint) = self.hint_for(status) {
            text.push_str(": ");
            text.push_str(hint);
        }
        ConnectorError::new(self.kind(status), text)
    }
}

impl StatusMap {
    /// [`error`](Self::error) for a reply whose body is `body`: the message is the
    /// string in the body's [message field](Self::message_field), if the body is a
    /// JSON object that has one. The rest of the body is never quoted (it may echo
    /// a password). `rekey-http`'s `VendorHttp::checked` calls this.
    ///
    /// ```
    /// use rekey_api::{ErrorKind, StatusMap};
    ///
    /// let statuses = StatusMap::new().on(422, ErrorKind::PolicyRejected);
    /// let body = br#"{"message": "too short", "password": "echoed"}"#;
    /// let error = statuses.error_in_body(422, "PUT password", body);
    /// assert_eq!(error.message, "PUT password: HTTP 422: too short");
    /// assert_eq!(statuses.error_in_body(502, "GET x", b"<html>").message, "GET x: HTTP 502: no message");
    /// ```
    pub fn error_in_body(&self, status: u16, what: &str, body: &[u8]) -> ConnectorError {
        let field = self.message_field.as_deref().unwrap_or("message");
        let body: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let message = body.as_ref().and_then(|b| b.get(field)?.as_str());
        self.error(status, what, message)
    }
}

/// The default table.
fn default_kind(status: u16) -> ErrorKind {
    match status {
        401 | 403 | 407 => ErrorKind::AuthRefused,
        408 => ErrorKind::Transient,
        429 => ErrorKind::RateLimited,
        400..=499 => ErrorKind::Rejected,
        502..=504 => ErrorKind::Transient,
        _ => ErrorKind::Fatal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_definite_only_where_nothing_was_applied() {
        let map = StatusMap::new();
        for (status, kind) in [
            (400, ErrorKind::Rejected),
            (401, ErrorKind::AuthRefused),
            (403, ErrorKind::AuthRefused),
            (404, ErrorKind::Rejected),
            (408, ErrorKind::Transient),
            (415, ErrorKind::Rejected),
            (422, ErrorKind::Rejected),
            (429, ErrorKind::RateLimited),
            (500, ErrorKind::Fatal),
            (503, ErrorKind::Transient),
            (302, ErrorKind::Fatal),
            (200, ErrorKind::Fatal),
        ] {
            assert_eq!(map.kind(status), kind, "{status}");
        }
        for status in [500, 501, 502, 302] {
            assert!(!map.kind(status).definitely_not_applied(), "{status}");
        }
    }

    #[test]
    fn changes_replace_defaults_and_each_other() {
        let map = StatusMap::new()
            .on(404, ErrorKind::InvalidSettings)
            .on(404, ErrorKind::UserNotFound)
            .hint(404, "a")
            .hint(404, "b");
        let error = map.error(404, "GET users/x", Some("  "));
        assert_eq!(error.kind, ErrorKind::UserNotFound);
        assert_eq!(error.message, "GET users/x: HTTP 404: no message: b");
        // Another connector's map is unaffected.
        assert_eq!(StatusMap::new().kind(404), ErrorKind::Rejected);
    }

    #[test]
    fn messages_come_from_the_vendors_field_only() {
        let odin = StatusMap::new().message_field("details");
        let body = br#"{"details": "[Error 4961] rules", "message": "secret-echo"}"#;
        assert_eq!(
            odin.error_in_body(400, "PUT", body).message,
            "PUT: HTTP 400: [Error 4961] rules"
        );
        let plain = StatusMap::new();
        assert_eq!(
            plain
                .error_in_body(400, "PUT", br#"{"message": 7}"#)
                .message,
            "PUT: HTTP 400: no message"
        );
        assert_eq!(
            plain.error_in_body(400, "PUT", br#"["message"]"#).message,
            "PUT: HTTP 400: no message"
        );
    }
}
