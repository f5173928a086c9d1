//! The rows and sums of a period, read from the stored records and operations.

use std::collections::{BTreeMap, BTreeSet};

use proto::record::TopUpMethod;
use proto::rules::CloseTally;
use proto::{Cents, DeviceId, Payload, RecordBody, Seq, ServiceDate, SiteId, Timestamp};

use super::{ExportError, Period};
use crate::reconcile::{self, Day, ReconcileError, Settings};
use crate::store::{DeviceRows, FinanceRows, Mode, Store, StoredOperation};

/// One meal as exported.
#[derive(Debug)]
pub(super) struct MealRow {
    pub(super) date: ServiceDate,
    pub(super) site: SiteId,
    pub(super) device: DeviceId,
    pub(super) seq: Seq,
    pub(super) at: Timestamp,
    pub(super) meal: proto::record::Meal,
    pub(super) voided: bool,
}

/// One top-up as exported: a kiosk's record or a back-office operation.
#[derive(Debug)]
pub(super) struct TopUpRow {
    pub(super) date: ServiceDate,
    pub(super) source: &'static str,
    pub(super) site: Option<SiteId>,
    /// `device/seq` or `operation/id`.
    pub(super) origin: String,
    pub(super) at: Timestamp,
    pub(super) account: String,
    pub(super) amount: Cents,
    pub(super) method: &'static str,
    pub(super) reference: String,
    pub(super) voided: bool,
}

/// Sums of one site and day for the journal.
#[derive(Debug, Default)]
pub(super) struct SiteSums {
    pub(super) meals: i64,
    pub(super) voided_meals: i64,
    pub(super) cash: i64,
    pub(super) voided_cash: i64,
    pub(super) cheques: i64,
    pub(super) voided_cheques: i64,
    pub(super) cash_difference: i64,
}

#[derive(Debug, Default)]
pub(super) struct Rows {
    pub(super) meals: Vec<MealRow>,
    pub(super) top_ups: Vec<TopUpRow>,
    pub(super) sums: BTreeMap<(ServiceDate, String), SiteSums>,
    /// Finance's adjustments per day: credits and debits.
    pub(super) adjustments: BTreeMap<ServiceDate, (i64, i64)>,
}

/// Which rows an export needs: the journal needs only the sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wanted {
    Rows,
    SumsOnly,
}

/// Reads every day's records and operations of the period; payloads are parsed, not verified
/// (the reconciliation verifies). A kiosk's records are parsed on a blocking thread while the
/// next kiosk's are read, at most one kiosk a core in flight; results are taken in kiosk
/// order, so the rows come out as a sequential read would give them.
pub(super) async fn collect<S: Store>(
    store: &S,
    period: Period,
    site: Option<&SiteId>,
    settings: &Settings,
    wanted: Wanted,
) -> Result<Rows, ExportError> {
    let mut rows = Rows::default();
    let devices: Vec<_> = store
        .begin(Mode::Single)
        .await?
        .devices()
        .await?
        .into_iter()
        .filter(|entry| site.is_none_or(|site| &entry.device.site == site))
        .collect();
    let parallel = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    for date in period.dates()? {
        let day = Day::new(date, settings)?;
        let mut pending = std::collections::VecDeque::new();
        for entry in &devices {
            let input =
                reconcile::day::kiosk_input(store, entry.device.clone(), false, &day).await?;
            pending.push_back(tokio::task::spawn_blocking(move || {
                kiosk_rows(input, date, wanted)
            }));
            if pending.len() >= parallel
                && let Some(oldest) = pending.pop_front()
            {
                rows.add(date, joined(oldest.await)?);
            }
        }
        while let Some(oldest) = pending.pop_front() {
            rows.add(date, joined(oldest.await)?);
        }
        if site.is_none() {
            let operations = store
                .begin(Mode::Single)
                .await?
                .operations_between(day.start, day.end)
                .await?;
            rows.add_operations(date, operations);
        }
    }
    Ok(rows)
}

/// One kiosk's rows and sums of a day.
#[derive(Debug)]
pub(super) struct KioskRows {
    pub(super) site: SiteId,
    pub(super) meals: Vec<MealRow>,
    pub(super) top_ups: Vec<TopUpRow>,
    pub(super) sums: SiteSums,
}

impl Rows {
    /// Adds the back-office's operations of `date`: counter and online top-ups as rows and in
    /// the counter's sums, finance's adjustments apart.
    fn add_operations(&mut self, date: ServiceDate, operations: Vec<StoredOperation>) {
        for operation in operations {
            let (source, method) = match operation.kind.as_str() {
                "top_up" if operation.detail.starts_with("cheque") => ("counter", "cheque"),
                "top_up" => ("counter", "cash"),
                "online_payment" => ("online", "online"),
                _ => {
                    let entry = self.adjustments.entry(date).or_insert((0, 0));
                    if operation.amount.get() > 0 {
                        entry.0 += operation.amount.get();
                    } else {
                        entry.1 -= operation.amount.get();
                    }
                    continue;
                }
            };
            let sums = self.sums.entry((date, String::new())).or_default();
            match method {
                "cash" => sums.cash += operation.amount.get(),
                "cheque" => sums.cheques += operation.amount.get(),
                _ => {}
            }
            self.top_ups.push(TopUpRow {
                date,
                source,
                site: None,
                origin: format!("operation/{}", operation.id),
                at: operation.at,
                account: operation.account.to_string(),
                amount: operation.amount,
                method,
                reference: operation.detail,
                voided: false,
            });
        }
    }

