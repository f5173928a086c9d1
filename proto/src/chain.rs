//! One kiosk's chain of records: writing the next link, and verifying a sequence of records
//! with every defect reported by name.

use std::collections::{BTreeMap, HashMap};

use crate::crypto::{Digest, PublicKey, SigningKey};
use crate::ids::{DeviceId, Seq, Timestamp};
use crate::record::{FORMAT_VERSION, Payload, Record, RecordBody, RecordError, SignedRecord};

/// Where a chain continues: the next `seq` and the hash its `prev` must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainHead {
    pub next_seq: Seq,
    pub prev: Digest,
}

impl ChainHead {
    /// The head of an empty chain.
    pub const GENESIS: ChainHead = ChainHead {
        next_seq: Seq::FIRST,
        prev: Digest::ZERO,
    };

    /// The head right after `record`.
    pub fn after(record: &Record) -> ChainHead {
        ChainHead {
            next_seq: record.seq().next(),
            prev: record.hash(),
        }
    }

    /// Signs the next record of `device`'s chain and advances the head past it.
    pub fn append(
        &mut self,
        key: &SigningKey,
        device: &DeviceId,
        at: Timestamp,
        body: RecordBody,
    ) -> Result<Record, RecordError> {
        let payload = Payload {
            v: FORMAT_VERSION,
            device: device.clone(),
            seq: self.next_seq,
            prev: self.prev,
            at,
            body,
        };
        let record = Record::sign(payload, key)?;
        *self = ChainHead::after(&record);
        Ok(record)
    }
}

/// A defect in a kiosk's chain, naming the device and the `seq` concerned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The record itself is unreadable: bad signature, bad encoding, unknown version or kind,
    /// malformed payload. `seq` is the one the payload claims, when it can be read at all;
    /// `position` counts records from 0 in the order given.
    #[error("device {device}, seq {}, record #{position}: {error}", display_seq(*.seq))]
    Record {
        device: DeviceId,
        seq: Option<Seq>,
        position: usize,
        error: RecordError,
    },
    #[error("device {device}, seq {seq}: record belongs to device {found}")]
    WrongDevice {
        device: DeviceId,
        seq: Seq,
        found: DeviceId,
    },
    #[error("device {device}, seq {seq}: duplicate of a record already seen")]
    Duplicate { device: DeviceId, seq: Seq },
    #[error(
        "device {device}, seq {seq}: fork, two different records ({kept} kept, {other} refused)"
    )]
    Fork {
        device: DeviceId,
        seq: Seq,
        kept: Digest,
        other: Digest,
    },
    #[error("device {device}, seq {seq}: out of order, after seq {after}")]
    Reorder {
        device: DeviceId,
        seq: Seq,
        after: Seq,
    },
    #[error(
        "device {device}, seq {seq}: before the start of the chain being checked (seq {start})"
    )]
    BeforeStart {
        device: DeviceId,
        seq: Seq,
        start: Seq,
    },
    #[error("device {device}: gap, seq {from} to {to} missing")]
    Gap {
        device: DeviceId,
        from: Seq,
        to: Seq,
    },
    #[error(
        "device {device}, seq {seq}: prev {found} does not link to the record before ({expected})"
    )]
    BrokenLink {
        device: DeviceId,
        seq: Seq,
        expected: Digest,
        found: Digest,
    },
    #[error("device {device}: chain ends at seq {}, expected to end at {expected}", display_seq(*.found))]
    Truncated {
        device: DeviceId,
        expected: Seq,
        found: Option<Seq>,
    },
}

impl ChainError {
    /// The `seq` the defect concerns: the record's, the first missing of a gap, the expected
    /// last of a truncated chain.
    pub fn seq(&self) -> Option<Seq> {
        match self {
            ChainError::Record { seq, .. } => *seq,
            ChainError::Gap { from, .. } => Some(*from),
            ChainError::Truncated { expected, .. } => Some(*expected),
            ChainError::WrongDevice { seq, .. }
            | ChainError::Duplicate { seq, .. }
            | ChainError::Fork { seq, .. }
            | ChainError::Reorder { seq, .. }
            | ChainError::BeforeStart { seq, .. }
            | ChainError::BrokenLink { seq, .. } => Some(*seq),
        }
    }
}

fn display_seq(seq: Option<Seq>) -> String {
    seq.map_or_else(|| "unknown".to_owned(), |seq| seq.to_string())
}

/// The outcome of checking one device's records.
#[derive(Clone, Debug)]
pub struct ChainReport {
    /// Records that verified, in `seq` order, one per `seq` (the first seen, when forked).
    pub records: Vec<Record>,
    /// Every defect found, in the order found; gaps and broken links come last.
    pub errors: Vec<ChainError>,
    /// The head after the longest run of records linked from the start with no defect: what an
    /// ingest can acknowledge.
    pub head: ChainHead,
}

