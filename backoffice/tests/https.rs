//! The back-office serves HTTPS itself when given a certificate and key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit as common;

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::SqliteDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_over_tls_with_the_given_certificate() {
    let db = SqliteDb::new();
    let dir = db.dir.path();
    // The city's CA signs the back-office's certificate; kiosks trust only that CA.
    let (authority, certificate, key) = common::tls::authority(dir, "City CA");

    let config = backoffice::http::tls::server_config(&certificate, &key).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(backoffice::app::serve(
        db.open().await,
        listener,
        backoffice::app::ServeOptions {
            tls: Some(config),
            clock: backoffice::clock::ManualClock::new(common::fixtures::app_now()).shared(),
            ..backoffice::app::ServeOptions::default()
        },
        async {
            let _ = stopped.await;
        },
    ));

    // A plain-HTTP client gets no answer from the HTTPS port.
    let plain = common::app::send_raw(address, b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert!(!String::from_utf8_lossy(&plain).contains("200 OK"));

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&authority).unwrap())
        .unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = TcpStream::connect(address).await.unwrap();
    let server_name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(server_name, tcp).await.unwrap();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    let _ = tls.read_to_end(&mut reply).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(reply.ends_with("ok\n"), "{reply}");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
