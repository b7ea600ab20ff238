//! The rekey connector SDK.
//!
//! rekey resets many users' passwords at once on vendor systems. The `rekey` host
//! knows no vendor: each vendor is a **connector**, a shared library the host loads
//! at run time, chosen by a target's `connector` key. The host does everything that
//! is the same for every vendor (config and secrets, choosing users, generating and
//! journaling passwords before they are sent, retries, rate limits, results); a
//! connector translates rekey's calls into the vendor's API, and the vendor's
//! answers into rekey's outcomes.
//!
//! A connector is a type that implements two traits: [`Plugin`] (its [`Metadata`]:
//! credential kinds, capabilities, settings schema; and how to
//! [`create`](Plugin::create) it from a target's checked [`Settings`]) and
//! [`Connector`] (the async calls of a job: [`check`](Connector::check),
//! [`list_users`](Connector::list_users), [`generate`](Connector::generate),
//! [`reset`](Connector::reset)), arriving concurrently. One call to
//! [`export_connector!`] turns the crate into a plugin, with no FFI code by hand.
//! Every failure is classified with an [`ErrorKind`], which tells the host whether
//! the password may be in effect; secrets travel as [`Secret`]s, which never print.
//!
//! # A complete connector
//!
//! In a crate named `rekey-NAME` (so that its library is found as connector
//! `NAME`) with `crate-type = ["cdylib", "rlib"]`:
//!
//! ```
//! use async_trait::async_trait;
//! use rekey_api::{
//!     Applied, CheckReport, Connector, ConnectorError, CreateContext, ErrorKind, Metadata,
//!     Plugin, ResetRequest, Secret, SettingSpec, Settings, StatusMap, UserOutcome,
//!     reset_one_by_one,
//! };
//!
//! pub struct Hello {
//!     token: Secret,
//!     /// What the vendor's HTTP statuses mean; here a 404 is an unknown user.
//!     statuses: StatusMap,
//! }
//!
//! impl Plugin for Hello {
//!     fn metadata() -> Metadata {
//!         Metadata::new("hello", env!("CARGO_PKG_VERSION"), "A connector that greets")
//!             .setting(SettingSpec::secret("token", "The API token").required())
//!     }
//!
//!     fn create(settings: Settings, _context: CreateContext) -> Result<Self, ConnectorError> {
//!         Ok(Hello {
//!             token: settings.secret("token")?.clone(),
//!             statuses: StatusMap::new().on(404, ErrorKind::UserNotFound),
//!         })
//!     }
//! }
//!
//! impl Hello {
//!     /// Sends one user's new password; the vendor's HTTP status.
//!     async fn put_password(&self, _user: &str, _password: &Secret) -> u16 {
//!         // The vendor's API call, with `self.token`, goes here (see rekey-http).
//!         200
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
//!         Ok(reset_one_by_one(request, |user, password| async move {
//!             // Only declared kinds and known values arrive: the SDK refuses the rest.
//!             match self.put_password(&user, password.value()?).await {
//!                 200 => Ok(Applied::default()),
//!                 status => Err(self.statuses.error(status, "PUT password", None)),
//!             }
//!         })
//!         .await)
//!     }
//! }
//!
//! rekey_api::export_connector!(Hello);
//! ```
//!
//! To start a connector of your own, copy `templates/connector` from the rekey
//! repository: a complete connector for a small directory (token login, paged
//! listing, one user a request) in under 80 lines, with a fake of that directory
//! and the conformance kit in its tests. `connectors/example` is a fuller tour.
//!
//! # Map
//!
//! - **The traits**: [`Plugin`], [`Connector`], [`export_connector!`].
//! - **Describing a connector**: [`Metadata`] (kinds, [`Capability`]s,
//!   case-insensitive ids, the vendor's [`PasswordRules`]); its settings schema of
//!   [`SettingSpec`]s (types, required, secret, defaults, choices, integer
//!   [ranges](SettingSpec::range)), checked by the host before
//!   [`create`](Plugin::create) gets the [`Settings`].
//! - **The values of a call**: [`ResetRequest`] of [`ResetItem`]s with a
//!   [`NewPassword`], answered by one [`UserOutcome`] per user ([`Applied`] or a
//!   [`ConnectorError`]); [`UserPage`]s of [`UserEntry`]s; [`CheckReport`];
//!   [`Batching`]; [`CreateContext`].
//! - **Errors**: [`ConnectorError`] and [`ErrorKind`]; [`StatusMap`]
//!   ([`status_map`]) turns a vendor's HTTP status into a kind, tuned in one place.
//! - **Secrets**: [`Secret`], and [`secret::expose`] for wire types that must
//!   carry one.
//! - **Helpers for common vendor shapes**:
//!   - [`token_session`]: [`TokenSession`] logs in once, renews before expiry (by
//!     refresh token or by logging in again), one renewal at a time, and once more
//!     after a 401;
//!   - [`listing`]: [`PagedListing`] hands out in pages a list the vendor returns
//!     all at once, and shares what it fetched; [`numbered_page`] pages a listing
//!     the vendor pages by number;
//!   - [`per_user`]: [`match_per_user`] (and [`match_per_user_by`], for ids the
//!     vendor compares its own way) turns a per-user reply into one outcome per
//!     user of the request;
//!   - [`reset_one_by_one`] for vendors that take one user a request.
//! - **HTTP**: the `rekey-http` crate's `VendorHttp` (TLS policy, the target's rate
//!   limit, retryable statuses, log-safe requests, and `send_with_token` for a
//!   [`TokenSession`]).
//! - **Testing** (feature `testing`, for a connector's dev-dependencies):
//!   `rekey_api::testing::FakeVendor`, a stand-in for the vendor on 127.0.0.1 whose
//!   routes are closures over a plain request and response, and
//!   `rekey_api::testing::create`, the connector created in-process from settings
//!   written as JSON, checked as the host checks them. The conformance kit
//!   (`rekey-conformance`) then checks the connector against the contract.
//!
//! # What the SDK guarantees a connector
//!
//! Behind [`export_connector!`], each library runs its own tokio runtime, its
//! `tracing` events reach the host's log labelled with the target, and a panic
//! fails only the call it happened in. Before a call reaches the connector, the SDK
//! refuses what the host never sends (see [`Connector::reset`]): undeclared kinds,
//! vendor-generated values without [`Capability::VendorReset`], batches larger than
//! [`Batching::max_users`] or holding a user twice, and different values in a batch
//! of [`Batching::shared_password`]. Settings arrive checked against the schema,
//! with defaults applied.

