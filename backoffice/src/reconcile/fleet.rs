//! What spans kiosks: the day's sums per site, meal type and bracket and per means of payment,
//! duplicate meals across kiosks (each a proposed void), records refused at ingest and gaps
//! still open, and the ledger (opening balance of all accounts plus the day's movements is the
//! closing balance).

use std::collections::{BTreeMap, HashMap, HashSet};

use proto::{
    BracketId, Cents, DeviceId, MealType, PupilId, Seq, ServiceDate, ServiceId, SignedRecord,
    SiteId, Timestamp,
};
use serde::Deserialize;

use super::day::Day;
use super::kiosk::{KioskOutcome, MealSeen};
use super::report::{
    BalanceCheck, Finding, FindingKind, KioskDay, MealLine, PaymentMethod, SiteDay, TopUpLine,
    TopUpSource,
};
use super::{ReconcileError, add, overflow};
use crate::store::{
    ChainRows, LedgerTotals, Mode, ProposedVoid, Store, StoredOperation, StoredRecord, VoidStatus,
};

/// The kiosks' outcomes summed: what the report lists beside its findings.
#[derive(Debug, Default)]
pub(super) struct Totals {
    pub(super) records_checked: u64,
    /// In device order.
    pub(super) kiosks: Vec<KioskDay>,
    pub(super) sites: BTreeMap<SiteId, SiteDay>,
    pub(super) meal_lines: BTreeMap<(SiteId, MealType, BracketId), MealLine>,
    pub(super) top_ups: BTreeMap<(TopUpSource, PaymentMethod), (u64, Cents)>,
    pub(super) findings: Vec<Finding>,
    /// Meals not voided, for the duplicate check across kiosks.
    pub(super) meals: Vec<MealSeen>,
}

impl Totals {
    /// Sums the kiosks' outcomes, sorted by device; a kiosk neither expected nor heard from is
    /// left out.
    pub(super) fn of(mut outcomes: Vec<KioskOutcome>) -> Result<Totals, ReconcileError> {
        outcomes.sort_by(|a, b| a.kiosk.device.cmp(&b.kiosk.device));
        let mut totals = Totals::default();
        for outcome in outcomes {
            totals.records_checked += outcome.records_checked;
            if !outcome.kiosk.expected && outcome.kiosk.records == 0 {
                continue;
            }
            totals.add(outcome)?;
        }
        Ok(totals)
    }

    fn add(&mut self, outcome: KioskOutcome) -> Result<(), ReconcileError> {
        let kiosk = outcome.kiosk;
        self.findings.extend(outcome.findings);
        for ((meal_type, bracket), line) in outcome.meal_lines {
            let entry = self
                .meal_lines
                .entry((kiosk.site.clone(), meal_type.clone(), bracket.clone()))
                .or_insert_with(|| MealLine {
                    site: kiosk.site.clone(),
                    meal_type,
                    bracket,
                    count: 0,
                    total: Cents::ZERO,
                    voided_count: 0,
                    voided_total: Cents::ZERO,
                });
            entry.count += line.count;
            entry.total = add(entry.total, line.total)?;
            entry.voided_count += line.voided_count;
            entry.voided_total = add(entry.voided_total, line.voided_total)?;
        }
        for (method, (count, amount)) in &outcome.top_ups {
            self.add_top_up((TopUpSource::Kiosk, *method), *count, *amount)?;
        }
        let top_up = |method| {
            outcome
                .top_ups
                .get(&method)
                .map_or(Cents::ZERO, |line| line.1)
        };
        let summary = self
            .sites
            .entry(kiosk.site.clone())
            .or_insert_with(|| SiteDay {
                site: Some(kiosk.site.clone()),
                ..SiteDay::default()
            });
        summary.kiosks += 1;
        summary.meals += kiosk.meals;
        summary.revenue = add(summary.revenue, kiosk.revenue)?;
        summary.voided_meals = add(summary.voided_meals, outcome.voided_meals)?;
        summary.top_ups_cash = add(summary.top_ups_cash, top_up(PaymentMethod::Cash))?;
        summary.top_ups_cheque = add(summary.top_ups_cheque, top_up(PaymentMethod::Cheque))?;
        summary.cash_expected = add(summary.cash_expected, kiosk.cash_expected)?;
        let counted = kiosk.cash_counted.unwrap_or(Cents::ZERO);
        summary.cash_counted = add(summary.cash_counted, counted)?;
        let difference = kiosk.cash_difference.unwrap_or(Cents::ZERO);
        summary.cash_difference = add(summary.cash_difference, difference)?;
        let index = self.kiosks.len();
        self.meals
            .extend(outcome.meals.into_iter().map(|meal| MealSeen {
                kiosk: index,
                ..meal
            }));
        self.kiosks.push(kiosk);
        Ok(())
    }

