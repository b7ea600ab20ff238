//! Acme Directory's JSON shapes: the only module that knows them.
//!
//! Keep a vendor's wire format in one module of plain structs, apart from the code
//! that decides what the answers mean ([`classify`](crate::classify)). Decode
//! leniently where the protocol allows it (`#[serde(default)]` on what the vendor may
//! leave out, unknown fields ignored) and fail clearly where it does not: a reply
//! this module cannot read becomes a `Fatal` error, described by position only.

use rekey_api::{ConnectorError, CredentialKind, Secret};
use serde::{Deserialize, Serialize};

/// The API's own path under the server's root (the target's `url`).
pub(crate) const API_PATH: &str = "/directory/v1";

/// The most items one `:reset` takes, and the most values one `:generate` makes.
pub(crate) const MAX_ITEMS: usize = 100;

/// The largest `limit` the users listing accepts.
pub(crate) const MAX_PAGE: usize = 200;

/// The scope a key needs to generate and set credentials.
pub(crate) const SCOPE_WRITE: &str = "passwords:write";

/// Where one credential kind lives in the API. Acme gives each kind its own pair of
/// endpoints and its own field name; mapping rekey's [`CredentialKind`] onto them in
/// one place keeps the rest of the connector kind-agnostic.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Endpoints {
    /// The kind, for messages.
    pub kind: CredentialKind,
    /// `POST` path segment that sets values.
    pub reset: &'static str,
    /// `POST` path segment that makes values.
    pub generate: &'static str,
}

impl Endpoints {
    /// The endpoints of `kind`; `Unsupported` for a kind Acme does not have.
    pub(crate) fn of(kind: CredentialKind) -> Result<Endpoints, ConnectorError> {
        let (reset, generate) = match kind {
            CredentialKind::Password => ("passwords:reset", "passwords:generate"),
            CredentialKind::Passcode => ("passcodes:reset", "passcodes:generate"),
            // Never reached through the host: the SDK refuses kinds the metadata
            // does not declare before `reset` or `generate` runs. The match must
            // still say something; `Unsupported` is definite, and nothing is sent.
            CredentialKind::Sip => {
                return Err(ConnectorError::unsupported(
                    "Acme Directory has no SIP passwords",
                ));
            }
        };
        Ok(Endpoints {
            kind,
            reset,
            generate,
        })
    }

    /// Why Acme would refuse `value` as malformed, if it would.
    ///
    /// This is the protocol's shape, not the directory's password policy: a value
    /// of the wrong shape makes Acme refuse the *whole* request (HTTP 400), so the
    /// connector checks each item first and fails only that user. The policy
    /// (length, character classes) is left to the server, which reports it per
    /// user; copying it here would only drift from the real one.
    pub(crate) fn malformed(&self, value: &Secret) -> Option<String> {
        let value = value.expose();
        let well_formed = match self.kind {
            CredentialKind::Passcode => value.bytes().all(|b| b.is_ascii_digit()),
            _ => value.chars().all(|c| c == ' ' || c.is_ascii_graphic()),
        };
        if !value.is_empty() && well_formed {
            return None;
        }
        Some(match self.kind {
            CredentialKind::Passcode => "a passcode must be digits only; it was not sent".into(),
            _ => "a password must be printable ASCII and not empty; it was not sent".into(),
        })
    }
}

/// `GET whoami`: the API key's own service account.
#[derive(Debug, Deserialize)]
pub(crate) struct WhoAmI {
    pub id: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// `GET users?limit=&cursor=`: one page of the directory.
#[derive(Debug, Deserialize)]
pub(crate) struct UsersPage {
    pub users: Vec<User>,
    /// The opaque cursor of the next page; `null` after the last.
    #[serde(default)]
    pub next: Option<String>,
}

/// One account in a [`UsersPage`].
#[derive(Debug, Deserialize)]
pub(crate) struct User {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub disabled: bool,
}

/// The body of `POST passwords:generate` and `passcodes:generate`.
#[derive(Debug, Serialize)]
pub(crate) struct GenerateBody {
    pub count: usize,
}

/// Their reply: `{"passwords": [...]}` or `{"passcodes": [...]}`. Values arrive as
/// [`Secret`]s straight from the JSON, so they never sit in a plain `String`.
#[derive(Deserialize)]
pub(crate) struct Generated {
    #[serde(default)]
    pub passwords: Option<Vec<Secret>>,
    #[serde(default)]
    pub passcodes: Option<Vec<Secret>>,
}

/// The body of `POST passwords:reset` and `passcodes:reset`.
#[derive(Serialize)]
pub(crate) struct ResetBody<'a> {
    pub items: Vec<ResetItem<'a>>,
}

