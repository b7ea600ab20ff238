//! rekey connector for SmarterMail (REST API v1, SmarterMail build 100.x and later).
//!
//! - Logs in once per run (`POST /api/v1/auth/authenticate-user`, JSON), then keeps
//!   the access token fresh with the rotating refresh token
//!   (`POST /api/v1/auth/refresh-token`) shortly before `accessTokenExpiration` and
//!   once on a 401; never by logging in again, and never by two workers at once
//!   (a [`TokenSession`]; module `session` holds SmarterMail's part).
//! - Checks the `success` flag of every reply: SmarterMail answers HTTP 200 to most
//!   failures.
//! - Lists users with `GET settings/domain/list-users` and sets a password with
//!   `POST settings/domain/post-user`, one user a call, each with its own outcome.
//! - When `domain` is set, `username` is a system administrator and the connector
//!   manages that domain by impersonation
//!   (`POST settings/sysadmin/manage-domain/{domain}`).

mod api;
mod session;

use std::time::Duration;

use async_trait::async_trait;
use rekey_api::{
    Applied, Capability, CheckReport, Connector, ConnectorError, CreateContext, CredentialKind,
    Metadata, PagedListing, Plugin, ResetRequest, Secret, SettingSpec, Settings, StatusMap,
    TokenSession, UserEntry, UserOutcome, UserPage,
};
use rekey_http::{HttpOptions, Method, StatusCode, VendorHttp};

use crate::api::{ListUsersReply, PostUserBody, PostUserData, Reply};
use crate::session::Login;

/// The message SmarterMail gives for an unknown user.
const USER_DOES_NOT_EXIST: &str = "User does not exist.";

/// Users handed out per `list_users` page.
const PAGE_SIZE: usize = 1000;

/// Token lifetime assumed when the server does not say.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// The SmarterMail connector.
pub struct SmarterMail {
    session: TokenSession<Login>,
    /// The users fetched by the first page of a listing, handed out page by page.
    directory: PagedListing,
    /// What SmarterMail's HTTP statuses mean (the defaults: it answers most
    /// failures with HTTP 200 and `success: false`).
    statuses: StatusMap,
}

impl Plugin for SmarterMail {
    fn metadata() -> Metadata {
        Metadata::new(
            "smartermail",
            env!("CARGO_PKG_VERSION"),
            "SmarterMail mail server (REST API v1)",
        )
        .kinds([CredentialKind::Password])
        .capability(Capability::ListUsers)
        .case_insensitive_ids()
        .setting(SettingSpec::url("url", "The server's root, e.g. https://mail.example.com").required())
        .setting(
            SettingSpec::string(
                "username",
                "The administrator to log in as: a domain administrator's e-mail address, or a system administrator's name when domain is set",
            )
            .required(),
        )
        .setting(SettingSpec::secret("password", "That administrator's password").required())
        .setting(SettingSpec::string(
            "domain",
            "The domain to manage when username is a system administrator (manage-domain impersonation)",
        ))
        .setting(rekey_http::allow_insecure_http_setting())
        .setting(rekey_http::timeout_setting())
    }

    fn create(settings: Settings, context: CreateContext) -> Result<Self, ConnectorError> {
        let options = HttpOptions::from_settings(&settings, &context);
        let http = VendorHttp::new(settings.str("url")?, "/api/v1", &options)?;
        let domain = settings
            .get_str("domain")
            .map(str::to_owned)
            .filter(|d| !d.is_empty());
        let login = Login::new(
            http,
            settings.str("username")?.to_owned(),
            settings.secret("password")?.clone(),
            domain,
        );
        Ok(SmarterMail {
            session: TokenSession::new(login).default_lifetime(DEFAULT_LIFETIME),
            directory: PagedListing::new(PAGE_SIZE),
            statuses: StatusMap::new(),
        })
    }
}

impl SmarterMail {
    fn http(&self) -> &VendorHttp {
        &self.session.source().http
    }

