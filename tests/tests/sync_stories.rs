//! Kiosks and the back-office together, through their real sync over loopback HTTP: the stories
//! of a canteen whose network comes and goes. Each story runs on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use backoffice::store::Store;
use kiosk::clock::Clock as _;
use kiosk::config::SyncConfig;
use kiosk::engine::Decision;
use kiosk::sync::SyncWarning;
use proto::{Cents, Payload, RecordBody, RecordKind};
use testkit::Ops as _;
use tests::backoffice::{
    BackOffice, LUNCH_CENTS, OPENING_BALANCE_CENTS, account, card, populate_site, serve_backoffice,
    top_up,
};
use tests::kiosk::{TestKiosk, assert_consistent, movements};
use tests::proxy::FaultProxy;

// Each story runs as a test on SQLite and a test on PostgreSQL.
testkit::on_each_backend!(
    (
        a_kiosk_uploads_its_records_and_gets_the_snapshot,
        a_kiosk_uploads_its_records_and_gets_the_snapshot_sqlite,
        a_kiosk_uploads_its_records_and_gets_the_snapshot_postgres
    ),
    (
        two_kiosks_offline_serve_the_same_pupil,
        two_kiosks_offline_serve_the_same_pupil_sqlite,
        two_kiosks_offline_serve_the_same_pupil_postgres
    ),
    (
        a_top_up_and_a_blocked_card_reach_an_offline_kiosk_at_its_next_sync,
        a_top_up_and_a_blocked_card_reach_an_offline_kiosk_sqlite,
        a_top_up_and_a_blocked_card_reach_an_offline_kiosk_postgres
    ),
    (
        a_reinstalled_kiosk_is_a_new_device,
        a_reinstalled_kiosk_is_a_new_device_sqlite,
        a_reinstalled_kiosk_is_a_new_device_postgres
    ),
    (
        days_offline_and_a_drifting_clock_are_recorded_and_shown,
        days_offline_and_a_drifting_clock_are_recorded_and_shown_sqlite,
        days_offline_and_a_drifting_clock_are_recorded_and_shown_postgres
    ),
    (
        the_background_sync_keeps_the_back_office_in_step,
        the_background_sync_keeps_the_back_office_in_step_sqlite,
        the_background_sync_keeps_the_back_office_in_step_postgres
    ),
);

async fn served(kiosk: &TestKiosk, pupil: usize) -> bool {
    matches!(kiosk.tap(card(pupil)).await, Decision::Served(_))
}

async fn a_kiosk_uploads_its_records_and_gets_the_snapshot<S: Store>(store: S) {
    populate_site(&store, 3).await;
    let backoffice = serve_backoffice(store.clone()).await;
    let mut kiosk = TestKiosk::enrol(&store, "Entrée cour", &backoffice.url()).await;

    // Before its first sync the kiosk knows nobody.
    assert!(matches!(
        kiosk.tap(card(0)).await,
        Decision::OutOfService { .. }
    ));
    kiosk.sync().await.unwrap();
    assert_eq!(
        kiosk.balance(&account(0)).await,
        Some(Cents::new(OPENING_BALANCE_CENTS))
    );
    assert!(served(&kiosk, 0).await);
    assert!(served(&kiosk, 1).await);
    assert!(kiosk.unsynced().await > 0);
    kiosk.sync().await.unwrap();
    assert_eq!(kiosk.unsynced().await, 0);
    let state = kiosk.state();
    assert!(state.online);
    assert!(state.last_sync.is_some());
    assert_eq!(state.unsynced_records, 0);
    assert!(state.warnings.is_empty(), "{:?}", state.warnings);
    // The balance the kiosk shows is the back-office's.
    assert_eq!(
        kiosk.balance(&account(0)).await,
        Some(Cents::new(OPENING_BALANCE_CENTS - LUNCH_CENTS))
    );
    // The back-office keeps the kiosk's report.
    let statuses = store.kiosk_statuses().await.unwrap();
    let status = statuses
        .iter()
        .find(|status| status.device == kiosk.device)
        .unwrap();
    assert_eq!(status.report.reader, proto::api::ReaderState::Ready);
    assert_eq!(
        status.report.software_version.as_str(),
        env!("CARGO_PKG_VERSION")
    );
    assert!(status.report.snapshot_version.is_some());
    assert_consistent(&store, &[&kiosk], 3, &[]).await;
}

/// A back-office behind a "VPN" the test can cut: a proxy that breaks nothing but can go
/// offline.
async fn behind_vpn<S: Store>(store: &S) -> (BackOffice<S>, FaultProxy) {
    let backoffice = serve_backoffice(store.clone()).await;
    let vpn = FaultProxy::start(backoffice.address, 0, 1).await;
    (backoffice, vpn)
}

