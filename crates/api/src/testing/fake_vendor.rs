//! [`FakeVendor`]: a stand-in for a vendor's API on 127.0.0.1, with routes that
//! are closures over a plain [`Request`] and [`Response`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A request as the fake vendor received it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method, upper case (`GET`, `PUT`).
    pub method: String,
    /// The path, as sent (percent-encoded), without the query.
    pub path: String,
    /// The query's pairs, decoded, in order.
    pub query: Vec<(String, String)>,
    /// The headers, names in lower case, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The route's `{name}` segments, decoded.
    params: Vec<(String, String)>,
}

impl Request {
    /// The value of the route's `{name}` segment, decoded.
    pub fn param(&self, name: &str) -> Option<&str> {
        find(&self.params, name)
    }

    /// The first value of query parameter `name`.
    pub fn query(&self, name: &str) -> Option<&str> {
        find(&self.query, name)
    }

    /// The first value of header `name` (compared without regard to case).
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, &name.to_ascii_lowercase())
    }

    /// The token of an `Authorization: Bearer` header.
    pub fn bearer(&self) -> Option<&str> {
        self.header("authorization")?.strip_prefix("Bearer ")
    }

    /// The body read as JSON of type `T`; `None` when it is not (a strict vendor
    /// answers that with a 400).
    pub fn json<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body's form pairs (`application/x-www-form-urlencoded`), decoded.
    pub fn form(&self) -> Vec<(String, String)> {
        serde_urlencoded::from_bytes(&self.body).unwrap_or_default()
    }
}

fn find<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// What the fake vendor answers.
#[derive(Debug, Clone)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    /// An empty answer with `status` (`204`).
    pub fn status(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `body` as JSON, with `status`.
    pub fn json(status: u16, body: impl Serialize) -> Response {
        Response::status(status)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap_or_default())
    }

    /// Plain text, with `status`.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::status(status)
            .header("content-type", "text/plain; charset=utf-8")
            .body(body.into().into_bytes())
    }

    /// Adds a header (`Retry-After`, say).
    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body as it is.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self
    }
}

type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// One route: a method and a path pattern whose `{name}` segments match any one
/// segment.
struct Route {
    method: String,
    segments: Vec<String>,
    handler: Handler,
}

impl Route {
    /// The route's parameters if it matches `method` and `path`.
    fn matches(&self, method: &str, path: &str) -> Option<Vec<(String, String)>> {
        if !self.method.eq_ignore_ascii_case(method) {
            return None;
        }
        let given: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        if given.len() != self.segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (pattern, segment) in self.segments.iter().zip(given) {
            match pattern.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => {
                    let value = percent_encoding::percent_decode_str(segment)
                        .decode_utf8()
                        .ok()?;
                    params.push((name.to_owned(), value.into_owned()));
                }
                None if pattern == segment => {}
                None => return None,
            }
        }
        Some(params)
    }
}

/// A stand-in for a vendor's API on 127.0.0.1, for a connector's tests: see the
/// [module docs](super).
///
/// Requests go to the first route that matches their method and path; one that
/// matches none gets a 404 (as from a real server), and every request is kept, in
/// order, for the test to inspect ([`requests`](Self::requests)). The server stops
/// when the `FakeVendor` is dropped.
pub struct FakeVendor {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Request>>>,
    server: tokio::task::JoinHandle<()>,
}

/// Routes for a [`FakeVendor`] not started yet: [`FakeVendor::builder`].
#[derive(Default)]
pub struct FakeVendorBuilder {
    routes: Vec<Route>,
}

impl std::fmt::Debug for FakeVendorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let routes: Vec<String> = self
            .routes
            .iter()
            .map(|r| format!("{} /{}", r.method, r.segments.join("/")))
            .collect();
        f.debug_struct("FakeVendorBuilder")
            .field("routes", &routes)
            .finish()
    }
}

