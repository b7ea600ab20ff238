//! The C side of the boundary: the entry symbol and the `#[repr(C)]` structs and
//! function types that pass through it. Only types live here; the code that
//! implements them is `rekey_api::export_connector!` (the library side) and the
//! `rekey` host's loader.
//!
//! Nothing of Rust's own crosses the boundary: no `String`, no trait object, no
//! future, no tokio handle (see `docs/reference/plugin-abi.md`). The boundary is
//! plain C:
//!
//! - The library exports one versioned symbol, [`ENTRY_SYMBOL`] (type [`EntryFn`]).
//!   The host calls it with a [`HostApi`] and gets back a [`PluginVTable`] of
//!   `extern "C"` functions. Both structs carry the ABI version and their own size,
//!   and only ever grow at the end.
//! - Requests and replies are the JSON messages of [`protocol`](crate::protocol).
//!   Bytes passed into a function are borrowed for the duration of the call; bytes
//!   a function returns as an [`OwnedBuf`] are released by the library's own
//!   [`free_buf`](PluginVTable::free_buf). Neither side ever frees the other's
//!   memory.
//! - Each library runs its own tokio runtime. An async call is spawned there and
//!   completes through the host's [`CompletionFn`], exactly once, even when it is
//!   cancelled or panics, with a [`Status`](crate::protocol::Status) code.
//! - Every exported function and every spawned task runs under `catch_unwind`, so a
//!   connector's panic becomes an error reply and never unwinds into the host.
//! - The library's `tracing` events reach the host through [`LogFn`].
//! - A library whose entry function has run is never unloaded.

use std::ffi::c_void;

/// The ABI version this crate speaks. See the [crate docs](crate) for what changes
/// it.
pub const ABI_VERSION: u32 = 1;

/// The entry symbol of ABI [`ABI_VERSION`], NUL-terminated.
pub const ENTRY_SYMBOL: &[u8] = b"rekey_connector_entry_v1\0";

/// The entry symbol of ABI `version`, NUL-terminated: a host looks for the symbols of
/// other versions to tell the operator which one a library speaks.
pub fn entry_symbol(version: u32) -> Vec<u8> {
    format!("rekey_connector_entry_v{version}\0").into_bytes()
}

/// The type of the entry symbol.
pub type EntryFn = unsafe extern "C" fn(host: *const HostApi) -> *const PluginVTable;

/// Completion callback: `ctx` is the host's context for the call, `status` a
/// [`Status`](crate::protocol::Status) code, and `(ptr, len)` the payload, borrowed
/// for the duration of the callback only.
pub type CompletionFn =
    unsafe extern "C" fn(ctx: *mut c_void, status: i32, ptr: *const u8, len: usize);

/// Log callback: `ctx` is [`HostApi::log_ctx`]; `level` is 1 (error) to 5 (trace)
/// (see [`level_to_u8`]); `label` names the target whose call emitted the event
/// (empty when unknown); `target` is the event's module path; `message` the
/// formatted event. All strings are UTF-8 and borrowed for the duration of the
/// callback.
pub type LogFn = unsafe extern "C" fn(
    ctx: *mut c_void,
    level: u8,
    label: *const u8,
    label_len: usize,
    target: *const u8,
    target_len: usize,
    message: *const u8,
    message_len: usize,
);

/// What the host gives a library at entry.
#[repr(C)]
pub struct HostApi {
    /// [`ABI_VERSION`] of the host.
    pub abi_version: u32,
    /// `size_of::<HostApi>()` on the host side.
    pub struct_size: usize,
    /// Passed back on every [`log`](Self::log) call.
    pub log_ctx: *mut c_void,
    /// Where the library's `tracing` events go.
    pub log: LogFn,
    /// The most verbose level the host wants: 0 (off) to 5 (trace).
    pub max_log_level: u8,
    /// Worker threads for the library's tokio runtime.
    pub worker_threads: u32,
}

