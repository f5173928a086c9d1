//! The money side of an upload, pure: what the appended records do to balances (each record's
//! [`effect`], the rule the kiosk's ledger applies too), with checked arithmetic, a void
//! reversing exactly the movements of the record it names, once.

use std::collections::{BTreeMap, BTreeSet};

use proto::rules::{Effect, effect};
use proto::{AccountId, Cents, Digest, Record, Seq};

use crate::store::rows::chain::{AnomalyReason, Movement};

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

/// One movement a record asks for: the account, the amount, and the record it reverses.
type Move = (AccountId, Cents, Option<Seq>);

/// A record that moves no money, with the reason and the detail.
type Refusal = (AnomalyReason, String);

/// Applies the effects of `append`, in order, to the balances in `before`, with checked
/// arithmetic: the same rules as applying them one by one.
pub fn apply_effects(append: &[Record], before: LedgerBefore) -> LedgerAfter {
    let mut applying = Applying {
        before,
        after: LedgerAfter::default(),
        batch_hashes: BTreeMap::new(),
        batch_movements: BTreeMap::new(),
    };
    for record in append {
        let seq = record.seq();
        applying.batch_hashes.insert(seq, record.hash());
        let moves = match effect(&record.payload().body) {
            Effect::None => Ok(Vec::new()),
            Effect::Move { account, amount } => Ok(vec![(account, amount, None)]),
            Effect::Reverse { seq: voided, hash } => applying.reversal(voided, &hash),
        };
        let applied = moves.and_then(|moves| applying.apply(seq, moves));
        if let Err((reason, detail)) = applied {
            applying.after.anomalies.push((seq, reason, detail));
        }
    }
    applying.after
}

/// The balances being moved by a batch, and the batch's own records for voids within it.
struct Applying {
    before: LedgerBefore,
    after: LedgerAfter,
    batch_hashes: BTreeMap<Seq, Digest>,
    batch_movements: BTreeMap<Seq, Vec<(AccountId, Cents)>>,
}

impl Applying {
    /// The moves that reverse the record at `voided`, if it is the one with `hash` and was not
    /// reversed before; marks it reversed (a void whose amounts cannot be negated keeps it
    /// marked: nothing else may reverse it either).
    fn reversal(&mut self, voided: Seq, hash: &Digest) -> Result<Vec<Move>, Refusal> {
        let stored = self
            .batch_hashes
            .get(&voided)
            .or_else(|| self.before.voided_hashes.get(&voided));
        if stored != Some(hash) {
            return Err((
                AnomalyReason::VoidUnmatched,
                format!("void of seq {voided} ({hash}) matches no stored record"),
            ));
        }
        if !self.before.already_reversed.insert(voided) {
            return Err((
                AnomalyReason::VoidRepeated,
                format!("seq {voided} was already voided"),
            ));
        }
        let voided_moves = self
            .batch_movements
            .get(&voided)
            .or_else(|| self.before.voided_movements.get(&voided))
            .cloned()
            .unwrap_or_default();
        let mut reversed = Vec::new();
        for (account, amount) in voided_moves {
            let negated = amount.checked_neg().map_err(|_| {
                (
                    AnomalyReason::BalanceOverflow,
                    format!("reversing {} cents overflows", amount.get()),
                )
            })?;
            reversed.push((account, negated, Some(voided)));
        }
        Ok(reversed)
    }

    /// Applies every move of the record at `seq`, or none: each is checked first.
    fn apply(&mut self, seq: Seq, moves: Vec<Move>) -> Result<(), Refusal> {
        let mut new_balances = Vec::new();
        let checked = moves.iter().try_for_each(|(account, amount, _)| {
            let balance = self
                .after
                .balances
                .get(account)
                .or_else(|| self.before.balances.get(account))
                .copied()
                .ok_or_else(|| {
                    (
                        AnomalyReason::UnknownAccount,
                        format!("account {account} does not exist"),
                    )
                })?;
            let new_balance = balance.checked_add(amount.get()).ok_or_else(|| {
                (
                    AnomalyReason::BalanceOverflow,
                    format!(
                        "account {account}: {balance} + {} cents overflows",
                        amount.get()
                    ),
                )
            })?;
            new_balances.push((account.clone(), new_balance));
            Ok(())
        });
        if let Err(refusal) = checked {
            // The void did not move money: the record it names may still be voided.
            if let Some(voided) = moves.first().and_then(|(_, _, reverses)| *reverses) {
                self.before.already_reversed.remove(&voided);
            }
            return Err(refusal);
        }
        self.after.balances.extend(new_balances);
        for (account, amount, reverses) in moves {
            self.batch_movements
                .entry(seq)
                .or_default()
                .push((account.clone(), amount));
            self.after.movements.push(Movement {
                account,
                amount,
                seq,
                reverses,
            });
        }
        Ok(())
    }
}
