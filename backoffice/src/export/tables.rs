//! The CSV exports: meals, top-ups, and the per-site summary.

use std::borrow::Cow;
use std::io::Write;

use proto::SiteId;
use proto::record::MealVia;

use super::rows::Rows;
use super::{ExportError, Period, count};
use crate::reconcile::{self, Settings};
use crate::store::{FinanceRows, Mode, Store};

/// A text field as a spreadsheet will show it: one that starts like a formula (`=`, `+`, `-`,
/// `@`, a tab or a carriage return) gets a leading `'`, so that opening an export never runs
/// what a pupil's reference or a payment note carried. Numbers are written as they are.
pub(super) fn cell(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

pub(super) fn write_meals(rows: &Rows, out: &mut impl Write) -> Result<u64, ExportError> {
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
        writer.write_field(cell(row.site.as_str()).as_ref())?;
        writer.write_field(cell(row.device.as_str()).as_ref())?;
        formatted(&mut writer, format_args!("{}", row.seq))?;
        formatted(&mut writer, format_args!("{}", row.at))?;
        writer.write_field(cell(row.meal.service.as_str()).as_ref())?;
        writer.write_field(cell(row.meal.meal_type.as_str()).as_ref())?;
        writer.write_field(cell(row.meal.bracket.as_str()).as_ref())?;
        writer.write_field(cell(row.meal.pupil.as_str()).as_ref())?;
        writer.write_field(cell(row.meal.account.as_str()).as_ref())?;
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

pub(super) fn write_top_ups(rows: &Rows, out: &mut impl Write) -> Result<u64, ExportError> {
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
            cell(&row.origin).into_owned(),
            row.at.to_string(),
            cell(&row.account).into_owned(),
            row.amount.get().to_string(),
            row.method.to_owned(),
            cell(&row.reference).into_owned(),
            row.voided.to_string(),
        ])?;
    }
    writer.flush()?;
    Ok(count(rows.top_ups.len()) + 1)
}

/// The per-site summary comes from the reconciliation: the stored one when the day was
/// reconciled, a fresh run otherwise.
pub(super) async fn write_summary<S: Store>(
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
                cell(signed_off_by.as_deref().unwrap_or_default()).into_owned(),
            ])?;
            lines += 1;
        }
    }
    writer.flush()?;
    Ok(lines)
}
