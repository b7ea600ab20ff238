//! Loading connector libraries and calling them: the host side of the plugin ABI,
//! and the only place in the host with `unsafe` code.
//!
//! The boundary itself (the entry symbol, the `#[repr(C)]` structs, the messages)
//! is defined by `rekey-abi`; the library side is what `rekey_api::export_connector!`
//! expands to. Here:
//!
//! - [`PluginLibrary::load`] opens a library once per process, calls its entry
//!   function, checks its ABI version, table and metadata. A library whose entry
//!   function has run is never unloaded, also when it is then refused: its tokio
//!   runtime's threads may be running its code.
//! - [`PluginLibrary::create`] makes a [`PluginConnector`], which implements
//!   [`Connector`](rekey_api::Connector), so the rest of the host never sees FFI.
//!   Each call is sent as JSON and completes through a callback that the host turns
//!   into a future; dropping the future cancels the call in the library.
//! - The library's `tracing` events are re-emitted on the host's subscriber
//!   (target `rekey::plugin`), labelled with the library and the target.
#![allow(unsafe_code)]

mod connector;
mod library;
mod log;

pub use connector::{PluginConnector, PluginInstance};
pub use library::{LoadError, LoadOptions, PluginLibrary};

/// A borrowed byte slice from a pointer and a length; empty for a null pointer.
///
/// # Safety
/// A non-null `ptr` must be valid for `len` bytes for the returned lifetime.
unsafe fn raw_bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: the caller's guarantee.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}
