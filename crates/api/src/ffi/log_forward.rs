//! Library side of logging: a `tracing` layer that hands every event to the host.
//!
//! Each connector library has its own copy of `tracing`, with its own (initially
//! empty) global dispatcher. At entry the library installs [`ForwardLayer`] as that
//! dispatcher, so its events, and those of reqwest and hyper inside it, reach the
//! host's subscriber through `LogFn`.

use std::ffi::c_void;
use std::fmt::Write as _;
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use rekey_abi::ffi::{LogFn, level_from_u8, level_to_u8};

tokio::task_local! {
    /// The target whose call the current task serves, for labelling its events.
    pub(crate) static CURRENT_LABEL: Arc<str>;
}

/// The host's log callback and its context.
#[derive(Clone, Copy)]
pub(crate) struct HostLog {
    pub ctx: *mut c_void,
    pub log: LogFn,
}

// SAFETY: `ctx` is an opaque token the host created for this library and keeps alive
// for the life of the process; the host's log function is thread-safe by the ABI
// contract. Nothing here dereferences `ctx`.
unsafe impl Send for HostLog {}
// SAFETY: as above; the struct is read-only after entry.
unsafe impl Sync for HostLog {}

impl HostLog {
    pub(crate) fn emit(&self, level: u8, label: &str, target: &str, message: &str) {
        // SAFETY: every pointer is to a live UTF-8 string borrowed for the duration
        // of the call, as the ABI requires; the host copies what it keeps.
        unsafe {
            (self.log)(
                self.ctx,
                level,
                label.as_ptr(),
                label.len(),
                target.as_ptr(),
                target.len(),
                message.as_ptr(),
                message.len(),
            );
        }
    }
}

/// Forwards events at or above the host's level to the host.
pub(crate) struct ForwardLayer {
    host: HostLog,
    max_level: u8,
}

impl ForwardLayer {
    pub(crate) fn new(host: HostLog, max_level: u8) -> Self {
        ForwardLayer { host, max_level }
    }
}

impl<S: Subscriber> Layer<S> for ForwardLayer {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        level_to_u8(*metadata.level()) <= self.max_level
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(match level_from_u8(self.max_level) {
            Some(level) => LevelFilter::from_level(level),
            None => LevelFilter::OFF,
        })
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut text = MessageText::default();
        event.record(&mut text);
        let label = CURRENT_LABEL.try_with(Arc::clone).ok();
        self.host.emit(
            level_to_u8(*event.metadata().level()),
            label.as_deref().unwrap_or(""),
            event.metadata().target(),
            &text.0,
        );
    }
}

/// Renders an event as `message key=value key=value`.
#[derive(Default)]
struct MessageText(String);

impl Visit for MessageText {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            let _ = write!(self.0, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let message = format!("{value:?}");
            self.0.insert_str(0, &message);
        } else {
            let _ = write!(self.0, " {}={:?}", field.name(), value);
        }
    }
}