impl FakeVendorBuilder {
    /// Answers `method` (`"GET"`) requests to `path` (`"/api/users/{id}"`: a
    /// `{name}` segment matches any one segment, read with
    /// [`Request::param`]) with `handler`. Handlers run on the server's tasks and
    /// keep their state behind a lock of their own.
    pub fn route(
        mut self,
        method: &str,
        path: &str,
        handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> Self {
        self.routes.push(Route {
            method: method.to_owned(),
            segments: path
                .trim_start_matches('/')
                .split('/')
                .map(str::to_owned)
                .collect(),
            handler: Arc::new(handler),
        });
        self
    }

    /// Starts the server on a free port of 127.0.0.1, on the current tokio runtime.
    pub async fn start(self) -> std::io::Result<FakeVendor> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let routes = Arc::new(self.routes);
        let app = axum::Router::new().fallback({
            let log = Arc::clone(&log);
            move |request: axum::extract::Request| {
                answer(Arc::clone(&routes), Arc::clone(&log), request)
            }
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeVendor { addr, log, server })
    }
}

impl FakeVendor {
    /// A fake vendor with no routes yet: add them with
    /// [`route`](FakeVendorBuilder::route), then [`start`](FakeVendorBuilder::start) it.
    pub fn builder() -> FakeVendorBuilder {
        FakeVendorBuilder::default()
    }

    /// The server's root, `http://127.0.0.1:PORT`: the target's `url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl std::fmt::Debug for FakeVendor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeVendor")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeVendor {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Reads `request`, runs the first route that matches, and logs it.
async fn answer(
    routes: Arc<Vec<Route>>,
    log: Arc<Mutex<Vec<Request>>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let mut request = Request {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts
            .uri
            .query()
            .and_then(|q| serde_urlencoded::from_str(q).ok())
            .unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect(),
        body,
        params: Vec::new(),
    };
    let matched = routes.iter().find_map(|route| {
        route
            .matches(&request.method, &request.path)
            .map(|params| (route, params))
    });
    let response = match matched {
        Some((route, params)) => {
            request.params = params;
            (route.handler)(&request)
        }
        None => Response::text(
            404,
            format!("no route for {} {}", request.method, request.path),
        ),
    };
    log.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(request);
    let mut reply = axum::response::Response::builder().status(response.status);
    for (name, value) in &response.headers {
        reply = reply.header(name, value);
    }
    reply
        .body(axum::body::Body::from(response.body))
        .unwrap_or_else(|_| {
            let mut failed = axum::response::Response::new(axum::body::Body::empty());
            *failed.status_mut() = axum::http::StatusCode::INTERNAL_SERVER_ERROR;
            failed
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::testing::{Value, json};

    #[tokio::test]
    async fn routes_params_queries_and_the_log() {
        let vendor = FakeVendor::builder()
            .route("GET", "/api/users", |request| {
                Response::json(200, json!({ "page": request.query("page") }))
            })
            .route("PUT", "/api/users/{id}/password", |request| {
                let body: HashMap<String, String> = request.json().unwrap_or_default();
                let reply = json!({ "id": request.param("id"), "password": body.get("password"), "auth": request.bearer() });
                Response::json(201, reply).header("x-trace", "1")
            })
            .start()
            .await
            .unwrap();
        let client = reqwest::Client::new();
        let url = |path: &str| format!("{}{path}", vendor.url());
        let reply = client
            .get(url("/api/users?page=2&x=a%20b"))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
        assert_eq!(reply.text().await.unwrap(), r#"{"page":"2"}"#);
        let reply = client
            .put(url("/api/users/a%40b.example/password"))
            .bearer_auth("tok")
            .json(&json!({ "password": "pw" }))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 201);
        assert_eq!(reply.headers()["x-trace"], "1");
        assert_eq!(
            reply.json::<Value>().await.unwrap(),
            json!({ "auth": "tok", "id": "a@b.example", "password": "pw" })
        );
        let reply = client.delete(url("/api/users")).send().await.unwrap();
        assert_eq!(reply.status(), 404);
        assert_eq!(
            reply.text().await.unwrap(),
            "no route for DELETE /api/users"
        );
        let log = vendor.requests();
        assert_eq!(log.len(), 3);
        assert_eq!(
            log[0].query,
            [("page".into(), "2".into()), ("x".into(), "a b".into())]
        );
        assert_eq!(log[1].path, "/api/users/a%40b.example/password");
        assert_eq!(log[1].header("Authorization"), Some("Bearer tok"));
        assert_eq!(log[2].method, "DELETE");
    }
}
