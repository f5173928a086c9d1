//! Finance exports of a day or a period, and the check of a signed-records export.
//!
//! - `meals`: CSV, one row per meal, with whether it was voided.
//! - `top-ups`: CSV, one row per top-up at a kiosk, at the counter or online.
//! - `summary`: CSV, one row per site and day: meals, revenue, top-ups, cash.
//! - `journal`: the accounting journal in the French FEC column layout (tab-separated, amounts
//!   with a decimal comma), balanced double entries per day, site and kind; the chart of
//!   accounts is [`ACCOUNTS`] (documented in README.md).
//! - `records`: the raw signed records as JSON Lines in the audit format, each kiosk's public
//!   key first as a line of its own; [`verify`] checks such a file.
//!
//! The day a record belongs to is the reconciliation's (see [`crate::reconcile`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};

use proto::record::{MealVia, TopUpMethod};
use proto::{
    Cents, ChainHead, ChainVerifier, DeviceId, Payload, PublicKey, RecordBody, Seq, ServiceDate,
    SignedRecord, SiteId, Timestamp,
};
use serde::{Deserialize, Serialize};

use crate::manage::Actor;
use crate::reconcile::{self, Day, FindingKind, ReconcileError, Settings};
use crate::store::{ChainRows, DeviceRows, FinanceRows, Mode, Store, StoreError};

use crate::limits::{PERIOD_DAYS_MAX, VERIFY_LINES_MAX};

/// The accounts of the journal: number, label, and what moves through it.
pub const ACCOUNTS: [(&str, &str, &str); 8] = [
    (
        "4191",
        "Familles - avances reçues",
        "families' prepaid balances: credited by top-ups, debited by meals",
    ),
    (
        "706",
        "Prestations de services - repas",
        "meal revenue, net of voided meals",
    ),
    (
        "530",
        "Caisse",
        "cash paid in at kiosks and at the counter, as counted",
    ),
    (
        "5112",
        "Chèques à encaisser",
        "cheques paid in at kiosks and at the counter",
    ),
    (
        "467",
        "Prestataire de paiement en ligne",
        "online payments, due from the payment provider",
    ),
    (
        "658",
        "Charges diverses de gestion courante",
        "cash shortfalls and credits by finance",
    ),
    (
        "758",
        "Produits divers de gestion courante",
        "cash surpluses and debits by finance",
    ),
    (
        "471",
        "Compte d'attente",
        "reserved: never used by these exports",
    ),
];

/// The FEC columns, in order.
pub const FEC_COLUMNS: [&str; 18] = [
    "JournalCode",
    "JournalLib",
    "EcritureNum",
    "EcritureDate",
    "CompteNum",
    "CompteLib",
    "CompAuxNum",
    "CompAuxLib",
    "PieceRef",
    "PieceDate",
    "EcritureLib",
    "Debit",
    "Credit",
    "EcritureLet",
    "DateLet",
    "ValidDate",
    "Montantdevise",
    "Idevise",
];

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Reconcile(#[from] ReconcileError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("export: {0}")]
    Io(#[from] std::io::Error),
    #[error("export: {0}")]
    Csv(#[from] csv::Error),
    #[error("period {from} to {to}: {reason}")]
    Period {
        from: ServiceDate,
        to: ServiceDate,
        reason: String,
    },
    #[error("unknown export {0:?}: expected meals, top-ups, summary, journal or records")]
    UnknownKind(String),
    /// The actor may not export.
    #[error("{0}")]
    Forbidden(String),
}

/// What to export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportKind {
    Meals,
    TopUps,
    Summary,
    Journal,
    Records,
}

impl ExportKind {
    pub fn parse(text: &str) -> Result<ExportKind, ExportError> {
        match text {
            "meals" => Ok(ExportKind::Meals),
            "top-ups" => Ok(ExportKind::TopUps),
            "summary" => Ok(ExportKind::Summary),
            "journal" => Ok(ExportKind::Journal),
            "records" => Ok(ExportKind::Records),
            other => Err(ExportError::UnknownKind(other.to_owned())),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportKind::Meals | ExportKind::TopUps | ExportKind::Summary => {
                "text/csv; charset=utf-8"
            }
            ExportKind::Journal => "text/tab-separated-values; charset=utf-8",
            ExportKind::Records => "application/jsonl",
        }
    }
}

/// Days `from..=to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub from: ServiceDate,
    pub to: ServiceDate,
}

