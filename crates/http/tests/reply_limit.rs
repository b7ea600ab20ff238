//! A vendor's reply is read only up to a limit: a hostile or broken server cannot
//! make rekey hold hundreds of megabytes per request in flight.

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use rekey_api::ErrorKind;
use rekey_http::{HttpOptions, LISTING_LIMIT, Method, REPLY_LIMIT, VendorHttp};

/// Serves `/api/big` (one byte over the reply limit, with its length), and
/// `/api/streamed` (the same, streamed without a length).
async fn server() -> String {
    let over = REPLY_LIMIT + 1;
    let app = Router::new()
        .route("/api/big", get(move || async move { vec![b'x'; over] }))
        .route(
            "/api/streamed",
            get(move || async move {
                let chunks = (0..over.div_ceil(65_536))
                    .map(|_| Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b'x'; 65_536])));
                Body::from_stream(futures_util::stream::iter(chunks))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn replies_over_the_limit_are_refused_unread() {
    let url = server().await;
    let http = VendorHttp::new(
        &url,
        "/api",
        &HttpOptions {
            allow_insecure_http: false,
            rate: None,
            timeout: std::time::Duration::from_secs(10),
        },
    )
    .unwrap();
    for path in ["big", "streamed"] {
        let response = http.send(http.request(Method::GET, &[path])).await.unwrap();
        let error = http.body(response).await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::Fatal, "{path}");
        assert!(error.message.contains("larger than 8 MiB"), "{error}");
    }
    // A listing of every account may be larger.
    let response = http
        .send(http.request(Method::GET, &["big"]))
        .await
        .unwrap();
    let body = http.body_within(response, LISTING_LIMIT).await.unwrap();
    assert_eq!(body.len(), REPLY_LIMIT + 1);
}
