//! The reconciliation target: one service day of `--records` signed records (default
//! 1,000,000) across `--kiosks` kiosks (default 500) at 120 sites, reconciled on SQLite and on
//! PostgreSQL (every signature verified, every chain and day close checked), then exported as
//! meals CSV and as the FEC journal. Beside it, in the same run, raw Ed25519 verification of
//! the same records on one core, the floor any full check pays.
//!
//! Run with `make bench` (`cargo bench -p backoffice --bench reconcile [-- --records N
//! --kiosks K --rounds R --backend sqlite|postgres|both]`). Generating the data (signing, then
//! ingest through the store, which verifies each record again) takes minutes; only the
//! reconciliation and the exports are timed.

// Rates and ratios are reports, not money.
#![allow(clippy::float_arithmetic, clippy::unwrap_used, clippy::expect_used)]

use testkit as common;

use common::Ops as _;

use std::time::Instant;

use backoffice::export::{self, ExportKind, Period};
use backoffice::reconcile;
use backoffice::store::Store;
use proto::limits::UPLOAD_BATCH_RECORDS_MAX;
use proto::snapshot::Service;
use proto::{Cents, Signature, SiteId};

use common::day::{Till, cash, date, lunch, meal_for, settings};
use common::fixtures::registered_at;
use common::fixtures::{account, lunch_service};
use common::{PostgresDb, SqliteDb};

/// The target of the design: a day of a million records in 10 s.
const TARGET_S: f64 = 10.0;
const SITES: usize = 120;
const ACCOUNTS: usize = 2_000;

fn flag(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|arg| arg == name)
        .and_then(|index| args.get(index + 1))
        .map_or(default, |value| value.parse().expect("a number"))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Every kiosk's day: meals, a cash top-up every 50 records, and the day close; signed on
/// every core.
fn generate(records: usize, kiosks: usize) -> Vec<Till> {
    let per_kiosk = (records / kiosks).max(2);
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let indexes: Vec<usize> = (0..kiosks).collect();
    let chunks: Vec<Vec<usize>> = indexes
        .chunks(kiosks.div_ceil(threads))
        .map(<[usize]>::to_vec)
        .collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|index| {
                            let seed = u8::try_from(index % 250).unwrap() + 1;
                            let mut till = Till::new(&format!("kiosk-{index:03}"), seed);
                            till.device.site =
                                SiteId::parse(&format!("site-{:03}", index % SITES)).unwrap();
                            for n in 0..per_kiosk - 1 {
                                let account_name = format!("A{}", (index * 7 + n) % ACCOUNTS);
                                let minute = i64::try_from(n * 120 / per_kiosk).unwrap();
                                let body = if n % 50 == 49 {
                                    cash(&account_name, 2_000)
                                } else {
                                    meal_for(&format!("P{index}-{n}"), &account_name, 385, 0)
                                };
                                till.write(lunch(minute), body);
                            }
                            till.close(lunch(150), date(), 0);
                            till
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().unwrap())
            .collect()
    })
}

/// Raw Ed25519 verifications per second on one core, over a sample of the records.
fn raw_verify_rate(tills: &[Till]) -> f64 {
    let sample: Vec<_> = tills
        .iter()
        .flat_map(|till| {
            till.written
                .iter()
                .take(200)
                .map(move |record| (till.device.key, record.signed().clone()))
        })
        .take(20_000)
        .collect();
    let signatures: Vec<Signature> = sample
        .iter()
        .map(|(_, record)| Signature::from_base64(&record.signature).unwrap())
        .collect();
    let started = Instant::now();
    for ((key, record), signature) in sample.iter().zip(&signatures) {
        assert!(key.verify(record.payload.as_bytes(), signature));
    }
    sample.len() as f64 / started.elapsed().as_secs_f64()
}

