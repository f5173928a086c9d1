//! The storage interface and its two implementations. Every method is one transaction; the
//! HTTP API and the CLI see only [`Store`].

pub mod postgres;
pub mod sqlite;
pub mod web;

use std::future::Future;

use crate::ingest::{AnomalyReason, IngestPlan};
use crate::users::{Role, User};
use proto::api::KioskReport;
use proto::snapshot::{
    AccountState, Card, CardHolder, KioskSettings, Pupil, Service, Snapshot, StaffCredential,
    Tariff,
};
use proto::{
    AccountId, CardUid, Cents, DeviceId, Digest, PublicKey, PupilId, Seq, ServiceDate, ServiceId,
    SignedRecord, SiteId, SnapshotVersion, Text, Timestamp,
};
use serde::{Deserialize, Serialize};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use web::{AccountLine, MealDay, PupilEntry, ServedMeal, WebSession};

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or failed: the request may be retried later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("{what} {id} already exists")]
    AlreadyExists { what: &'static str, id: String },
    #[error("{what} {id} does not exist")]
    NotFound { what: &'static str, id: String },
    /// What the database holds breaks an invariant of this crate (a bad migration, a hand edit).
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("database schema version {found} is newer than this software's {known}")]
    SchemaTooNew { found: i64, known: i64 },
    /// The change would break a rule of the data (a balance out of range).
    #[error("refused: {0}")]
    Refused(String),
}

/// Money moved by a back-office user rather than by a kiosk's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub kind: OperationKind,
    pub account: AccountId,
    /// Positive credits the account, negative debits it (adjustments only).
    pub amount: Cents,
    /// The user who did it.
    pub user: String,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperationKind {
    /// Money paid in at the back-office counter.
    TopUp {
        method: proto::record::TopUpMethod,
        reference: Option<Text>,
    },
    /// A correction by finance; never without a reason.
    Adjustment { reason: Text },
    /// A payment made online, credited once per provider reference.
    OnlinePayment { reference: Text },
}

impl OperationKind {
    fn as_str(&self) -> &'static str {
        match self {
            OperationKind::TopUp { .. } => "top_up",
            OperationKind::Adjustment { .. } => "adjustment",
            OperationKind::OnlinePayment { .. } => "online_payment",
        }
    }

    /// What the operation row keeps beside the amount.
    fn detail(&self) -> String {
        match self {
            OperationKind::TopUp { method, reference } => {
                let method = match method {
                    proto::record::TopUpMethod::Cash => "cash",
                    proto::record::TopUpMethod::Cheque => "cheque",
                };
                match reference {
                    Some(reference) => format!("{method}: {reference}"),
                    None => method.to_owned(),
                }
            }
            OperationKind::Adjustment { reason } => reason.to_string(),
            OperationKind::OnlinePayment { reference } => reference.to_string(),
        }
    }

    fn payment_reference(&self) -> Option<&str> {
        match self {
            OperationKind::OnlinePayment { reference } => Some(reference.as_str()),
            _ => None,
        }
    }
}

/// What an operation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OperationOutcome {
    pub balance: Cents,
    pub version: SnapshotVersion,
    /// The same online payment was credited before: nothing changed this time.
    pub replayed: bool,
}

/// A kiosk registered with the back-office.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// The kiosk's name, as it signs its records and requests.
    pub id: DeviceId,
    pub site: SiteId,
    pub key: PublicKey,
    /// When it was revoked; a revoked kiosk is refused.
    pub revoked_at: Option<Timestamp>,
}

/// Whether a signed request's nonce was new.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceOutcome {
    Fresh,
    Replayed,
}

/// What one upload did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IngestOutcome {
    /// The highest `seq` up to which every record of the kiosk is stored.
    pub acknowledged: Option<Seq>,
    pub stored: u32,
    pub duplicates: u32,
    pub quarantined: u32,
}

