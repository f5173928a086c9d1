//! The judgement of an upload, pure: what a batch of a kiosk's signed records does to what the
//! store already holds (append, hold beyond a gap, count as duplicates, quarantine); what the
//! appended records do to balances is [`super::money`]'s. [`super::ingest`] reads the inputs and writes the plan
//! in one transaction, the same way on both databases.

use std::collections::{BTreeMap, BTreeSet};

use crate::limits::HELD_RECORDS_PER_DEVICE_MAX;
use crate::store::rows::chain::{AnomalyReason, NewAnomaly};
use proto::{
    ChainError, ChainHead, ChainReport, ChainVerifier, CheckedRecord, DeviceId, Digest, PublicKey,
    Record, Seq, SignedRecord,
};

/// What the store holds of one kiosk's chain before a batch.
#[derive(Debug, Clone)]
pub struct StoredChain {
    /// Where the stored, contiguous chain continues.
    pub head: ChainHead,
    /// Records verified earlier but beyond a gap, in `seq` order.
    pub held: Vec<SignedRecord>,
    /// The stored record at each `seq` below the head that the batch claims (see
    /// [`claimed_seqs_below_head`]).
    pub stored_below_head: BTreeMap<Seq, SignedRecord>,
}

/// What to write for one batch.
#[derive(Clone, Debug)]
pub struct IngestPlan {
    /// Records that now continue the stored chain, in `seq` order: store and apply each.
    pub append: Vec<Record>,
    /// Every record of the kiosk to hold beyond a gap after this batch (replaces the held set).
    pub hold: Vec<Record>,
    pub quarantine: Vec<NewAnomaly>,
    /// Records of the batch already held or stored, identical.
    pub duplicates: u32,
    /// The head after `append`.
    pub head: ChainHead,
}

/// Checks every record's signature with the kiosk's key: the costly part of an ingest, done
/// before the store's write transaction so that it stays short.
pub fn check(key: &PublicKey, batch: Vec<SignedRecord>) -> Vec<CheckedRecord> {
    batch
        .into_iter()
        .map(|signed| CheckedRecord::check(signed, key))
        .collect()
}

/// The `seq`s below `head` that records of `batch` claim: the store looks up their records to
/// tell a harmless re-upload from a fork or a forgery.
pub fn claimed_seqs_below_head(head: &ChainHead, batch: &[CheckedRecord]) -> Vec<Seq> {
    let seqs: BTreeSet<Seq> = batch
        .iter()
        .filter_map(|checked| checked.signed().claimed_seq())
        .filter(|seq| *seq < head.next_seq)
        .collect();
    seqs.into_iter().collect()
}

/// Judges `batch` (checked by [`check`]) against `stored`: continues the chain from the stored
/// head, and sorts every record into append, hold, duplicate or quarantine.
pub fn plan(
    device: &DeviceId,
    key: &PublicKey,
    stored: &StoredChain,
    batch: &[CheckedRecord],
) -> IngestPlan {
    let mut verifier = ChainVerifier::new(device.clone(), *key, stored.head);
    let mut pushed: Vec<&SignedRecord> = Vec::with_capacity(stored.held.len() + batch.len());
    let mut duplicates = 0_u32;
    let mut quarantine = Vec::new();
    for signed in &stored.held {
        verifier.push(signed);
        pushed.push(signed);
    }
    for checked in batch {
        let signed = checked.signed();
        match signed.claimed_seq() {
            Some(seq) if seq < stored.head.next_seq => {
                if stored.stored_below_head.get(&seq) == Some(signed) {
                    duplicates += 1;
                } else {
                    quarantine.push(judge_below_head(device, key, seq, stored, signed));
                }
            }
            _ => {
                verifier.push_checked(checked);
                pushed.push(signed);
            }
        }
    }
    let report = verifier.finish();
    quarantine.extend(refused(&report, &pushed, &mut duplicates));
    let head = report.head;
    let (append, hold, broken) = split_verified(report);
    quarantine.extend(broken);
    IngestPlan {
        append,
        hold,
        quarantine,
        duplicates,
        head,
    }
}

