//! The library side of the ABI driven in-process, as a host drives it: a
//! connector's panic during a call comes back as a panic reply from rekey's own
//! guard, not as the cancellation the runtime would report if the guard were gone.

use std::sync::mpsc;
use std::time::Duration;

use async_trait::async_trait;
use rekey_abi::protocol::WireItem;

use super::*;
use crate::{
    CheckReport, Connector, CreateContext, CredentialKind, Metadata, Settings, UserOutcome,
};

/// Panics on every reset.
struct Panicky;

impl Plugin for Panicky {
    fn metadata() -> Metadata {
        Metadata::new("panicky", "1.0.0", "Panics on every reset")
    }

    fn create(_settings: Settings, _context: CreateContext) -> Result<Self, ConnectorError> {
        Ok(Panicky)
    }
}

#[async_trait]
impl Connector for Panicky {
    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        Ok(CheckReport::default())
    }

    async fn reset(&self, request: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
        panic!("deliberate panic resetting {}", request.items[0].user);
    }
}

unsafe extern "C" fn no_log(
    _ctx: *mut c_void,
    _level: u8,
    _label: *const u8,
    _label_len: usize,
    _target: *const u8,
    _target_len: usize,
    _message: *const u8,
    _message_len: usize,
) {
}

type Reply = mpsc::Sender<(i32, Vec<u8>)>;

unsafe extern "C" fn on_done(ctx: *mut c_void, status: i32, ptr: *const u8, len: usize) {
    // SAFETY: `ctx` is the boxed sender the test leaked for this one call, and the
    // library completes each call exactly once; the payload is borrowed for this
    // callback and copied here.
    let (reply, payload) = unsafe {
        (
            Box::from_raw(ctx.cast::<Reply>()),
            if ptr.is_null() {
                Vec::new()
            } else {
                std::slice::from_raw_parts(ptr, len).to_vec()
            },
        )
    };
    let _ = reply.send((status, payload));
}

#[test]
fn a_panic_in_a_call_is_caught_by_rekeys_own_guard() {
    let host = HostApi {
        abi_version: ABI_VERSION,
        struct_size: size_of::<HostApi>(),
        log_ctx: std::ptr::null_mut(),
        log: no_log,
        max_log_level: 0,
        worker_threads: 1,
    };
    // SAFETY: `host` is valid for the call; its log function ignores its context.
    let vtable = unsafe { entry::<Panicky>(&host, ABI_VERSION) };
    assert!(!vtable.is_null());
    // SAFETY: a non-null table from `entry` lives in GLOBALS for the process.
    let vtable = unsafe { &*vtable };

    let create = serde_json::json!({
        "settings": {},
        "context": { "target": "t", "state_dir": std::env::temp_dir() }
    })
    .to_string();
    let mut out = OwnedBuf::EMPTY;
    // SAFETY: the request is borrowed for the call, `out` is ours to receive the reply.
    let instance = unsafe { (vtable.create)(create.as_ptr(), create.len(), &mut out) };
    // SAFETY: the reply buffer came from this library and is released once.
    unsafe { (vtable.free_buf)(out) };
    assert!(!instance.is_null(), "the connector was created");

    let request = protocol::encode(&Request::Reset {
        kind: CredentialKind::Password,
        items: vec![WireItem {
            user: "alice".into(),
            password: Some("Pw-0123456789".into()),
        }],
    })
    .unwrap();
    let (reply, replies) = mpsc::channel();
    let ctx: *mut Reply = Box::into_raw(Box::new(reply));
    // SAFETY: the instance is alive until `destroy` below; the request is borrowed for
    // the call; `ctx` is reclaimed by `on_done`, which the library fires exactly once.
    unsafe {
        (vtable.call)(
            instance,
            request.as_ptr(),
            request.len(),
            ctx.cast(),
            on_done,
        )
    };
    let (status, payload) = replies.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        Status::from_code(status),
        Some(Status::Panic),
        "the panic was reported as {status} (a missing guard leaves tokio to report the task cancelled)"
    );
    let message = String::from_utf8_lossy(&payload);
    assert!(
        message.contains("deliberate panic resetting alice"),
        "{message}"
    );
    // SAFETY: the instance came from `create` and is released once.
    unsafe { (vtable.destroy)(instance) };
}
