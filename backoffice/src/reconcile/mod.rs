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
//! - [`day`]: the day's bounds, the kiosks expected to trade, each kiosk's records of the day.
//! - [`kiosk`]: one kiosk's chain, day close (Z) and cash.
//! - [`fleet`]: sums across kiosks, duplicate meals, refused records, the ledger.
//! - [`report`]: the report and its findings.
//!
//! A reconciliation reads only stored rows and the day's inputs, so the same inputs give the
//! same report; it is stored, may be run again until a finance user signs it off, and is then
//! immutable. Duplicate meals (the same pupil and service at two kiosks) become proposed voids;
//! an approved void credits the account back by an adjustment dated at the start of the next
//! day that is not signed off.

pub mod day;
pub mod fleet;
pub mod kiosk;
pub mod report;

use std::collections::BTreeMap;
use std::sync::Arc;

use proto::{AccountId, Cents, ServiceDate, SiteId, Text, Timestamp};

use crate::limits::{KIOSKS_READ_AHEAD_MAX, NEXT_OPEN_DAY_SEARCH_DAYS_MAX};
use crate::manage::{Actor, FINANCE};
use crate::store::{
    ChainRows, Device, FinanceRows, LedgerTotals, Mode, Operation, OperationKind, PeopleRows,
    ProposedVoid, SavedReconciliation, Store, StoreError, StoredOperation, Transaction, VoidStatus,
    finish,
};
use crate::users::Role;
pub use day::{Day, local_date, next_date};
use fleet::Totals;
use kiosk::KioskOutcome;
pub use kiosk::{chain_error_kind, is_day_close};
pub use report::{
    BalanceCheck, Finding, FindingKind, KioskDay, MealLine, PaymentMethod, Report, SiteDay,
    TopUpLine, TopUpSource,
};

/// Who may run and read reconciliations: finance and city IT.
pub const RUNNERS: &[Role] = FINANCE;
/// Who may sign a day off and decide proposed voids: finance alone.
pub const SIGNERS: &[Role] = &[Role::Finance];

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

    pub(crate) fn time_zone_name(&self) -> String {
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
    /// The actor may not do this.
    #[error("{0}")]
    Forbidden(String),
}