mod connector;
#[doc(hidden)]
pub mod ffi;
pub mod listing;
pub mod per_user;
mod request_shape;
pub mod status_map;
#[cfg(feature = "testing")]
pub mod testing;
pub mod token_session;

/// The attribute for `impl Connector` and `impl TokenSource` blocks, re-exported
/// so that a connector needs no dependency of its own on `async-trait`.
#[doc(no_inline)]
pub use async_trait::async_trait;
pub use connector::{Connector, Plugin, reset_one_by_one};
#[doc(no_inline)]
pub use listing::{PagedListing, UserList, numbered_page};
#[doc(no_inline)]
pub use per_user::{IdCase, match_per_user, match_per_user_by};
#[doc(inline)]
pub use rekey_abi::secret;
pub use rekey_abi::{
    Applied, Batching, Capability, CharClass, Charset, CheckReport, ConnectorError, CreateContext,
    CredentialKind, ErrorKind, Metadata, NewPassword, PasswordRules, ResetItem, ResetRequest,
    Secret, SettingSpec, SettingType, SettingValue, Settings, SettingsError, UserEntry,
    UserOutcome, UserPage, check_root_url, is_valid_name, json_error_position,
};
#[doc(no_inline)]
pub use status_map::StatusMap;
#[doc(no_inline)]
pub use token_session::{Attempt, Grant, Lease, TokenReply, TokenSession, TokenSource};
