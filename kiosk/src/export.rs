//! `kiosk export`: the kiosk's signed records as JSON Lines in the audit format, one record a
//! line in `seq` order, and its public key as PEM beside them.

use std::io::Write;

use proto::Seq;

use crate::ledger::{Ledger, LedgerError};

/// Writes records `from..=to` (all when unbounded) to `out`; returns how many.
pub fn write_records(
    ledger: &Ledger,
    from: Seq,
    to: Option<Seq>,
    out: &mut impl Write,
) -> Result<u64, ExportError> {
    let mut written = 0_u64;
    ledger.visit_records(from, to, |record| -> Result<(), ExportError> {
        writeln!(out, "{}", record.to_json())?;
        written += 1;
        Ok(())
    })?;
    out.flush()?;
    Ok(written)
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("export: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// What `kiosk status` reports, read from the ledger only: a running kiosk is not disturbed.
/// `kiosk status --json` prints it as one JSON object; the package's upgrade check reads
/// `unsynced_records` from it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StatusReport {
    pub device: String,
    pub site: String,
    /// The version of the `kiosk` program that read the ledger.
    pub version: String,
    pub last_seq: Option<u64>,
    pub acknowledged_seq: Option<u64>,
    /// Records the back-office has not acknowledged: they exist only on this kiosk.
    pub unsynced_records: u64,
    pub snapshot_version: Option<u64>,
    /// When the snapshot was applied, RFC 3339.
    pub snapshot_applied_at: Option<String>,
    pub snapshot_age_s: Option<i64>,
    /// The kiosk's local date of `meals_today` and `top_ups_today`.
    pub date: String,
    pub meals_today: u64,
    pub top_ups_today: u64,
}

impl StatusReport {
    /// Reads the report from `ledger`, with today in the kiosk's time zone.
    pub fn read(
        config: &crate::config::KioskConfig,
        ledger: &Ledger,
    ) -> Result<StatusReport, LedgerError> {
        let counts = ledger.counts()?;
        let snapshot = ledger.snapshot_state()?;
        let time_zone = jiff::tz::TimeZone::get(&config.time_zone)
            .map_err(|error| LedgerError::Stored(error.to_string()))?;
        let now = jiff::Timestamp::now();
        let day = ledger.day_counts(now, &time_zone)?;
        Ok(StatusReport {
            device: config.device.to_string(),
            site: config.site.to_string(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            last_seq: counts.last_seq.map(Seq::get),
            acknowledged_seq: counts.acknowledged_seq.map(Seq::get),
            unsynced_records: counts.unsynced_records,
            snapshot_version: snapshot.as_ref().map(|snapshot| snapshot.version.0),
            snapshot_applied_at: snapshot
                .as_ref()
                .map(|snapshot| snapshot.applied_at.to_string()),
            snapshot_age_s: snapshot
                .as_ref()
                .map(|snapshot| (now.as_millisecond() - snapshot.applied_at.unix_ms()) / 1000),
            date: crate::clock::local_date(now, &time_zone).to_string(),
            meals_today: day.meals,
            top_ups_today: day.top_ups,
        })
    }

    /// The report for a person, one `name: value` line each.
    pub fn to_text(&self) -> String {
        let show = |seq: Option<u64>| seq.map_or_else(|| "none".to_owned(), |seq| seq.to_string());
        let mut text = String::new();
        text.push_str(&format!("device:            {}\n", self.device));
        text.push_str(&format!("site:              {}\n", self.site));
        text.push_str(&format!("last seq:          {}\n", show(self.last_seq)));
        text.push_str(&format!(
            "acknowledged seq:  {}\n",
            show(self.acknowledged_seq)
        ));
        text.push_str(&format!("unsynced records:  {}\n", self.unsynced_records));
        match (
            self.snapshot_version,
            &self.snapshot_applied_at,
            self.snapshot_age_s,
        ) {
            (Some(version), Some(applied_at), Some(age_s)) => {
                text.push_str(&format!("snapshot version:  {version}\n"));
                text.push_str(&format!(
                    "snapshot age:      {age_s} s (applied {applied_at})\n"
                ));
            }
            _ => text.push_str("snapshot version:  none (never synced)\n"),
        }
        text.push_str(&format!(
            "today ({}):  {} meals, {} top-ups\n",
            self.date, self.meals_today, self.top_ups_today
        ));
        text
    }
}

/// The text `kiosk status` prints. Reads the ledger only: a running kiosk is not disturbed.
pub fn status_report(
    config: &crate::config::KioskConfig,
    ledger: &Ledger,
) -> Result<String, LedgerError> {
    Ok(StatusReport::read(config, ledger)?.to_text())
}
