//! How the ledger's rows become values: the ledger's error, and the column readers its queries
//! and its in-memory copy ([`super::lookups`]) share.

use proto::{AccountId, BracketId, PupilId, Seq, Text};

/// The ledger could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger {path}: already exists")]
    AlreadyExists { path: String },
    #[error("ledger: disk full")]
    DiskFull,
    #[error("ledger: not writable")]
    ReadOnly,
    #[error("ledger: schema version {found} is newer than this software ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("ledger: stored record {seq} does not match its hash: the file was altered")]
    Corrupt { seq: u64 },
    #[error("ledger: stored value unreadable: {0}")]
    Stored(String),
    #[error("ledger: {0}")]
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for LedgerError {
    fn from(error: rusqlite::Error) -> LedgerError {
        match error.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => LedgerError::DiskFull,
            Some(rusqlite::ErrorCode::ReadOnly) => LedgerError::ReadOnly,
            _ => LedgerError::Sqlite(error),
        }
    }
}

pub(super) fn stored(what: impl std::fmt::Display) -> LedgerError {
    LedgerError::Stored(what.to_string())
}

/// A pupil as the tap path needs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PupilEntry {
    pub id: PupilId,
    pub account: AccountId,
    pub first_name: Text,
    pub last_name: Text,
    pub bracket: BracketId,
    pub dietary: Vec<Text>,
}

pub(super) fn pupil_columns(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<Result<PupilEntry, LedgerError>> {
    let id: String = row.get(0)?;
    let account: String = row.get(1)?;
    let first_name: String = row.get(2)?;
    let last_name: String = row.get(3)?;
    let bracket: String = row.get(4)?;
    let dietary: String = row.get(5)?;
    Ok((|| {
        Ok(PupilEntry {
            id: PupilId::parse(&id).map_err(stored)?,
            account: AccountId::parse(&account).map_err(stored)?,
            first_name: Text::parse(&first_name).map_err(stored)?,
            last_name: Text::parse(&last_name).map_err(stored)?,
            bracket: BracketId::parse(&bracket).map_err(stored)?,
            dietary: serde_json::from_str(&dietary).map_err(stored)?,
        })
    })())
}

pub(super) fn seq_sql(seq: Seq) -> i64 {
    i64::try_from(seq.get()).expect("a kiosk's seq fits in SQLite's integer")
}

pub(super) fn to_seq(value: i64) -> Result<Seq, LedgerError> {
    u64::try_from(value)
        .ok()
        .and_then(|value| Seq::new(value).ok())
        .ok_or_else(|| stored(format!("seq {value}")))
}
