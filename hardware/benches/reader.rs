//! The PC/SC reader through a real pcscd and vpcd virtual cards: how long from pcscd reporting a
//! card present to our `CardPresent` event with its UID, and how much CPU the reader thread uses
//! while idle. Run with `cargo bench -p hardware --bench reader [-- TAPS [IDLE_SECONDS]]`, with
//! pcscd running (`deploy/dev/start-pcscd.sh`).
//!
//! Latency is measured from the moment pcscd's status change woke the reader thread
//! (`reported_at`) to the moment the receiving thread holds the event. In the same run, for each
//! tap, a bare PC/SC read of the same card (connect, GET DATA, disconnect on its own context) is
//! timed: the floor that any reader on this machine pays, to compare against.

// Percentiles and rates are reports, not money.
#![allow(clippy::float_arithmetic, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use hardware::vpcd::vpcd_address_default;
use hardware::{
    CardEvent, CardReader, PcscConfig, PcscReader, ReaderSelector, VirtualCard, event_channel,
};
use pcsc::{Context, Disposition, Protocols, Scope, ShareMode};
use proto::CardUid;

const READER: &str = "Virtual PCD 00 00";
const TAPS_DEFAULT: usize = 100;
const IDLE_SECONDS_DEFAULT: u64 = 60;
/// The target of issue 4 for p99 from pcscd's report to our event.
const TARGET_P99_MS: f64 = 20.0;
/// pcscd looks at a vpcd slot about every 400 ms: any event comes well within this.
const EVENT_WAIT_MS: u64 = 5_000;
/// Linux reports thread CPU time in clock ticks of 10 ms (USER_HZ = 100).
const CLOCK_TICK_MS: u64 = 10;

/// The nearest-rank percentile of sorted samples.
fn percentile(sorted_ms: &[f64], percent: usize) -> f64 {
    let rank = (sorted_ms.len() * percent).div_ceil(100).max(1);
    sorted_ms[rank - 1]
}

fn summary(name: &str, mut samples_ms: Vec<f64>) -> (f64, f64) {
    samples_ms.sort_by(f64::total_cmp);
    let p50 = percentile(&samples_ms, 50);
    let p99 = percentile(&samples_ms, 99);
    let max = samples_ms[samples_ms.len() - 1];
    println!(
        "{name:<44} p50 {p50:>8.3} ms   p99 {p99:>8.3} ms   max {max:>8.3} ms   ({} taps)",
        samples_ms.len()
    );
    (p50, p99)
}

fn next_event(events: &std::sync::mpsc::Receiver<CardEvent>) -> (CardEvent, Instant) {
    let event = events
        .recv_timeout(Duration::from_millis(EVENT_WAIT_MS))
        .expect("an event from the reader (is pcscd running with vpcd?)");
    (event, Instant::now())
}

/// A bare read of the card on `READER`, as any PC/SC program would do it.
fn bare_read_ms(context: &Context) -> f64 {
    let reader = std::ffi::CString::new(READER).unwrap();
    let started = Instant::now();
    let card = context
        .connect(&reader, ShareMode::Shared, Protocols::ANY)
        .unwrap();
    let mut answer = [0; 64];
    let answer = card
        .transmit(&[0xFF, 0xCA, 0x00, 0x00, 0x00], &mut answer)
        .unwrap();
    assert_eq!(answer[answer.len() - 2..], [0x90, 0x00]);
    if let Err((_, error)) = card.disconnect(Disposition::LeaveCard) {
        panic!("disconnect: {error}");
    }
    started.elapsed().as_secs_f64() * 1_000.0
}

/// The reader thread's CPU time in clock ticks and its voluntary context switches (wakeups).
fn reader_thread_usage() -> (u64, u64) {
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let task = task.unwrap().path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap();
        if comm.trim() != "pcsc-reader" {
            continue;
        }
        let stat = std::fs::read_to_string(task.join("stat")).unwrap();
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        let status = std::fs::read_to_string(task.join("status")).unwrap();
        let switches = status
            .lines()
            .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap();
        return (ticks, switches);
    }
    panic!("no pcsc-reader thread");
}

