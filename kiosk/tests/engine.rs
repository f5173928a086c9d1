//! The tap engine as pupils and staff meet it.

#![allow(clippy::unwrap_used)]

mod common;

use common::{TestKiosk, account_id, blocked_card, kinds, pupil_card, pupil_id, staff_card, text};
use kiosk::engine::{Decision, EngineError};
use kiosk::limits::STAFF_PIN_ATTEMPTS_MAX;
use proto::record::{CloseCategory, RefusalReason, TopUpMethod};
use proto::{CardUid, Cents, RecordBody, Seq};

fn served(decision: Decision) -> kiosk::engine::Served {
    match decision {
        Decision::Served(served) => served,
        other => panic!("expected served, got {other:?}"),
    }
}

/// The balance the kiosk shows, checked against the one the tables give.
fn balance(kiosk: &TestKiosk, n: usize) -> Cents {
    let ledger = kiosk.engine.ledger();
    let through = ledger.snapshot_state().unwrap().unwrap().records_through;
    let shown = ledger.account(&account_id(n), through).unwrap().unwrap();
    let stored = ledger.stored_account(&account_id(n), through).unwrap();
    assert_eq!(Some(shown), stored, "in memory and in the tables");
    shown.balance
}

fn assert_lookups_match(kiosk: &TestKiosk, step: &str) {
    assert!(
        kiosk.engine.ledger().lookups_match_tables().unwrap(),
        "after {step}"
    );
}

#[test]
fn a_tap_serves_once_per_service() {
    let mut kiosk = TestKiosk::new(10);
    let first = served(kiosk.engine.tap(pupil_card(1)));
    assert_eq!(first.first_name, text("Lucas"));
    assert_eq!(first.price, Cents::new(385));
    assert_eq!(first.balance_after, Cents::new(615));
    assert_eq!(balance(&kiosk, 1), Cents::new(615));
    // Held on the reader, tapped again, after a restart: never a second charge.
    assert_eq!(
        kiosk.engine.tap(pupil_card(1)),
        Decision::AlreadyServed {
            first_name: text("Lucas")
        }
    );
    kiosk.restart();
    assert_eq!(
        kiosk.engine.tap(pupil_card(1)),
        Decision::AlreadyServed {
            first_name: text("Lucas")
        }
    );
    assert_eq!(balance(&kiosk, 1), Cents::new(615));
    // A bracket-1 pupil pays the bracket-1 price; dietary flags come with the decision.
    let other = served(kiosk.engine.tap(pupil_card(2)));
    assert_eq!(other.price, Cents::new(120));
    assert_eq!(
        served(kiosk.engine.tap(pupil_card(3))).dietary,
        vec![text("peanut_allergy")]
    );
    let meals = kiosk
        .verified_records()
        .iter()
        .filter(|r| matches!(r.payload().body, RecordBody::Meal(_)))
        .count();
    assert_eq!(meals, 3);
}

#[test]
fn refusals_charge_nothing_and_are_recorded() {
    fn check(tap: CardUid, expected: Decision, reason: Option<RefusalReason>) {
        let mut kiosk = TestKiosk::new(4);
        let before = kiosk.verified_records().len();
        assert_eq!(kiosk.engine.tap(tap), expected, "{tap}");
        let records = kiosk.verified_records();
        let written: Vec<_> = records[before..]
            .iter()
            .map(|r| r.payload().body.clone())
            .collect();
        match reason {
            Some(reason) => {
                assert!(
                    matches!(&written[..], [RecordBody::TapRefused(refused)] if refused.reason == reason && refused.card == tap),
                    "{written:?}"
                );
            }
            None => assert!(written.is_empty(), "{written:?}"),
        }
        assert_eq!(balance(&kiosk, 0), Cents::new(100));
    }
    // Pupil 0 has 1,00 € and a floor of 0: a 1,20 € meal is refused.
    check(
        pupil_card(0),
        Decision::InsufficientFunds {
            first_name: text("Chloé"),
        },
        Some(RefusalReason::InsufficientFunds),
    );
    check(
        CardUid::from_hex("01020304").unwrap(),
        Decision::UnknownCard,
        Some(RefusalReason::UnknownCard),
    );
    check(
        blocked_card(),
        Decision::BlockedCard,
        Some(RefusalReason::BlockedCard),
    );
    check(
        staff_card(),
        Decision::StaffCard {
            card: staff_card(),
            staff: common::staff_id(),
            name: text("Mme Durand"),
        },
        None,
    );
}

