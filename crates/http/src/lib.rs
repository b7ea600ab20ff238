//! HTTP plumbing shared by rekey's connectors.
//!
//! [`VendorHttp`] is a reqwest client set up the way every connector needs it:
//! TLS certificates verified (rustls), plain `http://` refused except to this machine
//! unless the target says `allow_insecure_http = true`, no redirects (credentials
//! never follow a redirect to another host), timeouts, the target's request `rate`
//! shared by all workers, and failures mapped onto rekey's error taxonomy
//! (connection errors, timeouts, 429, 502, 503 and 504 are retryable, with the
//! server's `Retry-After`). Requests are logged by method and path only: never a
//! query string, header or body, which may hold secrets.
//!
//! For a vendor with expiring tokens, [`VendorHttp::send_with_token`] sends a
//! request with a token of a [`TokenSession`](rekey_api::TokenSession): the token
//! is taken only once the rate limit admits the request (a login or renewal goes
//! out in that slot), and a 401 renews it once and sends the request again. What a
//! status means is the connector's [`StatusMap`](rekey_api::StatusMap).

mod client;
mod rate;

pub use client::{HttpOptions, LISTING_LIMIT, REPLY_LIMIT, VendorHttp, retry_after, server_date};
pub use reqwest::{Method, RequestBuilder, Response, StatusCode};

use rekey_api::SettingSpec;

/// The `allow_insecure_http` setting every HTTP connector declares.
pub fn allow_insecure_http_setting() -> SettingSpec {
    SettingSpec::boolean(
        "allow_insecure_http",
        "Allow plain http:// to a host other than this machine (credentials then travel unencrypted)",
    )
    .default_value(false)
}

/// The `timeout` setting every HTTP connector declares (seconds a request may take).
pub fn timeout_setting() -> SettingSpec {
    SettingSpec::integer("timeout", "Seconds one request to the vendor may take")
        .range(1..=3600)
        .default_value(60)
}
