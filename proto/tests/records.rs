//! The audit format: round trips, tampering, chain defects and bad input.

#![allow(clippy::unwrap_used)]

mod common;

use proto::record::FORMAT_VERSION;
use proto::{
    ChainError, ChainHead, ChainVerifier, CheckedRecord, DeviceId, Digest, Payload, PublicKey,
    Record, RecordError, Seq, SignedRecord, verify_chain,
};

fn seq(n: u64) -> Seq {
    Seq::new(n).unwrap()
}

#[test]
fn every_kind_round_trips_through_the_audit_format() {
    let key = common::key(1);
    let device = common::device();
    let mut head = ChainHead::GENESIS;
    for (n, body) in common::every_kind().into_iter().enumerate() {
        let record = head
            .append(&key, &device, common::at(n as i64), body.clone())
            .unwrap();
        let line = record.signed().to_json();
        assert!(!line.contains('\n'));
        let read = SignedRecord::from_json(line.as_bytes()).unwrap();
        let verified = read.verify(&key.public_key()).unwrap();
        assert_eq!(verified, record);
        assert_eq!(verified.payload().body, body);
        assert_eq!(verified.hash(), Digest::of(read.payload.as_bytes()));
    }
}

#[test]
fn payload_layout_matches_the_design() {
    let key = common::key(1);
    let record = &common::chain(&key, &common::device(), 1)[0];
    let payload = &record.signed().payload;
    assert!(
        payload.starts_with(&format!(
            "{{\"v\":1,\"device\":\"kiosk-jaures-1\",\"seq\":1,\"prev\":\"{}\",\"at\":\"2026-11-29T11:45:03.120Z\",\"kind\":\"meal\",",
            "0".repeat(64)
        )),
        "{payload}"
    );
    assert!(payload.contains("\"price\":385"));
    let envelope: serde_json::Value = serde_json::from_str(&record.signed().to_json()).unwrap();
    assert_eq!(envelope.as_object().unwrap().len(), 2);
    assert_eq!(
        envelope["payload"],
        serde_json::Value::String(payload.clone())
    );
}

#[test]
fn second_record_links_to_the_first() {
    let key = common::key(1);
    let records = common::chain(&key, &common::device(), 2);
    assert_eq!(records[0].payload().prev, Digest::ZERO);
    assert_eq!(
        records[1].payload().prev,
        Digest::of(records[0].signed().payload.as_bytes())
    );
    assert_eq!(records[1].seq(), seq(2));
}

/// Every text one byte away from `text` that is still UTF-8 (bytes that are not cannot even be
/// represented in a record), with the position and value of the byte changed.
fn single_byte_changes(text: &str) -> impl Iterator<Item = (usize, u8, String)> + '_ {
    let bytes = text.as_bytes();
    (0..bytes.len()).flat_map(move |position| {
        (0..=255u8).filter_map(move |value| {
            if value == bytes[position] {
                return None;
            }
            let mut changed = bytes.to_vec();
            changed[position] = value;
            String::from_utf8(changed)
                .ok()
                .map(|text| (position, value, text))
        })
    })
}

#[test]
fn every_single_byte_change_is_rejected() {
    let key = common::key(2);
    let public = key.public_key();
    let record = common::chain(&key, &common::device(), 4).pop().unwrap();
    let original = record.signed();
    let mut checked = 0;
    for (position, value, text) in single_byte_changes(&original.payload) {
        let changed = SignedRecord {
            payload: text,
            signature: original.signature.clone(),
        };
        assert!(
            changed.verify(&public).is_err(),
            "payload byte {position} = {value}"
        );
        checked += 1;
    }
    for (position, value, text) in single_byte_changes(&original.signature) {
        let changed = SignedRecord {
            payload: original.payload.clone(),
            signature: text,
        };
        let error = changed.verify(&public).unwrap_err();
        assert!(
            matches!(
                error,
                RecordError::BadSignature | RecordError::SignatureEncoding
            ),
            "signature byte {position} = {value}: {error:?}"
        );
        checked += 1;
    }
    assert!(checked > 40_000, "{checked}");
    // And the other key never verifies the untouched record.
    assert_eq!(
        original.verify(&common::key(3).public_key()),
        Err(RecordError::BadSignature)
    );
}

fn signed(records: &[Record]) -> Vec<SignedRecord> {
    records
        .iter()
        .map(|record| record.signed().clone())
        .collect()
}

fn check_chain(records: &[SignedRecord], expected: &[ChainError]) {
    let key = common::key(4);
    let report = verify_chain(&common::device(), &key.public_key(), records);
    assert_eq!(report.errors, expected);
}