/// Something finance must look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anomaly {
    pub device: DeviceId,
    pub seq: Option<Seq>,
    pub reason: AnomalyReason,
    pub detail: String,
    /// The record concerned, kept as evidence; none for a gap.
    pub evidence: Option<SignedRecord>,
}

/// What the back-office knows of a kiosk's last sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KioskStatus {
    pub device: DeviceId,
    pub last_seen: Timestamp,
    pub report: KioskReport,
}

/// A stored record with the back-office's receive time beside the kiosk's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    pub seq: Seq,
    pub record: SignedRecord,
    pub kiosk_at: Timestamp,
    pub received_at: Timestamp,
}

/// An account whose stored balance differs from the sum of its movements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalanceMismatch {
    pub account: AccountId,
    pub balance: Cents,
    pub movements_sum: Cents,
}

/// A registered kiosk and when it was registered: what a reconciliation needs to know which
/// kiosks were expected to trade on a day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceEntry {
    pub device: Device,
    pub added_at: Timestamp,
}

/// Sums of every balance movement (kiosks' records and back-office operations) by the
/// back-office's clock, around a period `[from, to)`, and the sum of all balances now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerTotals {
    pub balances_now: Cents,
    pub before: Cents,
    pub during: Cents,
    pub after: Cents,
}

/// A back-office operation as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredOperation {
    pub id: i64,
    /// `top_up`, `adjustment` or `online_payment`.
    pub kind: String,
    pub account: AccountId,
    pub amount: Cents,
    /// The method and reference of a top-up, the reason of an adjustment, the provider's
    /// reference of a payment.
    pub detail: String,
    pub user: String,
    pub at: Timestamp,
}

/// A stored reconciliation of one service day, for all sites (`site` none) or one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedReconciliation {
    pub date: ServiceDate,
    pub site: Option<SiteId>,
    /// The report as JSON (`crate::reconcile::Report`).
    pub report: String,
    pub run_at: Timestamp,
    pub run_by: String,
    /// Once set, the reconciliation never changes again.
    pub signed_off_by: Option<String>,
    pub signed_off_at: Option<Timestamp>,
}

/// What finance decided about a proposed void.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoidStatus {
    Pending,
    Approved,
    Rejected,
}

