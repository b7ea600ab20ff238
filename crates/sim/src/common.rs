//! What every simulator shares: the loopback server, latency, a capacity limit and
//! fault injection, the request log, and a clock tests can move.

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
    /// Requests the server works on at once. A request that arrives while this
    /// many are in flight (latency included) is answered `429 Too Many Requests`
    /// at once, without `Retry-After`, as an overloaded server or gateway does;
    /// [`Common::rejected`] counts them. `None`: no limit.
    pub capacity: Option<usize>,
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
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    rejected: AtomicUsize,
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
            in_flight: AtomicUsize::new(0),
            peak_in_flight: AtomicUsize::new(0),
            rejected: AtomicUsize::new(0),
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

    /// How many requests were refused with `429` because the server was at its
    /// [`capacity`](Behaviour::capacity).
    pub fn rejected(&self) -> usize {
        self.rejected.load(Ordering::Relaxed)
    }

    /// The most requests that were in flight at once (rejected ones included:
    /// they arrived).
    pub fn peak_in_flight(&self) -> usize {
        self.peak_in_flight.load(Ordering::Relaxed)
    }

    /// Counts a request in until the returned guard drops; `None` when that puts
    /// the server over its capacity (the request is then counted as rejected).
    fn admit(&self) -> Option<InFlight<'_>> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let guard = InFlight(self);
        self.peak_in_flight.fetch_max(now, Ordering::Relaxed);
        let capacity = lock(&self.behaviour).capacity;
        if capacity.is_some_and(|capacity| now > capacity) {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(guard)
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

/// One request in flight; counts itself out when dropped.
struct InFlight<'a>(&'a Common);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Middleware: logs the request, refuses it over capacity, waits the latency,
/// injects faults, and stamps the `Date` header with the simulator's clock.
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
    let Some(_in_flight) = common.admit() else {
        // No Retry-After: an overloaded server does not say when it will cope.
        return stamp_date(
            &common,
            (StatusCode::TOO_MANY_REQUESTS, "over capacity").into_response(),
        );
    };
    let (latency, fault, retry_after) = common.decide();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = match fault {
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
    stamp_date(&common, response)
}

/// Sets the `Date` header from the simulator's clock.
fn stamp_date(common: &Common, mut response: Response) -> Response {
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::routing::get;
    use tokio::sync::watch;

    use super::*;

    /// A server whose one endpoint holds every request until `release` is sent.
    async fn held_server(behaviour: Behaviour) -> (SimServer, Arc<Common>, watch::Sender<bool>) {
        let (release, held) = watch::channel(false);
        let router = Router::new().route(
            "/",
            get(move || {
                let mut held = held.clone();
                async move {
                    let _ = held.wait_for(|released| *released).await;
                    "done"
                }
            }),
        );
        let common = Common::new(behaviour);
        let server = SimServer::start(0, router, Arc::clone(&common))
            .await
            .unwrap();
        (server, common, release)
    }

    #[tokio::test]
    async fn requests_over_capacity_get_429_without_retry_after() {
        let (server, common, release) = held_server(Behaviour {
            capacity: Some(2),
            ..Behaviour::default()
        })
        .await;
        let http = reqwest::Client::new();
        let url = server.url();
        let held: Vec<_> = (0..2)
            .map(|_| tokio::spawn(http.get(&url).send()))
            .collect();
        while common.peak_in_flight() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for _ in 0..3 {
            let response = http.get(&url).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            assert!(response.headers().get(header::RETRY_AFTER).is_none());
            assert!(response.headers().get(header::DATE).is_some());
        }
        assert_eq!(common.rejected(), 3);
        release.send(true).unwrap();
        for request in held {
            assert_eq!(request.await.unwrap().unwrap().status(), StatusCode::OK);
        }
        // Room again once the requests in flight are done.
        assert_eq!(
            http.get(&url).send().await.unwrap().status(),
            StatusCode::OK
        );
        assert_eq!(common.rejected(), 3);
        assert_eq!(
            common.requests().len(),
            6,
            "rejected requests are logged too"
        );
    }

    #[tokio::test]
    async fn no_capacity_means_no_limit_and_latency_is_added() {
        let (server, common, release) = held_server(Behaviour {
            latency: Duration::from_millis(60),
            ..Behaviour::default()
        })
        .await;
        release.send(true).unwrap();
        let http = reqwest::Client::new();
        let started = Instant::now();
        let requests: Vec<_> = (0..20)
            .map(|_| tokio::spawn(http.get(server.url()).send()))
            .collect();
        for request in requests {
            assert_eq!(request.await.unwrap().unwrap().status(), StatusCode::OK);
        }
        assert!(started.elapsed() >= Duration::from_millis(60));
        assert_eq!(common.rejected(), 0);

        // The capacity can be set on a running simulator.
        common.set_behaviour(Behaviour {
            capacity: Some(0),
            ..Behaviour::default()
        });
        let response = http.get(server.url()).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(common.rejected(), 1);
    }
}