    fn add_top_up(
        &mut self,
        key: (TopUpSource, PaymentMethod),
        count: u64,
        amount: Cents,
    ) -> Result<(), ReconcileError> {
        let entry = self.top_ups.entry(key).or_insert((0, Cents::ZERO));
        entry.0 += count;
        entry.1 = add(entry.1, amount)?;
        Ok(())
    }

    /// Adds the back-office's operations of the day to the top-ups, and checks the ledger:
    /// the adjustments of the day and the balance check.
    pub(super) fn ledger(
        &mut self,
        operations: Vec<StoredOperation>,
        ledger: LedgerTotals,
    ) -> Result<(Cents, BalanceCheck), ReconcileError> {
        let mut adjustments = Cents::ZERO;
        for operation in operations {
            let line = match operation.kind.as_str() {
                "top_up" if operation.detail.starts_with("cheque") => {
                    Some((TopUpSource::Counter, PaymentMethod::Cheque))
                }
                "top_up" => Some((TopUpSource::Counter, PaymentMethod::Cash)),
                "online_payment" => Some((TopUpSource::Online, PaymentMethod::Online)),
                _ => None,
            };
            match line {
                Some(key) => self.add_top_up(key, 1, operation.amount)?,
                None => adjustments = add(adjustments, operation.amount)?,
            }
        }
        let opening = ledger.before;
        let closing = ledger
            .balances_now
            .checked_sub(ledger.after)
            .map_err(|_| overflow())?;
        let holds = add(opening, ledger.during)? == closing;
        if !holds {
            self.findings.push(Finding {
                kind: FindingKind::BalanceMismatch,
                site: None,
                device: None,
                seq: None,
                detail: format!(
                    "opening {} + movements {} != closing {} (sum of balances now {} minus \
                     movements after the day {})",
                    opening.get(),
                    ledger.during.get(),
                    closing.get(),
                    ledger.balances_now.get(),
                    ledger.after.get()
                ),
                action: FindingKind::BalanceMismatch.action().to_owned(),
                evidence: Vec::new(),
            });
        }
        let check = BalanceCheck {
            opening,
            movements: ledger.during,
            closing,
            holds,
        };
        Ok((adjustments, check))
    }

    /// Meals charged minus meals voided.
    pub(super) fn revenue(&self) -> Result<Cents, ReconcileError> {
        let mut revenue = Cents::ZERO;
        for line in self.meal_lines.values() {
            let net = line
                .total
                .checked_sub(line.voided_total)
                .map_err(|_| overflow())?;
            revenue = add(revenue, net)?;
        }
        Ok(revenue)
    }

    pub(super) fn top_up_lines(&self) -> Vec<TopUpLine> {
        self.top_ups
            .iter()
            .map(|((source, method), (count, total))| TopUpLine {
                source: *source,
                method: *method,
                count: *count,
                total: *total,
            })
            .collect()
    }
}

/// The same pupil served in the same service more than once: every meal after the first
/// becomes a proposed void. The two signed records are read from the store as evidence.
pub(super) async fn duplicate_meals<S: Store>(
    store: &S,
    date: ServiceDate,
    meals: &[MealSeen],
    kiosks: &[KioskDay],
    findings: &mut Vec<Finding>,
) -> Result<Vec<ProposedVoid>, ReconcileError> {
    let mut proposals = Vec::new();
    for (kept, meal) in repeated_meals(meals) {
        let (kept_kiosk, kiosk) = (&kiosks[kept.kiosk], &kiosks[meal.kiosk]);
        let mut evidence = Vec::new();
        for (device, seen) in [(&kept_kiosk.device, kept), (&kiosk.device, meal)] {
            evidence.extend(stored_record(store, device, seen.seq, seen.hash).await?);
        }
        findings.push(Finding {
            kind: FindingKind::DuplicateMeal,
            site: Some(kiosk.site.clone()),
            device: Some(kiosk.device.clone()),
            seq: Some(meal.seq),
            detail: format!(
                "pupil {} served twice in service {} of {}: first at {} seq {} ({}), again at \
                 {} seq {} ({}); a void of the second is proposed",
                meal.key.2,
                meal.key.1,
                meal.key.0,
                kept_kiosk.device,
                kept.seq,
                kept.at,
                kiosk.device,
                meal.seq,
                meal.at
            ),
            action: FindingKind::DuplicateMeal.action().to_owned(),
            evidence,
        });
        proposals.push(ProposedVoid {
            id: 0,
            date,
            device: kiosk.device.clone(),
            seq: meal.seq,
            kept_device: kept_kiosk.device.clone(),
            kept_seq: kept.seq,
            account: meal.account.clone(),
            pupil: meal.key.2.clone(),
            service: meal.key.1.clone(),
            amount: meal.price,
            status: VoidStatus::Pending,
            decided_by: None,
            decided_at: None,
            correction_date: None,
        });
    }
    Ok(proposals)
}

