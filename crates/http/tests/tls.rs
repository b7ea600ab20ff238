//! TLS is verified: a server whose certificate this machine does not trust is
//! refused at once, with a message that says so, and never retried.

use std::sync::Arc;
use std::time::Duration;

use rekey_api::ErrorKind;
use rekey_http::{HttpOptions, Method, VendorHttp};
use tokio::io::AsyncWriteExt;
use tokio_rustls::rustls::{
    self, pki_types::CertificateDer, pki_types::PrivateKeyDer, pki_types::pem::PemObject,
};

/// A TLS server on 127.0.0.1 with a self-signed certificate (tests/data, made
/// with openssl for `localhost` and `127.0.0.1`), answering `200 {}`.
async fn self_signed_server() -> u16 {
    let certs = CertificateDer::pem_slice_iter(include_bytes!("data/self-signed.crt"))
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("data/self-signed.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let _ = tls
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                        .await;
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let port = self_signed_server().await;
    let options = HttpOptions {
        allow_insecure_http: false,
        rate: None,
        timeout: Duration::from_secs(10),
    };
    let http = VendorHttp::new(&format!("https://127.0.0.1:{port}"), "/api", &options).unwrap();
    let error = http
        .send(http.request(Method::GET, &["users"]))
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Fatal, "{}", error.message);
    assert!(
        error.message.contains("TLS certificate was refused"),
        "{}",
        error.message
    );
    assert!(!error.kind.is_retryable());
}