async fn meals_of(store: &impl Store, kiosk: &TestKiosk, pupil: &str) -> usize {
    store
        .records(&kiosk.device)
        .await
        .unwrap()
        .iter()
        .filter(|stored| {
            matches!(&Payload::parse(&stored.record.payload).unwrap().body,
                RecordBody::Meal(meal) if meal.pupil.as_str() == pupil)
        })
        .count()
}

async fn two_kiosks_offline_serve_the_same_pupil<S: Store>(store: S) {
    populate_site(&store, 2).await;
    let (_backoffice, vpn) = behind_vpn(&store).await;
    let mut door = TestKiosk::enrol(&store, "Entrée cour", &vpn.url()).await;
    let mut hall = TestKiosk::enrol(&store, "Entrée hall", &vpn.url()).await;
    door.sync().await.unwrap();
    hall.sync().await.unwrap();

    vpn.set_offline(true);
    assert!(served(&door, 0).await);
    assert!(
        served(&hall, 0).await,
        "the hall cannot know the door served her"
    );
    for _ in 0..kiosk::limits::FAILED_SYNCS_BEFORE_OFFLINE {
        assert!(door.sync().await.is_err());
    }
    assert!(!door.state().online);
    assert!(door.state().unsynced_records > 0);
    assert!(door.kinds().await.contains(&RecordKind::OfflineStart));

    vpn.set_offline(false);
    door.sync_until_clean(3).await;
    hall.sync_until_clean(3).await;
    assert!(door.state().online);
    assert!(door.kinds().await.contains(&RecordKind::OfflineEnd));
    // Both meals are stored and charged: the same pupil, service and day at two kiosks, which
    // the day's reconciliation lists for finance to act on.
    assert_eq!(meals_of(&store, &door, "P0000").await, 1);
    assert_eq!(meals_of(&store, &hall, "P0000").await, 1);
    assert_eq!(
        store.balance(&account(0)).await.unwrap(),
        Some(Cents::new(OPENING_BALANCE_CENTS - 2 * LUNCH_CENTS))
    );
    // Once each has synced after the other, each shows the balance with both meals.
    door.sync_until_clean(3).await;
    assert_eq!(
        door.balance(&account(0)).await,
        Some(Cents::new(OPENING_BALANCE_CENTS - 2 * LUNCH_CENTS))
    );
    assert_consistent(&store, &[&door, &hall], 2, &[]).await;
}

async fn a_top_up_and_a_blocked_card_reach_an_offline_kiosk_at_its_next_sync<S: Store>(store: S) {
    populate_site(&store, 2).await;
    let (_backoffice, vpn) = behind_vpn(&store).await;
    let mut kiosk = TestKiosk::enrol(&store, "Entrée cour", &vpn.url()).await;
    kiosk.sync().await.unwrap();

    vpn.set_offline(true);
    assert!(served(&kiosk, 0).await);
    top_up(&store, &account(0), 2_000).await;
    store.block_card(&card(1)).await.unwrap();
    // Offline, the kiosk knows neither.
    assert_eq!(
        kiosk.balance(&account(0)).await,
        Some(Cents::new(OPENING_BALANCE_CENTS - LUNCH_CENTS))
    );
    assert!(served(&kiosk, 1).await);
    assert!(kiosk.sync().await.is_err());

    vpn.set_offline(false);
    kiosk.sync_until_clean(3).await;
    assert_eq!(
        kiosk.balance(&account(0)).await,
        Some(Cents::new(OPENING_BALANCE_CENTS - LUNCH_CENTS + 2_000))
    );
    kiosk.next_day();
    assert_eq!(kiosk.tap(card(1)).await, Decision::BlockedCard);
    assert!(served(&kiosk, 0).await);
    kiosk.sync_until_clean(3).await;
    assert_consistent(&store, &[&kiosk], 2, &[2_000]).await;
}

/// A kiosk "Entrée cour" enrolled in `dir`, talking to `url`.
async fn enrol_at_the_door(store: &impl Store, dir: &std::path::Path, url: &str) -> TestKiosk {
    TestKiosk::enrol_in(store, dir, "Entrée cour", url, SyncConfig::default()).await
}

