//! Test support for connector authors (feature `testing`): a fake vendor to run a
//! connector against, and the connector created in-process as the host creates it.
//!
//! A connector is tested against a stand-in for its vendor, never a live system: a
//! small HTTP server on 127.0.0.1 that answers as strictly as the real API. A
//! [`FakeVendor`] is that server, with routes that are plain closures over a
//! [`Request`] and a [`Response`], so a test needs no web framework of its own.
//! [`create`] makes the connector from settings written as JSON, checked against
//! its schema as the host checks them, behind the checks the plugin boundary makes
//! ([`Checked`]), and the test calls it directly (or hands it to the conformance
//! kit, `rekey-conformance`, with [`setting_values`]).
//!
//! In the connector's `Cargo.toml`:
//!
//! ```toml
//! [dev-dependencies]
//! # The same source as in [dependencies] (a git tag, or a path to a checkout).
//! rekey-api = { git = "https://github.com/rekey-project/rekey", tag = "v0.1.0", features = ["testing"] }
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//! ```
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use rekey_api::testing::{FakeVendor, Response, create, json};
//! use rekey_api::{Connector, CredentialKind, NewPassword, ResetItem, ResetRequest};
//! # use async_trait::async_trait;
//! # use rekey_api::{CheckReport, ConnectorError, CreateContext, Metadata, Plugin, SettingSpec, Settings, UserOutcome};
//! # /// A connector under test: one `PUT users/{id}` a user.
//! # struct Tiny { url: String, http: reqwest::Client }
//! # impl Plugin for Tiny {
//! #     fn metadata() -> Metadata {
//! #         Metadata::new("tiny", "1.0.0", "d").setting(SettingSpec::url("url", "The root").required())
//! #     }
//! #     fn create(settings: Settings, _: CreateContext) -> Result<Self, ConnectorError> {
//! #         Ok(Tiny { url: settings.str("url")?.to_owned(), http: reqwest::Client::new() })
//! #     }
//! # }
//! # #[async_trait]
//! # impl Connector for Tiny {
//! #     async fn check(&self) -> Result<CheckReport, ConnectorError> { Ok(CheckReport::default()) }
//! #     async fn reset(&self, request: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
//! #         let item = &request.items[0];
//! #         let url = format!("{}/users/{}", self.url, item.user);
//! #         let sent = self.http.put(url).send().await.map_err(|e| ConnectorError::transient(e.to_string()))?;
//! #         Ok(vec![if sent.status() == 204 { UserOutcome::applied(&item.user) } else {
//! #             UserOutcome::failed(&item.user, ConnectorError::user_not_found("no such user")) }])
//! #     }
//! # }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A vendor that knows one user, and keeps who was reset.
//! let reset = Arc::new(Mutex::new(Vec::new()));
//! let seen = Arc::clone(&reset);
//! let vendor = FakeVendor::builder()
//!     .route("PUT", "/users/{id}", move |request| {
//!         let id = request.param("id").unwrap_or_default();
//!         if id != "jdoe" {
//!             return Response::json(404, json!({ "message": "no such user" }));
//!         }
//!         seen.lock().unwrap().push(id.to_owned());
//!         Response::status(204)
//!     })
//!     .start()
//!     .await?;
//!
//! // The connector (`Tiny`, which PUTs users/{id}), created as the host would
//! // and behind the checks the plugin boundary makes.
//! let connector = create::<Tiny>(json!({ "url": vendor.url() }))?;
//! let request = |user: &str| ResetRequest {
//!     kind: CredentialKind::Password,
//!     items: vec![ResetItem { user: user.into(), password: NewPassword::Known("N3w-pass!".into()) }],
//! };
//! assert!(connector.reset(request("jdoe")).await?[0].result.is_ok());
//! assert!(connector.reset(request("nobody")).await?[0].result.is_err());
//! assert_eq!(*reset.lock().unwrap(), ["jdoe"]);
//! assert_eq!(vendor.requests().len(), 2);
//! # Ok(()) }
//! ```
mod fake_vendor;

pub use self::fake_vendor::{FakeVendor, FakeVendorBuilder, Request, Response};
#[doc(no_inline)]
pub use serde_json::{Value, json};

use crate::request_shape::RequestShape;
use crate::{Connector, ConnectorError, CreateContext, Plugin, Secret, SettingValue, Settings};

/// `P`'s settings from a JSON object (`{"url": ..., "api_key": ...}`) as the host
/// hands them over: the strings of secret settings become [`Secret`]s. Checked
/// against the schema by [`create`] or the conformance kit.
pub fn setting_values<P: Plugin>(settings: Value) -> Vec<(String, SettingValue)> {
    let schema = P::metadata().settings;
    let Value::Object(object) = settings else {
        return Vec::new();
    };
    object
        .into_iter()
        .map(|(name, value)| {
            let secret = schema.iter().any(|s| s.name == name && s.secret);
            let value = match (secret, value) {
                (true, Value::String(text)) => SettingValue::Secret(Secret::new(text)),
                (_, value) => SettingValue::Plain(value),
            };
            (name, value)
        })
        .collect()
}

