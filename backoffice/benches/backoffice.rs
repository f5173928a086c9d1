//! The back-office's targets, measured in one run: ingest of signed records through the HTTP
//! API on SQLite and on PostgreSQL as a ratio to raw Ed25519 verification of the same records;
//! a full snapshot of 50,000 accounts and a 100-change delta, fetched, parsed and checked as a
//! kiosk would. Run with `make bench` (`cargo bench -p backoffice --bench backoffice
//! [-- ROUNDS] [ingest|snapshot]`); PostgreSQL at `CANTEEN_TEST_POSTGRES_URL`, as for the
//! tests.
//!
//! Each round interleaves what it compares so machine noise hits both alike; the report gives
//! medians over the rounds.

// Rates and ratios are reports, not money.
#![allow(clippy::float_arithmetic, clippy::unwrap_used, clippy::expect_used)]

use testkit as common;

use common::Ops as _;

use std::time::{Duration, Instant};

use backoffice::store::Store;
use proto::limits::UPLOAD_BATCH_RECORDS_MAX;
use proto::snapshot::Snapshot;
use proto::{Cents, Signature, SignedRecord};

use common::app::TestApp;
use common::fixtures::{Kiosk, account, at, meal, populate, site};
use common::{PostgresDb, SqliteDb};

const ROUNDS_DEFAULT: usize = 5;
/// Records uploaded per round: full batches, as a kiosk back online sends them.
const BATCHES_PER_ROUND: usize = 6;
const SNAPSHOT_ACCOUNTS: usize = 50_000;
const DELTA_CHANGES: usize = 100;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Raw Ed25519 verifications per second of the records' payloads.
fn raw_verify_rate(kiosk: &Kiosk, records: &[SignedRecord]) -> f64 {
    let signatures: Vec<Signature> = records
        .iter()
        .map(|record| Signature::from_base64(&record.signature).unwrap())
        .collect();
    let started = Instant::now();
    for (record, signature) in records.iter().zip(&signatures) {
        assert!(
            kiosk
                .device
                .key
                .verify(record.payload.as_bytes(), signature)
        );
    }
    records.len() as f64 / started.elapsed().as_secs_f64()
}