#[test]
fn overdraft_down_to_the_floor_is_allowed() {
    let mut kiosk = TestKiosk::new(4);
    // Pupil 1: 10 € and a floor of -5 €; 3 lunches at 3,85 € over three days reach -1,55 €.
    for day in 0..3 {
        kiosk.clock.set(
            common::monday_noon()
                .checked_add(jiff::SignedDuration::from_hours(24 * [0, 1, 3][day]))
                .unwrap(),
        );
        served(kiosk.engine.tap(pupil_card(1)));
    }
    assert_eq!(balance(&kiosk, 1), Cents::new(-155));
    // Friday: 3,85 € more would reach -5,40 €, below the floor.
    kiosk.clock.set(
        common::monday_noon()
            .checked_add(jiff::SignedDuration::from_hours(24 * 4))
            .unwrap(),
    );
    assert_eq!(
        kiosk.engine.tap(pupil_card(1)),
        Decision::InsufficientFunds {
            first_name: text("Lucas")
        }
    );
}

#[test]
fn no_service_outside_its_window() {
    fn check(at: &str, open: bool) {
        let mut kiosk = TestKiosk::new(4);
        kiosk.clock.set(at.parse().unwrap());
        let decision = kiosk.engine.tap(pupil_card(1));
        assert_eq!(
            matches!(decision, Decision::Served(_)),
            open,
            "{at}: {decision:?}"
        );
        if !open {
            assert_eq!(decision, Decision::NoServiceNow);
        }
    }
    check("2026-11-30T10:29:59Z", false); // 11:29 Paris
    check("2026-11-30T10:30:00Z", true); // 11:30
    check("2026-11-30T12:44:59Z", true); // 13:44
    check("2026-11-30T12:45:00Z", false); // 13:45
    check("2026-12-02T11:00:00Z", false); // Wednesday
    check("2026-11-29T11:00:00Z", false); // Sunday
    check("2026-07-06T10:00:00Z", true); // Monday in summer time: 12:00 Paris is 10:00 UTC
}

#[test]
fn no_snapshot_means_out_of_service() {
    let mut kiosk = TestKiosk::without_snapshot();
    assert!(matches!(
        kiosk.engine.tap(pupil_card(1)),
        Decision::OutOfService { .. }
    ));
}

#[test]
fn staff_sign_in_and_lockout() {
    let mut kiosk = TestKiosk::new(4);
    assert!(matches!(
        kiosk.engine.staff_sign_in(pupil_card(1), "0000"),
        Err(EngineError::NotStaffCard)
    ));
    for attempt in 1..STAFF_PIN_ATTEMPTS_MAX {
        let error = kiosk
            .engine
            .staff_sign_in(staff_card(), "0000")
            .unwrap_err();
        assert!(
            matches!(error, EngineError::WrongPin { remaining } if remaining == STAFF_PIN_ATTEMPTS_MAX - attempt),
            "{error:?}"
        );
    }
    assert!(matches!(
        kiosk.engine.staff_sign_in(staff_card(), "0000"),
        Err(EngineError::LockedOut)
    ));
    // Locked: even the right PIN is refused until the lock expires.
    assert!(matches!(
        kiosk.engine.staff_sign_in(staff_card(), common::STAFF_PIN),
        Err(EngineError::LockedOut)
    ));
    kiosk.clock.advance(jiff::SignedDuration::from_mins(16));
    assert_eq!(
        kiosk
            .engine
            .staff_sign_in(staff_card(), common::STAFF_PIN)
            .unwrap(),
        common::staff_id()
    );
    let records = kiosk.verified_records();
    let tail = kinds(&records);
    assert!(
        tail.ends_with(&["staff_lockout", "staff_sign_in"]),
        "{tail:?}"
    );
    kiosk.engine.staff_sign_out().unwrap();
    assert!(matches!(
        kiosk.engine.staff_sign_out(),
        Err(EngineError::NotSignedIn)
    ));
}

