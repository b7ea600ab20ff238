//! What every simulator shares: the loopback server, latency and fault injection,
//! the request log, and a clock tests can move.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Locks a mutex, ignoring poisoning (a panicking handler must not wedge the sim).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Injected failures.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Fraction of requests (0.0 to 1.0) that fail.
    pub rate: f64,
    /// The statuses a failure answers with, chosen at random (default 503).
    pub statuses: Vec<u16>,
    /// The `Retry-After` seconds sent with a failure, if any.
    pub retry_after_secs: Option<u64>,
    /// Fraction of failures (0.0 to 1.0) that happen *after* the request was
    /// processed: the change is applied, but the client sees the failure. This is
    /// what a gateway timeout in front of a slow server looks like.
    pub after_apply: f64,
}

/// How a simulator behaves, beyond its protocol.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Added to every request.
    pub latency: Duration,
    /// Injected failures.
    pub faults: Faults,
    /// Seed for the fault dice, so runs are repeatable.
    pub seed: u64,
}

/// One request the simulator received.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    /// The method.
    pub method: String,
    /// Path and query, exactly as received.
    pub uri: String,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
}

/// A clock that tests can move forward (for daily quotas and expiry).
#[derive(Debug, Default)]
pub struct SimClock {
    offset: Mutex<Duration>,
}

impl SimClock {
    /// The simulator's present.
    pub fn now(&self) -> SystemTime {
        SystemTime::now() + *lock(&self.offset)
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        *lock(&self.offset) += by;
    }
}

/// State every simulator has: behaviour, dice, request log, clock.
#[derive(Debug)]
pub struct Common {
    behaviour: Mutex<Behaviour>,
    dice: Mutex<StdRng>,
    log: Mutex<Vec<LoggedRequest>>,
    faults_injected: AtomicUsize,
    /// The simulator's clock.
    pub clock: SimClock,
}

impl Common {
    /// Shared state for a simulator with `behaviour`.
    pub fn new(behaviour: Behaviour) -> Arc<Self> {
        Arc::new(Common {
            dice: Mutex::new(StdRng::seed_from_u64(behaviour.seed)),
            behaviour: Mutex::new(behaviour),
            log: Mutex::new(Vec::new()),
            faults_injected: AtomicUsize::new(0),
            clock: SimClock::default(),
        })
    }

    /// Changes the behaviour (latency, faults) from now on.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *lock(&self.dice) = StdRng::seed_from_u64(behaviour.seed);
        *lock(&self.behaviour) = behaviour;
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.log).clone()
    }

    /// How many failures were injected.
    pub fn faults_injected(&self) -> usize {
        self.faults_injected.load(Ordering::Relaxed)
    }

    /// Rolls the dice for one request: the latency, and the fault to inject if any
    /// (its status and whether it comes after the request is processed).
    fn decide(&self) -> (Duration, Option<(StatusCode, bool)>, Option<u64>) {
        let behaviour = lock(&self.behaviour).clone();
        let mut dice = lock(&self.dice);
        let fault = (behaviour.faults.rate > 0.0
            && dice.random_bool(behaviour.faults.rate.min(1.0)))
        .then(|| {
            let statuses = &behaviour.faults.statuses;
            let status = if statuses.is_empty() {
                503
            } else {
                statuses[dice.random_range(0..statuses.len())]
            };
            let after = behaviour.faults.after_apply > 0.0
                && dice.random_bool(behaviour.faults.after_apply.min(1.0));
            (
                StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                after,
            )
        });
        (behaviour.latency, fault, behaviour.faults.retry_after_secs)
    }
}

/// Middleware: logs the request, waits the latency, injects faults, and stamps the
/// `Date` header with the simulator's clock.
pub async fn behave(State(common): State<Arc<Common>>, request: Request, next: Next) -> Response {
    lock(&common.log).push(LoggedRequest {
        method: request.method().to_string(),
        uri: request.uri().to_string(),
        content_type: request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    });
    let (latency, fault, retry_after) = common.decide();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut response = match fault {
        None => next.run(request).await,
        Some((status, after_apply)) => {
            if after_apply {
                let _ = next.run(request).await;
            }
            common.faults_injected.fetch_add(1, Ordering::Relaxed);
            let mut response = (status, "injected fault").into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
    };
    if let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(common.clock.now())) {
        response.headers_mut().insert(header::DATE, date);
    }
    response
}

/// A JSON response with a status.
pub fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// Whether the request's `Content-Type` is `wanted` (parameters such as `charset`
/// ignored).
pub fn has_content_type(headers: &axum::http::HeaderMap, wanted: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(wanted))
}

/// The bearer token of a request, if it has one.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// A random token (hex), as vendors hand out.
pub fn new_token(rng: &mut impl rand::Rng) -> String {
    let mut bytes = [0u8; 24];
    rng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A running simulator server on 127.0.0.1; stops when dropped.
#[derive(Debug)]
pub struct SimServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SimServer {
    /// Serves `router` on 127.0.0.1:`port` (0 picks a free port), with the common
    /// middleware in front. Must be called inside a tokio runtime.
    pub async fn start(port: u16, router: Router, common: Arc<Common>) -> std::io::Result<Self> {
        let router = router.layer(axum::middleware::from_fn_with_state(common, behave));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async {
                let _ = stop.await;
            });
            if let Err(error) = serve.await {
                tracing::error!(%error, "simulator server failed");
            }
        });
        Ok(SimServer {
            addr,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    /// The server's root URL (`http://127.0.0.1:PORT`), what a target's `url` takes.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
