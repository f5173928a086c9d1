//! The reconciliation of a service day, per kiosk and per site: every kiosk expected to trade
//! uploaded, its chain is complete from its previous day close to this one, every signature
//! verifies, its day close (Z record) matches its records, cash counted is set against cash
//! expected, and every anomaly is listed with its evidence and a suggested action. It also sums
//! meals by site, meal type and bracket, revenue, top-ups by method, and checks that the opening
//! balance of all accounts plus the day's movements is the closing balance.
//!
//! Which records belong to a day: for a kiosk that closed the day, every record after its
//! previous day close up to the close of this day (exactly what the Z record covers). For a
//! kiosk that did not close it, its records after its last earlier close whose kiosk time falls
//! within the day (in the back-office's time zone), checked from the first of them.
//!
//! Which kiosks are expected to trade: every kiosk registered before the day ended and not
//! revoked before it began, at a site with a service on that weekday.
//!
//! A reconciliation reads only stored rows and the day's inputs, so the same inputs give the
//! same report; it is stored, may be run again until a finance user signs it off, and is then
//! immutable. Duplicate meals (the same pupil and service at two kiosks) become proposed voids;
//! an approved void credits the account back by an adjustment dated at the start of the next
//! day that is not signed off.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use proto::record::{CloseCategory, DayClose, GrandTotals, MealVia, RefusalReason, TopUpMethod};
use proto::{
    AccountId, BracketId, Cents, ChainError, ChainHead, DeviceId, MealType, Payload, PupilId,
    Record, RecordBody, RecordError, Seq, ServiceDate, ServiceId, SignedRecord, SiteId, Text,
    Timestamp,
};
use serde::{Deserialize, Serialize};

use crate::store::{
    Device, Operation, OperationKind, ProposedVoid, SavedReconciliation, Store, StoreError,
    StoredRecord, VoidStatus,
};

/// A record of the day received later than this after the day ended is a late upload.
pub const LATE_UPLOAD_GRACE_MS: i64 = 60 * 60 * 1000;

/// How far ahead an approved void's correction looks for a day not signed off.
pub const NEXT_OPEN_DAY_SEARCH_DAYS_MAX: u32 = 366;

/// Kiosks read ahead of the checks: enough to keep the database busy while the checks run,
/// few enough that memory holds a handful of kiosks' days.
pub const KIOSKS_READ_AHEAD_MAX: usize = 4;

/// Findings listed for one kind and one kiosk; beyond it one more finding counts the rest, so
/// a kiosk gone wrong cannot make a report of millions of lines.
pub const FINDINGS_PER_KIND_PER_KIOSK_MAX: usize = 1_000;

/// What a reconciliation needs beyond the store.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where service days begin and end.
    pub time_zone: jiff::tz::TimeZone,
}

impl Settings {
    /// The back-office's time zone by IANA name, e.g. `Europe/Paris`.
    pub fn new(time_zone: &str) -> Result<Settings, ReconcileError> {
        Ok(Settings {
            time_zone: jiff::tz::TimeZone::get(time_zone)
                .map_err(|error| ReconcileError::TimeZone(error.to_string()))?,
        })
    }

    fn time_zone_name(&self) -> String {
        self.time_zone.iana_name().unwrap_or("UTC").to_owned()
    }
}

/// The time zone when none is configured: the city's.
pub const DEFAULT_TIME_ZONE: &str = "Europe/Paris";

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            // Bundled in the binary (jiff's `tzdb-bundle-always`), so it always resolves.
            time_zone: jiff::tz::TimeZone::get(DEFAULT_TIME_ZONE)
                .unwrap_or(jiff::tz::TimeZone::UTC),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("time zone: {0}")]
    TimeZone(String),
    #[error("date out of range: {0}")]
    Date(String),
    #[error("stored report unreadable: {0}")]
    Report(String),
    #[error("a verification task failed: {0}")]
    Task(String),
}

/// A service day's bounds in the back-office's time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Day {
    pub date: ServiceDate,
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Day {
    pub fn new(date: ServiceDate, settings: &Settings) -> Result<Day, ReconcileError> {
        let civil = civil_date(date)?;
        let next = civil
            .tomorrow()
            .map_err(|error| ReconcileError::Date(error.to_string()))?;
        Ok(Day {
            date,
            start: day_start(civil, &settings.time_zone)?,
            end: day_start(next, &settings.time_zone)?,
        })
    }
}

/// The next calendar day.
pub fn next_date(date: ServiceDate) -> Result<ServiceDate, ReconcileError> {
    let next = civil_date(date)?
        .tomorrow()
        .map_err(|error| ReconcileError::Date(error.to_string()))?;
    ServiceDate::parse(&next.to_string()).map_err(|error| ReconcileError::Date(error.to_string()))
}

/// The local date of `at`.
pub fn local_date(at: Timestamp, settings: &Settings) -> Result<ServiceDate, ReconcileError> {
    let instant = jiff::Timestamp::from_millisecond(at.unix_ms())
        .map_err(|error| ReconcileError::Date(error.to_string()))?;
    let date = instant.to_zoned(settings.time_zone.clone()).date();
    ServiceDate::parse(&date.to_string()).map_err(|error| ReconcileError::Date(error.to_string()))
}

fn civil_date(date: ServiceDate) -> Result<jiff::civil::Date, ReconcileError> {
    date.to_string()
        .parse()
        .map_err(|error: jiff::Error| ReconcileError::Date(error.to_string()))
}

fn day_start(
    date: jiff::civil::Date,
    time_zone: &jiff::tz::TimeZone,
) -> Result<Timestamp, ReconcileError> {
    let zoned = date
        .to_zoned(time_zone.clone())
        .map_err(|error| ReconcileError::Date(error.to_string()))?;
    Timestamp::from_unix_ms(zoned.timestamp().as_millisecond())
        .map_err(|error| ReconcileError::Date(error.to_string()))
}

