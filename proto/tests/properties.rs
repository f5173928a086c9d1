//! Property tests: every valid chain verifies; every single mutation, deletion, duplication or
//! swap of records is caught, and checking the anchor's signature only reports exactly what
//! checking every signature reports; no decoder panics on arbitrary bytes.

#![allow(clippy::unwrap_used)]

mod common;

use proptest::prelude::*;
use proto::api::{UploadRequest, UploadResponse};
use proto::snapshot::Snapshot;
use proto::{
    CardUid, ChainError, ChainHead, ChainVerifier, Payload, PublicKey, Seq, ServiceDate, Signature,
    SignedRecord, Timestamp, verify_anchored, verify_chain,
};

fn signed_chain(len: usize, start_body: usize) -> (PublicKey, Vec<SignedRecord>) {
    let key = common::key(9);
    let device = common::device();
    let mut head = ChainHead::GENESIS;
    let records = (0..len)
        .map(|n| {
            head.append(
                &key,
                &device,
                common::at(n as i64 * 977),
                common::body(start_body + n),
            )
            .unwrap()
            .signed()
            .clone()
        })
        .collect();
    (key.public_key(), records)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn any_valid_chain_verifies(len in 1usize..40, start_body in 0usize..1000) {
        let (key, records) = signed_chain(len, start_body);
        let report = verify_chain(&common::device(), &key, &records);
        prop_assert!(report.is_clean(), "{:?}", report.errors);
        prop_assert_eq!(report.records.len(), len);
        prop_assert_eq!(report.head.next_seq, Seq::new(len as u64 + 1).unwrap());
        let mut verifier = ChainVerifier::new(common::device(), key, ChainHead::GENESIS);
        records.iter().for_each(|record| verifier.push(record));
        prop_assert!(verifier.finish_expecting(Seq::new(len as u64).unwrap()).is_clean());
    }

    #[test]
    fn any_single_byte_mutation_is_detected(
        len in 1usize..20,
        index in any::<prop::sample::Index>(),
        position in any::<prop::sample::Index>(),
        in_signature in any::<bool>(),
        value in any::<u8>(),
    ) {
        let (key, mut records) = signed_chain(len, 0);
        let record = &mut records[index.index(len)];
        let field = if in_signature { &mut record.signature } else { &mut record.payload };
        let mut bytes = field.clone().into_bytes();
        let at = position.index(bytes.len());
        prop_assume!(bytes[at] != value);
        bytes[at] = value;
        let Ok(text) = String::from_utf8(bytes) else { return Ok(()) };
        *field = text;
        let report = verify_chain(&common::device(), &key, &records);
        prop_assert!(!report.is_clean());
    }

    #[test]
    fn any_deletion_is_detected(len in 2usize..30, index in any::<prop::sample::Index>()) {
        let (key, mut records) = signed_chain(len, 3);
        let removed = index.index(len);
        records.remove(removed);
        let mut verifier = ChainVerifier::new(common::device(), key, ChainHead::GENESIS);
        records.iter().for_each(|record| verifier.push(record));
        let report = verifier.finish_expecting(Seq::new(len as u64).unwrap());
        let expected = if removed == len - 1 {
            ChainError::Truncated {
                device: common::device(),
                expected: Seq::new(len as u64).unwrap(),
                found: Seq::new(len as u64 - 1).ok(),
            }
        } else {
            let missing = Seq::new(removed as u64 + 1).unwrap();
            ChainError::Gap { device: common::device(), from: missing, to: missing }
        };
        prop_assert_eq!(report.errors, vec![expected]);
    }

    #[test]
    fn any_duplication_is_detected(
        len in 1usize..30,
        from in any::<prop::sample::Index>(),
        to in any::<prop::sample::Index>(),
    ) {
        let (key, mut records) = signed_chain(len, 1);
        let copy = records[from.index(len)].clone();
        records.insert(to.index(len + 1), copy);
        let report = verify_chain(&common::device(), &key, &records);
        prop_assert!(
            report.errors.iter().any(|error| matches!(error, ChainError::Duplicate { .. })),
            "{:?}", report.errors
        );
    }

    #[test]
    fn any_swap_is_detected(
        len in 2usize..30,
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
    ) {
        let (key, mut records) = signed_chain(len, 2);
        let (a, b) = (a.index(len), b.index(len));
        prop_assume!(a != b);
        records.swap(a, b);
        let report = verify_chain(&common::device(), &key, &records);
        prop_assert!(
            report.errors.iter().any(|error| matches!(error, ChainError::Reorder { .. })),
            "{:?}", report.errors
        );
    }
}

