//! rekey connector for Cisco/Oracle BroadWorks through the Odin API (Rev.io ODiN).
//!
//! It resets the web (portal login) password, the SIP authentication password or
//! the voicemail/portal passcode of the users of one BroadWorks group, as an Odin
//! administrator. The protocol facts it relies on (vendor-apis.md §2):
//!
//! - Everything lives under `{url}/api/v2`; every call sends
//!   `Content-Type: application/json`, and after login `Authorization: Bearer`.
//!   Query parameters go in the URL, bodies are JSON; secrets only in bodies.
//! - Login: `POST auth/token {"username","password"}` → `{"token"}` (a JWT); one
//!   login a run. Refresh: `PUT auth/token` with the token and no body → a new
//!   token, shortly before the old one expires (its `exp`, or an expiry field of the
//!   reply, judged by the server's `Date`; 24 hours when unknown) and once on a 401.
//! - Success is any 2xx. Errors are `{details, status, error}`, reported as
//!   `"{details} {status}: {error}"` like odins-spear. 403 means the administrator
//!   lacks rights; 404 an unknown user; another 4xx a refusal (password rules);
//!   other 5xx an unknown outcome.
//! - Users: `GET users?serviceProviderId&groupId` → an array of user objects, all
//!   at once; user ids such as `john.smith@testdomain.net` are case-sensitive.
//! - Web password: `PUT users/passwords {"userId","newPassword"}`.
//! - SIP password: `GET users/authentication?userId` for the SIP `userName`, then
//!   `PUT users/authentication {"userId","userName","newPassword"}`; the user needs
//!   the Authentication service.
//! - Passcode: `PUT users/portal-passcode {"userId","newPasscode"}`. No client-side
//!   length check: the server's passcode rules decide.
//! - Vendor values: `GET password/generate` and `GET passcode/generate` with
//!   `serviceProviderId`, `groupId` and `limit` (up to 100 values a call), and
//!   `GET sip-password/generate` once per value, a few at a time: the reference
//!   does not know whether that endpoint takes `limit` (§2.3 [!], §6).

mod api;
mod client;
mod generate;
mod session;

use async_trait::async_trait;
use rekey_api::{
    Applied, Batching, Capability, CheckReport, Connector, ConnectorError, CreateContext,
    CredentialKind, ErrorKind, Metadata, PagedListing, Plugin, ResetRequest, Secret, SettingSpec,
    Settings, UserEntry, UserOutcome, UserPage,
};
use rekey_http::{HttpOptions, Method, VendorHttp};

use crate::api::{
    AuthenticationBody, AuthenticationSettings, ListedUser, PasscodeBody, WebPasswordBody,
};
use crate::client::{Odin, Statuses};
use crate::generate::Group;

/// Users handed out per `list_users` page.
const PAGE_SIZE: usize = 1000;

/// The BroadWorks (Odin API) connector.
pub struct BroadWorks {
    odin: Odin,
    username: String,
    service_provider_id: String,
    group_id: String,
    /// What Odin's statuses mean, per kind of call.
    statuses: Statuses,
    /// The users fetched by the first page of a listing, handed out page by page.
    directory: PagedListing,
}

impl Plugin for BroadWorks {
    fn metadata() -> Metadata {
        Metadata::new(
            "broadworks",
            env!("CARGO_PKG_VERSION"),
            "Cisco/Oracle BroadWorks through the Odin API (v2)",
        )
        .kinds([
            CredentialKind::Password,
            CredentialKind::Sip,
            CredentialKind::Passcode,
        ])
        .capability(Capability::ListUsers)
        .capability(Capability::VendorValues)
        .setting(
            SettingSpec::url(
                "url",
                "The Odin API server's root, e.g. https://odin.example.com (rekey adds /api/v2)",
            )
            .required(),
        )
        .setting(SettingSpec::string("username", "The Odin administrator to log in as").required())
        .setting(SettingSpec::secret("password", "That administrator's password").required())
        .setting(
            SettingSpec::string(
                "service_provider_id",
                "The BroadWorks service provider (enterprise) of the group",
            )
            .required(),
        )
        .setting(
            SettingSpec::string("group_id", "The BroadWorks group whose users are reset")
                .required(),
        )
        .setting(rekey_http::allow_insecure_http_setting())
        .setting(rekey_http::timeout_setting())
    }

    fn create(settings: Settings, context: CreateContext) -> Result<Self, ConnectorError> {
        let options = HttpOptions::from_settings(&settings, &context);
        let http = VendorHttp::new(settings.str("url")?, "/api/v2", &options)?;
        let username = settings.str("username")?.to_owned();
        let password = settings.secret("password")?.clone();
        let non_empty = |name: &str| -> Result<String, ConnectorError> {
            let value = settings.str(name)?.trim();
            if value.is_empty() {
                return Err(ConnectorError::invalid_settings(format!(
                    "setting `{name}` is empty"
                )));
            }
            Ok(value.to_owned())
        };
        let service_provider_id = non_empty("service_provider_id")?;
        let group_id = non_empty("group_id")?;
        Ok(BroadWorks {
            odin: Odin::new(http, username.clone(), password),
            statuses: Statuses::new(&service_provider_id, &group_id),
            service_provider_id,
            group_id,
            username,
            directory: PagedListing::new(PAGE_SIZE),
        })
    }
}

