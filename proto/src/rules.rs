//! The rules both sides apply to a record, written once: what it does to balances ([`effect`])
//! and the line of a day close it counts on ([`close_entry`], summed by a [`CloseTally`]).
//!
//! The kiosk's ledger writes each record's movement with [`effect`] and its day close sums its
//! records with a [`CloseTally`]; the back-office moves balances with the same [`effect`] and
//! recomputes a kiosk's Z record with the same tally, so a close can only match its records if
//! both sides read them alike.

use std::collections::BTreeMap;

use crate::crypto::Digest;
use crate::ids::{AccountId, BracketId, MealType, Seq, ServiceDate, StaffId};
use crate::limits::DAY_CLOSE_LINES_MAX;
use crate::money::Cents;
use crate::record::{
    CloseCategory, CloseLine, DayClose, GrandTotals, MealVia, RecordBody, TopUpMethod,
};

/// What a record does to balances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Credit (positive) or debit (negative) an account.
    Move { account: AccountId, amount: Cents },
    /// Reverse every movement of this kiosk's record at `seq`, if it is the one with `hash`.
    Reverse { seq: Seq, hash: Digest },
    /// Audit events move no money.
    None,
}

/// Balances move only by records: a meal debits its price, a top-up credits its amount, a void
/// reverses the record it names. A meal's price is at most [`crate::limits::MEAL_PRICE_CENTS_MAX`]
/// in every record that parsed or was signed; a body built by hand with the one price that has
/// no negation (`i64::MIN`) moves nothing rather than wrapping.
pub fn effect(body: &RecordBody) -> Effect {
    match body {
        RecordBody::Meal(meal) => match meal.price.checked_neg() {
            Ok(amount) => Effect::Move {
                account: meal.account.clone(),
                amount,
            },
            Err(_) => Effect::None,
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

/// A line of a day close: its category, and the meal type and bracket of a meal's line.
pub type CloseKey = (CloseCategory, Option<MealType>, Option<BracketId>);

/// A line's count of records and the sum of their amounts.
pub type CloseSum = (u32, Cents);

/// What a record does to the cash drawer. Kept as a direction and an amount, so no rule
/// negates an amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drawer {
    Untouched,
    In(Cents),
    Out(Cents),
}

/// Where a record counts in a day close.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseEntry {
    pub key: CloseKey,
    /// What the line's total gains: a meal's price, a top-up's amount, or, for a void, the
    /// voided record's.
    pub amount: Cents,
    pub drawer: Drawer,
}

/// The line `body` counts on, with its amount and its effect on the cash drawer. A void counts
/// on the line of what it voids: `voided` is the body of the record it names, when known. None
/// for audit records, day closes, and voids of an unknown record or of anything but a meal or a
/// top-up.
pub fn close_entry(body: &RecordBody, voided: Option<&RecordBody>) -> Option<CloseEntry> {
    match (body, voided) {
        (RecordBody::Meal(meal), _) => {
            let category = match meal.via {
                MealVia::Card(_) => CloseCategory::MealByCard,
                MealVia::Staff(_) => CloseCategory::MealByStaff,
            };
            Some(meal_entry(category, meal))
        }
        (RecordBody::TopUp(top_up), _) => {
            let (category, drawer) = match top_up.method {
                TopUpMethod::Cash => (CloseCategory::TopUpCash, Drawer::In(top_up.amount)),
                TopUpMethod::Cheque => (CloseCategory::TopUpCheque, Drawer::Untouched),
            };
            Some(top_up_entry(category, top_up.amount, drawer))
        }
        (RecordBody::Void(_), Some(RecordBody::Meal(meal))) => {
            Some(meal_entry(CloseCategory::VoidedMeal, meal))
        }
        (RecordBody::Void(_), Some(RecordBody::TopUp(top_up))) => {
            let drawer = match top_up.method {
                TopUpMethod::Cash => Drawer::Out(top_up.amount),
                TopUpMethod::Cheque => Drawer::Untouched,
            };
            Some(top_up_entry(
                CloseCategory::VoidedTopUp,
                top_up.amount,
                drawer,
            ))
        }
        _ => None,
    }
}

fn meal_entry(category: CloseCategory, meal: &crate::record::Meal) -> CloseEntry {
    CloseEntry {
        key: (
            category,
            Some(meal.meal_type.clone()),
            Some(meal.bracket.clone()),
        ),
        amount: meal.price,
        drawer: Drawer::Untouched,
    }
}

fn top_up_entry(category: CloseCategory, amount: Cents, drawer: Drawer) -> CloseEntry {
    CloseEntry {
        key: (category, None, None),
        amount,
        drawer,
    }
}

/// A tally's lines summed by kind and means of payment ([`CloseTally::totals`]): what was
/// taken, and what of it was voided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CloseTotals {
    /// Meals served, by card or by staff.
    pub meal_count: u64,
    pub meals: Cents,
    pub voided_meals: Cents,
    /// Cash top-ups taken.
    pub cash_count: u64,
    pub cash: Cents,
    pub voided_cash: Cents,
    /// Cheque top-ups taken.
    pub cheque_count: u64,
    pub cheques: Cents,
    pub voided_cheques: Cents,
}

