//! [`match_per_user`]: one outcome per user from a vendor's per-user reply.
//!
//! A vendor that takes many users in one request usually answers with one result
//! per user, keyed by id. The host needs exactly one outcome per user of the
//! request, so results are matched by id, never by position: a reply that leaves a
//! user out must not shift another user's result onto it. A user the reply does not
//! mention gets an *unknown* outcome ([`Fatal`](crate::ErrorKind::Fatal): the
//! request was accepted, so the change may have been applied, and the host keeps the
//! password); a result for a user the request did not hold is ignored and logged.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::{Applied, ConnectorError, UserOutcome};

/// How user ids compare when a reply is matched to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdCase {
    /// Exactly, byte for byte.
    Exact,
    /// Without regard to case (e-mail addresses, directory login ids): the
    /// connector declares `case_insensitive_ids`.
    Insensitive,
}

impl IdCase {
    fn key(self, id: &str) -> String {
        match self {
            IdCase::Exact => id.to_owned(),
            IdCase::Insensitive => id.to_lowercase(),
        }
    }
}

/// Matches `replies` (each a user id and that user's result in the vendor's
/// terms) to `users` (the request's, in order), and turns each matched result into
/// an outcome with `outcome`. Returns one outcome per user, in the request's order.
///
/// ```
/// use rekey_api::{Applied, ConnectorError, ErrorKind, IdCase, match_per_user};
///
/// // The vendor answered for b and for someone not asked about, but not for a.
/// let replies = vec![("b".to_owned(), "ok"), ("zed".to_owned(), "ok")];
/// let outcomes = match_per_user(["a", "b"], replies, IdCase::Exact, |status| match status {
///     "ok" => Ok(Applied::default()),
///     other => Err(ConnectorError::rejected(other)),
/// });
/// assert_eq!(outcomes.len(), 2);
/// let missing = outcomes[0].result.as_ref().unwrap_err();
/// assert_eq!(missing.kind, ErrorKind::Fatal);
/// assert!(!missing.kind.definitely_not_applied());
/// assert!(outcomes[1].result.is_ok());
/// ```
pub fn match_per_user<'a, R>(
    users: impl IntoIterator<Item = &'a str>,
    replies: impl IntoIterator<Item = (String, R)>,
    ids: IdCase,
    outcome: impl FnMut(R) -> Result<Applied, ConnectorError>,
) -> Vec<UserOutcome> {
    match_per_user_by(users, replies, |id| ids.key(id), outcome)
}

/// [`match_per_user`] for ids that compare in the vendor's own way: two ids name
/// the same user when `key` makes the same string of them (a directory that
/// writes a GUID with or without braces, say).
///
/// ```
/// use rekey_api::{Applied, match_per_user_by};
///
/// let bare = |id: &str| id.trim_matches(['{', '}']).to_ascii_lowercase();
/// let replies = vec![("{AB-12}".to_owned(), ())];
/// let outcomes = match_per_user_by(["ab-12"], replies, bare, |()| Ok(Applied::default()));
/// assert!(outcomes[0].result.is_ok());
/// assert_eq!(outcomes[0].user, "ab-12", "the request's spelling");
/// ```
pub fn match_per_user_by<'a, R>(
    users: impl IntoIterator<Item = &'a str>,
    replies: impl IntoIterator<Item = (String, R)>,
    key: impl Fn(&str) -> String,
    mut outcome: impl FnMut(R) -> Result<Applied, ConnectorError>,
) -> Vec<UserOutcome> {
    let mut by_id: HashMap<String, R> = HashMap::new();
    for (id, reply) in replies {
        match by_id.entry(key(&id)) {
            Entry::Occupied(_) => {
                tracing::warn!(user = %id, "the vendor's reply holds this user twice; the first result counts");
            }
            Entry::Vacant(slot) => {
                slot.insert(reply);
            }
        }
    }
    let outcomes: Vec<UserOutcome> = users
        .into_iter()
        .map(|user| UserOutcome {
            user: user.to_owned(),
            result: match by_id.remove(&key(user)) {
                Some(reply) => outcome(reply),
                None => Err(ConnectorError::fatal(
                    "the vendor's reply has no result for this user; whether it was reset is unknown",
                )),
            },
        })
        .collect();
    for extra in by_id.keys() {
        tracing::warn!(user = %extra, "the vendor's reply holds a result for a user the request did not hold; ignored");
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn ok(_: u8) -> Result<Applied, ConnectorError> {
        Ok(Applied::default())
    }

    #[test]
    fn results_are_matched_by_id_not_position() {
        let replies = vec![("c".to_owned(), 3), ("a".to_owned(), 1)];
        let outcomes = match_per_user(["a", "b", "c"], replies, IdCase::Exact, |n| {
            Ok(Applied {
                vendor_password: None,
                detail: Some(n.to_string()),
            })
        });
        let details: Vec<Option<String>> = outcomes
            .iter()
            .map(|o| o.result.as_ref().ok().and_then(|a| a.detail.clone()))
            .collect();
        assert_eq!(details, [Some("1".into()), None, Some("3".into())]);
        assert_eq!(
            outcomes[1].result.as_ref().unwrap_err().kind,
            ErrorKind::Fatal
        );
        assert_eq!(outcomes[2].user, "c");
    }

    #[test]
    fn case_follows_the_connectors_ids() {
        let replies = || vec![("JSMITH".to_owned(), 0)];
        let exact = match_per_user(["jsmith"], replies(), IdCase::Exact, ok);
        assert!(exact[0].result.is_err());
        let insensitive = match_per_user(["jsmith"], replies(), IdCase::Insensitive, ok);
        assert!(insensitive[0].result.is_ok());
        assert_eq!(insensitive[0].user, "jsmith", "the request's spelling");
    }

    #[test]
    fn duplicates_keep_the_first_result() {
        let replies = vec![("a".to_owned(), 1), ("a".to_owned(), 2)];
        let outcomes = match_per_user(["a"], replies, IdCase::Exact, |n| {
            if n == 1 {
                Ok(Applied::default())
            } else {
                Err(ConnectorError::rejected("second"))
            }
        });
        assert!(outcomes[0].result.is_ok());
    }
}