impl Period {
    pub fn new(from: ServiceDate, to: ServiceDate) -> Result<Period, ExportError> {
        let period = Period { from, to };
        if to < from {
            return Err(period.error("ends before it starts"));
        }
        period.dates()?;
        Ok(period)
    }

    fn error(&self, reason: &str) -> ExportError {
        ExportError::Period {
            from: self.from,
            to: self.to,
            reason: reason.to_owned(),
        }
    }

    fn dates(&self) -> Result<Vec<ServiceDate>, ExportError> {
        let mut dates = vec![self.from];
        while let Some(last) = dates.last().copied()
            && last < self.to
        {
            if dates.len() >= PERIOD_DAYS_MAX as usize {
                return Err(self.error(&format!("longer than {PERIOD_DAYS_MAX} days")));
            }
            dates.push(reconcile::next_date(last)?);
        }
        Ok(dates)
    }
}

/// Writes one export of `period` for all sites or one; returns the lines written (headers
/// included).
pub async fn write<S: Store>(
    store: &S,
    actor: &Actor,
    kind: ExportKind,
    period: Period,
    site: Option<&SiteId>,
    settings: &Settings,
    out: &mut (impl Write + Send),
) -> Result<u64, ExportError> {
    actor
        .require(reconcile::RUNNERS)
        .map_err(|error| ExportError::Forbidden(error.to_string()))?;
    match kind {
        ExportKind::Records => write_records(store, period, site, settings, out).await,
        ExportKind::Summary => write_summary(store, period, site, settings, out).await,
        ExportKind::Meals | ExportKind::TopUps | ExportKind::Journal => {
            let wanted = if kind == ExportKind::Journal {
                Wanted::SumsOnly
            } else {
                Wanted::Rows
            };
            let rows = collect(store, period, site, settings, wanted).await?;
            match kind {
                ExportKind::Meals => write_meals(&rows, out),
                ExportKind::TopUps => write_top_ups(&rows, out),
                _ => write_journal(&rows, out),
            }
        }
    }
}

/// One meal as exported.
#[derive(Debug)]
struct MealRow {
    date: ServiceDate,
    site: SiteId,
    device: DeviceId,
    seq: Seq,
    at: Timestamp,
    meal: proto::record::Meal,
    voided: bool,
}

/// One top-up as exported: a kiosk's record or a back-office operation.
#[derive(Debug)]
struct TopUpRow {
    date: ServiceDate,
    source: &'static str,
    site: Option<SiteId>,
    /// `device/seq` or `operation/id`.
    origin: String,
    at: Timestamp,
    account: String,
    amount: Cents,
    method: &'static str,
    reference: String,
    voided: bool,
}

/// Sums of one site and day for the journal.
#[derive(Debug, Default)]
struct SiteSums {
    meals: i64,
    voided_meals: i64,
    cash: i64,
    voided_cash: i64,
    cheques: i64,
    voided_cheques: i64,
    cash_difference: i64,
}

#[derive(Debug, Default)]
struct Rows {
    meals: Vec<MealRow>,
    top_ups: Vec<TopUpRow>,
    sums: BTreeMap<(ServiceDate, String), SiteSums>,
    /// Finance's adjustments per day: credits and debits.
    adjustments: BTreeMap<ServiceDate, (i64, i64)>,
}

/// Which rows an export needs: the journal needs only the sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wanted {
    Rows,
    SumsOnly,
}

