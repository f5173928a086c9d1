//! Sample keys, bodies and chains for proto's tests.

#![allow(dead_code, clippy::unwrap_used)]

use proto::record::{
    CloseCategory, CloseLine, ConfigChange, DayClose, GrandTotals, KioskStart, Meal, MealVia,
    RefusalReason, TapRefused, TopUp, TopUpMethod, Void,
};
use proto::{
    AccountId, BracketId, CardUid, Cents, ChainHead, DeviceId, Digest, MealType, PupilId, Record,
    RecordBody, Seq, ServiceDate, ServiceId, SigningKey, StaffId, Text, Timestamp,
};

/// A fixed key, so failures reproduce: the PKCS#8 v1 form of a 32-byte seed.
pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_pkcs8(&pkcs8_v1(&[seed; 32])).unwrap()
}

/// PKCS#8 v1 (RFC 8410) wrapping of an Ed25519 seed, as `openssl genpkey` writes it.
pub fn pkcs8_v1(seed: &[u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(seed);
    der
}

pub fn device() -> DeviceId {
    DeviceId::parse("kiosk-jaures-1").unwrap()
}

pub fn at(offset_ms: i64) -> Timestamp {
    Timestamp::from_unix_ms(1_795_952_703_120 + offset_ms).unwrap()
}

/// One body of each kind a test is likely to meet, chosen by `n`.
pub fn body(n: usize) -> RecordBody {
    let account = AccountId::parse(&format!("A{:05}", n % 997)).unwrap();
    let staff = StaffId::parse("staff-martin").unwrap();
    match n % 6 {
        0..=2 => RecordBody::Meal(Meal {
            service: ServiceId::parse("lunch").unwrap(),
            service_date: ServiceDate::parse("2026-11-30").unwrap(),
            meal_type: MealType::parse("lunch").unwrap(),
            account,
            pupil: PupilId::parse(&format!("P{:05}", n % 1499)).unwrap(),
            bracket: BracketId::parse("q3").unwrap(),
            price: Cents::new(385),
            balance_after: Cents::new(2_000 - 385 * i64::try_from(n % 7).unwrap()),
            via: MealVia::Card(
                CardUid::parse(&[
                    4,
                    0xa1,
                    0xb2,
                    u8::try_from(n % 251).unwrap(),
                    0x80,
                    0x11,
                    0x22,
                ])
                .unwrap(),
            ),
        }),
        3 => RecordBody::TopUp(TopUp {
            account,
            amount: Cents::new(2_000),
            method: if n.is_multiple_of(2) {
                TopUpMethod::Cash
            } else {
                TopUpMethod::Cheque
            },
            staff,
            reference: Some(Text::parse("chèque n° 0012345 « test »").unwrap()),
        }),
        4 => RecordBody::TapRefused(TapRefused {
            card: CardUid::parse(&[9, 8, 7, 6]).unwrap(),
            reason: RefusalReason::BlockedCard,
            service: None,
        }),
        _ => RecordBody::ConfigChange(ConfigChange {
            key: Text::parse("result_display_ms").unwrap(),
            old: Some(Text::parse("2000").unwrap()),
            new: Some(Text::parse("2500").unwrap()),
        }),
    }
}

/// Every kind of record body, for round trips.
pub fn every_kind() -> Vec<RecordBody> {
    use proto::record::{
        ClockChange, ClockDrift, OfflineEnd, OfflineStart, SnapshotApplied, StaffLockout,
        StaffSignIn, StaffSignOut,
    };
    let staff = StaffId::parse("staff-martin").unwrap();
    vec![
        body(0),
        RecordBody::Meal(Meal {
            via: MealVia::Staff(staff.clone()),
            ..match body(0) {
                RecordBody::Meal(meal) => meal,
                _ => unreachable!(),
            }
        }),
        body(3),
        RecordBody::TopUp(TopUp {
            account: AccountId::parse("A1").unwrap(),
            amount: Cents::new(1),
            method: TopUpMethod::Cash,
            staff: staff.clone(),
            reference: None,
        }),
        RecordBody::Void(Void {
            voided_seq: Seq::FIRST,
            voided_hash: Digest::of(b"first"),
            staff: staff.clone(),
            reason: Text::parse("servi deux fois par erreur").unwrap(),
        }),
        RecordBody::DayClose(DayClose {
            service_date: ServiceDate::parse("2026-11-30").unwrap(),
            staff: staff.clone(),
            previous_close: Some(Seq::new(12).unwrap()),
            lines: vec![
                CloseLine {
                    category: CloseCategory::MealByCard,
                    meal_type: Some(MealType::parse("lunch").unwrap()),
                    bracket: Some(BracketId::parse("q3").unwrap()),
                    count: 212,
                    total: Cents::new(81_620),
                },
                CloseLine {
                    category: CloseCategory::TopUpCash,
                    meal_type: None,
                    bracket: None,
                    count: 3,
                    total: Cents::new(6_000),
                },
            ],
            cash_expected: Cents::new(6_000),
            cash_counted: Cents::new(5_950),
            cash_difference: Cents::new(-50),
            grand_totals: GrandTotals {
                meal_count: 40_212,
                meals: Cents::new(15_481_620),
                top_ups: Cents::new(1_206_000),
                voided: Cents::new(3_850),
            },
        }),
        RecordBody::KioskStart(KioskStart {
            software_version: Text::parse("0.1.0").unwrap(),
        }),
        RecordBody::OfflineStart(OfflineStart {
            last_sync: Some(at(-60_000)),
        }),
        RecordBody::OfflineStart(OfflineStart { last_sync: None }),
        RecordBody::OfflineEnd(OfflineEnd {
            offline_since: at(-60_000),
        }),
        RecordBody::SnapshotApplied(SnapshotApplied {
            version: proto::SnapshotVersion(42),
            full: false,
        }),
        RecordBody::StaffSignIn(StaffSignIn {
            staff: staff.clone(),
        }),
        RecordBody::StaffSignOut(StaffSignOut {
            staff,
            automatic: true,
        }),
        RecordBody::StaffLockout(StaffLockout {
            card: CardUid::parse(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).unwrap(),
            failed_attempts: 5,
        }),
        body(5),
        RecordBody::ClockChange(ClockChange {
            previous: at(0),
            current: at(-3_600_000),
        }),
        RecordBody::ClockDrift(ClockDrift {
            backoffice_time: at(0),
            drift_ms: -125_000,
        }),
        body(4),
    ]
}

/// A valid chain of `len` records of `device`, signed by `key`.
pub fn chain(key: &SigningKey, device: &DeviceId, len: usize) -> Vec<Record> {
    let mut head = ChainHead::GENESIS;
    (0..len)
        .map(|n| {
            head.append(key, device, at(i64::try_from(n).unwrap() * 1_500), body(n))
                .unwrap()
        })
        .collect()
}

/// The first record of `key`'s sample chain on [`device`], as signed.
pub fn first_signed(key: &SigningKey) -> proto::SignedRecord {
    chain(key, &device(), 1)[0].signed().clone()
}
