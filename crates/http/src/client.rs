//! [`VendorHttp`]: the client every connector uses.

use std::cell::Cell;
use std::error::Error as _;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use rekey_api::{
    Attempt, ConnectorError, CreateContext, ErrorKind, Secret, Settings, StatusMap, TokenSession,
    TokenSource, check_root_url,
};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, Request, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use crate::rate::RateLimiter;

tokio::task_local! {
    /// The rate limiter (by address; 0 for none) of which the current call holds
    /// a slot that it has not used yet (see [`VendorHttp::send_with_token_in`]).
    static SLOT_IN_HAND: Cell<usize>;
}

/// The largest reply rekey reads into memory from an ordinary call: far more than
/// any reset, token or page needs, and small enough that every worker at once
/// cannot exhaust memory (64 requests in flight hold at most 512 MiB).
pub const REPLY_LIMIT: usize = 8 * 1024 * 1024;

/// The largest reply of a call that lists every account at once (the vendor's
/// whole directory in one reply; listings run one at a time).
pub const LISTING_LIMIT: usize = 256 * 1024 * 1024;

/// How a connector's HTTP client behaves.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Allow `http://` to hosts other than this machine.
    pub allow_insecure_http: bool,
    /// Requests a second, shared by every worker; `None` for no limit.
    pub rate: Option<f64>,
    /// How long one request may take.
    pub timeout: Duration,
}

impl HttpOptions {
    /// Options from the standard settings (`allow_insecure_http`, `timeout`) and the
    /// host's context (`rate`).
    pub fn from_settings(settings: &Settings, context: &CreateContext) -> Self {
        HttpOptions {
            allow_insecure_http: settings.get_bool("allow_insecure_http").unwrap_or(false),
            rate: context.rate,
            timeout: Duration::from_secs(settings.get_u64("timeout").unwrap_or(60).max(1)),
        }
    }
}

/// An HTTP client for one vendor API, rooted at the target's `url` plus the API's
/// own path.
#[derive(Debug)]
pub struct VendorHttp {
    client: reqwest::Client,
    base: Url,
    limiter: Option<RateLimiter>,
}