/// The stored result of one reconciliation. Deterministic: the same inputs give equal reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub date: ServiceDate,
    /// One site, or all sites when none.
    pub site: Option<SiteId>,
    pub time_zone: String,
    pub day_start: Timestamp,
    pub day_end: Timestamp,
    /// Records read and checked, day closes before the day included.
    pub records_checked: u64,
    pub kiosks: Vec<KioskDay>,
    pub sites: Vec<SiteDay>,
    /// Meals by site, meal type and bracket.
    pub meals: Vec<MealLine>,
    /// Meals charged minus meals voided.
    pub revenue: Cents,
    pub top_ups: Vec<TopUpLine>,
    /// Finance's adjustments of the day (all sites only).
    pub adjustments: Cents,
    /// Opening + movements = closing over all accounts (all sites only).
    pub balances: Option<BalanceCheck>,
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether nothing needs finance's attention beyond informative findings.
    pub fn is_clean(&self) -> bool {
        self.findings
            .iter()
            .all(|finding| !finding.kind.is_defect())
    }

    /// The finding kinds present, for tests and summaries.
    pub fn kinds(&self) -> BTreeSet<FindingKind> {
        self.findings.iter().map(|finding| finding.kind).collect()
    }
}

/// One kiosk's day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KioskDay {
    pub device: DeviceId,
    pub site: SiteId,
    pub expected: bool,
    pub first_seq: Option<Seq>,
    pub last_seq: Option<Seq>,
    pub records: u64,
    pub day_close: Option<Seq>,
    /// Whether the day close's lines, cash expected and grand totals match the records.
    pub close_matches: Option<bool>,
    pub cash_expected: Cents,
    pub cash_counted: Option<Cents>,
    pub cash_difference: Option<Cents>,
    pub meals: u64,
    pub revenue: Cents,
    /// No defect found in its records, chain, key or close.
    pub chain_clean: bool,
}

/// One site's day: the sums of its kiosks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteDay {
    pub site: Option<SiteId>,
    pub kiosks: u32,
    pub meals: u64,
    pub revenue: Cents,
    pub voided_meals: Cents,
    pub top_ups_cash: Cents,
    pub top_ups_cheque: Cents,
    pub cash_expected: Cents,
    pub cash_counted: Cents,
    pub cash_difference: Cents,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MealLine {
    pub site: SiteId,
    pub meal_type: MealType,
    pub bracket: BracketId,
    pub count: u64,
    pub total: Cents,
    pub voided_count: u64,
    pub voided_total: Cents,
}

/// Where money was paid in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopUpSource {
    Kiosk,
    Counter,
    Online,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    Cash,
    Cheque,
    Online,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopUpLine {
    pub source: TopUpSource,
    pub method: PaymentMethod,
    pub count: u64,
    /// Net of voided top-ups.
    pub total: Cents,
}

/// Opening and closing balance of all accounts around the day, by the back-office's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceCheck {
    pub opening: Cents,
    pub movements: Cents,
    pub closing: Cents,
    /// `opening + movements == closing`.
    pub holds: bool,
}

/// Something finance should see, with its evidence and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub site: Option<SiteId>,
    pub device: Option<DeviceId>,
    pub seq: Option<Seq>,
    pub detail: String,
    pub action: String,
    /// The signed records concerned, as stored.
    pub evidence: Vec<SignedRecord>,
}

/// Every check's name. Defects break trust in the figures; the others are listed for action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    NotUploaded,
    NoDayClose,
    Gap,
    Truncated,
    Fork,
    BadSignature,
    BadRecord,
    ForgedDayClose,
    WrongDevice,
    BrokenLink,
    DuplicateRecord,
    ReorderedRecords,
    SignedAfterRevocation,
    DayCloseMismatch,
    BalanceMismatch,
    Quarantined,
    CashDifference,
    LateUpload,
    DuplicateMeal,
    Overdraft,
    BlockedCard,
    UnknownCard,
    Void,
    ServedWithoutCard,
    ClockDrift,
    FindingsCapped,
}

impl FindingKind {
    /// A defect of the records or totals themselves, as opposed to an event to review.
    pub fn is_defect(self) -> bool {
        matches!(
            self,
            FindingKind::NotUploaded
                | FindingKind::NoDayClose
                | FindingKind::Gap
                | FindingKind::Truncated
                | FindingKind::Fork
                | FindingKind::BadSignature
                | FindingKind::BadRecord
                | FindingKind::ForgedDayClose
                | FindingKind::WrongDevice
                | FindingKind::BrokenLink
                | FindingKind::DuplicateRecord
                | FindingKind::ReorderedRecords
                | FindingKind::SignedAfterRevocation
                | FindingKind::DayCloseMismatch
                | FindingKind::BalanceMismatch
                | FindingKind::Quarantined
        )
    }