/// A buffer allocated by the library, released by its
/// [`free_buf`](PluginVTable::free_buf).
#[repr(C)]
pub struct OwnedBuf {
    /// Start of the bytes.
    pub ptr: *mut u8,
    /// Number of bytes.
    pub len: usize,
    /// Allocated capacity (needed to free it).
    pub cap: usize,
}

impl OwnedBuf {
    /// An empty buffer that owns nothing.
    pub const EMPTY: OwnedBuf = OwnedBuf {
        ptr: std::ptr::null_mut(),
        len: 0,
        cap: 0,
    };
}

/// The functions a library gives the host. Append-only: the host reads a field
/// only if `struct_size` covers it.
#[repr(C)]
pub struct PluginVTable {
    /// [`ABI_VERSION`] of the library.
    pub abi_version: u32,
    /// `size_of::<PluginVTable>()` on the library side.
    pub struct_size: usize,
    /// The library's [`PluginInfo`](crate::protocol::PluginInfo) as JSON.
    pub metadata: unsafe extern "C" fn() -> OwnedBuf,
    /// Creates a connector from a [`CreateRequest`](crate::protocol::CreateRequest)
    /// (JSON). On success returns an instance pointer and writes the
    /// [`CreateReply`](crate::protocol::CreateReply) into `out`; on failure returns
    /// null and writes a [`ConnectorError`](crate::ConnectorError) into `out`.
    pub create:
        unsafe extern "C" fn(request: *const u8, len: usize, out: *mut OwnedBuf) -> *mut c_void,
    /// Starts an async call ([`Request`](crate::protocol::Request), JSON) on
    /// `instance`; `done(ctx, …)` fires exactly once. Returns an id for
    /// [`cancel`](Self::cancel) (0 when the call finished at once).
    pub call: unsafe extern "C" fn(
        instance: *mut c_void,
        request: *const u8,
        len: usize,
        ctx: *mut c_void,
        done: CompletionFn,
    ) -> u64,
    /// Cancels call `id` if it is still running; its completion fires with the
    /// cancelled status.
    pub cancel: unsafe extern "C" fn(instance: *mut c_void, id: u64),
    /// Releases an instance. Calls still running are cancelled.
    pub destroy: unsafe extern "C" fn(instance: *mut c_void),
    /// Releases a buffer this library returned.
    pub free_buf: unsafe extern "C" fn(buf: OwnedBuf),
}

/// Maps a `tracing` level to the ABI's number (1 = error … 5 = trace).
pub fn level_to_u8(level: tracing::Level) -> u8 {
    match level {
        tracing::Level::ERROR => 1,
        tracing::Level::WARN => 2,
        tracing::Level::INFO => 3,
        tracing::Level::DEBUG => 4,
        tracing::Level::TRACE => 5,
    }
}

/// The inverse of [`level_to_u8`]; `None` for 0 (off) and unknown numbers.
pub fn level_from_u8(level: u8) -> Option<tracing::Level> {
    match level {
        1 => Some(tracing::Level::ERROR),
        2 => Some(tracing::Level::WARN),
        3 => Some(tracing::Level::INFO),
        4 => Some(tracing::Level::DEBUG),
        5 => Some(tracing::Level::TRACE),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_symbols_follow_the_version() {
        assert_eq!(entry_symbol(ABI_VERSION), ENTRY_SYMBOL);
        assert_eq!(entry_symbol(2), b"rekey_connector_entry_v2\0");
    }

    #[test]
    fn log_levels_round_trip() {
        for level in [
            tracing::Level::ERROR,
            tracing::Level::WARN,
            tracing::Level::INFO,
            tracing::Level::DEBUG,
            tracing::Level::TRACE,
        ] {
            assert_eq!(level_from_u8(level_to_u8(level)), Some(level));
        }
        assert_eq!(level_from_u8(0), None);
    }
}
