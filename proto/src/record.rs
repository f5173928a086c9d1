//! The signed record: the audit format of the design.
//!
//! On the wire and in exports a record is `{"payload":"<signed bytes>","signature":"<base64>"}`.
//! The payload is UTF-8 JSON with the header fields `v`, `device`, `seq`, `prev`, `at`, then
//! `kind` and the kind's fields. Readers verify the bytes first, then parse them; a payload must be
//! in the one canonical form this module writes, so equal content means equal bytes and equal
//! hashes.

use serde::{Deserialize, Serialize};

use crate::crypto::{Digest, PublicKey, Signature, SigningKey};
use crate::ids::{
    AccountId, BracketId, CardUid, DeviceId, MealType, PupilId, Seq, ServiceDate, ServiceId,
    SnapshotVersion, StaffId, Text, Timestamp,
};
use crate::limits::{
    DAY_CLOSE_LINES_MAX, KIOSK_TOP_UP_CENTS_MAX, MEAL_PRICE_CENTS_MAX, PAYLOAD_BYTES_MAX,
    RECORD_JSON_BYTES_MAX,
};
use crate::money::Cents;

/// The payload format this crate writes and the only one it reads.
pub const FORMAT_VERSION: u64 = 1;

/// A record as received or exported: the signed bytes and their signature, not yet trusted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedRecord {
    /// The exact signed bytes: UTF-8 JSON of the record's fields.
    pub payload: String,
    /// Standard base64 of the 64-byte Ed25519 signature of `payload`.
    pub signature: String,
}

/// A record whose signature verified and whose payload parsed. Only [`SignedRecord::verify`] and
/// [`Record::sign`] make one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    payload: Payload,
    signed: SignedRecord,
    hash: Digest,
}

/// The fields of a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// Format version, [`FORMAT_VERSION`].
    pub v: u64,
    pub device: DeviceId,
    pub seq: Seq,
    /// SHA-256 of the previous record's payload bytes; [`Digest::ZERO`] for the first.
    pub prev: Digest,
    /// The kiosk's clock when it wrote the record.
    pub at: Timestamp,
    #[serde(flatten)]
    pub body: RecordBody,
}

/// What a record says happened. Corrections are new records: nothing is ever edited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordBody {
    Meal(Meal),
    TopUp(TopUp),
    Void(Void),
    DayClose(DayClose),
    KioskStart(KioskStart),
    OfflineStart(OfflineStart),
    OfflineEnd(OfflineEnd),
    SnapshotApplied(SnapshotApplied),
    StaffSignIn(StaffSignIn),
    StaffSignOut(StaffSignOut),
    StaffLockout(StaffLockout),
    ConfigChange(ConfigChange),
    ClockChange(ClockChange),
    ClockDrift(ClockDrift),
    TapRefused(TapRefused),
}

/// The `kind` of a record, for indexes and reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordKind {
    Meal,
    TopUp,
    Void,
    DayClose,
    KioskStart,
    OfflineStart,
    OfflineEnd,
    SnapshotApplied,
    StaffSignIn,
    StaffSignOut,
    StaffLockout,
    ConfigChange,
    ClockChange,
    ClockDrift,
    TapRefused,
}

/// A pupil was served a meal and charged for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meal {
    pub service: ServiceId,
    pub service_date: ServiceDate,
    pub meal_type: MealType,
    pub account: AccountId,
    pub pupil: PupilId,
    pub bracket: BracketId,
    /// The tariff price charged, 0 to [`MEAL_PRICE_CENTS_MAX`].
    pub price: Cents,
    /// The balance the kiosk showed after the meal: its snapshot balance minus its unsynced
    /// debits plus its unsynced top-ups. Informative; the back-office's balance is authoritative.
    pub balance_after: Cents,
    pub via: MealVia,
}

/// How the pupil was identified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum MealVia {
    /// The pupil tapped this card.
    Card(CardUid),
    /// A member of staff chose the pupil by name (a forgotten card).
    Staff(StaffId),
}

/// Money paid in at the kiosk and credited to an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopUp {
    pub account: AccountId,
    /// 1 cent to [`KIOSK_TOP_UP_CENTS_MAX`].
    pub amount: Cents,
    pub method: TopUpMethod,
    pub staff: StaffId,
    /// A cheque number or receipt reference, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Text>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopUpMethod {
    Cash,
    Cheque,
}

/// Reverses an earlier record of the same kiosk (a mistaken meal or top-up).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Void {
    pub voided_seq: Seq,
    /// The hash of the voided record's payload, so the reference is unambiguous even if a
    /// forked chain ever held two records at `voided_seq`.
    pub voided_hash: Digest,
    pub staff: StaffId,
    pub reason: Text,
}