    /// The suggested action.
    pub fn action(self) -> &'static str {
        match self {
            FindingKind::NotUploaded => {
                "check the kiosk's network and power; have it sync, or upload its export by hand"
            }
            FindingKind::NoDayClose => {
                "ask the site to close the day on the kiosk; reconcile again once it is uploaded"
            }
            FindingKind::Gap | FindingKind::Truncated => {
                "records are missing: have the kiosk sync again; if they never come, compare \
                 with the kiosk's own export and escalate to IT security"
            }
            FindingKind::Fork => {
                "two different records claim the same place: check whether the kiosk was \
                 restored from a backup or cloned; escalate to IT security"
            }
            FindingKind::BadSignature | FindingKind::BadRecord | FindingKind::BrokenLink => {
                "the stored record is not what the kiosk signed: restore it from the kiosk's \
                 export or a backup and escalate to IT security"
            }
            FindingKind::ForgedDayClose => {
                "the day close is not signed by the kiosk: do not sign off; compare with the \
                 kiosk's export and escalate to IT security"
            }
            FindingKind::WrongDevice => "escalate to IT security: a record names another kiosk",
            FindingKind::DuplicateRecord | FindingKind::ReorderedRecords => {
                "the stored chain was altered: restore it from the kiosk's export or a backup"
            }
            FindingKind::SignedAfterRevocation => {
                "the kiosk was revoked: find out who still uses its key; refuse these records"
            }
            FindingKind::DayCloseMismatch => {
                "the kiosk's totals differ from its records: check the kiosk's software \
                 version and the records listed"
            }
            FindingKind::BalanceMismatch => {
                "balances do not follow from the ledger: stop corrections and escalate"
            }
            FindingKind::Quarantined => {
                "review the refused record and its reason; correct the data it needs (account, \
                 void) or escalate"
            }
            FindingKind::CashDifference => {
                "accepted as counted: check the count with the site and note the reason"
            }
            FindingKind::LateUpload => "check the kiosk's connection; the figures now include it",
            FindingKind::DuplicateMeal => {
                "approve the proposed void to credit the account back, or reject it"
            }
            FindingKind::Overdraft => {
                "contact the family; consider blocking the card until the account is topped up"
            }
            FindingKind::BlockedCard => {
                "a blocked card was used: check who holds it; the tap was refused"
            }
            FindingKind::UnknownCard => {
                "an unknown card was tapped: enrol it if it is a pupil's new card"
            }
            FindingKind::Void => "check the reason given by the staff member",
            FindingKind::ServedWithoutCard => {
                "check the pupil has a working card; replace it if lost"
            }
            FindingKind::ClockDrift => "check the kiosk's time synchronisation (NTP)",
            FindingKind::FindingsCapped => "look at the kiosk's records directly",
        }
    }
}

/// What one run gives: the report and the voids it proposes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub report: Report,
    pub proposals: Vec<ProposedVoid>,
}

