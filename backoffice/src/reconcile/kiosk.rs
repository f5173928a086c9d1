//! One kiosk's day: its chain from the previous day close (every link, the anchors'
//! signatures), revocation and late uploads, the day's sums record by record, its day close (Z)
//! recomputed line by line, and its cash.

use std::collections::{BTreeMap, BTreeSet};

use proto::record::{CloseCategory, DayClose, GrandTotals, Meal, MealVia, RefusalReason, Void};
use proto::rules::{self, CloseKey, CloseTally};
use proto::{
    AccountId, BracketId, Cents, ChainError, ChainHead, MealType, Payload, PupilId, Record,
    RecordBody, Seq, ServiceDate, ServiceId, SignedRecord, Timestamp,
};

use super::day::{Day, KioskInput};
use super::report::{Finding, FindingKind, KioskDay, PaymentMethod};
use crate::limits::{FINDINGS_PER_KIND_PER_KIOSK_MAX, LATE_UPLOAD_GRACE_MS};
use crate::store::{Device, StoredRecord};

/// A meal seen in a kiosk's day, for the cross-kiosk duplicate check. Its signed record is
/// read again only if it is a duplicate: a day's meals are most of its records.
#[derive(Clone, Debug)]
pub(super) struct MealSeen {
    pub(super) key: (ServiceDate, ServiceId, PupilId),
    pub(super) at: Timestamp,
    /// The kiosk's index in the report's kiosks, which are in device order.
    pub(super) kiosk: usize,
    pub(super) seq: Seq,
    /// The hash of its payload, which names the stored record exactly.
    pub(super) hash: proto::Digest,
    pub(super) account: AccountId,
    pub(super) price: Cents,
}

/// Meals of one meal type and bracket.
#[derive(Clone, Debug, Default)]
pub(super) struct LineSum {
    pub(super) count: u64,
    pub(super) total: Cents,
    pub(super) voided_count: u64,
    pub(super) voided_total: Cents,
}

/// One kiosk's checked day.
#[derive(Debug)]
pub(super) struct KioskOutcome {
    pub(super) kiosk: KioskDay,
    pub(super) findings: Vec<Finding>,
    pub(super) meal_lines: BTreeMap<(MealType, BracketId), LineSum>,
    pub(super) top_ups: BTreeMap<PaymentMethod, (u64, Cents)>,
    pub(super) voided_meals: Cents,
    pub(super) meals: Vec<MealSeen>,
    pub(super) records_checked: u64,
}

/// Verifies a kiosk's day and sums it. Runs on a blocking thread.
pub(super) fn check(
    input: KioskInput,
    day: &Day,
    floors: &BTreeMap<AccountId, Cents>,
) -> KioskOutcome {
    let device = &input.device;
    let mut findings = Findings::new(device);
    let start = chain_start(&input, &mut findings);
    // Signatures: the previous close is verified on its own (`chain_start`); within the range
    // only the anchor (this day's close, or the last record of a day not closed) has its
    // signature checked, and every record linked to it by the SHA-256 `prev` chain is covered
    // by it: a record edited, deleted, inserted or reordered anywhere before the anchor changes
    // a hash the signed anchor commits to. Records not linked to a verified anchor are
    // verified one by one, so every defect is reported as a full check reports it
    // (`proto::verify_anchored`).
    let report = proto::verify_anchored(
        &device.id,
        &device.key,
        start.head,
        input.records.iter().map(|stored| &stored.record),
        input.close,
    );
    for error in &report.errors {
        chain_finding(&mut findings, error, &input.records, input.close);
    }
    revocation(&input, &mut findings);
    late_upload(&input, day, &mut findings);
    let mut sums = DaySums::default();
    for record in &report.records {
        sums.add(record, &report.records, &input, floors, &mut findings);
    }
    let close = check_close(&input, day, &start, &sums, &mut findings);
    if input.expected && input.records.is_empty() && input.close.is_none() {
        findings.push(
            FindingKind::NotUploaded,
            None,
            format!(
                "expected to trade on {} but no record of the day is stored",
                day.date
            ),
            Vec::new(),
        );
    }
    let lines = ReportLines::of(&sums.tally);
    if lines.overflowed {
        findings.push(
            FindingKind::DayCloseMismatch,
            input.close,
            "the day's totals overflow".to_owned(),
            Vec::new(),
        );
    }
    let records_checked =
        start.records_checked + u64::try_from(input.records.len()).unwrap_or(u64::MAX);
    outcome(&input, sums, lines, close, findings, records_checked)
}