/// The Z record: a kiosk's signed totals for a service day. It covers every record after the
/// previous day close up to itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayClose {
    pub service_date: ServiceDate,
    pub staff: StaffId,
    /// The `seq` of the previous day close; none for a kiosk's first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_close: Option<Seq>,
    /// Counts and totals per category, meal type and bracket; at most [`DAY_CLOSE_LINES_MAX`].
    pub lines: Vec<CloseLine>,
    pub cash_expected: Cents,
    pub cash_counted: Cents,
    /// `cash_counted - cash_expected`: accepted and shown, never forced to zero.
    pub cash_difference: Cents,
    /// Running totals since the kiosk's first record, carried from close to close.
    pub grand_totals: GrandTotals,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseLine {
    pub category: CloseCategory,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meal_type: Option<MealType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bracket: Option<BracketId>,
    pub count: u32,
    pub total: Cents,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseCategory {
    MealByCard,
    MealByStaff,
    TopUpCash,
    TopUpCheque,
    VoidedMeal,
    VoidedTopUp,
}

/// Perpetual totals of a kiosk, never reset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrandTotals {
    pub meal_count: u64,
    pub meals: Cents,
    pub top_ups: Cents,
    pub voided: Cents,
}

/// The kiosk software started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KioskStart {
    pub software_version: Text,
}

/// The kiosk lost contact with the back-office.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfflineStart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync: Option<Timestamp>,
}

/// The kiosk reached the back-office again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfflineEnd {
    pub offline_since: Timestamp,
}

/// The kiosk applied a snapshot from the back-office.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotApplied {
    pub version: SnapshotVersion,
    pub full: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffSignIn {
    pub staff: StaffId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffSignOut {
    pub staff: StaffId,
    /// Signed out by the inactivity timer rather than by hand.
    pub automatic: bool,
}

/// A staff card was locked after repeated wrong PINs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffLockout {
    pub card: CardUid,
    pub failed_attempts: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigChange {
    pub key: Text,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<Text>,
}

/// The kiosk's clock moved backwards, or jumped, between two records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockChange {
    pub previous: Timestamp,
    pub current: Timestamp,
}

/// The kiosk's clock differs from the back-office's beyond the allowed bound.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockDrift {
    pub backoffice_time: Timestamp,
    /// Kiosk time minus back-office time.
    pub drift_ms: i64,
}

/// A card was tapped and refused; nothing was charged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TapRefused {
    pub card: CardUid,
    pub reason: RefusalReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    UnknownCard,
    BlockedCard,
    InsufficientFunds,
}

/// Why a record could not be read or made. Each failure of the audit format has its variant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record is {bytes} bytes, more than {max}")]
    TooLarge { bytes: usize, max: usize },
    #[error("record is not a JSON object with exactly `payload` and `signature`: {reason}")]
    Envelope { reason: String },
    #[error("signature is not canonical base64 of 64 bytes")]
    SignatureEncoding,
    #[error("signature does not verify against the device's key")]
    BadSignature,
    #[error("format version {version} is not supported (this software reads {FORMAT_VERSION})")]
    UnknownVersion { version: u64 },
    #[error("unknown record kind {kind:?}")]
    UnknownKind { kind: String },
    #[error("malformed payload: {reason}")]
    Malformed { reason: String },
}

impl RecordError {
    fn malformed(reason: impl Into<String>) -> RecordError {
        RecordError::Malformed {
            reason: reason.into(),
        }
    }
}

impl SignedRecord {
    /// Reads one record from its JSON text (a line of an export, an element of a batch).
    pub fn from_json(bytes: &[u8]) -> Result<SignedRecord, RecordError> {
        if bytes.len() > RECORD_JSON_BYTES_MAX {
            return Err(RecordError::TooLarge {
                bytes: bytes.len(),
                max: RECORD_JSON_BYTES_MAX,
            });
        }
        serde_json::from_slice(bytes).map_err(|error| RecordError::Envelope {
            reason: error.to_string(),
        })
    }

