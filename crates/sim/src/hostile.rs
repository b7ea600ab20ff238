//! A hostile vendor, for testing that a connector survives whatever comes back:
//! every request gets the one reply the test last chose (any status, any bytes),
//! and [`replies`] draws such replies: random bytes, random JSON, and JSON shaped
//! like the vendors' own replies with every field of the wrong type.
//! [`each_reply`] runs a test case against many of them.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value};

use crate::common::{Behaviour, Common, SimServer, lock};
use crate::recorder::Canned;

/// A server that answers every request with the reply set last.
#[derive(Debug)]
pub struct HostileVendor {
    server: SimServer,
    reply: Arc<Mutex<Canned>>,
}

impl HostileVendor {
    /// Starts on 127.0.0.1, answering `200 {}` until told otherwise. Must be called
    /// inside a tokio runtime.
    pub async fn start() -> std::io::Result<HostileVendor> {
        let reply = Arc::new(Mutex::new(Canned::json("{}")));
        let router = Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&reply));
        let server = SimServer::start(0, router, Common::new(Behaviour::default())).await?;
        Ok(HostileVendor { server, reply })
    }

    /// The server's root URL.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Answers every request from now on with `reply`.
    pub fn answer_with(&self, reply: Canned) {
        *lock(&self.reply) = reply;
    }
}

async fn answer(State(reply): State<Arc<Mutex<Canned>>>) -> Response {
    let canned = lock(&reply).clone();
    let mut response = (
        StatusCode::from_u16(canned.status).unwrap_or(StatusCode::OK),
        canned.body,
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&canned.content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// Field names the vendors' replies use: a hostile reply reuses them with values
/// of the wrong type.
const FIELDS: &[&str] = &[
    "success",
    "message",
    "accessToken",
    "refreshToken",
    "accessTokenExpiration",
    "token",
    "users",
    "userData",
    "userName",
    "userId",
    "id",
    "status",
    "statusMessage",
    "SEVERITY",
    "STATUS_MESSAGE",
    "ERROR_CODE",
    "expires_in",
    "access_token",
    "items",
    "accounts",
    "next",
    "cursor",
    "loginId",
    "emailAddress",
    "password",
    "passwords",
    "passcodes",
    "details",
    "error",
    "reset",
    "sAMAccountName",
    "results",
    "outcomes",
];

/// Any JSON value, a few levels deep.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS), inner), 0..8).prop_map(|fields| {
                Value::Object(
                    fields
                        .into_iter()
                        .map(|(k, v)| ((*k).to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// Replies a vendor should never send: any status a connector reads, with random
/// bytes, random JSON, or a list of such objects.
pub fn replies() -> impl Strategy<Value = Canned> {
    let status = prop::sample::select(vec![
        200u16, 201, 204, 400, 401, 403, 404, 409, 422, 429, 500, 502, 503,
    ]);
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        json().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(json(), 0..4).prop_map(|v| Value::Array(v).to_string().into_bytes()),
    ];
    (status, body, any::<bool>()).prop_map(|(status, body, as_json)| Canned {
        status,
        content_type: if as_json {
            "application/json".into()
        } else {
            "text/plain".into()
        },
        body,
    })
}

/// Runs `case` once for each of `cases` hostile replies, all served by one vendor
/// on one runtime. A panic in `case` fails the test, naming the (shrunk) reply
/// that caused it.
pub fn each_reply(cases: u32, case: impl Fn(&tokio::runtime::Runtime, &HostileVendor)) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let vendor = runtime
        .block_on(HostileVendor::start())
        .expect("the hostile vendor starts");
    let mut runner = TestRunner::new(Config {
        cases,
        ..Config::default()
    });
    let outcome = runner.run(&replies(), |reply| {
        vendor.answer_with(reply);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&runtime, &vendor)))
            .map_err(|_| TestCaseError::fail("the case panicked"))
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}