#[test]
fn idle_staff_are_signed_out() {
    let mut kiosk = TestKiosk::new(4);
    kiosk.sign_in();
    kiosk.clock.advance(jiff::SignedDuration::from_secs(119));
    assert!(!kiosk.engine.sign_out_if_idle().unwrap());
    kiosk.clock.advance(jiff::SignedDuration::from_secs(1));
    assert!(kiosk.engine.sign_out_if_idle().unwrap());
    assert_eq!(kiosk.engine.staff_signed_in(), None);
    let last = kiosk.verified_records().pop().unwrap();
    assert!(matches!(last.payload().body, RecordBody::StaffSignOut(ref out) if out.automatic));
}

#[test]
fn top_ups_need_staff_and_stay_within_bounds() {
    let mut kiosk = TestKiosk::new(4);
    let top_up = |kiosk: &mut TestKiosk, cents: i64| {
        kiosk
            .engine
            .top_up(&account_id(1), Cents::new(cents), TopUpMethod::Cash, None)
    };
    assert!(matches!(
        top_up(&mut kiosk, 500),
        Err(EngineError::NotSignedIn)
    ));
    kiosk.sign_in();
    for bad in [0, -100, proto::limits::KIOSK_TOP_UP_CENTS_MAX + 1] {
        assert!(
            matches!(top_up(&mut kiosk, bad), Err(EngineError::Amount { .. })),
            "{bad}"
        );
    }
    assert!(matches!(
        kiosk.engine.top_up(
            &proto::AccountId::parse("nobody").unwrap(),
            Cents::new(100),
            TopUpMethod::Cash,
            None
        ),
        Err(EngineError::UnknownAccount(_))
    ));
    let before = kiosk.verified_records().len();
    top_up(&mut kiosk, 2_000).unwrap();
    kiosk
        .engine
        .top_up(
            &account_id(1),
            Cents::new(1_500),
            TopUpMethod::Cheque,
            Some(text("chèque 0012345")),
        )
        .unwrap();
    assert_eq!(balance(&kiosk, 1), Cents::new(4_500));
    assert_eq!(
        kiosk.verified_records().len(),
        before + 2,
        "refused top-ups wrote nothing"
    );
}

#[test]
fn balance_is_snapshot_plus_unsynced_records() {
    let mut kiosk = TestKiosk::new(4);
    let meal = served(kiosk.engine.tap(pupil_card(1)));
    kiosk.sign_in();
    kiosk
        .engine
        .top_up(&account_id(1), Cents::new(1_000), TopUpMethod::Cash, None)
        .unwrap();
    assert_eq!(balance(&kiosk, 1), Cents::new(1_000 - 385 + 1_000));
    // The back-office has applied the meal (records through its seq) but not the top-up.
    let mut next = common::snapshot(4);
    next.version = proto::SnapshotVersion(2);
    next.records_through = Some(meal.seq);
    next.accounts[1].balance = Cents::new(615);
    kiosk.engine.apply_snapshot(&next).unwrap();
    assert_eq!(balance(&kiosk, 1), Cents::new(615 + 1_000));
}

#[test]
fn serving_without_a_card() {
    let mut kiosk = TestKiosk::new(10);
    assert!(matches!(
        kiosk.engine.serve_without_card(&pupil_id(4)),
        Err(EngineError::NotSignedIn)
    ));
    kiosk.sign_in();
    let found = kiosk.engine.search_pupils("Mart").unwrap();
    assert_eq!(found.len(), 10);
    assert_eq!(
        kiosk.engine.search_pupils("Martin4").unwrap()[0].id,
        pupil_id(4)
    );
    assert!(
        kiosk.engine.search_pupils("%").unwrap().is_empty(),
        "LIKE wildcards are not search terms"
    );
    let meal = kiosk.engine.serve_without_card(&pupil_id(4)).unwrap();
    assert_eq!(meal.price, Cents::new(120));
    assert!(matches!(
        kiosk.engine.serve_without_card(&pupil_id(4)),
        Err(EngineError::AlreadyServed)
    ));
    assert_eq!(
        kiosk.engine.tap(pupil_card(4)),
        Decision::AlreadyServed {
            first_name: text("Léa")
        }
    );
    let record = kiosk
        .verified_records()
        .into_iter()
        .find(|r| r.seq() == meal.seq)
        .unwrap();
    assert!(
        matches!(&record.payload().body, RecordBody::Meal(m) if m.via == proto::record::MealVia::Staff(common::staff_id()))
    );
}