    fn add(&mut self, date: ServiceDate, kiosk: KioskRows) {
        let sums = self.sums.entry((date, kiosk.site.to_string())).or_default();
        sums.meals += kiosk.sums.meals;
        sums.voided_meals += kiosk.sums.voided_meals;
        sums.cash += kiosk.sums.cash;
        sums.voided_cash += kiosk.sums.voided_cash;
        sums.cheques += kiosk.sums.cheques;
        sums.voided_cheques += kiosk.sums.voided_cheques;
        sums.cash_difference += kiosk.sums.cash_difference;
        self.meals.extend(kiosk.meals);
        self.top_ups.extend(kiosk.top_ups);
    }
}

fn joined(
    result: Result<Result<KioskRows, ExportError>, tokio::task::JoinError>,
) -> Result<KioskRows, ExportError> {
    result.map_err(|error| ExportError::Reconcile(ReconcileError::Task(error.to_string())))?
}

/// Parses one kiosk's records of `date` into rows, and sums them as the kiosk's day close
/// does ([`CloseTally`]). Runs on a blocking thread.
fn kiosk_rows(
    input: reconcile::day::KioskInput,
    date: ServiceDate,
    wanted: Wanted,
) -> Result<KioskRows, ExportError> {
    let device = input.device.id.clone();
    let parsed: Vec<(Seq, Timestamp, RecordBody)> = input
        .records
        .iter()
        .filter_map(|stored| {
            Payload::parse(&stored.record.payload)
                .ok()
                .map(|payload| (stored.seq, payload.at, payload.body))
        })
        .collect();
    let (sums, voided) = kiosk_sums(&parsed, &input, date)?;
    let mut kiosk = KioskRows {
        site: input.device.site.clone(),
        meals: Vec::new(),
        top_ups: Vec::new(),
        sums,
    };
    for (seq, at, body) in parsed {
        let voided = voided.contains(&seq);
        match body {
            RecordBody::Meal(meal) if wanted == Wanted::Rows => kiosk.meals.push(MealRow {
                date,
                site: kiosk.site.clone(),
                device: device.clone(),
                seq,
                at,
                meal,
                voided,
            }),
            RecordBody::TopUp(top_up) => kiosk.top_ups.push(TopUpRow {
                date,
                source: "kiosk",
                site: Some(kiosk.site.clone()),
                origin: format!("{device}/{seq}"),
                at,
                account: top_up.account.to_string(),
                amount: top_up.amount,
                method: match top_up.method {
                    TopUpMethod::Cash => "cash",
                    TopUpMethod::Cheque => "cheque",
                },
                reference: top_up
                    .reference
                    .as_ref()
                    .map_or_else(String::new, ToString::to_string),
                voided,
            }),
            _ => {}
        }
    }
    Ok(kiosk)
}

/// The kiosk's sums of the day, tallied as its day close does, and the `seq`s its voids name.
fn kiosk_sums(
    parsed: &[(Seq, Timestamp, RecordBody)],
    input: &reconcile::day::KioskInput,
    date: ServiceDate,
) -> Result<(SiteSums, BTreeSet<Seq>), ExportError> {
    let mut voided: BTreeSet<Seq> = BTreeSet::new();
    let mut tally = CloseTally::default();
    let mut cash_difference = 0;
    for (seq, _, body) in parsed {
        let target = match body {
            RecordBody::Void(void) => {
                voided.insert(void.voided_seq);
                voided_body(parsed, input, void.voided_seq)
            }
            RecordBody::DayClose(close) if Some(*seq) == input.close => {
                cash_difference = close.cash_difference.get();
                None
            }
            _ => None,
        };
        tally.count(body, target.as_ref());
    }
    let totals = tally.totals().map_err(|error| ExportError::Period {
        from: date,
        to: date,
        reason: format!("kiosk {}: {error}", input.device.id),
    })?;
    let sums = SiteSums {
        meals: totals.meals.get(),
        voided_meals: totals.voided_meals.get(),
        cash: totals.cash.get(),
        voided_cash: totals.voided_cash.get(),
        cheques: totals.cheques.get(),
        voided_cheques: totals.voided_cheques.get(),
        cash_difference,
    };
    Ok((sums, voided))
}

/// The body of the record at `seq`, among the day's records or read before them.
fn voided_body(
    parsed: &[(Seq, Timestamp, RecordBody)],
    input: &reconcile::day::KioskInput,
    seq: Seq,
) -> Option<RecordBody> {
    parsed
        .binary_search_by_key(&seq, |(seq, _, _)| *seq)
        .ok()
        .map(|index| parsed[index].2.clone())
        .or_else(|| {
            let signed = input.voided_before.get(&seq)?;
            Payload::parse(&signed.payload)
                .ok()
                .map(|payload| payload.body)
        })
}
