//! The example rekey connector: the fuller tour of the SDK. To write your own, start
//! from `templates/connector` (80 lines) and come here for what it does not show.
//!
//! It resets passwords and PINs on *Acme Directory*, a small, fictional in-house
//! JSON API (simulated by `rekey_sim::inhouse`), and on the way uses every part of
//! the connector API: both credential kinds, all three capabilities, batching,
//! settings of every type, and error classification. Read it top to bottom: lib.rs
//! (the two traits), `api.rs` (the vendor's JSON), `directory.rs` (its
//! HTTP calls), `classify.rs` (what its answers mean), then
//! `tests/against_simulator.rs`.
//!
//! # What a connector is
//!
//! The `rekey` host knows no vendor. For each target in its config it loads the
//! connector library the target names (`connector = "example"`) and calls it. The
//! host does everything that is the same for every vendor: reading the config and
//! its secrets, choosing the users, generating and journaling new passwords before
//! they are sent, retrying, writing the results. A connector only translates rekey's
//! calls into the vendor's API and the vendor's answers into rekey's outcomes.
//!
//! # Two traits and a macro
//!
//! - [`Plugin`]: what the connector is ([`Metadata`]: name, credential kinds,
//!   capabilities, settings schema, password rules) and how to
//!   [`create`](Plugin::create) one from a target's settings, which the host has
//!   already checked against the schema. `create` must not touch the network.
//! - [`Connector`] (implemented with `#[async_trait]`): the calls of a job.
//!   [`check`](Connector::check) authenticates and names the connector's own
//!   account; [`reset`](Connector::reset) sets values and returns one outcome per
//!   user; [`batching`](Connector::batching) says how many users one `reset`
//!   takes. [`list_users`](Connector::list_users) and
//!   [`generate`](Connector::generate) are optional: implement them and declare
//!   the matching [`Capability`].
//! - `rekey_api::export_connector!(AcmeDirectory);` makes the crate a plugin. No
//!   FFI code by hand.
//!
//! # Naming, building, installing
//!
//! The host finds connector `NAME` as the library `rekey_NAME` (`-` written `_`) on
//! its plugin path. So name the package `rekey-NAME`, build it with
//! `crate-type = ["cdylib", "rlib"]`, and declare the same `NAME` in
//! [`Metadata::new`]. This package is `rekey-example`; `cargo build --release`
//! gives `target/release/librekey_example.so`. Put that file in a directory named
//! by `$REKEY_PLUGIN_PATH`, next to the `rekey` binary, or in a directory named by
//! `[rekey] plugin_path`; `rekey connectors` lists what it finds. The README says
//! how to start a crate of your own from this one.
//!
//! # Testing against a simulator
//!
//! Test against a simulator of your system, never a live one: a small HTTP server
//! that is at least as strict as the real API (content types, body shapes, auth)
//! and lets tests inspect what was set. Create the connector in-process the way the
//! host does, and call it:
//!
//! ```
//! use rekey_api::{CreateContext, Plugin, SettingValue, Settings};
//! use rekey_example::AcmeDirectory;
//!
//! let settings = Settings::check(
//!     &AcmeDirectory::metadata().settings,
//!     [
//!         ("url".to_owned(), SettingValue::Plain("http://127.0.0.1:8080".into())),
//!         ("api_key".to_owned(), SettingValue::Secret("acme-test-key".into())),
//!     ],
//! )?;
//! let context = CreateContext {
//!     target: "acme".into(),
//!     state_dir: std::env::temp_dir(),
//!     rate: None,
//! };
//! let connector = AcmeDirectory::create(settings, context)?;
//! // connector.check().await?, connector.reset(request).await?, ...
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Then test the real `rekey` binary with the built library too (rekey's
//! `tests/example.rs` does), because only that exercises the plugin boundary.
//!
//! # The rules
//!
//! - **Never retry.** The host retries with backoff, and with the very same
//!   password. The one exception is renewing a refused token once on a 401, which
//!   [`TokenSession`](rekey_api::TokenSession) does for you.
//! - **Classify every failure** with an [`ErrorKind`](rekey_api::ErrorKind). A
//!   *definite* kind says the password is unchanged; use one only when the
//!   vendor's answer proves it, and otherwise say *unknown* (`Transient`, `Fatal`):
//!   the host then keeps the value, because it may be in effect. `classify.rs`
//!   explains each choice.
//! - **One outcome per user.** Return `Err` from `reset` only when the whole call
//!   failed the same way for everyone. Match a per-user reply to the request by id
//!   with [`match_per_user`].
//! - **Don't re-check what the host guarantees.** Settings arrive checked against
//!   the schema (types, choices, ranges), with defaults filled in. A reset holds
//!   only kinds the metadata declares, at most `batch_size` users, none twice, and
//!   a vendor-generated value only if the metadata declares `VendorReset`: the SDK
//!   refuses anything else before `reset` runs.
//! - **Secrets are [`Secret`]s.** Expose them only into a request body or header,
//!   never into a URL, a log line, an error message or `Debug` output.
//! - **Log little.** Methods, paths and counts; never bodies, headers or URLs with
//!   query strings. [`VendorHttp`](rekey_http::VendorHttp) already logs each
//!   request that way. Quote a vendor's `message` field, never its raw body.
//! - **Never panic** on anything a vendor or a config controls, and never `unwrap`
//!   it. (A panic is caught at the plugin boundary, but its outcome is unknown.)
//!
//! # The Acme Directory protocol
//!
//! The facts this connector relies on (base path `/directory/v1`, JSON both ways,
//! the API key in `X-Api-Key`; errors are `{"error", "message"}`):
//!
//! - `GET whoami` → `{"id", "scopes"}`: the key's own service account.
//! - `GET users?limit=&cursor=` → `{"users": [{"id", "name", "disabled"}],
//!   "next"}`: server-side paging, `limit` at most 200, `next` opaque or `null`.
//! - `POST passwords:generate` / `passcodes:generate` `{"count"}` (at most 100) →
//!   `{"passwords" | "passcodes": [...]}`: values made by the directory, set on no one.
//! - `POST passwords:reset` / `passcodes:reset` `{"items": [{"id", "password" |
//!   "passcode"} | {"id", "generate": true}]}` (at most 100) → `{"results": [{"id",
//!   "status", "message"}]}` with status `ok`, `not_found`, `policy`, `protected`
//!   or `error`. A value generated in place is never returned. The whole request is
//!   validated before any item is applied, so a 400 changed nothing.
//! - 401: unknown key; 403: the key lacks `users:read` or `passwords:write`; 429
//!   with `Retry-After` above the key's request rate.

mod api;
mod classify;
mod directory;

use async_trait::async_trait;
use rekey_api::{
    Batching, Capability, CharClass, Charset, CheckReport, Connector, ConnectorError,
    CreateContext, CredentialKind, IdCase, Metadata, NewPassword, PasswordRules, Plugin,
    ResetRequest, Secret, SettingSpec, Settings, UserEntry, UserOutcome, UserPage, match_per_user,
};
use rekey_http::HttpOptions;

use crate::api::{Endpoints, ResetBody, ResetItem};
use crate::directory::Directory;

/// Users a reset request carries when the target does not set `batch_size`.
const DEFAULT_BATCH_SIZE: u64 = 50;

/// The Acme Directory connector.
///
/// Calls arrive concurrently (up to the target's `concurrency`). This connector
/// keeps no mutable state, so it needs no locks; one that does (a session token, a
/// cache) keeps it behind a `tokio::sync::Mutex`.
pub struct AcmeDirectory {
    directory: Directory,
    batch_size: usize,
    /// Whether listings leave out disabled accounts (`list_accounts = "enabled"`).
    enabled_only: bool,
}

impl Plugin for AcmeDirectory {
    fn metadata() -> Metadata {
        Metadata::new(
            // The connector's name: what a target's `connector` key says, and the
            // `NAME` in the library's file name `librekey_NAME.so`.
            "example",
            env!("CARGO_PKG_VERSION"),
            "Acme Directory, the fictional in-house system of rekey's example connector",
        )
        // `--kind password` (the default) and `--kind passcode`; the host refuses
        // any other kind before calling the connector.
        .kinds([CredentialKind::Password, CredentialKind::Passcode])
        // `rekey users` and `reset --all` work.
        .capability(Capability::ListUsers)
        // `--vendor-generate`: the host asks `generate` for values, journals them,
        // then sets them with `reset` like its own. Declared together with
        // VendorReset, the host prefers this, because the values are then known.
        .capability(Capability::VendorValues)
        // The vendor can also make and set a value itself without revealing it
        // (`NewPassword::VendorGenerated`). The host uses this only for connectors
        // that lack VendorValues; it is here to show how `reset` handles it.
        .capability(Capability::VendorReset)
        // Acme ids are case-sensitive (`u00001` is not `U00001`), so no
        // `.case_insensitive_ids()`; e-mail addresses or AD names would want it.
        //
        // What the vendor accepts in a password: Acme's policy is 12 to 64
        // printable ASCII characters with a lower-case and an upper-case letter and
        // a digit. The host checks the target's generator policy against it when
        // the target is opened, and any `--password-env` value before a job starts
        // (exit 2, never quoting the value), so nothing Acme would refuse for its
        // shape is ever sent.
        .password_rules(
            PasswordRules::new()
                .charset(Charset::PrintableAscii)
                .length(12..=64)
                .require([CharClass::Lower, CharClass::Upper, CharClass::Digit]),
        )
        // The settings schema: the host checks each target against it (unknown
        // keys, types, required settings, choices) and fills in the defaults
        // before `create` runs. `rekey connectors show example` prints it.
        .setting(
            SettingSpec::url(
                "url",
                "The Acme Directory's root, e.g. https://directory.acme.example (rekey adds /directory/v1)",
            )
            .required(),
        )
        // A secret is given as `{ env = "..." }` or `{ file = "..." }`, never
        // printed, and reaches the connector as a `Secret`.
        .setting(
            SettingSpec::secret(
                "api_key",
                "An API key with the users:read and passwords:write scopes",
            )
            .required(),
        )
        // An integer with a range: the host refuses a value outside it, naming the
        // range, and `rekey connectors show` prints it.
        .setting(
            SettingSpec::integer("batch_size", "Users per reset request")
                .range(1..=api::MAX_ITEMS as u64)
                .default_value(DEFAULT_BATCH_SIZE),
        )
        .setting(
            SettingSpec::string(
                "list_accounts",
                "Which accounts `rekey users` and `reset --all` see",
            )
            .choices(&["all", "enabled"])
            .default_value("all"),
        )
        // The two settings every HTTP connector shares, from rekey-http.
        .setting(rekey_http::allow_insecure_http_setting())
        .setting(rekey_http::timeout_setting())
    }

    fn create(settings: Settings, context: CreateContext) -> Result<Self, ConnectorError> {
        // The schema has done the checks (types, choices, the range of batch_size)
        // and filled in the defaults; only rules it cannot express remain (the API
        // key's characters, in `Directory::new`).
        //
        // `context.state_dir` is a private directory for state across runs (a
        // daily quota count, a cache). Acme needs none, so it goes unused here.
        let options = HttpOptions::from_settings(&settings, &context);
        Ok(AcmeDirectory {
            directory: Directory::new(
                settings.str("url")?,
                settings.secret("api_key")?.clone(),
                &options,
            )?,
            batch_size: settings.usize("batch_size")?,
            enabled_only: settings.str("list_accounts")? == "enabled",
        })
    }
}

#[async_trait]
impl Connector for AcmeDirectory {
    fn batching(&self) -> Batching {
        // Each item carries its own value, so any users can share a request. A
        // vendor whose request carries one password for everyone in it would say
        // `Batching { max_users, shared_password: true }`, and the host would then
        // batch only runs where every user gets the same value.
        Batching::up_to(self.batch_size)
    }

    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        let me = self.directory.whoami().await?;
        // Refuse now, once, with what to do about it, rather than let every reset
        // of the job fail on a 403.
        if !me.scopes.iter().any(|s| s == api::SCOPE_WRITE) {
            let has = if me.scopes.is_empty() {
                "none".to_owned()
            } else {
                me.scopes.join(", ")
            };
            return Err(ConnectorError::auth_refused(format!(
                "the API key of service account {} lacks the {} scope (it has: {has}), so Acme would refuse every reset: ask the directory team to grant it, or use a key that has it",
                me.id,
                api::SCOPE_WRITE
            )));
        }
        Ok(CheckReport {
            // The host never resets the account it acts as: `--all` skips it.
            account: Some(me.id.clone()),
            detail: format!("service account {}; scopes {}", me.id, me.scopes.join(", ")),
        })
    }

    async fn list_users(&self, cursor: Option<String>) -> Result<UserPage, ConnectorError> {
        // Acme pages on the server, so rekey's cursor is simply Acme's. (A vendor
        // that returns everyone at once is fetched once and handed out from a cache
        // in pages of about 1000: see the SmarterMail connector.)
        let page = self.directory.users(cursor.as_deref()).await?;
        if page.next.is_some() && page.next == cursor {
            // The host would ask for the same page forever.
            return Err(ConnectorError::fatal(
                "GET users: the directory returned the cursor it was given as the next one",
            ));
        }
        let users = page
            .users
            .into_iter()
            .filter(|user| !(self.enabled_only && user.disabled))
            .map(|user| UserEntry {
                id: user.id,
                name: user.name.filter(|n| !n.is_empty()),
                disabled: user.disabled,
            })
            .collect();
        // A page left empty by the filter is fine: the host follows `next`.
        Ok(UserPage {
            users,
            next: page.next,
        })
    }

    async fn generate(
        &self,
        kind: CredentialKind,
        count: usize,
    ) -> Result<Vec<Secret>, ConnectorError> {
        let endpoints = Endpoints::of(kind)?;
        // The host may ask for more values than Acme makes in one call. Several
        // calls are not retries: each asks for different values. If one fails,
        // the values already made are simply dropped; nothing was set with them.
        let mut values = Vec::with_capacity(count);
        while values.len() < count {
            let wanted = (count - values.len()).min(api::MAX_ITEMS);
            values.extend(self.directory.generate(endpoints, wanted).await?);
        }
        tracing::debug!(%kind, count, "the directory made new values");
        Ok(values)
    }

    async fn reset(&self, request: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
        let endpoints = Endpoints::of(request.kind)?;
        let mut outcomes = Vec::with_capacity(request.items.len());

        // A malformed value would make Acme refuse the whole request; fail only its
        // user, without sending it. Definite: it never left this process.
        let mut sent = Vec::with_capacity(request.items.len());
        for item in &request.items {
            let malformed = item.password.known().and_then(|v| endpoints.malformed(v));
            match malformed {
                Some(why) => outcomes.push(UserOutcome::failed(
                    item.user.clone(),
                    ConnectorError::policy_rejected(why),
                )),
                None => sent.push(item),
            }
        }
        if sent.is_empty() {
            return Ok(outcomes);
        }

        let body = ResetBody {
            items: sent
                .iter()
                .map(|item| {
                    let value = match &item.password {
                        NewPassword::Known(value) => Some(value),
                        // Acme makes and sets the value (`generate: true`).
                        NewPassword::VendorGenerated => None,
                    };
                    ResetItem::new(request.kind, &item.user, value)
                })
                .collect(),
        };
        tracing::debug!(kind = %request.kind, users = sent.len(), "resetting a batch");
        let results = match self.directory.reset(endpoints, &body).await {
            Ok(results) => results,
            // The whole call failed alike for every user sent; the users failed
            // above keep their own outcomes.
            Err(error) => {
                outcomes.extend(
                    sent.iter()
                        .map(|item| UserOutcome::failed(item.user.clone(), error.clone())),
                );
                return Ok(outcomes);
            }
        };

        // Match results to users by id, not by position: the host needs exactly
        // one outcome per user, and a reply that leaves one out must not shift
        // another user's outcome onto it. A user the reply leaves out gets an
        // unknown outcome (the request was accepted, so the change may have been
        // applied); a result for someone not asked about is ignored and logged.
        outcomes.extend(match_per_user(
            sent.iter().map(|item| item.user.as_str()),
            results
                .into_iter()
                .map(|result| (result.id.clone(), result)),
            IdCase::Exact,
            classify::item_outcome,
        ));
        let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
        tracing::debug!(failed, "batch done");
        Ok(outcomes)
    }
}

// The library's entry point: the one line that makes this crate a rekey plugin.
rekey_api::export_connector!(AcmeDirectory);