/// Creates connector `P` from settings written as a JSON object, as the host
/// does: checked against its schema (an error names the setting), defaults
/// applied, then [`Plugin::create`] with target name `test` and the system's
/// temporary directory as its state directory (create a connector that keeps
/// state across runs with [`Plugin::create`] and a directory of the test's own,
/// and wrap it in [`Checked::new`]).
pub fn create<P: Plugin>(settings: Value) -> Result<Checked<P>, ConnectorError> {
    let settings = Settings::check(&P::metadata().settings, setting_values::<P>(settings))?;
    let connector = P::create(
        settings,
        CreateContext {
            target: "test".into(),
            state_dir: std::env::temp_dir(),
            rate: None,
        },
    )?;
    Ok(Checked::new(connector))
}

/// Connector `P` behind the checks rekey's plugin boundary makes before a call
/// reaches a connector, so that a test calling it directly gets only what a
/// library gets: declared kinds, batches within [`Batching`](crate::Batching),
/// no user twice, known values unless `VendorReset` is declared, one value per
/// `shared_password` batch (see [`Connector::reset`]). A request that breaks them
/// fails with [`Unsupported`](crate::ErrorKind::Unsupported), as it would through
/// the library. The connector's own methods are reached through `Deref`.
pub struct Checked<P> {
    connector: P,
    shape: RequestShape,
}

impl<P: Plugin> Checked<P> {
    /// Puts `connector` behind the checks.
    pub fn new(connector: P) -> Checked<P> {
        let shape = RequestShape::new(&P::metadata(), connector.batching());
        Checked { connector, shape }
    }

    /// The connector itself.
    pub fn into_inner(self) -> P {
        self.connector
    }
}

impl<P> std::ops::Deref for Checked<P> {
    type Target = P;

    fn deref(&self) -> &P {
        &self.connector
    }
}

impl<P> std::fmt::Debug for Checked<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checked").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl<P: Plugin> Connector for Checked<P> {
    fn batching(&self) -> crate::Batching {
        self.connector.batching()
    }

    async fn check(&self) -> Result<crate::CheckReport, ConnectorError> {
        self.connector.check().await
    }

    async fn list_users(&self, cursor: Option<String>) -> Result<crate::UserPage, ConnectorError> {
        self.connector.list_users(cursor).await
    }

    async fn generate(
        &self,
        kind: crate::CredentialKind,
        count: usize,
    ) -> Result<Vec<Secret>, ConnectorError> {
        self.shape.check_generate(kind)?;
        self.connector.generate(kind, count).await
    }

    async fn reset(
        &self,
        request: crate::ResetRequest,
    ) -> Result<Vec<crate::UserOutcome>, ConnectorError> {
        self.shape.check_reset(&request)?;
        self.connector.reset(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_from_json_mark_secrets_and_are_checked() {
        struct Probe;
        #[async_trait::async_trait]
        impl crate::Connector for Probe {
            async fn check(&self) -> Result<crate::CheckReport, ConnectorError> {
                Ok(crate::CheckReport::default())
            }
            async fn reset(
                &self,
                _: crate::ResetRequest,
            ) -> Result<Vec<crate::UserOutcome>, ConnectorError> {
                Ok(Vec::new())
            }
        }
        impl Plugin for Probe {
            fn metadata() -> crate::Metadata {
                crate::Metadata::new("probe", "1", "d")
                    .setting(crate::SettingSpec::url("url", "root").required())
                    .setting(crate::SettingSpec::secret("token", "token").required())
            }
            fn create(settings: Settings, context: CreateContext) -> Result<Self, ConnectorError> {
                assert_eq!(settings.secret("token")?.expose(), "t0k");
                assert_eq!(context.target, "test");
                Ok(Probe)
            }
        }
        let values =
            setting_values::<Probe>(json!({ "url": "http://127.0.0.1:9", "token": "t0k" }));
        assert!(matches!(
            values.iter().find(|(n, _)| n == "token"),
            Some((_, SettingValue::Secret(_)))
        ));
        assert!(create::<Probe>(json!({ "url": "http://127.0.0.1:9", "token": "t0k" })).is_ok());
        let error = create::<Probe>(json!({ "url": "http://127.0.0.1:9" }))
            .err()
            .unwrap();
        assert!(
            error.message.contains("missing setting `token`"),
            "{}",
            error.message
        );
    }
}
