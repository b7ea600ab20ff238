//! What the host guarantees about every request, checked once at the plugin
//! boundary so that no connector checks it again.
//!
//! The host builds its requests from the connector's [`Metadata`] and
//! [`Batching`]; a request that breaks them is a bug on the calling side. The SDK
//! glue refuses such a request with [`ErrorKind::Unsupported`](crate::ErrorKind)
//! (definite: nothing was sent) before [`Connector::reset`](crate::Connector::reset)
//! or [`Connector::generate`](crate::Connector::generate) sees it.

use std::collections::HashSet;

use crate::{
    Batching, Capability, ConnectorError, CredentialKind, Metadata, NewPassword, ResetRequest,
};

/// A connector's declarations that bound the requests it gets.
#[derive(Debug, Clone)]
pub(crate) struct RequestShape {
    kinds: Vec<CredentialKind>,
    vendor_reset: bool,
    vendor_values: bool,
    case_insensitive_ids: bool,
    batching: Batching,
}

impl RequestShape {
    pub(crate) fn new(metadata: &Metadata, batching: Batching) -> Self {
        RequestShape {
            kinds: metadata.kinds.clone(),
            vendor_reset: metadata.has(Capability::VendorReset),
            vendor_values: metadata.has(Capability::VendorValues),
            case_insensitive_ids: metadata.case_insensitive_ids,
            batching,
        }
    }

    /// A reset: a declared kind; at most `max_users` users, none twice; a known
    /// value for each unless `VendorReset` is declared; and one value for the whole
    /// batch when `shared_password` is declared.
    pub(crate) fn check_reset(&self, request: &ResetRequest) -> Result<(), ConnectorError> {
        self.check_kind(request.kind)?;
        if request.items.len() > self.batching.max_users {
            return Err(refused(format!(
                "a batch of {} users, and the connector takes at most {} a call",
                request.items.len(),
                self.batching.max_users
            )));
        }
        let mut seen = HashSet::with_capacity(request.items.len());
        for item in &request.items {
            let key = if self.case_insensitive_ids {
                item.user.to_lowercase()
            } else {
                item.user.clone()
            };
            if !seen.insert(key) {
                return Err(refused(format!("user {} twice in one batch", item.user)));
            }
        }
        if !self.vendor_reset
            && request
                .items
                .iter()
                .any(|item| matches!(item.password, NewPassword::VendorGenerated))
        {
            return Err(refused(
                "a vendor-generated password, and the connector does not declare vendor_reset"
                    .into(),
            ));
        }
        if self.batching.shared_password
            && let Some((first, rest)) = request.items.split_first()
            && rest
                .iter()
                .any(|item| !same_value(&item.password, &first.password))
        {
            return Err(refused(
                "different passwords in one batch, and the connector takes one password a call (shared_password)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// A generate call: a declared kind, and `VendorValues` declared.
    pub(crate) fn check_generate(&self, kind: CredentialKind) -> Result<(), ConnectorError> {
        self.check_kind(kind)?;
        if !self.vendor_values {
            return Err(refused(
                "a request for vendor values, and the connector does not declare vendor_values"
                    .into(),
            ));
        }
        Ok(())
    }

    fn check_kind(&self, kind: CredentialKind) -> Result<(), ConnectorError> {
        if self.kinds.contains(&kind) {
            return Ok(());
        }
        let declared: Vec<&str> = self.kinds.iter().map(|k| k.as_str()).collect();
        Err(refused(format!(
            "the {kind} credential kind, and the connector declares only {}",
            declared.join(", ")
        )))
    }
}

fn same_value(a: &NewPassword, b: &NewPassword) -> bool {
    match (a, b) {
        (NewPassword::Known(a), NewPassword::Known(b)) => a.expose() == b.expose(),
        (NewPassword::VendorGenerated, NewPassword::VendorGenerated) => true,
        _ => false,
    }
}

fn refused(what: String) -> ConnectorError {
    ConnectorError::unsupported(format!(
        "request refused before it reached the connector (nothing was sent): {what}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, ResetItem};

    fn request(kind: CredentialKind, items: &[(&str, Option<&str>)]) -> ResetRequest {
        ResetRequest {
            kind,
            items: items
                .iter()
                .map(|(user, value)| ResetItem {
                    user: (*user).into(),
                    password: match value {
                        Some(v) => NewPassword::Known((*v).into()),
                        None => NewPassword::VendorGenerated,
                    },
                })
                .collect(),
        }
    }

    fn metadata() -> Metadata {
        Metadata::new("x", "1", "d").kinds([CredentialKind::Password])
    }

    #[test]
    fn declared_kinds_and_known_values_pass() {
        let shape = RequestShape::new(&metadata(), Batching::up_to(3));
        let ok = request(
            CredentialKind::Password,
            &[("a", Some("A-1")), ("b", Some("B-2"))],
        );
        assert!(shape.check_reset(&ok).is_ok());
        assert!(
            shape
                .check_reset(&request(CredentialKind::Password, &[]))
                .is_ok()
        );
    }

    #[test]
    fn what_the_host_never_sends_is_refused() {
        let shape = RequestShape::new(&metadata().case_insensitive_ids(), Batching::up_to(2));
        let cases = [
            (
                request(CredentialKind::Sip, &[("a", Some("A-1"))]),
                "declares only password",
            ),
            (
                request(CredentialKind::Password, &[("a", None)]),
                "vendor_reset",
            ),
            (
                request(
                    CredentialKind::Password,
                    &[("a", Some("1")), ("b", Some("2")), ("c", Some("3"))],
                ),
                "at most 2",
            ),
            (
                request(
                    CredentialKind::Password,
                    &[("a", Some("1")), ("A", Some("2"))],
                ),
                "twice",
            ),
        ];
        for (request, why) in cases {
            let error = shape.check_reset(&request).unwrap_err();
            assert_eq!(error.kind, ErrorKind::Unsupported);
            assert!(error.kind.definitely_not_applied());
            assert!(error.message.contains(why), "{}", error.message);
            assert!(error.message.contains("nothing was sent"));
        }
        assert!(shape.check_generate(CredentialKind::Password).is_err());
    }

    #[test]
    fn shared_batches_carry_one_value() {
        let meta = metadata().capability(Capability::VendorReset);
        let shape = RequestShape::new(
            &meta,
            Batching {
                max_users: 10,
                shared_password: true,
            },
        );
        let same = request(
            CredentialKind::Password,
            &[("a", Some("S-1")), ("b", Some("S-1"))],
        );
        assert!(shape.check_reset(&same).is_ok());
        let generated = request(CredentialKind::Password, &[("a", None), ("b", None)]);
        assert!(shape.check_reset(&generated).is_ok());
        let mixed = request(CredentialKind::Password, &[("a", Some("S-1")), ("b", None)]);
        let error = shape.check_reset(&mixed).unwrap_err();
        assert!(
            error.message.contains("shared_password"),
            "{}",
            error.message
        );
        let distinct = request(
            CredentialKind::Password,
            &[("a", Some("S-1")), ("b", Some("S-2"))],
        );
        assert!(shape.check_reset(&distinct).is_err());
        // The values are never quoted.
        assert!(!error.message.contains("S-1"));
    }
}