/// A day close could not be made from a tally.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CloseError {
    #[error("day close: totals overflow")]
    Overflow,
    #[error("day close: more than {DAY_CLOSE_LINES_MAX} lines")]
    TooManyLines,
}

/// A day close being counted, record by record: its lines, the cash expected in the drawer, and
/// whether any sum left its range (the sum then stays as it was, and the tally makes no close).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CloseTally {
    lines: BTreeMap<CloseKey, CloseSum>,
    cash_expected: Cents,
    overflowed: bool,
}

impl CloseTally {
    /// Counts `body` on its line ([`close_entry`]); `voided` is the body a void names, when
    /// known. A record that counts on no line changes nothing.
    pub fn count(&mut self, body: &RecordBody, voided: Option<&RecordBody>) {
        if let Some(entry) = close_entry(body, voided) {
            self.add(entry);
        }
    }

    fn add(&mut self, entry: CloseEntry) {
        let (count, total) = self.lines.entry(entry.key).or_insert((0, Cents::ZERO));
        match (count.checked_add(1), total.checked_add(entry.amount)) {
            (Some(next_count), Ok(next_total)) => (*count, *total) = (next_count, next_total),
            _ => self.overflowed = true,
        }
        let cash = match entry.drawer {
            Drawer::Untouched => Ok(self.cash_expected),
            Drawer::In(amount) => self.cash_expected.checked_add(amount),
            Drawer::Out(amount) => self.cash_expected.checked_sub(amount),
        };
        match cash {
            Ok(cash) => self.cash_expected = cash,
            Err(_) => self.overflowed = true,
        }
    }

    /// Every line counted so far, in the order a day close lists them.
    pub fn lines(&self) -> &BTreeMap<CloseKey, CloseSum> {
        &self.lines
    }

    /// Cash top-ups less voided cash top-ups.
    pub fn cash_expected(&self) -> Cents {
        self.cash_expected
    }

    /// Whether a count or a sum left its range.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// The lines summed by kind and means of payment, as reports and journals show them.
    /// Voided cash is the cash taken less the cash expected; the other voided top-ups were
    /// cheques.
    pub fn totals(&self) -> Result<CloseTotals, CloseError> {
        if self.overflowed {
            return Err(CloseError::Overflow);
        }
        let mut totals = CloseTotals::default();
        let mut voided_top_ups = Cents::ZERO;
        for ((category, _, _), (count, total)) in &self.lines {
            let (counted, sum) = match category {
                CloseCategory::MealByCard | CloseCategory::MealByStaff => {
                    (Some(&mut totals.meal_count), &mut totals.meals)
                }
                CloseCategory::VoidedMeal => (None, &mut totals.voided_meals),
                CloseCategory::TopUpCash => (Some(&mut totals.cash_count), &mut totals.cash),
                CloseCategory::TopUpCheque => (Some(&mut totals.cheque_count), &mut totals.cheques),
                CloseCategory::VoidedTopUp => (None, &mut voided_top_ups),
            };
            if let Some(counted) = counted {
                *counted = counted
                    .checked_add(u64::from(*count))
                    .ok_or(CloseError::Overflow)?;
            }
            *sum = sum.checked_add(*total).map_err(|_| CloseError::Overflow)?;
        }
        let overflow = |_| CloseError::Overflow;
        totals.voided_cash = totals
            .cash
            .checked_sub(self.cash_expected)
            .map_err(overflow)?;
        totals.voided_cheques = voided_top_ups
            .checked_sub(totals.voided_cash)
            .map_err(overflow)?;
        Ok(totals)
    }

