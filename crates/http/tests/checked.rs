//! `VendorHttp::checked`: a success passes as it is; any other status becomes the
//! connector's `StatusMap` error, carrying the vendor's message field and nothing
//! else of the body.

use rekey_api::testing::{FakeVendor, Response, json};
use rekey_api::{ErrorKind, StatusMap};
use rekey_http::{HttpOptions, Method, VendorHttp};

#[tokio::test]
async fn statuses_become_the_connectors_errors() {
    let vendor = FakeVendor::builder()
        .route(
            "PUT",
            "/api/accounts/{id}/password",
            |request| match request.param("id") {
                Some("jdoe") => Response::status(204),
                Some("weak") => Response::json(
                    422,
                    json!({ "message": "too short", "password": "echo-of-the-value" }),
                ),
                _ => Response::text(500, "stack trace with echo-of-the-value"),
            },
        )
        .start()
        .await
        .unwrap();
    let options = HttpOptions {
        allow_insecure_http: false,
        rate: None,
        timeout: std::time::Duration::from_secs(5),
    };
    let http = VendorHttp::new(&vendor.url(), "/api", &options).unwrap();
    let statuses = StatusMap::new().on(422, ErrorKind::PolicyRejected);
    let put = |id: &str| http.request(Method::PUT, &["accounts", id, "password"]);

    let reply = http.send(put("jdoe")).await.unwrap();
    let reply = http
        .checked(reply, &statuses, "PUT password")
        .await
        .unwrap();
    assert_eq!(reply.status(), 204);

    let reply = http.send(put("weak")).await.unwrap();
    let error = http
        .checked(reply, &statuses, "PUT password")
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::PolicyRejected);
    assert_eq!(error.message, "PUT password: HTTP 422: too short");

    let reply = http.send(put("other")).await.unwrap();
    let error = http
        .checked(reply, &statuses, "PUT password")
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Fatal);
    assert!(!error.message.contains("echo"), "{}", error.message);
}
