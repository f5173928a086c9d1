//! A kiosk killed with SIGKILL at random moments, again and again, loses no record it reported
//! as served and charges no one twice.
//!
//! The test runs itself as the child: with `KIOSK_CRASH_CHILD_DIR` set, the same test function
//! taps in a loop and reports each "served" on stdout only after the engine returned it.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::Duration;

use kiosk::config::DataDir;
use kiosk::engine::Decision;
use kiosk::ledger::Ledger;
use proto::RecordBody;
use ring::rand::SecureRandom as _;

const CHILD_ENV: &str = "KIOSK_CRASH_CHILD_DIR";
/// Kills per run of `make test`; `make soak` sets many more through `KIOSK_CRASH_KILLS`.
const KILLS_DEFAULT: usize = 12;
const PUPILS: usize = 1_000;
/// The longest a child runs before it is killed.
const CHILD_RUN_MS_MAX: u64 = 600;

fn random_below(bound: u64) -> u64 {
    let mut bytes = [0; 8];
    ring::rand::SystemRandom::new().fill(&mut bytes).unwrap();
    u64::from_le_bytes(bytes) % bound
}

fn child(dir: &str) -> ! {
    let data = DataDir::new(dir);
    let clock = kiosk::clock::ManualClock::new(common::monday_noon());
    let mut engine = common::start(&data, clock.clone());
    let mut stdout = std::io::stdout().lock();
    // Start anywhere, wrap around: cards served before a kill must now be refused as already
    // served; a few cards are tapped twice in a row, like a card held on the reader. After each
    // round the clock moves a week on, so there are always meals to write until the kill.
    let offset = usize::try_from(random_below(PUPILS as u64)).unwrap();
    loop {
        for step in 0..PUPILS * 2 {
            let n = 1 + (offset + step / 2 * 3 + step % 2) % (PUPILS - 1);
            if let Decision::Served(served) = engine.tap(common::pupil_card(n)) {
                writeln!(stdout, "served {} {}", served.seq, served.pupil).unwrap();
                stdout.flush().unwrap();
            }
        }
        clock.advance(jiff::SignedDuration::from_hours(7 * 24));
    }
}

#[test]
fn kill_9_never_loses_or_doubles_a_meal() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir);
    }
    let kills = std::env::var("KIOSK_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(KILLS_DEFAULT);
    let kiosk = common::TestKiosk::new(PUPILS);
    let data = kiosk.data.clone();
    drop(kiosk.engine);
    let mut reported: BTreeMap<u64, String> = BTreeMap::new();
    let mut killed_mid_run = 0;
    for round in 0..kills {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "kill_9_never_loses_or_doubles_a_meal",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &data.root)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        std::thread::sleep(Duration::from_millis(50 + random_below(CHILD_RUN_MS_MAX)));
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        for line in reader.join().unwrap() {
            let mut words = line.split(' ');
            // A line cut by the kill is incomplete: only whole lines were reported.
            if let (Some("served"), Some(seq), Some(pupil)) =
                (words.next(), words.next(), words.next())
            {
                reported.insert(seq.parse().unwrap(), pupil.to_owned());
            }
        }
        check_ledger(&data, &reported, round);
    }
    eprintln!(
        "{kills} kills ({killed_mid_run} mid-run), {} meals reported and found",
        reported.len()
    );
    assert!(
        killed_mid_run >= kills / 2,
        "children must die mid-run, {killed_mid_run} of {kills} did"
    );
    assert!(!reported.is_empty());
}

fn check_ledger(data: &DataDir, reported: &BTreeMap<u64, String>, round: usize) {
    let ledger = Ledger::open(&data.ledger_path()).unwrap();
    assert_eq!(ledger.integrity_check().unwrap(), ["ok"], "round {round}");
    drop(ledger);
    let records = common::verified_records(data);
    let mut meals: BTreeMap<u64, String> = BTreeMap::new();
    let mut served_once = BTreeSet::new();
    for record in &records {
        if let RecordBody::Meal(meal) = &record.payload().body {
            meals.insert(record.seq().get(), meal.pupil.to_string());
            let key = (meal.pupil.clone(), meal.service.clone(), meal.service_date);
            assert!(
                served_once.insert(key),
                "round {round}: {} charged twice",
                meal.pupil
            );
        }
    }
    for (seq, pupil) in reported {
        assert_eq!(
            meals.get(seq),
            Some(pupil),
            "round {round}: reported meal {seq} lost"
        );
    }
}
