//! Manual transfer, for a site whose network is down for days: a file written by `kiosk export`
//! (JSON Lines, one signed record a line, in `seq` order) is brought to the back-office and
//! ingested exactly as the kiosk's own uploads would be, through [`crate::ingest::ingest`] in batches of
//! [`UPLOAD_BATCH_RECORDS_MAX`]. The kiosk's later network sync of the same records counts them
//! as duplicates.
//!
//! The file's signatures are checked against the key the back-office registered for the kiosk,
//! never against a key that travels with the file.

use proto::limits::{RECORD_JSON_BYTES_MAX, UPLOAD_BATCH_RECORDS_MAX};
use proto::{DeviceId, Payload, Seq, SignedRecord, Timestamp};

use crate::ingest::IngestOutcome;
use crate::limits::{TRANSFER_BYTES_MAX, TRANSFER_RECORDS_MAX};
use crate::manage::{Actor, FINANCE, ManageError};
use crate::store::{DeviceRows, Mode, Store, StoreError};

/// A transferred file was refused; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("the file holds no record")]
    Empty,
    #[error("the file is larger than {TRANSFER_BYTES_MAX} bytes")]
    TooLarge,
    #[error("the file holds more than {TRANSFER_RECORDS_MAX} records")]
    TooManyRecords,
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("line {line}: record of device {found}, the file's first is of {expected}")]
    MixedDevices {
        line: usize,
        expected: DeviceId,
        found: DeviceId,
    },
    #[error("unknown device {0}")]
    UnknownDevice(DeviceId),
    #[error("device {0} is revoked")]
    RevokedDevice(DeviceId),
    #[error(transparent)]
    Refused(#[from] ManageError),
}

impl From<StoreError> for TransferError {
    fn from(error: StoreError) -> TransferError {
        TransferError::Refused(ManageError::Store(error))
    }
}

/// The records of an export file, all of one kiosk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub device: DeviceId,
    pub records: Vec<SignedRecord>,
}

/// What a transfer did, summed over its batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferOutcome {
    /// The highest `seq` up to which the back-office now holds every record of the kiosk.
    pub acknowledged: Option<Seq>,
    pub stored: u32,
    pub duplicates: u32,
    pub quarantined: u32,
}

/// Reads an export file: every line a signed record of the same device. The payloads are only
/// read here to find the device; ingest verifies each signature and link.
pub fn parse(text: &str) -> Result<Transfer, TransferError> {
    if text.len() > TRANSFER_BYTES_MAX {
        return Err(TransferError::TooLarge);
    }
    let mut device: Option<DeviceId> = None;
    let mut records = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        if records.len() == TRANSFER_RECORDS_MAX {
            return Err(TransferError::TooManyRecords);
        }
        let invalid = |reason: String| TransferError::Line {
            line: line_number,
            reason,
        };
        if line.len() > RECORD_JSON_BYTES_MAX {
            return Err(invalid(format!(
                "record longer than {RECORD_JSON_BYTES_MAX} bytes"
            )));
        }
        let record: SignedRecord = serde_json::from_str(line)
            .map_err(|error| invalid(format!("not a signed record: {error}")))?;
        let payload = Payload::parse(&record.payload)
            .map_err(|error| invalid(format!("payload: {error}")))?;
        match &device {
            None => device = Some(payload.device),
            Some(expected) if *expected != payload.device => {
                return Err(TransferError::MixedDevices {
                    line: line_number,
                    expected: expected.clone(),
                    found: payload.device,
                });
            }
            Some(_) => {}
        }
        records.push(record);
    }
    let device = device.ok_or(TransferError::Empty)?;
    Ok(Transfer { device, records })
}

/// Ingests a transfer as the kiosk's uploads would be: batch by batch, each its own transaction.
/// Finance and city IT bring files.
pub async fn ingest<S: Store>(
    store: &S,
    actor: &Actor,
    transfer: Transfer,
    received_at: Timestamp,
) -> Result<TransferOutcome, TransferError> {
    actor.require(FINANCE)?;
    let device = store
        .begin(Mode::Single)
        .await?
        .device(&transfer.device)
        .await?
        .ok_or_else(|| TransferError::UnknownDevice(transfer.device.clone()))?;
    if device.revoked_at.is_some() {
        return Err(TransferError::RevokedDevice(device.id));
    }
    let mut total = TransferOutcome {
        acknowledged: None,
        stored: 0,
        duplicates: 0,
        quarantined: 0,
    };
    let mut records = transfer.records;
    while !records.is_empty() {
        let rest = records.split_off(records.len().min(UPLOAD_BATCH_RECORDS_MAX));
        let IngestOutcome {
            acknowledged,
            stored,
            duplicates,
            quarantined,
            anomalies_dropped: _,
        } = crate::ingest::ingest(store, &device, records, received_at).await?;
        total.acknowledged = acknowledged;
        total.stored += stored;
        total.duplicates += duplicates;
        total.quarantined += quarantined;
        records = rest;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proto::{ChainHead, RecordBody, SigningKey, Text};

    use super::*;

    fn key(seed: u8) -> SigningKey {
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend_from_slice(&[seed; 32]);
        SigningKey::from_pkcs8(&der).unwrap()
    }

    fn lines(device: &str, seed: u8, count: usize) -> Vec<String> {
        let device = DeviceId::parse(device).unwrap();
        let mut head = ChainHead::GENESIS;
        (0..count)
            .map(|_| {
                let body = RecordBody::KioskStart(proto::record::KioskStart {
                    software_version: Text::parse("1").unwrap(),
                });
                let at = Timestamp::from_unix_ms(1_795_952_703_120).unwrap();
                head.append(&key(seed), &device, at, body)
                    .unwrap()
                    .signed()
                    .to_json()
            })
            .collect()
    }

    fn check(text: &str, expected: Result<usize, &str>) {
        let parsed = parse(text)
            .map(|transfer| transfer.records.len())
            .map_err(|error| error.to_string());
        match expected {
            Ok(count) => assert_eq!(parsed.unwrap(), count, "{text:?}"),
            Err(start) => {
                let error = parsed.unwrap_err();
                assert!(error.starts_with(start), "{error} for {text:?}");
            }
        }
    }

    #[test]
    fn export_files() {
        let one = lines("jaures-a", 1, 3);
        let other = lines("jaures-b", 2, 1);
        check(&one.join("\n"), Ok(3));
        check(&format!("{}\n\n", one.join("\n")), Ok(3));
        check("", Err("the file holds no record"));
        check("\n\n", Err("the file holds no record"));
        check("{}", Err("line 1: not a signed record"));
        check("not json", Err("line 1: not a signed record"));
        check(
            &format!("{}\n{}", one[0], other[0]),
            Err("line 2: record of device jaures-b"),
        );
        check(
            &format!("{}\n{{\"payload\":\"{{}}\",\"signature\":\"\"}}", one[0]),
            Err("line 2: payload"),
        );
        let long = format!(
            "{{\"payload\":\"{}\",\"signature\":\"\"}}",
            "x".repeat(RECORD_JSON_BYTES_MAX)
        );
        check(&long, Err("line 1: record longer than"));
    }
}
