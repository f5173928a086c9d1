//! The signed-records export and its check.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use proto::{ChainHead, ChainVerifier, DeviceId, PublicKey, Seq, SignedRecord, SiteId, Timestamp};
use serde::{Deserialize, Serialize};

use super::{ExportError, Period, count};
use crate::limits::VERIFY_LINES_MAX;
use crate::reconcile::{self, Day, FindingKind, Settings};
use crate::store::{ChainRows, DeviceRows, Mode, Store};

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

pub(super) async fn write_records<S: Store>(
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
    let mut file = ReadFile::default();
    let mut number = 0_u64;
    for line in input.lines() {
        let line = line?;
        number += 1;
        if number > VERIFY_LINES_MAX {
            file.violation(
                FindingKind::Truncated,
                None,
                None,
                Some(number),
                format!("more than {VERIFY_LINES_MAX} lines: the rest is not checked"),
            );
            break;
        }
        file.read(number, &line);
    }
    let mut verification = Verification {
        devices: count(file.keys.len()),
        ..Verification::default()
    };
    let records = std::mem::take(&mut file.records);
    for (device, lines) in records {
        verification.records += count(lines.len());
        file.check_kiosk(&device, &lines);
    }
    verification.violations = file.violations;
    Ok(verification)
}

/// What a record's payload claims before it is verified: its kiosk and when it was signed.
#[derive(Deserialize)]
struct Claim {
    device: DeviceId,
    at: Option<Timestamp>,
}

/// A records export being read: each kiosk's key, each kiosk's records with their line
/// numbers, and what is wrong so far.
#[derive(Default)]
struct ReadFile {
    keys: BTreeMap<DeviceId, (KeyLine, PublicKey)>,
    records: BTreeMap<DeviceId, Vec<(u64, SignedRecord)>>,
    violations: Vec<Violation>,
}

impl ReadFile {
    fn violation(
        &mut self,
        kind: FindingKind,
        device: Option<DeviceId>,
        seq: Option<Seq>,
        line: Option<u64>,
        detail: String,
    ) {
        self.violations.push(Violation {
            kind,
            device,
            seq,
            line,
            detail,
        });
    }

    /// Reads line `number`: a kiosk's key line or a record.
    fn read(&mut self, number: u64, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        if let Ok(key_line) = serde_json::from_str::<KeyLine>(line) {
            self.read_key(number, key_line);
            return;
        }
        let record = match SignedRecord::from_json(line.as_bytes()) {
            Ok(record) => record,
            Err(error) => {
                let detail = error.to_string();
                return self.violation(FindingKind::BadRecord, None, None, Some(number), detail);
            }
        };
        match serde_json::from_str::<Claim>(&record.payload) {
            Ok(claim) => self
                .records
                .entry(claim.device)
                .or_default()
                .push((number, record)),
            Err(error) => self.violation(
                FindingKind::BadRecord,
                None,
                record.claimed_seq(),
                Some(number),
                format!("payload names no device: {error}"),
            ),
        }
    }

    fn read_key(&mut self, number: u64, key_line: KeyLine) {
        match PublicKey::from_pem(&key_line.public_key) {
            Ok(key) => {
                let device = key_line.device.clone();
                if self.keys.insert(device.clone(), (key_line, key)).is_some() {
                    self.violation(
                        FindingKind::WrongDevice,
                        Some(device),
                        None,
                        Some(number),
                        "a second key for the same kiosk".to_owned(),
                    );
                }
            }
            Err(error) => self.violation(
                FindingKind::BadRecord,
                Some(key_line.device),
                None,
                Some(number),
                format!("public key unreadable: {error}"),
            ),
        }
    }

    /// Checks one kiosk's records against its key line: signatures, the chain, revocation.
    fn check_kiosk(&mut self, device: &DeviceId, lines: &[(u64, SignedRecord)]) {
        let Some((key_line, key)) = self.keys.get(device).cloned() else {
            self.violation(
                FindingKind::WrongDevice,
                Some(device.clone()),
                None,
                lines.first().map(|(line, _)| *line),
                format!(
                    "{} record(s) of a kiosk whose key is not in the file",
                    lines.len()
                ),
            );
            return;
        };
        let (start, rest) = self.anchor(device, &key, lines);
        let mut verifier = ChainVerifier::new(device.clone(), key, start);
        for (_, record) in rest {
            verifier.push(record);
        }
        let report = verifier.finish_expecting(key_line.last_seq);
        for error in &report.errors {
            self.chain_violation(device, rest, error);
        }
        if let Some(revoked_at) = key_line.revoked_at {
            self.check_revocation(device, revoked_at, lines);
        }
    }

    /// Where the kiosk's chain starts in the file: its first record anchors it unless it is the
    /// kiosk's very first. Returns the head after the anchor and the records after it.
    fn anchor<'a>(
        &mut self,
        device: &DeviceId,
        key: &PublicKey,
        lines: &'a [(u64, SignedRecord)],
    ) -> (ChainHead, &'a [(u64, SignedRecord)]) {
        let Some((line, first)) = lines.first() else {
            return (ChainHead::GENESIS, lines);
        };
        if first.claimed_seq() == Some(Seq::FIRST) {
            return (ChainHead::GENESIS, lines);
        }
        let start = match first.verify(key) {
            Ok(record) => ChainHead::after(&record),
            Err(error) => {
                let kind = if reconcile::is_day_close(first) {
                    FindingKind::ForgedDayClose
                } else {
                    FindingKind::BadSignature
                };
                let seq = first.claimed_seq();
                self.violation(
                    kind,
                    Some(device.clone()),
                    seq,
                    Some(*line),
                    error.to_string(),
                );
                seq.map_or(ChainHead::GENESIS, |seq| ChainHead {
                    next_seq: seq.next(),
                    prev: first.payload_hash(),
                })
            }
        };
        (start, &lines[1..])
    }

    fn chain_violation(
        &mut self,
        device: &DeviceId,
        rest: &[(u64, SignedRecord)],
        error: &proto::ChainError,
    ) {
        let (line, is_close) = match error {
            proto::ChainError::Record { position, .. } => {
                rest.get(*position).map_or((None, false), |(line, record)| {
                    (Some(*line), reconcile::is_day_close(record))
                })
            }
            _ => (None, false),
        };
        self.violation(
            reconcile::chain_error_kind(error, is_close),
            Some(device.clone()),
            error.seq(),
            line,
            error.to_string(),
        );
    }

    fn check_revocation(
        &mut self,
        device: &DeviceId,
        revoked_at: Timestamp,
        lines: &[(u64, SignedRecord)],
    ) {
        for (line, record) in lines {
            let at = serde_json::from_str::<Claim>(&record.payload)
                .ok()
                .and_then(|claim| claim.at);
            if let Some(at) = at.filter(|at| *at >= revoked_at) {
                self.violation(
                    FindingKind::SignedAfterRevocation,
                    Some(device.clone()),
                    record.claimed_seq(),
                    Some(*line),
                    format!("signed at {at} after the key was revoked at {revoked_at}"),
                );
            }
        }
    }
}
