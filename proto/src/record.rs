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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SignedRecord {
    /// The exact signed bytes: UTF-8 JSON of the record's fields.
    pub payload: String,
    /// Standard base64 of the 64-byte Ed25519 signature of `payload`.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::signature))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    #[error("the chain is full: no record after seq {max}", max = crate::limits::SEQ_MAX)]
    ChainFull,
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
    /// and only [`crate::verify_anchored`] may vouch for one without its own signature,
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
        if payload.seq > Seq::MAX {
            return Err(RecordError::ChainFull);
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
    ///
    /// A payload in canonical form (every stored record) is read in one pass, its fields in
    /// their written order, then checked against its canonical bytes without building them.
    /// Anything else takes the general path below, which names the defect.
    pub fn parse(text: &str) -> Result<Payload, RecordError> {
        let Ok(payload) = serde_json::from_str::<InOrder>(text) else {
            return Payload::parse_any_order(text);
        };
        let payload = payload.0;
        if payload.v != FORMAT_VERSION {
            return Err(RecordError::UnknownVersion { version: payload.v });
        }
        if !payload.is_canonical_form_of(text) {
            return Err(not_canonical());
        }
        payload.body.check()?;
        Ok(payload)
    }

    /// The general path of [`Payload::parse`]: version and kind first, then the payload, then
    /// its canonical form.
    fn parse_any_order(text: &str) -> Result<Payload, RecordError> {
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
        if !payload.is_canonical_form_of(text) {
            return Err(not_canonical());
        }
        payload.body.check()?;
        Ok(payload)
    }

    /// Whether `text` is exactly [`Payload::to_canonical_json`]: one spelling per content, no
    /// unknown fields, no reordering, no extra whitespace, no alternative escapes (the
    /// signature alone cannot promise that). Compared as it is written, with no copy made.
    fn is_canonical_form_of(&self, text: &str) -> bool {
        let mut same = SameBytes {
            expected: text.as_bytes(),
            matched: 0,
        };
        serde_json::to_writer(&mut same, self).is_ok() && same.matched == text.len()
    }
}

fn not_canonical() -> RecordError {
    RecordError::malformed(
        "not in canonical form (unknown field, field order, spacing or escaping)",
    )
}

/// A writer that only compares what is written with `expected`, failing at the first byte
/// that differs or overruns it.
struct SameBytes<'a> {
    expected: &'a [u8],
    /// Bytes written so far, all equal to the start of `expected`.
    matched: usize,
}

impl std::io::Write for SameBytes<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let end = self.matched.saturating_add(bytes.len());
        if self.expected.get(self.matched..end) != Some(bytes) {
            return Err(std::io::Error::other("not the canonical bytes"));
        }
        self.matched = end;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A payload read with its header fields in canonical order (`v`, `device`, `seq`, `prev`,
/// `at`, `kind`) and the kind's fields after them: one pass, with no intermediate buffer
/// (serde's `flatten` and internally tagged enums buffer every field first). Fails on any
/// other order, so [`Payload::parse`] falls back to its general path.
struct InOrder(Payload);

impl<'de> Deserialize<'de> for InOrder {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<InOrder, D::Error> {
        deserializer.deserialize_map(InOrderVisitor)
    }
}

struct InOrderVisitor;

impl<'de> serde::de::Visitor<'de> for InOrderVisitor {
    type Value = InOrder;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a record payload in canonical field order")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<InOrder, A::Error> {
        fn field<'de, T: Deserialize<'de>, A: serde::de::MapAccess<'de>>(
            map: &mut A,
            name: &'static str,
        ) -> Result<T, A::Error> {
            if map.next_key_seed(Key(name))?.is_none() {
                return Err(serde::de::Error::missing_field(name));
            }
            map.next_value()
        }
        let v = field(&mut map, "v")?;
        let device = field(&mut map, "device")?;
        let seq = field(&mut map, "seq")?;
        let prev = field(&mut map, "prev")?;
        let at = field(&mut map, "at")?;
        if map.next_key_seed(Key("kind"))?.is_none() {
            return Err(serde::de::Error::missing_field("kind"));
        }
        let kind = map.next_value_seed(KindSeed)?;
        let rest = serde::de::value::MapAccessDeserializer::new(map);
        let body = match kind {
            RecordKind::Meal => RecordBody::Meal(Deserialize::deserialize(rest)?),
            RecordKind::TopUp => RecordBody::TopUp(Deserialize::deserialize(rest)?),
            RecordKind::Void => RecordBody::Void(Deserialize::deserialize(rest)?),
            RecordKind::DayClose => RecordBody::DayClose(Deserialize::deserialize(rest)?),
            RecordKind::KioskStart => RecordBody::KioskStart(Deserialize::deserialize(rest)?),
            RecordKind::OfflineStart => RecordBody::OfflineStart(Deserialize::deserialize(rest)?),
            RecordKind::OfflineEnd => RecordBody::OfflineEnd(Deserialize::deserialize(rest)?),
            RecordKind::SnapshotApplied => {
                RecordBody::SnapshotApplied(Deserialize::deserialize(rest)?)
            }
            RecordKind::StaffSignIn => RecordBody::StaffSignIn(Deserialize::deserialize(rest)?),
            RecordKind::StaffSignOut => RecordBody::StaffSignOut(Deserialize::deserialize(rest)?),
            RecordKind::StaffLockout => RecordBody::StaffLockout(Deserialize::deserialize(rest)?),
            RecordKind::ConfigChange => RecordBody::ConfigChange(Deserialize::deserialize(rest)?),
            RecordKind::ClockChange => RecordBody::ClockChange(Deserialize::deserialize(rest)?),
            RecordKind::ClockDrift => RecordBody::ClockDrift(Deserialize::deserialize(rest)?),
            RecordKind::TapRefused => RecordBody::TapRefused(Deserialize::deserialize(rest)?),
        };
        Ok(InOrder(Payload {
            v,
            device,
            seq,
            prev,
            at,
            body,
        }))
    }
}

