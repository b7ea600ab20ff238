//! The functions of the library's table, and its entry.

use std::collections::HashMap;
use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use futures_util::FutureExt as _;
use rekey_abi::ffi::{ABI_VERSION, CompletionFn, HostApi, OwnedBuf, PluginVTable};
use rekey_abi::protocol::{
    self, CreateReply, CreateRequest, GenerateReply, PluginInfo, Request, ResetReply, Status,
};
use tokio::task::AbortHandle;
use tracing_subscriber::layer::SubscriberExt as _;
use zeroize::{Zeroize, Zeroizing};

use super::log_forward::{CURRENT_LABEL, ForwardLayer, HostLog};
use crate::connector::Plugin;
use crate::request_shape::RequestShape;
use crate::{ConnectorError, ErrorKind, ResetRequest};

/// Everything a library sets up once, at its first entry call.
struct Globals {
    runtime: tokio::runtime::Runtime,
    vtable: PluginVTable,
    abi_version: u32,
}

static GLOBALS: OnceLock<Globals> = OnceLock::new();

fn runtime() -> &'static tokio::runtime::Runtime {
    // Entry always runs before any vtable function can be reached, and sets GLOBALS.
    &GLOBALS
        .get()
        .expect("entry ran before any vtable call")
        .runtime
}

/// The body of a library's entry symbol, for connector type `P` speaking ABI
/// `abi_version` (always [`ABI_VERSION`] except in rekey's own ABI tests, whose
/// fixture libraries claim other versions).
///
/// Returns null if the host speaks another ABI or the library cannot start.
///
/// # Safety
/// `host` must be null or point to a `HostApi` that is valid for the duration of the
/// call and whose `log` function and `log_ctx` stay valid for the life of the process.
pub unsafe fn entry<P: Plugin>(host: *const HostApi, abi_version: u32) -> *const PluginVTable {
    if host.is_null() {
        return std::ptr::null();
    }
    // SAFETY: `host` is non-null and valid for reads (caller's contract). The first two
    // fields exist in every version of HostApi, so they are read before trusting the
    // rest of the struct.
    let (host_abi, host_size) = unsafe {
        (
            std::ptr::addr_of!((*host).abi_version).read(),
            std::ptr::addr_of!((*host).struct_size).read(),
        )
    };
    if host_abi != ABI_VERSION || host_size < size_of::<HostApi>() {
        return std::ptr::null();
    }
    // SAFETY: the host's struct is at least as large as ours, so every field is there.
    let host = unsafe { &*host };
    let host_log = HostLog {
        ctx: host.log_ctx,
        log: host.log,
    };
    let max_level = host.max_log_level;
    let threads = host.worker_threads.max(1) as usize;
    let started = catch_unwind(move || {
        GLOBALS.get_or_init(|| {
            let _ = tracing::subscriber::set_global_default(
                tracing_subscriber::registry().with(ForwardLayer::new(host_log, max_level)),
            );
            install_panic_hook(host_log);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name(format!("rekey-{}", P::metadata().name))
                .enable_all()
                .build()
                .expect("cannot start the connector's tokio runtime");
            Globals {
                runtime,
                abi_version,
                vtable: PluginVTable {
                    abi_version,
                    struct_size: size_of::<PluginVTable>(),
                    metadata: metadata::<P>,
                    create: create::<P>,
                    call: call::<P>,
                    cancel: cancel::<P>,
                    destroy: destroy::<P>,
                    free_buf,
                },
            }
        });
    });
    match (started, GLOBALS.get()) {
        (Ok(()), Some(globals)) => &globals.vtable,
        _ => std::ptr::null(),
    }
}

/// Routes this library's panic messages to the host's log instead of stderr.
fn install_panic_hook(host: HostLog) {
    std::panic::set_hook(Box::new(move |info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = format!(
            "connector panicked{location}: {}",
            payload_text(info.payload())
        );
        let label = CURRENT_LABEL.try_with(Arc::clone).ok();
        host.emit(1, label.as_deref().unwrap_or(""), "panic", &message);
    }));
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".to_owned()
    }
}

fn into_owned(bytes: Vec<u8>) -> OwnedBuf {
    let mut bytes = ManuallyDrop::new(bytes);
    OwnedBuf {
        ptr: bytes.as_mut_ptr(),
        len: bytes.len(),
        cap: bytes.capacity(),
    }
}

fn take_vec(mut bytes: Zeroizing<Vec<u8>>) -> Vec<u8> {
    std::mem::take(&mut *bytes)
}

/// Releases a buffer made by [`into_owned`], wiping it first (it may hold secrets).
unsafe extern "C" fn free_buf(buf: OwnedBuf) {
    if buf.ptr.is_null() {
        return;
    }
    let _ = catch_unwind(|| {
        // SAFETY: the buffer came from `into_owned` in this library (the ABI contract:
        // buffers go back to the side that allocated them), so its pointer, length
        // and capacity are those of a live Vec<u8> from this allocator.
        let mut bytes = unsafe { Vec::from_raw_parts(buf.ptr, buf.len, buf.cap) };
        bytes.zeroize();
    });
}

