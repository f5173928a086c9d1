//! The day's ranges: a service day's bounds in the back-office's time zone, which kiosks were
//! expected to trade on it, and which of each kiosk's records belong to it.
//!
//! Which kiosks are expected to trade: every kiosk registered before the day ended and not
//! revoked before it began, at a site with a service on that weekday.
//!
//! Which records belong to a day: for a kiosk that closed the day, every record after its
//! previous day close up to the close of this day (exactly what the Z record covers). For a
//! kiosk that did not close it, its records after its last earlier close whose kiosk time falls
//! within the day, checked from the first of them.

use std::collections::{BTreeMap, BTreeSet};

use proto::{DeviceId, Payload, RecordBody, Seq, ServiceDate, SignedRecord, SiteId, Timestamp};

use super::{ReconcileError, Settings};
use crate::store::{ChainRows, Device, DeviceRows, Mode, PeopleRows, Store, StoredRecord};

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

/// Every kiosk (of `site`, or of all sites), and whether it was expected to trade on `day`.
pub(crate) async fn kiosks<S: Store>(
    store: &S,
    day: &Day,
    site: Option<&SiteId>,
) -> Result<Vec<(Device, bool)>, ReconcileError> {
    let weekday = civil_date(day.date)?.weekday();
    let services = store.begin(Mode::Single).await?.services().await?;
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
    let devices = store.begin(Mode::Single).await?.devices().await?;
    Ok(devices
        .into_iter()
        .filter(|entry| site.is_none_or(|site| &entry.device.site == site))
        .map(|entry| {
            let expected = trading_sites.contains(&entry.device.site)
                && entry.added_at < day.end
                && entry.device.revoked_at.is_none_or(|at| at > day.start);
            (entry.device, expected)
        })
        .collect())
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
/// What one kiosk's check reads from the store.
#[derive(Debug)]
pub(crate) struct KioskInput {
    pub(crate) device: Device,
    pub(crate) expected: bool,
    /// The previous day close, which anchors the chain; none for a kiosk's first close, or
    /// when the day is not closed (the check then starts at the day's first record).
    pub(crate) anchor: Option<StoredRecord>,
    pub(crate) records: Vec<StoredRecord>,
    /// The day close of this day, if any.
    pub(crate) close: Option<Seq>,
    /// Records voided by this day's voids but written before it.
    pub(crate) voided_before: BTreeMap<Seq, SignedRecord>,
}

/// Where a kiosk's day lies in its chain, from its day closes (`seq` and date, in `seq`
/// order): the day's close, the close before it that anchors the chain, and the last `seq` to
/// read. A day without a close reads from the last close before it to the record before the
/// next close.
fn day_range(
    closes: &[(Seq, ServiceDate)],
    date: ServiceDate,
) -> (Option<Seq>, Option<Seq>, Option<Seq>) {
    let close = closes
        .iter()
        .filter(|(_, closed)| *closed == date)
        .map(|(seq, _)| *seq)
        .next_back();
    match close {
        Some(close) => (
            Some(close),
            closes.iter().map(|(seq, _)| *seq).rfind(|seq| *seq < close),
            Some(close),
        ),
        None => {
            let anchor = closes
                .iter()
                .filter(|(_, closed)| *closed < date)
                .map(|(seq, _)| *seq)
                .next_back();
            let next_close = closes
                .iter()
                .map(|(seq, _)| *seq)
                .find(|seq| anchor.is_none_or(|anchor| *seq > anchor));
            (None, anchor, next_close.and_then(Seq::previous))
        }
    }
}

/// The records that the day's voids name but that were written before the day's first record.
async fn voided_before<S: Store>(
    store: &S,
    device: &DeviceId,
    records: &[StoredRecord],
) -> Result<BTreeMap<Seq, SignedRecord>, ReconcileError> {
    let first = records.first().map(|record| record.seq);
    let mut voided_before = BTreeMap::new();
    for record in records {
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
                .begin(Mode::Single)
                .await?
                .record_range(device, void.voided_seq, Some(void.voided_seq))
                .await?;
            if let Some(voided) = found.into_iter().next() {
                voided_before.insert(void.voided_seq, voided.record);
            }
        }
    }
    Ok(voided_before)
}

/// Reads a kiosk's records of the day: see the module's documentation.
pub(crate) async fn kiosk_input<S: Store>(
    store: &S,
    device: Device,
    expected: bool,
    day: &Day,
) -> Result<KioskInput, ReconcileError> {
    let closes = store
        .begin(Mode::Single)
        .await?
        .day_closes(&device.id)
        .await?;
    let (close, anchor_seq, to) = day_range(&closes, day.date);
    let from = anchor_seq.unwrap_or(Seq::FIRST);
    let mut records = store
        .begin(Mode::Single)
        .await?
        .record_range(&device.id, from, to)
        .await?;
    let mut anchor = None;
    if anchor_seq.is_some() && records.first().map(|record| record.seq) == anchor_seq {
        anchor = Some(records.remove(0));
    }
    if close.is_none() {
        // Without a close, the day is what the kiosk's clock put in it.
        records.retain(|record| record.kiosk_at >= day.start && record.kiosk_at < day.end);
        anchor = None;
    }
    let voided_before = voided_before(store, &device.id, &records).await?;
    Ok(KioskInput {
        device,
        expected,
        anchor,
        records,
        close,
        voided_before,
    })
}
