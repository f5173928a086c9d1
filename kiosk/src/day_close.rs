//! The Z record: a kiosk's totals since its previous day close, per category, meal type and
//! bracket, with cash expected and the perpetual grand totals carried forward. The lines, the
//! cash and the totals are `proto::rules`' ([`CloseTally`]), the same the back-office checks the
//! close with; this module only reads the records from the ledger.

use proto::record::{DayClose, GrandTotals};
use proto::rules::CloseTally;
use proto::{Cents, Payload, RecordBody, RecordError, Seq, ServiceDate, StaffId};

use crate::ledger::{Ledger, LedgerError};

/// A day close could not be computed; nothing was recorded.
#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    #[error(transparent)]
    Tally(#[from] proto::rules::CloseError),
    #[error("day close: stored record unreadable: {0}")]
    Record(#[from] RecordError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Totals of every record after `previous_close` (all records when none), as the close that
/// follows them.
pub fn compute(
    ledger: &Ledger,
    previous_close: Option<Seq>,
    service_date: ServiceDate,
    staff: StaffId,
    cash_counted: Cents,
) -> Result<DayClose, CloseError> {
    let previous_totals = match previous_close {
        Some(seq) => grand_totals_of(ledger, seq)?,
        None => GrandTotals::default(),
    };
    let mut tally = CloseTally::default();
    let from = previous_close.map_or(Seq::FIRST, Seq::next);
    ledger.visit_records(from, None, |signed| -> Result<(), CloseError> {
        let body = Payload::parse(&signed.payload)?.body;
        let voided = match &body {
            RecordBody::Void(void) => Some(stored_body(ledger, void.voided_seq, "voided record")?),
            _ => None,
        };
        tally.count(&body, voided.as_ref());
        Ok(())
    })?;
    Ok(tally.day_close(
        service_date,
        staff,
        previous_close,
        &previous_totals,
        cash_counted,
    )?)
}

/// The grand totals of the day close at `seq`.
fn grand_totals_of(ledger: &Ledger, seq: Seq) -> Result<GrandTotals, CloseError> {
    Ok(match stored_body(ledger, seq, "day close")? {
        RecordBody::DayClose(close) => close.grand_totals,
        _ => GrandTotals::default(),
    })
}

/// The body of the stored record at `seq`, which must be there.
fn stored_body(ledger: &Ledger, seq: Seq, what: &str) -> Result<RecordBody, CloseError> {
    let signed = ledger
        .record(seq)?
        .ok_or_else(|| LedgerError::Stored(format!("{what} {seq} missing")))?;
    Ok(Payload::parse(&signed.payload)?.body)
}
