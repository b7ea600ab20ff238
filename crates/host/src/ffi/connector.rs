//! [`PluginConnector`]: a connector running inside a library, seen through the
//! [`Connector`] trait.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use async_trait::async_trait;
use rekey_abi::ffi::PluginVTable;
use rekey_abi::protocol::{self, GenerateReply, Request, ResetReply, Status, WireItem};
use rekey_api::{
    Batching, CheckReport, Connector, ConnectorError, CredentialKind, ErrorKind, ResetRequest,
    Secret, UserOutcome, UserPage,
};
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;
use zeroize::Zeroizing;

use super::library::PluginLibrary;
use super::raw_bytes;

/// A created connector instance inside a library; destroyed when dropped.
pub(super) struct InstanceHandle {
    vtable: &'static PluginVTable,
    instance: *mut c_void,
}

// SAFETY: the instance is an `Arc` of a `Connector`, which is `Send + Sync`, and the
// library's functions may be called from any thread (ABI contract).
unsafe impl Send for InstanceHandle {}
// SAFETY: as above.
unsafe impl Sync for InstanceHandle {}

impl InstanceHandle {
    /// Takes ownership of `instance`, made by `vtable`'s `create`.
    pub(super) fn new(vtable: &'static PluginVTable, instance: *mut c_void) -> Self {
        InstanceHandle { vtable, instance }
    }
}

impl Drop for InstanceHandle {
    fn drop(&mut self) {
        // SAFETY: the instance came from this vtable's `create` and is released once.
        unsafe { (self.vtable.destroy)(self.instance) };
    }
}

type CompletionSender = oneshot::Sender<(i32, Zeroizing<Vec<u8>>)>;

/// The host's completion callback: hands the reply to the waiting future.
unsafe extern "C" fn on_complete(ctx: *mut c_void, status: i32, ptr: *const u8, len: usize) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` is the boxed sender `PluginConnector::call` leaked for this call,
        // and the library fires the completion exactly once, so it is reclaimed once.
        let sender = unsafe { Box::from_raw(ctx.cast::<CompletionSender>()) };
        // SAFETY: the payload is borrowed for the duration of this callback.
        let payload = Zeroizing::new(unsafe { raw_bytes(ptr, len) }.to_vec());
        // The receiver is gone if the call was cancelled; nothing to do then.
        let _ = sender.send((status, payload));
    }));
}

/// Cancels a call in the library if its future is dropped before it completes.
struct CancelOnDrop<'a> {
    handle: &'a InstanceHandle,
    id: u64,
    armed: bool,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed && self.id != 0 {
            // SAFETY: the instance is alive (we hold a reference to its handle) and the
            // library ignores ids of calls that already finished.
            unsafe { (self.handle.vtable.cancel)(self.handle.instance, self.id) };
        }
    }
}

/// A connector running inside a library, seen through the [`Connector`] trait.
pub struct PluginConnector {
    library: PluginLibrary,
    handle: Arc<InstanceHandle>,
    batching: Batching,
}

impl std::fmt::Debug for PluginConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginConnector")
            .field("library", &self.library)
            .field("batching", &self.batching)
            .finish()
    }
}

impl PluginConnector {
    pub(super) fn new(library: PluginLibrary, handle: InstanceHandle, batching: Batching) -> Self {
        PluginConnector {
            library,
            handle: Arc::new(handle),
            batching: Batching {
                max_users: batching.max_users.max(1),
                ..batching
            },
        }
    }

    /// The library this connector runs in.
    pub fn library(&self) -> &PluginLibrary {
        &self.library
    }

    async fn call<T: DeserializeOwned>(
        &self,
        request: &Request,
        what: &str,
    ) -> Result<T, ConnectorError> {
        let payload = self.call_raw(request).await?;
        protocol::decode(&payload, what)
    }

    async fn call_raw(&self, request: &Request) -> Result<Zeroizing<Vec<u8>>, ConnectorError> {
        let body = protocol::encode(request)?;
        let (sender, receiver) = oneshot::channel();
        let ctx: *mut CompletionSender = Box::into_raw(Box::new(sender));
        let handle = &*self.handle;
        // SAFETY: the instance is alive while `self` is; the body is borrowed for the
        // call; `ctx` is reclaimed by `on_complete`, which the library fires exactly once.
        let id = unsafe {
            (handle.vtable.call)(
                handle.instance,
                body.as_ptr(),
                body.len(),
                ctx.cast(),
                on_complete,
            )
        };
        drop(body);
        let mut guard = CancelOnDrop {
            handle,
            id,
            armed: true,
        };
        let reply = receiver.await;
        guard.armed = false;
        let (status, payload) = reply.map_err(|_| {
            ConnectorError::fatal("the connector dropped the call without replying")
        })?;
        match Status::from_code(status) {
            Some(Status::Ok) => Ok(payload),
            Some(Status::Error) => Err(protocol::decode::<ConnectorError>(&payload, "error")?),
            Some(Status::Panic) => Err(ConnectorError::new(
                ErrorKind::Panicked,
                format!(
                    "the connector panicked: {}",
                    String::from_utf8_lossy(&payload)
                ),
            )),
            Some(Status::Cancelled) => Err(ConnectorError::new(
                ErrorKind::Cancelled,
                "the call was cancelled",
            )),
            None => Err(ConnectorError::fatal(format!(
                "the connector replied with unknown status {status}"
            ))),
        }
    }
}

#[async_trait]
impl Connector for PluginConnector {
    fn batching(&self) -> Batching {
        self.batching
    }

    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        self.call(&Request::Check, "check reply").await
    }

    async fn list_users(&self, cursor: Option<String>) -> Result<UserPage, ConnectorError> {
        self.call(&Request::ListUsers { cursor }, "list_users reply")
            .await
    }

    async fn generate(
        &self,
        kind: CredentialKind,
        count: usize,
    ) -> Result<Vec<Secret>, ConnectorError> {
        let reply: GenerateReply = self
            .call(&Request::Generate { kind, count }, "generate reply")
            .await?;
        Ok(reply.values)
    }

    async fn reset(&self, request: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
        let request = Request::Reset {
            kind: request.kind,
            items: request.items.into_iter().map(WireItem::from).collect(),
        };
        let reply: ResetReply = self.call(&request, "reset reply").await?;
        Ok(reply.outcomes.into_iter().map(UserOutcome::from).collect())
    }
}