#[test]
fn chain_defects_are_named() {
    let key = common::key(4);
    let device = common::device();
    let chain = signed(&common::chain(&key, &device, 6));
    let hash = |n: usize| chain[n].payload_hash();

    check_chain(&chain, &[]);

    // Gap: seq 3 removed.
    let mut gap = chain.clone();
    gap.remove(2);
    check_chain(
        &gap,
        &[ChainError::Gap {
            device: device.clone(),
            from: seq(3),
            to: seq(3),
        }],
    );

    // Gap at the start.
    check_chain(
        &chain[2..],
        &[ChainError::Gap {
            device: device.clone(),
            from: seq(1),
            to: seq(2),
        }],
    );

    // Duplicate.
    let mut duplicate = chain.clone();
    duplicate.insert(3, chain[2].clone());
    check_chain(
        &duplicate,
        &[ChainError::Duplicate {
            device: device.clone(),
            seq: seq(3),
        }],
    );

    // Reorder: 1 2 4 3 5 6.
    let mut reorder = chain.clone();
    reorder.swap(2, 3);
    check_chain(
        &reorder,
        &[ChainError::Reorder {
            device: device.clone(),
            seq: seq(3),
            after: seq(4),
        }],
    );

    // Fork: another record signed at seq 3 by the same key.
    let mut head = ChainHead {
        next_seq: seq(3),
        prev: hash(1),
    };
    let other = head
        .append(&key, &device, common::at(1), common::body(5))
        .unwrap();
    let mut fork = chain.clone();
    fork.insert(3, other.signed().clone());
    check_chain(
        &fork,
        &[ChainError::Fork {
            device: device.clone(),
            seq: seq(3),
            kept: hash(2),
            other: other.hash(),
        }],
    );

    // Broken link: seq 4 rewritten with a valid signature but a wrong `prev`.
    let mut head = ChainHead {
        next_seq: seq(4),
        prev: Digest::of(b"elsewhere"),
    };
    let relinked = head
        .append(&key, &device, common::at(2), common::body(3))
        .unwrap();
    let mut broken = chain.clone();
    broken[3] = relinked.signed().clone();
    check_chain(
        &broken,
        &[
            ChainError::BrokenLink {
                device: device.clone(),
                seq: seq(4),
                expected: hash(2),
                found: Digest::of(b"elsewhere"),
            },
            ChainError::BrokenLink {
                device: device.clone(),
                seq: seq(5),
                expected: relinked.hash(),
                found: hash(3),
            },
        ],
    );

    // Wrong device: a record of another kiosk signed with this kiosk's key.
    let stranger = DeviceId::parse("kiosk-ferry-2").unwrap();
    let foreign = common::chain(&key, &stranger, 1);
    let mut wrong = chain.clone();
    wrong.push(foreign[0].signed().clone());
    check_chain(
        &wrong,
        &[ChainError::WrongDevice {
            device: device.clone(),
            seq: seq(1),
            found: stranger,
        }],
    );

    // Bad signature: names the claimed seq and the position.
    let mut forged = chain.clone();
    forged[1] = SignedRecord {
        payload: chain[1].payload.replace("385", "386"),
        signature: chain[1].signature.clone(),
    };
    let report = verify_chain(&device, &key.public_key(), &forged);
    assert_eq!(
        report.errors[0],
        second_record_refused(&device, RecordError::BadSignature)
    );

    // Truncation is only visible against an expected end.
    let mut verifier = ChainVerifier::new(device.clone(), key.public_key(), ChainHead::GENESIS);
    for record in &chain[..5] {
        verifier.push(record);
    }
    assert_eq!(
        verifier.finish_expecting(seq(6)).errors,
        [ChainError::Truncated {
            device: device.clone(),
            expected: seq(6),
            found: Some(seq(5))
        }]
    );
}

#[test]
fn unknown_versions_and_malformed_payloads_are_named_in_a_chain() {
    let key = common::key(4);
    let device = common::device();
    let mut chain = signed(&common::chain(&key, &device, 3));
    let future = chain[1].payload.replacen("\"v\":1", "\"v\":2", 1);
    chain[1] = sign_raw(&key, &future);
    let report = verify_chain(&device, &key.public_key(), &chain);
    assert_eq!(
        report.errors[0],
        second_record_refused(&device, RecordError::UnknownVersion { version: 2 })
    );
    assert_eq!(
        report.errors[1],
        ChainError::Gap {
            device: device.clone(),
            from: seq(2),
            to: seq(2)
        }
    );
    assert_eq!(report.head.next_seq, seq(2));
}