/// Where the chain continues from: after the previous day close (whose signature is checked on
/// its own), or, for a day not closed, at its first record.
struct ChainStart {
    head: ChainHead,
    /// The grand totals carried from the previous close; none when it did not verify.
    previous_totals: Option<GrandTotals>,
    previous_close: Option<Seq>,
    records_checked: u64,
}

fn chain_start(input: &KioskInput, findings: &mut Findings<'_>) -> ChainStart {
    let mut start = ChainStart {
        head: ChainHead::GENESIS,
        previous_totals: Some(GrandTotals::default()),
        previous_close: None,
        records_checked: 0,
    };
    if let Some(anchor) = &input.anchor {
        start.records_checked = 1;
        start.previous_close = Some(anchor.seq);
        match anchor.record.verify(&input.device.key) {
            Ok(record) => {
                start.head = ChainHead::after(&record);
                start.previous_totals = match &record.payload().body {
                    RecordBody::DayClose(close) => Some(close.grand_totals.clone()),
                    _ => None,
                };
            }
            Err(error) => {
                findings.push(
                    FindingKind::ForgedDayClose,
                    Some(anchor.seq),
                    format!("previous day close: {error}"),
                    vec![anchor.record.clone()],
                );
                start.head = ChainHead {
                    next_seq: anchor.seq.next(),
                    prev: anchor.record.payload_hash(),
                };
                start.previous_totals = None;
            }
        }
    } else if let Some(first) = input.records.first()
        && first.seq != Seq::FIRST
    {
        // A day not closed is checked from its first record.
        start.head = ChainHead {
            next_seq: first.seq,
            prev: Payload::parse(&first.record.payload)
                .map(|payload| payload.prev)
                .unwrap_or(proto::Digest::ZERO),
        };
    }
    start
}

/// Nothing may be signed after a revocation. (Records signed before it may still arrive by
/// hand, from the kiosk's export.)
fn revocation(input: &KioskInput, findings: &mut Findings<'_>) {
    let Some(revoked_at) = input.device.revoked_at else {
        return;
    };
    let after: Vec<&StoredRecord> = input
        .records
        .iter()
        .filter(|record| record.kiosk_at >= revoked_at)
        .collect();
    if let Some(first) = after.first() {
        findings.push(
            FindingKind::SignedAfterRevocation,
            Some(first.seq),
            format!(
                "{} record(s) signed after the key was revoked at {revoked_at}",
                after.len()
            ),
            after.iter().map(|record| record.record.clone()).collect(),
        );
    }
}

/// Records of the day received more than [`LATE_UPLOAD_GRACE_MS`] after it ended.
fn late_upload(input: &KioskInput, day: &Day, findings: &mut Findings<'_>) {
    let late_after = day.end.unix_ms().saturating_add(LATE_UPLOAD_GRACE_MS);
    let late: Vec<&StoredRecord> = input
        .records
        .iter()
        .filter(|record| record.received_at.unix_ms() > late_after)
        .collect();
    if let (Some(first), Some(last)) = (late.first(), late.last()) {
        findings.push(
            FindingKind::LateUpload,
            Some(first.seq),
            format!(
                "{} record(s) of the day received after {} (seq {} to {}, last received {})",
                late.len(),
                Timestamp::from_unix_ms(late_after)
                    .map_or_else(|_| String::new(), |t| t.to_string()),
                first.seq,
                last.seq,
                last.received_at
            ),
            vec![first.record.clone()],
        );
    }
}

/// The day's sums over the records that verified: the day close as the kiosk's own rule counts
/// it ([`CloseTally`]), from which the report's lines are read, and the meals seen.
#[derive(Debug, Default)]
struct DaySums {
    /// Meals voided by this day's voids.
    voided: BTreeSet<Seq>,
    tally: CloseTally,
    meals: Vec<MealSeen>,
    /// The day close of this day, as the kiosk signed it.
    day_close: Option<DayClose>,
}

