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
    let mut next = from;
    let mut written = 0;
    loop {
        let page = ledger.records(next, to)?;
        let Some(last) = page.last() else { break };
        for record in &page {
            writeln!(out, "{}", record.to_json())?;
        }
        written += u64::try_from(page.len()).expect("page fits u64");
        let last_seq = proto::Payload::parse(&last.payload)
            .map_err(ExportError::Stored)?
            .seq;
        next = last_seq.next();
    }
    out.flush()?;
    Ok(written)
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("export: {0}")]
    Io(#[from] std::io::Error),
    #[error("export: stored record unreadable: {0}")]
    Stored(proto::RecordError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// The text `kiosk status` prints. Reads the ledger only: a running kiosk is not disturbed.
pub fn status_report(
    config: &crate::config::KioskConfig,
    ledger: &Ledger,
) -> Result<String, LedgerError> {
    let counts = ledger.counts()?;
    let snapshot = ledger.snapshot_state()?;
    let time_zone = jiff::tz::TimeZone::get(&config.time_zone)
        .map_err(|error| LedgerError::Stored(error.to_string()))?;
    let now = jiff::Timestamp::now();
    let date = crate::clock::local_date(now, &time_zone);
    let day = ledger.day_counts(now, &time_zone)?;
    let show = |seq: Option<Seq>| seq.map_or_else(|| "none".to_owned(), |seq| seq.to_string());
    let mut text = String::new();
    text.push_str(&format!("device:            {}\n", config.device));
    text.push_str(&format!("site:              {}\n", config.site));
    text.push_str(&format!("last seq:          {}\n", show(counts.last_seq)));
    text.push_str(&format!(
        "acknowledged seq:  {}\n",
        show(counts.acknowledged_seq)
    ));
    text.push_str(&format!("unsynced records:  {}\n", counts.unsynced_records));
    match snapshot {
        Some(snapshot) => {
            let age_s = (now.as_millisecond() - snapshot.applied_at.unix_ms()) / 1000;
            text.push_str(&format!("snapshot version:  {}\n", snapshot.version));
            text.push_str(&format!(
                "snapshot age:      {age_s} s (applied {})\n",
                snapshot.applied_at
            ));
        }
        None => text.push_str("snapshot version:  none (never synced)\n"),
    }
    text.push_str(&format!(
        "today ({date}):  {} meals, {} top-ups\n",
        day.meals, day.top_ups
    ));
    Ok(text)
}
