//! The PC/SC reader against a real pcscd with vsmartcard's vpcd driver and virtual cards. One
//! pcscd serves the machine, so every test here takes the `PCSCD` lock and they run one at a
//! time; `deploy/dev/start-pcscd.sh` starts pcscd when it is not running.

// The helpers below are test code too: a failed unwrap fails the test with its location.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use hardware::diagnose;
use hardware::vpcd::{InsertedCard, vpcd_address_default};
use hardware::{
    CardAnswer, CardEvent, CardReader, HardwareError, PcscConfig, PcscError, PcscReader,
    ReaderHandle, ReaderSelector, UidReadError, VirtualCard, event_channel,
};
use proto::CardUid;

/// vpcd's first slot, where the tests put their cards.
const READER: &str = "Virtual PCD 00 00";

/// How long a test waits for an event it expects. pcscd looks at a vpcd slot about every
/// 400 ms; recovery after a pcscd restart must take under 5 s.
const EVENT_WAIT_MS: u64 = 5_000;

/// How long a test listens to be sure no other event comes: longer than pcscd's 400 ms polling
/// and the removal debounce together.
const QUIET_MS: u64 = 1_500;

static PCSCD: Mutex<()> = Mutex::new(());

/// One test's reader on a running pcscd, holding the machine's pcscd for itself.
struct Rig {
    events: Receiver<CardEvent>,
    reader: Option<ReaderHandle>,
    _pcscd: MutexGuard<'static, ()>,
}

impl Rig {
    /// Starts pcscd if needed and a reader on [`READER`], and waits until it is attached.
    fn start() -> Rig {
        let rig = Rig::watching(lock_pcscd());
        rig.expect(attached());
        rig
    }

    /// A reader on [`READER`] started with the machine's pcscd held, whatever its state.
    fn watching(pcscd: MutexGuard<'static, ()>) -> Rig {
        let (sender, events) = event_channel();
        let reader = PcscReader::new(PcscConfig {
            reader: ReaderSelector::from_pattern(Some(READER)).unwrap(),
        })
        .start(sender)
        .unwrap();
        Rig {
            events,
            reader: Some(reader),
            _pcscd: pcscd,
        }
    }

    fn next(&self) -> CardEvent {
        match self
            .events
            .recv_timeout(Duration::from_millis(EVENT_WAIT_MS))
        {
            Ok(event) => event,
            Err(RecvTimeoutError::Timeout) => panic!("no event within {EVENT_WAIT_MS} ms"),
            Err(RecvTimeoutError::Disconnected) => panic!("the reader thread ended"),
        }
    }

    /// The next event is `expected` (compared without `reported_at`).
    fn expect(&self, expected: CardEvent) -> CardEvent {
        let event = self.next();
        assert_eq!(without_time(&event), without_time(&expected));
        event
    }

    fn expect_quiet(&self, quiet_ms: u64) {
        match self.events.recv_timeout(Duration::from_millis(quiet_ms)) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(event) => panic!("unexpected event: {event:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("the reader thread ended"),
        }
    }

    /// A card of UID `hex` held for `hold_ms`: one tap, with that UID (see [`Rig::check_tap`]).
    fn check_uid_tap(&self, hex: &str, hold_ms: u64) {
        self.check_tap(VirtualCard::with_uid(uid(hex)), hold_ms, present(uid(hex)));
    }

    /// Inserts a card of UID `hex` and checks that it is seen with that UID; the card, to remove.
    fn insert_uid(&self, hex: &str) -> InsertedCard {
        let inserted = VirtualCard::with_uid(uid(hex))
            .insert(vpcd_address_default())
            .unwrap();
        self.expect(present(uid(hex)));
        inserted
    }