/// Reads one map key and accepts it only if it is `self.0`.
struct Key(&'static str);

impl<'de> serde::de::DeserializeSeed<'de> for Key {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for Key {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "the field `{}`", self.0)
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<(), E> {
        if key == self.0 {
            Ok(())
        } else {
            Err(E::custom(format!("expected `{}`, found `{key}`", self.0)))
        }
    }
}

/// Reads the `kind` field's value as a [`RecordKind`].
struct KindSeed;

impl<'de> serde::de::DeserializeSeed<'de> for KindSeed {
    type Value = RecordKind;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<RecordKind, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for KindSeed {
    type Value = RecordKind;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a record kind")
    }

    fn visit_str<E: serde::de::Error>(self, kind: &str) -> Result<RecordKind, E> {
        RecordKind::parse(kind).ok_or_else(|| E::custom(format!("unknown kind {kind:?}")))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn payloads() -> Vec<Payload> {
        let id = |text: &str| StaffId::parse(text).unwrap();
        let at = Timestamp::from_unix_ms(1_795_952_703_120).unwrap();
        let uid = CardUid::parse(&[4, 0xa1, 0xb2, 0xc3, 0x80, 0x11, 0x22]).unwrap();
        let meal = |via| {
            RecordBody::Meal(Meal {
                service: ServiceId::parse("lunch").unwrap(),
                service_date: ServiceDate::parse("2026-11-30").unwrap(),
                meal_type: MealType::parse("lunch").unwrap(),
                account: AccountId::parse("A00042").unwrap(),
                pupil: PupilId::parse("P00042").unwrap(),
                bracket: BracketId::parse("q3").unwrap(),
                price: Cents::new(385),
                balance_after: Cents::new(-15),
                via,
            })
        };
        let bodies = [
            meal(MealVia::Card(uid)),
            meal(MealVia::Staff(id("staff-martin"))),
            RecordBody::TopUp(TopUp {
                account: AccountId::parse("A00042").unwrap(),
                amount: Cents::new(2_000),
                method: TopUpMethod::Cheque,
                staff: id("staff-martin"),
                reference: Some(Text::parse("chèque n° 0012345 « test » \"quoted\"").unwrap()),
            }),
            RecordBody::Void(Void {
                voided_seq: Seq::new(3).unwrap(),
                voided_hash: Digest::of(b"voided"),
                staff: id("staff-martin"),
                reason: Text::parse("wrong pupil").unwrap(),
            }),
            RecordBody::DayClose(DayClose {
                service_date: ServiceDate::parse("2026-11-30").unwrap(),
                staff: id("staff-martin"),
                previous_close: Some(Seq::new(2).unwrap()),
                lines: vec![CloseLine {
                    category: CloseCategory::MealByCard,
                    meal_type: Some(MealType::parse("lunch").unwrap()),
                    bracket: Some(BracketId::parse("q3").unwrap()),
                    count: 1,
                    total: Cents::new(385),
                }],
                cash_expected: Cents::new(2_000),
                cash_counted: Cents::new(1_990),
                cash_difference: Cents::new(-10),
                grand_totals: GrandTotals::default(),
            }),
            RecordBody::OfflineStart(OfflineStart { last_sync: None }),
            RecordBody::OfflineStart(OfflineStart {
                last_sync: Some(at),
            }),
            RecordBody::TapRefused(TapRefused {
                card: uid,
                reason: RefusalReason::InsufficientFunds,
                service: None,
            }),
            RecordBody::ConfigChange(ConfigChange {
                key: Text::parse("volume").unwrap(),
                old: None,
                new: Some(Text::parse("3").unwrap()),
            }),
        ];
        bodies
            .into_iter()
            .enumerate()
            .map(|(n, body)| Payload {
                v: FORMAT_VERSION,
                device: DeviceId::parse("kiosk-jaures-1").unwrap(),
                seq: Seq::new(u64::try_from(n).unwrap() + 1).unwrap(),
                prev: Digest::of(b"previous"),
                at,
                body,
            })
            .collect()
    }

    /// The one-pass reading gives what the general path gives, for canonical payloads of
    /// every shape and for every payload one byte away from one.
    #[test]
    fn one_pass_reading_agrees_with_the_general_path() {
        for payload in payloads() {
            let text = payload.to_canonical_json();
            assert_eq!(Payload::parse(&text), Ok(payload.clone()), "{text}");
            let mut variants = Vec::new();
            for (index, _) in text.char_indices() {
                let mut deleted = text.clone();
                deleted.remove(index);
                variants.push(deleted);
                for insert in [' ', '"', ',', '1', 'x', '}'] {
                    let mut inserted = text.clone();
                    inserted.insert(index, insert);
                    variants.push(inserted);
                }
            }
            for variant in variants {
                assert_eq!(
                    Payload::parse(&variant),
                    Payload::parse_any_order(&variant),
                    "{variant}"
                );
            }
        }
    }
}