#[test]
fn voids() {
    let mut kiosk = TestKiosk::new(4);
    let meal = served(kiosk.engine.tap(pupil_card(1)));
    kiosk.sign_in();
    let reason = || text("servi par erreur");
    assert!(matches!(
        kiosk.engine.void(Seq::new(999).unwrap(), reason()),
        Err(EngineError::NoSuchRecord(_))
    ));
    assert!(
        matches!(
            kiosk.engine.void(Seq::FIRST, reason()),
            Err(EngineError::NotVoidable { .. })
        ),
        "kiosk start"
    );
    let void = kiosk.engine.void(meal.seq, reason()).unwrap();
    assert_eq!(balance(&kiosk, 1), Cents::new(1_000));
    assert!(matches!(
        kiosk.engine.void(meal.seq, reason()),
        Err(EngineError::NotVoidable {
            why: "already voided",
            ..
        })
    ));
    assert!(matches!(
        kiosk.engine.void(void, reason()),
        Err(EngineError::NotVoidable {
            why: "a void cannot be voided",
            ..
        })
    ));
    // The voided meal no longer counts: the pupil can be served.
    served(kiosk.engine.tap(pupil_card(1)));
    // Tomorrow, today's meal cannot be voided any more.
    let second = served(kiosk.engine.tap(pupil_card(2)));
    kiosk.clock.advance(jiff::SignedDuration::from_hours(24));
    assert!(matches!(
        kiosk.engine.void(second.seq, reason()),
        Err(EngineError::NotVoidable {
            why: "only today's records can be voided",
            ..
        })
    ));
    let records = kiosk.verified_records();
    let void_record = records.iter().find(|r| r.seq() == void).unwrap();
    let meal_record = records.iter().find(|r| r.seq() == meal.seq).unwrap();
    assert!(
        matches!(&void_record.payload().body, RecordBody::Void(v) if v.voided_hash == meal_record.hash() && v.staff == common::staff_id())
    );
}

