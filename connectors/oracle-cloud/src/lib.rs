//! rekey connector for Oracle Primavera Administration (the REST API for user
//! administration under `/cloudapi/restapi`), connector name `oracle-cloud`.
//!
//! The protocol facts it relies on (vendor-apis.md §3):
//!
//! - Basic authentication on every request, no session. `401` means the
//!   credentials were refused; `403` that the account lacks Primavera
//!   Administration rights. Both are
//!   [`ErrorKind::AuthRefused`](rekey_api::ErrorKind::AuthRefused).
//! - `GET user` returns every user at once, as a JSON array of `User` objects; a
//!   user's id is its `loginId`. It is also the only documented way to prove the
//!   credentials, so `check` lists the users, and the list serves a `list_users`
//!   that follows soon after. Login ids compare without regard to case
//!   (identity-domain user names are case-insensitive; Primavera writes them in
//!   upper case): rekey sends each login id spelled as the user list has it.
//! - `PUT user/manual-reset-pwd/{notify}` takes a JSON array of
//!   `{"loginId": "...", "password": ["P","a","s","s"]}`: the password is an array
//!   of one-character strings, and only printable ASCII is sent. `200` means every
//!   entry was set (the reply's echo of users is not needed, and not parsed: the
//!   documented example even echoes passwords). `400` "Invalid input, Please
//!   check." and `500` "...Underlying Identity Management System threw an
//!   error..." (the identity domain's password policy) fail the whole batch and
//!   change nothing: the connector splits such a batch until each user has a true
//!   outcome of its own (module `bisect`). Any other `500` leaves the outcome unknown.
//! - `PUT user/auto-reset-pwd` (for `--vendor-generate`) takes a JSON array of
//!   login ids and answers a map `{loginId: message}`: an empty message means the
//!   vendor set a password and e-mailed it to the user \[INF\]; any other message is
//!   that user's refusal. The password is never revealed.
//! - No rate limits are documented; the host's `rate` applies.

mod api;
mod bisect;
mod directory;
mod reset;

use std::time::Duration;

use async_trait::async_trait;
use rekey_api::{
    Batching, Capability, Charset, CheckReport, Connector, ConnectorError, CreateContext,
    CredentialKind, Metadata, PagedListing, PasswordRules, Plugin, ResetRequest, Secret,
    SettingSpec, Settings, StatusMap, UserOutcome, UserPage,
};
use rekey_http::{HttpOptions, Method, RequestBuilder, Response, StatusCode, VendorHttp};

use crate::api::{ListedUser, vendor_text};
use crate::directory::Directory;

/// Where the API lives under the server's root.
const API_PATH: &str = "/cloudapi/restapi";

/// Users handed out per `list_users` page.
const PAGE_SIZE: usize = 1000;

/// How long the user list fetched by `check` may serve a listing.
const CHECK_LIST_REUSE: Duration = Duration::from_secs(60);

/// The Oracle Primavera Administration connector.
pub struct OracleCloud {
    http: VendorHttp,
    username: String,
    password: Secret,
    /// The `{isEmailPasswd}` segment of manual-reset-pwd.
    notify: bool,
    batch_size: usize,
    /// The tenant's user list, fetched all at once: handed out in pages, and kept
    /// as the latest to spell login ids as the tenant does and to tell unknown ones.
    directory: PagedListing<Directory>,
    /// What the vendor's statuses mean where a request was not refused as a whole.
    statuses: StatusMap,
}

/// What the vendor accepts in passwords: printable ASCII only (the Java side holds
/// them as UTF-16 `char`s, and the identity domain's rules are unknown to rekey).
fn password_rules() -> PasswordRules {
    PasswordRules::new().charset(Charset::PrintableAscii)
}

