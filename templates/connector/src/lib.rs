//! rekey connector for MyDirectory (REST API under `/api`): `POST login` gives a token for
//! `expires_in` s, `GET accounts?page=N` lists 50 a page, `PUT accounts/{id}/password` sets one.

use rekey_api::*;
use rekey_http::{Method, VendorHttp};
use std::collections::HashMap;

/// A MyDirectory target: a session logged in as the admin account.
pub struct MyDirectory(TokenSession<Api>);

/// MyDirectory's API: where it is, and who rekey logs in as.
pub struct Api {
    http: VendorHttp,
    user: String,
    password: Secret,
}

/// What MyDirectory's statuses mean where they differ from rekey's defaults.
fn statuses() -> StatusMap {
    StatusMap::new().on(404, ErrorKind::UserNotFound).on(422, ErrorKind::PolicyRejected)
}

impl Plugin for MyDirectory {
    fn metadata() -> Metadata {
        Metadata::new("mydirectory", env!("CARGO_PKG_VERSION"), "MyDirectory's REST API")
            .capability(Capability::ListUsers)
            .setting(SettingSpec::url("url", "The root, e.g. https://dir.example.com").required())
            .setting(SettingSpec::string("username", "The admin account to log in as").required())
            .setting(SettingSpec::secret("password", "That account's password").required())
            .setting(rekey_http::allow_insecure_http_setting())
            .setting(rekey_http::timeout_setting())
    }

    fn create(settings: Settings, context: CreateContext) -> Result<Self, ConnectorError> {
        let http = VendorHttp::from_settings(&settings, &context, "/api")?;
        let (user, password) = (settings.str("username")?.into(), settings.secret("password")?);
        Ok(MyDirectory(TokenSession::new(Api { http, user, password: password.clone() })))
    }
}

#[async_trait]
impl TokenSource for Api {
    type Renewal = (); // No refresh token: renewing logs in again.
    async fn login(&self) -> Result<Grant, ConnectorError> {
        let body = HashMap::from([("username", &*self.user), ("password", self.password.expose())]);
        let reply = self.http.send(self.http.request(Method::POST, &["login"]).json(&body)).await?;
        let reply = self.http.checked(reply, &StatusMap::new(), "POST login").await?;
        Ok(self.http.json::<TokenReply>(reply).await?.into())
    }
}

#[async_trait]
impl Connector for MyDirectory {
    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        self.0.ensure().await.map(|_| CheckReport::acting_as(&self.0.source().user))
    }

    async fn list_users(&self, cursor: Option<String>) -> Result<UserPage, ConnectorError> {
        let api = self.0.source();
        numbered_page(cursor, 50, |page| async move {
            let request = api.http.request(Method::GET, &["accounts"]).query(&[("page", page)]);
            let reply = api.http.send_with_token(&self.0, request).await?;
            api.http.json(api.http.checked(reply, &statuses(), "GET accounts").await?).await
        })
        .await
    }

    async fn reset(&self, request: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
        let api = self.0.source();
        Ok(reset_one_by_one(request, |user, password| async move {
            let body = HashMap::from([("password", password.value()?.expose())]);
            let request = api.http.request(Method::PUT, &["accounts", &user, "password"]);
            let reply = api.http.send_with_token(&self.0, request.json(&body)).await?;
            api.http.checked(reply, &statuses(), "PUT password").await.map(|_| Applied::default())
        })
        .await)
    }
}

rekey_api::export_connector!(MyDirectory);
