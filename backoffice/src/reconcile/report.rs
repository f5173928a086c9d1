//! What a reconciliation reports: per kiosk and site, the day's sums, the ledger check, and the
//! findings with their evidence and the action each calls for. Stored as JSON; the same inputs
//! give an equal report.

use std::collections::BTreeSet;

use proto::{
    BracketId, Cents, DeviceId, MealType, Seq, ServiceDate, SignedRecord, SiteId, Timestamp,
};
use serde::{Deserialize, Serialize};

/// The stored result of one reconciliation. Deterministic: the same inputs give equal reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Report {
    pub date: ServiceDate,
    /// One site, or all sites when none.
    pub site: Option<SiteId>,
    pub time_zone: String,
    pub day_start: Timestamp,
    pub day_end: Timestamp,
    /// Records read and checked, day closes before the day included.
    pub records_checked: u64,
    pub kiosks: Vec<KioskDay>,
    pub sites: Vec<SiteDay>,
    /// Meals by site, meal type and bracket.
    pub meals: Vec<MealLine>,
    /// Meals charged minus meals voided.
    pub revenue: Cents,
    pub top_ups: Vec<TopUpLine>,
    /// Finance's adjustments of the day (all sites only).
    pub adjustments: Cents,
    /// Opening + movements = closing over all accounts (all sites only).
    pub balances: Option<BalanceCheck>,
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether nothing needs finance's attention beyond informative findings.
    pub fn is_clean(&self) -> bool {
        self.findings
            .iter()
            .all(|finding| !finding.kind.is_defect())
    }

    /// The finding kinds present, for tests and summaries.
    pub fn kinds(&self) -> BTreeSet<FindingKind> {
        self.findings.iter().map(|finding| finding.kind).collect()
    }
}

/// One kiosk's day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KioskDay {
    pub device: DeviceId,
    pub site: SiteId,
    pub expected: bool,
    pub first_seq: Option<Seq>,
    pub last_seq: Option<Seq>,
    pub records: u64,
    pub day_close: Option<Seq>,
    /// Whether the day close's lines, cash expected and grand totals match the records.
    pub close_matches: Option<bool>,
    pub cash_expected: Cents,
    pub cash_counted: Option<Cents>,
    pub cash_difference: Option<Cents>,
    pub meals: u64,
    pub revenue: Cents,
    /// No defect found in its records, chain, key or close.
    pub chain_clean: bool,
}

/// One site's day: the sums of its kiosks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SiteDay {
    pub site: Option<SiteId>,
    pub kiosks: u32,
    pub meals: u64,
    pub revenue: Cents,
    pub voided_meals: Cents,
    pub top_ups_cash: Cents,
    pub top_ups_cheque: Cents,
    pub cash_expected: Cents,
    pub cash_counted: Cents,
    pub cash_difference: Cents,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MealLine {
    pub site: SiteId,
    pub meal_type: MealType,
    pub bracket: BracketId,
    pub count: u64,
    pub total: Cents,
    pub voided_count: u64,
    pub voided_total: Cents,
}

/// Where money was paid in.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TopUpSource {
    Kiosk,
    Counter,
    Online,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    Cash,
    Cheque,
    Online,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopUpLine {
    pub source: TopUpSource,
    pub method: PaymentMethod,
    pub count: u64,
    /// Net of voided top-ups.
    pub total: Cents,
}

/// Opening and closing balance of all accounts around the day, by the back-office's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BalanceCheck {
    pub opening: Cents,
    pub movements: Cents,
    pub closing: Cents,
    /// `opening + movements == closing`.
    pub holds: bool,
}

/// Something finance should see, with its evidence and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Finding {
    pub kind: FindingKind,
    pub site: Option<SiteId>,
    pub device: Option<DeviceId>,
    pub seq: Option<Seq>,
    pub detail: String,
    pub action: String,
    /// The signed records concerned, as stored.
    pub evidence: Vec<SignedRecord>,
}

