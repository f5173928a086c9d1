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

mod journal;
mod records;
mod rows;
mod tables;

use std::io::Write;

use proto::{ServiceDate, SiteId};

use crate::limits::PERIOD_DAYS_MAX;
use crate::manage::Actor;
use crate::reconcile::{self, ReconcileError, Settings};
use crate::store::{Store, StoreError};

use journal::write_journal;
pub use journal::{ACCOUNTS, FEC_COLUMNS};
use records::write_records;
pub use records::{KeyLine, Verification, Violation, verify};
use rows::{Wanted, collect};
use tables::{write_meals, write_summary, write_top_ups};

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

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
