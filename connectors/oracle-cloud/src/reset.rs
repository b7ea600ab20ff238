//! Resetting a batch: known values through `manual-reset-pwd`, vendor-made ones
//! through `auto-reset-pwd`, each settled user by user with [`bisect::settle`].

use std::collections::HashMap;

use rekey_api::{
    Applied, ConnectorError, ErrorKind, IdCase, NewPassword, ResetItem, Secret, match_per_user,
};
use rekey_http::StatusCode;

use crate::OracleCloud;
use crate::api::{CharArray, ManualEntry, names_identity_system, vendor_text};
use crate::bisect::{self, Batch, Refusal, RefusalKind, Verdict};
use crate::directory::Directory;

/// What an applied vendor-made reset tells the operator.
const VENDOR_MAILS: &str = "the vendor e-mails the user a new password";

/// A user whose password is set to a known value.
pub(crate) struct ManualItem {
    login_id: String,
    password: Secret,
}

/// A user whose password the vendor makes.
pub(crate) struct AutoItem {
    login_id: String,
}

/// Resets `items`, one outcome per item, in order.
pub(crate) async fn reset(
    connector: &OracleCloud,
    directory: &Directory,
    items: &[ResetItem],
) -> Vec<Result<Applied, ConnectorError>> {
    let mut outcomes: Vec<Option<Result<Applied, ConnectorError>>> =
        items.iter().map(|_| None).collect();
    let mut manual = Vec::new();
    let mut auto = Vec::new();
    // No login id is in a batch twice (the SDK refuses such a batch).
    for (index, item) in items.iter().enumerate() {
        let login_id = directory
            .canonical(&item.user)
            .unwrap_or(&item.user)
            .to_owned();
        match &item.password {
            NewPassword::Known(password) => match refuse_value(password) {
                Some(error) => outcomes[index] = Some(Err(error)),
                None => manual.push((
                    index,
                    ManualItem {
                        login_id,
                        password: password.clone(),
                    },
                )),
            },
            NewPassword::VendorGenerated => auto.push((index, AutoItem { login_id })),
        }
    }

    let (manual_index, manual): (Vec<usize>, Vec<ManualItem>) = manual.into_iter().unzip();
    let manual_outcomes = bisect::settle(
        &ManualReset {
            connector,
            directory,
        },
        &manual,
    )
    .await;
    let stop = manual_outcomes
        .iter()
        .filter_map(|o| o.as_ref().err())
        .find(|e| matches!(e.kind, ErrorKind::AuthRefused | ErrorKind::RateLimited))
        .cloned();
    let (auto_index, auto): (Vec<usize>, Vec<AutoItem>) = auto.into_iter().unzip();
    let auto_outcomes = match stop {
        // Nothing is sent after a refusal of the credentials or a rate limit.
        Some(error) => auto.iter().map(|_| Err(error.clone())).collect(),
        None => {
            bisect::settle(
                &AutoReset {
                    connector,
                    directory,
                },
                &auto,
            )
            .await
        }
    };
    for (index, outcome) in manual_index
        .into_iter()
        .zip(manual_outcomes)
        .chain(auto_index.into_iter().zip(auto_outcomes))
    {
        outcomes[index] = Some(outcome);
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err(ConnectorError::fatal("internal error: no outcome"))))
        .collect()
}

/// Why a known value cannot be sent at all, if it cannot.
fn refuse_value(password: &Secret) -> Option<ConnectorError> {
    let value = password.expose();
    if value.is_empty() {
        return Some(ConnectorError::rejected(
            "the new password is empty; it was not sent",
        ));
    }
    // The message does not show the character: it is part of a password.
    (!value.chars().all(|c| crate::password_rules().charset.allows(c))).then(|| {
        ConnectorError::rejected(
            "Primavera Administration takes only printable ASCII characters in passwords, and the new password holds another character; it was not sent",
        )
    })
}

/// The verdict on a reply that is not a success: a whole-batch refusal (`400`, or
/// a `500` naming the identity system), or a failure.
fn refusal_or_failure(
    connector: &OracleCloud,
    what: &str,
    status: StatusCode,
    body: &[u8],
    secrets: &[&str],
) -> Verdict {
    let text = vendor_text(body, secrets);
    match status {
        StatusCode::BAD_REQUEST => Verdict::Refused(Refusal {
            kind: RefusalKind::InvalidInput,
            message: text,
        }),
        StatusCode::INTERNAL_SERVER_ERROR if names_identity_system(&text) => {
            Verdict::Refused(Refusal {
                kind: RefusalKind::IdentitySystem,
                message: text,
            })
        }
        _ => Verdict::Failed(connector.failure(status, what, &text)),
    }
}

/// The outcome of a lone user refused with `400`: unknown to the tenant when the
/// user list lacks the login id (proof enough), else refused for the vendor's
/// unstated reason.
fn invalid_input(directory: &Directory, login_id: &str, message: String) -> ConnectorError {
    if directory.contains(login_id) {
        ConnectorError::rejected(message)
    } else {
        ConnectorError::user_not_found(format!(
            "{message} ({login_id} is not in the tenant's user list)"
        ))
    }
}

/// `PUT user/manual-reset-pwd/{notify}`.
struct ManualReset<'a> {
    connector: &'a OracleCloud,
    directory: &'a Directory,
}

