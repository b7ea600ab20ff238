//! Connectors reached through the ABI's messages, whether they run in a library
//! ([`ffi`](crate::ffi)) or in a program ([`program`](crate::program)).
//!
//! A [`Transport`] carries one request to the connector and brings its reply back;
//! [`WireConnector`] turns the [`Connector`] calls into those requests, once for
//! both transports, so that the engine cannot tell them apart.

use async_trait::async_trait;
use rekey_abi::protocol::{GenerateReply, Request, ResetReply, WireItem};
use rekey_api::{
    Batching, CheckReport, Connector, ConnectorError, CredentialKind, ResetRequest, Secret,
    UserOutcome, UserPage,
};
use serde::de::DeserializeOwned;

/// Carries one request to a connector and brings its reply back.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends `request` and reads the reply as `T`; `what` names the reply in
    /// errors ("check reply").
    async fn call<T: DeserializeOwned + Send + 'static>(
        &self,
        request: &Request,
        what: &str,
    ) -> Result<T, ConnectorError>;
}

/// A connector behind a [`Transport`], seen through the [`Connector`] trait.
#[derive(Debug)]
pub struct WireConnector<T> {
    transport: T,
    batching: Batching,
}

impl<T> WireConnector<T> {
    /// A connector that batches as `batching` says (at least one user a batch).
    pub(crate) fn new(transport: T, batching: Batching) -> Self {
        WireConnector {
            transport,
            batching: Batching {
                max_users: batching.max_users.max(1),
                ..batching
            },
        }
    }
}

#[async_trait]
impl<T: Transport + 'static> Connector for WireConnector<T> {
    fn batching(&self) -> Batching {
        self.batching
    }

    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        self.transport.call(&Request::Check, "check reply").await
    }

    async fn list_users(&self, cursor: Option<String>) -> Result<UserPage, ConnectorError> {
        self.transport
            .call(&Request::ListUsers { cursor }, "list_users reply")
            .await
    }

    async fn generate(
        &self,
        kind: CredentialKind,
        count: usize,
    ) -> Result<Vec<Secret>, ConnectorError> {
        let reply: GenerateReply = self
            .transport
            .call(&Request::Generate { kind, count }, "generate reply")
            .await?;
        Ok(reply.values)
    }

    async fn reset(&self, request: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
        let request = Request::Reset {
            kind: request.kind,
            items: request.items.into_iter().map(WireItem::from).collect(),
        };
        let reply: ResetReply = self.transport.call(&request, "reset reply").await?;
        Ok(reply.outcomes.into_iter().map(UserOutcome::from).collect())
    }
}