    /// The grand totals a close of these lines carries: `previous` (the previous close's, or
    /// the default, all zero, for a kiosk's first) plus the lines.
    pub fn grand_totals_after(&self, previous: &GrandTotals) -> Result<GrandTotals, CloseError> {
        if self.overflowed {
            return Err(CloseError::Overflow);
        }
        let mut totals = previous.clone();
        for ((category, _, _), (count, total)) in &self.lines {
            let sum = match category {
                CloseCategory::MealByCard | CloseCategory::MealByStaff => {
                    totals.meal_count = totals
                        .meal_count
                        .checked_add(u64::from(*count))
                        .ok_or(CloseError::Overflow)?;
                    &mut totals.meals
                }
                CloseCategory::TopUpCash | CloseCategory::TopUpCheque => &mut totals.top_ups,
                CloseCategory::VoidedMeal | CloseCategory::VoidedTopUp => &mut totals.voided,
            };
            *sum = sum.checked_add(*total).map_err(|_| CloseError::Overflow)?;
        }
        Ok(totals)
    }

    /// The Z record of the records counted: the close of `service_date` by `staff`, after the
    /// close at `previous_close` whose grand totals were `previous_totals`, with `cash_counted`
    /// in the drawer.
    pub fn day_close(
        &self,
        service_date: ServiceDate,
        staff: StaffId,
        previous_close: Option<Seq>,
        previous_totals: &GrandTotals,
        cash_counted: Cents,
    ) -> Result<DayClose, CloseError> {
        let grand_totals = self.grand_totals_after(previous_totals)?;
        if self.lines.len() > DAY_CLOSE_LINES_MAX {
            return Err(CloseError::TooManyLines);
        }
        let cash_difference = cash_counted
            .checked_sub(self.cash_expected)
            .map_err(|_| CloseError::Overflow)?;
        Ok(DayClose {
            service_date,
            staff,
            previous_close,
            lines: self.lines.iter().map(close_line).collect(),
            cash_expected: self.cash_expected,
            cash_counted,
            cash_difference,
            grand_totals,
        })
    }
}

fn close_line(
    ((category, meal_type, bracket), (count, total)): (&CloseKey, &CloseSum),
) -> CloseLine {
    CloseLine {
        category: *category,
        meal_type: meal_type.clone(),
        bracket: bracket.clone(),
        count: *count,
        total: *total,
    }
}