/// Reads every day's records and operations of the period; payloads are parsed, not verified
/// (the reconciliation verifies). A kiosk's records are parsed on a blocking thread while the
/// next kiosk's are read, at most one kiosk a core in flight; results are taken in kiosk
/// order, so the rows come out as a sequential read would give them.
async fn collect<S: Store>(
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
            for operation in operations {
                let (source, method) = match operation.kind.as_str() {
                    "top_up" if operation.detail.starts_with("cheque") => ("counter", "cheque"),
                    "top_up" => ("counter", "cash"),
                    "online_payment" => ("online", "online"),
                    _ => {
                        let entry = rows.adjustments.entry(date).or_insert((0, 0));
                        if operation.amount.get() > 0 {
                            entry.0 += operation.amount.get();
                        } else {
                            entry.1 -= operation.amount.get();
                        }
                        continue;
                    }
                };
                let sums = rows.sums.entry((date, String::new())).or_default();
                match method {
                    "cash" => sums.cash += operation.amount.get(),
                    "cheque" => sums.cheques += operation.amount.get(),
                    _ => {}
                }
                rows.top_ups.push(TopUpRow {
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
    }
    Ok(rows)
}

/// One kiosk's rows and sums of a day.
#[derive(Debug)]
struct KioskRows {
    site: SiteId,
    meals: Vec<MealRow>,
    top_ups: Vec<TopUpRow>,
    sums: SiteSums,
}

impl Rows {
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

fn joined(result: Result<KioskRows, tokio::task::JoinError>) -> Result<KioskRows, ExportError> {
    result.map_err(|error| ExportError::Reconcile(ReconcileError::Task(error.to_string())))
}

/// Parses one kiosk's records of `date` into rows and sums. Runs on a blocking thread.
fn kiosk_rows(input: reconcile::day::KioskInput, date: ServiceDate, wanted: Wanted) -> KioskRows {
    let device = input.device.id.clone();
    let mut kiosk = KioskRows {
        site: input.device.site.clone(),
        meals: Vec::new(),
        top_ups: Vec::new(),
        sums: SiteSums::default(),
    };
    let parsed: Vec<(Seq, Timestamp, RecordBody)> = input
        .records
        .iter()
        .filter_map(|stored| {
            Payload::parse(&stored.record.payload)
                .ok()
                .map(|payload| (stored.seq, payload.at, payload.body))
        })
        .collect();
    let mut voided: BTreeSet<Seq> = BTreeSet::new();
    let sums = &mut kiosk.sums;
    for (_, _, body) in &parsed {
        let RecordBody::Void(void) = body else {
            continue;
        };
        let target = parsed
            .binary_search_by_key(&void.voided_seq, |(seq, _, _)| *seq)
            .ok()
            .map(|index| parsed[index].2.clone())
            .or_else(|| {
                input
                    .voided_before
                    .get(&void.voided_seq)
                    .and_then(|signed| Payload::parse(&signed.payload).ok())
                    .map(|payload| payload.body)
            });
        voided.insert(void.voided_seq);
        match target {
            Some(RecordBody::Meal(meal)) => sums.voided_meals += meal.price.get(),
            Some(RecordBody::TopUp(top_up)) => match top_up.method {
                TopUpMethod::Cash => sums.voided_cash += top_up.amount.get(),
                TopUpMethod::Cheque => sums.voided_cheques += top_up.amount.get(),
            },
            _ => {}
        }
    }
    for (seq, at, body) in parsed {
        match body {
            RecordBody::Meal(meal) => {
                sums.meals += meal.price.get();
                if wanted == Wanted::Rows {
                    kiosk.meals.push(MealRow {
                        date,
                        site: kiosk.site.clone(),
                        device: device.clone(),
                        seq,
                        at,
                        meal,
                        voided: voided.contains(&seq),
                    });
                }
            }
            RecordBody::TopUp(top_up) => {
                let method = match top_up.method {
                    TopUpMethod::Cash => {
                        sums.cash += top_up.amount.get();
                        "cash"
                    }
                    TopUpMethod::Cheque => {
                        sums.cheques += top_up.amount.get();
                        "cheque"
                    }
                };
                kiosk.top_ups.push(TopUpRow {
                    date,
                    source: "kiosk",
                    site: Some(kiosk.site.clone()),
                    origin: format!("{device}/{seq}"),
                    at,
                    account: top_up.account.to_string(),
                    amount: top_up.amount,
                    method,
                    reference: top_up
                        .reference
                        .as_ref()
                        .map_or_else(String::new, ToString::to_string),
                    voided: voided.contains(&seq),
                });
            }
            RecordBody::DayClose(close) if Some(seq) == input.close => {
                sums.cash_difference += close.cash_difference.get();
            }
            _ => {}
        }
    }
    kiosk
}

fn write_meals(rows: &Rows, out: &mut impl Write) -> Result<u64, ExportError> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record([
        "service_date",
        "site",
        "device",
        "seq",
        "at",
        "service",
        "meal_type",
        "bracket",
        "pupil",
        "account",
        "price_cents",
        "via",
        "voided",
    ])?;
    // Fields are written one by one through one buffer: a million rows, no string each.
    let mut text = String::new();
    let mut formatted = |writer: &mut csv::Writer<_>, value: std::fmt::Arguments<'_>| {
        use std::fmt::Write as _;
        text.clear();
        write!(text, "{value}").map_err(|_| std::io::Error::other("formatting a field"))?;
        writer.write_field(text.as_str())
    };
    for row in &rows.meals {
        formatted(&mut writer, format_args!("{}", row.date))?;
        writer.write_field(row.site.as_str())?;
        writer.write_field(row.device.as_str())?;
        formatted(&mut writer, format_args!("{}", row.seq))?;
        formatted(&mut writer, format_args!("{}", row.at))?;
        writer.write_field(row.meal.service.as_str())?;
        writer.write_field(row.meal.meal_type.as_str())?;
        writer.write_field(row.meal.bracket.as_str())?;
        writer.write_field(row.meal.pupil.as_str())?;
        writer.write_field(row.meal.account.as_str())?;
        formatted(&mut writer, format_args!("{}", row.meal.price.get()))?;
        match &row.meal.via {
            MealVia::Card(uid) => formatted(&mut writer, format_args!("card {uid}"))?,
            MealVia::Staff(staff) => formatted(&mut writer, format_args!("staff {staff}"))?,
        }
        writer.write_field(if row.voided { "true" } else { "false" })?;
        writer.write_record(None::<&[u8]>)?;
    }
    writer.flush()?;
    Ok(count(rows.meals.len()) + 1)
}

fn write_top_ups(rows: &Rows, out: &mut impl Write) -> Result<u64, ExportError> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record([
        "service_date",
        "source",
        "site",
        "origin",
        "at",
        "account",
        "amount_cents",
        "method",
        "reference",
        "voided",
    ])?;
    for row in &rows.top_ups {
        writer.write_record([
            row.date.to_string(),
            row.source.to_owned(),
            row.site
                .as_ref()
                .map_or_else(String::new, ToString::to_string),
            row.origin.clone(),
            row.at.to_string(),
            row.account.clone(),
            row.amount.get().to_string(),
            row.method.to_owned(),
            row.reference.clone(),
            row.voided.to_string(),
        ])?;
    }
    writer.flush()?;
    Ok(count(rows.top_ups.len()) + 1)
}

