//! [`Directory`]: Acme Directory's HTTP calls, one method each.
//!
//! Every request goes through [`VendorHttp`] from `rekey-http`, never through a
//! client of your own: it enforces the TLS policy (certificates verified, plain
//! `http://` only to this machine unless the target allows it), refuses redirects
//! (credentials must not follow one to another host), applies the target's request
//! `rate`, turns 429/502/503/504 and connection failures into retryable errors, and
//! logs method and path only, never a query string, header or body.
//!
//! Acme authenticates every request by a static API key, so there is no session to
//! keep. A vendor with login tokens implements [`rekey_api::TokenSource`] (its
//! login call, and its refresh call if it has one; without one, renewing logs in
//! again), keeps a [`rekey_api::TokenSession`] of it, and sends each request with
//! `self.http.send_with_token(&self.session, request)`: the session logs in once,
//! renews the token before it expires and once after a 401 (the one retry a
//! connector may do), one renewal at a time, and the token is taken only once the
//! target's rate limit lets the request leave. The SmarterMail connector's
//! `session.rs` is a complete `TokenSource`.

use rekey_api::{ConnectorError, Secret, StatusMap};
use rekey_http::{HttpOptions, Method, RequestBuilder, VendorHttp};
use serde::de::DeserializeOwned;

use crate::api::{
    self, Endpoints, ErrorBody, GenerateBody, ItemResult, ResetBody, ResetReply, UsersPage, WhoAmI,
};
use crate::classify;

/// A client for one Acme Directory.
pub(crate) struct Directory {
    http: VendorHttp,
    api_key: Secret,
    /// What Acme's HTTP statuses mean ([`classify::statuses`]).
    statuses: StatusMap,
}

impl Directory {
    /// A client for the directory at `url` (the server's root). Checks the settings
    /// but sends nothing.
    pub(crate) fn new(
        url: &str,
        api_key: Secret,
        options: &HttpOptions,
    ) -> Result<Directory, ConnectorError> {
        // A key with spaces, control or non-ASCII characters cannot travel in a
        // header; say so now, as a settings error, rather than as a puzzling
        // failure of the first request. Never quote the key itself.
        if api_key.is_empty() || !api_key.expose().bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConnectorError::invalid_settings(
                "api_key is empty or holds characters an HTTP header cannot carry (spaces, control or non-ASCII characters): copy the key again",
            ));
        }
        Ok(Directory {
            http: VendorHttp::new(url, api::API_PATH, options)?,
            api_key,
            statuses: classify::statuses(),
        })
    }

    /// A request to `path` under the API, authenticated. The key goes in a header,
    /// never in the URL: URLs end up in proxy logs and error messages.
    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, &[path])
            .header("X-Api-Key", self.api_key.expose())
            .header("Accept", "application/json")
    }

    /// Sends `request` and reads a JSON reply, or classifies the failure.
    async fn call<T: DeserializeOwned>(
        &self,
        what: &str,
        request: RequestBuilder,
    ) -> Result<T, ConnectorError> {
        let response = self.http.send(request).await?;
        let status = response.status();
        if status.is_success() {
            // An unreadable 2xx reply is `Fatal`: for a reset, the change may have
            // been applied although the answer cannot be read.
            return self.http.json(response).await;
        }
        let body = self.http.body(response).await?;
        let message = serde_json::from_slice::<ErrorBody>(&body)
            .unwrap_or_default()
            .message;
        Err(self
            .statuses
            .error(status.as_u16(), what, message.as_deref()))
    }

    /// `GET whoami`.
    pub(crate) async fn whoami(&self) -> Result<WhoAmI, ConnectorError> {
        self.call("GET whoami", self.request(Method::GET, "whoami"))
            .await
    }

    /// `GET users`: the page after `cursor`.
    pub(crate) async fn users(&self, cursor: Option<&str>) -> Result<UsersPage, ConnectorError> {
        let mut query = vec![("limit", api::MAX_PAGE.to_string())];
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor.to_owned()));
        }
        let request = self.request(Method::GET, "users").query(&query);
        self.call("GET users", request).await
    }

    /// `POST passwords:generate` (or `passcodes:generate`): exactly `count` new
    /// values, `count` at most [`api::MAX_ITEMS`].
    pub(crate) async fn generate(
        &self,
        endpoints: Endpoints,
        count: usize,
    ) -> Result<Vec<Secret>, ConnectorError> {
        let what = format!("POST {}", endpoints.generate);
        let request = self
            .request(Method::POST, endpoints.generate)
            .json(&GenerateBody { count });
        let reply: api::Generated = self.call(&what, request).await?;
        let values = match endpoints.kind {
            rekey_api::CredentialKind::Passcode => reply.passcodes,
            _ => reply.passwords,
        }
        .unwrap_or_default();
        // The host journals these values and then sets them; a short list or a
        // malformed value is caught here, before anything was set.
        if values.len() != count {
            return Err(ConnectorError::fatal(format!(
                "{what}: asked for {count} values and got {}",
                values.len()
            )));
        }
        if let Some(why) = values.iter().find_map(|v| endpoints.malformed(v)) {
            return Err(ConnectorError::fatal(format!(
                "{what}: the directory made an unusable value ({why})"
            )));
        }
        Ok(values)
    }

    /// `POST passwords:reset` (or `passcodes:reset`) with up to
    /// [`api::MAX_ITEMS`] items: the results, one per item.
    pub(crate) async fn reset(
        &self,
        endpoints: Endpoints,
        body: &ResetBody<'_>,
    ) -> Result<Vec<ItemResult>, ConnectorError> {
        let what = format!("POST {}", endpoints.reset);
        let request = self.request(Method::POST, endpoints.reset).json(body);
        let reply: ResetReply = self.call(&what, request).await?;
        Ok(reply.results)
    }
}
