//! Tap to committed decision, beside the raw cost of one SQLite `synchronous=FULL` commit on the
//! same disk, in the same run. Run with
//! `cargo bench -p kiosk --bench tap [-- --records N --taps N]`.
//!
//! Two phases: an empty ledger, then the same ledger grown to `--records` records (default
//! 1,000,000); 50,000 accounts throughout. Raw commits and taps alternate one for one, so disk and
//! machine noise hit both alike.

// Percentiles and ratios are reports, not money.
#![allow(
    clippy::float_arithmetic,
    clippy::unwrap_used,
    clippy::cast_precision_loss
)]

use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;

use kiosk::clock::ManualClock;
use kiosk::config::DataDir;
use kiosk::engine::{Decision, Engine};
use kiosk::ledger::Ledger;
use proto::record::{Meal, MealVia};
use proto::{AccountId, BracketId, Cents, MealType, PupilId, RecordBody, ServiceDate, ServiceId};

const ACCOUNTS: usize = 50_000;
/// Records written per transaction while growing the ledger.
const FILL_BATCH: usize = 10_000;

fn percentile(sorted: &[Duration], permille: usize) -> Duration {
    sorted[(sorted.len() - 1) * permille / 1_000]
}

struct Phase {
    raw: Vec<Duration>,
    tap: Vec<Duration>,
    /// Background checkpoints that caught up with every write, during the phase.
    checkpoints: u64,
    /// The ledger's WAL file at the end of the phase, in bytes: the most it held since the
    /// ledger was opened, as a restarted WAL is written again from its start.
    wal_bytes: u64,
}

/// One raw commit: a 400-byte row in its own `synchronous=FULL` transaction. Not inlined, so
/// callgrind can count its instructions (`--toggle-collect=tap::raw_commit`).
#[inline(never)]
fn raw_commit(raw: &rusqlite::Connection) {
    raw.execute_batch("BEGIN IMMEDIATE; INSERT INTO t (v) VALUES (randomblob(400)); COMMIT;")
        .unwrap();
}

/// One tap, not inlined, so callgrind can count its instructions (`--toggle-collect=tap::tap`).
#[inline(never)]
fn tap(engine: &mut Engine, card: proto::CardUid) -> Decision {
    engine.tap(card)
}

fn measure(
    engine: &mut Engine,
    raw: &rusqlite::Connection,
    first_card: usize,
    taps: usize,
) -> Phase {
    let checkpoints_before = engine.checkpoints_completed();
    let (mut raw_times, mut tap_times) = (Vec::with_capacity(taps), Vec::with_capacity(taps));
    for i in 0..taps {
        let start = Instant::now();
        raw_commit(raw);
        raw_times.push(start.elapsed());
        let card = common::pupil_card(first_card + i);
        let start = Instant::now();
        let decision = tap(engine, card);
        tap_times.push(start.elapsed());
        assert!(matches!(decision, Decision::Served(_)), "{decision:?}");
    }
    raw_times.sort();
    tap_times.sort();
    let mut wal = engine.ledger().path().as_os_str().to_owned();
    wal.push("-wal");
    Phase {
        raw: raw_times,
        tap: tap_times,
        checkpoints: engine.checkpoints_completed() - checkpoints_before,
        wal_bytes: std::fs::metadata(wal).map_or(0, |m| m.len()),
    }
}

fn report(name: &str, phase: &Phase) -> (f64, f64) {
    let (raw50, raw99) = (
        common::ms(percentile(&phase.raw, 500)),
        common::ms(percentile(&phase.raw, 990)),
    );
    let (tap50, tap99) = (
        common::ms(percentile(&phase.tap, 500)),
        common::ms(percentile(&phase.tap, 990)),
    );
    println!(
        "{name:<22} raw commit p50 {raw50:7.3} ms p99 {raw99:7.3} ms | tap p50 {tap50:7.3} ms p99 {tap99:7.3} ms | p99 ratio {:.2}",
        tap99 / raw99
    );
    println!(
        "{:<22} {} background checkpoints caught up; WAL file {:.1} MB at the end",
        "",
        phase.checkpoints,
        phase.wal_bytes as f64 / 1e6
    );
    (tap99, tap99 / raw99)
}