/// The per-site summary comes from the reconciliation: the stored one when the day was
/// reconciled, a fresh run otherwise.
async fn write_summary<S: Store>(
    store: &S,
    period: Period,
    site: Option<&SiteId>,
    settings: &Settings,
    out: &mut (impl Write + Send),
) -> Result<u64, ExportError> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record([
        "service_date",
        "site",
        "kiosks",
        "meals",
        "revenue_cents",
        "voided_meals_cents",
        "top_ups_cash_cents",
        "top_ups_cheque_cents",
        "cash_expected_cents",
        "cash_counted_cents",
        "cash_difference_cents",
        "signed_off_by",
    ])?;
    let mut lines = 1;
    for date in period.dates()? {
        let saved = store
            .begin(Mode::Single)
            .await?
            .reconciliation(date, site)
            .await?;
        let (report, signed_off_by) = match &saved {
            Some(saved) => (reconcile::parse_report(saved)?, saved.signed_off_by.clone()),
            None => (
                reconcile::run(store, date, site, settings, |_, _| {})
                    .await?
                    .report,
                None,
            ),
        };
        for summary in &report.sites {
            writer.write_record([
                date.to_string(),
                summary
                    .site
                    .as_ref()
                    .map_or_else(String::new, ToString::to_string),
                summary.kiosks.to_string(),
                summary.meals.to_string(),
                summary.revenue.get().to_string(),
                summary.voided_meals.get().to_string(),
                summary.top_ups_cash.get().to_string(),
                summary.top_ups_cheque.get().to_string(),
                summary.cash_expected.get().to_string(),
                summary.cash_counted.get().to_string(),
                summary.cash_difference.get().to_string(),
                signed_off_by.clone().unwrap_or_default(),
            ])?;
            lines += 1;
        }
    }
    writer.flush()?;
    Ok(lines)
}

/// One double entry: debit one account, credit another.
struct Entry<'a> {
    journal: (&'static str, &'static str),
    date: ServiceDate,
    site: &'a str,
    label: String,
    debit: &'static str,
    credit: &'static str,
    amount: i64,
}