#[test]
fn verifier_continues_from_a_head() {
    let key = common::key(4);
    let device = common::device();
    let chain = common::chain(&key, &device, 10);
    let start = ChainHead::after(&chain[4]);
    let mut verifier = ChainVerifier::new(device.clone(), key.public_key(), start);
    for record in &chain[3..] {
        verifier.push(record.signed());
    }
    let report = verifier.finish();
    assert_eq!(
        report.errors,
        [
            ChainError::BeforeStart {
                device: device.clone(),
                seq: seq(4),
                start: seq(6)
            },
            ChainError::BeforeStart {
                device: device.clone(),
                seq: seq(5),
                start: seq(6)
            },
        ]
    );
    assert_eq!(report.records.len(), 5);
    assert_eq!(report.head, ChainHead::after(&chain[9]));
}

#[test]
fn records_checked_beforehand_are_judged_as_pushed_ones() {
    let key = common::key(4);
    let other = common::key(5);
    let device = common::device();
    let mut chain = signed(&common::chain(&key, &device, 4));
    chain[2] = forged_by(&chain[2], &other);
    let pushed = verify_chain(&device, &key.public_key(), &chain);
    // Checked with the kiosk's key, and with another key (checked again by the verifier).
    for checking_key in [key.public_key(), other.public_key()] {
        let mut verifier = ChainVerifier::new(device.clone(), key.public_key(), ChainHead::GENESIS);
        for record in &chain {
            verifier.push_checked(&CheckedRecord::check(record.clone(), &checking_key));
        }
        let report = verifier.finish();
        assert_eq!(report.errors, pushed.errors);
        assert_eq!(report.records, pushed.records);
        assert_eq!(report.head, pushed.head);
    }
    assert_eq!(
        pushed.head.next_seq,
        seq(3),
        "the forged record stops the chain"
    );
}

/// The chain error naming the record at `seq` 2, the second pushed, refused with `error`.
fn second_record_refused(device: &DeviceId, error: RecordError) -> ChainError {
    ChainError::Record {
        device: device.clone(),
        seq: Some(seq(2)),
        position: 1,
        error,
    }
}

/// The record with its signature replaced by `key`'s.
fn forged_by(record: &SignedRecord, key: &proto::SigningKey) -> SignedRecord {
    SignedRecord {
        payload: record.payload.clone(),
        signature: key.sign(record.payload.as_bytes()).to_base64(),
    }
}

/// Signs arbitrary payload text with a valid key, to reach the payload parser.
fn sign_raw(key: &proto::SigningKey, payload: &str) -> SignedRecord {
    SignedRecord {
        payload: payload.to_owned(),
        signature: key.sign(payload.as_bytes()).to_base64(),
    }
}

fn check_payload(payload: &str, expected: impl Fn(&RecordError) -> bool) {
    let key = common::key(5);
    let error = sign_raw(&key, payload)
        .verify(&key.public_key())
        .unwrap_err();
    assert!(expected(&error), "{payload}\n  gave {error:?}");
}

#[test]
fn bad_payloads_give_typed_errors() {
    let key = common::key(5);
    let good = common::first_signed(&key).payload;
    let malformed = |e: &RecordError| matches!(e, RecordError::Malformed { .. });
    check_payload("", malformed);
    check_payload("[]", malformed);
    check_payload("{", malformed);
    check_payload("null", malformed);
    check_payload(&good.replacen("\"v\":1", "\"v\":7", 1), |e| {
        *e == RecordError::UnknownVersion { version: 7 }
    });
    check_payload(&good.replacen("\"meal\"", "\"refund\"", 1), |e| {
        *e == RecordError::UnknownKind {
            kind: "refund".into(),
        }
    });
    // One change each to the good payload: a wrong type, a number out of range, a field unknown,
    // missing or twice, and anything but the canonical spelling and order.
    let malformed_changes = [
        ("\"v\":1", "\"v\":\"1\""),
        ("\"v\":1", "\"v\":1.0"),
        ("\"v\":1,", ""),
        ("\"kind\":\"meal\"", "\"kind\":3"),
        ("\"price\":385", "\"price\":\"385\""),
        ("\"price\":385", "\"price\":3.85"),
        ("\"price\":385", "\"price\":-385"),
        ("\"price\":385", "\"price\":385,\"tip\":1"),
        ("\"seq\":1", "\"seq\":0"),
        ("\"seq\":1", "\"seq\":1,\"seq\":2"),
        (",\"seq\":1", ""),
        ("\"v\":1,", "\"v\": 1,"),
        (
            "{\"v\":1,\"device\":\"kiosk-jaures-1\",",
            "{\"device\":\"kiosk-jaures-1\",\"v\":1,",
        ),
        (".120Z", "Z"),
        ("kiosk-jaures-1", "kiosk jaures"),
        ("kiosk-jaures-1", "kiosk\\u002djaures-1"),
    ];
    for (from, to) in malformed_changes {
        check_payload(&good.replacen(from, to, 1), malformed);
    }
    // Beyond the named maximum: refused as malformed, never wrapped or panicking later.
    for beyond in [
        "9007199254740992",
        "18446744073709551615",
        "18446744073709551616",
    ] {
        let payload = good.replacen("\"seq\":1", &format!("\"seq\":{beyond}"), 1);
        check_payload(&payload, malformed);
        assert_eq!(sign_raw(&key, &payload).claimed_seq(), None, "{beyond}");
    }
    check_payload(&format!("{good} "), malformed);
    check_payload(
        &format!("{}{}", good, "x".repeat(proto::limits::PAYLOAD_BYTES_MAX)),
        |e| matches!(e, RecordError::TooLarge { .. }),
    );
    // The good payload itself verifies: the helper is not rejecting everything.
    assert!(sign_raw(&key, &good).verify(&key.public_key()).is_ok());
    assert_eq!(Payload::parse(&good).unwrap().v, FORMAT_VERSION);
}