/// Appends `count` signed meal records of past days, in large transactions, as months of service
/// would have left them.
fn grow(data: &DataDir, count: usize) {
    let config = data.load_config().unwrap();
    let key = data.load_key().unwrap();
    let mut ledger = Ledger::open(&data.ledger_path()).unwrap();
    let mut head = ledger.head().unwrap();
    let at = proto::Timestamp::from_unix_ms(1_790_000_000_000).unwrap();
    let mut written = 0;
    while written < count {
        let batch = FILL_BATCH.min(count - written);
        let records: Vec<proto::Record> = (written..written + batch)
            .map(|n| {
                let pupil = n % ACCOUNTS;
                let day = time::Date::from_calendar_date(2026, time::Month::January, 1).unwrap()
                    + time::Duration::days(i64::try_from(n / ACCOUNTS).unwrap() % 300);
                let body = RecordBody::Meal(Meal {
                    service: ServiceId::parse("lunch").unwrap(),
                    service_date: ServiceDate::from_date(day),
                    meal_type: MealType::parse("lunch").unwrap(),
                    account: AccountId::parse(&format!("A{pupil:05}")).unwrap(),
                    pupil: PupilId::parse(&format!("P{pupil:05}")).unwrap(),
                    bracket: BracketId::parse("q3").unwrap(),
                    price: Cents::new(385),
                    balance_after: Cents::new(0),
                    via: MealVia::Card(common::pupil_card(pupil)),
                });
                head.append(&key, &config.device, at, body).unwrap()
            })
            .collect();
        ledger
            .write(|write| -> Result<(), kiosk::ledger::LedgerError> {
                records.iter().try_for_each(|record| write.append(record))
            })
            .unwrap();
        written += batch;
    }
}

fn main() {
    let records = common::bench_arg("--records", 1_000_000);
    // A p99 of 20,000 samples is its 200th slowest: steady from run to run, where one of 2,000
    // moved with a single slow commit.
    let taps = common::bench_arg("--taps", 20_000);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let data = common::enrol(dir.path());
    let raw = rusqlite::Connection::open(dir.path().join("raw.sqlite")).unwrap();
    raw.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL);",
    )
    .unwrap();
    let start_engine = |data: &DataDir| {
        kiosk::run::start_engine(data, Box::new(ManualClock::new(common::monday_noon()))).unwrap()
    };
    let mut engine = start_engine(&data);
    let started = Instant::now();
    engine
        .apply_snapshot(&common::snapshot_always_open(ACCOUNTS))
        .unwrap();
    println!(
        "snapshot of {ACCOUNTS} accounts applied in {:.0} ms",
        common::ms(started.elapsed())
    );
    println!(
        "machine: {} cores; ledger and raw database on the same disk ({})",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        dir.path().display()
    );

    let empty = measure(&mut engine, &raw, 1, taps);
    drop(engine);
    let started = Instant::now();
    grow(&data, records);
    println!(
        "ledger grown by {records} records in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut engine = start_engine(&data);
    // The back-office has those months of records: its next snapshot says so, and its balances
    // include them, so the kiosk adds only what it writes after.
    let mut synced = common::empty_delta(
        &common::snapshot_always_open(ACCOUNTS),
        proto::SnapshotVersion(2),
    );
    synced.records_through = engine.head().next_seq.previous();
    engine.apply_snapshot(&synced).unwrap();
    let full = measure(&mut engine, &raw, 1 + taps, taps);

    let (empty99, empty_ratio) = report("empty ledger", &empty);
    let (full99, full_ratio) = report(&format!("{records} records"), &full);
    let growth = |of: fn(&Phase) -> &Vec<Duration>, permille| {
        common::ms(percentile(of(&full), permille)) / common::ms(percentile(of(&empty), permille))
    };
    println!(
        "taps per phase: {taps}; tap growth from empty to full: p50 {:.2}x, p99 {:.2}x \
         (the raw commit's, the disk's drift: p50 {:.2}x, p99 {:.2}x)",
        growth(|phase| &phase.tap, 500),
        full99 / empty99,
        growth(|phase| &phase.raw, 500),
        growth(|phase| &phase.raw, 990),
    );
    let within = empty_ratio <= 2.0 && full_ratio <= 2.0 && empty99 <= 10.0 && full99 <= 10.0;
    println!(
        "target (p99 <= 2x raw commit p99 and <= 10 ms): {}",
        if within { "met" } else { "NOT met" }
    );
}
