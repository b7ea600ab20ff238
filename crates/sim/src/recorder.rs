//! A recording fake for golden tests: it answers each request with a canned
//! reply, chosen by method and path, and keeps every request whole (method,
//! path, query, headers, body), so a test can compare what a connector sends
//! with a vendor document's sample and feed it the document's literal reply.
//! The simulators check protocols; this checks shapes against the documents.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

use crate::common::{Behaviour, Common, SimServer, lock};

/// A reply to give.
#[derive(Debug, Clone)]
pub struct Canned {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: String,
    /// The body, byte for byte.
    pub body: Vec<u8>,
}

impl Canned {
    /// A `200` with a JSON (or JSON-looking) body, sent as it is.
    pub fn json(body: impl Into<Vec<u8>>) -> Canned {
        Canned {
            status: 200,
            content_type: "application/json".into(),
            body: body.into(),
        }
    }

    /// A plain-text reply.
    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Canned {
        Canned {
            status,
            content_type: "text/plain; charset=utf-8".into(),
            body: body.into(),
        }
    }
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The method (`GET`, `POST`, ...).
    pub method: String,
    /// The path, still percent-encoded.
    pub path: String,
    /// The query string, if any, still encoded.
    pub query: Option<String>,
    /// Every header, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The query's name/value pairs, decoded, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        decode(self.query.as_deref().unwrap_or_default().as_bytes())
    }

    /// The body read as `application/x-www-form-urlencoded` pairs, in order.
    pub fn form_pairs(&self) -> Vec<(String, String)> {
        decode(&self.body)
    }

    /// The body read as JSON, if it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

fn decode(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

#[derive(Debug)]
struct Shared {
    routes: Vec<(String, String, Canned)>,
    log: Mutex<Vec<Recorded>>,
}

/// A running recording fake on 127.0.0.1; stops when dropped.
#[derive(Debug)]
pub struct Recorder {
    server: SimServer,
    shared: Arc<Shared>,
}

impl Recorder {
    /// Serves `routes` (method, path, reply); any other request gets `404` with
    /// an empty body. Must be called inside a tokio runtime.
    pub async fn start<'a>(
        routes: impl IntoIterator<Item = (&'a str, &'a str, Canned)>,
    ) -> std::io::Result<Recorder> {
        let shared = Arc::new(Shared {
            routes: routes
                .into_iter()
                .map(|(method, path, canned)| (method.to_owned(), path.to_owned(), canned))
                .collect(),
            log: Mutex::new(Vec::new()),
        });
        let router = Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&shared));
        // The common layer stamps `Date`, which some connectors read.
        let server = SimServer::start(0, router, Common::new(Behaviour::default())).await?;
        Ok(Recorder { server, shared })
    }

    /// The server's root URL.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.log).clone()
    }

    /// The requests received for `path`, in order.
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

async fn answer(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let method = parts.method.to_string();
    let path = parts.uri.path().to_owned();
    lock(&shared.log).push(Recorded {
        method: method.clone(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    });
    let canned = shared
        .routes
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map(|(_, _, canned)| canned.clone());
    let Some(canned) = canned else {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_FOUND;
        return response;
    };
    let mut response = Response::new(Body::from(canned.body));
    *response.status_mut() = StatusCode::from_u16(canned.status).unwrap_or(StatusCode::OK);
    if let Ok(value) = HeaderValue::from_str(&canned.content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_canned_replies_and_records_requests_whole() {
        let recorder = Recorder::start([("PUT", "/a/b", Canned::json(r#"{"x":1}"#))])
            .await
            .unwrap();
        let http = reqwest::Client::new();
        let response = http
            .put(format!("{}/a/b?k=v%20w", recorder.url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("p=1+2&q=%26")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), r#"{"x":1}"#);
        let missing = http
            .get(format!("{}/a/b", recorder.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        let requests = recorder.requests();
        assert_eq!(requests.len(), 2);
        let put = &requests[0];
        assert_eq!((put.method.as_str(), put.path.as_str()), ("PUT", "/a/b"));
        assert_eq!(put.query_pairs(), [("k".to_owned(), "v w".to_owned())]);
        assert_eq!(
            put.form_pairs(),
            [
                ("p".to_owned(), "1 2".to_owned()),
                ("q".to_owned(), "&".to_owned())
            ]
        );
        assert_eq!(
            put.header("Content-Type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(recorder.requests_to("/a/b").len(), 2);
    }
}
