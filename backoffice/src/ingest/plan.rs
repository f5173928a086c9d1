//! The judgement of an upload, pure: what a batch of a kiosk's signed records does to what the
//! store already holds (append, hold beyond a gap, count as duplicates, quarantine), and what
//! the appended records do to balances. [`super::ingest`] reads the inputs and writes the plan
//! in one transaction, the same way on both databases.

use std::collections::{BTreeMap, BTreeSet};

use crate::limits::HELD_RECORDS_PER_DEVICE_MAX;
use crate::store::rows::chain::{AnomalyReason, Movement, NewAnomaly};
use proto::{
    AccountId, Cents, ChainError, ChainHead, ChainVerifier, CheckedRecord, DeviceId, Digest,
    PublicKey, Record, RecordBody, Seq, SignedRecord,
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

    // A copy counts as a duplicate only with the same signature too: the same payload under
    // another signature is a forgery attempt, kept as evidence.
    let accepted: BTreeSet<(Digest, &str)> = report
        .records
        .iter()
        .map(|record| (record.hash(), record.signed().signature.as_str()))
        .collect();
    let broken_links: BTreeSet<Seq> = report
        .errors
        .iter()
        .filter_map(|error| match error {
            ChainError::BrokenLink { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    let mut seen = BTreeSet::new();
    for (position, signed) in pushed.iter().enumerate() {
        let copy = (signed.payload_hash(), signed.signature.as_str());
        if accepted.contains(&copy) {
            if !seen.insert(copy) {
                duplicates += 1;
            }
            continue;
        }
        let Some(error) = refusal_of(&report.errors, position, signed.claimed_seq()) else {
            // Refused for a reason already counted (an identical copy refused before).
            duplicates += 1;
            continue;
        };
        let reason = match error {
            ChainError::Record { .. } => AnomalyReason::BadRecord,
            ChainError::WrongDevice { .. } => AnomalyReason::WrongDevice,
            _ => AnomalyReason::Fork,
        };
        quarantine.push(NewAnomaly {
            seq: signed.claimed_seq(),
            reason,
            detail: error.to_string(),
            record: (*signed).clone(),
        });
    }

    let mut append = Vec::new();
    let mut hold = Vec::new();
    for record in report.records {
        let seq = record.seq();
        if seq < report.head.next_seq {
            append.push(record);
        } else if broken_links.contains(&seq) {
            let detail = report
                .errors
                .iter()
                .find(|error| matches!(error, ChainError::BrokenLink { seq: at, .. } if *at == seq))
                .map_or_else(String::new, ToString::to_string);
            quarantine.push(NewAnomaly {
                seq: Some(seq),
                reason: AnomalyReason::BrokenLink,
                detail,
                record: record.signed().clone(),
            });
        } else if hold.len() < HELD_RECORDS_PER_DEVICE_MAX {
            hold.push(record);
        }
    }
    IngestPlan {
        append,
        hold,
        quarantine,
        duplicates,
        head: report.head,
    }
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

/// What a stored record does to balances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Credit (positive) or debit (negative) an account.
    Move { account: AccountId, amount: Cents },
    /// Reverse every movement of this kiosk's record at `seq`, if it is the one with `hash`.
    Reverse { seq: Seq, hash: Digest },
    /// Audit events move no money.
    None,
}

/// Balances move only by applying stored records: a meal debits its price, a top-up credits
/// its amount, a void reverses the record it names.
pub fn effect(body: &RecordBody) -> Effect {
    match body {
        RecordBody::Meal(meal) => Effect::Move {
            account: meal.account.clone(),
            amount: Cents::new(-meal.price.get()),
        },
        RecordBody::TopUp(top_up) => Effect::Move {
            account: top_up.account.clone(),
            amount: top_up.amount,
        },
        RecordBody::Void(void) => Effect::Reverse {
            seq: void.voided_seq,
            hash: void.voided_hash,
        },
        _ => Effect::None,
    }
}

/// What the store knows, before a batch, of the accounts and records the batch's effects touch.
#[derive(Clone, Debug, Default)]
pub struct LedgerBefore {
    /// The balance of every account the batch names; an account not here does not exist.
    pub balances: BTreeMap<AccountId, i64>,
    /// The stored hash of each record a void of the batch names (if stored before the batch).
    pub voided_hashes: BTreeMap<Seq, Digest>,
    /// The stored movements of those records.
    pub voided_movements: BTreeMap<Seq, Vec<(AccountId, Cents)>>,
    /// Those of them already reversed by an earlier void.
    pub already_reversed: BTreeSet<Seq>,
}

/// The money side of a batch: movements to insert, balances to write, and records that could
/// not move money (with the reason).
#[derive(Clone, Debug, Default)]
pub struct LedgerAfter {
    pub movements: Vec<Movement>,
    /// The new balance of every account that moved.
    pub balances: BTreeMap<AccountId, i64>,
    pub anomalies: Vec<(Seq, AnomalyReason, String)>,
}

/// The accounts named by the batch's meals and top-ups, and the records named by its voids:
/// what a store reads into [`LedgerBefore`].
pub fn ledger_needs(append: &[Record]) -> (BTreeSet<AccountId>, BTreeSet<Seq>) {
    let mut accounts = BTreeSet::new();
    let mut voided = BTreeSet::new();
    for record in append {
        match effect(&record.payload().body) {
            Effect::Move { account, .. } => {
                accounts.insert(account);
            }
            Effect::Reverse { seq, .. } => {
                voided.insert(seq);
            }
            Effect::None => {}
        }
    }
    (accounts, voided)
}

/// Applies the effects of `append`, in order, to the balances in `before`, with checked
/// arithmetic: the same rules as applying them one by one.
pub fn apply_effects(append: &[Record], mut before: LedgerBefore) -> LedgerAfter {
    let mut after = LedgerAfter::default();
    // Records of this batch, for voids of records in the same batch.
    let mut batch_hashes = BTreeMap::new();
    let mut batch_movements: BTreeMap<Seq, Vec<(AccountId, Cents)>> = BTreeMap::new();
    for record in append {
        let seq = record.seq();
        batch_hashes.insert(seq, record.hash());
        let moves: Vec<(AccountId, Cents, Option<Seq>)> = match effect(&record.payload().body) {
            Effect::None => Vec::new(),
            Effect::Move { account, amount } => vec![(account, amount, None)],
            Effect::Reverse { seq: voided, hash } => {
                let stored = batch_hashes
                    .get(&voided)
                    .or_else(|| before.voided_hashes.get(&voided));
                if stored != Some(&hash) {
                    after.anomalies.push((
                        seq,
                        AnomalyReason::VoidUnmatched,
                        format!("void of seq {voided} ({hash}) matches no stored record"),
                    ));
                    continue;
                }
                if !before.already_reversed.insert(voided) {
                    after.anomalies.push((
                        seq,
                        AnomalyReason::VoidRepeated,
                        format!("seq {voided} was already voided"),
                    ));
                    continue;
                }
                let voided_moves = batch_movements
                    .get(&voided)
                    .or_else(|| before.voided_movements.get(&voided))
                    .cloned()
                    .unwrap_or_default();
                let mut reversed = Vec::new();
                for (account, amount) in voided_moves {
                    match amount.checked_neg() {
                        Ok(negated) => reversed.push((account, negated, Some(voided))),
                        Err(_) => {
                            after.anomalies.push((
                                seq,
                                AnomalyReason::BalanceOverflow,
                                format!("reversing {} cents overflows", amount.get()),
                            ));
                            reversed.clear();
                            break;
                        }
                    }
                }
                reversed
            }
        };
        // Check every move of the record first: a record moves all its money or none.
        let mut new_balances = Vec::new();
        let mut refused = None;
        for (account, amount, _) in &moves {
            let balance = after
                .balances
                .get(account)
                .or_else(|| before.balances.get(account))
                .copied();
            let Some(balance) = balance else {
                refused = Some((
                    AnomalyReason::UnknownAccount,
                    format!("account {account} does not exist"),
                ));
                break;
            };
            let Some(new_balance) = balance.checked_add(amount.get()) else {
                refused = Some((
                    AnomalyReason::BalanceOverflow,
                    format!(
                        "account {account}: {balance} + {} cents overflows",
                        amount.get()
                    ),
                ));
                break;
            };
            new_balances.push((account.clone(), new_balance));
        }
        if let Some((reason, detail)) = refused {
            after.anomalies.push((seq, reason, detail));
            if let Some(voided) = moves.first().and_then(|(_, _, reverses)| *reverses) {
                before.already_reversed.remove(&voided);
            }
            continue;
        }
        after.balances.extend(new_balances);
        for (account, amount, reverses) in moves {
            batch_movements
                .entry(seq)
                .or_default()
                .push((account.clone(), amount));
            after.movements.push(Movement {
                account,
                amount,
                seq,
                reverses,
            });
        }
    }
    after
}