impl Plugin for OracleCloud {
    fn metadata() -> Metadata {
        Metadata::new(
            "oracle-cloud",
            env!("CARGO_PKG_VERSION"),
            "Oracle Primavera Administration (REST API for user administration)",
        )
        .kinds([CredentialKind::Password])
        .capability(Capability::ListUsers)
        .capability(Capability::VendorReset)
        .case_insensitive_ids()
        .password_rules(password_rules())
        .setting(
            SettingSpec::url(
                "url",
                "The server's root, e.g. https://primavera.example.com (rekey adds /cloudapi/restapi)",
            )
            .required(),
        )
        .setting(
            SettingSpec::string(
                "username",
                "The login id of an account with Primavera Administration rights",
            )
            .required(),
        )
        .setting(SettingSpec::secret("password", "That account's password").required())
        .setting(
            SettingSpec::boolean(
                "notify",
                "E-mail each user about the reset (the isEmailPasswd segment of manual-reset-pwd); --vendor-generate always e-mails the user",
            )
            .default_value(false),
        )
        .setting(
            SettingSpec::integer(
                "batch_size",
                "Users per reset request; a refused batch is split until each user has its own outcome",
            )
            .at_least(1)
            .default_value(25),
        )
        .setting(rekey_http::allow_insecure_http_setting())
        .setting(rekey_http::timeout_setting())
    }

    fn create(settings: Settings, context: CreateContext) -> Result<Self, ConnectorError> {
        let options = HttpOptions::from_settings(&settings, &context);
        let username = settings.str("username")?.to_owned();
        let statuses = StatusMap::new()
            .hint(
                401,
                format!("the server refused the credentials of {username}"),
            )
            .hint(
                403,
                format!(
                    "{username} lacks Primavera Administration rights: use an account with an administrator role"
                ),
            )
            .hint(500, "whether anything was changed is unknown");
        Ok(OracleCloud {
            http: VendorHttp::new(settings.str("url")?, API_PATH, &options)?,
            username,
            password: settings.secret("password")?.clone(),
            notify: settings.bool("notify")?,
            batch_size: settings.usize("batch_size")?,
            directory: PagedListing::new(PAGE_SIZE).reuse_for(CHECK_LIST_REUSE),
            statuses,
        })
    }
}

impl OracleCloud {
    /// A request with the Basic credentials, asking for JSON.
    fn request(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        self.http
            .request(method, segments)
            .basic_auth(&self.username, Some(self.password.expose()))
            .header("Accept", "application/json")
    }

    /// Sends a `PUT` with a JSON body.
    async fn put<B: serde::Serialize + ?Sized>(
        &self,
        segments: &[&str],
        body: &B,
    ) -> Result<Response, ConnectorError> {
        self.http
            .send(self.request(Method::PUT, segments).json(body))
            .await
    }

    /// The error for a reply that is neither a success nor a refusal of the whole
    /// batch. `text` is the vendor's body, already fit to show.
    fn failure(&self, status: StatusCode, what: &str, text: &str) -> ConnectorError {
        self.statuses.error(status.as_u16(), what, Some(text))
    }

    /// Fetches the user list (`GET user`).
    async fn fetch_directory(&self) -> Result<Directory, ConnectorError> {
        let response = self.http.send(self.request(Method::GET, &["user"])).await?;
        let status = response.status();
        if !status.is_success() {
            let body = self.http.body(response).await?;
            return Err(self.failure(status, "GET user", &vendor_text(&body, &[])));
        }
        // Every user of the site comes in one reply.
        let listed: Vec<ListedUser> = self
            .http
            .json_within(response, rekey_http::LISTING_LIMIT)
            .await?;
        Ok(Directory::new(listed))
    }
}

#[async_trait]
impl Connector for OracleCloud {
    fn batching(&self) -> Batching {
        Batching::up_to(self.batch_size)
    }

    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        let directory = self.directory.refresh(|| self.fetch_directory()).await?;
        let account = directory
            .canonical(&self.username)
            .unwrap_or(&self.username)
            .to_owned();
        Ok(CheckReport {
            detail: format!(
                "{} users; Basic authentication as {account}",
                directory.len()
            ),
            account: Some(account),
        })
    }

    async fn list_users(&self, cursor: Option<String>) -> Result<UserPage, ConnectorError> {
        self.directory.page(cursor, || self.fetch_directory()).await
    }

    async fn reset(&self, request: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
        let directory = self.directory.latest(|| self.fetch_directory()).await?;
        let results = reset::reset(self, &directory, &request.items).await;
        Ok(request
            .items
            .into_iter()
            .zip(results)
            .map(|(item, result)| UserOutcome {
                user: item.user,
                result,
            })
            .collect())
    }
}

rekey_api::export_connector!(OracleCloud);