/// The records pushed to the verifier that it did not accept, as anomalies; an identical copy
/// of an accepted or already refused record counts in `duplicates` instead.
fn refused(
    report: &ChainReport,
    pushed: &[&SignedRecord],
    duplicates: &mut u32,
) -> Vec<NewAnomaly> {
    // A copy counts as a duplicate only with the same signature too: the same payload under
    // another signature is a forgery attempt, kept as evidence.
    let accepted: BTreeSet<(Digest, &str)> = report
        .records
        .iter()
        .map(|record| (record.hash(), record.signed().signature.as_str()))
        .collect();
    let mut seen = BTreeSet::new();
    let mut anomalies = Vec::new();
    for (position, signed) in pushed.iter().enumerate() {
        let copy = (signed.payload_hash(), signed.signature.as_str());
        if accepted.contains(&copy) {
            if !seen.insert(copy) {
                *duplicates += 1;
            }
            continue;
        }
        let Some(error) = refusal_of(&report.errors, position, signed.claimed_seq()) else {
            // Refused for a reason already counted (an identical copy refused before).
            *duplicates += 1;
            continue;
        };
        let reason = match error {
            ChainError::Record { .. } => AnomalyReason::BadRecord,
            ChainError::WrongDevice { .. } => AnomalyReason::WrongDevice,
            _ => AnomalyReason::Fork,
        };
        anomalies.push(NewAnomaly {
            seq: signed.claimed_seq(),
            reason,
            detail: error.to_string(),
            record: (*signed).clone(),
        });
    }
    anomalies
}

/// The verified records split into those that continue the chain (append), those beyond a gap
/// (hold, at most [`HELD_RECORDS_PER_DEVICE_MAX`]) and those beyond a gap whose link is broken
/// (anomalies).
fn split_verified(report: ChainReport) -> (Vec<Record>, Vec<Record>, Vec<NewAnomaly>) {
    let broken_links: BTreeMap<Seq, ChainError> = report
        .errors
        .into_iter()
        .filter_map(|error| match error {
            ChainError::BrokenLink { seq, .. } => Some((seq, error)),
            _ => None,
        })
        .collect();
    let (mut append, mut hold, mut broken) = (Vec::new(), Vec::new(), Vec::new());
    for record in report.records {
        let seq = record.seq();
        if seq < report.head.next_seq {
            append.push(record);
        } else if let Some(error) = broken_links.get(&seq) {
            broken.push(NewAnomaly {
                seq: Some(seq),
                reason: AnomalyReason::BrokenLink,
                detail: error.to_string(),
                record: record.signed().clone(),
            });
        } else if hold.len() < HELD_RECORDS_PER_DEVICE_MAX {
            hold.push(record);
        }
    }
    (append, hold, broken)
}

/// A record at a stored `seq` with other bytes: a forgery if it does not verify, a fork if it
/// does.
fn judge_below_head(
    device: &DeviceId,
    key: &PublicKey,
    seq: Seq,
    stored: &StoredChain,
    signed: &SignedRecord,
) -> NewAnomaly {
    let (reason, detail) = match signed.verify(key) {
        Err(error) => (AnomalyReason::BadRecord, error.to_string()),
        Ok(record) if record.device() != device => (
            AnomalyReason::WrongDevice,
            format!("record belongs to device {}", record.device()),
        ),
        Ok(record) => (
            AnomalyReason::Fork,
            match stored.stored_below_head.get(&seq) {
                Some(kept) => format!(
                    "fork at seq {seq}: {} stored, {} refused",
                    kept.payload_hash(),
                    record.hash()
                ),
                None => format!("seq {seq} is below the stored head but not stored"),
            },
        ),
    };
    NewAnomaly {
        seq: Some(seq),
        reason,
        detail,
        record: signed.clone(),
    }
}

/// The chain error that refused the record pushed at `position` claiming `seq`.
fn refusal_of(errors: &[ChainError], position: usize, seq: Option<Seq>) -> Option<&ChainError> {
    errors.iter().find(|error| match error {
        ChainError::Record { position: at, .. } => *at == position,
        ChainError::WrongDevice { seq: at, .. } | ChainError::Fork { seq: at, .. } => {
            Some(*at) == seq
        }
        _ => false,
    })
}