impl DaySums {
    /// Adds one verified record; `records` are all of them, in `seq` order, one per `seq`.
    fn add(
        &mut self,
        record: &Record,
        records: &[Record],
        input: &KioskInput,
        floors: &BTreeMap<AccountId, Cents>,
        findings: &mut Findings<'_>,
    ) {
        let seq = record.seq();
        let signed = record.signed();
        let body = &record.payload().body;
        match body {
            RecordBody::Meal(meal) => self.meal(record, meal, floors, findings),
            RecordBody::Void(void) => {
                let voided = self.void(seq, signed, void, records, input, findings);
                self.tally.count(body, voided.as_ref());
                return;
            }
            RecordBody::DayClose(close) if Some(seq) == input.close => {
                self.day_close = Some(close.clone());
            }
            RecordBody::TapRefused(refused) => {
                let kind = match refused.reason {
                    RefusalReason::BlockedCard => Some(FindingKind::BlockedCard),
                    RefusalReason::UnknownCard => Some(FindingKind::UnknownCard),
                    RefusalReason::InsufficientFunds => None,
                };
                if let Some(kind) = kind {
                    let detail = format!("card {} refused", refused.card);
                    findings.push(kind, Some(seq), detail, vec![signed.clone()]);
                }
            }
            RecordBody::ClockDrift(drift) => findings.push(
                FindingKind::ClockDrift,
                Some(seq),
                format!(
                    "kiosk clock {} ms from the back-office's at {}",
                    drift.drift_ms, drift.backoffice_time
                ),
                vec![signed.clone()],
            ),
            RecordBody::ClockChange(change) => findings.push(
                FindingKind::ClockDrift,
                Some(seq),
                format!(
                    "kiosk clock moved from {} to {}",
                    change.previous, change.current
                ),
                vec![signed.clone()],
            ),
            _ => {}
        }
        self.tally.count(body, None);
    }

    fn meal(
        &mut self,
        record: &Record,
        meal: &Meal,
        floors: &BTreeMap<AccountId, Cents>,
        findings: &mut Findings<'_>,
    ) {
        let seq = record.seq();
        if let MealVia::Staff(staff) = &meal.via {
            findings.push(
                FindingKind::ServedWithoutCard,
                Some(seq),
                format!(
                    "pupil {} served by staff {staff} without a card",
                    meal.pupil
                ),
                vec![record.signed().clone()],
            );
        }
        if let Some(floor) = floors.get(&meal.account)
            && meal.balance_after < *floor
        {
            findings.push(
                FindingKind::Overdraft,
                Some(seq),
                format!(
                    "account {} at {} cents after the meal, below its floor of {} cents",
                    meal.account,
                    meal.balance_after.get(),
                    floor.get()
                ),
                vec![record.signed().clone()],
            );
        }
        self.meals.push(MealSeen {
            key: (meal.service_date, meal.service.clone(), meal.pupil.clone()),
            at: record.payload().at,
            kiosk: 0,
            seq,
            hash: record.hash(),
            account: meal.account.clone(),
            price: meal.price,
        });
    }

    /// A void is a finding with what it voids as evidence; returns the voided record's body,
    /// found among the day's records or read before them, on whose line the void counts.
    fn void(
        &mut self,
        seq: Seq,
        signed: &SignedRecord,
        void: &Void,
        records: &[Record],
        input: &KioskInput,
        findings: &mut Findings<'_>,
    ) -> Option<RecordBody> {
        let target = records
            .binary_search_by_key(&void.voided_seq, Record::seq)
            .ok()
            .map(|index| &records[index])
            .map(|record| (record.payload().body.clone(), record.signed().clone()))
            .or_else(|| {
                let voided = input.voided_before.get(&void.voided_seq)?;
                let payload = Payload::parse(&voided.payload).ok()?;
                Some((payload.body, voided.clone()))
            });
        let mut evidence = vec![signed.clone()];
        if let Some((body, voided_record)) = &target
            && matches!(body, RecordBody::Meal(_) | RecordBody::TopUp(_))
        {
            if matches!(body, RecordBody::Meal(_)) {
                self.voided.insert(void.voided_seq);
            }
            evidence.push(voided_record.clone());
        }
        findings.push(
            FindingKind::Void,
            Some(seq),
            format!(
                "seq {} voided by staff {}: {}",
                void.voided_seq, void.staff, void.reason
            ),
            evidence,
        );
        target.map(|(body, _)| body)
    }
}

