//! The rekey connector API.
//!
//! rekey resets many users' passwords at once on vendor systems. The `rekey` host
//! binary knows no vendor: each vendor is a **connector**, a shared library the host
//! loads at run time. This crate is everything a connector author needs, and the
//! host's side of the same boundary.
//!
//! A connector is a type that implements two traits: [`Plugin`] (its
//! [`Metadata`] and how to [`create`](Plugin::create) it from a target's checked
//! [`Settings`]) and [`Connector`] (the async calls the host makes during a job:
//! [`check`](Connector::check), [`list_users`](Connector::list_users),
//! [`generate`](Connector::generate), [`reset`](Connector::reset)). One call to
//! [`export_connector!`] turns the crate into a plugin; no FFI code by hand. Failures
//! are classified with [`ErrorKind`] so the host can act on them, and secrets travel
//! as [`Secret`]s, which never print.
//!
//! A complete connector (in a crate with `crate-type = ["cdylib", "rlib"]`, whose
//! package is named `rekey-NAME` so that the library is found as connector `NAME`):
//!
//! ```
//! use async_trait::async_trait;
//! use rekey_api::{
//!     CheckReport, Connector, ConnectorError, CreateContext, Metadata, Plugin, ResetRequest,
//!     Secret, SettingSpec, Settings, UserOutcome,
//! };
//!
//! pub struct Hello {
//!     token: Secret,
//! }
//!
//! impl Plugin for Hello {
//!     fn metadata() -> Metadata {
//!         Metadata::new("hello", env!("CARGO_PKG_VERSION"), "A connector that greets")
//!             .setting(SettingSpec::secret("token", "The API token").required())
//!     }
//!
//!     fn create(settings: Settings, _context: CreateContext) -> Result<Self, ConnectorError> {
//!         Ok(Hello { token: settings.secret("token")?.clone() })
//!     }
//! }
//!
//! #[async_trait]
//! impl Connector for Hello {
//!     async fn check(&self) -> Result<CheckReport, ConnectorError> {
//!         Ok(CheckReport::default())
//!     }
//!
//!     async fn reset(&self, request: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
//!         // Send each item's password to the vendor here.
//!         Ok(request.items.into_iter().map(|item| UserOutcome::applied(item.user)).collect())
//!     }
//! }
//!
//! rekey_api::export_connector!(Hello);
//! ```
//!
//! `connectors/example` in the rekey repository is a fuller connector that shows every
//! capability; copy it to start an in-house one.

mod connector;
mod error;
pub mod ffi;
mod listing;
mod metadata;
mod model;
pub mod protocol;
pub mod secret;
mod settings;

pub use connector::{Connector, Plugin, reset_one_by_one};
pub use error::{ConnectorError, ErrorKind};
pub use listing::PagedListing;
pub use metadata::{
    Capability, Charset, CredentialKind, Metadata, PasswordRules, SettingSpec, SettingType,
    is_valid_name,
};
pub use model::{
    Applied, Batching, CheckReport, CreateContext, NewPassword, ResetItem, ResetRequest, UserEntry,
    UserOutcome, UserPage,
};
pub use secret::Secret;
pub use settings::{SettingValue, Settings, SettingsError, check_root_url};

impl From<SettingsError> for ConnectorError {
    fn from(error: SettingsError) -> Self {
        ConnectorError::invalid_settings(error.to_string())
    }
}

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