#[test]
fn a_full_chain_signs_nothing_more() {
    let key = common::key(5);
    let last = Payload {
        seq: Seq::MAX,
        ..Payload::parse(&common::first_signed(&key).payload).unwrap()
    };
    let record = Record::sign(last, &key).unwrap();
    assert_eq!(record.seq(), Seq::MAX);
    assert!(record.signed().verify(&key.public_key()).is_ok());
    let mut head = ChainHead::after(&record);
    assert_eq!(head.next_seq, Seq::PAST_END);
    let body = record.payload().body.clone();
    assert_eq!(
        head.append(&key, &common::device(), common::at(1), body),
        Err(RecordError::ChainFull)
    );
    assert_eq!(
        head.next_seq,
        Seq::PAST_END,
        "a refused record leaves the head"
    );
}

#[test]
fn bad_envelopes_give_typed_errors() {
    let key = common::key(6);
    let line = common::first_signed(&key).to_json();
    let envelope = |e: &RecordError| matches!(e, RecordError::Envelope { .. });
    let check = |bytes: &[u8], expected: &dyn Fn(&RecordError) -> bool| {
        let error = SignedRecord::from_json(bytes).unwrap_err();
        assert!(
            expected(&error),
            "{}\n  gave {error:?}",
            String::from_utf8_lossy(bytes)
        );
    };
    check(b"", &envelope);
    check(b"{}", &envelope);
    check(b"{\"payload\":\"x\"}", &envelope);
    check(b"{\"payload\":1,\"signature\":\"x\"}", &envelope);
    check(line.replacen('}', ",\"extra\":1}", 1).as_bytes(), &envelope);
    check(&[0xff, 0xfe], &envelope);
    check(
        &vec![b' '; proto::limits::RECORD_JSON_BYTES_MAX + 1],
        &|e| matches!(e, RecordError::TooLarge { .. }),
    );
    // Non-canonical base64: padding dropped, a stray space, unused bits set.
    let record = SignedRecord::from_json(line.as_bytes()).unwrap();
    for signature in [
        record.signature.trim_end_matches('=').to_owned(),
        format!(" {}", record.signature),
        record.signature.replace('=', "A=").replacen("A=", "=", 1),
    ] {
        let changed = SignedRecord {
            signature,
            ..record.clone()
        };
        assert_eq!(
            changed.verify(&key.public_key()),
            Err(RecordError::SignatureEncoding)
        );
    }
}

#[test]
fn signing_refuses_what_verification_would_refuse() {
    let key = common::key(7);
    let device = common::device();
    let mut head = ChainHead::GENESIS;
    let mut body = common::body(3);
    if let proto::RecordBody::TopUp(top_up) = &mut body {
        top_up.amount = proto::Cents::new(0);
    }
    let error = head.append(&key, &device, common::at(0), body).unwrap_err();
    assert!(matches!(error, RecordError::Malformed { .. }), "{error:?}");
    assert_eq!(
        head,
        ChainHead::GENESIS,
        "a refused record does not advance the chain"
    );
    let payload = Payload {
        v: 2,
        device,
        seq: Seq::FIRST,
        prev: Digest::ZERO,
        at: common::at(0),
        body: common::body(0),
    };
    assert_eq!(
        Record::sign(payload, &key),
        Err(RecordError::UnknownVersion { version: 2 })
    );
    let _: PublicKey = key.public_key();
}