/// The report's lines of a kiosk's day, read from its close tally: meals per meal type and
/// bracket with their voids, top-ups per means of payment net of voids, and the meals voided.
#[derive(Debug, Default)]
struct ReportLines {
    meal_lines: BTreeMap<(MealType, BracketId), LineSum>,
    top_ups: BTreeMap<PaymentMethod, (u64, Cents)>,
    voided_meals: Cents,
    meal_count: u64,
    /// A sum left its range.
    overflowed: bool,
}

impl ReportLines {
    fn of(tally: &CloseTally) -> ReportLines {
        let mut lines = ReportLines::default();
        for ((category, meal_type, bracket), (count, total)) in tally.lines() {
            let Some(key) = meal_type.clone().zip(bracket.clone()) else {
                continue;
            };
            let line = lines.meal_lines.entry(key).or_default();
            match category {
                CloseCategory::MealByCard | CloseCategory::MealByStaff => {
                    line.count += u64::from(*count);
                    line.total = add(&mut lines.overflowed, line.total, *total);
                }
                CloseCategory::VoidedMeal => {
                    line.voided_count += u64::from(*count);
                    line.voided_total = add(&mut lines.overflowed, line.voided_total, *total);
                }
                _ => {}
            }
        }
        let Ok(totals) = tally.totals() else {
            lines.overflowed = true;
            return lines;
        };
        (lines.meal_count, lines.voided_meals) = (totals.meal_count, totals.voided_meals);
        for (method, count, taken, voided) in [
            (
                PaymentMethod::Cash,
                totals.cash_count,
                totals.cash,
                totals.voided_cash,
            ),
            (
                PaymentMethod::Cheque,
                totals.cheque_count,
                totals.cheques,
                totals.voided_cheques,
            ),
        ] {
            match taken.checked_sub(voided) {
                Ok(net) if count > 0 || net != Cents::ZERO => {
                    lines.top_ups.insert(method, (count, net));
                }
                Ok(_) => {}
                Err(_) => lines.overflowed = true,
            }
        }
        lines
    }
}

/// `sum + amount`, or `sum` with `overflowed` set when that leaves the range.
fn add(overflowed: &mut bool, sum: Cents, amount: Cents) -> Cents {
    sum.checked_add(amount).unwrap_or_else(|_| {
        *overflowed = true;
        sum
    })
}

/// What the day close says beside the records: whether it matches, and its cash.
#[derive(Debug, Default)]
struct CloseCheck {
    matches: Option<bool>,
    cash_counted: Option<Cents>,
    cash_difference: Option<Cents>,
}

/// Recomputes the day close line by line from the records and compares it with the one the
/// kiosk signed; a day with records and no close is a finding.
fn check_close(
    input: &KioskInput,
    day: &Day,
    start: &ChainStart,
    sums: &DaySums,
    findings: &mut Findings<'_>,
) -> CloseCheck {
    let mut check = CloseCheck::default();
    match (&sums.day_close, input.close) {
        (Some(close), Some(close_seq)) => {
            let differences = close_differences(close, start, sums);
            let evidence: Vec<SignedRecord> = input
                .records
                .iter()
                .find(|record| record.seq == close_seq)
                .map(|record| vec![record.record.clone()])
                .unwrap_or_default();
            check.matches = Some(differences.is_empty());
            if !differences.is_empty() {
                findings.push(
                    FindingKind::DayCloseMismatch,
                    Some(close_seq),
                    differences.join("; "),
                    evidence.clone(),
                );
            }
            check.cash_counted = Some(close.cash_counted);
            check.cash_difference = Some(close.cash_difference);
            if close.cash_difference != Cents::ZERO {
                findings.push(
                    FindingKind::CashDifference,
                    Some(close_seq),
                    format!(
                        "counted {} cents, expected {} cents: difference {} cents",
                        close.cash_counted.get(),
                        close.cash_expected.get(),
                        close.cash_difference.get()
                    ),
                    evidence,
                );
            }
        }
        // The close is stored but did not verify: already named by its chain finding.
        (None, Some(_)) => check.matches = Some(false),
        (_, None) => {
            if !input.records.is_empty() {
                findings.push(
                    FindingKind::NoDayClose,
                    input.records.last().map(|record| record.seq),
                    format!("no day close for {}", day.date),
                    Vec::new(),
                );
            }
        }
    }
    check
}

