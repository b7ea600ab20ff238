//! The error taxonomy connectors report and the host acts on.
//!
//! A connector never makes the host parse a vendor's message text to decide what
//! to do: it classifies each failure into an [`ErrorKind`], and keeps the vendor's
//! own words in the message for the operator.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What went wrong, as far as the host needs to know to act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The target refused the connector's own credentials or token (bad admin
    /// password, revoked token, missing administrator rights). The host
    /// re-authenticates once, then stops the job: every further call would fail too.
    AuthRefused,
    /// The user does not exist on the target. Definite: not retried.
    UserNotFound,
    /// The target rejected the new password under its password policy. Definite.
    PolicyRejected,
    /// The target refused the change for this user for another or an unstated
    /// reason (its message says which). Definite.
    Rejected,
    /// The target asked the caller to slow down; see [`ConnectorError::retry_after`].
    /// Nothing was applied. Retried after a pause.
    RateLimited,
    /// A passing failure: connection refused or reset, timeout, 502/503/504. The
    /// request may or may not have been applied, so the host retries it with the
    /// very same password.
    Transient,
    /// The target's quota of changes is spent (a daily API limit). Nothing in this
    /// call was applied. The host stops the job; a later run carries on.
    QuotaExhausted,
    /// The connector does not support this operation or credential kind.
    Unsupported,
    /// The settings given to the connector are unusable.
    InvalidSettings,
    /// The call failed in a way that retrying will not mend, for instance an
    /// unreadable or unexpected vendor reply. For a reset, whether the target
    /// applied the change is unknown.
    Fatal,
    /// The connector panicked while handling the call (reported by the host).
    Panicked,
    /// The call was cancelled before it completed (reported by the host).
    Cancelled,
}

impl ErrorKind {
    /// Whether a failed reset of this kind definitely left the user's password as it
    /// was. When this is false the new password may be in effect, and the host must
    /// keep it.
    pub fn definitely_not_applied(self) -> bool {
        matches!(
            self,
            ErrorKind::AuthRefused
                | ErrorKind::UserNotFound
                | ErrorKind::PolicyRejected
                | ErrorKind::Rejected
                | ErrorKind::RateLimited
                | ErrorKind::QuotaExhausted
                | ErrorKind::Unsupported
                | ErrorKind::InvalidSettings
        )
    }

    /// Whether the host may retry the call (with the same password) after a pause.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::RateLimited | ErrorKind::Transient)
    }

    /// A short, stable name (`auth_refused`, `user_not_found`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::AuthRefused => "auth_refused",
            ErrorKind::UserNotFound => "user_not_found",
            ErrorKind::PolicyRejected => "policy_rejected",
            ErrorKind::Rejected => "rejected",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Transient => "transient",
            ErrorKind::QuotaExhausted => "quota_exhausted",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::InvalidSettings => "invalid_settings",
            ErrorKind::Fatal => "fatal",
            ErrorKind::Panicked => "panicked",
            ErrorKind::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ErrorKind::AuthRefused => "authentication refused",
            ErrorKind::UserNotFound => "user not found",
            ErrorKind::PolicyRejected => "password rejected by policy",
            ErrorKind::Rejected => "rejected",
            ErrorKind::RateLimited => "rate limited",
            ErrorKind::Transient => "transient failure",
            ErrorKind::QuotaExhausted => "quota exhausted",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::InvalidSettings => "invalid settings",
            ErrorKind::Fatal => "failed",
            ErrorKind::Panicked => "connector panicked",
            ErrorKind::Cancelled => "cancelled",
        };
        f.write_str(text)
    }
}

/// An error from a connector: its [`ErrorKind`], a message for the operator (the
/// vendor's own text where there is one, never a secret), and for
/// [`ErrorKind::RateLimited`] or [`ErrorKind::Transient`] an optional pause the
/// target asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ConnectorError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Human-readable detail.
    pub message: String,
    /// How long the target asked the caller to wait, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ConnectorError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ConnectorError {
            kind,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    /// Adds the pause the target asked for.
    pub fn with_retry_after(mut self, pause: Option<Duration>) -> Self {
        self.retry_after_ms = pause.map(|p| u64::try_from(p.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// The pause the target asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after_ms.map(Duration::from_millis)
    }

    /// [`ErrorKind::AuthRefused`].
    pub fn auth_refused(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AuthRefused, message)
    }

    /// [`ErrorKind::UserNotFound`].
    pub fn user_not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::UserNotFound, message)
    }

    /// [`ErrorKind::PolicyRejected`].
    pub fn policy_rejected(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PolicyRejected, message)
    }

    /// [`ErrorKind::Rejected`].
    pub fn rejected(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Rejected, message)
    }

    /// [`ErrorKind::Transient`].
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transient, message)
    }

    /// [`ErrorKind::Fatal`].
    pub fn fatal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Fatal, message)
    }

    /// [`ErrorKind::Unsupported`].
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// [`ErrorKind::InvalidSettings`].
    pub fn invalid_settings(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidSettings, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_is_stable() {
        let err = ConnectorError::new(ErrorKind::RateLimited, "slow down")
            .with_retry_after(Some(Duration::from_secs(2)));
        let json = serde_json::to_string(&err).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"rate_limited","message":"slow down","retry_after_ms":2000}"#
        );
        let back: ConnectorError = serde_json::from_str(&json).unwrap();
        assert_eq!(back, err);
        assert_eq!(back.retry_after(), Some(Duration::from_secs(2)));
    }

    #[test]
    fn transient_failures_may_have_applied() {
        assert!(!ErrorKind::Transient.definitely_not_applied());
        assert!(!ErrorKind::Fatal.definitely_not_applied());
        assert!(!ErrorKind::Panicked.definitely_not_applied());
        assert!(ErrorKind::PolicyRejected.definitely_not_applied());
        assert!(ErrorKind::Transient.is_retryable());
        assert!(!ErrorKind::UserNotFound.is_retryable());
    }
}
