//! Property tests of what the back-office reads from outside: arbitrary and crafted records
//! signed by an enrolled kiosk, upload bodies, transfer files, records exports and CSV imports.
//! Whatever comes in, nothing panics: an answer is a value or a clear refusal, and the service
//! answers the next request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use testkit as common;

use common::Ops as _;

use backoffice::store::{SqliteStore, StoreError};
use proto::SignedRecord;

use common::app::TestApp;
use common::fixtures::{Kiosk, account, at, meal, registered_at, top_up};
use common::{SqliteDb, fixtures};

/// Values that break naive parsers: the extremes of numbers, wrong types, odd strings.
const AWKWARD: &[&str] = &[
    "18446744073709551615",
    "9007199254740992",
    "-9223372036854775808",
    "-1",
    "0",
    "1e308",
    "null",
    "true",
    "[]",
    "{}",
    "\"\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"2026-02-30\"",
    "\"9999-12-31T23:59:59.999Z\"",
];

/// A valid record's payload with one value, or one stretch of it, replaced.
fn crafted_payload() -> impl Strategy<Value = String> {
    let mut kiosk = Kiosk::new("kiosk-jaures-1", 1);
    kiosk.write(top_up("A1", 2_000));
    let valid = kiosk.written[0].signed().payload.clone();
    let len = valid.len();
    prop_oneof![
        // A value after a colon replaced by an awkward one.
        (0..len, prop::sample::select(AWKWARD)).prop_map({
            let valid = valid.clone();
            move |(at, value)| replace_value(&valid, at, value)
        }),
        // A stretch replaced by arbitrary text.
        (0..len, 0..16_usize, ".{0,24}").prop_map({
            let valid = valid.clone();
            move |(at, cut, text)| {
                let at = floor_char(&valid, at);
                let end = floor_char(&valid, (at + cut).min(valid.len()));
                format!("{}{text}{}", &valid[..at], &valid[end..])
            }
        }),
        any::<String>(),
    ]
}

fn floor_char(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// `payload` with the value that follows the first colon at or after `at` replaced by `value`.
fn replace_value(payload: &str, at: usize, value: &str) -> String {
    let Some(colon) = payload[floor_char(payload, at)..].find(':') else {
        return payload.to_owned();
    };
    let start = floor_char(payload, at) + colon + 1;
    let rest = &payload[start..];
    let end = match rest.strip_prefix('"') {
        Some(quoted) => quoted.find('"').map_or(rest.len(), |quote| quote + 2),
        None => rest.find([',', '}']).unwrap_or(rest.len()),
    };
    format!("{}{value}{}", &payload[..start], &rest[end..])
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

#[test]
fn ingest_refuses_or_keeps_crafted_records_and_never_panics() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let db = SqliteDb::new();
    let store: SqliteStore = runtime.block_on(db.open());
    let kiosk = Kiosk::new("kiosk-jaures-1", 1);
    runtime.block_on(async {
        store
            .add_device(kiosk.device.clone(), registered_at())
            .await
            .unwrap();
        store
            .add_account(&account("A1"), proto::Cents::ZERO, at(0))
            .await
            .unwrap();
    });
    let mut runner = TestRunner::new(config(256));
    runner
        .run(&crafted_payload(), |payload| {
            let signed = SignedRecord {
                signature: kiosk.key.sign(payload.as_bytes()).to_base64(),
                payload,
            };
            let result = runtime.block_on(store.ingest(&kiosk.device, vec![signed], at(1)));
            prop_assert!(
                !matches!(
                    result,
                    Err(StoreError::Corrupt(_) | StoreError::Unavailable(_))
                ),
                "{result:?}"
            );
            Ok(())
        })
        .unwrap();
    let mismatches = runtime.block_on(store.balance_mismatches()).unwrap();
    assert_eq!(mismatches, vec![]);
}

#[test]
fn upload_bodies_of_any_bytes_are_refused_without_a_server_error() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let db = SqliteDb::new();
    let kiosk = Kiosk::new("kiosk-jaures-1", 1);
    let app = runtime.block_on(async {
        let store = db.open().await;
        store
            .add_device(kiosk.device.clone(), registered_at())
            .await
            .unwrap();
        TestApp::start(store).await
    });
    let bodies = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        crafted_payload().prop_map(|payload| {
            format!("{{\"records\":[{{\"payload\":{payload:?},\"signature\":\"AA==\"}}],\"status\":{payload}}}")
                .into_bytes()
        }),
    ];
    let mut runner = TestRunner::new(config(128));
    runner
        .run(&bodies, |body| {
            let reply =
                runtime.block_on(app.signed(&kiosk, "POST", "/api/v1/kiosk/records", &body));
            prop_assert!(
                (400..500).contains(&reply.status),
                "{} {}",
                reply.status,
                reply.text()
            );
            Ok(())
        })
        .unwrap();
    assert_eq!(runtime.block_on(app.get("/healthz")).status, 200);
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn a_transfer_file_of_any_text_parses_or_is_refused(text in any::<String>()) {
        let _ = backoffice::transfer::parse(&text);
    }

    #[test]
    fn a_transfer_file_of_crafted_records_parses_or_is_refused(
        lines in prop::collection::vec(crafted_payload(), 1..4)
    ) {
        let text: String = lines
            .iter()
            .map(|payload| format!("{{\"payload\":{payload:?},\"signature\":\"AA==\"}}\n"))
            .collect();
        let _ = backoffice::transfer::parse(&text);
    }

    #[test]
    fn a_records_export_of_any_bytes_verifies_or_names_its_defects(
        bytes in prop::collection::vec(any::<u8>(), 0..2_048)
    ) {
        let _ = backoffice::export::verify(bytes.as_slice());
    }

    #[test]
    fn a_records_export_of_crafted_lines_verifies_or_names_its_defects(
        lines in prop::collection::vec(crafted_payload(), 1..4)
    ) {
        let key = fixtures::device("kiosk-jaures-1", 1).key.to_pem();
        let mut text = format!(
            "{{\"device\":\"kiosk-jaures-1\",\"site\":\"jaures\",\"public_key\":{key:?},\
             \"revoked_at\":null,\"first_seq\":1,\"last_seq\":{}}}\n",
            lines.len()
        );
        for payload in &lines {
            text.push_str(&format!("{{\"payload\":{payload:?},\"signature\":\"AA==\"}}\n"));
        }
        let _ = backoffice::export::verify(text.as_bytes());
    }

    #[test]
    fn an_import_file_of_any_text_parses_or_names_its_lines(
        text in "[a-zA-Z0-9,;\"\\n =+@\\-é\u{0}]{0,400}"
    ) {
        let _ = backoffice::import::parse(&text);
        let header = backoffice::import::HEADER.join(",");
        let _ = backoffice::import::parse(&format!("{header}\n{text}"));
    }
}

#[test]
fn a_meal_fixture_is_still_a_valid_record() {
    // The crafted payloads start from valid ones: if the fixtures stopped signing, the
    // properties above would test only refusals.
    let mut kiosk = Kiosk::new("kiosk-jaures-1", 1);
    let record = kiosk.write(meal("A1", 385));
    assert!(record.signed().verify(&kiosk.device.key).is_ok());
}
