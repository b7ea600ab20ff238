//! A short-lived token under a low rate limit: a token attached before the rate
//! limiter admits the request waits in the queue and expires (the server answers
//! 401), while `send_with_token` takes the token only once the request may leave,
//! so the server never sees an expired one.
//!
//! The server is a small client-credentials API on 127.0.0.1: `POST /api/login`
//! gives a token that lives five seconds (`expires_in: 5`), and `GET /api/ping`
//! answers 401 to a token that is unknown or expired.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use rekey_api::{Attempt, ConnectorError, Grant, TokenSession, TokenSource};
use rekey_http::{HttpOptions, Method, VendorHttp};

const LIFETIME: Duration = Duration::from_secs(5);
const RATE: f64 = 10.0;
/// Workers at once: 60 at 10 a second make a queue of 6 s, longer than a token
/// lives.
const WORKERS: usize = 60;
const CALLS_EACH: usize = 1;

#[derive(Default)]
struct Server {
    issued: Mutex<HashMap<String, Instant>>,
    logins: AtomicUsize,
    refused: AtomicUsize,
    served: AtomicUsize,
}

async fn login(State(server): State<Arc<Server>>) -> axum::Json<serde_json::Value> {
    let n = server.logins.fetch_add(1, Ordering::SeqCst);
    let token = format!("token-{n}");
    server
        .issued
        .lock()
        .unwrap()
        .insert(token.clone(), Instant::now());
    axum::Json(serde_json::json!({ "access_token": token, "expires_in": LIFETIME.as_secs() }))
}

async fn ping(State(server): State<Arc<Server>>, headers: HeaderMap) -> StatusCode {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let valid = server
        .issued
        .lock()
        .unwrap()
        .get(token)
        .is_some_and(|issued| issued.elapsed() < LIFETIME);
    if valid {
        server.served.fetch_add(1, Ordering::SeqCst);
        StatusCode::OK
    } else {
        server.refused.fetch_add(1, Ordering::SeqCst);
        StatusCode::UNAUTHORIZED
    }
}

async fn start() -> (Arc<Server>, String) {
    let server = Arc::new(Server::default());
    let app = Router::new()
        .route("/api/login", post(login))
        .route("/api/ping", get(ping))
        .with_state(Arc::clone(&server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (server, url)
}

/// Client credentials: logging in again is how a token is renewed.
struct ClientCredentials {
    http: Arc<VendorHttp>,
}

#[derive(serde::Deserialize)]
struct TokenReply {
    access_token: rekey_api::Secret,
    expires_in: u64,
}

#[async_trait]
impl TokenSource for ClientCredentials {
    type Renewal = ();

    async fn login(&self) -> Result<Grant, ConnectorError> {
        let request = self.http.request(Method::POST, &["login"]);
        let response = self.http.send(request).await?;
        let reply: TokenReply = self.http.json(response).await?;
        Ok(Grant::new(
            reply.access_token,
            Some(Duration::from_secs(reply.expires_in)),
        ))
    }
}

fn client(url: &str) -> (Arc<VendorHttp>, Arc<TokenSession<ClientCredentials>>) {
    let options = HttpOptions {
        allow_insecure_http: false,
        rate: Some(RATE),
        timeout: Duration::from_secs(10),
    };
    let http = Arc::new(VendorHttp::new(url, "/api", &options).unwrap());
    let session = Arc::new(TokenSession::new(ClientCredentials {
        http: Arc::clone(&http),
    }));
    (http, session)
}

/// Runs `WORKERS` workers of `CALLS_EACH` pings each; the statuses they saw.
async fn run<F, Fut>(ping: F) -> Vec<Result<u16, ConnectorError>>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<u16, ConnectorError>> + Send,
{
    let ping = Arc::new(ping);
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let ping = Arc::clone(&ping);
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for _ in 0..CALLS_EACH {
                    statuses.push(ping().await);
                }
                statuses
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for worker in workers {
        statuses.extend(worker.await.unwrap());
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_taken_only_when_the_rate_limit_lets_the_request_leave() {
    // Attached first, then queued: tokens expire in the queue.
    let (server, url) = start().await;
    let (http, session) = client(&url);
    run(move || {
        let (http, session) = (Arc::clone(&http), Arc::clone(&session));
        async move {
            session
                .call(|token| {
                    let request = http
                        .request(Method::GET, &["ping"])
                        .bearer_auth(token.expose());
                    let http = Arc::clone(&http);
                    async move {
                        let response = http.send(request).await?;
                        Ok(match response.status().as_u16() {
                            401 => Attempt::Refused("GET ping".into()),
                            status => Attempt::Done(status),
                        })
                    }
                })
                .await
        }
    })
    .await;
    assert!(
        server.refused.load(Ordering::SeqCst) > 0,
        "the queue should outlast a token when it is attached before the rate limit"
    );

    // Admitted first, then the token: never a 401.
    let (server, url) = start().await;
    let (http, session) = client(&url);
    let statuses = run(move || {
        let (http, session) = (Arc::clone(&http), Arc::clone(&session));
        async move {
            let request = http.request(Method::GET, &["ping"]);
            let response = http.send_with_token(&session, request).await?;
            Ok(response.status().as_u16())
        }
    })
    .await;
    assert_eq!(server.refused.load(Ordering::SeqCst), 0);
    assert_eq!(
        server.served.load(Ordering::SeqCst),
        WORKERS * CALLS_EACH,
        "every call served"
    );
    assert!(
        statuses.iter().all(|s| matches!(s, Ok(200))),
        "{statuses:?}"
    );
    // The run outlasted several tokens: renewal (by logging in again) happened.
    assert!(server.logins.load(Ordering::SeqCst) >= 2);
}
