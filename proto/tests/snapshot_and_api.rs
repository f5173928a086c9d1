//! Snapshot consistency checks and kiosk request signing.

#![allow(clippy::unwrap_used)]

mod common;

use proto::api::{RequestAuthError, RequestToSign, UploadRequest};
use proto::snapshot::{
    AccountState, Card, CardHolder, KioskSettings, Language, LocalTime, Pupil, Removed, Service,
    Snapshot, SnapshotError, StaffCredential, Tariff, Weekday,
};
use proto::{
    AccountId, BracketId, CardUid, Cents, MealType, PupilId, ServiceId, SiteId, SnapshotVersion,
    StaffId, Text,
};

fn text(value: &str) -> Text {
    Text::parse(value).unwrap()
}

fn sample() -> Snapshot {
    Snapshot {
        version: SnapshotVersion(17),
        since: None,
        site: SiteId::parse("jaures").unwrap(),
        records_through: None,
        accounts: vec![AccountState {
            id: AccountId::parse("A1").unwrap(),
            balance: Cents::new(1_250),
            overdraft_floor: Cents::new(-800),
        }],
        pupils: vec![Pupil {
            id: PupilId::parse("P1").unwrap(),
            account: AccountId::parse("A1").unwrap(),
            first_name: text("Chloé"),
            last_name: text("Martin"),
            bracket: BracketId::parse("q3").unwrap(),
            dietary: vec![text("no_pork")],
        }],
        cards: vec![
            Card {
                uid: CardUid::from_hex("04a1b2c3").unwrap(),
                holder: CardHolder::Pupil(PupilId::parse("P1").unwrap()),
            },
            Card {
                uid: CardUid::from_hex("04a1b2c3d4e5f6").unwrap(),
                holder: CardHolder::Staff(StaffId::parse("S1").unwrap()),
            },
        ],
        hotlist: vec![CardUid::from_hex("0badcafe").unwrap()],
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
            start: LocalTime::parse("11:30").unwrap(),
            end: LocalTime::parse("13:45").unwrap(),
        }],
        staff: vec![StaffCredential {
            id: StaffId::parse("S1").unwrap(),
            name: text("Mme Durand"),
            pin_hash: text("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"),
        }],
        settings: Some(KioskSettings {
            result_display_ms: 2_000,
            sync_interval_ms: 30_000,
            staff_idle_signout_ms: 120_000,
            language: Language::Fr,
        }),
        removed: Removed::default(),
    }
}

fn check(change: impl FnOnce(&mut Snapshot), expected: Result<(), SnapshotError>) {
    let mut snapshot = sample();
    change(&mut snapshot);
    assert_eq!(snapshot.check_complete(), expected);
}

#[test]
fn snapshot_checks() {
    check(|_| {}, Ok(()));
    check(
        |s| s.tariffs[0].price = Cents::new(-1),
        Err(SnapshotError::Price {
            bracket: BracketId::parse("q3").unwrap(),
            meal_type: MealType::parse("lunch").unwrap(),
            price: -1,
        }),
    );
    check(
        |s| s.pupils[0].bracket = BracketId::parse("q9").unwrap(),
        Err(SnapshotError::UnknownTariff {
            pupil: PupilId::parse("P1").unwrap(),
            bracket: BracketId::parse("q9").unwrap(),
            meal_type: MealType::parse("lunch").unwrap(),
        }),
    );
    check(
        |s| s.pupils[0].account = AccountId::parse("A2").unwrap(),
        Err(SnapshotError::UnknownAccount {
            pupil: PupilId::parse("P1").unwrap(),
            account: AccountId::parse("A2").unwrap(),
        }),
    );
    check(
        |s| s.accounts[0].overdraft_floor = Cents::new(1),
        Err(SnapshotError::OverdraftFloor {
            account: AccountId::parse("A1").unwrap(),
            floor: 1,
        }),
    );
    check(
        |s| {
            s.accounts[0].overdraft_floor = Cents::new(proto::limits::OVERDRAFT_FLOOR_CENTS_MIN - 1)
        },
        Err(SnapshotError::OverdraftFloor {
            account: AccountId::parse("A1").unwrap(),
            floor: proto::limits::OVERDRAFT_FLOOR_CENTS_MIN - 1,
        }),
    );
    check(
        |s| s.staff.clear(),
        Err(SnapshotError::UnknownHolder {
            uid: CardUid::from_hex("04a1b2c3d4e5f6").unwrap(),
            holder: "S1".into(),
        }),
    );
    check(
        |s| s.accounts.push(s.accounts[0].clone()),
        Err(SnapshotError::Duplicate {
            what: "account",
            id: "A1".into(),
        }),
    );
    check(
        |s| s.cards[1].uid = s.cards[0].uid,
        Err(SnapshotError::Duplicate {
            what: "card",
            id: "04a1b2c3".into(),
        }),
    );
    check(
        |s| s.services[0].end = LocalTime::parse("11:00").unwrap(),
        Err(SnapshotError::ServiceWindow {
            service: ServiceId::parse("lunch").unwrap(),
        }),
    );
    check(
        |s| s.services[0].weekdays.clear(),
        Err(SnapshotError::ServiceWindow {
            service: ServiceId::parse("lunch").unwrap(),
        }),
    );
    check(|s| s.settings = None, Err(SnapshotError::MissingSettings));
    check(
        |s| s.since = Some(SnapshotVersion(3)),
        Err(SnapshotError::FullWithDelta),
    );
    check(
        |s| s.pupils[0].dietary = vec![text("x"); proto::limits::DIETARY_FLAGS_MAX + 1],
        Err(SnapshotError::DietaryFlags {
            pupil: PupilId::parse("P1").unwrap(),
            found: proto::limits::DIETARY_FLAGS_MAX + 1,
        }),
    );
}