    /// Taps `card` (inserted, held `hold_ms`, removed) and checks the events: `first`, then
    /// `CardRemoved`, then nothing.
    fn check_tap(&self, card: VirtualCard, hold_ms: u64, first: CardEvent) {
        let inserted = card.insert(vpcd_address_default()).unwrap();
        self.expect(first);
        std::thread::sleep(Duration::from_millis(hold_ms));
        // A card that left by itself during the read has nothing more to say.
        let _ = inserted.remove();
        self.expect(removed());
        self.expect_quiet(QUIET_MS);
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            let stopped = reader.stop();
            // Not while unwinding from a failed assertion: that one says more.
            if !std::thread::panicking() {
                stopped.unwrap();
            }
        }
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Takes the machine's pcscd for one test, starting it if needed, once the previous test's card
/// has left [`READER`]: pcscd notices a removal only at its next look at the slot.
fn lock_pcscd() -> MutexGuard<'static, ()> {
    let pcscd = PCSCD.lock().unwrap_or_else(PoisonError::into_inner);
    start_pcscd();
    let readers = diagnose::list_readers().unwrap();
    if !readers.iter().any(|reader| reader.name == READER) {
        // A test that failed while pcscd ran without its readers: start the usual one.
        stop_pcscd();
        start_pcscd();
    }
    let deadline = Instant::now() + Duration::from_millis(EVENT_WAIT_MS);
    loop {
        let readers = diagnose::list_readers().unwrap();
        let reader = readers.iter().find(|reader| reader.name == READER);
        if reader.is_some_and(|reader| reader.card_atr.is_none()) {
            return pcscd;
        }
        assert!(
            Instant::now() < deadline,
            "{READER} missing or not empty: {readers:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_pcscd() {
    let script = repo_root().join("deploy/dev/start-pcscd.sh");
    let status = Command::new(&script).status().unwrap_or_else(|error| {
        panic!("cannot run {}: {error}", script.display());
    });
    assert!(
        status.success(),
        "pcscd with the vpcd driver is needed and could not be started by {}; run \
         `deploy/dev/install-packages.sh test` first",
        script.display()
    );
}

/// Starts pcscd with no reader configured, as a kiosk whose reader is not plugged in. Returns
/// the empty configuration directory, to remove once pcscd has stopped.
fn start_pcscd_without_readers() -> PathBuf {
    let empty_config =
        std::env::temp_dir().join(format!("pcscd-no-readers-{}", std::process::id()));
    std::fs::create_dir_all(&empty_config).unwrap();
    for leftover in ["/run/pcscd/pcscd.pid", "/run/pcscd/pcscd.comm"] {
        let _ = std::fs::remove_file(leftover);
    }
    let status = Command::new("/usr/sbin/pcscd")
        .arg("--config")
        .arg(&empty_config)
        .status()
        .unwrap();
    assert!(status.success(), "pcscd without readers did not start");
    empty_config
}

/// Stops pcscd and waits until it has exited.
fn stop_pcscd() {
    let pid = std::fs::read_to_string("/run/pcscd/pcscd.pid").expect("pcscd's pid file");
    let pid: String = pid.chars().filter(char::is_ascii_digit).collect();
    // bash's own `kill`: a minimal Debian has no kill binary without procps.
    let status = Command::new("bash")
        .args(["-c", "kill -TERM \"$1\"", "kill", &pid])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM {pid}");
    let proc_dir = PathBuf::from("/proc").join(&pid);
    let deadline = Instant::now() + Duration::from_millis(EVENT_WAIT_MS);
    while proc_dir.exists() && !is_zombie(&proc_dir) {
        assert!(Instant::now() < deadline, "pcscd {pid} did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn is_zombie(proc_dir: &std::path::Path) -> bool {
    std::fs::read_to_string(proc_dir.join("stat"))
        .map(|stat| stat.contains(") Z "))
        .unwrap_or(true)
}

fn uid(hex: &str) -> CardUid {
    CardUid::from_hex(hex).unwrap()
}

fn present(uid: CardUid) -> CardEvent {
    CardEvent::CardPresent {
        reader: READER.to_owned(),
        uid,
        reported_at: Instant::now(),
    }
}

fn unreadable(error: UidReadError) -> CardEvent {
    CardEvent::CardUnreadable {
        reader: READER.to_owned(),
        error,
    }
}

fn removed() -> CardEvent {
    CardEvent::CardRemoved {
        reader: READER.to_owned(),
    }
}

fn attached() -> CardEvent {
    CardEvent::ReaderAttached {
        reader: READER.to_owned(),
    }
}

fn lost() -> CardEvent {
    CardEvent::ReaderLost {
        reader: READER.to_owned(),
    }
}

/// Events compare without the moment they were reported, and a lost service without the error.
fn without_time(event: &CardEvent) -> String {
    match event {
        CardEvent::CardPresent { reader, uid, .. } => format!("present {uid} on {reader}"),
        CardEvent::ServiceLost { .. } => "service lost".to_owned(),
        other => format!("{other:?}"),
    }
}

#[test]
fn a_tap_is_one_event_with_the_uid_for_every_uid_size() {
    let rig = Rig::start();
    for hex in ["04a1b2c3", "04a1b2c3d4e5f6", "04a1b2c3d4e5f6071829"] {
        rig.check_uid_tap(hex, 100);
    }
}

#[test]
fn a_wrong_length_answer_is_retried_with_the_length_given() {
    let rig = Rig::start();
    let card = VirtualCard::new(CardAnswer::UidAfterLengthHint(uid("04a1b2c3d4e5f6")));
    rig.check_tap(card, 100, present(uid("04a1b2c3d4e5f6")));
}

#[test]
fn status_words_and_garbage_are_unreadable_taps_and_the_next_card_reads() {
    let rig = Rig::start();
    let cases = [
        (CardAnswer::Status([0x63, 0x00]), UidReadError::ReaderFailed),
        (CardAnswer::Status([0x6A, 0x81]), UidReadError::NotSupported),
        (
            CardAnswer::Raw(vec![0x90]),
            UidReadError::NoStatusWord { length: 1 },
        ),
        (
            CardAnswer::Raw(vec![1, 2, 3, 4, 5, 0x90, 0x00]),
            UidReadError::UidLength { length: 5 },
        ),
        (
            CardAnswer::Raw(vec![0xDE, 0xAD, 0xBE, 0xEF, 0x12, 0x34]),
            UidReadError::UnexpectedStatus {
                sw1: 0x12,
                sw2: 0x34,
            },
        ),
        (
            CardAnswer::Raw(vec![0x6C, 0x00]),
            UidReadError::UnexpectedStatus {
                sw1: 0x6C,
                sw2: 0x00,
            },
        ),
    ];
    for (answer, error) in cases {
        rig.check_tap(VirtualCard::new(answer), 100, unreadable(error));
        rig.check_uid_tap("04a1b2c3", 100);
    }
}

#[test]
fn a_card_removed_during_the_read_is_an_unreadable_tap() {
    let rig = Rig::start();
    let inserted = VirtualCard::new(CardAnswer::LeaveWhenAsked)
        .insert(vpcd_address_default())
        .unwrap();
    // A real reader says SCARD_W_REMOVED_CARD; vpcd passes on an empty answer.
    rig.expect(unreadable(UidReadError::NoAnswer));
    inserted.remove().unwrap();
    rig.expect(removed());
    rig.expect_quiet(QUIET_MS);
    rig.check_uid_tap("04a1b2c3", 100);
}

#[test]
fn a_card_held_for_10_s_is_one_tap() {
    let rig = Rig::start();
    rig.check_uid_tap("04c0ffee", 10_000);
}

#[test]
fn two_cards_in_quick_succession_are_two_taps() {
    let rig = Rig::start();
    let first = rig.insert_uid("04000001");
    first.remove().unwrap();
    let second = VirtualCard::with_uid(uid("04000002"))
        .insert(vpcd_address_default())
        .unwrap();
    rig.expect(removed());
    rig.expect(present(uid("04000002")));
    second.remove().unwrap();
    rig.expect(removed());
    rig.expect_quiet(QUIET_MS);
}

#[test]
fn taps_work_again_after_pcscd_restarts() {
    let rig = Rig::start();
    let held = rig.insert_uid("04a1b2c3");
    stop_pcscd();
    // pcscd took the card's connection down with it.
    let _ = held.remove();
    rig.expect(removed());
    rig.expect(lost());
    rig.expect(CardEvent::ServiceLost {
        error: PcscError::NoService,
    });
    rig.expect_quiet(QUIET_MS);
    start_pcscd();
    let restarted_at = Instant::now();
    rig.expect(CardEvent::ServiceRestored);
    rig.expect(attached());
    // Taps must work again within 5 s of pcscd's return: the reader is watched again by then.
    assert!(
        restarted_at.elapsed() < Duration::from_secs(5),
        "reader back after {:?}",
        restarted_at.elapsed()
    );
    rig.check_uid_tap("04d4e5f6", 100);
}

#[test]
fn diagnosis_lists_readers_with_their_cards() {
    let _pcscd = lock_pcscd();
    let readers = diagnose::list_readers().unwrap();
    let reader = readers.iter().find(|reader| reader.name == READER).unwrap();
    assert_eq!(reader.card_atr, None);
    assert!(!reader.contactless);

    let inserted = VirtualCard::with_uid(uid("04a1b2c3"))
        .insert(vpcd_address_default())
        .unwrap();
    let deadline = Instant::now() + Duration::from_millis(EVENT_WAIT_MS);
    let atr = loop {
        let readers = diagnose::list_readers().unwrap();
        let reader = readers.iter().find(|reader| reader.name == READER).unwrap();
        if let Some(atr) = &reader.card_atr {
            break atr.clone();
        }
        assert!(Instant::now() < deadline, "pcscd never saw the card");
        std::thread::sleep(Duration::from_millis(100));
    };
    inserted.remove().unwrap();
    assert_eq!(atr, hardware::vpcd::CONTACTLESS_ATR);

    let mut printed = Vec::new();
    diagnose::print_readers(&readers, &mut printed).unwrap();
    let printed = String::from_utf8(printed).unwrap();
    assert!(
        printed.contains("\"Virtual PCD 00 00\" (contact or unknown), no card"),
        "{printed}"
    );
}

#[test]
fn diagnosis_prints_each_event_live() {
    let _pcscd = lock_pcscd();
    let tapper = std::thread::spawn(|| {
        // Time for the watch to attach the reader first.
        std::thread::sleep(Duration::from_millis(500));
        let inserted = VirtualCard::with_uid(uid("04a1b2c3d4e5f6"))
            .insert(vpcd_address_default())
            .unwrap();
        std::thread::sleep(Duration::from_millis(800));
        inserted.remove().unwrap();
    });
    let mut printed = Vec::new();
    let config = PcscConfig {
        reader: ReaderSelector::from_pattern(Some(READER)).unwrap(),
    };
    diagnose::watch(config, &mut printed, |event| {
        !matches!(event, CardEvent::CardRemoved { .. })
    })
    .unwrap();
    tapper.join().unwrap();
    let printed = String::from_utf8(printed).unwrap();
    let lines: Vec<&str> = printed.lines().map(|line| &line[12..]).collect();
    assert_eq!(
        lines,
        [
            "reader attached \"Virtual PCD 00 00\"",
            "card present 04a1b2c3d4e5f6 on \"Virtual PCD 00 00\"",
            "card removed from \"Virtual PCD 00 00\"",
        ],
        "{printed}"
    );
}

#[test]
fn a_missing_reader_is_waited_for_without_events() {
    let _pcscd = lock_pcscd();
    let (sender, events) = event_channel();
    let reader = PcscReader::new(PcscConfig {
        reader: ReaderSelector::from_pattern(Some("no such reader")).unwrap(),
    })
    .start(sender)
    .unwrap();
    let _card = VirtualCard::with_uid(uid("04a1b2c3"))
        .insert(vpcd_address_default())
        .unwrap();
    assert_eq!(
        events.recv_timeout(Duration::from_millis(QUIET_MS)),
        Err(RecvTimeoutError::Timeout)
    );
    reader.stop().unwrap();
}

#[test]
fn a_reader_missing_at_start_is_attached_when_it_comes() {
    let pcscd = lock_pcscd();
    stop_pcscd();
    let rig = Rig::watching(pcscd);
    rig.expect(CardEvent::ServiceLost {
        error: PcscError::NoService,
    });
    rig.expect_quiet(QUIET_MS);
    let listed = diagnose::list_readers();
    assert!(
        matches!(listed, Err(HardwareError::ServiceUnavailable(_))),
        "{listed:?}"
    );

    let empty_config = start_pcscd_without_readers();
    rig.expect(CardEvent::ServiceRestored);
    rig.expect_quiet(QUIET_MS);
    let readers = diagnose::list_readers().unwrap();
    assert_eq!(readers, []);
    let mut printed = Vec::new();
    diagnose::print_readers(&readers, &mut printed).unwrap();
    assert_eq!(
        String::from_utf8(printed).unwrap(),
        "no reader (is a reader plugged in, and is pcscd running?)\n"
    );

    stop_pcscd();
    std::fs::remove_dir(&empty_config).unwrap();
    rig.expect(CardEvent::ServiceLost {
        error: PcscError::NoService,
    });
    start_pcscd();
    rig.expect(CardEvent::ServiceRestored);
    rig.expect(attached());
    rig.check_uid_tap("04a1b2c3", 100);
}

#[test]
fn a_card_with_a_garbage_atr_is_an_unreadable_tap() {
    let rig = Rig::start();
    let garbage = VirtualCard::with_uid(uid("04a1b2c3")).with_atr(&[0x00, 0xFF, 0x13]);
    // pcscd finds no protocol in such an ATR, and refuses the connection.
    let refused = UidReadError::Pcsc(PcscError::ProtoMismatch);
    rig.check_tap(garbage, 100, unreadable(refused));
    rig.check_uid_tap("04a1b2c3", 100);
}