async fn load<S: Store>(store: &S, tills: &[Till]) {
    for index in 0..ACCOUNTS {
        store
            .add_account(
                &account(&format!("A{index}")),
                Cents::new(-5_000),
                lunch(-600),
            )
            .await
            .unwrap();
    }
    let service: Service = lunch_service();
    let mut all_week = service.clone();
    all_week.weekdays = vec![
        proto::snapshot::Weekday::Monday,
        proto::snapshot::Weekday::Tuesday,
        proto::snapshot::Weekday::Wednesday,
        proto::snapshot::Weekday::Thursday,
        proto::snapshot::Weekday::Friday,
    ];
    for site in 0..SITES {
        store
            .save_service(
                &SiteId::parse(&format!("site-{site:03}")).unwrap(),
                &all_week,
            )
            .await
            .unwrap();
    }
    for till in tills {
        store
            .add_device(till.device.clone(), registered_at())
            .await
            .unwrap();
        for batch in till.written.chunks(UPLOAD_BATCH_RECORDS_MAX) {
            let records = batch.iter().map(|record| record.signed().clone()).collect();
            store
                .ingest(&till.device, records, lunch(180))
                .await
                .unwrap();
        }
    }
}

async fn measure<S: Store>(backend: &str, store: S, tills: &[Till], rounds: usize, raw: f64) {
    let records: usize = tills.iter().map(|till| till.written.len()).sum();
    let started = Instant::now();
    load(&store, tills).await;
    eprintln!(
        "{backend}: {records} records of {} kiosks loaded in {:.0} s",
        tills.len(),
        started.elapsed().as_secs_f64()
    );
    let settings = settings();
    let period = Period::new(date(), date()).unwrap();
    let (mut reconciles, mut csvs, mut journals) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let started = Instant::now();
        let outcome = reconcile::run(&store, date(), None, &settings, |_, _| {})
            .await
            .unwrap();
        reconciles.push(started.elapsed().as_secs_f64());
        assert!(outcome.report.is_clean(), "{:?}", outcome.report.kinds());
        assert_eq!(
            outcome.report.records_checked,
            u64::try_from(records).unwrap()
        );
        for (kind, times) in [
            (ExportKind::Meals, &mut csvs),
            (ExportKind::Journal, &mut journals),
        ] {
            let started = Instant::now();
            let mut sink = std::io::sink();
            let actor = common::ops::finance("finance");
            export::write(&store, &actor, kind, period, None, &settings, &mut sink)
                .await
                .unwrap();
            times.push(started.elapsed().as_secs_f64());
        }
    }
    let reconcile_s = median(&mut reconciles);
    let floor_s = records as f64 / raw;
    println!(
        "{backend}: {records} records, {} kiosks: reconciliation {reconcile_s:.2} s \
         (target {TARGET_S} s, ratio {:.2}); raw verification on one core {floor_s:.2} s \
         ({raw:.0}/s); meals CSV {:.2} s; FEC journal {:.2} s (medians of {rounds} rounds)",
        tills.len(),
        reconcile_s / TARGET_S,
        median(&mut csvs),
        median(&mut journals),
    );
}

fn main() {
    let records = flag("--records", 1_000_000);
    let kiosks = flag("--kiosks", 500);
    let rounds = flag("--rounds", 1).max(1);
    let args: Vec<String> = std::env::args().collect();
    let backend = args
        .iter()
        .position(|arg| arg == "--backend")
        .and_then(|index| args.get(index + 1).cloned())
        .unwrap_or_else(|| "both".to_owned());
    let started = Instant::now();
    let tills = generate(records, kiosks);
    eprintln!(
        "signed {} records in {:.0} s",
        tills.iter().map(|till| till.written.len()).sum::<usize>(),
        started.elapsed().as_secs_f64()
    );
    let raw = raw_verify_rate(&tills);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        if backend == "sqlite" || backend == "both" {
            let db = SqliteDb::new();
            measure("SQLite", db.open().await, &tills, rounds, raw).await;
        }
        if backend == "postgres" || backend == "both" {
            let db = PostgresDb::new().await;
            measure("PostgreSQL", db.open().await, &tills, rounds, raw).await;
        }
    });
}
