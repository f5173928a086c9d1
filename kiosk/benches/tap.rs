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

use kiosk::clock::ManualClock;
use kiosk::config::DataDir;
use kiosk::engine::{Decision, Engine};
use kiosk::ledger::Ledger;
use proto::record::{Meal, MealVia};
use proto::snapshot::{
    AccountState, Card, CardHolder, KioskSettings, Language, LocalTime, Pupil, Removed, Service,
    Snapshot, Tariff, Weekday,
};
use proto::{
    AccountId, BracketId, CardUid, Cents, MealType, PupilId, RecordBody, ServiceDate, ServiceId,
    SiteId, SnapshotVersion, Text,
};

const ACCOUNTS: usize = 50_000;
/// Records written per transaction while growing the ledger.
const FILL_BATCH: usize = 10_000;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn card(n: usize) -> CardUid {
    let b = u32::try_from(n).unwrap().to_be_bytes();
    CardUid::parse(&[0x04, b[0], b[1], b[2], b[3], 0x80, 0x01]).unwrap()
}

fn snapshot() -> Snapshot {
    let text = |t: &str| Text::parse(t).unwrap();
    Snapshot {
        version: SnapshotVersion(1),
        since: None,
        site: SiteId::parse("jaures").unwrap(),
        records_through: None,
        accounts: (0..ACCOUNTS)
            .map(|n| AccountState {
                id: AccountId::parse(&format!("A{n:05}")).unwrap(),
                balance: Cents::new(100_000),
                overdraft_floor: Cents::new(-500),
            })
            .collect(),
        pupils: (0..ACCOUNTS)
            .map(|n| Pupil {
                id: PupilId::parse(&format!("P{n:05}")).unwrap(),
                account: AccountId::parse(&format!("A{n:05}")).unwrap(),
                first_name: text("Chloé"),
                last_name: text(&format!("Martin{n}")),
                bracket: BracketId::parse("q3").unwrap(),
                dietary: Vec::new(),
            })
            .collect(),
        cards: (0..ACCOUNTS)
            .map(|n| Card {
                uid: card(n),
                holder: CardHolder::Pupil(PupilId::parse(&format!("P{n:05}")).unwrap()),
            })
            .collect(),
        hotlist: Vec::new(),
        tariffs: vec![Tariff {
            bracket: BracketId::parse("q3").unwrap(),
            meal_type: MealType::parse("lunch").unwrap(),
            price: Cents::new(385),
        }],
        services: vec![Service {
            id: ServiceId::parse("lunch").unwrap(),
            name: text("Déjeuner"),
            meal_type: MealType::parse("lunch").unwrap(),
            weekdays: vec![
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Thursday,
                Weekday::Friday,
            ],
            start: LocalTime::parse("00:00").unwrap(),
            end: LocalTime::parse("23:59").unwrap(),
        }],
        staff: Vec::new(),
        settings: Some(KioskSettings {
            result_display_ms: 2_000,
            sync_interval_ms: 30_000,
            staff_idle_signout_ms: 120_000,
            language: Language::Fr,
        }),
        removed: Removed::default(),
    }
}

/// The value below which `permille` thousandths of the sorted samples fall.
fn percentile(sorted: &[Duration], permille: usize) -> Duration {
    sorted[(sorted.len() - 1) * permille / 1_000]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

struct Phase {
    raw: Vec<Duration>,
    tap: Vec<Duration>,
}

fn measure(
    engine: &mut Engine,
    raw: &rusqlite::Connection,
    first_card: usize,
    taps: usize,
) -> Phase {
    let mut phase = Phase {
        raw: Vec::with_capacity(taps),
        tap: Vec::with_capacity(taps),
    };
    for i in 0..taps {
        let start = Instant::now();
        raw.execute_batch("BEGIN IMMEDIATE; INSERT INTO t (v) VALUES (randomblob(400)); COMMIT;")
            .unwrap();
        phase.raw.push(start.elapsed());
        let start = Instant::now();
        let decision = engine.tap(card(first_card + i));
        phase.tap.push(start.elapsed());
        assert!(matches!(decision, Decision::Served(_)), "{decision:?}");
    }
    phase.raw.sort();
    phase.tap.sort();
    phase
}

fn report(name: &str, phase: &Phase) -> (f64, f64) {
    let (raw50, raw99) = (
        ms(percentile(&phase.raw, 500)),
        ms(percentile(&phase.raw, 990)),
    );
    let (tap50, tap99) = (
        ms(percentile(&phase.tap, 500)),
        ms(percentile(&phase.tap, 990)),
    );
    println!(
        "{name:<22} raw commit p50 {raw50:7.3} ms p99 {raw99:7.3} ms | tap p50 {tap50:7.3} ms p99 {tap99:7.3} ms | p99 ratio {:.2}",
        tap99 / raw99
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
                    via: MealVia::Card(card(pupil)),
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
    let records = arg("--records", 1_000_000);
    let taps = arg("--taps", 2_000);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let data = DataDir::new(dir.path().join("kiosk"));
    data.init(
        SiteId::parse("jaures").unwrap(),
        Text::parse("bench").unwrap(),
        None,
        "Europe/Paris",
        &ring::rand::SystemRandom::new(),
    )
    .unwrap();
    let raw = rusqlite::Connection::open(dir.path().join("raw.sqlite")).unwrap();
    raw.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL);",
    )
    .unwrap();
    let monday = "2026-11-30T11:00:00Z".parse::<jiff::Timestamp>().unwrap();
    let start_engine = |data: &DataDir| {
        let config = data.load_config().unwrap();
        Engine::start(
            Ledger::open(&data.ledger_path()).unwrap(),
            data.load_key().unwrap(),
            config.device,
            Box::new(ManualClock::new(monday)),
            jiff::tz::TimeZone::get("Europe/Paris").unwrap(),
            "bench",
        )
        .unwrap()
    };
    let mut engine = start_engine(&data);
    let started = Instant::now();
    engine.apply_snapshot(&snapshot()).unwrap();
    println!(
        "snapshot of {ACCOUNTS} accounts applied in {:.0} ms",
        ms(started.elapsed())
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
    let full = measure(&mut engine, &raw, 1 + taps, taps);

    let (empty99, empty_ratio) = report("empty ledger", &empty);
    let (full99, full_ratio) = report(&format!("{records} records"), &full);
    let growth50 = ms(percentile(&full.tap, 500)) / ms(percentile(&empty.tap, 500));
    println!(
        "taps per phase: {taps}; tap growth from empty to full: p50 {growth50:.2}x, p99 {:.2}x",
        full99 / empty99
    );
    let within = empty_ratio <= 2.0 && full_ratio <= 2.0 && empty99 <= 10.0 && full99 <= 10.0;
    println!(
        "target (p99 <= 2x raw commit p99 and <= 10 ms): {}",
        if within { "met" } else { "NOT met" }
    );
}
