//! Manual transfer: a site whose network is down for days exports its kiosk's records to a file,
//! which finance brings to the back-office. The result is the network sync's, and the kiosk's
//! later sync of the same records counts them as duplicates.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use backoffice::store::Store;
use backoffice::users::Role;
use kiosk::engine::Decision;
use kiosk::ledger::Ledger;
use proto::Seq;
use testkit::Ops as _;
use tests::backoffice::{
    PostgresDb, SqliteDb, account, card, metric, populate_site, register_device, serve_backoffice,
    user,
};
use tests::kiosk::TestKiosk;
use tests::proxy::FaultProxy;

const PUPILS: usize = 4;

async fn an_exported_file_gives_the_network_syncs_result<S: Store>(by_hand: S, by_network: S) {
    populate_site(&by_hand, PUPILS).await;
    populate_site(&by_network, PUPILS).await;
    let office = serve_backoffice(by_hand.clone()).await;
    let vpn = FaultProxy::start(office.address, 0, 7).await;
    let mut kiosk = TestKiosk::enrol(&by_hand, "Entrée cour", &vpn.url()).await;
    let key = kiosk.data.load_key().unwrap();
    register_device(&by_network, &kiosk.device, key.public_key()).await;
    kiosk.sync().await.unwrap();

    // Three days without the VPN.
    vpn.set_offline(true);
    for _ in 0..3 {
        for pupil in 0..PUPILS {
            assert!(matches!(kiosk.tap(card(pupil)).await, Decision::Served(_)));
        }
        assert!(kiosk.sync().await.is_err());
        kiosk.next_day();
    }
    let acknowledged = kiosk
        .call(|engine| engine.ledger().counts().unwrap().acknowledged_seq)
        .await
        .map_or(0, Seq::get);
    let mut file = Vec::new();
    let exported = kiosk::export::write_records(
        &Ledger::open_reader(&kiosk.data.ledger_path()).unwrap(),
        Seq::FIRST,
        None,
        &mut file,
    )
    .unwrap();

    // Only finance and admin may bring a file.
    let finance = [user(&by_hand, "finance", Role::Finance).await];
    let reply = office
        .request("POST", "/api/v1/transfers", &[], &file)
        .await;
    assert_eq!(reply.status, 401, "{}", reply.text());
    let payments = user(&by_hand, "payments", Role::Payments).await;
    let reply = office
        .request("POST", "/api/v1/transfers", &[payments], &file)
        .await;
    assert_eq!(reply.status, 403, "{}", reply.text());
    // A file of another shape changes nothing.
    let reply = office
        .request("POST", "/api/v1/transfers", &finance, b"{}\n")
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text());

    let reply = office
        .request("POST", "/api/v1/transfers", &finance, &file)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let answer: serde_json::Value = serde_json::from_str(&reply.text()).unwrap();
    assert_eq!(answer["device"], kiosk.device.as_str());
    assert_eq!(answer["stored"], exported - acknowledged);
    assert_eq!(answer["duplicates"], acknowledged);
    assert_eq!(answer["quarantined"], 0);
    assert_eq!(answer["acknowledged"], exported);
    // The same file twice stores nothing more.
    let reply = office
        .request("POST", "/api/v1/transfers", &finance, &file)
        .await;
    let answer: serde_json::Value = serde_json::from_str(&reply.text()).unwrap();
    assert_eq!(
        (answer["stored"].as_u64(), answer["duplicates"].as_u64()),
        (Some(0), Some(exported))
    );

    // The VPN is back: the kiosk sends the same records again, and they are duplicates.
    vpn.set_offline(false);
    let duplicates_before = metric(&office, "canteen_records_total{outcome=\"duplicate\"}").await;
    kiosk.sync_until_clean(3).await;
    let duplicates = metric(&office, "canteen_records_total{outcome=\"duplicate\"}").await;
    assert_eq!(duplicates - duplicates_before, exported - acknowledged);

    // Another back-office that got everything by network holds the same.
    let other = serve_backoffice(by_network.clone()).await;
    let mut network = kiosk.another_sync_client(other.url());
    network.sync_once().await.unwrap();
    let held_by_hand = by_hand.records(&kiosk.device).await.unwrap();
    let held_by_network = by_network.records(&kiosk.device).await.unwrap();
    assert!(held_by_network.len() >= held_by_hand.len());
    for (hand, network) in held_by_hand.iter().zip(&held_by_network) {
        assert_eq!(hand.record, network.record);
    }
    for index in 0..PUPILS {
        assert_eq!(
            by_hand.balance(&account(index)).await.unwrap(),
            by_network.balance(&account(index)).await.unwrap()
        );
    }
    assert!(by_hand.balance_mismatches().await.unwrap().is_empty());
    assert!(by_hand.anomalies().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_file_gives_the_network_syncs_result_sqlite() {
    let (by_hand, by_network) = (SqliteDb::new(), SqliteDb::new());
    an_exported_file_gives_the_network_syncs_result(by_hand.open().await, by_network.open().await)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_file_gives_the_network_syncs_result_postgres() {
    let (by_hand, by_network) = (PostgresDb::new().await, PostgresDb::new().await);
    an_exported_file_gives_the_network_syncs_result(by_hand.open().await, by_network.open().await)
        .await;
}
