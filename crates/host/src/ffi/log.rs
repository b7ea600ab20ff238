//! The host's log callback: a library's `tracing` events, re-emitted on the host's
//! subscriber.

use std::ffi::c_void;
use std::panic::catch_unwind;

use rekey_abi::ffi::level_from_u8;
use tracing::Level;

use super::raw_bytes;

/// Where a library's log events are attributed: leaked once per library, so that
/// it outlives every call of the library's threads.
pub(super) struct LogContext {
    /// The library's name for log lines (`oracle-cloud` for
    /// `librekey_oracle_cloud.so`), known before its metadata is.
    pub library: String,
}

/// The host's log callback: re-emits a library's event on the host's subscriber.
pub(super) unsafe extern "C" fn host_log(
    ctx: *mut c_void,
    level: u8,
    label: *const u8,
    label_len: usize,
    target: *const u8,
    target_len: usize,
    message: *const u8,
    message_len: usize,
) {
    let _ = catch_unwind(|| {
        // SAFETY: `ctx` is the LogContext leaked for this library when it was
        // loaded, and never freed.
        let context = unsafe { &*ctx.cast_const().cast::<LogContext>() };
        // SAFETY: the library passes UTF-8 strings borrowed for the duration of this
        // call (ABI contract); they are copied before it returns. Invalid UTF-8 is
        // replaced rather than trusted.
        let (label, module, message) = unsafe {
            (
                String::from_utf8_lossy(raw_bytes(label, label_len)),
                String::from_utf8_lossy(raw_bytes(target, target_len)),
                String::from_utf8_lossy(raw_bytes(message, message_len)),
            )
        };
        let Some(level) = level_from_u8(level) else {
            return;
        };
        emit(level, &context.library, &label, &module, &message);
    });
}

fn emit(level: Level, connector: &str, label: &str, module: &str, message: &str) {
    macro_rules! event {
        ($level:expr) => {
            tracing::event!(target: "rekey::plugin", $level, connector, target = label, module, "{message}")
        };
    }
    match level {
        Level::ERROR => event!(Level::ERROR),
        Level::WARN => event!(Level::WARN),
        Level::INFO => event!(Level::INFO),
        Level::DEBUG => event!(Level::DEBUG),
        Level::TRACE => event!(Level::TRACE),
    }
}