    /// The record as one line of JSON, without the newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("two strings always serialize")
    }

    /// The SHA-256 of the payload bytes: what the next record's `prev` holds.
    pub fn payload_hash(&self) -> Digest {
        Digest::of(self.payload.as_bytes())
    }

    /// Checks the signature over the payload bytes with `key`, then parses them.
    pub fn verify(&self, key: &PublicKey) -> Result<Record, RecordError> {
        if self.payload.len() > PAYLOAD_BYTES_MAX {
            return Err(RecordError::TooLarge {
                bytes: self.payload.len(),
                max: PAYLOAD_BYTES_MAX,
            });
        }
        let signature =
            Signature::from_base64(&self.signature).map_err(|_| RecordError::SignatureEncoding)?;
        if !key.verify(self.payload.as_bytes(), &signature) {
            return Err(RecordError::BadSignature);
        }
        let payload = Payload::parse(&self.payload)?;
        Ok(Record {
            payload,
            signed: self.clone(),
            hash: self.payload_hash(),
        })
    }

    /// Reads the record like [`SignedRecord::verify`] does, except that the signature is only
    /// decoded, not checked. Crate-private: a [`Record`] is a record known to be the kiosk's,
    /// and only [`crate::chain::verify_anchored`] may vouch for one without its own signature,
    /// when a verified record later in the chain covers it by the hash links.
    pub(crate) fn read_covered(&self) -> Result<Record, RecordError> {
        if self.payload.len() > PAYLOAD_BYTES_MAX {
            return Err(RecordError::TooLarge {
                bytes: self.payload.len(),
                max: PAYLOAD_BYTES_MAX,
            });
        }
        Signature::from_base64(&self.signature).map_err(|_| RecordError::SignatureEncoding)?;
        let payload = Payload::parse(&self.payload)?;
        Ok(Record {
            payload,
            signed: self.clone(),
            hash: self.payload_hash(),
        })
    }

    /// The `seq` the payload claims, read without verifying anything: only for naming a record in
    /// an error report when it failed verification.
    pub fn claimed_seq(&self) -> Option<Seq> {
        #[derive(Deserialize)]
        struct Claim {
            seq: Seq,
        }
        serde_json::from_str::<Claim>(&self.payload)
            .ok()
            .map(|claim| claim.seq)
    }
}

impl Record {
    /// Signs `payload` with `key`. Refuses a payload that [`SignedRecord::verify`] would refuse,
    /// so a kiosk can never write a record the back-office cannot read.
    pub fn sign(payload: Payload, key: &SigningKey) -> Result<Record, RecordError> {
        if payload.v != FORMAT_VERSION {
            return Err(RecordError::UnknownVersion { version: payload.v });
        }
        payload.body.check()?;
        let bytes = payload.to_canonical_json();
        if bytes.len() > PAYLOAD_BYTES_MAX {
            return Err(RecordError::TooLarge {
                bytes: bytes.len(),
                max: PAYLOAD_BYTES_MAX,
            });
        }
        let signature = key.sign(bytes.as_bytes());
        let hash = Digest::of(bytes.as_bytes());
        let signed = SignedRecord {
            payload: bytes,
            signature: signature.to_base64(),
        };
        Ok(Record {
            payload,
            signed,
            hash,
        })
    }

    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    pub fn signed(&self) -> &SignedRecord {
        &self.signed
    }

    /// SHA-256 of the payload bytes.
    pub fn hash(&self) -> Digest {
        self.hash
    }

    pub fn seq(&self) -> Seq {
        self.payload.seq
    }

    pub fn device(&self) -> &DeviceId {
        &self.payload.device
    }
}

impl Payload {
    /// The one byte form of this payload that is signed and hashed.
    pub fn to_canonical_json(&self) -> String {
        serde_json::to_string(self).expect("payload fields always serialize")
    }

    /// Parses payload bytes already known to be signed. The format version and kind are read
    /// first, so a newer record gets a clear error rather than a parse failure.
    pub fn parse(text: &str) -> Result<Payload, RecordError> {
        #[derive(Deserialize)]
        struct Envelope {
            v: Option<serde_json::Value>,
            kind: Option<serde_json::Value>,
        }
        let envelope: Envelope = serde_json::from_str(text)
            .map_err(|error| RecordError::malformed(format!("not a JSON object: {error}")))?;
        let version = match envelope.v {
            Some(serde_json::Value::Number(number)) => number
                .as_u64()
                .ok_or_else(|| RecordError::malformed("`v` is not a whole number"))?,
            Some(_) => return Err(RecordError::malformed("`v` is not a number")),
            None => return Err(RecordError::malformed("missing `v`")),
        };
        if version != FORMAT_VERSION {
            return Err(RecordError::UnknownVersion { version });
        }
        match envelope.kind {
            Some(serde_json::Value::String(kind)) if RecordKind::parse(&kind).is_none() => {
                return Err(RecordError::UnknownKind { kind });
            }
            Some(serde_json::Value::String(_)) => {}
            Some(_) => return Err(RecordError::malformed("`kind` is not a string")),
            None => return Err(RecordError::malformed("missing `kind`")),
        }
        let payload: Payload = serde_json::from_str(text)
            .map_err(|error| RecordError::malformed(error.to_string()))?;
        // One spelling per content: no unknown fields, no reordering, no extra whitespace, no
        // alternative escapes. The signature alone cannot promise that.
        if payload.to_canonical_json() != text {
            return Err(RecordError::malformed(
                "not in canonical form (unknown field, field order, spacing or escaping)",
            ));
        }
        payload.body.check()?;
        Ok(payload)
    }
}

