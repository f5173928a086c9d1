//! Faults and bad input: a full or read-only ledger, edits behind the engine's back, snapshots
//! that must not be applied.

#![allow(clippy::unwrap_used)]

mod common;

use common::{TestKiosk, pupil_card, text};
use kiosk::engine::{Decision, EngineError};
use kiosk::ledger::{Ledger, LedgerError, SnapshotApplyError};
use proto::snapshot::SnapshotError;
use proto::{BracketId, Cents, SnapshotVersion};

fn raw(kiosk: &TestKiosk) -> rusqlite::Connection {
    rusqlite::Connection::open(kiosk.data.ledger_path()).unwrap()
}

#[test]
fn records_are_append_only() {
    let mut kiosk = TestKiosk::new(4);
    let Decision::Served(_) = kiosk.engine.tap(pupil_card(1)) else {
        panic!()
    };
    let connection = raw(&kiosk);
    for sql in [
        "UPDATE records SET payload = 'x' WHERE seq = 1",
        "DELETE FROM records WHERE seq = 1",
        "UPDATE records SET delta_cents = 0 WHERE seq = 2",
        "DELETE FROM meals",
        "UPDATE meals SET pupil = 'P00002'",
    ] {
        let error = connection.execute(sql, []).unwrap_err().to_string();
        assert!(error.contains("append-only"), "{sql}: {error}");
    }
}