/// Per tap: pcscd's report to our event, the card's insertion to our event, and a bare read.
struct TapTimes {
    to_event_ms: Vec<f64>,
    insert_to_event_ms: Vec<f64>,
    bare_ms: Vec<f64>,
}

/// Inserts and removes `taps` virtual cards, each with its own UID, timing each.
fn time_taps(events: &std::sync::mpsc::Receiver<CardEvent>, taps: usize) -> TapTimes {
    let bare_context = Context::establish(Scope::User).unwrap();
    let mut times = TapTimes {
        to_event_ms: Vec::with_capacity(taps),
        insert_to_event_ms: Vec::with_capacity(taps),
        bare_ms: Vec::with_capacity(taps),
    };
    for tap in 0..taps {
        let mut uid = [0x04, 0xBE, 0x4C, 0x00, 0x00, 0x00, 0x00];
        uid[3..].copy_from_slice(&u32::try_from(tap).unwrap().to_be_bytes());
        let uid = CardUid::parse(&uid).unwrap();
        let inserted_at = Instant::now();
        let card = VirtualCard::with_uid(uid)
            .insert(vpcd_address_default())
            .unwrap();
        let (event, received_at) = next_event(events);
        let CardEvent::CardPresent {
            uid: read,
            reported_at,
            ..
        } = event
        else {
            panic!("expected a card present, got {event:?}");
        };
        assert_eq!(read, uid);
        times
            .to_event_ms
            .push((received_at - reported_at).as_secs_f64() * 1_000.0);
        times
            .insert_to_event_ms
            .push((received_at - inserted_at).as_secs_f64() * 1_000.0);
        times.bare_ms.push(bare_read_ms(&bare_context));
        card.remove().unwrap();
        let (event, _) = next_event(events);
        assert!(matches!(event, CardEvent::CardRemoved { .. }), "{event:?}");
    }
    times
}

fn report_taps(taps: usize, times: TapTimes) {
    println!("reader: {READER} through pcscd and vpcd, {taps} taps");
    let (_, p99) = summary(
        "pcscd reports present -> our event with UID",
        times.to_event_ms,
    );
    summary("bare connect + GET DATA + disconnect", times.bare_ms);
    summary(
        "card inserted in vpcd -> our event (info)",
        times.insert_to_event_ms,
    );
    println!(
        "p99 / target ({TARGET_P99_MS} ms): {:.3} ({})",
        p99 / TARGET_P99_MS,
        if p99 <= TARGET_P99_MS {
            "within target"
        } else {
            "OVER TARGET"
        }
    );
}

/// The reader thread's CPU and wakeups over `idle_seconds` with no card.
fn report_idle(idle_seconds: u64) {
    // Let the last removal's wakeups settle before measuring the idle thread.
    std::thread::sleep(Duration::from_secs(1));
    let (ticks_before, switches_before) = reader_thread_usage();
    std::thread::sleep(Duration::from_secs(idle_seconds));
    let (ticks_after, switches_after) = reader_thread_usage();
    let cpu_ms = (ticks_after - ticks_before) * CLOCK_TICK_MS;
    println!(
        "idle {idle_seconds} s: reader thread CPU {cpu_ms} ms ({:.4}% of a core), {} wakeups",
        cpu_ms as f64 / (idle_seconds as f64 * 1_000.0) * 100.0,
        switches_after - switches_before
    );
}

fn main() {
    let numbers: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|arg| arg.parse::<u64>().ok())
        .collect();
    let taps = numbers
        .first()
        .map_or(TAPS_DEFAULT, |&taps| usize::try_from(taps).unwrap());
    let idle_seconds = numbers.get(1).copied().unwrap_or(IDLE_SECONDS_DEFAULT);

    let (sender, events) = event_channel();
    let reader = PcscReader::new(PcscConfig {
        reader: ReaderSelector::from_pattern(Some(READER)).unwrap(),
    })
    .start(sender)
    .unwrap();
    let (attached, _) = next_event(&events);
    assert!(
        matches!(attached, CardEvent::ReaderAttached { .. }),
        "{attached:?}"
    );
    let times = time_taps(&events, taps);
    report_taps(taps, times);
    report_idle(idle_seconds);
    reader.stop().unwrap();
}
