//! Nothing lost, nothing doubled, over a network that breaks: kiosks tap and sync through a
//! proxy that drops connections before, during and after requests, truncates answers, resets
//! and delays, while the back-office takes counter top-ups. At the end the back-office holds
//! exactly the kiosks' chains, every balance is the sum of its records and operations, and no
//! pupil was charged twice.
//!
//! The normal run is short; `SYNC_SOAK_TAPS=N` (set by `make soak`) makes each kiosk tap `N`
//! times. Two back-office instances on one PostgreSQL, with one kiosk's uploads racing across
//! both, end the same way.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use backoffice::store::Store;
use kiosk::engine::Decision;
use testkit::Ops as _;
use tests::backoffice::{PostgresDb, account, card, populate_site, serve_backoffice, top_up};
use tests::kiosk::{TestKiosk, assert_consistent};
use tests::proxy::FaultProxy;

/// Taps per kiosk in the normal test run.
const TAPS_SHORT: usize = 400;

/// Pupils per kiosk: each kiosk serves its own, once a day.
const PUPILS_PER_KIOSK: usize = 20;

const KIOSKS: usize = 2;

/// Connections broken per thousand while the kiosks work.
const FAULTS_PER_MILLE: u64 = 150;

/// A sync after this many taps.
const TAPS_PER_SYNC: usize = 8;

/// A counter top-up in the back-office after this many taps of the first kiosk.
const TAPS_PER_TOP_UP: usize = 50;

fn taps_per_kiosk() -> usize {
    std::env::var("SYNC_SOAK_TAPS")
        .ok()
        .and_then(|taps| taps.parse().ok())
        .unwrap_or(TAPS_SHORT)
}

/// One kiosk's day after day: each of its pupils once a day, a sync every few taps whatever
/// the network does.
async fn work(mut kiosk: TestKiosk, first_pupil: usize, taps: usize) -> TestKiosk {
    let mut tapped = 0;
    while tapped < taps {
        for pupil in first_pupil..first_pupil + PUPILS_PER_KIOSK {
            let decision = kiosk.tap(card(pupil)).await;
            assert!(
                matches!(decision, Decision::Served(_)),
                "{}: pupil {pupil}: {decision:?}",
                kiosk.device
            );
            tapped += 1;
            if tapped % TAPS_PER_SYNC == 0 {
                // Failures are the point: the next sync picks up where this one broke.
                let _ = kiosk.sync().await;
            }
        }
        kiosk.next_day();
    }
    kiosk
}

async fn nothing_lost_nothing_doubled<S: Store>(store: S, seed: u64) {
    let pupils = KIOSKS * PUPILS_PER_KIOSK;
    populate_site(&store, pupils).await;
    let backoffice = serve_backoffice(store.clone()).await;
    let proxy = FaultProxy::start(backoffice.address, FAULTS_PER_MILLE, seed).await;
    let mut kiosks = Vec::new();
    for index in 0..KIOSKS {
        let mut kiosk = TestKiosk::enrol(&store, &format!("Entrée {index}"), &proxy.url()).await;
        kiosk.sync_until_clean(100).await;
        kiosks.push(kiosk);
    }

    let taps = taps_per_kiosk();
    let workers: Vec<_> = kiosks
        .into_iter()
        .enumerate()
        .map(|(index, kiosk)| tokio::spawn(work(kiosk, index * PUPILS_PER_KIOSK, taps)))
        .collect();
    // Meanwhile, parents pay at the counter.
    let mut counter = vec![0_i64; pupils];
    for round in 0..taps / TAPS_PER_TOP_UP {
        let index = (round * 7) % pupils;
        top_up(&store, &account(index), 1_000).await;
        counter[index] += 1_000;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut kiosks = Vec::new();
    for worker in workers {
        kiosks.push(worker.await.unwrap());
    }

    let faults = proxy.counts();
    proxy.set_fault_rate(0);
    for kiosk in &mut kiosks {
        kiosk.sync_until_clean(10).await;
    }
    // A second round, so each kiosk's snapshot holds the others' last records.
    for kiosk in &mut kiosks {
        kiosk.sync_until_clean(10).await;
    }
    eprintln!(
        "{} taps, {} connections, {} faults",
        taps * KIOSKS,
        faults.connections,
        faults.faults
    );
    assert!(faults.faults >= (taps / 20) as u64, "{faults:?}");
    let kiosk_refs: Vec<&TestKiosk> = kiosks.iter().collect();
    assert_consistent(&store, &kiosk_refs, pupils, &counter).await;
    // Every kiosk shows the back-office's balances.
    for kiosk in &kiosks {
        for index in 0..pupils {
            assert_eq!(
                kiosk.balance(&account(index)).await,
                store.balance(&account(index)).await.unwrap(),
                "{} shows another balance for {}",
                kiosk.device,
                account(index)
            );
        }
    }
    assert!(store.anomalies().await.unwrap().is_empty());
}

testkit::on_each_backend!((
    nothing_lost_nothing_doubled,
    nothing_lost_nothing_doubled_sqlite(11),
    nothing_lost_nothing_doubled_postgres(12)
));

/// Two back-office instances in front of one PostgreSQL; one kiosk's sync goes to both at once
/// (as a load balancer might send it), through faulty links, while it keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_racing_across_two_instances_are_stored_once() {
    let db = PostgresDb::new().await;
    let store = db.open().await;
    populate_site(&store, PUPILS_PER_KIOSK).await;
    let first = serve_backoffice(store.clone()).await;
    let second = serve_backoffice(db.open().await).await;
    let to_first = FaultProxy::start(first.address, 200, 21).await;
    let to_second = FaultProxy::start(second.address, 200, 22).await;
    let mut kiosk = TestKiosk::enrol(&store, "Entrée cour", &to_first.url()).await;
    kiosk.sync_until_clean(50).await;
    let mut other = kiosk.another_sync_client(to_second.url());

    let taps = taps_per_kiosk() / 2;
    let racing = tokio::spawn(async move {
        for _ in 0..taps / TAPS_PER_SYNC {
            let _ = other.sync_once().await;
        }
        other
    });
    let mut tapped = 0;
    while tapped < taps {
        for pupil in 0..PUPILS_PER_KIOSK {
            assert!(matches!(kiosk.tap(card(pupil)).await, Decision::Served(_)));
            tapped += 1;
            if tapped % TAPS_PER_SYNC == 0 {
                let _ = kiosk.sync().await;
            }
        }
        kiosk.next_day();
    }
    let mut other = racing.await.unwrap();
    to_first.set_fault_rate(0);
    to_second.set_fault_rate(0);
    kiosk.sync_until_clean(10).await;
    other.sync_once().await.unwrap();
    kiosk.sync_until_clean(10).await;
    assert_consistent(&store, &[&kiosk], PUPILS_PER_KIOSK, &[]).await;
    assert!(store.anomalies().await.unwrap().is_empty());
}
