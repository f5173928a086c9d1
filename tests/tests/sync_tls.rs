//! Sync over TLS: the kiosk trusts only the CA file it is configured with. A back-office whose
//! certificate another CA signed is refused, and so is one the system's roots would not know.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use kiosk::config::SyncConfig;
use kiosk::engine::Decision;
use kiosk::sync::SyncError;
use testkit::Ops as _;
use tests::backoffice::{SqliteDb, card, populate_site, serve_backoffice_tls};
use tests::kiosk::{TestKiosk, assert_consistent};

fn is_certificate_refusal(result: Result<(), SyncError>) -> bool {
    matches!(result, Err(SyncError::Network(message)) if message.contains("certificate")
        || message.contains("UnknownIssuer") || message.contains("invalid peer"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_syncs_over_tls_trusting_only_its_ca() {
    let db = SqliteDb::new();
    let store = db.open().await;
    populate_site(&store, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let (city_ca, city_certificate, city_key) = testkit::tls::authority(dir.path(), "City CA");
    let (_other_ca, other_certificate, other_key) = testkit::tls::authority(dir.path(), "Other CA");
    let city = serve_backoffice_tls(
        store.clone(),
        backoffice::http::tls::server_config(&city_certificate, &city_key).unwrap(),
    )
    .await;
    let impostor = serve_backoffice_tls(
        store.clone(),
        backoffice::http::tls::server_config(&other_certificate, &other_key).unwrap(),
    )
    .await;
    let trusting_city = SyncConfig {
        ca_file: Some(city_ca.clone()),
        ..SyncConfig::default()
    };

    let mut kiosk =
        TestKiosk::enrol_with_sync(&store, "Entrée cour", &city.url(), trusting_city.clone()).await;
    kiosk.sync().await.unwrap();
    assert!(matches!(kiosk.tap(card(0)).await, Decision::Served(_)));
    kiosk.sync_until_clean(3).await;
    assert_consistent(&store, &[&kiosk], 2, &[]).await;

    // A server with a certificate of another CA: refused, nothing sent.
    let mut misled =
        TestKiosk::enrol_with_sync(&store, "Entrée hall", &impostor.url(), trusting_city).await;
    let result = misled.sync().await;
    assert!(is_certificate_refusal(result), "{:?}", misled.sync.state());
    assert!(store.records(&misled.device).await.unwrap().is_empty());

    // Without its CA file, the kiosk trusts the system's roots, which do not know the city's.
    let mut untrusting = TestKiosk::enrol(&store, "Entrée préau", &city.url()).await;
    let result = untrusting.sync().await;
    assert!(
        is_certificate_refusal(result),
        "{:?}",
        untrusting.sync.state()
    );

    // A CA file that holds no certificate is refused when the sync starts.
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    assert!(matches!(
        kiosk::sync::http_client(Some(&empty)),
        Err(SyncError::CaFile { .. })
    ));
}