#[test]
fn day_close_totals_and_grand_totals() {
    let mut kiosk = TestKiosk::new(10);
    for n in 1..=4 {
        served(kiosk.engine.tap(pupil_card(n)));
    }
    kiosk.sign_in();
    let mistaken = kiosk.engine.serve_without_card(&pupil_id(5)).unwrap();
    kiosk.engine.void(mistaken.seq, text("erreur")).unwrap();
    let cash = kiosk
        .engine
        .top_up(&account_id(1), Cents::new(2_000), TopUpMethod::Cash, None)
        .unwrap();
    kiosk
        .engine
        .top_up(&account_id(2), Cents::new(700), TopUpMethod::Cash, None)
        .unwrap();
    kiosk
        .engine
        .top_up(&account_id(3), Cents::new(3_000), TopUpMethod::Cheque, None)
        .unwrap();
    kiosk.engine.void(cash, text("mauvais compte")).unwrap();
    let close = kiosk.engine.close_day(Cents::new(650)).unwrap();
    let line = |category: CloseCategory, bracket: Option<&str>| {
        close
            .lines
            .iter()
            .find(|l| l.category == category && l.bracket.as_ref().map(|b| b.as_str()) == bracket)
            .map(|l| (l.count, l.total.get()))
    };
    assert_eq!(line(CloseCategory::MealByCard, Some("q1")), Some((2, 240)));
    assert_eq!(line(CloseCategory::MealByCard, Some("q3")), Some((2, 770)));
    assert_eq!(line(CloseCategory::MealByStaff, Some("q3")), Some((1, 385)));
    assert_eq!(line(CloseCategory::VoidedMeal, Some("q3")), Some((1, 385)));
    assert_eq!(line(CloseCategory::TopUpCash, None), Some((2, 2_700)));
    assert_eq!(line(CloseCategory::TopUpCheque, None), Some((1, 3_000)));
    assert_eq!(line(CloseCategory::VoidedTopUp, None), Some((1, 2_000)));
    assert_eq!(close.cash_expected, Cents::new(700));
    assert_eq!(close.cash_counted, Cents::new(650));
    assert_eq!(close.cash_difference, Cents::new(-50));
    assert_eq!(close.previous_close, None);
    assert_eq!(close.grand_totals.meal_count, 5);
    assert_eq!(close.grand_totals.meals, Cents::new(1_395));

    // The next day's close carries the grand totals forward.
    kiosk.clock.advance(jiff::SignedDuration::from_hours(24));
    kiosk.sign_in();
    served(kiosk.engine.tap(pupil_card(6)));
    let next = kiosk.engine.close_day(Cents::ZERO).unwrap();
    assert_eq!(next.grand_totals.meal_count, 6);
    assert_eq!(next.grand_totals.meals, Cents::new(1_515));
    assert_eq!(next.grand_totals.top_ups, close.grand_totals.top_ups);
    assert!(next.previous_close.is_some());
    assert_eq!(next.lines.len(), 1);
}

#[test]
fn audit_records_for_what_auditors_need() {
    let mut kiosk = TestKiosk::new(4);
    kiosk.engine.note_offline_start(None).unwrap();
    kiosk
        .engine
        .note_offline_end(kiosk::clock::record_time(common::monday_noon()))
        .unwrap();
    let mut changed = common::snapshot(4);
    changed.version = proto::SnapshotVersion(2);
    changed.settings.as_mut().unwrap().result_display_ms = 3_000;
    kiosk.engine.apply_snapshot(&changed).unwrap();
    kiosk.sign_in();
    kiosk.engine.staff_sign_out().unwrap();
    let records = kiosk.verified_records();
    assert_eq!(
        kinds(&records),
        [
            "kiosk_start",
            "snapshot_applied",
            "offline_start",
            "offline_end",
            "snapshot_applied",
            "config_change",
            "staff_sign_in",
            "staff_sign_out"
        ]
    );
    assert!(
        matches!(&records[5].payload().body, RecordBody::ConfigChange(change)
        if change.key.as_str() == "result_display_ms" && change.new == Some(text("3000")))
    );
}

#[test]
fn a_clock_moving_backwards_is_recorded_and_seq_order_kept() {
    let mut kiosk = TestKiosk::new(4);
    served(kiosk.engine.tap(pupil_card(1)));
    kiosk.clock.advance(jiff::SignedDuration::from_mins(-10));
    served(kiosk.engine.tap(pupil_card(2)));
    let records = kiosk.verified_records();
    let tail: Vec<_> = kinds(&records).into_iter().rev().take(3).collect();
    assert_eq!(tail, ["meal", "clock_change", "meal"]);
    let change = &records[records.len() - 2];
    assert!(
        matches!(&change.payload().body, RecordBody::ClockChange(c) if c.previous.unix_ms() - c.current.unix_ms() == 600_000)
    );
    // Small jitter is not a clock change.
    kiosk.clock.advance(jiff::SignedDuration::from_millis(-500));
    served(kiosk.engine.tap(pupil_card(3)));
    assert_eq!(kinds(&kiosk.verified_records()).last(), Some(&"meal"));
}