/// One item: `{"id", "password"}`, `{"id", "passcode"}` or `{"id", "generate": true}`.
/// It borrows the plaintext only for as long as the body is being serialized.
#[derive(Serialize)]
pub(crate) struct ResetItem<'a> {
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passcode: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub generate: bool,
}

impl<'a> ResetItem<'a> {
    /// The item for `user`: a known `value`, or `None` to let Acme make one.
    pub(crate) fn new(kind: CredentialKind, user: &'a str, value: Option<&'a Secret>) -> Self {
        let value = value.map(Secret::expose);
        let passcode = kind == CredentialKind::Passcode;
        ResetItem {
            id: user,
            password: value.filter(|_| !passcode),
            passcode: value.filter(|_| passcode),
            generate: value.is_none(),
        }
    }
}

/// The reply to a reset: one result per item, in order.
#[derive(Debug, Deserialize)]
pub(crate) struct ResetReply {
    pub results: Vec<ItemResult>,
}

/// One item's outcome.
#[derive(Debug, Deserialize)]
pub(crate) struct ItemResult {
    pub id: String,
    pub status: ItemStatus,
    #[serde(default)]
    pub message: Option<String>,
}

/// The statuses Acme documents, and a catch-all so that a newer server's new status
/// is read (and treated as "outcome unknown") rather than making the whole reply
/// unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ItemStatus {
    Ok,
    NotFound,
    Policy,
    Protected,
    Error,
    #[serde(other)]
    Unrecognized,
}

/// Every error reply: `{"error": code, "message": text}`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_carry_the_field_of_their_kind() {
        let value = Secret::from("12345678");
        let passcode = ResetItem::new(CredentialKind::Passcode, "u1", Some(&value));
        assert_eq!(
            serde_json::to_string(&passcode).unwrap(),
            r#"{"id":"u1","passcode":"12345678"}"#
        );
        let password = ResetItem::new(CredentialKind::Password, "u1", Some(&value));
        assert_eq!(
            serde_json::to_string(&password).unwrap(),
            r#"{"id":"u1","password":"12345678"}"#
        );
        let generated = ResetItem::new(CredentialKind::Password, "u1", None);
        assert_eq!(
            serde_json::to_string(&generated).unwrap(),
            r#"{"id":"u1","generate":true}"#
        );
    }

    #[test]
    fn shapes_are_checked_per_kind() {
        let password = Endpoints::of(CredentialKind::Password).unwrap();
        let passcode = Endpoints::of(CredentialKind::Passcode).unwrap();
        assert!(password.malformed(&"Abc def-123".into()).is_none());
        assert!(password.malformed(&"".into()).is_some());
        assert!(password.malformed(&"tab\there".into()).is_some());
        assert!(password.malformed(&"café".into()).is_some());
        assert!(passcode.malformed(&"20481632".into()).is_none());
        assert!(passcode.malformed(&"2048-1632".into()).is_some());
        assert_eq!(
            Endpoints::of(CredentialKind::Sip).unwrap_err().kind,
            rekey_api::ErrorKind::Unsupported
        );
    }

    #[test]
    fn unknown_statuses_are_read_not_refused() {
        let reply: ResetReply = serde_json::from_str(
            r#"{"results":[{"id":"a","status":"ok"},{"id":"b","status":"queued","message":"later"}]}"#,
        )
        .unwrap();
        assert_eq!(reply.results[0].status, ItemStatus::Ok);
        assert_eq!(reply.results[1].status, ItemStatus::Unrecognized);
    }
}