/// Every meal served to a pupil already served in the same service, with the first meal of
/// that service, which stands: the earliest, then in kiosk and `seq` order.
fn repeated_meals(meals: &[MealSeen]) -> Vec<(&MealSeen, &MealSeen)> {
    // Only meals that share their key with another can be duplicates: a day's million meals
    // are counted by key, and the few left are sorted. Kiosks are in device order, so their
    // index orders meals as their device would.
    let mut served: HashMap<&(ServiceDate, ServiceId, PupilId), u32> =
        HashMap::with_capacity(meals.len());
    for meal in meals {
        *served.entry(&meal.key).or_insert(0) += 1;
    }
    let shared: HashSet<&(ServiceDate, ServiceId, PupilId)> = served
        .into_iter()
        .filter(|(_, count)| *count > 1)
        .map(|(key, _)| key)
        .collect();
    let mut meals: Vec<&MealSeen> = meals
        .iter()
        .filter(|meal| shared.contains(&meal.key))
        .collect();
    meals.sort_by(|a, b| (&a.key, a.at, a.kiosk, a.seq).cmp(&(&b.key, b.at, b.kiosk, b.seq)));
    let mut repeated = Vec::new();
    let mut first = 0;
    for index in 0..meals.len() {
        if meals[index].key != meals[first].key {
            first = index;
        } else if index != first {
            repeated.push((meals[first], meals[index]));
        }
    }
    repeated
}

/// The stored record of `device` whose payload hashes to `hash`, normally stored at `seq`.
async fn stored_record<S: Store>(
    store: &S,
    device: &DeviceId,
    seq: Seq,
    hash: proto::Digest,
) -> Result<Option<SignedRecord>, ReconcileError> {
    let is_it = |stored: &StoredRecord| stored.record.payload_hash() == hash;
    let at_seq = store
        .begin(Mode::Single)
        .await?
        .record_range(device, seq, Some(seq))
        .await?;
    if let Some(found) = at_seq.into_iter().find(is_it) {
        return Ok(Some(found.record));
    }
    // Another record is stored at `seq` (the stored chain was reordered): look through it all.
    Ok(store
        .begin(Mode::Single)
        .await?
        .record_range(device, Seq::FIRST, None)
        .await?
        .into_iter()
        .find(is_it)
        .map(|stored| stored.record))
}

/// Records the store refused at ingest whose kiosk time falls in the day, and gaps still open,
/// for the kiosks of the report.
pub(super) async fn quarantined<S: Store>(
    store: &S,
    site: Option<&SiteId>,
    kiosks: &[KioskDay],
    day: &Day,
    findings: &mut Vec<Finding>,
) -> Result<(), ReconcileError> {
    let in_scope: BTreeMap<&DeviceId, &SiteId> = kiosks
        .iter()
        .map(|kiosk| (&kiosk.device, &kiosk.site))
        .collect();
    #[derive(Deserialize)]
    struct At {
        at: Option<Timestamp>,
    }
    for anomaly in crate::ingest::anomalies(store).await? {
        let Some(kiosk_site) = in_scope.get(&anomaly.device) else {
            continue;
        };
        if site.is_some_and(|site| site != *kiosk_site) {
            continue;
        }
        let (kind, include) = match &anomaly.evidence {
            None => (FindingKind::Gap, true),
            Some(evidence) => {
                let at = serde_json::from_str::<At>(&evidence.payload)
                    .ok()
                    .and_then(|at| at.at);
                let include = at.is_some_and(|at| at >= day.start && at < day.end);
                (FindingKind::Quarantined, include)
            }
        };
        if !include {
            continue;
        }
        findings.push(Finding {
            kind,
            site: Some((*kiosk_site).clone()),
            device: Some(anomaly.device.clone()),
            seq: anomaly.seq,
            detail: format!("{}: {}", anomaly.reason.as_str(), anomaly.detail),
            action: kind.action().to_owned(),
            evidence: anomaly.evidence.into_iter().collect(),
        });
    }
    Ok(())
}