/// The full check and the anchored one of the same records, expecting the chain to end at
/// `last` (or not), must give the same errors, records and head.
fn same_as_full_check(records: &[SignedRecord], key: &PublicKey, last: Option<Seq>) {
    let mut verifier = ChainVerifier::new(common::device(), *key, ChainHead::GENESIS);
    records.iter().for_each(|record| verifier.push(record));
    let full = match last {
        Some(last) => verifier.finish_expecting(last),
        None => verifier.finish(),
    };
    let anchored = verify_anchored(&common::device(), key, ChainHead::GENESIS, records, last);
    assert_eq!(anchored.errors, full.errors);
    assert_eq!(anchored.head, full.head);
    let hashes = |report: &proto::ChainReport| {
        report
            .records
            .iter()
            .map(proto::Record::hash)
            .collect::<Vec<_>>()
    };
    assert_eq!(hashes(&anchored), hashes(&full));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn anchored_check_reports_what_the_full_check_reports(
        len in 2usize..20,
        tamper in 0usize..5,
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
        value in any::<u8>(),
        expecting in any::<bool>(),
    ) {
        let (key, mut records) = signed_chain(len, 4);
        let (a, b) = (a.index(len), b.index(len));
        match tamper {
            0 => {}
            1 => {
                // One payload byte changed (kept UTF-8 by writing an ASCII digit or letter).
                let mut bytes = records[a].payload.clone().into_bytes();
                // Only an ASCII byte is replaced: one inside a multi-byte character (è, «)
                // would leave bytes that are not UTF-8 at all.
                let start = b * 37 + usize::from(value);
                let at = (0..bytes.len())
                    .map(|i| (start + i) % bytes.len())
                    .find(|&i| bytes[i].is_ascii())
                    .unwrap();
                bytes[at] = b'0' + value % 43;
                records[a].payload = String::from_utf8(bytes).unwrap();
            }
            2 => {
                records.remove(a);
            }
            3 => {
                let copy = records[a].clone();
                records.insert(b, copy);
            }
            _ => records.swap(a, b),
        }
        let last = expecting.then(|| Seq::new(len as u64).unwrap());
        same_as_full_check(&records, &key, last);
        if tamper == 1 && !verify_chain(&common::device(), &key, &records).is_clean() {
            prop_assert!(!verify_anchored(
                &common::device(), &key, ChainHead::GENESIS, &records, last
            ).is_clean());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = SignedRecord::from_json(&bytes);
        let _ = Payload::parse(&text);
        let _ = Signature::from_base64(&text);
        let _ = PublicKey::from_pem(&text);
        let _ = CardUid::from_hex(&text);
        let _ = CardUid::parse(&bytes);
        let _ = Timestamp::parse(&text);
        let _ = ServiceDate::parse(&text);
        let _ = serde_json::from_slice::<Snapshot>(&bytes);
        let _ = serde_json::from_slice::<UploadRequest>(&bytes);
        let _ = serde_json::from_slice::<UploadResponse>(&bytes);
    }

    #[test]
    fn signed_arbitrary_payloads_give_typed_errors(
        splice in "[ -~]{0,40}",
        position in any::<prop::sample::Index>(),
        cut in 0usize..40,
    ) {
        // Reach the payload parser: arbitrary text near a valid payload, validly signed.
        let key = common::key(10);
        let good = common::first_signed(&key).payload;
        let at = position.index(good.len());
        let end = (at + cut).min(good.len());
        let payload = format!("{}{}{}", &good[..at], splice, &good[end..]);
        let record = SignedRecord { signature: key.sign(payload.as_bytes()).to_base64(), payload };
        if let Ok(verified) = record.verify(&key.public_key()) {
            // Whatever parses is in canonical form.
            prop_assert_eq!(verified.payload().to_canonical_json(), record.payload);
        }
    }
}