impl VendorHttp {
    /// A client for the server at `root` (the target's `url` setting: scheme, host,
    /// port) and the API under `api_path` (`/api/v1`).
    pub fn new(root: &str, api_path: &str, options: &HttpOptions) -> Result<Self, ConnectorError> {
        let root = check_root_url(root)
            .map_err(|e| ConnectorError::invalid_settings(format!("url: {e}")))?;
        if root.scheme() == "http" && !options.allow_insecure_http && !is_loopback(&root) {
            return Err(ConnectorError::invalid_settings(format!(
                "url {root} uses plain http:// to another machine, so the admin credentials and new passwords would travel unencrypted: use https://, or set allow_insecure_http = true for this target if you accept that"
            )));
        }
        let mut base = root;
        base.set_path(&format!("{}/", api_path.trim_end_matches('/')));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10).min(options.timeout))
            .timeout(options.timeout)
            .user_agent(concat!("rekey/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ConnectorError::fatal(format!("cannot set up the HTTP client: {}", describe(&e)))
            })?;
        Ok(VendorHttp {
            client,
            base,
            limiter: options.rate.and_then(RateLimiter::new),
        })
    }

    /// A client for the target's `url` setting (the server's root) and the API under
    /// `api_path`, with the options of [`HttpOptions::from_settings`]: what
    /// `Plugin::create` of most connectors starts with.
    pub fn from_settings(
        settings: &Settings,
        context: &CreateContext,
        api_path: &str,
    ) -> Result<Self, ConnectorError> {
        let options = HttpOptions::from_settings(settings, context);
        VendorHttp::new(settings.str("url")?, api_path, &options)
    }

    /// The API's base URL (ends with `/`).
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The URL of `segments` under the API's base, each segment percent-encoded
    /// (so a user id with `/` or `?` stays one segment).
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        {
            let mut path = url.path_segments_mut().expect("http URLs have paths");
            path.pop_if_empty();
            path.extend(segments);
        }
        url
    }

    /// A request for `segments` under the API's base.
    pub fn request(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        self.client.request(method, self.url(segments))
    }

    /// Sends a request, within the target's rate, and maps transport failures and
    /// 429/502/503/504 to retryable errors. Other statuses are the caller's to read.
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, ConnectorError> {
        let request = build(request)?;
        self.admit().await;
        self.execute(request).await
    }

    /// Sends a request with a token of `session` as `Authorization: Bearer`: see
    /// [`send_with_token_in`](Self::send_with_token_in).
    pub async fn send_with_token<S: TokenSource>(
        &self,
        session: &TokenSession<S>,
        request: RequestBuilder,
    ) -> Result<Response, ConnectorError> {
        self.send_with_token_in(session, request, |request, token| {
            request.bearer_auth(token.expose())
        })
        .await
    }

    /// Sends a request with a token of `session`, put in place by `attach` (for a
    /// vendor that wants it in a header of its own).
    ///
    /// The token is taken only once the target's rate limit admits the request, so
    /// it never waits in the queue until it expires. A login or renewal that the
    /// token needs goes out in that same slot, at once (rather than queueing while
    /// every caller waits for it), and the request then waits for the next slot and
    /// takes the token afresh. A 401 renews the token once and sends the request
    /// again ([`TokenSession::call`](rekey_api::TokenSession::call)); a second 401
    /// is [`AuthRefused`](ErrorKind::AuthRefused). Every other status is the
    /// caller's to read, as with [`send`](Self::send).
    pub async fn send_with_token_in<S, A>(
        &self,
        session: &TokenSession<S>,
        request: RequestBuilder,
        attach: A,
    ) -> Result<Response, ConnectorError>
    where
        S: TokenSource,
        A: Fn(RequestBuilder, &Secret) -> RequestBuilder,
    {
        let attempts = session.call_admitted(
            || async {
                if let Some(limiter) = &self.limiter {
                    limiter.acquire().await;
                    let _ = SLOT_IN_HAND.try_with(|slot| slot.set(limiter_id(limiter)));
                }
            },
            |token| {
                let request = request
                    .try_clone()
                    .ok_or_else(|| {
                        ConnectorError::fatal(
                            "internal error: a request with a streamed body cannot be sent again after a refused token",
                        )
                    })
                    .map(|request| attach(request, &token))
                    .and_then(build);
                async move {
                    let request = request?;
                    if !self.take_slot_in_hand() {
                        return Ok(Attempt::Readmit);
                    }
                    let method = request.method().clone();
                    let response = self.execute(request).await?;
                    Ok(if response.status() == StatusCode::UNAUTHORIZED {
                        Attempt::Refused(format!("{method} {}: HTTP 401", response.url().path()))
                    } else {
                        Attempt::Done(response)
                    })
                }
            },
        );
        SLOT_IN_HAND.scope(Cell::new(0), attempts).await
    }

    /// Waits for the request's turn under the target's rate, unless the call holds
    /// a slot it has not used (then the request takes it).
    async fn admit(&self) {
        if !self.take_slot_in_hand()
            && let Some(limiter) = &self.limiter
        {
            limiter.acquire().await;
        }
    }

    /// Takes the slot of this client's rate limit that the current call holds;
    /// whether there was one. Without a rate limit there is always one.
    fn take_slot_in_hand(&self) -> bool {
        let Some(limiter) = &self.limiter else {
            return true;
        };
        let id = limiter_id(limiter);
        SLOT_IN_HAND
            .try_with(|slot| {
                let mine = slot.get() == id;
                if mine {
                    slot.set(0);
                }
                mine
            })
            .unwrap_or(false)
    }

    /// Sends an admitted request and maps transport failures and 429/502/503/504.
    async fn execute(&self, request: Request) -> Result<Response, ConnectorError> {
        let method = request.method().clone();
        let path = request.url().path().to_owned();
        tracing::debug!(%method, path, "request");
        let started = std::time::Instant::now();
        let response = self.client.execute(request).await.map_err(|e| {
            if let Some(tls) = tls_refusal(&e) {
                // Retrying will not make the certificate trusted.
                return ConnectorError::fatal(format!(
                    "{method} {path}: the server's TLS certificate was refused ({tls}): give it a certificate this machine trusts (a private CA goes in the system's trust store)"
                ));
            }
            let kind = if e.is_timeout() || e.is_connect() || e.is_request() || e.is_body() {
                ErrorKind::Transient
            } else {
                ErrorKind::Fatal
            };
            ConnectorError::new(kind, format!("{method} {path}: {}", describe(&e)))
        })?;
        let status = response.status();
        tracing::debug!(%method, path, status = status.as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "response");
        match status {
            StatusCode::TOO_MANY_REQUESTS => Err(ConnectorError::new(
                ErrorKind::RateLimited,
                format!("{method} {path}: the server answered 429 Too Many Requests"),
            )
            .with_retry_after(retry_after(response.headers()))),
            StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => Err(ConnectorError::transient(format!(
                "{method} {path}: the server answered {status}"
            ))
            .with_retry_after(retry_after(response.headers()))),
            _ => Ok(response),
        }
    }

    /// `response` if its status is a success; otherwise that status as the error
    /// `statuses` gives it for `what` (`"PUT password"`), carrying the vendor's
    /// message from the JSON body ([`StatusMap::error_in_body`]), never the raw body.
    pub async fn checked(
        &self,
        response: Response,
        statuses: &StatusMap,
        what: &str,
    ) -> Result<Response, ConnectorError> {
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = self.body(response).await?;
        Err(statuses.error_in_body(status, what, &body))
    }

    /// Reads a reply body, refusing one larger than [`REPLY_LIMIT`].
    pub async fn body(&self, response: Response) -> Result<Vec<u8>, ConnectorError> {
        self.body_within(response, REPLY_LIMIT).await
    }

    /// Reads a reply body, refusing one larger than `limit` bytes (a listing of
    /// every account at once takes [`LISTING_LIMIT`]).
    pub async fn body_within(
        &self,
        mut response: Response,
        limit: usize,
    ) -> Result<Vec<u8>, ConnectorError> {
        let path = response.url().path().to_owned();
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(too_large(&path, limit));
        }
        let mut body = Vec::new();
        loop {
            let chunk = response.chunk().await.map_err(|e| {
                ConnectorError::transient(format!("reading the reply to {path}: {}", describe(&e)))
            })?;
            let Some(chunk) = chunk else { break };
            if body.len() + chunk.len() > limit {
                return Err(too_large(&path, limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Reads a reply body as text (lossy UTF-8), within [`REPLY_LIMIT`].
    pub async fn text(&self, response: Response) -> Result<String, ConnectorError> {
        let body = self.body(response).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// Reads a JSON reply within [`REPLY_LIMIT`]. An unreadable body is
    /// [`ErrorKind::Fatal`], described by position only (a vendor reply may echo
    /// secrets).
    pub async fn json<T: DeserializeOwned>(&self, response: Response) -> Result<T, ConnectorError> {
        self.json_within(response, REPLY_LIMIT).await
    }

    /// Reads a JSON reply of at most `limit` bytes.
    pub async fn json_within<T: DeserializeOwned>(
        &self,
        response: Response,
        limit: usize,
    ) -> Result<T, ConnectorError> {
        let path = response.url().path().to_owned();
        let status = response.status();
        let body = self.body_within(response, limit).await?;
        serde_json::from_slice(&body).map_err(|e| {
            ConnectorError::fatal(format!(
                "unreadable reply to {path} (HTTP {status}): {}",
                rekey_api::json_error_position(&e)
            ))
        })
    }
}

/// A reply too large to read; the outcome of the call is unknown.
fn too_large(path: &str, limit: usize) -> ConnectorError {
    ConnectorError::fatal(format!(
        "the reply to {path} is larger than {} MiB; refusing to read it",
        limit / (1024 * 1024)
    ))
}

/// Tells one limiter from another, for [`SLOT_IN_HAND`].
fn limiter_id(limiter: &RateLimiter) -> usize {
    std::ptr::from_ref(limiter) as usize
}

/// Builds a request, describing a failure without its URL.
fn build(request: RequestBuilder) -> Result<Request, ConnectorError> {
    request
        .build()
        .map_err(|e| ConnectorError::fatal(format!("cannot build the request: {}", describe(&e))))
}

/// Whether the URL's host is this machine (a loopback address or `localhost`).
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A reqwest error and its causes, without the URL (which may carry a query).
fn describe(error: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut source: Option<&dyn std::error::Error> = error.source();
    text.push_str(&strip_url(&error.to_string()));
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The TLS certificate error behind a failed request, if that is what it was.
fn tls_refusal(error: &reqwest::Error) -> Option<String> {
    let mut source: Option<&dyn std::error::Error> = error.source();
    while let Some(cause) = source {
        if let Some(
            tls @ (rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::UnsupportedNameType),
        ) = find_rustls(cause)
        {
            return Some(tls.to_string());
        }
        source = cause.source();
    }
    None
}

/// A rustls error in `error`, looking inside I/O errors (which wrap it, sometimes
/// twice: `source()` skips the wrapped error itself).
fn find_rustls<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = error.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let inner = error.downcast_ref::<std::io::Error>()?.get_ref()?;
    find_rustls(inner)
}

/// reqwest's messages end with ` for url (…)`; drop that part.
fn strip_url(message: &str) -> String {
    match message.find(" for url (") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// The pause a `Retry-After` header asks for: delay-seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    let now = headers
        .get(reqwest::header::DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .unwrap_or_else(SystemTime::now);
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The server's clock, from its `Date` header.
pub fn server_date(headers: &HeaderMap) -> Option<SystemTime> {
    let value = headers.get(reqwest::header::DATE)?.to_str().ok()?;
    httpdate::parse_http_date(value).ok()
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn options() -> HttpOptions {
        HttpOptions {
            allow_insecure_http: false,
            rate: None,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn plain_http_only_to_this_machine() {
        assert!(VendorHttp::new("http://127.0.0.1:9", "/api/v1", &options()).is_ok());
        assert!(VendorHttp::new("http://localhost:9", "/api/v1", &options()).is_ok());
        assert!(VendorHttp::new("http://[::1]:9", "/api/v1", &options()).is_ok());
        let err = VendorHttp::new("http://mail.example.com", "/api/v1", &options()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidSettings);
        assert!(
            err.message.contains("allow_insecure_http = true"),
            "{}",
            err.message
        );
        let insecure = HttpOptions {
            allow_insecure_http: true,
            ..options()
        };
        assert!(VendorHttp::new("http://mail.example.com", "/api/v1", &insecure).is_ok());
        assert!(VendorHttp::new("https://mail.example.com", "/api/v1", &options()).is_ok());
    }

    #[test]
    fn urls_are_built_from_encoded_segments() {
        let http = VendorHttp::new("https://h.example:8443", "/api/v2", &options()).unwrap();
        assert_eq!(http.base().as_str(), "https://h.example:8443/api/v2/");
        assert_eq!(
            http.url(&["user", "a/b?c", "auto-reset-pwd"]).as_str(),
            "https://h.example:8443/api/v2/user/a%2Fb%3Fc/auto-reset-pwd"
        );
    }

    #[test]
    fn retry_after_forms() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            reqwest::header::DATE,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:30 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(30)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn urls_are_stripped_from_messages() {
        assert_eq!(
            strip_url("error sending request for url (http://h/x?AuthToken=abc)"),
            "error sending request"
        );
    }
}
