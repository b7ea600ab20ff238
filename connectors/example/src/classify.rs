//! What Acme's answers mean to rekey: every failure becomes an [`ErrorKind`].
//!
//! This is the most important module of a connector. The host acts on the kind
//! alone: a *definite* kind (`UserNotFound`, `PolicyRejected`, `Rejected`,
//! `AuthRefused`, `InvalidSettings`, ...) tells it the user's password is unchanged,
//! so it drops the new value and reports a failure; an *unknown* kind (`Transient`,
//! `Fatal`) tells it the new value may be in effect, so it keeps the value in the
//! results and retries with the very same one. Calling an applied change "definite"
//! locks a person out; so use a definite kind only when the vendor's answer proves
//! nothing was applied, and when in doubt, choose unknown.
//!
//! Two tools do the mapping: a [`StatusMap`] for HTTP statuses (the SDK's default
//! table, tuned here in one place) and [`item_outcome`] for the per-user statuses
//! of a reset reply.
//!
//! Acme never needs `QuotaExhausted`: a vendor with a daily quota of changes
//! uses it when the quota is spent (nothing in the call applied); the host then
//! stops the job, and a later run carries on. `Unsupported` appears in `api.rs`,
//! for a credential kind Acme does not have.
//!
//! Keep the vendor's own words in the message: the operator sees them in the
//! results file. Never quote a raw reply body (it may echo a password), only the
//! `message` field the vendor meant for people.

use rekey_api::{Applied, ConnectorError, ErrorKind, StatusMap};

use crate::api::{ItemResult, ItemStatus};

/// What Acme's HTTP statuses mean: rekey-api's default table, and the one place
/// this connector changes it. Read the default in
/// [`rekey_api::status_map`]: 401 and 403 stop the job (`AuthRefused`), any other
/// 4xx is a definite refusal (`Rejected`: Acme validates a whole request before it
/// applies any item, its documented contract, so a 400 proves nothing changed),
/// 502/503/504 are retried, and 500 or anything unexpected is *unknown* (`Fatal`:
/// a 500 may come after some items were written, so the host keeps the passwords
/// and retries them as they are).
///
/// 429, 502, 503, 504 and transport failures never get here: `VendorHttp::send`
/// has already made them `RateLimited` or `Transient`, with the server's
/// `Retry-After`, the same way for every connector.
pub(crate) fn statuses() -> StatusMap {
    StatusMap::new()
        // Every path this connector uses exists on an Acme Directory, so a 404
        // means `url` names some other server: the operator's to fix. (An API that
        // answers 404 for an unknown account would say `ErrorKind::UserNotFound`
        // here instead; one that answers 422 for a weak password,
        // `.on(422, ErrorKind::PolicyRejected)`.)
        .on(404, ErrorKind::InvalidSettings)
        .hint(
            404,
            "is url the Acme Directory's root (scheme, host and port)?",
        )
        // What the operator can do about a refused key.
        .hint(401, "the API key was refused; check the target's api_key")
        .hint(
            403,
            "grant the key's service account the users:read and passwords:write scopes",
        )
}

/// One user's outcome from its item in a reset reply.
pub(crate) fn item_outcome(result: ItemResult) -> Result<Applied, ConnectorError> {
    let message = result.message.filter(|m| !m.trim().is_empty());
    let (kind, status) = match result.status {
        // Applied. Acme never returns a value it generated in place
        // (`generate: true`), so `vendor_password` stays empty and the host says
        // so in the results; a vendor that does return it would put it there, and
        // the host would hand it over like its own.
        ItemStatus::Ok => {
            return Ok(Applied {
                vendor_password: None,
                detail: message,
            });
        }
        // Definite: Acme looks the id up before writing anything.
        ItemStatus::NotFound => (ErrorKind::UserNotFound, "not_found"),
        // Definite: the value was checked against the policy and refused.
        ItemStatus::Policy => (ErrorKind::PolicyRejected, "policy"),
        // Definite: Acme refuses to touch service accounts at all.
        ItemStatus::Protected => (ErrorKind::Rejected, "protected"),
        // Unknown: the credential store did not confirm the write, which may still
        // have happened. `Transient` makes the host keep the value and retry with
        // the very same one, which is harmless if the first write did land.
        ItemStatus::Error => (ErrorKind::Transient, "error"),
        // Unknown: a status this connector was not written for (a newer server).
        // Never guess "not applied".
        ItemStatus::Unrecognized => (ErrorKind::Fatal, "a status this connector does not know"),
    };
    let message =
        message.unwrap_or_else(|| format!("the directory answered {status} with no message"));
    Err(ConnectorError::new(kind, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(status: ItemStatus, message: Option<&str>) -> ItemResult {
        ItemResult {
            id: "u1".into(),
            status,
            message: message.map(str::to_owned),
        }
    }

    #[test]
    fn only_proven_refusals_are_definite() {
        for (status, kind) in [
            (ItemStatus::NotFound, ErrorKind::UserNotFound),
            (ItemStatus::Policy, ErrorKind::PolicyRejected),
            (ItemStatus::Protected, ErrorKind::Rejected),
        ] {
            let error = item_outcome(item(status, Some("why"))).unwrap_err();
            assert_eq!(error.kind, kind);
            assert!(error.kind.definitely_not_applied());
            assert_eq!(error.message, "why", "the vendor's own words");
        }
        for status in [ItemStatus::Error, ItemStatus::Unrecognized] {
            let error = item_outcome(item(status, None)).unwrap_err();
            assert!(!error.kind.definitely_not_applied(), "{status:?}");
        }
        let applied = item_outcome(item(ItemStatus::Ok, Some(""))).unwrap();
        assert!(applied.vendor_password.is_none() && applied.detail.is_none());
    }

    #[test]
    fn statuses_map_to_kinds() {
        let statuses = statuses();
        assert_eq!(statuses.kind(401), ErrorKind::AuthRefused);
        assert_eq!(statuses.kind(403), ErrorKind::AuthRefused);
        assert_eq!(statuses.kind(400), ErrorKind::Rejected);
        assert_eq!(statuses.kind(415), ErrorKind::Rejected);
        assert_eq!(statuses.kind(404), ErrorKind::InvalidSettings);
        assert_eq!(statuses.kind(500), ErrorKind::Fatal);
        let error = statuses.error(
            400,
            "POST passwords:reset",
            Some("items must hold 1 to 100 entries"),
        );
        assert_eq!(
            error.message,
            "POST passwords:reset: HTTP 400: items must hold 1 to 100 entries"
        );
        let error = statuses.error(404, "GET whoami", None);
        assert!(
            error.message.ends_with("(scheme, host and port)?"),
            "{}",
            error.message
        );
    }
}