/// Reconciles `date` for all sites or one, without storing anything. `progress` is told the
/// number of kiosks done and the total as they finish.
pub async fn run<S: Store>(
    store: &S,
    date: ServiceDate,
    site: Option<&SiteId>,
    settings: &Settings,
    mut progress: impl FnMut(usize, usize),
) -> Result<Outcome, ReconcileError> {
    let day = Day::new(date, settings)?;
    let weekday = civil_date(date)?.weekday();
    let services = store.services().await?;
    let trading_sites: BTreeSet<SiteId> = services
        .iter()
        .filter(|(_, service)| {
            service
                .weekdays
                .iter()
                .any(|day| jiff_weekday(*day) == weekday)
        })
        .map(|(site, _)| site.clone())
        .collect();
    let devices: Vec<(Device, bool)> = store
        .devices()
        .await?
        .into_iter()
        .filter(|entry| site.is_none_or(|site| &entry.device.site == site))
        .map(|entry| {
            let expected = trading_sites.contains(&entry.device.site)
                && entry.added_at < day.end
                && entry.device.revoked_at.is_none_or(|at| at > day.start);
            (entry.device, expected)
        })
        .collect();
    let floors: Arc<BTreeMap<AccountId, Cents>> =
        Arc::new(store.overdraft_floors().await?.into_iter().collect());

    let total = devices.len();
    let parallel = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut outcomes = Vec::with_capacity(total);
    progress(0, total);
    // Reading and checking overlap: kiosks are read by two readers at once (each
    // waits on the database in turn), up to `KIOSKS_READ_AHEAD_MAX` ahead of the checks, which
    // run on blocking threads, as many at a time as there are cores. Outcomes are sorted by
    // device afterwards, so the order kiosks are read in does not matter.
    let (ready, inputs) = tokio::sync::mpsc::channel(KIOSKS_READ_AHEAD_MAX);
    let read = |reader: usize| {
        let ready = ready.clone();
        let devices = &devices;
        async move {
            for (device, expected) in devices.iter().skip(reader).step_by(KIOSK_READERS) {
                let input = kiosk_input(store, device.clone(), *expected, &day).await?;
                if ready.send(input).await.is_err() {
                    break;
                }
            }
            Ok::<(), ReconcileError>(())
        }
    };
    // One future per reader: every kiosk is read by exactly one of them.
    const KIOSK_READERS: usize = 2;
    let reads = (read(0), read(1));
    drop(ready);
    // The day's operations and the ledger's sums are read meanwhile too.
    let ledger = async {
        if site.is_some() {
            return Ok(None);
        }
        let operations = store.operations_between(day.start, day.end).await?;
        let totals = store.ledger_totals(day.start, day.end).await?;
        Ok::<_, ReconcileError>(Some((operations, totals)))
    };
    let check = async {
        // Owned here, so a failed check closes the channel and stops the reading.
        let mut inputs = inputs;
        let mut tasks = tokio::task::JoinSet::new();
        let mut done = 0;
        let mut finished = |result, outcomes: &mut Vec<KioskOutcome>| {
            outcomes.push(joined(result)?);
            done += 1;
            progress(done, total);
            Ok::<(), ReconcileError>(())
        };
        while let Some(input) = inputs.recv().await {
            let floors = Arc::clone(&floors);
            tasks.spawn_blocking(move || check_kiosk(input, &day, &floors));
            while tasks.len() >= parallel {
                finished(tasks.join_next().await, &mut outcomes)?;
            }
        }
        while let Some(result) = tasks.join_next().await {
            finished(Some(result), &mut outcomes)?;
        }
        Ok::<(), ReconcileError>(())
    };
    // On the heap: the readers, the checks and the ledger reads make a large future.
    let ((first, second), check, ledger) =
        Box::pin(async { tokio::join!(async { tokio::join!(reads.0, reads.1) }, check, ledger) })
            .await;
    first?;
    second?;
    check?;
    let ledger = ledger?;
    outcomes.sort_by(|a, b| a.kiosk.device.cmp(&b.kiosk.device));

    let mut findings = Vec::new();
    let mut kiosks = Vec::new();
    let mut records_checked = 0;
    let mut meal_lines: BTreeMap<(SiteId, MealType, BracketId), MealLine> = BTreeMap::new();
    let mut top_ups: BTreeMap<(TopUpSource, PaymentMethod), (u64, Cents)> = BTreeMap::new();
    let mut sites: BTreeMap<SiteId, SiteDay> = BTreeMap::new();
    let mut meals_seen = Vec::new();
    for outcome in outcomes {
        records_checked += outcome.records_checked;
        let kiosk = outcome.kiosk;
        if !kiosk.expected && kiosk.records == 0 {
            continue;
        }
        findings.extend(outcome.findings);
        for ((meal_type, bracket), line) in outcome.meal_lines {
            let entry = meal_lines
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
            let entry = top_ups
                .entry((TopUpSource::Kiosk, *method))
                .or_insert((0, Cents::ZERO));
            entry.0 += count;
            entry.1 = add(entry.1, *amount)?;
        }
        let summary = sites.entry(kiosk.site.clone()).or_insert_with(|| SiteDay {
            site: Some(kiosk.site.clone()),
            ..SiteDay::default()
        });
        summary.kiosks += 1;
        summary.meals += kiosk.meals;
        summary.revenue = add(summary.revenue, kiosk.revenue)?;
        summary.voided_meals = add(summary.voided_meals, outcome.voided_meals)?;
        summary.top_ups_cash = add(
            summary.top_ups_cash,
            outcome
                .top_ups
                .get(&PaymentMethod::Cash)
                .map_or(Cents::ZERO, |line| line.1),
        )?;
        summary.top_ups_cheque = add(
            summary.top_ups_cheque,
            outcome
                .top_ups
                .get(&PaymentMethod::Cheque)
                .map_or(Cents::ZERO, |line| line.1),
        )?;
        summary.cash_expected = add(summary.cash_expected, kiosk.cash_expected)?;
        summary.cash_counted = add(
            summary.cash_counted,
            kiosk.cash_counted.unwrap_or(Cents::ZERO),
        )?;
        summary.cash_difference = add(
            summary.cash_difference,
            kiosk.cash_difference.unwrap_or(Cents::ZERO),
        )?;
        let index = kiosks.len();
        meals_seen.extend(outcome.meals.into_iter().map(|meal| MealSeen {
            kiosk: index,
            ..meal
        }));
        kiosks.push(kiosk);
    }

    let proposals = duplicate_meals(store, date, meals_seen, &kiosks, &mut findings).await?;
    quarantined(store, site, &kiosks, &day, &mut findings).await?;

    let mut adjustments = Cents::ZERO;
    let mut balances = None;
    if let Some((operations, totals)) = ledger {
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
                Some(key) => {
                    let entry = top_ups.entry(key).or_insert((0, Cents::ZERO));
                    entry.0 += 1;
                    entry.1 = add(entry.1, operation.amount)?;
                }
                None => adjustments = add(adjustments, operation.amount)?,
            }
        }
        let opening = totals.before;
        let closing = totals
            .balances_now
            .checked_sub(totals.after)
            .map_err(|_| overflow())?;
        let holds = add(opening, totals.during)? == closing;
        if !holds {
            findings.push(Finding {
                kind: FindingKind::BalanceMismatch,
                site: None,
                device: None,
                seq: None,
                detail: format!(
                    "opening {} + movements {} != closing {} (sum of balances now {} minus \
                     movements after the day {})",
                    opening.get(),
                    totals.during.get(),
                    closing.get(),
                    totals.balances_now.get(),
                    totals.after.get()
                ),
                action: FindingKind::BalanceMismatch.action().to_owned(),
                evidence: Vec::new(),
            });
        }
        balances = Some(BalanceCheck {
            opening,
            movements: totals.during,
            closing,
            holds,
        });
    }

    let mut revenue = Cents::ZERO;
    for line in meal_lines.values() {
        revenue = add(
            revenue,
            line.total
                .checked_sub(line.voided_total)
                .map_err(|_| overflow())?,
        )?;
    }
    findings.sort_by(|a, b| {
        (&a.device, a.seq, a.kind, &a.detail).cmp(&(&b.device, b.seq, b.kind, &b.detail))
    });
    Ok(Outcome {
        report: Report {
            date,
            site: site.cloned(),
            time_zone: settings.time_zone_name(),
            day_start: day.start,
            day_end: day.end,
            records_checked,
            kiosks,
            sites: sites.into_values().collect(),
            meals: meal_lines.into_values().collect(),
            revenue,
            top_ups: top_ups
                .into_iter()
                .map(|((source, method), (count, total))| TopUpLine {
                    source,
                    method,
                    count,
                    total,
                })
                .collect(),
            adjustments,
            balances,
            findings,
        },
        proposals,
    })
}

/// Runs and stores a reconciliation of `date` as `user`. Refused without running when the day
/// is signed off.
pub async fn run_and_save<S: Store>(
    store: &S,
    date: ServiceDate,
    site: Option<&SiteId>,
    settings: &Settings,
    user: &str,
    now: Timestamp,
    progress: impl FnMut(usize, usize),
) -> Result<Report, ReconcileError> {
    if let Some(saved) = store.reconciliation(date, site).await?
        && saved.signed_off_at.is_some()
    {
        return Err(StoreError::Refused(format!(
            "the reconciliation of {date} is signed off by {} and cannot change",
            saved.signed_off_by.unwrap_or_default()
        ))
        .into());
    }
    let outcome = run(store, date, site, settings, progress).await?;
    let saved = SavedReconciliation {
        date,
        site: site.cloned(),
        report: serde_json::to_string(&outcome.report)
            .map_err(|error| ReconcileError::Report(error.to_string()))?,
        run_at: now,
        run_by: user.to_owned(),
        signed_off_by: None,
        signed_off_at: None,
    };
    store
        .save_reconciliation(&saved, &outcome.proposals)
        .await?;
    Ok(outcome.report)
}

/// A stored report, parsed.
pub fn parse_report(saved: &SavedReconciliation) -> Result<Report, ReconcileError> {
    serde_json::from_str(&saved.report).map_err(|error| ReconcileError::Report(error.to_string()))
}