impl RecordBody {
    pub fn kind(&self) -> RecordKind {
        match self {
            RecordBody::Meal(_) => RecordKind::Meal,
            RecordBody::TopUp(_) => RecordKind::TopUp,
            RecordBody::Void(_) => RecordKind::Void,
            RecordBody::DayClose(_) => RecordKind::DayClose,
            RecordBody::KioskStart(_) => RecordKind::KioskStart,
            RecordBody::OfflineStart(_) => RecordKind::OfflineStart,
            RecordBody::OfflineEnd(_) => RecordKind::OfflineEnd,
            RecordBody::SnapshotApplied(_) => RecordKind::SnapshotApplied,
            RecordBody::StaffSignIn(_) => RecordKind::StaffSignIn,
            RecordBody::StaffSignOut(_) => RecordKind::StaffSignOut,
            RecordBody::StaffLockout(_) => RecordKind::StaffLockout,
            RecordBody::ConfigChange(_) => RecordKind::ConfigChange,
            RecordBody::ClockChange(_) => RecordKind::ClockChange,
            RecordBody::ClockDrift(_) => RecordKind::ClockDrift,
            RecordBody::TapRefused(_) => RecordKind::TapRefused,
        }
    }

    /// Rules a well-typed body must still keep: amounts within their bounds, totals that add up.
    fn check(&self) -> Result<(), RecordError> {
        match self {
            RecordBody::Meal(meal) if !(0..=MEAL_PRICE_CENTS_MAX).contains(&meal.price.get()) => {
                Err(RecordError::malformed(format!(
                    "meal price {} outside 0..={MEAL_PRICE_CENTS_MAX}",
                    meal.price.get()
                )))
            }
            RecordBody::TopUp(top_up)
                if !(1..=KIOSK_TOP_UP_CENTS_MAX).contains(&top_up.amount.get()) =>
            {
                Err(RecordError::malformed(format!(
                    "top-up amount {} outside 1..={KIOSK_TOP_UP_CENTS_MAX}",
                    top_up.amount.get()
                )))
            }
            RecordBody::DayClose(close) => close.check(),
            _ => Ok(()),
        }
    }
}

impl DayClose {
    fn check(&self) -> Result<(), RecordError> {
        if self.lines.len() > DAY_CLOSE_LINES_MAX {
            return Err(RecordError::malformed(format!(
                "day close has {} lines, more than {DAY_CLOSE_LINES_MAX}",
                self.lines.len()
            )));
        }
        let difference = self
            .cash_counted
            .checked_sub(self.cash_expected)
            .map_err(|_| RecordError::malformed("day close cash difference overflows"))?;
        if difference != self.cash_difference {
            return Err(RecordError::malformed(
                "day close cash_difference is not cash_counted - cash_expected",
            ));
        }
        if let Some(line) = self.lines.iter().find(|line| line.total.is_negative()) {
            return Err(RecordError::malformed(format!(
                "day close line {:?} has a negative total",
                line.category
            )));
        }
        Ok(())
    }
}

impl RecordKind {
    pub const ALL: [RecordKind; 15] = [
        RecordKind::Meal,
        RecordKind::TopUp,
        RecordKind::Void,
        RecordKind::DayClose,
        RecordKind::KioskStart,
        RecordKind::OfflineStart,
        RecordKind::OfflineEnd,
        RecordKind::SnapshotApplied,
        RecordKind::StaffSignIn,
        RecordKind::StaffSignOut,
        RecordKind::StaffLockout,
        RecordKind::ConfigChange,
        RecordKind::ClockChange,
        RecordKind::ClockDrift,
        RecordKind::TapRefused,
    ];

    /// The `kind` field's value.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Meal => "meal",
            RecordKind::TopUp => "top_up",
            RecordKind::Void => "void",
            RecordKind::DayClose => "day_close",
            RecordKind::KioskStart => "kiosk_start",
            RecordKind::OfflineStart => "offline_start",
            RecordKind::OfflineEnd => "offline_end",
            RecordKind::SnapshotApplied => "snapshot_applied",
            RecordKind::StaffSignIn => "staff_sign_in",
            RecordKind::StaffSignOut => "staff_sign_out",
            RecordKind::StaffLockout => "staff_lockout",
            RecordKind::ConfigChange => "config_change",
            RecordKind::ClockChange => "clock_change",
            RecordKind::ClockDrift => "clock_drift",
            RecordKind::TapRefused => "tap_refused",
        }
    }

    pub fn parse(text: &str) -> Option<RecordKind> {
        RecordKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}
