//! The rekey plugin ABI: what crosses the boundary between the `rekey` host and a
//! connector, and nothing else.
//!
//! - [`ffi`]: the C boundary. One versioned entry symbol ([`ffi::ENTRY_SYMBOL`])
//!   returns a `#[repr(C)]` table of functions ([`ffi::PluginVTable`]); the host
//!   hands the library a [`ffi::HostApi`]. Types only: the library side is what
//!   `rekey_api::export_connector!` expands to, the loader is in the `rekey` host.
//! - [`protocol`]: the versioned messages, JSON, independent of any transport: the
//!   C boundary carries them, and so do connector programs.
//! - [`program`]: the other transport: the envelope (a request id and a status)
//!   that carries the same messages as JSON lines over a connector program's
//!   standard input and output, and its own version,
//!   [`program::PROTOCOL_VERSION`].
//! - The data those messages carry: a connector's [`Metadata`] and settings schema
//!   ([`SettingSpec`]), [`Settings`], [`Secret`], the error taxonomy
//!   ([`ErrorKind`], [`ConnectorError`]) and the values of each call ([`ResetRequest`],
//!   [`UserOutcome`], [`UserPage`], ...).
//!
//! Connector authors do not depend on this crate: `rekey-api` re-exports the data
//! types, and its docs are the ones to read. The host depends on both.
//!
//! # ABI version policy
//!
//! The host and a library agree on one number, [`ffi::ABI_VERSION`], carried three
//! times: in the entry symbol's name (`rekey_connector_entry_v1`), in both structs
//! of the handshake, and in [`protocol::PluginInfo::abi_version`].
//!
//! Within one ABI version, changes are **append-only**:
//!
//! - a new function goes at the end of [`ffi::PluginVTable`] (or a new field at the
//!   end of [`ffi::HostApi`]), and the other side reads it only when the peer's
//!   `struct_size` covers it;
//! - a new message field has a serde default (`#[serde(default)]`), so an older
//!   peer reads a newer message and ignores what it does not know (the integer
//!   ranges of [`SettingSpec`] were added this way, and so were the minimum length
//!   and required classes of [`PasswordRules`], and list settings,
//!   [`SettingSpec::list`]). Such a field is written only when it says something
//!   (`skip_serializing_if`), so what an older peer could already say is written
//!   exactly as before; and its meaning must degrade safely when the peer ignores
//!   it: an older host that ignores a connector's password rules lets the vendor
//!   refuse a weak value itself, and one that takes a list setting for a string
//!   passes on a string the connector then refuses, naming the setting. That is
//!   why a list setting is a flag beside a type every host knows, not a new
//!   [`SettingType`], and why it may have no default.
//!
//! Anything else bumps the version: removing or reordering a field of either
//! struct, changing a function's signature or a field's meaning or type, renaming
//! or removing a message field, adding or renaming a variant of a message enum (an
//! operation, an error kind, a capability, a credential kind: an older peer cannot
//! read it), changing how a value is written (a secret, a status code), or changing
//! who frees which memory. A bump also renames
//! the entry symbol (`rekey_connector_entry_v2`), so that a host finds no symbol of
//! its own version in a library of another and fails cleanly instead of calling
//! into it.
//!
//! `rekey-api` is released with rekey, and a library speaks the ABI of the rekey-api
//! it was built with. A host refuses a library of another version, naming both
//! sides and the fix, for example: *"connector library librekey_x.so speaks plugin
//! ABI 2, and this rekey 0.1.0 speaks plugin ABI 1: rebuild the connector against
//! rekey-api 0.1, or use a rekey that speaks plugin ABI 2"*. A library whose entry
//! function has run is never unloaded (its runtime's threads may be running), even
//! when it is refused.
//!
//! Adding an ABI version the host also speaks (to load libraries of two versions)
//! is possible, but rekey has not needed it.

mod error;
pub mod ffi;
mod metadata;
mod model;
mod password_rules;
pub mod program;
pub mod protocol;
pub mod secret;
mod settings;

pub use error::{ConnectorError, ErrorKind};
pub use metadata::{Capability, CredentialKind, Metadata, SettingSpec, SettingType, is_valid_name};
pub use model::{
    Applied, Batching, CheckReport, CreateContext, NewPassword, ResetItem, ResetRequest, UserEntry,
    UserOutcome, UserPage,
};
pub use password_rules::{CharClass, Charset, PasswordRules};
pub use secret::Secret;
pub use settings::{SettingValue, Settings, SettingsError, check_root_url};

/// Describes where a JSON error happened without quoting the input: JSON that
/// crosses the plugin boundary or comes from a vendor may hold secrets, and
/// serde_json's messages can echo values.
pub fn json_error_position(error: &serde_json::Error) -> String {
    let what = match error.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "unexpected JSON shape",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!("{what} at line {} column {}", error.line(), error.column())
}