impl ChainReport {
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }
}

/// A signed record with its signature checked and its payload read by one key, ahead of the
/// [`ChainVerifier`] that judges it: the costly part of a check, done before a lock is taken.
#[derive(Clone, Debug)]
pub struct CheckedRecord {
    signed: SignedRecord,
    key: PublicKey,
    read: Result<Record, RecordError>,
}

impl CheckedRecord {
    pub fn check(signed: SignedRecord, key: &PublicKey) -> CheckedRecord {
        let read = signed.verify(key);
        CheckedRecord {
            signed,
            key: *key,
            read,
        }
    }

    pub fn signed(&self) -> &SignedRecord {
        &self.signed
    }
}

/// Checks one device's records as they arrive, in the order given. Records are verified one by
/// one; links and gaps are judged at [`ChainVerifier::finish`], once every record is known.
#[derive(Debug)]
pub struct ChainVerifier {
    device: DeviceId,
    key: PublicKey,
    start: ChainHead,
    records: BTreeMap<Seq, Record>,
    highest: Option<Seq>,
    position: usize,
    errors: Vec<ChainError>,
}

impl ChainVerifier {
    /// Verifies `device`'s records signed by `key`, continuing from `start`
    /// ([`ChainHead::GENESIS`] for a whole chain).
    pub fn new(device: DeviceId, key: PublicKey, start: ChainHead) -> ChainVerifier {
        ChainVerifier {
            device,
            key,
            start,
            records: BTreeMap::new(),
            highest: None,
            position: 0,
            errors: Vec::new(),
        }
    }

    pub fn push(&mut self, signed: &SignedRecord) {
        let verified = signed.verify(&self.key);
        self.push_read(signed, verified);
    }

    /// [`ChainVerifier::push`] of a record whose signature was checked beforehand. One checked
    /// with another key than this verifier's is checked again.
    pub fn push_checked(&mut self, checked: &CheckedRecord) {
        let verified = if checked.key == self.key {
            checked.read.clone()
        } else {
            checked.signed.verify(&self.key)
        };
        self.push_read(&checked.signed, verified);
    }

    /// Judges one record already read, with its signature checked or covered.
    fn push_read(&mut self, signed: &SignedRecord, read: Result<Record, RecordError>) {
        let position = self.position;
        self.position += 1;
        let record = match read {
            Ok(record) => record,
            Err(error) => {
                self.errors.push(ChainError::Record {
                    device: self.device.clone(),
                    seq: signed.claimed_seq(),
                    position,
                    error,
                });
                return;
            }
        };
        let seq = record.seq();
        if record.device() != &self.device {
            self.errors.push(ChainError::WrongDevice {
                device: self.device.clone(),
                seq,
                found: record.device().clone(),
            });
            return;
        }
        if seq < self.start.next_seq {
            self.errors.push(ChainError::BeforeStart {
                device: self.device.clone(),
                seq,
                start: self.start.next_seq,
            });
            return;
        }
        if let Some(kept) = self.records.get(&seq) {
            let error = if kept.hash() == record.hash() {
                ChainError::Duplicate {
                    device: self.device.clone(),
                    seq,
                }
            } else {
                ChainError::Fork {
                    device: self.device.clone(),
                    seq,
                    kept: kept.hash(),
                    other: record.hash(),
                }
            };
            self.errors.push(error);
            return;
        }
        match self.highest {
            Some(highest) if seq < highest => {
                self.errors.push(ChainError::Reorder {
                    device: self.device.clone(),
                    seq,
                    after: highest,
                });
            }
            _ => self.highest = Some(seq),
        }
        self.records.insert(seq, record);
    }

    /// Judges links and gaps. A chain whose last records were removed still looks whole: use
    /// [`ChainVerifier::finish_expecting`] when the last `seq` is known from elsewhere.
    pub fn finish(self) -> ChainReport {
        self.finish_with(None)
    }

    /// Like [`ChainVerifier::finish`], and reports [`ChainError::Truncated`] unless the chain
    /// ends exactly at `last`.
    pub fn finish_expecting(self, last: Seq) -> ChainReport {
        self.finish_with(Some(last))
    }