/// Approves (crediting the meal back on the next open day) or rejects a proposed void.
pub async fn decide<S: Store>(
    store: &S,
    id: i64,
    approve: bool,
    user: &str,
    settings: &Settings,
    now: Timestamp,
) -> Result<ProposedVoid, ReconcileError> {
    let Some(proposal) = store
        .proposed_voids(None)
        .await?
        .into_iter()
        .find(|proposal| proposal.id == id)
    else {
        return Err(StoreError::NotFound {
            what: "proposed void",
            id: id.to_string(),
        }
        .into());
    };
    if !approve {
        return Ok(store
            .decide_proposed_void(id, VoidStatus::Rejected, user, now, None)
            .await?);
    }
    let correction_date = next_open_day(store, proposal.date).await?;
    let reason = Text::parse(&format!(
        "void of duplicate meal {}/{} of {}",
        proposal.device, proposal.seq, proposal.date
    ))
    .or_else(|_| Text::parse("void of a duplicate meal"))
    .map_err(|error| ReconcileError::Report(error.to_string()))?;
    let operation = Operation {
        kind: OperationKind::Adjustment { reason },
        account: proposal.account.clone(),
        amount: proposal.amount,
        user: user.to_owned(),
        at: Day::new(correction_date, settings)?.start,
    };
    Ok(store
        .decide_proposed_void(
            id,
            VoidStatus::Approved,
            user,
            now,
            Some((&operation, correction_date)),
        )
        .await?)
}

/// The first day after `date` whose reconciliation (all sites) is not signed off.
pub async fn next_open_day<S: Store>(
    store: &S,
    date: ServiceDate,
) -> Result<ServiceDate, ReconcileError> {
    let mut candidate = next_date(date)?;
    for _ in 0..NEXT_OPEN_DAY_SEARCH_DAYS_MAX {
        match store.reconciliation(candidate, None).await? {
            Some(saved) if saved.signed_off_at.is_some() => candidate = next_date(candidate)?,
            _ => return Ok(candidate),
        }
    }
    Err(ReconcileError::Date(format!(
        "no open day within {NEXT_OPEN_DAY_SEARCH_DAYS_MAX} days after {date}"
    )))
}

fn jiff_weekday(day: proto::snapshot::Weekday) -> jiff::civil::Weekday {
    use jiff::civil::Weekday as J;
    use proto::snapshot::Weekday as W;
    match day {
        W::Monday => J::Monday,
        W::Tuesday => J::Tuesday,
        W::Wednesday => J::Wednesday,
        W::Thursday => J::Thursday,
        W::Friday => J::Friday,
        W::Saturday => J::Saturday,
        W::Sunday => J::Sunday,
    }
}

fn joined(
    result: Option<Result<KioskOutcome, tokio::task::JoinError>>,
) -> Result<KioskOutcome, ReconcileError> {
    match result {
        Some(Ok(outcome)) => Ok(outcome),
        Some(Err(error)) => Err(ReconcileError::Task(error.to_string())),
        None => Err(ReconcileError::Task("no task to join".to_owned())),
    }
}

fn add(a: Cents, b: Cents) -> Result<Cents, ReconcileError> {
    a.checked_add(b).map_err(|_| overflow())
}

fn overflow() -> ReconcileError {
    ReconcileError::Report("totals overflow".to_owned())
}

/// What one kiosk's check reads from the store.
#[derive(Debug)]
pub(crate) struct KioskInput {
    pub(crate) device: Device,
    expected: bool,
    /// The previous day close, which anchors the chain; none for a kiosk's first close, or
    /// when the day is not closed (the check then starts at the day's first record).
    pub(crate) anchor: Option<StoredRecord>,
    pub(crate) records: Vec<StoredRecord>,
    /// The day close of this day, if any.
    pub(crate) close: Option<Seq>,
    /// Records voided by this day's voids but written before it.
    pub(crate) voided_before: BTreeMap<Seq, SignedRecord>,
}

/// Reads a kiosk's records of the day: see the module's documentation.
pub(crate) async fn kiosk_input<S: Store>(
    store: &S,
    device: Device,
    expected: bool,
    day: &Day,
) -> Result<KioskInput, ReconcileError> {
    let closes = store.day_closes(&device.id).await?;
    let close = closes
        .iter()
        .filter(|(_, date)| *date == day.date)
        .map(|(seq, _)| *seq)
        .next_back();
    let (anchor_seq, to) = match close {
        Some(close) => (
            closes.iter().map(|(seq, _)| *seq).rfind(|seq| *seq < close),
            Some(close),
        ),
        None => {
            let anchor = closes
                .iter()
                .filter(|(_, date)| *date < day.date)
                .map(|(seq, _)| *seq)
                .next_back();
            let next_close = closes
                .iter()
                .map(|(seq, _)| *seq)
                .find(|seq| anchor.is_none_or(|anchor| *seq > anchor));
            (anchor, next_close.and_then(Seq::previous))
        }
    };
    let from = anchor_seq.unwrap_or(Seq::FIRST);
    let mut records = store.record_range(&device.id, from, to).await?;
    let mut anchor = None;
    if anchor_seq.is_some() && records.first().map(|record| record.seq) == anchor_seq {
        anchor = Some(records.remove(0));
    }
    if close.is_none() {
        // Without a close, the day is what the kiosk's clock put in it.
        records.retain(|record| record.kiosk_at >= day.start && record.kiosk_at < day.end);
        anchor = None;
    }
    let first = records.first().map(|record| record.seq);
    let mut voided_before = BTreeMap::new();
    for record in &records {
        if !record.record.payload.contains(r#""kind":"void""#) {
            continue;
        }
        let Ok(payload) = Payload::parse(&record.record.payload) else {
            continue;
        };
        if let RecordBody::Void(void) = payload.body
            && first.is_some_and(|first| void.voided_seq < first)
        {
            let found = store
                .record_range(&device.id, void.voided_seq, Some(void.voided_seq))
                .await?;
            if let Some(voided) = found.into_iter().next() {
                voided_before.insert(void.voided_seq, voided.record);
            }
        }
    }
    Ok(KioskInput {
        device,
        expected,
        anchor,
        records,
        close,
        voided_before,
    })
}

