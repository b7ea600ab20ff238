//! The library side of the plugin ABI: what [`export_connector!`](crate::export_connector)
//! expands to. Hidden from the docs; connector authors never use it directly.
//!
//! This is the only place in rekey-api with `unsafe` code. The boundary itself
//! (the `#[repr(C)]` structs, the entry symbol, the messages) is defined by
//! `rekey-abi`; the loader is in the `rekey` host. Here:
//!
//! - [`entry`] is the body of the library's entry symbol: it checks the host's ABI,
//!   installs log forwarding and a panic hook, starts the library's tokio runtime
//!   and returns the function table.
//! - The functions of the table decode each request, check that it has the shape
//!   the host guarantees (see `request_shape`), run it on the runtime under
//!   `catch_unwind`, and complete it through the host's callback exactly once.
//! - `log_forward` hands the library's `tracing` events to the host.
#![allow(unsafe_code)]

mod log_forward;
mod plugin;

pub use plugin::entry;
pub use rekey_abi::ffi::{HostApi, PluginVTable};
