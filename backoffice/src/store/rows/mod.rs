//! The storage traits: what a transaction reads and writes, a method a statement or a few, with
//! no rule of the business in them. Each is implemented once for every [`Sql`] client, so
//! SQLite and PostgreSQL run the same statements except where their SQL differs, written side by
//! side with [`Dialect::pick`](super::sql::Dialect::pick).
//!
//! - [`devices`]: kiosks, their request nonces and their reports.
//! - [`chain`]: kiosks' records as stored: the chain, records held beyond a gap, movements,
//!   anomalies, meals and day totals, balances, snapshot versions.
//! - [`people`]: accounts, pupils, cards, staff, tariffs, services, settings, users, and what
//!   snapshots and pages read of them.
//! - [`finance`]: back-office operations, reconciliations, proposed voids, ledger sums.
//! - [`sessions`]: web sessions and failed sign-ins.

pub mod chain;
pub mod devices;
pub mod finance;
pub mod people;
pub mod sessions;

pub use chain::{
    Anomaly, AnomalyReason, BalanceMismatch, ChainRows, LedgerTotals, NewAnomaly, Stamp,
    StoredRecord,
};
pub use devices::{Device, DeviceEntry, DeviceRows, KioskStatus};
pub use finance::{
    FinanceRows, Operation, OperationKind, ProposedVoid, SavedReconciliation, StoredOperation,
    VoidStatus,
};
pub use people::{AccountLine, MealDay, PeopleRows, PupilEntry, ServedMeal};
pub use sessions::{ApiToken, SessionRows, WebSession};

use proto::{AccountId, CardUid, Digest, PupilId, Seq, ServiceDate, SiteId, Timestamp};

use super::StoreError;

/// Text columns that hold proto values: parsed on the way out, so a hand-edited row is an
/// error, not a panic.
pub(crate) fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}

pub(crate) fn parse_timestamp(unix_ms: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_unix_ms(unix_ms).map_err(|error| corrupt("timestamp", error))
}

pub(crate) fn parse_seq(seq: i64) -> Result<Seq, StoreError> {
    let seq = u64::try_from(seq).map_err(|error| corrupt("seq", error))?;
    Seq::new(seq).map_err(|error| corrupt("seq", error))
}

/// `seq` as a database integer: [`Seq::MAX`] fits.
pub(crate) fn seq_column(seq: Seq) -> i64 {
    i64::try_from(seq.get()).unwrap_or(i64::MAX)
}

pub(crate) fn parse_digest(bytes: &[u8]) -> Result<Digest, StoreError> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("a stored hash is not 32 bytes".to_owned()))?;
    Ok(Digest::from_bytes(bytes))
}

pub(crate) fn parse_site(site: &str) -> Result<SiteId, StoreError> {
    SiteId::parse(site).map_err(|error| corrupt("site", error))
}

pub(crate) fn parse_account(account: &str) -> Result<AccountId, StoreError> {
    AccountId::parse(account).map_err(|error| corrupt("account", error))
}

pub(crate) fn parse_pupil(pupil: &str) -> Result<PupilId, StoreError> {
    PupilId::parse(pupil).map_err(|error| corrupt("pupil", error))
}

pub(crate) fn parse_card(uid: &[u8]) -> Result<CardUid, StoreError> {
    CardUid::parse(uid).map_err(|error| corrupt("card uid", error))
}

pub(crate) fn parse_service_date(text: &str) -> Result<ServiceDate, StoreError> {
    ServiceDate::parse(text).map_err(|error| corrupt("service date", error))
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    what: &str,
    json: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|error| corrupt(what, error))
}

/// The JSON a store keeps for a value it hands back in snapshots.
pub(crate) fn to_json(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|error| corrupt("encoding", error))
}

/// A bound on rows as a database integer.
pub(crate) fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// The rows of a delta after `since`: every row for a full snapshot.
pub(crate) fn since_column(since: Option<proto::SnapshotVersion>) -> i64 {
    since.map_or(-1, |since| i64::try_from(since.0).unwrap_or(i64::MAX))
}