fn write_journal(rows: &Rows, out: &mut impl Write) -> Result<u64, ExportError> {
    const SALES: (&str, &str) = ("VT", "Ventes de repas");
    const CASH: (&str, &str) = ("CA", "Caisse");
    const CHEQUES: (&str, &str) = ("CH", "Chèques");
    const ONLINE: (&str, &str) = ("WEB", "Paiements en ligne");
    const MISC: (&str, &str) = ("OD", "Opérations diverses");
    let mut entries = Vec::new();
    for ((date, site), sums) in &rows.sums {
        let place = if site.is_empty() { "back-office" } else { site };
        let date = *date;
        let mut push = |journal, label: &str, debit, credit, amount: i64| {
            // An amount of the other sign swaps the sides, so every line is positive.
            let (debit, credit, amount) = if amount < 0 {
                (credit, debit, -amount)
            } else {
                (debit, credit, amount)
            };
            if amount != 0 {
                entries.push(Entry {
                    journal,
                    date,
                    site: place,
                    label: format!("{label} {place} {date}"),
                    debit,
                    credit,
                    amount,
                });
            }
        };
        push(SALES, "Repas", "4191", "706", sums.meals);
        push(SALES, "Repas annulés", "706", "4191", sums.voided_meals);
        push(CASH, "Recharges espèces", "530", "4191", sums.cash);
        push(
            CASH,
            "Recharges espèces annulées",
            "4191",
            "530",
            sums.voided_cash,
        );
        push(CHEQUES, "Recharges chèques", "5112", "4191", sums.cheques);
        push(
            CHEQUES,
            "Recharges chèques annulées",
            "4191",
            "5112",
            sums.voided_cheques,
        );
        // Counted minus expected: a surplus is a gain, a shortfall a charge.
        if sums.cash_difference > 0 {
            push(
                CASH,
                "Excédent de caisse",
                "530",
                "758",
                sums.cash_difference,
            );
        } else {
            push(
                CASH,
                "Manquant de caisse",
                "658",
                "530",
                -sums.cash_difference,
            );
        }
    }
    for row in rows.top_ups.iter().filter(|row| row.source == "online") {
        entries.push(Entry {
            journal: ONLINE,
            date: row.date,
            site: "back-office",
            label: format!("Paiement en ligne {}", row.reference),
            debit: "467",
            credit: "4191",
            amount: row.amount.get(),
        });
    }
    for (date, (credits, debits)) in &rows.adjustments {
        for (label, debit, credit, amount) in [
            (
                "Corrections en faveur des familles",
                "658",
                "4191",
                *credits,
            ),
            ("Corrections au débit des familles", "4191", "758", *debits),
        ] {
            if amount != 0 {
                entries.push(Entry {
                    journal: MISC,
                    date: *date,
                    site: "back-office",
                    label: format!("{label} {date}"),
                    debit,
                    credit,
                    amount,
                });
            }
        }
    }
    entries.sort_by(|a, b| (a.journal.0, a.date).cmp(&(b.journal.0, b.date)));

    let label_of = |number: &str| {
        ACCOUNTS
            .iter()
            .find(|(account, _, _)| *account == number)
            .map_or("", |(_, label, _)| label)
    };
    writeln!(out, "{}", FEC_COLUMNS.join("\t"))?;
    let mut lines = 1;
    let mut numbers: BTreeMap<&str, u64> = BTreeMap::new();
    for entry in &entries {
        let number = numbers.entry(entry.journal.0).or_insert(0);
        *number += 1;
        let ecriture = format!("{}{:06}", entry.journal.0, number);
        let date = fec_date(entry.date);
        let piece = format!("{}-{}", entry.date, entry.site);
        for (account, debit, credit) in [
            (entry.debit, entry.amount, 0),
            (entry.credit, 0, entry.amount),
        ] {
            let fields = [
                entry.journal.0.to_owned(),
                entry.journal.1.to_owned(),
                ecriture.clone(),
                date.clone(),
                account.to_owned(),
                label_of(account).to_owned(),
                String::new(),
                String::new(),
                piece.clone(),
                date.clone(),
                entry.label.replace(['\t', '\n'], " "),
                fec_amount(debit),
                fec_amount(credit),
                String::new(),
                String::new(),
                date.clone(),
                String::new(),
                String::new(),
            ];
            writeln!(out, "{}", fields.join("\t"))?;
            lines += 1;
        }
    }
    out.flush()?;
    Ok(lines)
}

fn fec_date(date: ServiceDate) -> String {
    date.to_string().replace('-', "")
}