unsafe extern "C" fn metadata<P: Plugin>() -> OwnedBuf {
    catch_unwind(|| {
        let info = PluginInfo {
            abi_version: GLOBALS.get().map_or(ABI_VERSION, |g| g.abi_version),
            api_version: env!("CARGO_PKG_VERSION").to_owned(),
            panic_unwind: cfg!(panic = "unwind"),
            metadata: P::metadata(),
        };
        serde_json::to_vec(&info)
            .map(into_owned)
            .unwrap_or(OwnedBuf::EMPTY)
    })
    .unwrap_or(OwnedBuf::EMPTY)
}

/// One created connector, shared by its running calls.
struct Instance<P> {
    connector: P,
    /// What the host guarantees about its requests, checked before each call.
    shape: RequestShape,
    label: Arc<str>,
    calls: Mutex<HashMap<u64, AbortHandle>>,
    next_id: AtomicU64,
}

impl<P> Instance<P> {
    fn calls(&self) -> std::sync::MutexGuard<'_, HashMap<u64, AbortHandle>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

unsafe extern "C" fn create<P: Plugin>(
    request: *const u8,
    len: usize,
    out: *mut OwnedBuf,
) -> *mut c_void {
    let result = catch_unwind(
        || -> Result<(*mut c_void, Zeroizing<Vec<u8>>), ConnectorError> {
            // SAFETY: the host passes `len` readable bytes, borrowed for this call.
            let bytes = unsafe { std::slice::from_raw_parts(request, len) };
            let request: CreateRequest = protocol::decode(bytes, "create")?;
            let metadata = P::metadata();
            let (settings, context) = request.checked(&metadata.settings)?;
            let label: Arc<str> = Arc::from(context.target.as_str());
            // Entered so that anything the connector builds (HTTP clients) finds this
            // library's runtime.
            let _runtime = runtime().enter();
            let connector = P::create(settings, context)?;
            let batching = connector.batching();
            let reply = protocol::encode(&CreateReply { batching })?;
            let instance = Arc::new(Instance {
                connector,
                shape: RequestShape::new(&metadata, batching),
                label,
                calls: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
            });
            Ok((Arc::into_raw(instance).cast_mut().cast(), reply))
        },
    );
    let (instance, reply) = match result {
        Ok(Ok((instance, reply))) => (instance, reply),
        Ok(Err(error)) => (std::ptr::null_mut(), encode_error(&error)),
        Err(panic) => (
            std::ptr::null_mut(),
            encode_error(&ConnectorError::new(
                ErrorKind::Panicked,
                format!(
                    "the connector panicked while being created: {}",
                    payload_text(&*panic)
                ),
            )),
        ),
    };
    if !out.is_null() {
        // SAFETY: `out` is non-null and points to an OwnedBuf the host owns (ABI contract).
        unsafe { out.write(into_owned(take_vec(reply))) };
    }
    instance
}

fn encode_error(error: &ConnectorError) -> Zeroizing<Vec<u8>> {
    protocol::encode(error).unwrap_or_default()
}

/// Reports a call's end to the host exactly once: explicitly, or as "cancelled"
/// when dropped unfired (the task was aborted or the runtime went away).
struct Completion {
    ctx: *mut c_void,
    done: CompletionFn,
    fired: bool,
}

// SAFETY: `ctx` is an opaque token the host made for this one call; it is never
// dereferenced here, only handed back once through `done`, which the host makes
// callable from any thread.
unsafe impl Send for Completion {}

impl Completion {
    fn fire(mut self, status: Status, payload: &[u8]) {
        self.fired = true;
        // SAFETY: `done` and `ctx` come from the host for this call, and the payload
        // is borrowed for the duration of the callback, as the ABI requires.
        unsafe { (self.done)(self.ctx, status.code(), payload.as_ptr(), payload.len()) };
    }

