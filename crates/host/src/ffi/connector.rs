//! [`PluginConnector`]: a connector running inside a library, seen through the
//! [`Connector`](rekey_api::Connector) trait; its calls cross the library's
//! function table ([`PluginInstance`]).

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use async_trait::async_trait;
use rekey_abi::ffi::PluginVTable;
use rekey_abi::protocol::{self, Request, Status};
use rekey_api::{Batching, ConnectorError, ErrorKind};
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;
use zeroize::Zeroizing;

use super::library::PluginLibrary;
use super::raw_bytes;
use crate::wire::{Transport, WireConnector};

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
        // SAFETY: `ctx` is the boxed sender `PluginInstance::call_raw` leaked for this call,
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

/// A connector running inside a library.
pub type PluginConnector = WireConnector<PluginInstance>;

/// A connector instance inside a library, and the library it runs in (kept loaded
/// while the instance lives).
pub struct PluginInstance {
    library: PluginLibrary,
    handle: Arc<InstanceHandle>,
}

impl std::fmt::Debug for PluginInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginInstance")
            .field("library", &self.library)
            .finish()
    }
}

impl PluginInstance {
    /// The connector made by `create` in `library`.
    pub(super) fn connector(
        library: PluginLibrary,
        handle: InstanceHandle,
        batching: Batching,
    ) -> PluginConnector {
        let instance = PluginInstance {
            library,
            handle: Arc::new(handle),
        };
        WireConnector::new(instance, batching)
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
impl Transport for PluginInstance {
    async fn call<T: DeserializeOwned + Send + 'static>(
        &self,
        request: &Request,
        what: &str,
    ) -> Result<T, ConnectorError> {
        let payload = self.call_raw(request).await?;
        protocol::decode(&payload, what)
    }
}