/// Cents as FEC writes amounts: `1234,50`.
fn fec_amount(cents: i64) -> String {
    format!("{},{:02}", cents / 100, (cents % 100).abs())
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// A kiosk's key line of a records export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyLine {
    pub device: DeviceId,
    pub site: SiteId,
    /// SubjectPublicKeyInfo PEM, as `openssl pkeyutl -verify -pubin` reads it.
    pub public_key: String,
    pub revoked_at: Option<Timestamp>,
    /// The kiosk's records in the file run from `first_seq` to `last_seq`; the first is the
    /// day close before the period when there is one, which anchors the chain.
    pub first_seq: Seq,
    pub last_seq: Seq,
}

async fn write_records<S: Store>(
    store: &S,
    period: Period,
    site: Option<&SiteId>,
    settings: &Settings,
    out: &mut (impl Write + Send),
) -> Result<u64, ExportError> {
    let days = period
        .dates()?
        .into_iter()
        .map(|date| Day::new(date, settings))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ranges = Vec::new();
    let devices = store.begin(Mode::Single).await?.devices().await?;
    for entry in devices {
        if site.is_some_and(|site| &entry.device.site != site) {
            continue;
        }
        let (mut first, mut last) = (None, None);
        for day in &days {
            let input =
                reconcile::day::kiosk_input(store, entry.device.clone(), false, day).await?;
            let start = input
                .anchor
                .as_ref()
                .map(|anchor| anchor.seq)
                .or_else(|| input.records.first().map(|record| record.seq));
            first = first.or(start);
            last = input.records.last().map(|record| record.seq).max(last);
        }
        if let (Some(first), Some(last)) = (first, last) {
            ranges.push((entry, first, last));
        }
    }
    let mut lines = 0;
    for (entry, first, last) in &ranges {
        let line = KeyLine {
            device: entry.device.id.clone(),
            site: entry.device.site.clone(),
            public_key: entry.device.key.to_pem(),
            revoked_at: entry.device.revoked_at,
            first_seq: *first,
            last_seq: *last,
        };
        writeln!(
            out,
            "{}",
            serde_json::to_string(&line).map_err(std::io::Error::other)?
        )?;
        lines += 1;
    }
    for (entry, first, last) in &ranges {
        let stored_records = store
            .begin(Mode::Single)
            .await?
            .record_range(&entry.device.id, *first, Some(*last))
            .await?;
        for stored in stored_records {
            writeln!(out, "{}", stored.record.to_json())?;
            lines += 1;
        }
    }
    out.flush()?;
    Ok(lines)
}

/// One thing wrong in a records export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub kind: FindingKind,
    pub device: Option<DeviceId>,
    pub seq: Option<Seq>,
    /// 1-based line of the file, when one line is at fault.
    pub line: Option<u64>,
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = serde_json::to_value(self.kind)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default();
        write!(f, "{kind}")?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// What [`verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verification {
    pub devices: u64,
    pub records: u64,
    pub violations: Vec<Violation>,
}