#[test]
fn a_full_disk_puts_the_kiosk_out_of_service_until_space_returns() {
    let mut kiosk = TestKiosk::new(300);
    let pages: u64 = raw(&kiosk)
        .query_row("PRAGMA page_count", [], |row| row.get(0))
        .unwrap();
    kiosk.engine.ledger().set_max_page_count(pages).unwrap();
    let head_before = kiosk.engine.head();
    let mut out_of_service = 0;
    let mut served = 0;
    for n in 1..300 {
        match kiosk.engine.tap(pupil_card(n)) {
            Decision::Served(_) => served += 1,
            Decision::OutOfService { reason } => {
                assert!(reason.contains("disk full"), "{reason}");
                out_of_service += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(out_of_service > 0, "the page limit was never reached");
    let after_full = kiosk.engine.head();
    assert_eq!(
        after_full.next_seq.get(),
        head_before.next_seq.get() + served
    );
    // Every record the engine holds is on disk and chained; nothing partial was written.
    let records = kiosk.verified_records();
    assert_eq!(records.last().unwrap().seq().next(), after_full.next_seq);
    assert_eq!(kiosk.engine.ledger().integrity_check().unwrap(), ["ok"]);
    // Space returns: taps work again on the same engine.
    kiosk.engine.ledger().set_max_page_count(1_000_000).unwrap();
    assert!(matches!(
        kiosk.engine.tap(pupil_card(299)),
        Decision::Served(_)
    ));
    kiosk.verified_records();
}

#[test]
fn a_read_only_ledger_puts_the_kiosk_out_of_service() {
    let mut kiosk = TestKiosk::new(4);
    kiosk.engine.ledger().set_query_only(true).unwrap();
    let decision = kiosk.engine.tap(pupil_card(1));
    assert!(
        matches!(&decision, Decision::OutOfService { reason } if reason.contains("not writable")),
        "{decision:?}"
    );
    kiosk.sign_in_fails_cleanly();
    kiosk.engine.ledger().set_query_only(false).unwrap();
    assert!(matches!(
        kiosk.engine.tap(pupil_card(1)),
        Decision::Served(_)
    ));
    kiosk.verified_records();
}

trait SignInFails {
    fn sign_in_fails_cleanly(&mut self);
}

impl SignInFails for TestKiosk {
    fn sign_in_fails_cleanly(&mut self) {
        let error = self
            .engine
            .staff_sign_in(common::staff_card(), common::STAFF_PIN)
            .unwrap_err();
        assert!(
            matches!(error, EngineError::Ledger(LedgerError::ReadOnly)),
            "{error:?}"
        );
        assert_eq!(
            self.engine.staff_signed_in(),
            None,
            "no session without its record"
        );
    }
}

#[test]
fn a_tampered_tail_is_refused_at_start() {
    let kiosk = TestKiosk::new(4);
    let connection = raw(&kiosk);
    // Bypass the triggers as an attacker with the file would.
    connection.execute_batch("DROP TRIGGER records_no_update; UPDATE records SET payload = payload || ' ' WHERE seq = (SELECT MAX(seq) FROM records);").unwrap();
    drop(connection);
    assert!(matches!(
        Ledger::open(&kiosk.data.ledger_path()),
        Err(LedgerError::Corrupt { .. })
    ));
}

fn check_refused(
    change: impl FnOnce(&mut proto::snapshot::Snapshot),
    expected: impl Fn(&EngineError) -> bool,
) {
    let mut kiosk = TestKiosk::new(4);
    let before_state = kiosk.engine.ledger().snapshot_state().unwrap();
    let before_records = kiosk.verified_records().len();
    let mut snapshot = common::snapshot(4);
    snapshot.version = SnapshotVersion(2);
    change(&mut snapshot);
    let error = kiosk.engine.apply_snapshot(&snapshot).unwrap_err();
    assert!(expected(&error), "{error:?}");
    assert_eq!(
        kiosk.engine.ledger().snapshot_state().unwrap(),
        before_state
    );
    assert_eq!(kiosk.verified_records().len(), before_records);
    // The kiosk still serves from the snapshot it had.
    assert!(
        matches!(kiosk.engine.tap(pupil_card(1)), Decision::Served(s) if s.price == Cents::new(385))
    );
}

#[test]
fn invalid_snapshots_change_nothing() {
    check_refused(
        |s| s.tariffs[1].price = Cents::new(-385),
        |e| {
            matches!(
                e,
                EngineError::Snapshot(SnapshotApplyError::Invalid(SnapshotError::Price { .. }))
            )
        },
    );
    check_refused(
        |s| s.pupils[1].bracket = BracketId::parse("q9").unwrap(),
        |e| {
            matches!(
                e,
                EngineError::Snapshot(SnapshotApplyError::Invalid(
                    SnapshotError::UnknownTariff { .. }
                ))
            )
        },
    );
    // A delta that would leave a pupil without a price.
    check_refused(
        |s| {
            *s = proto::snapshot::Snapshot {
                pupils: vec![proto::snapshot::Pupil {
                    bracket: BracketId::parse("q9").unwrap(),
                    ..s.pupils[1].clone()
                }],
                ..common::empty_delta(&common::snapshot(4), s.version)
            }
        },
        |e| {
            matches!(
                e,
                EngineError::Snapshot(SnapshotApplyError::Inconsistent(_))
            )
        },
    );
    // A delta for another base version.
    check_refused(
        |s| {
            s.since = Some(SnapshotVersion(7));
            s.settings = None;
        },
        |e| {
            matches!(
                e,
                EngineError::Snapshot(SnapshotApplyError::WrongBase { .. })
            )
        },
    );
}

#[test]
fn deltas_apply_changes_and_removals() {
    let mut kiosk = TestKiosk::new(4);
    let mut delta = common::snapshot(4);
    delta.version = SnapshotVersion(2);
    delta.since = Some(SnapshotVersion(1));
    delta.accounts.retain(|a| a.id == common::account_id(2));
    delta.accounts[0].balance = Cents::new(5_000);
    delta.pupils.clear();
    delta.cards.clear();
    delta.tariffs.clear();
    delta.services.clear();
    delta.staff.clear();
    delta.settings = None;
    delta.hotlist = vec![pupil_card(1)];
    delta.removed.cards = vec![pupil_card(3)];
    kiosk.engine.apply_snapshot(&delta).unwrap();
    assert_eq!(kiosk.engine.tap(pupil_card(1)), Decision::BlockedCard);
    assert_eq!(kiosk.engine.tap(pupil_card(3)), Decision::UnknownCard);
    let Decision::Served(served) = kiosk.engine.tap(pupil_card(2)) else {
        panic!()
    };
    assert_eq!(served.balance_after, Cents::new(5_000 - 120));
    assert_eq!(served.first_name, text("Inès"));
}

/// Waits until the background checkpoints asked for by `taps` commits have caught up.
fn wait_for_checkpoints(kiosk: &TestKiosk, taps: usize) {
    let requests =
        u64::try_from(taps).unwrap() / u64::from(kiosk::limits::CHECKPOINT_EVERY_COMMITS);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while kiosk.engine.checkpoints_completed() < requests - 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "checkpoints: {}",
            kiosk.engine.checkpoints_completed()
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

fn wal_bytes(kiosk: &TestKiosk) -> u64 {
    let wal = kiosk.data.ledger_path().with_extension("sqlite-wal");
    std::fs::metadata(&wal).unwrap().len()
}

/// What the WAL would hold if it kept every page `taps` taps wrote: two or more a tap.
fn unchecked_wal_bytes(taps: usize) -> u64 {
    u64::try_from(taps * 2 * 4096).unwrap()
}

#[test]
fn the_wal_is_checkpointed_off_the_tap_path() {
    const TAPS: usize = 900;
    let mut kiosk = TestKiosk::new(TAPS + 1);
    let ledger_bytes = || std::fs::metadata(kiosk.data.ledger_path()).unwrap().len();
    let before = ledger_bytes();
    for n in 1..=TAPS {
        assert!(matches!(
            kiosk.engine.tap(pupil_card(n)),
            Decision::Served(_)
        ));
        // A canteen line, sped up: taps come apart, not all at once.
        std::thread::sleep(std::time::Duration::from_millis(3));
    }
    wait_for_checkpoints(&kiosk, TAPS);
    // The records reached the database file itself, not only the WAL.
    assert!(
        ledger_bytes() > before + u64::try_from(TAPS * 400).unwrap(),
        "{before} -> {}",
        ledger_bytes()
    );
    // With checkpoints the WAL restarts once one has caught up, and stays near what a few
    // hundred taps write.
    let wal_bytes = wal_bytes(&kiosk);
    assert!(
        wal_bytes < unchecked_wal_bytes(TAPS) * 3 / 4,
        "WAL is {wal_bytes} bytes"
    );
}

#[test]
fn taps_without_a_pause_still_let_the_wal_restart() {
    // Each tap begins while the checkpoint of the ones before it is still copying, so the WAL is
    // never found fully copied by the tap that would restart it: the checkpointer does it.
    const TAPS: usize = 2_000;
    let mut kiosk = TestKiosk::new(TAPS + 1);
    for n in 1..=TAPS {
        assert!(matches!(
            kiosk.engine.tap(pupil_card(n)),
            Decision::Served(_)
        ));
    }
    wait_for_checkpoints(&kiosk, TAPS);
    let wal_bytes = wal_bytes(&kiosk);
    assert!(
        wal_bytes < unchecked_wal_bytes(TAPS) / 2,
        "WAL is {wal_bytes} bytes"
    );
}

#[test]
fn a_snapshot_row_that_does_not_parse_leaves_taps_to_the_tables() {
    let mut kiosk = TestKiosk::new(4);
    raw(&kiosk)
        .execute(
            "INSERT INTO cards (uid, pupil) VALUES ('not hex', 'P00001')",
            [],
        )
        .unwrap();
    kiosk.restart();
    assert!(
        !kiosk
            .engine
            .ledger()
            .lookups_match_tables()
            .is_ok_and(|same| same)
    );
    let Decision::Served(served) = kiosk.engine.tap(pupil_card(2)) else {
        panic!()
    };
    assert_eq!(served.balance_after, Cents::new(1_000 - 120));
    assert_eq!(
        kiosk.engine.tap(pupil_card(2)),
        Decision::AlreadyServed {
            first_name: text("Inès")
        }
    );
}
