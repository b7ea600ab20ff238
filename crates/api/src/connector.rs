//! The two traits a connector implements.

use async_trait::async_trait;

use crate::{
    Applied, Batching, CheckReport, ConnectorError, CreateContext, CredentialKind, ErrorKind,
    Metadata, NewPassword, ResetRequest, Secret, Settings, UserOutcome, UserPage,
};

/// A live connection to one target: what the host calls during a job.
///
/// Calls arrive concurrently (up to the target's `concurrency`), so implementations
/// share their session state behind locks. A connector classifies every failure
/// with an [`ErrorKind`](crate::ErrorKind) and never retries on its own, except to
/// refresh an expired token once; retries, backoff and rate limits are the host's.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    /// How resets are grouped into calls. The default is one user a call.
    fn batching(&self) -> Batching {
        Batching::SINGLE
    }

    /// Authenticates against the target (logging in once; later calls reuse the
    /// session) and reports the account the connector acts as.
    async fn check(&self) -> Result<CheckReport, ConnectorError>;

    /// One page of the target's accounts, starting at `cursor` (`None` for the
    /// first page). Pages are bounded: a target that answers with every user at
    /// once is fetched once and handed out in pages.
    async fn list_users(&self, cursor: Option<String>) -> Result<UserPage, ConnectorError> {
        let _ = cursor;
        Err(ConnectorError::unsupported(
            "this connector cannot list users; name them with --user or --users",
        ))
    }

    /// Asks the vendor for `count` new values of `kind`, which the host journals
    /// and then sets with [`reset`](Self::reset) (capability
    /// [`VendorValues`](crate::Capability::VendorValues)).
    async fn generate(
        &self,
        kind: CredentialKind,
        count: usize,
    ) -> Result<Vec<Secret>, ConnectorError> {
        let _ = (kind, count);
        Err(ConnectorError::unsupported(
            "this connector cannot ask the vendor for new values",
        ))
    }

    /// Resets a batch, giving one outcome per user. An `Err` means the whole call
    /// failed and says nothing about individual users (authentication refused,
    /// rate limited, target unreachable, quota spent).
    ///
    /// What the host guarantees, and the SDK enforces before this is called (so a
    /// connector does not check it again): the kind is one the metadata declares;
    /// the batch holds at most [`Batching::max_users`] users, none twice (compared
    /// as [`Metadata::case_insensitive_ids`] says); every value is
    /// [`NewPassword::Known`] unless the connector declares
    /// [`Capability::VendorReset`](crate::Capability::VendorReset) (so
    /// [`NewPassword::value`] needs no guard); and with
    /// [`Batching::shared_password`] every user of the batch gets the same value.
    /// [`generate`](Self::generate) likewise only gets declared kinds, and only
    /// when [`Capability::VendorValues`](crate::Capability::VendorValues) is
    /// declared.
    async fn reset(&self, request: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError>;
}

/// The static side of a connector: what it is and how to create one. This is the
/// type the [`export_connector!`](crate::export_connector) macro exports.
pub trait Plugin: Connector + Sized {
    /// The connector's description and settings schema.
    fn metadata() -> Metadata;

    /// Creates a connector for one target from its checked settings. Must not
    /// touch the network: [`Connector::check`] does that.
    fn create(settings: Settings, context: CreateContext) -> Result<Self, ConnectorError>;
}

/// Resets a request's users one at a time with `set`, giving one outcome each: for
/// connectors whose vendor takes one user a request.
///
/// Once the target refuses the connector's session
/// ([`ErrorKind::AuthRefused`]), the users left get the same error without being
/// sent: every further call would be refused too, and the host re-authenticates.
pub async fn reset_one_by_one<F, Fut>(request: ResetRequest, mut set: F) -> Vec<UserOutcome>
where
    F: FnMut(String, NewPassword) -> Fut,
    Fut: Future<Output = Result<Applied, ConnectorError>>,
{
    let mut outcomes = Vec::with_capacity(request.items.len());
    let mut refused: Option<ConnectorError> = None;
    for item in request.items {
        let result = match &refused {
            Some(error) => Err(error.clone()),
            None => set(item.user.clone(), item.password).await,
        };
        if let Err(error) = &result
            && error.kind == ErrorKind::AuthRefused
        {
            refused = Some(error.clone());
        }
        outcomes.push(UserOutcome {
            user: item.user,
            result,
        });
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ResetItem;

    #[tokio::test]
    async fn one_by_one_stops_sending_after_a_refused_session() {
        let request = ResetRequest {
            kind: CredentialKind::Password,
            items: ["a", "b", "c"]
                .map(|u| ResetItem {
                    user: u.into(),
                    password: NewPassword::Known("Pw-1234".into()),
                })
                .to_vec(),
        };
        let mut sent = Vec::new();
        let outcomes = reset_one_by_one(request, |user, _| {
            sent.push(user.clone());
            async move {
                if user == "b" {
                    Err(ConnectorError::auth_refused("token revoked"))
                } else {
                    Ok(Applied::default())
                }
            }
        })
        .await;
        assert_eq!(sent, ["a", "b"]);
        assert!(outcomes[0].result.is_ok());
        assert_eq!(
            outcomes[2].result.as_ref().unwrap_err().kind,
            ErrorKind::AuthRefused
        );
        assert_eq!(
            outcomes.iter().map(|o| o.user.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }
}