/// A meal seen in a kiosk's day, for the cross-kiosk duplicate check. Its signed record is
/// read again only if it is a duplicate: a day's meals are most of its records.
#[derive(Clone, Debug)]
struct MealSeen {
    key: (ServiceDate, ServiceId, PupilId),
    at: Timestamp,
    /// The kiosk's index in the report's kiosks, which are in device order.
    kiosk: usize,
    seq: Seq,
    /// The hash of its payload, which names the stored record exactly.
    hash: proto::Digest,
    account: AccountId,
    price: Cents,
}

#[derive(Clone, Debug, Default)]
struct LineSum {
    count: u64,
    total: Cents,
    voided_count: u64,
    voided_total: Cents,
}

/// One kiosk's checked day.
#[derive(Debug)]
struct KioskOutcome {
    kiosk: KioskDay,
    findings: Vec<Finding>,
    meal_lines: BTreeMap<(MealType, BracketId), LineSum>,
    top_ups: BTreeMap<PaymentMethod, (u64, Cents)>,
    voided_meals: Cents,
    meals: Vec<MealSeen>,
    records_checked: u64,
}

type CloseKey = (CloseCategory, Option<MealType>, Option<BracketId>);

/// Collects one kiosk's findings, capped per kind.
struct Findings<'a> {
    device: &'a Device,
    list: Vec<Finding>,
    per_kind: BTreeMap<FindingKind, usize>,
}

impl Findings<'_> {
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