impl VoidStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VoidStatus::Pending => "pending",
            VoidStatus::Approved => "approved",
            VoidStatus::Rejected => "rejected",
        }
    }

    pub fn parse(text: &str) -> Option<VoidStatus> {
        [
            VoidStatus::Pending,
            VoidStatus::Approved,
            VoidStatus::Rejected,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// A meal charged twice for the same pupil and service (at two kiosks): the later meal is
/// proposed for a void, which finance approves (the account is credited back by an
/// adjustment on the next open day) or rejects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposedVoid {
    /// Assigned by the store; 0 before it is saved.
    pub id: i64,
    pub date: ServiceDate,
    /// The meal proposed for the void.
    pub device: DeviceId,
    pub seq: Seq,
    /// The earlier meal of the same pupil and service, which stands.
    pub kept_device: DeviceId,
    pub kept_seq: Seq,
    pub account: AccountId,
    pub pupil: PupilId,
    pub service: ServiceId,
    /// The price charged by the meal proposed for the void.
    pub amount: Cents,
    pub status: VoidStatus,
    pub decided_by: Option<String>,
    pub decided_at: Option<Timestamp>,
    /// The day the correction of an approved void belongs to.
    pub correction_date: Option<ServiceDate>,
}

/// The back-office's storage. Implemented for SQLite and PostgreSQL; both pass the same tests.
pub trait Store: Clone + Send + Sync + 'static {
    /// Registers a kiosk and its public key, at `at`.
    fn add_device(
        &self,
        device: Device,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Refuses the kiosk from now on; its stored records stay.
    fn revoke_device(
        &self,
        device: &DeviceId,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn device(
        &self,
        device: &DeviceId,
    ) -> impl Future<Output = Result<Option<Device>, StoreError>> + Send;

    /// Remembers a signed request's nonce; a nonce seen before from the same kiosk is a replay.
    /// `request_at` is the request's signed timestamp: nonces older than the clock skew bound
    /// before `now` are forgotten, since such a request is refused anyway.
    fn remember_nonce(
        &self,
        device: &DeviceId,
        nonce: &str,
        request_at: Timestamp,
        now: Timestamp,
    ) -> impl Future<Output = Result<NonceOutcome, StoreError>> + Send;

    /// Opens an account with a zero balance.
    fn add_account(
        &self,
        account: &AccountId,
        overdraft_floor: Cents,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Changes how far below zero an account may go.
    fn set_overdraft_floor(
        &self,
        account: &AccountId,
        overdraft_floor: Cents,
    ) -> impl Future<Output = Result<SnapshotVersion, StoreError>> + Send;

    fn balance(
        &self,
        account: &AccountId,
    ) -> impl Future<Output = Result<Option<Cents>, StoreError>> + Send;

    /// Verifies a batch of a kiosk's records against its stored chain and stores each exactly
    /// once, applying its effect on balances, all in one transaction.
    fn ingest(
        &self,
        device: &Device,
        batch: Vec<SignedRecord>,
        received_at: Timestamp,
    ) -> impl Future<Output = Result<IngestOutcome, StoreError>> + Send;

    /// Keeps the kiosk's latest report of itself.
    fn record_kiosk_report(
        &self,
        device: &DeviceId,
        report: &KioskReport,
        received_at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn kiosk_statuses(&self) -> impl Future<Output = Result<Vec<KioskStatus>, StoreError>> + Send;

    /// The kiosk's stored chain, in `seq` order.
    fn records(
        &self,
        device: &DeviceId,
    ) -> impl Future<Output = Result<Vec<StoredRecord>, StoreError>> + Send;

    /// Quarantined records, records that moved no money, and gaps still open.
    fn anomalies(&self) -> impl Future<Output = Result<Vec<Anomaly>, StoreError>> + Send;

    /// Accounts whose balance is not the sum of their movements: always empty unless the
    /// database was edited by hand.
    fn balance_mismatches(
        &self,
    ) -> impl Future<Output = Result<Vec<BalanceMismatch>, StoreError>> + Send;

    /// Whether the database answers.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Creates or updates a pupil of `site`; the account must exist.
    fn save_pupil(
        &self,
        site: &SiteId,
        pupil: &Pupil,
    ) -> impl Future<Output = Result<SnapshotVersion, StoreError>> + Send;

    /// Creates or updates a staff member of `site` with the Argon2 hash of their PIN.
    fn save_staff(
        &self,
        site: &SiteId,
        staff: &StaffCredential,
    ) -> impl Future<Output = Result<SnapshotVersion, StoreError>> + Send;

    /// Binds a new card to a pupil or staff member. A UID is bound once: a lost card is
    /// blocked and the holder gets a new one, so the balance stays with the account.
    fn assign_card(
        &self,
        card: &Card,
    ) -> impl Future<Output = Result<SnapshotVersion, StoreError>> + Send;

    /// Puts a card on the hotlist of every kiosk.
    fn block_card(
        &self,
        uid: &CardUid,
    ) -> impl Future<Output = Result<SnapshotVersion, StoreError>> + Send;

    fn save_tariff(
        &self,
        site: &SiteId,
        tariff: &Tariff,
    ) -> impl Future<Output = Result<SnapshotVersion, StoreError>> + Send;

    fn save_service(
        &self,
        site: &SiteId,
        service: &Service,
    ) -> impl Future<Output = Result<SnapshotVersion, StoreError>> + Send;

    fn save_kiosk_settings(
        &self,
        site: &SiteId,
        settings: &KioskSettings,
    ) -> impl Future<Output = Result<SnapshotVersion, StoreError>> + Send;

    fn add_user(
        &self,
        user: &User,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn user(&self, name: &str) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;

    fn account(
        &self,
        account: &AccountId,
    ) -> impl Future<Output = Result<Option<AccountState>, StoreError>> + Send;

    /// Moves money by a back-office operation. An online payment whose reference was credited
    /// before changes nothing (and must name the same account and amount).
    fn apply_operation(
        &self,
        operation: &Operation,
    ) -> impl Future<Output = Result<OperationOutcome, StoreError>> + Send;

    /// The site of a card's holder, if the holder exists.
    fn holder_site(
        &self,
        holder: &CardHolder,
    ) -> impl Future<Output = Result<Option<SiteId>, StoreError>> + Send;

    /// The holder of a card, and whether it is blocked.
    fn card(
        &self,
        uid: &CardUid,
    ) -> impl Future<Output = Result<Option<(CardHolder, bool)>, StoreError>> + Send;

    /// Blocks a lost card and binds `new` to its holder, in one transaction. The balance is
    /// the account's, so it stays.
    fn replace_card(
        &self,
        old: &CardUid,
        new: &CardUid,
    ) -> impl Future<Output = Result<SnapshotVersion, StoreError>> + Send;

    /// What `site`'s kiosks need: everything, or what changed after `since`. A `since` newer
    /// than the store's version (a database restored from a backup) gets a full snapshot. For
    /// `device`, the snapshot says up to which of its records the balances include
    /// (`records_through`), read in the same transaction as the balances.
    fn snapshot(
        &self,
        site: &SiteId,
        device: Option<&DeviceId>,
        since: Option<SnapshotVersion>,
    ) -> impl Future<Output = Result<Snapshot, StoreError>> + Send;

    /// Every registered kiosk, revoked or not, by id.
    fn devices(&self) -> impl Future<Output = Result<Vec<DeviceEntry>, StoreError>> + Send;

    /// Every service of every site, by site and id.
    fn services(&self) -> impl Future<Output = Result<Vec<(SiteId, Service)>, StoreError>> + Send;

    /// Every account's overdraft floor.
    fn overdraft_floors(
        &self,
    ) -> impl Future<Output = Result<Vec<(AccountId, Cents)>, StoreError>> + Send;

    /// The `seq` and service date of each of the kiosk's stored day closes, in `seq` order.
    fn day_closes(
        &self,
        device: &DeviceId,
    ) -> impl Future<Output = Result<Vec<(Seq, ServiceDate)>, StoreError>> + Send;

    /// The kiosk's stored records `from..=to` (to the end when `to` is none), in `seq` order.
    fn record_range(
        &self,
        device: &DeviceId,
        from: Seq,
        to: Option<Seq>,
    ) -> impl Future<Output = Result<Vec<StoredRecord>, StoreError>> + Send;

    /// Sums of the ledger before, during and after `[from, to)`, read in one transaction.
    fn ledger_totals(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<LedgerTotals, StoreError>> + Send;

    /// Back-office operations done in `[from, to)`, in the order they were done.
    fn operations_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<Vec<StoredOperation>, StoreError>> + Send;

    /// Stores a reconciliation, replacing an earlier run of the same day and scope, and adds
    /// the proposed voids not proposed before (a decided one keeps its decision). Refused once
    /// the reconciliation is signed off.
    fn save_reconciliation(
        &self,
        saved: &SavedReconciliation,
        proposals: &[ProposedVoid],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn reconciliation(
        &self,
        date: ServiceDate,
        site: Option<&SiteId>,
    ) -> impl Future<Output = Result<Option<SavedReconciliation>, StoreError>> + Send;

    /// Signs a stored reconciliation off; refused if it is signed off already or if one of the
    /// day's proposed voids is still pending.
    fn sign_off_reconciliation(
        &self,
        date: ServiceDate,
        site: Option<&SiteId>,
        user: &str,
        at: Timestamp,
    ) -> impl Future<Output = Result<SavedReconciliation, StoreError>> + Send;

    /// Proposed voids of one day, or of every day, by id.
    fn proposed_voids(
        &self,
        date: Option<ServiceDate>,
    ) -> impl Future<Output = Result<Vec<ProposedVoid>, StoreError>> + Send;

    /// Approves or rejects a pending proposed void, and applies `correction` (the adjustment
    /// that credits the meal back, for an approval) in the same transaction.
    fn decide_proposed_void(
        &self,
        id: i64,
        status: VoidStatus,
        user: &str,
        at: Timestamp,
        correction: Option<(&Operation, ServiceDate)>,
    ) -> impl Future<Output = Result<ProposedVoid, StoreError>> + Send;
    /// Opens a browser session, forgetting sessions that expired before `now`.
    fn create_web_session(
        &self,
        session: &WebSession,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The unexpired session with this token hash, and its user as stored now (a changed role
    /// applies at the next request).
    fn web_session(
        &self,
        token_hash: &Digest,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<(WebSession, User)>, StoreError>> + Send;

    /// Signs a session out.
    fn end_web_session(
        &self,
        token_hash: &Digest,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Failed sign-ins under `name` since `since`.
    fn failed_sign_ins(
        &self,
        name: &str,
        since: Timestamp,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send;

    /// Counts a failed sign-in under `name`, forgetting failures before `forget_before`.
    fn record_failed_sign_in(
        &self,
        name: &str,
        at: Timestamp,
        forget_before: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn clear_failed_sign_ins(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every back-office user, by name.
    fn users(&self) -> impl Future<Output = Result<Vec<User>, StoreError>> + Send;

    /// Changes an existing user's role, site and password hash.
    fn update_user(&self, user: &User) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Sites named by kiosks, pupils, tariffs or services.
    fn sites(&self) -> impl Future<Output = Result<Vec<SiteId>, StoreError>> + Send;

    /// A site's tariffs and services.
    fn site_setup(
        &self,
        site: &SiteId,
    ) -> impl Future<Output = Result<(Vec<Tariff>, Vec<Service>), StoreError>> + Send;

    /// Up to `limit` pupils whose id or account is `text`, or whose names contain it (any
    /// case), at `site` if given.
    fn search_pupils(
        &self,
        text: &str,
        site: Option<&SiteId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<PupilEntry>, StoreError>> + Send;

    /// The pupils of an account.
    fn account_pupils(
        &self,
        account: &AccountId,
    ) -> impl Future<Output = Result<Vec<PupilEntry>, StoreError>> + Send;

    /// The latest `limit` movements and operations of an account, newest first.
    fn account_history(
        &self,
        account: &AccountId,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<AccountLine>, StoreError>> + Send;

    /// Up to `limit` meals served at `site` for the service day `date`, in kiosk time order.
    fn site_meals(
        &self,
        site: &SiteId,
        date: ServiceDate,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ServedMeal>, StoreError>> + Send;

    /// Meals and revenue per site and service day, from `from` to `to` inclusive.
    fn meal_days(
        &self,
        from: ServiceDate,
        to: ServiceDate,
    ) -> impl Future<Output = Result<Vec<MealDay>, StoreError>> + Send;
}

/// Where the data lives, from `--db`: `sqlite://PATH` or `postgres://...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(text: &str) -> Result<DatabaseUrl, String> {
        if let Some(path) = text.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("sqlite://PATH needs a file path".to_owned());
            }
            return Ok(DatabaseUrl::Sqlite(path.into()));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(text.to_owned()));
        }
        Err(format!(
            "unknown database {text:?}: expected sqlite://PATH or postgres://..."
        ))
    }
}

/// The version a change makes, from the database's counter.
fn snapshot_version(version: i64) -> Result<SnapshotVersion, StoreError> {
    u64::try_from(version)
        .map(SnapshotVersion)
        .map_err(|error| corrupt("snapshot version", error))
}

/// The `version > since` bound of a snapshot's queries: every row for a full snapshot.
fn since_bound(since: Option<SnapshotVersion>) -> Result<i64, StoreError> {
    since.map_or(Ok(-1), |since| {
        i64::try_from(since.0).map_err(|error| corrupt("snapshot version", error))
    })
}

fn holder_columns(holder: &CardHolder) -> (&'static str, &str) {
    match holder {
        CardHolder::Pupil(pupil) => ("pupil", pupil.as_str()),
        CardHolder::Staff(staff) => ("staff", staff.as_str()),
    }
}

fn parse_user(
    name: String,
    role: &str,
    site: Option<String>,
    password_hash: String,
) -> Result<User, StoreError> {
    Ok(User {
        name,
        role: Role::parse(role).ok_or_else(|| corrupt("role", role))?,
        site: site
            .map(|site| SiteId::parse(&site).map_err(|error| corrupt("site", error)))
            .transpose()?,
        password_hash,
    })
}

fn parse_holder(kind: &str, holder: &str) -> Result<CardHolder, StoreError> {
    match kind {
        "pupil" => PupilId::parse(holder)
            .map(CardHolder::Pupil)
            .map_err(|error| corrupt("card holder", error)),
        "staff" => proto::StaffId::parse(holder)
            .map(CardHolder::Staff)
            .map_err(|error| corrupt("card holder", error)),
        other => Err(corrupt("card holder kind", other)),
    }
}

/// The new balance after `amount`, or a refusal when it leaves the range of `i64`.
fn checked_balance(balance: i64, amount: Cents) -> Result<i64, StoreError> {
    balance
        .checked_add(amount.get())
        .ok_or_else(|| StoreError::Refused("the balance would leave its range".to_owned()))
}

/// An online payment seen before must be the same payment.
fn same_payment(
    stored_account: &str,
    stored_amount: i64,
    operation: &Operation,
) -> Result<(), StoreError> {
    if stored_account == operation.account.as_str() && stored_amount == operation.amount.get() {
        return Ok(());
    }
    Err(StoreError::AlreadyExists {
        what: "payment reference with another account or amount",
        id: operation.kind.detail(),
    })
}

/// Text columns that hold proto values: parse on the way out, so a hand-edited row is an error,
/// not a panic.
fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}

fn parse_timestamp(unix_ms: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_unix_ms(unix_ms).map_err(|error| corrupt("timestamp", error))
}

fn parse_seq(seq: i64) -> Result<Seq, StoreError> {
    let seq = u64::try_from(seq).map_err(|error| corrupt("seq", error))?;
    Seq::new(seq).map_err(|error| corrupt("seq", error))
}

/// `seq` as a database integer. A chain longer than `i64::MAX` is out of reach.
fn seq_to_i64(seq: Seq) -> Result<i64, StoreError> {
    i64::try_from(seq.get()).map_err(|error| corrupt("seq", error))
}

/// Nonces of requests signed before this are forgotten: such a request is refused for its
/// timestamp before its nonce is looked at.
fn nonce_forget_before(now: Timestamp) -> i64 {
    now.unix_ms()
        .saturating_sub(proto::limits::REQUEST_CLOCK_SKEW_MS_MAX)
}

fn parse_digest(bytes: &[u8]) -> Result<Digest, StoreError> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("a stored hash is not 32 bytes".to_owned()))?;
    Ok(Digest::from_bytes(bytes))
}

/// Identifies a piece of evidence, so the same refused record uploaded again is kept once.
fn evidence_hash(record: &SignedRecord) -> Digest {
    let mut bytes = Vec::with_capacity(record.payload.len() + record.signature.len() + 1);
    bytes.extend_from_slice(record.payload.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(record.signature.as_bytes());
    Digest::of(&bytes)
}

/// Checks a batch's signatures before the ingest's transaction, on a blocking thread: hundreds
/// of Ed25519 verifications would hold up every other request on an async worker.
async fn check_batch(
    key: PublicKey,
    batch: Vec<SignedRecord>,
) -> Result<Vec<proto::CheckedRecord>, StoreError> {
    tokio::task::spawn_blocking(move || crate::ingest::check(&key, batch))
        .await
        .map_err(|error| StoreError::Unavailable(error.to_string()))
}

fn outcome(plan: &IngestPlan) -> IngestOutcome {
    IngestOutcome {
        acknowledged: plan.head.next_seq.previous(),
        stored: count(plan.append.len()),
        duplicates: plan.duplicates,
        quarantined: count(plan.quarantine.len()),
    }
}

/// A count within one batch, bounded by [`proto::limits::UPLOAD_BATCH_RECORDS_MAX`] plus the
/// held records.
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn kiosk_status(device: &str, last_seen: i64, report: &str) -> Result<KioskStatus, StoreError> {
    Ok(KioskStatus {
        device: DeviceId::parse(device).map_err(|error| corrupt("device", error))?,
        last_seen: parse_timestamp(last_seen)?,
        report: serde_json::from_str(report).map_err(|error| corrupt("kiosk report", error))?,
    })
}

/// An `anomalies` row as both databases return it.
struct AnomalyRow {
    device: String,
    seq: Option<i64>,
    reason: String,
    detail: String,
    payload: String,
    signature: String,
}

impl AnomalyRow {
    fn parse(self) -> Result<Anomaly, StoreError> {
        Ok(Anomaly {
            device: DeviceId::parse(&self.device).map_err(|error| corrupt("device", error))?,
            seq: self.seq.map(parse_seq).transpose()?,
            reason: AnomalyReason::parse(&self.reason)
                .ok_or_else(|| corrupt("anomaly reason", &self.reason))?,
            detail: self.detail,
            evidence: Some(SignedRecord {
                payload: self.payload,
                signature: self.signature,
            }),
        })
    }
}

/// The gap before a kiosk's first held record.
fn gap_anomaly(
    device: &str,
    first_held: i64,
    last_stored: Option<i64>,
) -> Result<Anomaly, StoreError> {
    let first_held = parse_seq(first_held)?;
    let from = last_stored
        .map(parse_seq)
        .transpose()?
        .map_or(Seq::FIRST, Seq::next);
    let to = first_held
        .previous()
        .ok_or_else(|| StoreError::Corrupt("a record held at seq 1".to_owned()))?;
    Ok(Anomaly {
        device: DeviceId::parse(device).map_err(|error| corrupt("device", error))?,
        seq: Some(from),
        reason: AnomalyReason::Gap,
        detail: format!("seq {from} to {to} missing; later records held until they arrive"),
        evidence: None,
    })
}

/// The `site` column of a reconciliation: empty for all sites.
fn scope_column(site: Option<&SiteId>) -> &str {
    site.map_or("", SiteId::as_str)
}

fn parse_service_date(text: &str) -> Result<ServiceDate, StoreError> {
    ServiceDate::parse(text).map_err(|error| corrupt("service date", error))
}

/// A `reconciliations` row as both databases return it.
struct ReconciliationRow {
    date: String,
    site: String,
    report: String,
    run_at: i64,
    run_by: String,
    signed_off_by: Option<String>,
    signed_off_at: Option<i64>,
}

impl ReconciliationRow {
    fn parse(self) -> Result<SavedReconciliation, StoreError> {
        Ok(SavedReconciliation {
            date: parse_service_date(&self.date)?,
            site: if self.site.is_empty() {
                None
            } else {
                Some(SiteId::parse(&self.site).map_err(|error| corrupt("site", error))?)
            },
            report: self.report,
            run_at: parse_timestamp(self.run_at)?,
            run_by: self.run_by,
            signed_off_by: self.signed_off_by,
            signed_off_at: self.signed_off_at.map(parse_timestamp).transpose()?,
        })
    }
}

/// A `proposed_voids` row as both databases return it.
struct ProposedVoidRow {
    id: i64,
    date: String,
    device: String,
    seq: i64,
    kept_device: String,
    kept_seq: i64,
    account: String,
    pupil: String,
    service: String,
    amount: i64,
    status: String,
    decided_by: Option<String>,
    decided_at: Option<i64>,
    correction_date: Option<String>,
}

/// The columns of [`ProposedVoidRow`], in its order.
const PROPOSED_VOID_COLUMNS: &str = "id, service_date, device, seq, kept_device, kept_seq, \
    account, pupil, service, amount, status, decided_by, decided_at, correction_date";

impl ProposedVoidRow {
    fn parse(self) -> Result<ProposedVoid, StoreError> {
        let device = |text: &str| DeviceId::parse(text).map_err(|error| corrupt("device", error));
        Ok(ProposedVoid {
            id: self.id,
            date: parse_service_date(&self.date)?,
            device: device(&self.device)?,
            seq: parse_seq(self.seq)?,
            kept_device: device(&self.kept_device)?,
            kept_seq: parse_seq(self.kept_seq)?,
            account: AccountId::parse(&self.account).map_err(|error| corrupt("account", error))?,
            pupil: PupilId::parse(&self.pupil).map_err(|error| corrupt("pupil", error))?,
            service: ServiceId::parse(&self.service).map_err(|error| corrupt("service", error))?,
            amount: Cents::new(self.amount),
            status: VoidStatus::parse(&self.status)
                .ok_or_else(|| corrupt("proposed void status", &self.status))?,
            decided_by: self.decided_by,
            decided_at: self.decided_at.map(parse_timestamp).transpose()?,
            correction_date: self
                .correction_date
                .as_deref()
                .map(parse_service_date)
                .transpose()?,
        })
    }
}

fn parse_device_entry(
    id: &str,
    site: &str,
    key: &[u8],
    revoked_at: Option<i64>,
    added_at: i64,
) -> Result<DeviceEntry, StoreError> {
    Ok(DeviceEntry {
        device: Device {
            id: DeviceId::parse(id).map_err(|error| corrupt("device", error))?,
            site: SiteId::parse(site).map_err(|error| corrupt("site", error))?,
            key: PublicKey::from_bytes(key).map_err(|error| corrupt("public key", error))?,
            revoked_at: revoked_at.map(parse_timestamp).transpose()?,
        },
        added_at: parse_timestamp(added_at)?,
    })
}

fn parse_stored_operation(
    id: i64,
    kind: String,
    account: &str,
    amount: i64,
    detail: String,
    user: String,
    at: i64,
) -> Result<StoredOperation, StoreError> {
    Ok(StoredOperation {
        id,
        kind,
        account: AccountId::parse(account).map_err(|error| corrupt("account", error))?,
        amount: Cents::new(amount),
        detail,
        user,
        at: parse_timestamp(at)?,
    })
}

fn parse_service(site: &str, data: &str) -> Result<(SiteId, Service), StoreError> {
    Ok((
        SiteId::parse(site).map_err(|error| corrupt("site", error))?,
        serde_json::from_str(data).map_err(|error| corrupt("service", error))?,
    ))
}

/// Why a reconciliation cannot change any more.
fn signed_off_refusal(date: ServiceDate, site: Option<&SiteId>) -> StoreError {
    StoreError::Refused(format!(
        "the reconciliation of {date} ({}) is signed off and cannot change",
        site.map_or("all sites", SiteId::as_str)
    ))
}

#[cfg(test)]
mod tests {
    use super::DatabaseUrl;

    fn check(text: &str, expected: Result<DatabaseUrl, ()>) {
        assert_eq!(DatabaseUrl::parse(text).map_err(|_| ()), expected, "{text}");
    }

    #[test]
    fn database_urls() {
        check(
            "sqlite:///var/lib/canteen/backoffice.db",
            Ok(DatabaseUrl::Sqlite("/var/lib/canteen/backoffice.db".into())),
        );
        check(
            "sqlite://data.db",
            Ok(DatabaseUrl::Sqlite("data.db".into())),
        );
        check(
            "postgres://postgres@127.0.0.1/canteen",
            Ok(DatabaseUrl::Postgres(
                "postgres://postgres@127.0.0.1/canteen".to_owned(),
            )),
        );
        check("sqlite://", Err(()));
        check("mysql://x", Err(()));
        check("", Err(()));
    }
}