/// How the signed close differs from the records, line by line.
fn close_differences(close: &DayClose, start: &ChainStart, sums: &DaySums) -> Vec<String> {
    let mut differences = Vec::new();
    if close.previous_close != start.previous_close {
        differences.push(format!(
            "previous close {:?}, the chain's is {:?}",
            close.previous_close.map(Seq::get),
            start.previous_close.map(Seq::get)
        ));
    }
    let claimed = rules::lines_of(close);
    let counted = sums.tally.lines();
    let keys: BTreeSet<&CloseKey> = claimed.keys().chain(counted.keys()).collect();
    for key in keys {
        let said = claimed.get(key).copied().unwrap_or((0, Cents::ZERO));
        let found = counted.get(key).copied().unwrap_or((0, Cents::ZERO));
        if said != found {
            differences.push(format!(
                "{:?} {} {}: close says {} for {} cents, records {} for {} cents",
                key.0,
                key.1.as_ref().map_or("-", MealType::as_str),
                key.2.as_ref().map_or("-", BracketId::as_str),
                said.0,
                said.1.get(),
                found.0,
                found.1.get()
            ));
        }
    }
    if close.cash_expected != sums.tally.cash_expected() {
        differences.push(format!(
            "cash expected: close says {}, records {}",
            close.cash_expected.get(),
            sums.tally.cash_expected().get()
        ));
    }
    if let Some(previous) = &start.previous_totals {
        let expected_totals = sums.tally.grand_totals_after(previous).ok();
        if expected_totals.as_ref() != Some(&close.grand_totals) {
            differences.push(format!(
                "grand totals: close says {:?}, previous close plus records {:?}",
                close.grand_totals, expected_totals
            ));
        }
    }
    differences
}

fn outcome(
    input: &KioskInput,
    sums: DaySums,
    lines: ReportLines,
    close: CloseCheck,
    findings: Findings<'_>,
    records_checked: u64,
) -> KioskOutcome {
    let mut revenue = Cents::ZERO;
    for sum in lines.meal_lines.values() {
        revenue = revenue
            .checked_add(sum.total)
            .and_then(|total| total.checked_sub(sum.voided_total))
            .unwrap_or(revenue);
    }
    let chain_clean = !findings.list.iter().any(|finding| finding.kind.is_defect());
    let voided = &sums.voided;
    KioskOutcome {
        kiosk: KioskDay {
            device: input.device.id.clone(),
            site: input.device.site.clone(),
            expected: input.expected,
            first_seq: input.records.first().map(|record| record.seq),
            last_seq: input.records.last().map(|record| record.seq),
            records: u64::try_from(input.records.len()).unwrap_or(u64::MAX),
            day_close: input.close,
            close_matches: close.matches,
            cash_expected: sums.tally.cash_expected(),
            cash_counted: close.cash_counted,
            cash_difference: close.cash_difference,
            meals: lines.meal_count,
            revenue,
            chain_clean,
        },
        findings: findings.finish(),
        meals: sums
            .meals
            .into_iter()
            .filter(|meal| !voided.contains(&meal.seq))
            .collect(),
        meal_lines: lines.meal_lines,
        top_ups: lines.top_ups,
        voided_meals: lines.voided_meals,
        records_checked,
    }
}

/// Collects one kiosk's findings, capped per kind at [`FINDINGS_PER_KIND_PER_KIOSK_MAX`].
pub(super) struct Findings<'a> {
    device: &'a Device,
    list: Vec<Finding>,
    per_kind: BTreeMap<FindingKind, usize>,
}