    fn finish_with(mut self, expected_last: Option<Seq>) -> ChainReport {
        let mut head = self.start;
        let mut contiguous = true;
        let mut expected_seq = self.start.next_seq;
        let mut previous_hash = Some(self.start.prev);
        for (seq, record) in &self.records {
            if *seq != expected_seq {
                let to = seq.previous().expect("a seq after a gap is at least 2");
                self.errors.push(ChainError::Gap {
                    device: self.device.clone(),
                    from: expected_seq,
                    to,
                });
                contiguous = false;
                previous_hash = None;
            }
            let prev = record.payload().prev;
            if let Some(expected) = previous_hash.filter(|expected| *expected != prev) {
                self.errors.push(ChainError::BrokenLink {
                    device: self.device.clone(),
                    seq: *seq,
                    expected,
                    found: prev,
                });
                contiguous = false;
            }
            if contiguous {
                head = ChainHead::after(record);
            }
            expected_seq = seq.next();
            previous_hash = Some(record.hash());
        }
        if let Some(expected) = expected_last {
            let found = self.records.keys().next_back().copied();
            if found != Some(expected) {
                self.errors.push(ChainError::Truncated {
                    device: self.device.clone(),
                    expected,
                    found,
                });
            }
        }
        ChainReport {
            records: self.records.into_values().collect(),
            errors: self.errors,
            head,
        }
    }
}

/// Checks a whole chain of `device` from its first record.
pub fn verify_chain<'a>(
    device: &DeviceId,
    key: &PublicKey,
    records: impl IntoIterator<Item = &'a SignedRecord>,
) -> ChainReport {
    let mut verifier = ChainVerifier::new(device.clone(), *key, ChainHead::GENESIS);
    for record in records {
        verifier.push(record);
    }
    verifier.finish()
}

/// Checks `device`'s records from `start` like a [`ChainVerifier`] fed `records` in order and
/// finished with `expected_last` (see [`ChainVerifier::finish_expecting`]), with the same report,
/// but checks the Ed25519 signature of the anchors only: the records at `expected_last`, or when
/// it is `None` the records with the highest `seq`.
///
/// Why that proves as much: each record's `prev` is the SHA-256 of the previous record's exact
/// payload bytes, and the signature covers `prev`. A valid signature on an anchor therefore
/// vouches, link by link, for the exact bytes of every record whose hash the chain of `prev`s
/// leading to it names: editing, deleting, inserting or reordering any of them changes a hash
/// the signed anchor commits to, and forging a replacement chain needs the kiosk's key. So a
/// record reached from a verified anchor through the `prev` links (by hash, SHA-256 being
/// collision resistant) is the kiosk's as surely as if its own signature had been checked.
/// Every other record (one not linked to a verified anchor: after a broken link, a fork's other
/// branch, after the anchor, or all of them when an anchor's signature fails) has its own
/// signature checked, so each defect is reported exactly as a full check reports it. The one
/// thing not looked at is the signature text of a covered record, which says nothing its anchor
/// does not (it is still decoded, so a malformed one is refused).
pub fn verify_anchored<'a>(
    device: &DeviceId,
    key: &PublicKey,
    start: ChainHead,
    records: impl IntoIterator<Item = &'a SignedRecord>,
    expected_last: Option<Seq>,
) -> ChainReport {
    let records: Vec<&SignedRecord> = records.into_iter().collect();
    // Read every record once, without its signature.
    let read: Vec<Result<Record, RecordError>> =
        records.iter().map(|signed| signed.read_covered()).collect();
    let anchor_seq = expected_last.or_else(|| {
        read.iter()
            .filter_map(|record| record.as_ref().ok().map(Record::seq))
            .max()
    });
    let hash_at = |index: usize| read[index].as_ref().ok().map(Record::hash);
    // Where the record a `prev` names is: normally just before the record naming it, else
    // looked up by hash (an index built only when a chain is out of order).
    let mut by_hash: Option<HashMap<Digest, usize>> = None;
    let mut find = |prev: Digest, after: usize| -> Option<usize> {
        if let Some(before) = after.checked_sub(1)
            && hash_at(before) == Some(prev)
        {
            return Some(before);
        }
        by_hash
            .get_or_insert_with(|| {
                (0..read.len())
                    .filter_map(|index| hash_at(index).map(|hash| (hash, index)))
                    .collect()
            })
            .get(&prev)
            .copied()
    };
    // Every record linked to an anchor whose signature verifies, by position. (A record equal
    // to a covered one but not itself linked is simply verified on its own.)
    let mut covered = vec![false; read.len()];
    for (index, record) in read.iter().enumerate() {
        let Ok(record) = record else { continue };
        if Some(record.seq()) != anchor_seq || covered[index] {
            continue;
        }
        if records[index].verify(key).is_err() {
            continue;
        }
        covered[index] = true;
        let (mut at, mut prev) = (index, record.payload().prev);
        while let Some(before) = find(prev, at) {
            if covered[before] {
                break;
            }
            covered[before] = true;
            let Ok(record) = &read[before] else { break };
            (at, prev) = (before, record.payload().prev);
        }
    }
    let mut verifier = ChainVerifier::new(device.clone(), *key, start);
    for ((signed, record), covered) in records.into_iter().zip(read).zip(covered) {
        let record = match record {
            Ok(record) if covered => Ok(record),
            _ => signed.verify(key),
        };
        verifier.push_read(signed, record);
    }
    verifier.finish_with(expected_last)
}
