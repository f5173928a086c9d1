//! An auditor with only `openssl` can check the back-office's export of signed records: every
//! signature against the kiosk's PEM key given in the file, every link against the SHA-256 of
//! the record before.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use backoffice::export::{self, ExportKind, KeyLine, Period};
use backoffice::reconcile::Settings;
use backoffice::store::{Device, SqliteStore};
use proto::record::{Meal, MealVia, TopUp, TopUpMethod};
use proto::{
    AccountId, BracketId, CardUid, Cents, ChainHead, DeviceId, MealType, PublicKey, PupilId,
    RecordBody, ServiceDate, ServiceId, SignedRecord, SigningKey, SiteId, StaffId, Timestamp,
};
use testkit::Ops as _;
use tests::backoffice::registered_at;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("canteen-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_verifies_every_record_and_link_of_a_backoffice_export() {
    let dir = temp_dir("backoffice-export");
    let store = SqliteStore::open(&dir.join("backoffice.db")).await.unwrap();
    let random = ring::rand::SystemRandom::new();
    let (key, _) = SigningKey::generate(&random).unwrap();
    let device = Device {
        id: DeviceId::parse("kiosk-jaures-1").unwrap(),
        site: SiteId::parse("jaures").unwrap(),
        key: key.public_key(),
        revoked_at: None,
    };
    store
        .add_device(device.clone(), registered_at())
        .await
        .unwrap();
    let account = AccountId::parse("A1").unwrap();
    store
        .add_account(
            &account,
            Cents::new(-500),
            Timestamp::from_unix_ms(0).unwrap(),
        )
        .await
        .unwrap();
    let date = ServiceDate::parse("2026-11-30").unwrap();
    let lunch = Timestamp::parse("2026-11-30T11:45:00.000Z").unwrap();
    let mut head = ChainHead::GENESIS;
    let mut batch = Vec::new();
    let top_up = RecordBody::TopUp(TopUp {
        account: account.clone(),
        amount: Cents::new(2_000),
        method: TopUpMethod::Cash,
        staff: StaffId::parse("staff-martin").unwrap(),
        reference: None,
    });
    batch.push(head.append(&key, &device.id, lunch, top_up).unwrap());
    for pupil in ["P1", "P2", "P3"] {
        let meal = RecordBody::Meal(Meal {
            service: ServiceId::parse("lunch").unwrap(),
            service_date: date,
            meal_type: MealType::parse("lunch").unwrap(),
            account: account.clone(),
            pupil: PupilId::parse(pupil).unwrap(),
            bracket: BracketId::parse("q3").unwrap(),
            price: Cents::new(385),
            balance_after: Cents::new(0),
            via: MealVia::Card(CardUid::parse(&[4, 1, 2, 3]).unwrap()),
        });
        batch.push(head.append(&key, &device.id, lunch, meal).unwrap());
    }
    let signed: Vec<SignedRecord> = batch.iter().map(|record| record.signed().clone()).collect();
    store.ingest(&device, signed, lunch).await.unwrap();

    let mut bytes = Vec::new();
    export::write(
        &store,
        &testkit::ops::finance("finance"),
        ExportKind::Records,
        Period::new(date, date).unwrap(),
        None,
        &Settings::new("Europe/Paris").unwrap(),
        &mut bytes,
    )
    .await
    .unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let mut lines = text.lines();
    let key_line: KeyLine = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(key_line.public_key, key.public_key().to_pem());
    let pem_key = PublicKey::from_pem(&key_line.public_key).unwrap();
    let records: Vec<SignedRecord> = lines
        .map(|line| SignedRecord::from_json(line.as_bytes()).unwrap())
        .collect();
    assert_eq!(records.len(), 4);
    let mut previous_hash = "0".repeat(64);
    for record in &records {
        assert!(tests::openssl::verifies(&dir, &pem_key, record));
        let payload: serde_json::Value = serde_json::from_str(&record.payload).unwrap();
        assert_eq!(payload["prev"].as_str().unwrap(), previous_hash);
        previous_hash = tests::openssl::sha256_hex(&dir, record.payload.as_bytes());
    }

    let tampered = SignedRecord {
        payload: records[1].payload.replace("\"price\":385", "\"price\":1"),
        signature: records[1].signature.clone(),
    };
    assert_ne!(tampered, records[1]);
    assert!(!tests::openssl::verifies(&dir, &pem_key, &tampered));
    std::fs::remove_dir_all(dir).unwrap();
}