impl<'a> Findings<'a> {
    fn new(device: &'a Device) -> Findings<'a> {
        Findings {
            device,
            list: Vec::new(),
            per_kind: BTreeMap::new(),
        }
    }

    fn push(
        &mut self,
        kind: FindingKind,
        seq: Option<Seq>,
        detail: String,
        evidence: Vec<SignedRecord>,
    ) {
        let count = self.per_kind.entry(kind).or_insert(0);
        *count += 1;
        if *count > FINDINGS_PER_KIND_PER_KIOSK_MAX {
            return;
        }
        self.list.push(Finding {
            kind,
            site: Some(self.device.site.clone()),
            device: Some(self.device.id.clone()),
            seq,
            detail,
            action: kind.action().to_owned(),
            evidence,
        });
    }

    fn finish(mut self) -> Vec<Finding> {
        for (kind, count) in &self.per_kind {
            if *count > FINDINGS_PER_KIND_PER_KIOSK_MAX {
                self.list.push(Finding {
                    kind: FindingKind::FindingsCapped,
                    site: Some(self.device.site.clone()),
                    device: Some(self.device.id.clone()),
                    seq: None,
                    detail: format!(
                        "{} more findings of kind {kind:?} not listed",
                        count - FINDINGS_PER_KIND_PER_KIOSK_MAX
                    ),
                    action: FindingKind::FindingsCapped.action().to_owned(),
                    evidence: Vec::new(),
                });
            }
        }
        self.list
    }
}

/// Names a chain defect as a finding, with the stored record concerned as evidence.
fn chain_finding(
    findings: &mut Findings<'_>,
    error: &ChainError,
    records: &[StoredRecord],
    close: Option<Seq>,
) {
    let evidence_at = |seq: Seq| -> Vec<SignedRecord> {
        records
            .iter()
            .filter(|record| record.record.claimed_seq() == Some(seq))
            .map(|record| record.record.clone())
            .collect()
    };
    let seq = error.seq();
    let (evidence, is_close) = match error {
        ChainError::Record { position, .. } => {
            let evidence: Vec<SignedRecord> = records
                .get(*position)
                .map(|record| vec![record.record.clone()])
                .unwrap_or_default();
            let is_close =
                seq.is_some() && seq == close || evidence.first().is_some_and(is_day_close);
            (evidence, is_close)
        }
        ChainError::Gap { .. } | ChainError::Truncated { .. } => (Vec::new(), false),
        _ => (seq.map(evidence_at).unwrap_or_default(), false),
    };
    let kind = chain_error_kind(error, is_close);
    findings.push(kind, seq, error.to_string(), evidence);
}

/// The finding that names a chain defect; `is_close` when the record concerned claims to be a
/// day close.
pub fn chain_error_kind(error: &ChainError, is_close: bool) -> FindingKind {
    use proto::RecordError;
    match error {
        ChainError::Record {
            error: RecordError::BadSignature | RecordError::SignatureEncoding,
            ..
        } if is_close => FindingKind::ForgedDayClose,
        ChainError::Record {
            error: RecordError::BadSignature | RecordError::SignatureEncoding,
            ..
        } => FindingKind::BadSignature,
        ChainError::Record { .. } => FindingKind::BadRecord,
        ChainError::WrongDevice { .. } => FindingKind::WrongDevice,
        ChainError::Duplicate { .. } => FindingKind::DuplicateRecord,
        ChainError::Fork { .. } => FindingKind::Fork,
        ChainError::Reorder { .. } | ChainError::BeforeStart { .. } => {
            FindingKind::ReorderedRecords
        }
        ChainError::Gap { .. } => FindingKind::Gap,
        ChainError::BrokenLink { .. } => FindingKind::BrokenLink,
        ChainError::Truncated { .. } => FindingKind::Truncated,
    }
}

/// Whether a record, read without trusting it, claims to be a day close.
pub fn is_day_close(record: &SignedRecord) -> bool {
    record.payload.contains(r#""kind":"day_close""#)
}
