//! The Z record: a kiosk's totals since its previous day close, per category, meal type and
//! bracket, with cash expected and the perpetual grand totals carried forward.

use std::collections::BTreeMap;

use proto::record::{CloseCategory, CloseLine, DayClose, GrandTotals, MealVia, TopUpMethod};
use proto::{
    BracketId, Cents, MealType, Payload, RecordBody, RecordError, Seq, ServiceDate, StaffId,
};

use crate::ledger::{Ledger, LedgerError};

/// A day close could not be computed; nothing was recorded.
#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    #[error("day close: totals overflow")]
    Overflow,
    #[error("day close: more than {max} lines", max = proto::limits::DAY_CLOSE_LINES_MAX)]
    TooManyLines,
    #[error("day close: stored record unreadable: {0}")]
    Record(#[from] RecordError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

type LineKey = (CloseCategory, Option<MealType>, Option<BracketId>);

/// Totals of every record after `previous_close` (all records when none), as the close that
/// follows them.
pub fn compute(
    ledger: &Ledger,
    previous_close: Option<Seq>,
    service_date: ServiceDate,
    staff: StaffId,
    cash_counted: Cents,
) -> Result<DayClose, CloseError> {
    let mut grand_totals = GrandTotals::default();
    if let Some(seq) = previous_close {
        let signed = ledger
            .record(seq)?
            .ok_or(LedgerError::Stored(format!("day close {seq} missing")))?;
        if let RecordBody::DayClose(close) = Payload::parse(&signed.payload)?.body {
            grand_totals = close.grand_totals;
        }
    }
    let mut lines: BTreeMap<LineKey, (u32, Cents)> = BTreeMap::new();
    let mut cash_expected = Cents::ZERO;
    let mut from = previous_close.map_or(Seq::FIRST, Seq::next);
    loop {
        let page = ledger.records(from, None)?;
        let Some(last) = page.last() else { break };
        let last_seq = Payload::parse(&last.payload)?.seq;
        for signed in &page {
            let payload = Payload::parse(&signed.payload)?;
            let Some((key, amount, cash)) = classify(ledger, &payload.body)? else {
                continue;
            };
            let line = lines.entry(key).or_insert((0, Cents::ZERO));
            line.0 = line.0.checked_add(1).ok_or(CloseError::Overflow)?;
            line.1 = line
                .1
                .checked_add(amount)
                .map_err(|_| CloseError::Overflow)?;
            cash_expected = cash_expected
                .checked_add(cash)
                .map_err(|_| CloseError::Overflow)?;
        }
        from = last_seq.next();
    }
    for ((category, _, _), (count, total)) in &lines {
        let add = |sum: Cents| sum.checked_add(*total).map_err(|_| CloseError::Overflow);
        match category {
            CloseCategory::MealByCard | CloseCategory::MealByStaff => {
                grand_totals.meal_count += u64::from(*count);
                grand_totals.meals = add(grand_totals.meals)?;
            }
            CloseCategory::TopUpCash | CloseCategory::TopUpCheque => {
                grand_totals.top_ups = add(grand_totals.top_ups)?;
            }
            CloseCategory::VoidedMeal | CloseCategory::VoidedTopUp => {
                grand_totals.voided = add(grand_totals.voided)?;
            }
        }
    }
    if lines.len() > proto::limits::DAY_CLOSE_LINES_MAX {
        return Err(CloseError::TooManyLines);
    }
    let cash_difference = cash_counted
        .checked_sub(cash_expected)
        .map_err(|_| CloseError::Overflow)?;
    Ok(DayClose {
        service_date,
        staff,
        previous_close,
        lines: lines
            .into_iter()
            .map(
                |((category, meal_type, bracket), (count, total))| CloseLine {
                    category,
                    meal_type,
                    bracket,
                    count,
                    total,
                },
            )
            .collect(),
        cash_expected,
        cash_counted,
        cash_difference,
        grand_totals,
    })
}

/// The close line a record counts on, its amount, and its effect on the cash drawer.
fn classify(
    ledger: &Ledger,
    body: &RecordBody,
) -> Result<Option<(LineKey, Cents, Cents)>, CloseError> {
    Ok(match body {
        RecordBody::Meal(meal) => {
            let category = match meal.via {
                MealVia::Card(_) => CloseCategory::MealByCard,
                MealVia::Staff(_) => CloseCategory::MealByStaff,
            };
            Some((
                (
                    category,
                    Some(meal.meal_type.clone()),
                    Some(meal.bracket.clone()),
                ),
                meal.price,
                Cents::ZERO,
            ))
        }
        RecordBody::TopUp(top_up) => {
            let (category, cash) = match top_up.method {
                TopUpMethod::Cash => (CloseCategory::TopUpCash, top_up.amount),
                TopUpMethod::Cheque => (CloseCategory::TopUpCheque, Cents::ZERO),
            };
            Some(((category, None, None), top_up.amount, cash))
        }
        RecordBody::Void(void) => {
            let voided = ledger
                .record(void.voided_seq)?
                .ok_or(LedgerError::Stored(format!(
                    "voided record {} missing",
                    void.voided_seq
                )))?;
            match Payload::parse(&voided.payload)?.body {
                RecordBody::Meal(meal) => Some((
                    (
                        CloseCategory::VoidedMeal,
                        Some(meal.meal_type),
                        Some(meal.bracket),
                    ),
                    meal.price,
                    Cents::ZERO,
                )),
                RecordBody::TopUp(top_up) => {
                    let cash = match top_up.method {
                        TopUpMethod::Cash => top_up
                            .amount
                            .checked_neg()
                            .map_err(|_| CloseError::Overflow)?,
                        TopUpMethod::Cheque => Cents::ZERO,
                    };
                    Some((
                        (CloseCategory::VoidedTopUp, None, None),
                        top_up.amount,
                        cash,
                    ))
                }
                _ => None,
            }
        }
        _ => None,
    })
}