    fn error(self, error: &ConnectorError) {
        self.fire(Status::Error, &encode_error(error));
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if !self.fired {
            self.fired = true;
            // SAFETY: as in `fire`; an empty payload is a valid (dangling, zero-length)
            // slice.
            unsafe { (self.done)(self.ctx, Status::Cancelled.code(), [].as_ptr(), 0) };
        }
    }
}

unsafe extern "C" fn call<P: Plugin>(
    instance: *mut c_void,
    request: *const u8,
    len: usize,
    ctx: *mut c_void,
    done: CompletionFn,
) -> u64 {
    let mut completion = Some(Completion {
        ctx,
        done,
        fired: false,
    });
    let started = catch_unwind(AssertUnwindSafe(|| {
        let instance = instance.cast_const().cast::<Instance<P>>();
        // SAFETY: `instance` came from `create::<P>` (Arc::into_raw) and the host keeps
        // it alive until `destroy`; taking another strong count gives this call its
        // own reference that outlives the host's.
        let instance = unsafe {
            Arc::increment_strong_count(instance);
            Arc::from_raw(instance)
        };
        // SAFETY: the host passes `len` readable bytes, borrowed for this call.
        let bytes = unsafe { std::slice::from_raw_parts(request, len) };
        let request: Request = match protocol::decode(bytes, "call") {
            Ok(request) => request,
            Err(error) => {
                if let Some(c) = completion.take() {
                    c.error(&error);
                }
                return 0;
            }
        };
        let completion = completion.take().expect("completion is taken once");
        let id = instance.next_id.fetch_add(1, Ordering::Relaxed);
        let task_instance = Arc::clone(&instance);
        // The map stays locked until the abort handle is in it, so a call that
        // finishes at once cannot leave a stale entry behind.
        let mut calls = instance.calls();
        let task = runtime().spawn(async move {
            let label = Arc::clone(&task_instance.label);
            let result = CURRENT_LABEL
                .scope(
                    label,
                    AssertUnwindSafe(dispatch(&task_instance, request)).catch_unwind(),
                )
                .await;
            task_instance.calls().remove(&id);
            match result {
                Ok(Ok(reply)) => completion.fire(Status::Ok, &reply),
                Ok(Err(error)) => completion.error(&error),
                Err(panic) => completion.fire(Status::Panic, payload_text(&*panic).as_bytes()),
            }
        });
        calls.insert(id, task.abort_handle());
        id
    }));
    match started {
        Ok(id) => id,
        Err(panic) => {
            if let Some(c) = completion.take() {
                c.fire(Status::Panic, payload_text(&*panic).as_bytes());
            }
            0
        }
    }
}

/// Runs one call on the connector, after checking that the request has the shape
/// the host guarantees, so the connector need not check it again.
async fn dispatch<P: Plugin>(
    instance: &Instance<P>,
    request: Request,
) -> Result<Zeroizing<Vec<u8>>, ConnectorError> {
    let connector = &instance.connector;
    match request {
        Request::Check => protocol::encode(&connector.check().await?),
        Request::ListUsers { cursor } => protocol::encode(&connector.list_users(cursor).await?),
        Request::Generate { kind, count } => {
            instance.shape.check_generate(kind)?;
            protocol::encode(&GenerateReply {
                values: connector.generate(kind, count).await?,
            })
        }
        Request::Reset { kind, items } => {
            let request = ResetRequest {
                kind,
                items: items.into_iter().map(Into::into).collect(),
            };
            instance.shape.check_reset(&request)?;
            let outcomes = connector.reset(request).await?;
            protocol::encode(&ResetReply {
                outcomes: outcomes.into_iter().map(Into::into).collect(),
            })
        }
    }
}

unsafe extern "C" fn cancel<P: Plugin>(instance: *mut c_void, id: u64) {
    let _ = catch_unwind(|| {
        // SAFETY: `instance` came from `create::<P>` and is alive until `destroy`
        // (ABI contract); only a shared reference is taken.
        let instance = unsafe { &*instance.cast_const().cast::<Instance<P>>() };
        if let Some(handle) = instance.calls().remove(&id) {
            handle.abort();
        }
    });
}

unsafe extern "C" fn destroy<P: Plugin>(instance: *mut c_void) {
    if instance.is_null() {
        return;
    }
    let _ = catch_unwind(|| {
        // SAFETY: `instance` came from `create::<P>` (Arc::into_raw); the host gives up
        // its reference here, exactly once (ABI contract).
        let instance = unsafe { Arc::from_raw(instance.cast_const().cast::<Instance<P>>()) };
        for (_, handle) in instance.calls().drain() {
            handle.abort();
        }
    });
}

/// Exports a connector type from a `cdylib` crate: one call, no FFI code.
///
/// ```ignore
/// rekey_api::export_connector!(MyConnector);
/// ```
///
/// `MyConnector` must implement [`Plugin`](crate::Plugin). The macro defines the
/// library's versioned entry symbol, which the rekey host looks up; behind it, the
/// SDK runs the connector on its own tokio runtime, forwards its logs to the host,
/// catches its panics, and refuses requests the host never sends (see
/// [`Connector::reset`](crate::Connector::reset)).
#[macro_export]
macro_rules! export_connector {
    ($plugin:ty) => {
        $crate::export_connector!(@abi 1, rekey_connector_entry_v1, $plugin);
    };
    // For rekey's own tests of ABI mismatches only.
    (@abi $abi:literal, $symbol:ident, $plugin:ty) => {
        /// The connector library's entry point, looked up by the rekey host.
        ///
        /// # Safety
        /// `host` must point to a valid `HostApi` for the duration of the call.
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $symbol(
            host: *const $crate::ffi::HostApi,
        ) -> *const $crate::ffi::PluginVTable {
            // SAFETY: the caller's guarantee about `host` is passed on unchanged.
            unsafe { $crate::ffi::entry::<$plugin>(host, $abi) }
        }
    };
}

#[cfg(test)]
mod tests;