#[test]
fn snapshot_json_round_trips_and_refuses_unknown_fields() {
    let snapshot = sample();
    let json = serde_json::to_string(&snapshot).unwrap();
    assert!(json.contains("\"start\":\"11:30\""), "{json}");
    assert!(!json.contains("removed"), "{json}");
    assert_eq!(serde_json::from_str::<Snapshot>(&json).unwrap(), snapshot);
    let extra = json.replacen("{", "{\"surprise\":1,", 1);
    assert!(serde_json::from_str::<Snapshot>(&extra).is_err());
    let bad_time = json.replace("\"11:30\"", "\"11h30\"");
    assert!(serde_json::from_str::<Snapshot>(&bad_time).is_err());
    let float_balance = json.replace("\"balance\":1250", "\"balance\":12.5");
    assert!(serde_json::from_str::<Snapshot>(&float_balance).is_err());
}

#[test]
fn signed_requests() {
    let key = common::key(11);
    let device = common::device();
    let body = br#"{"records":[]}"#;
    let request = RequestToSign {
        device: &device,
        method: "POST",
        path: "/api/v1/kiosk/records",
        at: common::at(0),
        nonce: "3f9a0c7e5b1d4a2e",
        body,
    };
    let signature = request.sign(&key);
    let public = key.public_key();
    assert_eq!(
        request.verify(&public, &signature, common::at(120_000)),
        Ok(())
    );
    assert_eq!(
        request.verify(
            &public,
            &signature,
            common::at(proto::limits::REQUEST_CLOCK_SKEW_MS_MAX + 1)
        ),
        Err(RequestAuthError::ClockSkew)
    );
    assert_eq!(
        request.verify(&common::key(12).public_key(), &signature, common::at(0)),
        Err(RequestAuthError::Signature)
    );
    let other_body = RequestToSign {
        body: br#"{"records":[1]}"#,
        ..request.clone()
    };
    assert_eq!(
        other_body.verify(&public, &signature, common::at(0)),
        Err(RequestAuthError::Signature)
    );
    let other_path = RequestToSign {
        path: "/api/v1/kiosk/snapshot",
        ..request.clone()
    };
    assert_eq!(
        other_path.verify(&public, &signature, common::at(0)),
        Err(RequestAuthError::Signature)
    );
    for nonce in ["short", "3f9a0c7e5b1d4a2e\n", &"a".repeat(65)] {
        let bad = RequestToSign {
            nonce,
            ..request.clone()
        };
        assert_eq!(
            bad.verify(&public, &bad.sign(&key), common::at(0)),
            Err(RequestAuthError::Nonce)
        );
    }
}

#[test]
fn upload_batches_are_bounded() {
    let key = common::key(13);
    let record = common::first_signed(&key);
    let status = proto::api::KioskReport {
        software_version: text("0.1.0"),
        reader: proto::api::ReaderState::Ready,
        unsynced_records: 1,
        kiosk_time: common::at(0),
        snapshot_version: None,
    };
    let full = UploadRequest {
        records: vec![record.clone(); proto::limits::UPLOAD_BATCH_RECORDS_MAX],
        status: status.clone(),
    };
    assert!(full.check().is_ok());
    let over = UploadRequest {
        records: vec![record; proto::limits::UPLOAD_BATCH_RECORDS_MAX + 1],
        status,
    };
    assert_eq!(
        over.check().unwrap_err().code,
        proto::api::ErrorCode::BatchTooLarge
    );
}