/// Verifies a kiosk's day and sums it. Runs on a blocking thread.
fn check_kiosk(input: KioskInput, day: &Day, floors: &BTreeMap<AccountId, Cents>) -> KioskOutcome {
    let device = &input.device;
    let mut findings = Findings {
        device,
        list: Vec::new(),
        per_kind: BTreeMap::new(),
    };
    let mut records_checked = 0_u64;

    // Where the chain continues from, and the grand totals carried from the previous close.
    let mut start = ChainHead::GENESIS;
    let mut previous_totals = Some(GrandTotals::default());
    let mut previous_close = None;
    if let Some(anchor) = &input.anchor {
        records_checked += 1;
        previous_close = Some(anchor.seq);
        match anchor.record.verify(&device.key) {
            Ok(record) => {
                start = ChainHead::after(&record);
                previous_totals = match &record.payload().body {
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
                start = ChainHead {
                    next_seq: anchor.seq.next(),
                    prev: anchor.record.payload_hash(),
                };
                previous_totals = None;
            }
        }
    } else if let Some(first) = input.records.first()
        && first.seq != Seq::FIRST
    {
        // A day not closed is checked from its first record.
        start = ChainHead {
            next_seq: first.seq,
            prev: Payload::parse(&first.record.payload)
                .map(|payload| payload.prev)
                .unwrap_or(proto::Digest::ZERO),
        };
    }

    // Signatures: the previous close above is verified on its own; within the range only the
    // anchor (this day's close, or the last record of a day not closed) has its signature
    // checked, and every record linked to it by the SHA-256 `prev` chain is covered by it: a
    // record edited, deleted, inserted or reordered anywhere before the anchor changes a hash
    // the signed anchor commits to. Records not linked to a verified anchor are verified one by
    // one, so every defect is reported as a full check reports it (`proto::verify_anchored`).
    let report = proto::verify_anchored(
        &device.id,
        &device.key,
        start,
        input.records.iter().map(|stored| &stored.record),
        input.close,
    );
    records_checked += u64::try_from(input.records.len()).unwrap_or(u64::MAX);
    for error in &report.errors {
        chain_finding(&mut findings, error, &input.records, input.close);
    }

    // Revocation: nothing may be signed after it. (Records signed before it may still arrive
    // by hand, from the kiosk's export.)
    if let Some(revoked_at) = device.revoked_at {
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

    // Late uploads.
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

    // Sums and per-record findings, over the records that verified (in `seq` order, one per
    // `seq`, so a voided record is found by binary search).
    let by_seq = |seq: Seq| -> Option<&Record> {
        report
            .records
            .binary_search_by_key(&seq, Record::seq)
            .ok()
            .map(|index| &report.records[index])
    };
    let mut voided: BTreeSet<Seq> = BTreeSet::new();
    let mut close_lines: BTreeMap<CloseKey, (u32, Cents)> = BTreeMap::new();
    let mut cash_expected = Cents::ZERO;
    let mut meal_lines: BTreeMap<(MealType, BracketId), LineSum> = BTreeMap::new();
    let mut top_ups: BTreeMap<PaymentMethod, (u64, Cents)> = BTreeMap::new();
    let mut voided_meals = Cents::ZERO;
    let mut meals = Vec::new();
    let mut meal_count = 0_u64;
    let mut day_close: Option<DayClose> = None;
    let mut sums_overflowed = false;
    let mut add_to = |sum: &mut Cents, amount: Cents| match sum.checked_add(amount) {
        Ok(total) => *sum = total,
        Err(_) => sums_overflowed = true,
    };
    for record in &report.records {
        let seq = record.seq();
        let signed = record.signed();
        match &record.payload().body {
            RecordBody::Meal(meal) => {
                let category = match &meal.via {
                    MealVia::Card(_) => CloseCategory::MealByCard,
                    MealVia::Staff(staff) => {
                        findings.push(
                            FindingKind::ServedWithoutCard,
                            Some(seq),
                            format!(
                                "pupil {} served by staff {staff} without a card",
                                meal.pupil
                            ),
                            vec![signed.clone()],
                        );
                        CloseCategory::MealByStaff
                    }
                };
                let line = close_lines
                    .entry((
                        category,
                        Some(meal.meal_type.clone()),
                        Some(meal.bracket.clone()),
                    ))
                    .or_insert((0, Cents::ZERO));
                line.0 = line.0.saturating_add(1);
                add_to(&mut line.1, meal.price);
                let sum = meal_lines
                    .entry((meal.meal_type.clone(), meal.bracket.clone()))
                    .or_default();
                sum.count += 1;
                add_to(&mut sum.total, meal.price);
                meal_count += 1;
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
                        vec![signed.clone()],
                    );
                }
                meals.push(MealSeen {
                    key: (meal.service_date, meal.service.clone(), meal.pupil.clone()),
                    at: record.payload().at,
                    kiosk: 0,
                    seq,
                    hash: record.hash(),
                    account: meal.account.clone(),
                    price: meal.price,
                });
            }
            RecordBody::TopUp(top_up) => {
                let (category, method) = match top_up.method {
                    TopUpMethod::Cash => {
                        add_to(&mut cash_expected, top_up.amount);
                        (CloseCategory::TopUpCash, PaymentMethod::Cash)
                    }
                    TopUpMethod::Cheque => (CloseCategory::TopUpCheque, PaymentMethod::Cheque),
                };
                let line = close_lines
                    .entry((category, None, None))
                    .or_insert((0, Cents::ZERO));
                line.0 = line.0.saturating_add(1);
                add_to(&mut line.1, top_up.amount);
                let sum = top_ups.entry(method).or_insert((0, Cents::ZERO));
                sum.0 += 1;
                add_to(&mut sum.1, top_up.amount);
            }
            RecordBody::Void(void) => {
                let target = by_seq(void.voided_seq)
                    .map(|record| (record.payload().body.clone(), record.signed().clone()))
                    .or_else(|| {
                        input
                            .voided_before
                            .get(&void.voided_seq)
                            .and_then(|signed| {
                                Payload::parse(&signed.payload)
                                    .ok()
                                    .map(|payload| (payload.body, signed.clone()))
                            })
                    });
                let mut evidence = vec![signed.clone()];
                match target {
                    Some((RecordBody::Meal(meal), voided_record)) => {
                        voided.insert(void.voided_seq);
                        let line = close_lines
                            .entry((
                                CloseCategory::VoidedMeal,
                                Some(meal.meal_type.clone()),
                                Some(meal.bracket.clone()),
                            ))
                            .or_insert((0, Cents::ZERO));
                        line.0 = line.0.saturating_add(1);
                        add_to(&mut line.1, meal.price);
                        let sum = meal_lines
                            .entry((meal.meal_type.clone(), meal.bracket.clone()))
                            .or_default();
                        sum.voided_count += 1;
                        add_to(&mut sum.voided_total, meal.price);
                        add_to(&mut voided_meals, meal.price);
                        evidence.push(voided_record);
                    }
                    Some((RecordBody::TopUp(top_up), voided_record)) => {
                        let line = close_lines
                            .entry((CloseCategory::VoidedTopUp, None, None))
                            .or_insert((0, Cents::ZERO));
                        line.0 = line.0.saturating_add(1);
                        add_to(&mut line.1, top_up.amount);
                        let method = match top_up.method {
                            TopUpMethod::Cash => {
                                add_to(&mut cash_expected, Cents::new(-top_up.amount.get()));
                                PaymentMethod::Cash
                            }
                            TopUpMethod::Cheque => PaymentMethod::Cheque,
                        };
                        let sum = top_ups.entry(method).or_insert((0, Cents::ZERO));
                        add_to(&mut sum.1, Cents::new(-top_up.amount.get()));
                        evidence.push(voided_record);
                    }
                    _ => {}
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
            }
            RecordBody::DayClose(close) if Some(seq) == input.close => {
                day_close = Some(close.clone());
            }
            RecordBody::TapRefused(refused) => {
                let kind = match refused.reason {
                    RefusalReason::BlockedCard => Some(FindingKind::BlockedCard),
                    RefusalReason::UnknownCard => Some(FindingKind::UnknownCard),
                    RefusalReason::InsufficientFunds => None,
                };
                if let Some(kind) = kind {
                    findings.push(
                        kind,
                        Some(seq),
                        format!("card {} refused", refused.card),
                        vec![signed.clone()],
                    );
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
    }
    let meals: Vec<MealSeen> = meals
        .into_iter()
        .filter(|meal| !voided.contains(&meal.seq))
        .collect();

    let mut close_matches = None;
    let (mut cash_counted, mut cash_difference) = (None, None);
    match (&day_close, input.close) {
        (Some(close), Some(close_seq)) => {
            let mut differences = Vec::new();
            if close.previous_close != previous_close {
                differences.push(format!(
                    "previous close {:?}, the chain's is {:?}",
                    close.previous_close.map(Seq::get),
                    previous_close.map(Seq::get)
                ));
            }
            let claimed: BTreeMap<CloseKey, (u32, Cents)> = close
                .lines
                .iter()
                .map(|line| {
                    (
                        (line.category, line.meal_type.clone(), line.bracket.clone()),
                        (line.count, line.total),
                    )
                })
                .collect();
            let keys: BTreeSet<&CloseKey> = claimed.keys().chain(close_lines.keys()).collect();
            for key in keys {
                let said = claimed.get(key).copied().unwrap_or((0, Cents::ZERO));
                let found = close_lines.get(key).copied().unwrap_or((0, Cents::ZERO));
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
            if close.cash_expected != cash_expected {
                differences.push(format!(
                    "cash expected: close says {}, records {}",
                    close.cash_expected.get(),
                    cash_expected.get()
                ));
            }
            if let Some(previous) = &previous_totals {
                let expected_totals = grand_totals_after(previous, &close_lines);
                if expected_totals.as_ref() != Some(&close.grand_totals) {
                    differences.push(format!(
                        "grand totals: close says {:?}, previous close plus records {:?}",
                        close.grand_totals, expected_totals
                    ));
                }
            }
            let evidence = input
                .records
                .iter()
                .find(|record| record.seq == close_seq)
                .map(|record| vec![record.record.clone()])
                .unwrap_or_default();
            close_matches = Some(differences.is_empty());
            if !differences.is_empty() {
                findings.push(
                    FindingKind::DayCloseMismatch,
                    Some(close_seq),
                    differences.join("; "),
                    evidence.clone(),
                );
            }
            cash_counted = Some(close.cash_counted);
            cash_difference = Some(close.cash_difference);
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
        (None, Some(_)) => {
            // The close is stored but did not verify: already named by its chain finding.
            close_matches = Some(false);
        }
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
    if sums_overflowed {
        findings.push(
            FindingKind::DayCloseMismatch,
            input.close,
            "the day's totals overflow".to_owned(),
            Vec::new(),
        );
    }

    let mut revenue = Cents::ZERO;
    for sum in meal_lines.values() {
        revenue = revenue
            .checked_add(sum.total)
            .and_then(|total| total.checked_sub(sum.voided_total))
            .unwrap_or(revenue);
    }
    let chain_clean = !findings.list.iter().any(|finding| finding.kind.is_defect());
    KioskOutcome {
        kiosk: KioskDay {
            device: device.id.clone(),
            site: device.site.clone(),
            expected: input.expected,
            first_seq: input.records.first().map(|record| record.seq),
            last_seq: input.records.last().map(|record| record.seq),
            records: u64::try_from(input.records.len()).unwrap_or(u64::MAX),
            day_close: input.close,
            close_matches,
            cash_expected,
            cash_counted,
            cash_difference,
            meals: meal_count,
            revenue,
            chain_clean,
        },
        findings: findings.finish(),
        meal_lines,
        top_ups,
        voided_meals,
        meals,
        records_checked,
    }
}

/// The grand totals a close must carry: the previous close's plus this day's lines.
fn grand_totals_after(
    previous: &GrandTotals,
    lines: &BTreeMap<CloseKey, (u32, Cents)>,
) -> Option<GrandTotals> {
    let mut totals = previous.clone();
    for ((category, _, _), (count, total)) in lines {
        match category {
            CloseCategory::MealByCard | CloseCategory::MealByStaff => {
                totals.meal_count += u64::from(*count);
                totals.meals = totals.meals.checked_add(*total).ok()?;
            }
            CloseCategory::TopUpCash | CloseCategory::TopUpCheque => {
                totals.top_ups = totals.top_ups.checked_add(*total).ok()?;
            }
            CloseCategory::VoidedMeal | CloseCategory::VoidedTopUp => {
                totals.voided = totals.voided.checked_add(*total).ok()?;
            }
        }
    }
    Some(totals)
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
    let (seq, evidence, is_close) = match error {
        ChainError::Record { seq, position, .. } => {
            let evidence: Vec<SignedRecord> = records
                .get(*position)
                .map(|record| vec![record.record.clone()])
                .unwrap_or_default();
            let is_close =
                seq.is_some() && *seq == close || evidence.first().is_some_and(is_day_close);
            (*seq, evidence, is_close)
        }
        ChainError::WrongDevice { seq, .. }
        | ChainError::Duplicate { seq, .. }
        | ChainError::Fork { seq, .. }
        | ChainError::Reorder { seq, .. }
        | ChainError::BeforeStart { seq, .. }
        | ChainError::BrokenLink { seq, .. } => (Some(*seq), evidence_at(*seq), false),
        ChainError::Gap { from, .. } => (Some(*from), Vec::new(), false),
        ChainError::Truncated { expected, .. } => (Some(*expected), Vec::new(), false),
    };
    let kind = chain_error_kind(error, is_close);
    findings.push(kind, seq, error.to_string(), evidence);
}

/// The finding that names a chain defect; `is_close` when the record concerned claims to be a
/// day close.
pub fn chain_error_kind(error: &ChainError, is_close: bool) -> FindingKind {
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

/// The same pupil served in the same service more than once: every meal after the first
/// becomes a proposed void. The two signed records are read from the store as evidence.
async fn duplicate_meals<S: Store>(
    store: &S,
    date: ServiceDate,
    meals: Vec<MealSeen>,
    kiosks: &[KioskDay],
    findings: &mut Vec<Finding>,
) -> Result<Vec<ProposedVoid>, ReconcileError> {
    // Only meals that share their key with another can be duplicates: a day's million meals
    // are counted by key, and the few left are sorted. Kiosks are in device order, so their
    // index orders meals as their device would.
    let mut served: HashMap<&(ServiceDate, ServiceId, PupilId), u32> =
        HashMap::with_capacity(meals.len());
    for meal in &meals {
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
    let mut proposals = Vec::new();
    let mut group_start = 0;
    for index in 0..meals.len() {
        if meals[index].key != meals[group_start].key {
            group_start = index;
        }
        if index == group_start {
            continue;
        }
        // The first meal of the group stands.
        let (kept, meal) = (meals[group_start], meals[index]);
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

/// The stored record of `device` whose payload hashes to `hash`, normally stored at `seq`.
async fn stored_record<S: Store>(
    store: &S,
    device: &DeviceId,
    seq: Seq,
    hash: proto::Digest,
) -> Result<Option<SignedRecord>, ReconcileError> {
    let is_it = |stored: &StoredRecord| stored.record.payload_hash() == hash;
    if let Some(found) = store
        .record_range(device, seq, Some(seq))
        .await?
        .into_iter()
        .find(is_it)
    {
        return Ok(Some(found.record));
    }
    // Another record is stored at `seq` (the stored chain was reordered): look through it all.
    Ok(store
        .records(device)
        .await?
        .into_iter()
        .find(is_it)
        .map(|stored| stored.record))
}

/// Records the store refused at ingest whose kiosk time falls in the day, and gaps still open,
/// for the kiosks of the report.
async fn quarantined<S: Store>(
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
    for anomaly in store.anomalies().await? {
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