/// The lines a signed day close claims, keyed as a [`CloseTally`] keys them, to compare one with
/// the other line by line.
pub fn lines_of(close: &DayClose) -> BTreeMap<CloseKey, CloseSum> {
    close
        .lines
        .iter()
        .map(|line| {
            (
                (line.category, line.meal_type.clone(), line.bracket.clone()),
                (line.count, line.total),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeSet;

    use super::*;
    use crate::ids::{CardUid, PupilId, ServiceId, SnapshotVersion, Text, Timestamp};
    use crate::record::{
        ClockChange, ClockDrift, ConfigChange, KioskStart, Meal, OfflineEnd, OfflineStart,
        RecordKind, RefusalReason, SnapshotApplied, StaffLockout, StaffSignIn, StaffSignOut,
        TapRefused, TopUp, Void,
    };

    const CASH: TopUpMethod = TopUpMethod::Cash;
    const CHEQUE: TopUpMethod = TopUpMethod::Cheque;

    fn account() -> AccountId {
        AccountId::parse("A1").unwrap()
    }

    fn staff() -> StaffId {
        StaffId::parse("S1").unwrap()
    }

    fn card() -> CardUid {
        CardUid::from_hex("04a1b2c3").unwrap()
    }

    fn at() -> Timestamp {
        Timestamp::from_unix_ms(1_796_036_400_000).unwrap()
    }

    /// A meal of `meal_type` for a pupil of `bracket`, by card or, with `by_staff`, without one.
    fn meal(meal_type: &str, bracket: &str, price: i64, by_staff: bool) -> RecordBody {
        RecordBody::Meal(Meal {
            service: ServiceId::parse("lunch").unwrap(),
            service_date: ServiceDate::parse("2026-11-30").unwrap(),
            meal_type: MealType::parse(meal_type).unwrap(),
            account: account(),
            pupil: PupilId::parse("P1").unwrap(),
            bracket: BracketId::parse(bracket).unwrap(),
            price: Cents::new(price),
            balance_after: Cents::ZERO,
            via: if by_staff {
                MealVia::Staff(staff())
            } else {
                MealVia::Card(card())
            },
        })
    }

    fn lunch(price: i64) -> RecordBody {
        meal("lunch", "q3", price, false)
    }

    fn top_up(method: TopUpMethod, amount: i64) -> RecordBody {
        RecordBody::TopUp(TopUp {
            account: account(),
            amount: Cents::new(amount),
            method,
            staff: staff(),
            reference: None,
        })
    }

    fn void(seq: u64) -> RecordBody {
        RecordBody::Void(Void {
            voided_seq: Seq::new(seq).unwrap(),
            voided_hash: Digest::of(b"voided"),
            staff: staff(),
            reason: Text::parse("wrong pupil").unwrap(),
        })
    }

    /// One body of every kind that moves no money and counts on no close line.
    fn audit_bodies() -> Vec<RecordBody> {
        let text = |text: &str| Text::parse(text).unwrap();
        vec![
            RecordBody::DayClose(
                CloseTally::default()
                    .day_close(
                        ServiceDate::parse("2026-11-30").unwrap(),
                        staff(),
                        None,
                        &GrandTotals::default(),
                        Cents::ZERO,
                    )
                    .unwrap(),
            ),
            RecordBody::KioskStart(KioskStart {
                software_version: text("0.1.0"),
            }),
            RecordBody::OfflineStart(OfflineStart { last_sync: None }),
            RecordBody::OfflineEnd(OfflineEnd {
                offline_since: at(),
            }),
            RecordBody::SnapshotApplied(SnapshotApplied {
                version: SnapshotVersion(3),
                full: true,
            }),
            RecordBody::StaffSignIn(StaffSignIn { staff: staff() }),
            RecordBody::StaffSignOut(StaffSignOut {
                staff: staff(),
                automatic: false,
            }),
            RecordBody::StaffLockout(StaffLockout {
                card: card(),
                failed_attempts: 5,
            }),
            RecordBody::ConfigChange(ConfigChange {
                key: text("volume"),
                old: None,
                new: Some(text("3")),
            }),
            RecordBody::ClockChange(ClockChange {
                previous: at(),
                current: at(),
            }),
            RecordBody::ClockDrift(ClockDrift {
                backoffice_time: at(),
                drift_ms: 90_000,
            }),
            RecordBody::TapRefused(TapRefused {
                card: card(),
                reason: RefusalReason::InsufficientFunds,
                service: None,
            }),
        ]
    }

    fn key(category: CloseCategory, meal: Option<(&str, &str)>) -> CloseKey {
        let (meal_type, bracket) = match meal {
            Some((meal_type, bracket)) => (
                Some(MealType::parse(meal_type).unwrap()),
                Some(BracketId::parse(bracket).unwrap()),
            ),
            None => (None, None),
        };
        (category, meal_type, bracket)
    }

    #[test]
    fn totals_split_top_ups_and_their_voids_by_means_of_payment() {
        let mut tally = CloseTally::default();
        tally.count(&lunch(385), None);
        tally.count(&meal("lunch", "q1", 120, true), None);
        tally.count(&void(1), Some(&lunch(385)));
        tally.count(&top_up(CASH, 1_000), None);
        tally.count(&top_up(CHEQUE, 2_000), None);
        tally.count(&top_up(CASH, 500), None);
        tally.count(&void(6), Some(&top_up(CASH, 500)));
        tally.count(&void(5), Some(&top_up(CHEQUE, 2_000)));
        let cents = Cents::new;
        assert_eq!(
            tally.totals().unwrap(),
            CloseTotals {
                meal_count: 2,
                meals: cents(505),
                voided_meals: cents(385),
                cash_count: 2,
                cash: cents(1_500),
                voided_cash: cents(500),
                cheque_count: 1,
                cheques: cents(2_000),
                voided_cheques: cents(2_000),
            }
        );
        assert_eq!(tally.cash_expected(), cents(1_000));
    }

    #[test]
    fn every_record_kind_has_its_effect_on_balances() {
        fn check(body: &RecordBody, expected: &Effect) {
            assert_eq!(&effect(body), expected, "{body:?}");
        }
        let moves = |amount: i64| Effect::Move {
            account: account(),
            amount: Cents::new(amount),
        };
        check(&lunch(385), &moves(-385));
        check(&meal("dinner", "q1", 120, true), &moves(-120));
        check(&lunch(0), &moves(0));
        check(&lunch(i64::MAX), &moves(-i64::MAX));
        // The one price without a negation: no movement rather than a wrapped one.
        check(&lunch(i64::MIN), &Effect::None);
        check(&top_up(CASH, 2_000), &moves(2_000));
        check(&top_up(CHEQUE, 1), &moves(1));
        check(
            &void(7),
            &Effect::Reverse {
                seq: Seq::new(7).unwrap(),
                hash: Digest::of(b"voided"),
            },
        );
        for body in audit_bodies() {
            check(&body, &Effect::None);
        }
        let kinds: BTreeSet<RecordKind> = [lunch(1), top_up(CASH, 1), void(1)]
            .iter()
            .chain(&audit_bodies())
            .map(RecordBody::kind)
            .collect();
        assert_eq!(kinds, RecordKind::ALL.into_iter().collect());
    }

    #[test]
    fn every_record_kind_counts_on_its_close_line() {
        use CloseCategory::{
            MealByCard, MealByStaff, TopUpCash, TopUpCheque, VoidedMeal, VoidedTopUp,
        };
        use Drawer::{In, Out, Untouched};
        fn check(body: &RecordBody, voided: Option<&RecordBody>, expected: Option<CloseEntry>) {
            assert_eq!(
                close_entry(body, voided),
                expected,
                "{body:?} voiding {voided:?}"
            );
        }
        let line = |category, meal, amount, drawer| {
            Some(CloseEntry {
                key: key(category, meal),
                amount: Cents::new(amount),
                drawer,
            })
        };
        let (lunch_q3, dinner_q1) = (Some(("lunch", "q3")), Some(("dinner", "q1")));
        let cash = Cents::new(2_000);
        let by_staff = meal("lunch", "q3", 385, true);
        let cases = [
            (lunch(385), None, line(MealByCard, lunch_q3, 385, Untouched)),
            (
                meal("dinner", "q1", 120, true),
                None,
                line(MealByStaff, dinner_q1, 120, Untouched),
            ),
            (
                top_up(CASH, 2_000),
                None,
                line(TopUpCash, None, 2_000, In(cash)),
            ),
            (
                top_up(CHEQUE, 1_500),
                None,
                line(TopUpCheque, None, 1_500, Untouched),
            ),
            // A void counts on the line of what it voids, whoever served the meal.
            (
                void(3),
                Some(by_staff),
                line(VoidedMeal, lunch_q3, 385, Untouched),
            ),
            (
                void(3),
                Some(top_up(CASH, 2_000)),
                line(VoidedTopUp, None, 2_000, Out(cash)),
            ),
            (
                void(3),
                Some(top_up(CHEQUE, 2_000)),
                line(VoidedTopUp, None, 2_000, Untouched),
            ),
            // A void of an unknown record or of a void counts nowhere.
            (void(3), None, None),
            (void(3), Some(void(2)), None),
        ];
        for (body, voided, expected) in cases {
            check(&body, voided.as_ref(), expected);
        }
        // Nor does an audit record, or a void of one.
        for body in audit_bodies() {
            check(&void(3), Some(&body), None);
            check(&body, None, None);
            check(&body, Some(&lunch(385)), None);
        }
    }

    /// What a tally of some records says: its lines, the cash expected, and the grand totals
    /// after the previous ones.
    #[derive(Debug, PartialEq, Eq)]
    struct Counted {
        lines: Vec<(CloseKey, CloseSum)>,
        cash_expected: i64,
        grand_totals: Result<GrandTotals, CloseError>,
        overflowed: bool,
    }

    fn tally(records: &[(RecordBody, Option<RecordBody>)]) -> CloseTally {
        let mut tally = CloseTally::default();
        for (body, voided) in records {
            tally.count(body, voided.as_ref());
        }
        tally
    }

    fn totals(meal_count: u64, meals: i64, top_ups: i64, voided: i64) -> GrandTotals {
        GrandTotals {
            meal_count,
            meals: Cents::new(meals),
            top_ups: Cents::new(top_ups),
            voided: Cents::new(voided),
        }
    }

    #[test]
    fn a_tally_sums_lines_cash_and_grand_totals() {
        fn check(
            records: &[(RecordBody, Option<RecordBody>)],
            previous: &GrandTotals,
            expected: &Counted,
        ) {
            let tally = tally(records);
            let counted = Counted {
                lines: tally.lines().clone().into_iter().collect(),
                cash_expected: tally.cash_expected().get(),
                grand_totals: tally.grand_totals_after(previous),
                overflowed: tally.overflowed(),
            };
            assert_eq!(&counted, expected, "{records:?}");
        }
        let zero = GrandTotals::default();
        let lunch_q3 = Some(("lunch", "q3"));
        let line = |key: CloseKey, count: u32, total: i64| (key, (count, Cents::new(total)));
        check(
            &[],
            &zero,
            &Counted {
                lines: vec![],
                cash_expected: 0,
                grand_totals: Ok(zero.clone()),
                overflowed: false,
            },
        );
        check(
            &[
                (lunch(385), None),
                (lunch(385), None),
                (meal("lunch", "q1", 120, true), None),
                (top_up(CASH, 2_000), None),
                (top_up(CHEQUE, 1_500), None),
                (void(1), Some(lunch(385))),
                (void(4), Some(top_up(CASH, 2_000))),
                (void(9), None),
            ]
            .into_iter()
            .chain(audit_bodies().into_iter().map(|body| (body, None)))
            .collect::<Vec<_>>(),
            &totals(10, 1_000, 500, 100),
            &Counted {
                lines: vec![
                    line(key(CloseCategory::MealByCard, lunch_q3), 2, 770),
                    line(
                        key(CloseCategory::MealByStaff, Some(("lunch", "q1"))),
                        1,
                        120,
                    ),
                    line(key(CloseCategory::TopUpCash, None), 1, 2_000),
                    line(key(CloseCategory::TopUpCheque, None), 1, 1_500),
                    line(key(CloseCategory::VoidedMeal, lunch_q3), 1, 385),
                    line(key(CloseCategory::VoidedTopUp, None), 1, 2_000),
                ],
                cash_expected: 0,
                grand_totals: Ok(totals(13, 1_890, 4_000, 2_485)),
                overflowed: false,
            },
        );
        // A void of a cash top-up counted before: the drawer goes below zero, as it did.
        check(
            &[(void(1), Some(top_up(CASH, 500)))],
            &zero,
            &Counted {
                lines: vec![line(key(CloseCategory::VoidedTopUp, None), 1, 500)],
                cash_expected: -500,
                grand_totals: Ok(totals(0, 0, 0, 500)),
                overflowed: false,
            },
        );
        // Grand totals carried from a previous close that leave no room overflow, whichever.
        for previous in [
            totals(u64::MAX, 0, 0, 0),
            totals(0, i64::MAX, 0, 0),
            totals(0, 0, i64::MAX, 0),
            totals(0, 0, 0, i64::MAX),
        ] {
            check(
                &[
                    (lunch(1), None),
                    (top_up(CHEQUE, 1), None),
                    (void(1), Some(lunch(1))),
                ],
                &previous,
                &Counted {
                    lines: vec![
                        line(key(CloseCategory::MealByCard, lunch_q3), 1, 1),
                        line(key(CloseCategory::TopUpCheque, None), 1, 1),
                        line(key(CloseCategory::VoidedMeal, lunch_q3), 1, 1),
                    ],
                    cash_expected: 0,
                    grand_totals: Err(CloseError::Overflow),
                    overflowed: false,
                },
            );
        }
        // A line's total that leaves its range stays as it was, and the tally says so.
        check(
            &[(lunch(i64::MAX), None), (lunch(1), None)],
            &zero,
            &Counted {
                lines: vec![line(key(CloseCategory::MealByCard, lunch_q3), 1, i64::MAX)],
                cash_expected: 0,
                grand_totals: Err(CloseError::Overflow),
                overflowed: true,
            },
        );
        // So does the cash drawer, each way.
        for (first, second) in [
            (top_up(CASH, i64::MAX), top_up(CASH, 1)),
            (top_up(CASH, i64::MIN + 1), top_up(CASH, -2)),
        ] {
            let tally = tally(&[(void(1), Some(first)), (void(2), Some(second))]);
            assert!(tally.overflowed());
        }
        let tally = tally(&[(top_up(CASH, i64::MAX), None), (top_up(CHEQUE, 1), None)]);
        assert!(!tally.overflowed());
        assert_eq!(tally.cash_expected(), Cents::new(i64::MAX));
    }

    #[test]
    fn a_day_close_is_the_tally_with_cash_counted() {
        fn check(
            records: &[(RecordBody, Option<RecordBody>)],
            cash_counted: i64,
            expected: Result<(i64, i64), CloseError>,
        ) {
            let tally = tally(records);
            let previous_close = Some(Seq::new(12).unwrap());
            let close = tally.day_close(
                ServiceDate::parse("2026-11-30").unwrap(),
                staff(),
                previous_close,
                &totals(1, 2, 3, 4),
                Cents::new(cash_counted),
            );
            let (cash_expected, cash_difference) = match expected {
                Ok(cash) => cash,
                Err(error) => {
                    assert_eq!(close.err(), Some(error), "{records:?}");
                    return;
                }
            };
            let close = close.unwrap();
            assert_eq!(close.cash_expected, Cents::new(cash_expected));
            assert_eq!(close.cash_counted, Cents::new(cash_counted));
            assert_eq!(close.cash_difference, Cents::new(cash_difference));
            assert_eq!(close.previous_close, previous_close);
            assert_eq!(close.staff, staff());
            assert_eq!(
                Ok(close.grand_totals.clone()),
                tally.grand_totals_after(&totals(1, 2, 3, 4))
            );
            assert_eq!(&lines_of(&close), tally.lines());
        }
        check(&[], 0, Ok((0, 0)));
        check(&[(top_up(CASH, 2_000), None)], 1_990, Ok((2_000, -10)));
        check(
            &[(lunch(385), None), (top_up(CHEQUE, 500), None)],
            25,
            Ok((0, 25)),
        );
        check(
            &[(top_up(CASH, 1), None)],
            i64::MIN,
            Err(CloseError::Overflow),
        );
        check(
            &[(lunch(i64::MAX), None), (lunch(1), None)],
            0,
            Err(CloseError::Overflow),
        );
        let brackets = |count: usize| -> Vec<(RecordBody, Option<RecordBody>)> {
            (0..count)
                .map(|n| (meal("lunch", &format!("b{n}"), 100, false), None))
                .collect()
        };
        check(&brackets(DAY_CLOSE_LINES_MAX), 0, Ok((0, 0)));
        check(
            &brackets(DAY_CLOSE_LINES_MAX + 1),
            0,
            Err(CloseError::TooManyLines),
        );
    }
}