/// Every check's name. Defects break trust in the figures; the others are listed for action.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    NotUploaded,
    NoDayClose,
    Gap,
    Truncated,
    Fork,
    BadSignature,
    BadRecord,
    ForgedDayClose,
    WrongDevice,
    BrokenLink,
    DuplicateRecord,
    ReorderedRecords,
    SignedAfterRevocation,
    DayCloseMismatch,
    BalanceMismatch,
    Quarantined,
    CashDifference,
    LateUpload,
    DuplicateMeal,
    Overdraft,
    BlockedCard,
    UnknownCard,
    Void,
    ServedWithoutCard,
    ClockDrift,
    FindingsCapped,
}

impl FindingKind {
    /// A defect of the records or totals themselves, as opposed to an event to review.
    pub fn is_defect(self) -> bool {
        matches!(
            self,
            FindingKind::NotUploaded
                | FindingKind::NoDayClose
                | FindingKind::Gap
                | FindingKind::Truncated
                | FindingKind::Fork
                | FindingKind::BadSignature
                | FindingKind::BadRecord
                | FindingKind::ForgedDayClose
                | FindingKind::WrongDevice
                | FindingKind::BrokenLink
                | FindingKind::DuplicateRecord
                | FindingKind::ReorderedRecords
                | FindingKind::SignedAfterRevocation
                | FindingKind::DayCloseMismatch
                | FindingKind::BalanceMismatch
                | FindingKind::Quarantined
        )
    }

    /// The suggested action.
    pub fn action(self) -> &'static str {
        match self {
            FindingKind::NotUploaded => {
                "check the kiosk's network and power; have it sync, or upload its export by hand"
            }
            FindingKind::NoDayClose => {
                "ask the site to close the day on the kiosk; reconcile again once it is uploaded"
            }
            FindingKind::Gap | FindingKind::Truncated => {
                "records are missing: have the kiosk sync again; if they never come, compare \
                 with the kiosk's own export and escalate to IT security"
            }
            FindingKind::Fork => {
                "two different records claim the same place: check whether the kiosk was \
                 restored from a backup or cloned; escalate to IT security"
            }
            FindingKind::BadSignature | FindingKind::BadRecord | FindingKind::BrokenLink => {
                "the stored record is not what the kiosk signed: restore it from the kiosk's \
                 export or a backup and escalate to IT security"
            }
            FindingKind::ForgedDayClose => {
                "the day close is not signed by the kiosk: do not sign off; compare with the \
                 kiosk's export and escalate to IT security"
            }
            FindingKind::WrongDevice => "escalate to IT security: a record names another kiosk",
            FindingKind::DuplicateRecord | FindingKind::ReorderedRecords => {
                "the stored chain was altered: restore it from the kiosk's export or a backup"
            }
            FindingKind::SignedAfterRevocation => {
                "the kiosk was revoked: find out who still uses its key; refuse these records"
            }
            FindingKind::DayCloseMismatch => {
                "the kiosk's totals differ from its records: check the kiosk's software \
                 version and the records listed"
            }
            FindingKind::BalanceMismatch => {
                "balances do not follow from the ledger: stop corrections and escalate"
            }
            FindingKind::Quarantined => {
                "review the refused record and its reason; correct the data it needs (account, \
                 void) or escalate"
            }
            FindingKind::CashDifference => {
                "accepted as counted: check the count with the site and note the reason"
            }
            FindingKind::LateUpload => "check the kiosk's connection; the figures now include it",
            FindingKind::DuplicateMeal => {
                "approve the proposed void to credit the account back, or reject it"
            }
            FindingKind::Overdraft => {
                "contact the family; consider blocking the card until the account is topped up"
            }
            FindingKind::BlockedCard => {
                "a blocked card was used: check who holds it; the tap was refused"
            }
            FindingKind::UnknownCard => {
                "an unknown card was tapped: enrol it if it is a pupil's new card"
            }
            FindingKind::Void => "check the reason given by the staff member",
            FindingKind::ServedWithoutCard => {
                "check the pupil has a working card; replace it if lost"
            }
            FindingKind::ClockDrift => "check the kiosk's time synchronisation (NTP)",
            FindingKind::FindingsCapped => "look at the kiosk's records directly",
        }
    }
}