impl Batch for ManualReset<'_> {
    type Item = ManualItem;

    async fn send(&self, items: &[&ManualItem]) -> Verdict {
        let body: Vec<ManualEntry> = items
            .iter()
            .map(|item| ManualEntry {
                login_id: &item.login_id,
                password: CharArray(item.password.expose()),
            })
            .collect();
        let notify = if self.connector.notify {
            "true"
        } else {
            "false"
        };
        let response = match self
            .connector
            .put(&["user", "manual-reset-pwd", notify], &body)
            .await
        {
            Ok(response) => response,
            Err(error) => return Verdict::Failed(error),
        };
        let status = response.status();
        if status.is_success() {
            // Every entry is set. The echo of users is not needed (and may hold
            // passwords, as the documented example does): it is read and dropped,
            // and an error reading it changes nothing.
            let _ = self.connector.http.body(response).await;
            return Verdict::PerUser(items.iter().map(|_| Ok(Applied::default())).collect());
        }
        let secrets: Vec<&str> = items.iter().map(|i| i.password.expose()).collect();
        match self.connector.http.body(response).await {
            Ok(reply) => refusal_or_failure(
                self.connector,
                "PUT user/manual-reset-pwd",
                status,
                &reply,
                &secrets,
            ),
            Err(error) => Verdict::Failed(error),
        }
    }

    fn suspect(&self, item: &ManualItem) -> bool {
        !self.directory.contains(&item.login_id)
    }

    fn alone(&self, item: &ManualItem, refusal: Refusal) -> ConnectorError {
        match refusal.kind {
            RefusalKind::InvalidInput => {
                invalid_input(self.directory, &item.login_id, refusal.message)
            }
            RefusalKind::IdentitySystem => ConnectorError::policy_rejected(refusal.message),
        }
    }
}

/// `PUT user/auto-reset-pwd`.
struct AutoReset<'a> {
    connector: &'a OracleCloud,
    directory: &'a Directory,
}

impl Batch for AutoReset<'_> {
    type Item = AutoItem;

    async fn send(&self, items: &[&AutoItem]) -> Verdict {
        let ids: Vec<&str> = items.iter().map(|i| i.login_id.as_str()).collect();
        let response = match self.connector.put(&["user", "auto-reset-pwd"], &ids).await {
            Ok(response) => response,
            Err(error) => return Verdict::Failed(error),
        };
        let status = response.status();
        let reply = match self.connector.http.body(response).await {
            Ok(reply) => reply,
            Err(error) => return Verdict::Failed(error),
        };
        if !status.is_success() {
            return refusal_or_failure(
                self.connector,
                "PUT user/auto-reset-pwd",
                status,
                &reply,
                &[],
            );
        }
        match serde_json::from_slice::<HashMap<String, Option<String>>>(&reply) {
            Ok(messages) => Verdict::PerUser(
                match_per_user(
                    items.iter().map(|item| item.login_id.as_str()),
                    messages,
                    IdCase::Insensitive,
                    auto_outcome,
                )
                .into_iter()
                .map(|outcome| outcome.result)
                .collect(),
            ),
            Err(error) => Verdict::Failed(ConnectorError::fatal(format!(
                "unreadable reply to auto-reset-pwd (HTTP {status}): {}; whether the passwords were reset is unknown",
                rekey_api::json_error_position(&error)
            ))),
        }
    }

    fn suspect(&self, item: &AutoItem) -> bool {
        !self.directory.contains(&item.login_id)
    }

    fn alone(&self, item: &AutoItem, refusal: Refusal) -> ConnectorError {
        match refusal.kind {
            RefusalKind::InvalidInput => {
                invalid_input(self.directory, &item.login_id, refusal.message)
            }
            RefusalKind::IdentitySystem => ConnectorError::rejected(refusal.message),
        }
    }
}

/// One user's outcome from its message in auto-reset's `{loginId: message}` map
/// (matched to the user by [`match_per_user`], which makes a user the reply does
/// not mention an unknown outcome). An empty (or null) message means the reset was
/// done, as does `Success`, the single-user endpoint's word \[INF\]; any other
/// message is the vendor's refusal.
fn auto_outcome(message: Option<String>) -> Result<Applied, ConnectorError> {
    let message = message.as_deref().unwrap_or_default().trim();
    if message.is_empty() || message.eq_ignore_ascii_case("success") {
        Ok(Applied {
            vendor_password: None,
            detail: Some(VENDOR_MAILS.to_owned()),
        })
    } else {
        Err(ConnectorError::rejected(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_outside_printable_ascii_are_refused() {
        assert!(refuse_value(&"Plain ~ASCII-1".into()).is_none());
        for bad in ["", "Pässword-1", "tab\there", "emoji-🔑"] {
            let error = refuse_value(&bad.into()).unwrap();
            assert_eq!(error.kind, ErrorKind::Rejected);
            assert!(!error.message.contains('ä'));
        }
    }

    #[test]
    fn auto_reset_messages() {
        let messages: HashMap<String, Option<String>> = serde_json::from_str(
            r#"{"JSMITH":"","DPATEL":null,"AB":"Success","LOCKED":"User is locked"}"#,
        )
        .unwrap();
        let users = ["jsmith", "DPATEL", "AB", "LOCKED", "MISSING"];
        let outcomes = match_per_user(users, messages, IdCase::Insensitive, auto_outcome);
        for ok in &outcomes[..3] {
            let applied = ok.result.as_ref().unwrap();
            assert!(applied.vendor_password.is_none());
            assert_eq!(applied.detail.as_deref(), Some(VENDOR_MAILS));
        }
        let error = outcomes[3].result.as_ref().unwrap_err();
        assert_eq!(
            (error.kind, error.message.as_str()),
            (ErrorKind::Rejected, "User is locked")
        );
        assert!(
            !outcomes[4]
                .result
                .as_ref()
                .unwrap_err()
                .kind
                .definitely_not_applied()
        );
    }
}