impl From<crate::manage::ManageError> for ReconcileError {
    fn from(error: crate::manage::ManageError) -> ReconcileError {
        match error {
            crate::manage::ManageError::Store(error) => ReconcileError::Store(error),
            other => ReconcileError::Forbidden(other.to_string()),
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
    progress: impl FnMut(usize, usize),
) -> Result<Outcome, ReconcileError> {
    let day = Day::new(date, settings)?;
    let kiosks = day::kiosks(store, &day, site).await?;
    let floors: BTreeMap<AccountId, Cents> = store
        .begin(Mode::Single)
        .await?
        .overdraft_floors()
        .await?
        .into_iter()
        .collect();
    let (outcomes, ledger) = check_kiosks(store, &day, site, kiosks, floors, progress).await?;
    let mut totals = Totals::of(outcomes)?;
    let proposals = fleet::duplicate_meals(
        store,
        date,
        &totals.meals,
        &totals.kiosks,
        &mut totals.findings,
    )
    .await?;
    fleet::quarantined(store, site, &totals.kiosks, &day, &mut totals.findings).await?;
    let (adjustments, balances) = match ledger {
        Some((operations, ledger)) => {
            let (adjustments, check) = totals.ledger(operations, ledger)?;
            (adjustments, Some(check))
        }
        None => (Cents::ZERO, None),
    };
    let revenue = totals.revenue()?;
    let top_ups = totals.top_up_lines();
    let mut findings = totals.findings;
    findings.sort_by(|a, b| {
        (&a.device, a.seq, a.kind, &a.detail).cmp(&(&b.device, b.seq, b.kind, &b.detail))
    });
    let report = Report {
        date,
        site: site.cloned(),
        time_zone: settings.time_zone_name(),
        day_start: day.start,
        day_end: day.end,
        records_checked: totals.records_checked,
        kiosks: totals.kiosks,
        sites: totals.sites.into_values().collect(),
        meals: totals.meal_lines.into_values().collect(),
        revenue,
        top_ups,
        adjustments,
        balances,
        findings,
    };
    Ok(Outcome { report, proposals })
}

/// The day's operations and the ledger's sums, for a reconciliation of all sites.
type Ledger = Option<(Vec<StoredOperation>, LedgerTotals)>;

/// Reads and checks every kiosk's day, and meanwhile the ledger. Kiosks are read by two
/// readers at once (each waits on the database in turn), up to [`KIOSKS_READ_AHEAD_MAX`]
/// ahead of the checks, which run on blocking threads, as many at a time as there are cores.
/// Outcomes are sorted by device afterwards, so the order kiosks are read in does not matter.
/// One piece: the readers, the checks and the ledger read run together, joined at its end.
async fn check_kiosks<S: Store>(
    store: &S,
    day: &Day,
    site: Option<&SiteId>,
    kiosks: Vec<(Device, bool)>,
    floors: BTreeMap<AccountId, Cents>,
    mut progress: impl FnMut(usize, usize),
) -> Result<(Vec<KioskOutcome>, Ledger), ReconcileError> {
    const KIOSK_READERS: usize = 2;
    let floors = Arc::new(floors);
    let total = kiosks.len();
    let parallel = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    progress(0, total);
    let (ready, inputs) = tokio::sync::mpsc::channel(KIOSKS_READ_AHEAD_MAX);
    let read = |reader: usize| {
        let ready = ready.clone();
        let kiosks = &kiosks;
        async move {
            for (device, expected) in kiosks.iter().skip(reader).step_by(KIOSK_READERS) {
                let input = day::kiosk_input(store, device.clone(), *expected, day).await?;
                if ready.send(input).await.is_err() {
                    break;
                }
            }
            Ok::<(), ReconcileError>(())
        }
    };
    let reads = (read(0), read(1));
    drop(ready);
    let ledger = read_ledger(store, day, site);
    let mut outcomes = Vec::with_capacity(total);
    let check = async {
        // Owned here, so a failed check closes the channel and stops the reading.
        let mut inputs = inputs;
        let mut tasks = tokio::task::JoinSet::new();
        let mut finished = |result, outcomes: &mut Vec<KioskOutcome>| {
            outcomes.push(joined(result)?);
            progress(outcomes.len(), total);
            Ok::<(), ReconcileError>(())
        };
        while let Some(input) = inputs.recv().await {
            let floors = Arc::clone(&floors);
            let day = *day;
            tasks.spawn_blocking(move || kiosk::check(input, &day, &floors));
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
    Ok((outcomes, ledger?))
}

/// The day's operations and the ledger's sums, read in one snapshot; none for one site.
async fn read_ledger<S: Store>(
    store: &S,
    day: &Day,
    site: Option<&SiteId>,
) -> Result<Ledger, ReconcileError> {
    if site.is_some() {
        return Ok(None);
    }
    let mut transaction = store.begin(Mode::Read).await?;
    let result: Result<_, StoreError> = async {
        let operations = transaction.operations_between(day.start, day.end).await?;
        let totals = transaction.ledger_totals(day.start, day.end).await?;
        Ok((operations, totals))
    }
    .await;
    Ok(Some(finish(transaction, result).await?))
}

/// Runs and stores a reconciliation of `date`. Refused without running when the day is signed
/// off.
pub async fn run_and_save<S: Store>(
    store: &S,
    actor: &Actor,
    date: ServiceDate,
    site: Option<&SiteId>,
    settings: &Settings,
    now: Timestamp,
    progress: impl FnMut(usize, usize),
) -> Result<Report, ReconcileError> {
    actor.require(RUNNERS)?;
    let stored = store
        .begin(Mode::Single)
        .await?
        .reconciliation(date, site)
        .await?;
    if let Some(saved) = stored {
        refuse_signed_off(&saved)?;
    }
    let outcome = run(store, date, site, settings, progress).await?;
    let saved = SavedReconciliation {
        date,
        site: site.cloned(),
        report: serde_json::to_string(&outcome.report)
            .map_err(|error| ReconcileError::Report(error.to_string()))?,
        run_at: now,
        run_by: actor.name.clone(),
        signed_off_by: None,
        signed_off_at: None,
    };
    save(store, &saved, &outcome.proposals).await?;
    Ok(outcome.report)
}

/// Stores a reconciliation, replacing an earlier run of the same day and scope, and adds the
/// proposed voids not proposed before (a decided one keeps its decision). Refused once the
/// reconciliation is signed off.
pub async fn save<S: Store>(
    store: &S,
    saved: &SavedReconciliation,
    proposals: &[ProposedVoid],
) -> Result<(), StoreError> {
    let mut transaction = store.begin(Mode::Write).await?;
    let result = async {
        if let Some(stored) = transaction
            .reconciliation(saved.date, saved.site.as_ref())
            .await?
        {
            refuse_signed_off(&stored)?;
        }
        transaction.upsert_reconciliation(saved).await?;
        transaction.insert_proposed_voids(proposals).await
    }
    .await;
    finish(transaction, result).await
}

/// A signed-off reconciliation never changes again.
fn refuse_signed_off(saved: &SavedReconciliation) -> Result<(), StoreError> {
    if saved.signed_off_at.is_none() {
        return Ok(());
    }
    Err(StoreError::Refused(format!(
        "the reconciliation of {} ({}) is signed off by {} and cannot change",
        saved.date,
        saved.site.as_ref().map_or("all sites", SiteId::as_str),
        saved.signed_off_by.as_deref().unwrap_or_default()
    )))
}

/// A stored reconciliation of `date` (for all sites, or one).
pub async fn saved<S: Store>(
    store: &S,
    actor: &Actor,
    date: ServiceDate,
    site: Option<&SiteId>,
) -> Result<Option<SavedReconciliation>, ReconcileError> {
    actor.require(RUNNERS)?;
    Ok(store
        .begin(Mode::Single)
        .await?
        .reconciliation(date, site)
        .await?)
}

/// A stored report, parsed.
pub fn parse_report(saved: &SavedReconciliation) -> Result<Report, ReconcileError> {
    serde_json::from_str(&saved.report).map_err(|error| ReconcileError::Report(error.to_string()))
}

/// Signs a stored reconciliation off; refused if it is signed off already or while one of the
/// day's proposed voids waits for a decision.
pub async fn sign_off<S: Store>(
    store: &S,
    actor: &Actor,
    date: ServiceDate,
    site: Option<&SiteId>,
    at: Timestamp,
) -> Result<SavedReconciliation, ReconcileError> {
    actor.require(SIGNERS)?;
    let mut transaction = store.begin(Mode::Write).await?;
    let result = async {
        let stored = stored_reconciliation(&mut transaction, date, site).await?;
        refuse_signed_off(&stored)?;
        let pending = transaction.pending_voids(date).await?;
        if pending > 0 {
            return Err(StoreError::Refused(format!(
                "{pending} proposed void(s) of {date} are still pending: approve or reject them first"
            )));
        }
        transaction.sign_off(date, site, &actor.name, at).await?;
        stored_reconciliation(&mut transaction, date, site).await
    }
    .await;
    Ok(finish(transaction, result).await?)
}

async fn stored_reconciliation<X: Transaction>(
    transaction: &mut X,
    date: ServiceDate,
    site: Option<&SiteId>,
) -> Result<SavedReconciliation, StoreError> {
    transaction
        .reconciliation(date, site)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "reconciliation",
            id: format!("{date} {}", site.map_or("", SiteId::as_str)),
        })
}

/// Proposed voids of one day, or of every day, by id.
pub async fn proposed_voids<S: Store>(
    store: &S,
    actor: &Actor,
    date: Option<ServiceDate>,
) -> Result<Vec<ProposedVoid>, ReconcileError> {
    actor.require(RUNNERS)?;
    Ok(store
        .begin(Mode::Single)
        .await?
        .proposed_voids(date)
        .await?)
}

/// Approves (crediting the meal back on the next open day) or rejects a proposed void, once.
pub async fn decide<S: Store>(
    store: &S,
    actor: &Actor,
    id: i64,
    approve: bool,
    settings: &Settings,
    now: Timestamp,
) -> Result<ProposedVoid, ReconcileError> {
    actor.require(SIGNERS)?;
    let mut transaction = store.begin(Mode::Write).await?;
    let result = decide_in(&mut transaction, actor, id, approve, settings, now).await;
    finish(transaction, result).await
}

async fn decide_in<X: Transaction>(
    transaction: &mut X,
    actor: &Actor,
    id: i64,
    approve: bool,
    settings: &Settings,
    now: Timestamp,
) -> Result<ProposedVoid, ReconcileError> {
    let not_found = || StoreError::NotFound {
        what: "proposed void",
        id: id.to_string(),
    };
    let proposal = transaction.proposed_void(id).await?.ok_or_else(not_found)?;
    if proposal.status != VoidStatus::Pending {
        return Err(StoreError::Refused(format!(
            "proposed void {id} was already {}",
            proposal.status.as_str()
        ))
        .into());
    }
    let (status, correction_date) = if approve {
        refuse_if_voided_at_kiosk(transaction, &proposal).await?;
        let correction_date = next_open_day(transaction, proposal.date).await?;
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
            user: actor.name.clone(),
            at: Day::new(correction_date, settings)?.start,
        };
        crate::manage::accounts::apply(transaction, &operation).await?;
        (VoidStatus::Approved, Some(correction_date))
    } else {
        (VoidStatus::Rejected, None)
    };
    transaction
        .decide_void(id, status, &actor.name, now, correction_date)
        .await?;
    Ok(transaction.proposed_void(id).await?.ok_or_else(not_found)?)
}

/// A meal is credited back once: not by finance when the kiosk voided it after the proposal.
async fn refuse_if_voided_at_kiosk<X: Transaction>(
    transaction: &mut X,
    proposal: &ProposedVoid,
) -> Result<(), StoreError> {
    let voided_at_kiosk = transaction
        .movements_of(&proposal.device, &[proposal.seq])
        .await?
        .iter()
        .any(|movement| movement.reverses == Some(proposal.seq));
    if voided_at_kiosk {
        return Err(StoreError::Refused(format!(
            "meal {}/{} was voided at the kiosk since: its money is back already; reject this \
             proposal",
            proposal.device, proposal.seq
        )));
    }
    Ok(())
}

/// The first day after `date` whose reconciliation (all sites) is not signed off.
pub async fn next_open_day<X: Transaction>(
    transaction: &mut X,
    date: ServiceDate,
) -> Result<ServiceDate, ReconcileError> {
    let mut candidate = next_date(date)?;
    for _ in 0..NEXT_OPEN_DAY_SEARCH_DAYS_MAX {
        match transaction.reconciliation(candidate, None).await? {
            Some(saved) if saved.signed_off_at.is_some() => candidate = next_date(candidate)?,
            _ => return Ok(candidate),
        }
    }
    Err(ReconcileError::Date(format!(
        "no open day within {NEXT_OPEN_DAY_SEARCH_DAYS_MAX} days after {date}"
    )))
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