/// Checks a records export: every line reads, every record's signature verifies against its
/// kiosk's key, every kiosk's chain links without gap, duplicate, reordering or fork from its
/// first record to its `last_seq`, and nothing is signed after a revocation.
pub fn verify(input: impl BufRead) -> Result<Verification, ExportError> {
    #[derive(Deserialize)]
    struct Claim {
        device: DeviceId,
        at: Option<Timestamp>,
    }
    let mut verification = Verification::default();
    let mut keys: BTreeMap<DeviceId, (KeyLine, PublicKey)> = BTreeMap::new();
    let mut records: BTreeMap<DeviceId, Vec<(u64, SignedRecord)>> = BTreeMap::new();
    let mut violation = |kind, device: Option<DeviceId>, seq, line, detail: String| {
        verification.violations.push(Violation {
            kind,
            device,
            seq,
            line,
            detail,
        });
    };
    let mut number = 0_u64;
    for line in input.lines() {
        let line = line?;
        number += 1;
        if number > VERIFY_LINES_MAX {
            violation(
                FindingKind::Truncated,
                None,
                None,
                Some(number),
                format!("more than {VERIFY_LINES_MAX} lines: the rest is not checked"),
            );
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        if let Ok(key_line) = serde_json::from_str::<KeyLine>(&line) {
            match PublicKey::from_pem(&key_line.public_key) {
                Ok(key) => {
                    if keys
                        .insert(key_line.device.clone(), (key_line.clone(), key))
                        .is_some()
                    {
                        violation(
                            FindingKind::WrongDevice,
                            Some(key_line.device),
                            None,
                            Some(number),
                            "a second key for the same kiosk".to_owned(),
                        );
                    }
                }
                Err(error) => violation(
                    FindingKind::BadRecord,
                    Some(key_line.device),
                    None,
                    Some(number),
                    format!("public key unreadable: {error}"),
                ),
            }
            continue;
        }
        let record = match SignedRecord::from_json(line.as_bytes()) {
            Ok(record) => record,
            Err(error) => {
                violation(
                    FindingKind::BadRecord,
                    None,
                    None,
                    Some(number),
                    error.to_string(),
                );
                continue;
            }
        };
        match serde_json::from_str::<Claim>(&record.payload) {
            Ok(claim) => records
                .entry(claim.device)
                .or_default()
                .push((number, record)),
            Err(error) => violation(
                FindingKind::BadRecord,
                None,
                record.claimed_seq(),
                Some(number),
                format!("payload names no device: {error}"),
            ),
        }
    }
    verification.devices = count(keys.len());
    for (device, lines) in records {
        verification.records += count(lines.len());
        let Some((key_line, key)) = keys.get(&device) else {
            violation(
                FindingKind::WrongDevice,
                Some(device.clone()),
                None,
                lines.first().map(|(line, _)| *line),
                format!(
                    "{} record(s) of a kiosk whose key is not in the file",
                    lines.len()
                ),
            );
            continue;
        };
        // The first record anchors the chain unless it is the kiosk's very first.
        let mut start = ChainHead::GENESIS;
        let mut rest = &lines[..];
        if let Some((line, first)) = lines.first()
            && first.claimed_seq() != Some(Seq::FIRST)
        {
            match first.verify(key) {
                Ok(record) => start = ChainHead::after(&record),
                Err(error) => {
                    let kind = if reconcile::is_day_close(first) {
                        FindingKind::ForgedDayClose
                    } else {
                        FindingKind::BadSignature
                    };
                    violation(
                        kind,
                        Some(device.clone()),
                        first.claimed_seq(),
                        Some(*line),
                        error.to_string(),
                    );
                    if let Some(seq) = first.claimed_seq() {
                        start = ChainHead {
                            next_seq: seq.next(),
                            prev: first.payload_hash(),
                        };
                    }
                }
            }
            rest = &lines[1..];
        }
        let mut verifier = ChainVerifier::new(device.clone(), *key, start);
        for (_, record) in rest {
            verifier.push(record);
        }
        let report = verifier.finish_expecting(key_line.last_seq);
        for error in &report.errors {
            let (line, is_close) = match error {
                proto::ChainError::Record { position, .. } => {
                    rest.get(*position).map_or((None, false), |(line, record)| {
                        (Some(*line), reconcile::is_day_close(record))
                    })
                }
                _ => (None, false),
            };
            let seq = match error {
                proto::ChainError::Record { seq, .. } => *seq,
                proto::ChainError::Gap { from, .. } => Some(*from),
                proto::ChainError::Truncated { expected, .. } => Some(*expected),
                proto::ChainError::WrongDevice { seq, .. }
                | proto::ChainError::Duplicate { seq, .. }
                | proto::ChainError::Fork { seq, .. }
                | proto::ChainError::Reorder { seq, .. }
                | proto::ChainError::BeforeStart { seq, .. }
                | proto::ChainError::BrokenLink { seq, .. } => Some(*seq),
            };
            violation(
                reconcile::chain_error_kind(error, is_close),
                Some(device.clone()),
                seq,
                line,
                error.to_string(),
            );
        }
        if let Some(revoked_at) = key_line.revoked_at {
            for (line, record) in &lines {
                let at = serde_json::from_str::<Claim>(&record.payload)
                    .ok()
                    .and_then(|claim| claim.at);
                if at.is_some_and(|at| at >= revoked_at) {
                    violation(
                        FindingKind::SignedAfterRevocation,
                        Some(device.clone()),
                        record.claimed_seq(),
                        Some(*line),
                        format!(
                            "signed at {} after the key was revoked at {revoked_at}",
                            at.map_or_else(String::new, |at| at.to_string())
                        ),
                    );
                }
            }
        }
    }
    Ok(verification)
}