async fn a_reinstalled_kiosk_is_a_new_device<S: Store>(store: S) {
    populate_site(&store, 2).await;
    let backoffice = serve_backoffice(store.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut old = enrol_at_the_door(&store, dir.path(), &backoffice.url()).await;
    old.sync().await.unwrap();
    assert!(served(&old, 0).await);
    old.sync_until_clean(3).await;
    let old_records = old.records().await;
    drop(old.sync);
    drop(old.worker.stop());

    // The disk is wiped and the kiosk enrolled again: a new key, so a new device.
    std::fs::remove_dir_all(dir.path()).unwrap();
    let mut new = enrol_at_the_door(&store, dir.path(), &backoffice.url()).await;
    assert_ne!(new.device, old.device);
    new.sync().await.unwrap();
    new.next_day();
    assert!(served(&new, 0).await);
    assert!(served(&new, 1).await);
    new.sync_until_clean(3).await;

    let stored_old: Vec<_> = store
        .records(&old.device)
        .await
        .unwrap()
        .into_iter()
        .map(|stored| stored.record)
        .collect();
    assert!(
        stored_old == old_records,
        "the old device's records stay as they were"
    );
    let mut all = old_records;
    all.extend(new.records().await);
    let moved = movements(&all);
    assert_eq!(moved.get(&account(0)), Some(&(-2 * LUNCH_CENTS)));
    assert_consistent(&store, &[&new], 0, &[]).await;
    for index in 0..2 {
        let expected = OPENING_BALANCE_CENTS + moved.get(&account(index)).copied().unwrap_or(0);
        assert_eq!(
            store.balance(&account(index)).await.unwrap(),
            Some(Cents::new(expected))
        );
    }
    assert!(store.anomalies().await.unwrap().is_empty());
}

/// Offline for days, then back with a clock two days ahead: staff are warned of both, the
/// kiosk writes its audit records, and it still syncs.
async fn days_offline_and_a_drifting_clock_are_recorded_and_shown<S: Store>(store: S) {
    populate_site(&store, 1).await;
    let (_backoffice, vpn) = behind_vpn(&store).await;
    let config = SyncConfig {
        offline_days_max: Some(2),
        clock_drift_ms_max: Some(60_000),
        ..SyncConfig::default()
    };
    let mut kiosk = TestKiosk::enrol_with_sync(&store, "Entrée cour", &vpn.url(), config).await;
    let clock = tests::kiosk::wall_clock();
    kiosk.set_sync_clock(std::sync::Arc::new(clock.clone()));
    kiosk.sync().await.unwrap();
    assert!(kiosk.state().warnings.is_empty());

    vpn.set_offline(true);
    clock.advance(jiff::SignedDuration::from_hours(49));
    for _ in 0..kiosk::limits::FAILED_SYNCS_BEFORE_OFFLINE {
        assert!(kiosk.sync().await.is_err());
    }
    let state = kiosk.state();
    assert!(!state.online);
    assert_eq!(
        state.warnings,
        vec![SyncWarning::OfflineTooLong { days: 2 }]
    );

    // Back online, the kiosk's clock is two days ahead: the back-office refuses its signed
    // timestamp, the kiosk learns the back-office's time from the answer, records the drift,
    // and signs its next requests in the back-office's time.
    vpn.set_offline(false);
    let _ = kiosk.sync().await;
    kiosk.sync_until_clean(3).await;
    let state = kiosk.state();
    assert!(state.online);
    assert!(
        matches!(state.warnings.as_slice(), [SyncWarning::ClockDrift { drift_ms }]
            if (49 * 3_600_000 - 5_000..=49 * 3_600_000 + 5_000).contains(drift_ms)),
        "{:?}",
        state.warnings
    );
    let kinds = kiosk.kinds().await;
    assert_eq!(
        kinds
            .iter()
            .filter(|kind| **kind == RecordKind::ClockDrift)
            .count(),
        1
    );
    assert!(kinds.contains(&RecordKind::OfflineStart));
    assert!(kinds.contains(&RecordKind::OfflineEnd));

    // The clock set right, the warning goes.
    clock.set(tests::kiosk::wall_clock().now());
    kiosk.sync_until_clean(3).await;
    assert!(
        kiosk.state().warnings.is_empty(),
        "{:?}",
        kiosk.state().warnings
    );
    assert_consistent(&store, &[&kiosk], 1, &[]).await;
}

/// The sync as `kiosk run` starts it: a task of the runtime, every interval, while the kiosk
/// serves.
async fn the_background_sync_keeps_the_back_office_in_step<S: Store>(store: S) {
    populate_site(&store, 2).await;
    let backoffice = serve_backoffice(store.clone()).await;
    let config = SyncConfig {
        interval_ms: Some(200),
        ..SyncConfig::default()
    };
    let kiosk = TestKiosk::enrol_with_sync(&store, "Entrée cour", &backoffice.url(), config).await;
    let client = kiosk::sync::SyncClient::from_data_dir(
        &kiosk.data,
        std::sync::Arc::clone(&kiosk.engine),
        std::sync::Arc::new(tests::kiosk::wall_clock()),
    )
    .unwrap()
    .unwrap();
    let sync = kiosk::sync::spawn(&tokio::runtime::Handle::current(), client);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut served_both = false;
    while std::time::Instant::now() < deadline {
        if !served_both && served(&kiosk, 0).await {
            assert!(served(&kiosk, 1).await);
            served_both = true;
        }
        let state = kiosk.state();
        if served_both && state.online && kiosk.unsynced().await == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    sync.stop().await;
    assert!(
        served_both,
        "the snapshot never arrived: {:?}",
        kiosk.state()
    );
    assert_eq!(kiosk.unsynced().await, 0, "{:?}", kiosk.state());
    assert_consistent(&store, &[&kiosk], 2, &[]).await;
}