#[test]
fn acknowledgements_only_move_forward() {
    let mut kiosk = TestKiosk::new(4);
    served(kiosk.engine.tap(pupil_card(1)));
    served(kiosk.engine.tap(pupil_card(2)));
    let counts = |kiosk: &TestKiosk| kiosk.engine.status().unwrap().counts;
    assert_eq!(counts(&kiosk).unsynced_records, 4);
    kiosk
        .engine
        .record_acknowledged(Seq::new(3).unwrap())
        .unwrap();
    assert_eq!(counts(&kiosk).acknowledged_seq, Seq::new(3).ok());
    assert_eq!(counts(&kiosk).unsynced_records, 1);
    kiosk
        .engine
        .record_acknowledged(Seq::new(2).unwrap())
        .unwrap();
    assert_eq!(
        counts(&kiosk).acknowledged_seq,
        Seq::new(3).ok(),
        "never backwards"
    );
    assert!(matches!(
        kiosk.engine.record_acknowledged(Seq::new(5).unwrap()),
        Err(EngineError::NoSuchRecord(_))
    ));
    kiosk.restart();
    assert_eq!(counts(&kiosk).acknowledged_seq, Seq::new(3).ok());
    assert_eq!(kiosk.engine.status().unwrap().today.meals, 2);
}

#[test]
fn what_a_tap_reads_in_memory_follows_every_commit() {
    let mut kiosk = TestKiosk::new(6);
    assert_lookups_match(&kiosk, "a full snapshot");
    let meal = served(kiosk.engine.tap(pupil_card(1)));
    served(kiosk.engine.tap(pupil_card(2)));
    kiosk.sign_in();
    let top_up = kiosk
        .engine
        .top_up(&account_id(2), Cents::new(700), TopUpMethod::Cash, None)
        .unwrap();
    kiosk.engine.void(top_up, text("wrong account")).unwrap();
    assert_lookups_match(&kiosk, "meals, a top-up and its void");
    assert_eq!(balance(&kiosk, 2), Cents::new(1_000 - 120));

    // A write that fails changes nothing in memory either.
    kiosk.engine.ledger().set_query_only(true).unwrap();
    assert!(matches!(
        kiosk.engine.tap(pupil_card(4)),
        Decision::OutOfService { .. }
    ));
    kiosk.engine.ledger().set_query_only(false).unwrap();
    assert_lookups_match(&kiosk, "a refused write");
    assert_eq!(balance(&kiosk, 4), Cents::new(1_000));

    // A delta: a balance that includes the first meal, a new price, a renamed pupil, a card
    // blocked, a card unblocked, a card and an account removed.
    let mut delta = common::snapshot(6);
    delta.version = proto::SnapshotVersion(2);
    delta.since = Some(proto::SnapshotVersion(1));
    delta.records_through = Some(meal.seq);
    delta.accounts.retain(|a| a.id == account_id(1));
    delta.accounts[0].balance = Cents::new(615);
    delta.pupils.retain(|p| p.id == pupil_id(5));
    delta.pupils[0].first_name = text("Léonie");
    delta.tariffs.retain(|t| t.bracket.as_str() == "q3");
    delta.tariffs[0].price = Cents::new(400);
    delta.cards.clear();
    delta.services.clear();
    delta.staff.clear();
    delta.settings = None;
    delta.hotlist = vec![pupil_card(3)];
    delta.removed.hotlist = vec![blocked_card()];
    delta.removed.cards = vec![pupil_card(4), blocked_card()];
    kiosk.engine.apply_snapshot(&delta).unwrap();
    assert_lookups_match(&kiosk, "a delta");
    assert_eq!(balance(&kiosk, 1), Cents::new(615));
    assert_eq!(balance(&kiosk, 2), Cents::new(1_000 - 120));
    assert_eq!(kiosk.engine.tap(pupil_card(3)), Decision::BlockedCard);
    assert_eq!(kiosk.engine.tap(pupil_card(4)), Decision::UnknownCard);
    assert_eq!(kiosk.engine.tap(blocked_card()), Decision::UnknownCard);
    let renamed = served(kiosk.engine.tap(pupil_card(5)));
    assert_eq!(
        (renamed.first_name, renamed.price),
        (text("Léonie"), Cents::new(400))
    );
    assert_lookups_match(&kiosk, "taps after the delta");
    kiosk.restart();
    assert_lookups_match(&kiosk, "a restart");
    assert_eq!(balance(&kiosk, 5), Cents::new(1_000 - 400));
}