    fn username(&self) -> &str {
        &self.session.source().username
    }

    /// Sends a request on the domain scope with a fresh token (renewed once on a
    /// 401). A 403 means the account may not manage the domain's users.
    async fn domain_call<B: serde::Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&B>,
    ) -> Result<rekey_http::Response, ConnectorError> {
        let mut request = self
            .http()
            .request(method, segments)
            .header("Accept", "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = self.http().send_with_token(&self.session, request).await?;
        if response.status() == StatusCode::FORBIDDEN {
            return Err(ConnectorError::auth_refused(format!(
                "{} may not manage this domain's users (403): log in as a domain administrator, or as a system administrator with domain set",
                self.username()
            )));
        }
        Ok(response)
    }

    async fn fetch_directory(&self) -> Result<Vec<UserEntry>, ConnectorError> {
        let response = self
            .domain_call::<()>(Method::GET, &["settings", "domain", "list-users"], None)
            .await?;
        let status = response.status();
        if !status.is_success() {
            let body = self.http().text(response).await?;
            return Err(ConnectorError::fatal(format!(
                "listing users failed with HTTP {status}: {}",
                api::message_of(&body)
            )));
        }
        // Every user of the domain comes in one reply.
        let reply: ListUsersReply = self
            .http()
            .json_within(response, rekey_http::LISTING_LIMIT)
            .await?;
        if reply.success != Some(true) {
            let message = reply.message.unwrap_or_else(|| "no message".into());
            return Err(ConnectorError::fatal(format!(
                "listing users failed: {message} (if username is a system administrator, set domain)"
            )));
        }
        Ok(reply
            .user_data
            .into_iter()
            .map(|user| UserEntry {
                id: user.email_address,
                name: user.full_name.filter(|n| !n.is_empty()),
                disabled: user.security_flags.is_some_and(|f| f.is_disabled),
            })
            .collect())
    }

    async fn set_password(&self, user: &str, password: &Secret) -> Result<Applied, ConnectorError> {
        let body = PostUserBody {
            email: user,
            user_data: PostUserData {
                password: password.expose(),
            },
        };
        let response = self
            .domain_call(
                Method::POST,
                &["settings", "domain", "post-user"],
                Some(&body),
            )
            .await?;
        let status = response.status();
        if !status.is_success() {
            let text = self.http().text(response).await?;
            return Err(self.statuses.error(
                status.as_u16(),
                "POST settings/domain/post-user",
                Some(&api::message_of(&text)),
            ));
        }
        let reply: Reply = self.http().json(response).await?;
        match (reply.success, reply.message) {
            (Some(true), message) => Ok(Applied {
                vendor_password: None,
                detail: message.filter(|m| !m.is_empty()),
            }),
            (_, Some(message)) if message.trim() == USER_DOES_NOT_EXIST => {
                Err(ConnectorError::user_not_found(message))
            }
            (_, Some(message)) if !message.is_empty() => Err(ConnectorError::rejected(message)),
            _ => Err(ConnectorError::rejected(
                "the server refused the change and gave no message",
            )),
        }
    }
}

#[async_trait]
impl Connector for SmarterMail {
    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        self.session.ensure().await?;
        let login = self.session.source();
        Ok(CheckReport {
            account: Some(login.username.clone()),
            detail: match &login.domain {
                Some(domain) => format!(
                    "logged in as system administrator {}, managing {domain}",
                    login.username
                ),
                None => format!("logged in as {}", login.username),
            },
        })
    }

    async fn list_users(&self, cursor: Option<String>) -> Result<UserPage, ConnectorError> {
        self.directory.page(cursor, || self.fetch_directory()).await
    }

    async fn reset(&self, request: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
        Ok(
            rekey_api::reset_one_by_one(request, |user, password| async move {
                self.set_password(&user, password.value()?).await
            })
            .await,
        )
    }
}

rekey_api::export_connector!(SmarterMail);