impl BroadWorks {
    fn group(&self) -> Group<'_> {
        Group {
            service_provider_id: &self.service_provider_id,
            group_id: &self.group_id,
            statuses: &self.statuses.group,
        }
    }

    async fn fetch_directory(&self) -> Result<Vec<UserEntry>, ConnectorError> {
        let query = [
            ("serviceProviderId", self.service_provider_id.as_str()),
            ("groupId", self.group_id.as_str()),
        ];
        let reply = self
            .odin
            .call::<()>(Method::GET, &["users"], &query, None)
            .await?;
        if !reply.is_success() {
            return Err(reply.error(&self.statuses.group));
        }
        let users: Vec<ListedUser> = reply.json()?;
        Ok(users
            .into_iter()
            .map(|user| UserEntry {
                name: user.display_name(),
                id: user.user_id,
                disabled: false,
            })
            .collect())
    }

    /// Sends one user's change and reads the answer: any 2xx is applied (the
    /// success bodies are not documented, so they are not read).
    async fn put(
        &self,
        segments: &[&str],
        body: &impl serde::Serialize,
    ) -> Result<Applied, ConnectorError> {
        let reply = self
            .odin
            .call(Method::PUT, segments, &[], Some(body))
            .await?;
        if reply.is_success() {
            Ok(Applied::default())
        } else {
            Err(reply.error(&self.statuses.user))
        }
    }

    async fn set_sip_password(
        &self,
        user: &str,
        password: &Secret,
    ) -> Result<Applied, ConnectorError> {
        // The Odin UI sends back what it read, plus newPassword; the SIP user name
        // is the part that matters (a server may check it against the password).
        let reply = self
            .odin
            .call::<()>(
                Method::GET,
                &["users", "authentication"],
                &[("userId", user)],
                None,
            )
            .await?;
        if !reply.is_success() {
            return Err(match reply.error(&self.statuses.user) {
                // Nothing was sent yet, so the failure is definite.
                error if error.kind == ErrorKind::Fatal => ConnectorError::rejected(format!(
                    "reading the SIP authentication settings failed, so nothing was changed: {}",
                    error.message
                )),
                error => error,
            });
        }
        let settings: AuthenticationSettings = reply.json().map_err(|error| {
            ConnectorError::rejected(format!("{}; nothing was changed", error.message))
        })?;
        let user_name = settings.user_name.filter(|n| !n.is_empty());
        self.put(
            &["users", "authentication"],
            &AuthenticationBody {
                user_id: user,
                user_name: user_name.as_deref(),
                new_password: password.expose(),
            },
        )
        .await
    }

    async fn set(
        &self,
        kind: CredentialKind,
        user: &str,
        password: &Secret,
    ) -> Result<Applied, ConnectorError> {
        match kind {
            CredentialKind::Password => {
                self.put(
                    &["users", "passwords"],
                    &WebPasswordBody {
                        user_id: user,
                        new_password: password.expose(),
                    },
                )
                .await
            }
            CredentialKind::Sip => self.set_sip_password(user, password).await,
            CredentialKind::Passcode => {
                self.put(
                    &["users", "portal-passcode"],
                    &PasscodeBody {
                        user_id: user,
                        new_passcode: password.expose(),
                    },
                )
                .await
            }
        }
    }
}

#[async_trait]
impl Connector for BroadWorks {
    /// Odin sets one user's credential a request.
    fn batching(&self) -> Batching {
        Batching::SINGLE
    }

    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        self.odin.ensure_session().await?;
        // The Odin login is an administrator, not a user of the group.
        Ok(CheckReport {
            account: None,
            detail: format!(
                "logged in to Odin as {}; group {} of service provider {}",
                self.username, self.group_id, self.service_provider_id
            ),
        })
    }

    async fn list_users(&self, cursor: Option<String>) -> Result<UserPage, ConnectorError> {
        self.directory.page(cursor, || self.fetch_directory()).await
    }

    async fn generate(
        &self,
        kind: CredentialKind,
        count: usize,
    ) -> Result<Vec<Secret>, ConnectorError> {
        generate::generate(&self.odin, &self.group(), kind, count).await
    }

    async fn reset(&self, request: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
        let kind = request.kind;
        Ok(
            rekey_api::reset_one_by_one(request, |user, password| async move {
                self.set(kind, &user, password.value()?).await
            })
            .await,
        )
    }
}

rekey_api::export_connector!(BroadWorks);