/// Records per second stored through `POST /api/v1/kiosk/records`, batch after batch.
async fn http_ingest_rate<S: Store>(app: &TestApp<S>, kiosk: &Kiosk) -> f64 {
    let total = kiosk.written.len() as u64;
    let batch = UPLOAD_BATCH_RECORDS_MAX as u64;
    let started = Instant::now();
    for first in (1..=total).step_by(UPLOAD_BATCH_RECORDS_MAX) {
        let reply = app
            .upload(kiosk, kiosk.signed(first, first + batch - 1))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let elapsed = started.elapsed();
    assert_eq!(
        app.store.records(&kiosk.device.id).await.unwrap().len() as u64,
        total
    );
    total as f64 / elapsed.as_secs_f64()
}

async fn ingest<S: Store>(backend: &str, store: S, rounds: usize) {
    store
        .add_account(&account("A1"), Cents::ZERO, at(0))
        .await
        .unwrap();
    let app = TestApp::start(store).await;
    let (mut raw, mut http, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // A fresh kiosk each round: a chain from seq 1, as after enrolment.
        let mut kiosk = Kiosk::registered(
            &app.store,
            &format!("kiosk-{round}"),
            u8::try_from(round + 1).unwrap(),
        )
        .await;
        for _ in 0..BATCHES_PER_ROUND * UPLOAD_BATCH_RECORDS_MAX {
            kiosk.write(meal("A1", 385));
        }
        let records = kiosk.signed(1, u64::MAX);
        let raw_rate = raw_verify_rate(&kiosk, &records);
        let http_rate = http_ingest_rate(&app, &kiosk).await;
        raw.push(raw_rate);
        http.push(http_rate);
        ratios.push(http_rate / raw_rate);
    }
    println!(
        "ingest {backend}: raw verify {:.0}/s, HTTP ingest {:.0}/s, ratio {:.3} \
         (medians of {rounds} rounds of {} records)",
        median(&mut raw),
        median(&mut http),
        median(&mut ratios),
        BATCHES_PER_ROUND * UPLOAD_BATCH_RECORDS_MAX
    );
}

/// `count` families at site `jaures`, each with one pupil and one card.
async fn populate_city<S: Store>(store: &S, count: usize) {
    populate(store).await;
    let site = site();
    let mut families = tokio::task::JoinSet::new();
    let per_task = count / 8;
    for task in 0..8 {
        let store = store.clone();
        let site = site.clone();
        families.spawn(async move {
            for n in task * per_task..(task + 1) * per_task {
                let id = format!("F{n:06}");
                store
                    .add_account(&account(&id), Cents::ZERO, at(0))
                    .await
                    .unwrap();
                let pupil = common::fixtures::pupil(&format!("Q{n:06}"), &id, "q2");
                store.save_pupil(&site, &pupil).await.unwrap();
                let uid = u32::try_from(n).unwrap().to_be_bytes();
                let card = common::fixtures::pupil_card(
                    &[0xbe, uid[1], uid[2], uid[3]],
                    pupil.id.as_str(),
                );
                store.assign_card(&card).await.unwrap();
            }
        });
    }
    while let Some(done) = families.join_next().await {
        done.unwrap();
    }
}

/// Fetches a snapshot as the kiosk does, parses and checks it; returns it and the time taken.
async fn fetch<S: Store>(app: &TestApp<S>, kiosk: &Kiosk, path: &str) -> (Snapshot, Duration) {
    let started = Instant::now();
    let reply = app.signed(kiosk, "GET", path, b"").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let snapshot: Snapshot = reply.json();
    if snapshot.is_full() {
        snapshot.check_complete().unwrap();
    } else {
        snapshot.check_entries().unwrap();
    }
    (snapshot, started.elapsed())
}

async fn snapshots<S: Store>(backend: &str, store: S, rounds: usize) {
    let kiosk = Kiosk::registered(&store, "kiosk-jaures-1", 1).await;
    let app = TestApp::start(store).await;
    let (mut full_ms, mut delta_ms) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (full, elapsed) = fetch(&app, &kiosk, "/api/v1/kiosk/snapshot").await;
        assert!(full.accounts.len() >= SNAPSHOT_ACCOUNTS);
        full_ms.push(elapsed.as_secs_f64() * 1_000.0);
        for change in 0..DELTA_CHANGES {
            let family = account(&format!("F{:06}", round * DELTA_CHANGES + change));
            let operation = backoffice::store::Operation {
                kind: backoffice::store::OperationKind::OnlinePayment {
                    reference: proto::Text::parse(&format!("bench-{round}-{change}")).unwrap(),
                },
                account: family,
                amount: Cents::new(1_000),
                user: "bench".to_owned(),
                at: at(0),
            };
            app.store.apply_operation(&operation).await.unwrap();
        }
        let path = format!("/api/v1/kiosk/snapshot?since={}", full.version);
        let (delta, elapsed) = fetch(&app, &kiosk, &path).await;
        assert_eq!(delta.accounts.len(), DELTA_CHANGES);
        delta_ms.push(elapsed.as_secs_f64() * 1_000.0);
    }
    println!(
        "snapshot {backend}: full of {SNAPSHOT_ACCOUNTS} accounts {:.0} ms (target 2000), \
         {DELTA_CHANGES}-change delta {:.1} ms (target 50) (medians of {rounds} rounds)",
        median(&mut full_ms),
        median(&mut delta_ms)
    );
}

fn main() {
    let rounds = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse::<usize>().ok())
        .unwrap_or(ROUNDS_DEFAULT);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // An optional second argument runs one part only: `ingest` or `snapshot`.
    let only = std::env::args()
        .skip(1)
        .find(|arg| arg == "ingest" || arg == "snapshot");
    let runs = |part: &str| only.as_deref().is_none_or(|only| only == part);
    runtime.block_on(async {
        if runs("ingest") {
            let sqlite = SqliteDb::new();
            ingest("SQLite", sqlite.open().await, rounds).await;
            let postgres = PostgresDb::new().await;
            ingest("PostgreSQL", postgres.open().await, rounds).await;
        }
        if runs("snapshot") {
            let sqlite = SqliteDb::new();
            let store = sqlite.open().await;
            let setup = Instant::now();
            populate_city(&store, SNAPSHOT_ACCOUNTS).await;
            eprintln!(
                "SQLite: {SNAPSHOT_ACCOUNTS} families set up in {:.1?}",
                setup.elapsed()
            );
            snapshots("SQLite", store, rounds).await;

            let postgres = PostgresDb::new().await;
            let store = postgres.open().await;
            let setup = Instant::now();
            populate_city(&store, SNAPSHOT_ACCOUNTS).await;
            // A bulk load leaves the planner's statistics stale until autovacuum's next
            // ANALYZE; take them now, as a server in service has them.
            let (client, connection) =
                tokio_postgres::connect(&postgres.url(), tokio_postgres::NoTls)
                    .await
                    .unwrap();
            tokio::spawn(connection);
            client.batch_execute("ANALYZE").await.unwrap();
            eprintln!(
                "PostgreSQL: {SNAPSHOT_ACCOUNTS} families set up and analyzed in {:.1?}",
                setup.elapsed()
            );
            snapshots("PostgreSQL", store, rounds).await;
        }
    });
}
