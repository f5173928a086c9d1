//! The SQLite store: one connection behind a mutex, used on tokio's blocking threads. SQLite
//! allows one writer at a time, so one connection loses nothing and keeps every transaction
//! simple.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::api::KioskReport;
use proto::snapshot::{
    AccountState, Card, CardHolder, KioskSettings, Pupil, Service, Snapshot, StaffCredential,
    Tariff,
};
use proto::{
    AccountId, CardUid, Cents, ChainHead, CheckedRecord, DeviceId, Digest, PublicKey, ServiceDate,
    SignedRecord, SiteId, SnapshotVersion, Timestamp,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{
    AccountLine, Anomaly, BalanceMismatch, Device, DeviceEntry, IngestOutcome, KioskStatus,
    LedgerTotals, MealDay, NonceOutcome, Operation, OperationOutcome, ProposedVoid,
    ProposedVoidRow, PupilEntry, ReconciliationRow, SavedReconciliation, ServedMeal, Store,
    StoreError, StoredOperation, StoredRecord, VoidStatus, WebSession, corrupt, parse_seq,
    parse_timestamp, seq_to_i64, web,
};
use crate::ingest::{self, AnomalyReason, LedgerAfter, LedgerBefore, StoredChain};
use crate::snapshot::{self, CardRow, SnapshotRows};
use crate::users::User;
use proto::Seq;

/// How long a statement waits for another process's write lock before giving up.
const BUSY_TIMEOUT_MS: u64 = 5_000;

/// Schema versions, in order; version N is `MIGRATIONS[N - 1]`. Never edit one that shipped.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    public_key BLOB NOT NULL,
    added_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
CREATE TABLE nonces (
    device TEXT NOT NULL REFERENCES devices (id),
    nonce TEXT NOT NULL,
    request_at INTEGER NOT NULL,
    PRIMARY KEY (device, nonce)
) STRICT;
CREATE INDEX nonces_by_age ON nonces (device, request_at);
CREATE TABLE records (
    device TEXT NOT NULL REFERENCES devices (id),
    seq INTEGER NOT NULL CHECK (seq >= 1),
    hash BLOB NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    signature TEXT NOT NULL,
    kiosk_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (device, seq)
) STRICT;
CREATE TABLE held_records (
    device TEXT NOT NULL REFERENCES devices (id),
    seq INTEGER NOT NULL CHECK (seq >= 1),
    payload TEXT NOT NULL,
    signature TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (device, seq)
) STRICT;
CREATE TABLE anomalies (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL REFERENCES devices (id),
    seq INTEGER,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    payload TEXT NOT NULL,
    signature TEXT NOT NULL,
    evidence_hash BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (device, reason, evidence_hash)
) STRICT;
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    balance INTEGER NOT NULL,
    overdraft_floor INTEGER NOT NULL CHECK (overdraft_floor <= 0),
    created_at INTEGER NOT NULL
) STRICT;
CREATE TABLE movements (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL REFERENCES accounts (id),
    amount INTEGER NOT NULL,
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    reverses_seq INTEGER,
    at INTEGER NOT NULL,
    FOREIGN KEY (device, seq) REFERENCES records (device, seq)
) STRICT;
CREATE INDEX movements_by_record ON movements (device, seq);
CREATE UNIQUE INDEX movements_one_reversal ON movements (device, reverses_seq, account)
    WHERE reverses_seq IS NOT NULL;
CREATE TABLE kiosks (
    device TEXT PRIMARY KEY REFERENCES devices (id),
    last_seen INTEGER NOT NULL,
    report TEXT NOT NULL
) STRICT;
",
    r"
CREATE TABLE snapshot_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
) STRICT;
INSERT INTO snapshot_version (id, version) VALUES (1, 0);
ALTER TABLE accounts ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
CREATE INDEX accounts_by_version ON accounts (version);
CREATE TABLE pupils (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    account TEXT NOT NULL REFERENCES accounts (id),
    data TEXT NOT NULL,
    version INTEGER NOT NULL
) STRICT;
CREATE INDEX pupils_by_site ON pupils (site, version);
CREATE INDEX pupils_by_account ON pupils (account);
CREATE TABLE staff (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    data TEXT NOT NULL,
    version INTEGER NOT NULL
) STRICT;
CREATE TABLE cards (
    uid BLOB PRIMARY KEY,
    site TEXT NOT NULL,
    holder_kind TEXT NOT NULL CHECK (holder_kind IN ('pupil', 'staff')),
    holder TEXT NOT NULL,
    blocked INTEGER NOT NULL CHECK (blocked IN (0, 1)),
    version INTEGER NOT NULL
) STRICT;
CREATE INDEX cards_by_site ON cards (site, version);
CREATE INDEX cards_blocked ON cards (blocked, version);
CREATE TABLE tariffs (
    site TEXT NOT NULL,
    bracket TEXT NOT NULL,
    meal_type TEXT NOT NULL,
    price INTEGER NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (site, bracket, meal_type)
) STRICT;
CREATE TABLE services (
    site TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (site, id)
) STRICT;
CREATE TABLE kiosk_settings (
    site TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    version INTEGER NOT NULL
) STRICT;
",
    r"
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('staff', 'finance', 'admin', 'payments')),
    site TEXT,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE TABLE operations (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('top_up', 'adjustment', 'online_payment')),
    account TEXT NOT NULL REFERENCES accounts (id),
    amount INTEGER NOT NULL,
    detail TEXT NOT NULL,
    payment_reference TEXT UNIQUE,
    user_name TEXT NOT NULL,
    at INTEGER NOT NULL
) STRICT;
CREATE INDEX operations_by_account ON operations (account);
",
    r"
CREATE INDEX records_day_closes ON records (device, seq) WHERE kind = 'day_close';
CREATE INDEX movements_by_time ON movements (at);
CREATE INDEX operations_by_time ON operations (at);
CREATE TABLE reconciliations (
    service_date TEXT NOT NULL,
    site TEXT NOT NULL,
    report TEXT NOT NULL,
    run_at INTEGER NOT NULL,
    run_by TEXT NOT NULL,
    signed_off_by TEXT,
    signed_off_at INTEGER,
    PRIMARY KEY (service_date, site)
) STRICT;
CREATE TRIGGER reconciliations_signed_off_update BEFORE UPDATE ON reconciliations
    WHEN OLD.signed_off_at IS NOT NULL
    BEGIN SELECT RAISE(ABORT, 'a signed-off reconciliation is immutable'); END;
CREATE TRIGGER reconciliations_signed_off_delete BEFORE DELETE ON reconciliations
    WHEN OLD.signed_off_at IS NOT NULL
    BEGIN SELECT RAISE(ABORT, 'a signed-off reconciliation is immutable'); END;
CREATE TABLE proposed_voids (
    id INTEGER PRIMARY KEY,
    service_date TEXT NOT NULL,
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kept_device TEXT NOT NULL,
    kept_seq INTEGER NOT NULL,
    account TEXT NOT NULL,
    pupil TEXT NOT NULL,
    service TEXT NOT NULL,
    amount INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    decided_by TEXT,
    decided_at INTEGER,
    correction_date TEXT,
    UNIQUE (device, seq),
    FOREIGN KEY (device, seq) REFERENCES records (device, seq)
) STRICT;
CREATE INDEX proposed_voids_by_date ON proposed_voids (service_date);
",
    r"
CREATE TABLE web_sessions (
    token_hash BLOB PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name),
    csrf TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);
CREATE TABLE sign_in_failures (
    id INTEGER PRIMARY KEY,
    user_name TEXT NOT NULL,
    at INTEGER NOT NULL
) STRICT;
CREATE INDEX sign_in_failures_by_name ON sign_in_failures (user_name, at);
CREATE INDEX sign_in_failures_by_age ON sign_in_failures (at);
CREATE INDEX movements_by_account ON movements (account, at);
CREATE INDEX operations_by_account_time ON operations (account, at);
CREATE INDEX records_by_kiosk_time ON records (device, kind, kiosk_at);
CREATE INDEX cards_by_holder ON cards (holder_kind, holder);
CREATE TABLE meal_days (
    site TEXT NOT NULL,
    service_date TEXT NOT NULL,
    meals INTEGER NOT NULL,
    revenue INTEGER NOT NULL,
    PRIMARY KEY (site, service_date)
) STRICT;
INSERT INTO meal_days (site, service_date, meals, revenue)
SELECT d.site, json_extract(r.payload, '$.service_date'),
       SUM(CASE WHEN v.id IS NULL THEN 1 ELSE 0 END),
       SUM(CASE WHEN v.id IS NULL THEN json_extract(r.payload, '$.price') ELSE 0 END)
FROM records r
JOIN devices d ON d.id = r.device
LEFT JOIN movements v ON v.device = r.device AND v.reverses_seq = r.seq
WHERE r.kind = 'meal'
GROUP BY d.site, json_extract(r.payload, '$.service_date');
",
    r"
-- Derived from the records, as meal_days is: no foreign key to them, so a record removed
-- behind the back-office's back is for reconciliation to find missing, not refused here.
CREATE TABLE meals (
    site TEXT NOT NULL,
    service_date TEXT NOT NULL,
    kiosk_at INTEGER NOT NULL,
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    service TEXT NOT NULL,
    meal_type TEXT NOT NULL,
    account TEXT NOT NULL,
    pupil TEXT NOT NULL,
    via_card TEXT,
    via_staff TEXT,
    price INTEGER NOT NULL,
    PRIMARY KEY (site, service_date, kiosk_at, device, seq),
    CHECK ((via_card IS NULL) <> (via_staff IS NULL))
) STRICT, WITHOUT ROWID;
INSERT INTO meals (site, service_date, kiosk_at, device, seq, service, meal_type, account, pupil,
                   via_card, via_staff, price)
SELECT d.site, json_extract(r.payload, '$.service_date'), r.kiosk_at, r.device, r.seq,
       json_extract(r.payload, '$.service'), json_extract(r.payload, '$.meal_type'),
       json_extract(r.payload, '$.account'), json_extract(r.payload, '$.pupil'),
       json_extract(r.payload, '$.via.card'), json_extract(r.payload, '$.via.staff'),
       json_extract(r.payload, '$.price')
FROM records r
JOIN devices d ON d.id = r.device
WHERE r.kind = 'meal';
",
];

/// The back-office's data in one SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// A std mutex, held only on blocking threads and never across an await.
    connection: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let path = path.to_owned();
        let connection = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            let mut connection = Connection::open(&path).map_err(unavailable)?;
            // Explicit, not defaults: durability before speed, references enforced, and a
            // writer waits for another process's lock instead of failing at once.
            connection
                .pragma_update(None, "journal_mode", "WAL")
                .map_err(unavailable)?;
            connection
                .pragma_update(None, "synchronous", "FULL")
                .map_err(unavailable)?;
            connection
                .pragma_update(None, "foreign_keys", "ON")
                .map_err(unavailable)?;
            connection
                .busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
                .map_err(unavailable)?;
            migrate(&mut connection)?;
            Ok(connection)
        })
        .await
        .map_err(|error| StoreError::Unavailable(error.to_string()))??;
        Ok(SqliteStore {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Runs `change` in a write transaction with the next snapshot version.
    async fn write(
        &self,
        change: impl FnOnce(&rusqlite::Transaction<'_>, i64) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<SnapshotVersion, StoreError> {
        self.with(move |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let version = bump_version(&transaction)?;
            change(&transaction, version)?;
            transaction.commit().map_err(unavailable)?;
            super::snapshot_version(version)
        })
        .await
    }

    /// Runs `work` with the connection on a blocking thread.
    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            let mut connection = connection
                .lock()
                .map_err(|_| StoreError::Unavailable("a database task panicked".to_owned()))?;
            work(&mut connection)
        })
        .await
        .map_err(|error| StoreError::Unavailable(error.to_string()))?
    }
}

fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn is_constraint_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ConstraintViolation)
    )
}

fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let known = i64::try_from(MIGRATIONS.len()).map_err(|error| corrupt("migrations", error))?;
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    transaction
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY,
                applied_at INTEGER NOT NULL
            ) STRICT;",
        )
        .map_err(unavailable)?;
    let found: i64 = transaction
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |row| row.get(0),
        )
        .map_err(unavailable)?;
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    for (version, sql) in (1..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(found).unwrap_or(0))
    {
        transaction.execute_batch(sql).map_err(unavailable)?;
        // Stamped by the database's clock: when the schema changed is the database's fact.
        transaction
            .execute(
                "INSERT INTO schema_migrations (version, applied_at)
                 VALUES (?1, CAST(unixepoch('subsec') * 1000 AS INTEGER))",
                params![version],
            )
            .map_err(unavailable)?;
    }
    transaction.commit().map_err(unavailable)
}

impl Store for SqliteStore {
    async fn add_device(&self, device: Device, at: Timestamp) -> Result<(), StoreError> {
        self.with(move |connection| {
            let inserted = connection.execute(
                "INSERT INTO devices (id, site, public_key, added_at, revoked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    device.id.as_str(),
                    device.site.as_str(),
                    device.key.as_bytes().as_slice(),
                    at.unix_ms(),
                    device.revoked_at.map(Timestamp::unix_ms),
                ],
            );
            match inserted {
                Ok(_) => Ok(()),
                Err(error) if is_constraint_violation(&error) => Err(StoreError::AlreadyExists {
                    what: "device",
                    id: device.id.to_string(),
                }),
                Err(error) => Err(unavailable(error)),
            }
        })
        .await
    }

    async fn revoke_device(&self, device: &DeviceId, at: Timestamp) -> Result<(), StoreError> {
        let device = device.clone();
        self.with(move |connection| {
            let changed = connection
                .execute(
                    "UPDATE devices SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
                    params![device.as_str(), at.unix_ms()],
                )
                .map_err(unavailable)?;
            if changed == 0 {
                return Err(StoreError::NotFound {
                    what: "device",
                    id: device.to_string(),
                });
            }
            Ok(())
        })
        .await
    }

    async fn device(&self, device: &DeviceId) -> Result<Option<Device>, StoreError> {
        let device = device.clone();
        self.with(move |connection| {
            let row = connection
                .query_row(
                    "SELECT site, public_key, revoked_at FROM devices WHERE id = ?1",
                    params![device.as_str()],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, Vec<u8>>(1)?,
                            row.get::<_, Option<i64>>(2)?,
                        ))
                    },
                )
                .optional()
                .map_err(unavailable)?;
            let Some((site, key, revoked_at)) = row else {
                return Ok(None);
            };
            Ok(Some(Device {
                id: device,
                site: SiteId::parse(&site).map_err(|error| corrupt("site", error))?,
                key: PublicKey::from_bytes(&key).map_err(|error| corrupt("public key", error))?,
                revoked_at: revoked_at.map(parse_timestamp).transpose()?,
            }))
        })
        .await
    }

    async fn remember_nonce(
        &self,
        device: &DeviceId,
        nonce: &str,
        request_at: Timestamp,
        now: Timestamp,
    ) -> Result<NonceOutcome, StoreError> {
        let device = device.clone();
        let nonce = nonce.to_owned();
        self.with(move |connection| {
            let transaction = connection.transaction().map_err(unavailable)?;
            transaction
                .execute(
                    "DELETE FROM nonces WHERE device = ?1 AND request_at < ?2",
                    params![device.as_str(), super::nonce_forget_before(now)],
                )
                .map_err(unavailable)?;
            let inserted = transaction
                .execute(
                    "INSERT INTO nonces (device, nonce, request_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT DO NOTHING",
                    params![device.as_str(), nonce, request_at.unix_ms()],
                )
                .map_err(unavailable)?;
            transaction.commit().map_err(unavailable)?;
            Ok(if inserted == 1 {
                NonceOutcome::Fresh
            } else {
                NonceOutcome::Replayed
            })
        })
        .await
    }

    async fn add_account(
        &self,
        account: &AccountId,
        overdraft_floor: Cents,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let account = account.clone();
        self.with(move |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let version = bump_version(&transaction)?;
            let inserted = transaction.execute(
                "INSERT INTO accounts (id, balance, overdraft_floor, created_at, version)
                 VALUES (?1, 0, ?2, ?3, ?4)",
                params![
                    account.as_str(),
                    overdraft_floor.get(),
                    at.unix_ms(),
                    version
                ],
            );
            match inserted {
                Ok(_) => transaction.commit().map_err(unavailable),
                Err(error) if is_constraint_violation(&error) => Err(StoreError::AlreadyExists {
                    what: "account",
                    id: account.to_string(),
                }),
                Err(error) => Err(unavailable(error)),
            }
        })
        .await
    }

    async fn set_overdraft_floor(
        &self,
        account: &AccountId,
        overdraft_floor: Cents,
    ) -> Result<SnapshotVersion, StoreError> {
        let account = account.clone();
        self.write(move |transaction, version| {
            let changed = transaction
                .execute(
                    "UPDATE accounts SET overdraft_floor = ?2, version = ?3 WHERE id = ?1",
                    params![account.as_str(), overdraft_floor.get(), version],
                )
                .map_err(unavailable)?;
            if changed == 0 {
                return Err(StoreError::NotFound {
                    what: "account",
                    id: account.to_string(),
                });
            }
            Ok(())
        })
        .await
    }

    async fn balance(&self, account: &AccountId) -> Result<Option<Cents>, StoreError> {
        let account = account.clone();
        self.with(move |connection| {
            let balance: Option<i64> = connection
                .query_row(
                    "SELECT balance FROM accounts WHERE id = ?1",
                    params![account.as_str()],
                    |row| row.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            Ok(balance.map(Cents::new))
        })
        .await
    }

    async fn ingest(
        &self,
        device: &Device,
        batch: Vec<SignedRecord>,
        received_at: Timestamp,
    ) -> Result<IngestOutcome, StoreError> {
        // Checked before the write lock: the database waits only for the writes.
        let batch = super::check_batch(device.key, batch).await?;
        let device = device.clone();
        self.with(move |connection| ingest_in(connection, &device, &batch, received_at))
            .await
    }

    async fn record_kiosk_report(
        &self,
        device: &DeviceId,
        report: &KioskReport,
        received_at: Timestamp,
    ) -> Result<(), StoreError> {
        let device = device.clone();
        let report = serde_json::to_string(report).map_err(|error| corrupt("report", error))?;
        self.with(move |connection| {
            connection
                .execute(
                    "INSERT INTO kiosks (device, last_seen, report) VALUES (?1, ?2, ?3)
                     ON CONFLICT (device) DO UPDATE SET last_seen = ?2, report = ?3",
                    params![device.as_str(), received_at.unix_ms(), report],
                )
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn kiosk_statuses(&self) -> Result<Vec<KioskStatus>, StoreError> {
        self.with(|connection| {
            let mut statement = connection
                .prepare("SELECT device, last_seen, report FROM kiosks ORDER BY device")
                .map_err(unavailable)?;
            let rows = statement
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                })
                .map_err(unavailable)?;
            let mut statuses = Vec::new();
            for row in rows {
                let (device, last_seen, report) = row.map_err(unavailable)?;
                statuses.push(super::kiosk_status(&device, last_seen, &report)?);
            }
            Ok(statuses)
        })
        .await
    }

    async fn records(&self, device: &DeviceId) -> Result<Vec<StoredRecord>, StoreError> {
        let device = device.clone();
        self.with(move |connection| {
            let mut statement = connection
                .prepare(
                    "SELECT seq, payload, signature, kiosk_at, received_at FROM records
                     WHERE device = ?1 ORDER BY seq",
                )
                .map_err(unavailable)?;
            let rows = statement
                .query_map(params![device.as_str()], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, i64>(4)?,
                    ))
                })
                .map_err(unavailable)?;
            let mut records = Vec::new();
            for row in rows {
                let (seq, payload, signature, kiosk_at, received_at) = row.map_err(unavailable)?;
                records.push(StoredRecord {
                    seq: parse_seq(seq)?,
                    record: SignedRecord { payload, signature },
                    kiosk_at: parse_timestamp(kiosk_at)?,
                    received_at: parse_timestamp(received_at)?,
                });
            }
            Ok(records)
        })
        .await
    }

    async fn anomalies(&self) -> Result<Vec<Anomaly>, StoreError> {
        self.with(|connection| {
            let mut anomalies = Vec::new();
            let mut statement = connection
                .prepare(
                    "SELECT device, seq, reason, detail, payload, signature FROM anomalies
                     ORDER BY id",
                )
                .map_err(unavailable)?;
            let rows = statement
                .query_map([], |row| {
                    Ok(super::AnomalyRow {
                        device: row.get(0)?,
                        seq: row.get(1)?,
                        reason: row.get(2)?,
                        detail: row.get(3)?,
                        payload: row.get(4)?,
                        signature: row.get(5)?,
                    })
                })
                .map_err(unavailable)?;
            for row in rows {
                anomalies.push(row.map_err(unavailable)?.parse()?);
            }
            let mut statement = connection
                .prepare(
                    "SELECT held_records.device, MIN(held_records.seq),
                            (SELECT MAX(seq) FROM records WHERE records.device = held_records.device)
                     FROM held_records GROUP BY held_records.device ORDER BY held_records.device",
                )
                .map_err(unavailable)?;
            let rows = statement
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, Option<i64>>(2)?,
                    ))
                })
                .map_err(unavailable)?;
            for row in rows {
                let (device, first_held, last_stored) = row.map_err(unavailable)?;
                anomalies.push(super::gap_anomaly(&device, first_held, last_stored)?);
            }
            Ok(anomalies)
        })
        .await
    }

    async fn balance_mismatches(&self) -> Result<Vec<BalanceMismatch>, StoreError> {
        self.with(|connection| {
            let mut statement = connection
                .prepare(
                    "SELECT id, balance, total FROM (
                        SELECT id, balance,
                            (SELECT COALESCE(SUM(amount), 0) FROM movements
                             WHERE movements.account = accounts.id)
                            + (SELECT COALESCE(SUM(amount), 0) FROM operations
                               WHERE operations.account = accounts.id) AS total
                        FROM accounts)
                     WHERE balance != total",
                )
                .map_err(unavailable)?;
            let rows = statement
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                })
                .map_err(unavailable)?;
            let mut mismatches = Vec::new();
            for row in rows {
                let (account, balance, movements_sum) = row.map_err(unavailable)?;
                mismatches.push(BalanceMismatch {
                    account: AccountId::parse(&account)
                        .map_err(|error| corrupt("account", error))?,
                    balance: Cents::new(balance),
                    movements_sum: Cents::new(movements_sum),
                });
            }
            Ok(mismatches)
        })
        .await
    }

    async fn save_pupil(
        &self,
        site: &SiteId,
        pupil: &Pupil,
    ) -> Result<SnapshotVersion, StoreError> {
        let site = site.clone();
        let pupil = pupil.clone();
        let data = snapshot::to_json(&pupil)?;
        self.write(move |transaction, version| {
            // The account joins the site's snapshots with its first pupil there.
            let account_found = transaction
                .execute(
                    "UPDATE accounts SET version = ?2 WHERE id = ?1",
                    params![pupil.account.as_str(), version],
                )
                .map_err(unavailable)?;
            if account_found == 0 {
                return Err(StoreError::NotFound {
                    what: "account",
                    id: pupil.account.to_string(),
                });
            }
            transaction
                .execute(
                    "INSERT INTO pupils (id, site, account, data, version)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (id) DO UPDATE SET
                        site = ?2, account = ?3, data = ?4, version = ?5",
                    params![
                        pupil.id.as_str(),
                        site.as_str(),
                        pupil.account.as_str(),
                        data,
                        version
                    ],
                )
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn save_staff(
        &self,
        site: &SiteId,
        staff: &StaffCredential,
    ) -> Result<SnapshotVersion, StoreError> {
        let site = site.clone();
        let id = staff.id.clone();
        let data = snapshot::to_json(staff)?;
        self.write(move |transaction, version| {
            transaction
                .execute(
                    "INSERT INTO staff (id, site, data, version) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (id) DO UPDATE SET site = ?2, data = ?3, version = ?4",
                    params![id.as_str(), site.as_str(), data, version],
                )
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn assign_card(&self, card: &Card) -> Result<SnapshotVersion, StoreError> {
        let card = card.clone();
        self.write(move |transaction, version| {
            let (kind, holder) = super::holder_columns(&card.holder);
            let table = if kind == "pupil" { "pupils" } else { "staff" };
            let site: Option<String> = transaction
                .query_row(
                    &format!("SELECT site FROM {table} WHERE id = ?1"),
                    params![holder],
                    |row| row.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            let Some(site) = site else {
                return Err(StoreError::NotFound {
                    what: kind,
                    id: holder.to_owned(),
                });
            };
            let inserted = transaction.execute(
                "INSERT INTO cards (uid, site, holder_kind, holder, blocked, version)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5)",
                params![card.uid.as_bytes(), site, kind, holder, version],
            );
            match inserted {
                Ok(_) => Ok(()),
                Err(error) if is_constraint_violation(&error) => Err(StoreError::AlreadyExists {
                    what: "card",
                    id: card.uid.to_string(),
                }),
                Err(error) => Err(unavailable(error)),
            }
        })
        .await
    }

    async fn block_card(&self, uid: &CardUid) -> Result<SnapshotVersion, StoreError> {
        let uid = *uid;
        self.write(move |transaction, version| {
            let changed = transaction
                .execute(
                    "UPDATE cards SET blocked = 1, version = ?2 WHERE uid = ?1",
                    params![uid.as_bytes(), version],
                )
                .map_err(unavailable)?;
            if changed == 0 {
                return Err(StoreError::NotFound {
                    what: "card",
                    id: uid.to_string(),
                });
            }
            Ok(())
        })
        .await
    }

    async fn save_tariff(
        &self,
        site: &SiteId,
        tariff: &Tariff,
    ) -> Result<SnapshotVersion, StoreError> {
        let site = site.clone();
        let tariff = tariff.clone();
        self.write(move |transaction, version| {
            transaction
                .execute(
                    "INSERT INTO tariffs (site, bracket, meal_type, price, version)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (site, bracket, meal_type) DO UPDATE SET
                        price = ?4, version = ?5",
                    params![
                        site.as_str(),
                        tariff.bracket.as_str(),
                        tariff.meal_type.as_str(),
                        tariff.price.get(),
                        version
                    ],
                )
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn save_service(
        &self,
        site: &SiteId,
        service: &Service,
    ) -> Result<SnapshotVersion, StoreError> {
        let site = site.clone();
        let id = service.id.clone();
        let data = snapshot::to_json(service)?;
        self.write(move |transaction, version| {
            transaction
                .execute(
                    "INSERT INTO services (site, id, data, version) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (site, id) DO UPDATE SET data = ?3, version = ?4",
                    params![site.as_str(), id.as_str(), data, version],
                )
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn save_kiosk_settings(
        &self,
        site: &SiteId,
        settings: &KioskSettings,
    ) -> Result<SnapshotVersion, StoreError> {
        let site = site.clone();
        let data = snapshot::to_json(settings)?;
        self.write(move |transaction, version| {
            transaction
                .execute(
                    "INSERT INTO kiosk_settings (site, data, version) VALUES (?1, ?2, ?3)
                     ON CONFLICT (site) DO UPDATE SET data = ?2, version = ?3",
                    params![site.as_str(), data, version],
                )
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn snapshot(
        &self,
        site: &SiteId,
        device: Option<&DeviceId>,
        since: Option<SnapshotVersion>,
    ) -> Result<Snapshot, StoreError> {
        let site = site.clone();
        let device = device.cloned();
        self.with(move |connection| {
            // One read transaction: every row from the same state of the database.
            let transaction = connection.transaction().map_err(unavailable)?;
            let version: i64 = transaction
                .query_row(
                    "SELECT version FROM snapshot_version WHERE id = 1",
                    [],
                    |row| row.get(0),
                )
                .map_err(unavailable)?;
            let since = since.filter(|since| i64::try_from(since.0).is_ok_and(|v| v <= version));
            let rows = snapshot_rows(&transaction, &site, version, since)?;
            let records_through = match &device {
                Some(device) => transaction
                    .query_row(
                        "SELECT MAX(seq) FROM records WHERE device = ?1",
                        [device.as_str()],
                        |row| row.get::<_, Option<i64>>(0),
                    )
                    .map_err(unavailable)?
                    .map(parse_seq)
                    .transpose()?,
                None => None,
            };
            transaction.commit().map_err(unavailable)?;
            snapshot::build(&site, since, rows, records_through)
        })
        .await
    }

    async fn add_user(&self, user: &User, at: Timestamp) -> Result<(), StoreError> {
        let user = user.clone();
        self.with(move |connection| {
            let inserted = connection.execute(
                "INSERT INTO users (name, role, site, password_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    user.name,
                    user.role.as_str(),
                    user.site.as_ref().map(SiteId::as_str),
                    user.password_hash,
                    at.unix_ms()
                ],
            );
            match inserted {
                Ok(_) => Ok(()),
                Err(error) if is_constraint_violation(&error) => Err(StoreError::AlreadyExists {
                    what: "user",
                    id: user.name.clone(),
                }),
                Err(error) => Err(unavailable(error)),
            }
        })
        .await
    }

    async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        let name = name.to_owned();
        self.with(move |connection| {
            let row = connection
                .query_row(
                    "SELECT role, site, password_hash FROM users WHERE name = ?1",
                    params![name],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, Option<String>>(1)?,
                            row.get::<_, String>(2)?,
                        ))
                    },
                )
                .optional()
                .map_err(unavailable)?;
            row.map(|(role, site, hash)| super::parse_user(name, &role, site, hash))
                .transpose()
        })
        .await
    }

    async fn account(&self, account: &AccountId) -> Result<Option<AccountState>, StoreError> {
        let account = account.clone();
        self.with(move |connection| {
            let row = connection
                .query_row(
                    "SELECT balance, overdraft_floor FROM accounts WHERE id = ?1",
                    params![account.as_str()],
                    |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
                )
                .optional()
                .map_err(unavailable)?;
            Ok(row.map(|(balance, floor)| AccountState {
                id: account,
                balance: Cents::new(balance),
                overdraft_floor: Cents::new(floor),
            }))
        })
        .await
    }

    async fn apply_operation(&self, operation: &Operation) -> Result<OperationOutcome, StoreError> {
        let operation = operation.clone();
        self.with(move |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let outcome = apply_operation_in(&transaction, &operation)?;
            transaction.commit().map_err(unavailable)?;
            Ok(outcome)
        })
        .await
    }

    async fn holder_site(&self, holder: &CardHolder) -> Result<Option<SiteId>, StoreError> {
        let (kind, id) = super::holder_columns(holder);
        let table = if kind == "pupil" { "pupils" } else { "staff" };
        let id = id.to_owned();
        self.with(move |connection| {
            let site: Option<String> = connection
                .query_row(
                    &format!("SELECT site FROM {table} WHERE id = ?1"),
                    params![id],
                    |row| row.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            site.map(|site| SiteId::parse(&site).map_err(|error| corrupt("site", error)))
                .transpose()
        })
        .await
    }

    async fn card(&self, uid: &CardUid) -> Result<Option<(CardHolder, bool)>, StoreError> {
        let uid = *uid;
        self.with(move |connection| {
            let row = connection
                .query_row(
                    "SELECT holder_kind, holder, blocked FROM cards WHERE uid = ?1",
                    params![uid.as_bytes()],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, i64>(2)?,
                        ))
                    },
                )
                .optional()
                .map_err(unavailable)?;
            row.map(|(kind, holder, blocked)| {
                Ok((super::parse_holder(&kind, &holder)?, blocked == 1))
            })
            .transpose()
        })
        .await
    }

    async fn replace_card(
        &self,
        old: &CardUid,
        new: &CardUid,
    ) -> Result<SnapshotVersion, StoreError> {
        let (old, new) = (*old, *new);
        self.write(move |transaction, version| {
            let row: Option<(String, String, String)> = transaction
                .query_row(
                    "SELECT site, holder_kind, holder FROM cards WHERE uid = ?1",
                    params![old.as_bytes()],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()
                .map_err(unavailable)?;
            let Some((site, kind, holder)) = row else {
                return Err(StoreError::NotFound {
                    what: "card",
                    id: old.to_string(),
                });
            };
            transaction
                .execute(
                    "UPDATE cards SET blocked = 1, version = ?2 WHERE uid = ?1",
                    params![old.as_bytes(), version],
                )
                .map_err(unavailable)?;
            let inserted = transaction.execute(
                "INSERT INTO cards (uid, site, holder_kind, holder, blocked, version)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5)",
                params![new.as_bytes(), site, kind, holder, version],
            );
            match inserted {
                Ok(_) => Ok(()),
                Err(error) if is_constraint_violation(&error) => Err(StoreError::AlreadyExists {
                    what: "card",
                    id: new.to_string(),
                }),
                Err(error) => Err(unavailable(error)),
            }
        })
        .await
    }

    async fn devices(&self) -> Result<Vec<DeviceEntry>, StoreError> {
        self.with(|connection| {
            let transaction = connection.transaction().map_err(unavailable)?;
            let rows = query_all(
                &transaction,
                "SELECT id, site, public_key, revoked_at, added_at FROM devices ORDER BY id",
                [],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, Vec<u8>>(2)?,
                        row.get::<_, Option<i64>>(3)?,
                        row.get::<_, i64>(4)?,
                    ))
                },
            )?;
            rows.into_iter()
                .map(|(id, site, key, revoked_at, added_at)| {
                    super::parse_device_entry(&id, &site, &key, revoked_at, added_at)
                })
                .collect()
        })
        .await
    }

    async fn services(&self) -> Result<Vec<(SiteId, Service)>, StoreError> {
        self.with(|connection| {
            let transaction = connection.transaction().map_err(unavailable)?;
            let rows = query_all(
                &transaction,
                "SELECT site, data FROM services ORDER BY site, id",
                [],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
            )?;
            rows.iter()
                .map(|(site, data)| super::parse_service(site, data))
                .collect()
        })
        .await
    }

    async fn overdraft_floors(&self) -> Result<Vec<(AccountId, Cents)>, StoreError> {
        self.with(|connection| {
            let transaction = connection.transaction().map_err(unavailable)?;
            let rows = query_all(
                &transaction,
                "SELECT id, overdraft_floor FROM accounts ORDER BY id",
                [],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)),
            )?;
            rows.into_iter()
                .map(|(id, floor)| {
                    Ok((
                        AccountId::parse(&id).map_err(|error| corrupt("account", error))?,
                        Cents::new(floor),
                    ))
                })
                .collect()
        })
        .await
    }

    async fn day_closes(&self, device: &DeviceId) -> Result<Vec<(Seq, ServiceDate)>, StoreError> {
        let device = device.clone();
        self.with(move |connection| {
            let transaction = connection.transaction().map_err(unavailable)?;
            let rows = query_all(
                &transaction,
                "SELECT seq, json_extract(payload, '$.service_date') FROM records
                 WHERE device = ?1 AND kind = 'day_close' ORDER BY seq",
                params![device.as_str()],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Option<String>>(1)?)),
            )?;
            rows.into_iter()
                .map(|(seq, date)| {
                    let date = date.ok_or_else(|| corrupt("day close", "no service_date"))?;
                    Ok((parse_seq(seq)?, super::parse_service_date(&date)?))
                })
                .collect()
        })
        .await
    }

    async fn record_range(
        &self,
        device: &DeviceId,
        from: Seq,
        to: Option<Seq>,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let device = device.clone();
        let from = seq_to_i64(from)?;
        let to = to.map_or(Ok(i64::MAX), seq_to_i64)?;
        self.with(move |connection| {
            let transaction = connection.transaction().map_err(unavailable)?;
            let rows = query_all(
                &transaction,
                "SELECT seq, payload, signature, kiosk_at, received_at FROM records
                 WHERE device = ?1 AND seq >= ?2 AND seq <= ?3 ORDER BY seq",
                params![device.as_str(), from, to],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, i64>(4)?,
                    ))
                },
            )?;
            rows.into_iter()
                .map(|(seq, payload, signature, kiosk_at, received_at)| {
                    Ok(StoredRecord {
                        seq: parse_seq(seq)?,
                        record: SignedRecord { payload, signature },
                        kiosk_at: parse_timestamp(kiosk_at)?,
                        received_at: parse_timestamp(received_at)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn ledger_totals(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<LedgerTotals, StoreError> {
        self.with(move |connection| {
            let transaction = connection.transaction().map_err(unavailable)?;
            let (balances_now, before, during, after): (i64, i64, i64, i64) = transaction
                .query_row(
                    "SELECT
                        (SELECT COALESCE(SUM(balance), 0) FROM accounts),
                        COALESCE(SUM(CASE WHEN at < ?1 THEN amount END), 0),
                        COALESCE(SUM(CASE WHEN at >= ?1 AND at < ?2 THEN amount END), 0),
                        COALESCE(SUM(CASE WHEN at >= ?2 THEN amount END), 0)
                     FROM (SELECT amount, at FROM movements
                           UNION ALL SELECT amount, at FROM operations)",
                    params![from.unix_ms(), to.unix_ms()],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                )
                .map_err(unavailable)?;
            Ok(LedgerTotals {
                balances_now: Cents::new(balances_now),
                before: Cents::new(before),
                during: Cents::new(during),
                after: Cents::new(after),
            })
        })
        .await
    }

    async fn operations_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<StoredOperation>, StoreError> {
        self.with(move |connection| {
            let transaction = connection.transaction().map_err(unavailable)?;
            let rows = query_all(
                &transaction,
                "SELECT id, kind, account, amount, detail, user_name, at FROM operations
                 WHERE at >= ?1 AND at < ?2 ORDER BY id",
                params![from.unix_ms(), to.unix_ms()],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, String>(5)?,
                        row.get::<_, i64>(6)?,
                    ))
                },
            )?;
            rows.into_iter()
                .map(|(id, kind, account, amount, detail, user, at)| {
                    super::parse_stored_operation(id, kind, &account, amount, detail, user, at)
                })
                .collect()
        })
        .await
    }

    async fn save_reconciliation(
        &self,
        saved: &SavedReconciliation,
        proposals: &[ProposedVoid],
    ) -> Result<(), StoreError> {
        let saved = saved.clone();
        let proposals = proposals.to_vec();
        self.with(move |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let scope = super::scope_column(saved.site.as_ref()).to_owned();
            let date = saved.date.to_string();
            let signed_off: Option<Option<i64>> = transaction
                .query_row(
                    "SELECT signed_off_at FROM reconciliations
                     WHERE service_date = ?1 AND site = ?2",
                    params![date, scope],
                    |row| row.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            if let Some(Some(_)) = signed_off {
                return Err(super::signed_off_refusal(saved.date, saved.site.as_ref()));
            }
            transaction
                .execute(
                    "INSERT INTO reconciliations (service_date, site, report, run_at, run_by)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (service_date, site) DO UPDATE SET
                        report = ?3, run_at = ?4, run_by = ?5",
                    params![
                        date,
                        scope,
                        saved.report,
                        saved.run_at.unix_ms(),
                        saved.run_by
                    ],
                )
                .map_err(unavailable)?;
            for proposal in &proposals {
                let (seq, kept_seq) = (seq_to_i64(proposal.seq)?, seq_to_i64(proposal.kept_seq)?);
                transaction
                    .prepare_cached(
                        "INSERT INTO proposed_voids (service_date, device, seq, kept_device,
                            kept_seq, account, pupil, service, amount, status)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending')
                         ON CONFLICT (device, seq) DO NOTHING",
                    )
                    .and_then(|mut statement| {
                        statement.execute(params![
                            proposal.date.to_string(),
                            proposal.device.as_str(),
                            seq,
                            proposal.kept_device.as_str(),
                            kept_seq,
                            proposal.account.as_str(),
                            proposal.pupil.as_str(),
                            proposal.service.as_str(),
                            proposal.amount.get(),
                        ])
                    })
                    .map_err(unavailable)?;
            }
            transaction.commit().map_err(unavailable)
        })
        .await
    }

    async fn reconciliation(
        &self,
        date: ServiceDate,
        site: Option<&SiteId>,
    ) -> Result<Option<SavedReconciliation>, StoreError> {
        let scope = super::scope_column(site).to_owned();
        self.with(move |connection| {
            let transaction = connection.transaction().map_err(unavailable)?;
            reconciliation_in(&transaction, date, &scope)
        })
        .await
    }

    async fn sign_off_reconciliation(
        &self,
        date: ServiceDate,
        site: Option<&SiteId>,
        user: &str,
        at: Timestamp,
    ) -> Result<SavedReconciliation, StoreError> {
        let site = site.cloned();
        let user = user.to_owned();
        self.with(move |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let scope = super::scope_column(site.as_ref()).to_owned();
            let Some(saved) = reconciliation_in(&transaction, date, &scope)? else {
                return Err(StoreError::NotFound {
                    what: "reconciliation",
                    id: format!("{date} {scope}"),
                });
            };
            if saved.signed_off_at.is_some() {
                return Err(super::signed_off_refusal(date, site.as_ref()));
            }
            let pending: i64 = transaction
                .query_row(
                    "SELECT COUNT(*) FROM proposed_voids
                     WHERE service_date = ?1 AND status = 'pending'",
                    params![date.to_string()],
                    |row| row.get(0),
                )
                .map_err(unavailable)?;
            if pending > 0 {
                return Err(StoreError::Refused(format!(
                    "{pending} proposed void(s) of {date} are still pending: approve or reject them first"
                )));
            }
            transaction
                .execute(
                    "UPDATE reconciliations SET signed_off_by = ?3, signed_off_at = ?4
                     WHERE service_date = ?1 AND site = ?2",
                    params![date.to_string(), scope, user, at.unix_ms()],
                )
                .map_err(unavailable)?;
            let signed = reconciliation_in(&transaction, date, &scope)?
                .ok_or_else(|| StoreError::Corrupt("signed-off reconciliation vanished".to_owned()))?;
            transaction.commit().map_err(unavailable)?;
            Ok(signed)
        })
        .await
    }

    async fn proposed_voids(
        &self,
        date: Option<ServiceDate>,
    ) -> Result<Vec<ProposedVoid>, StoreError> {
        self.with(move |connection| {
            let transaction = connection.transaction().map_err(unavailable)?;
            let sql = format!(
                "SELECT {} FROM proposed_voids WHERE ?1 IS NULL OR service_date = ?1 ORDER BY id",
                super::PROPOSED_VOID_COLUMNS
            );
            let rows = query_all(
                &transaction,
                &sql,
                params![date.map(|date| date.to_string())],
                proposed_void_row,
            )?;
            rows.into_iter().map(ProposedVoidRow::parse).collect()
        })
        .await
    }

    async fn decide_proposed_void(
        &self,
        id: i64,
        status: VoidStatus,
        user: &str,
        at: Timestamp,
        correction: Option<(&Operation, ServiceDate)>,
    ) -> Result<ProposedVoid, StoreError> {
        let user = user.to_owned();
        let correction = correction.map(|(operation, date)| (operation.clone(), date));
        self.with(move |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let sql = format!(
                "SELECT {} FROM proposed_voids WHERE id = ?1",
                super::PROPOSED_VOID_COLUMNS
            );
            let Some(row) = transaction
                .query_row(&sql, params![id], proposed_void_row)
                .optional()
                .map_err(unavailable)?
            else {
                return Err(StoreError::NotFound {
                    what: "proposed void",
                    id: id.to_string(),
                });
            };
            let proposal = row.parse()?;
            if proposal.status != VoidStatus::Pending {
                return Err(StoreError::Refused(format!(
                    "proposed void {id} was already {}",
                    proposal.status.as_str()
                )));
            }
            if let Some((operation, _)) = &correction {
                apply_operation_in(&transaction, operation)?;
            }
            transaction
                .execute(
                    "UPDATE proposed_voids SET status = ?2, decided_by = ?3, decided_at = ?4,
                        correction_date = ?5
                     WHERE id = ?1",
                    params![
                        id,
                        status.as_str(),
                        user,
                        at.unix_ms(),
                        correction.as_ref().map(|(_, date)| date.to_string())
                    ],
                )
                .map_err(unavailable)?;
            let decided = transaction
                .query_row(&sql, params![id], proposed_void_row)
                .map_err(unavailable)?
                .parse()?;
            transaction.commit().map_err(unavailable)?;
            Ok(decided)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.with(|connection| {
            connection
                .query_row("SELECT 1", [], |row| row.get::<_, i64>(0))
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn create_web_session(
        &self,
        session: &WebSession,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let session = session.clone();
        self.with(move |connection| {
            let transaction = connection.transaction().map_err(unavailable)?;
            transaction
                .execute(
                    "DELETE FROM web_sessions WHERE expires_at <= ?1",
                    params![now.unix_ms()],
                )
                .map_err(unavailable)?;
            transaction
                .execute(
                    "INSERT INTO web_sessions (token_hash, user_name, csrf, expires_at)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![
                        session.token_hash.as_bytes().as_slice(),
                        session.user,
                        session.csrf,
                        session.expires_at.unix_ms()
                    ],
                )
                .map_err(unavailable)?;
            transaction.commit().map_err(unavailable)
        })
        .await
    }

    async fn web_session(
        &self,
        token_hash: &Digest,
        now: Timestamp,
    ) -> Result<Option<(WebSession, User)>, StoreError> {
        let token_hash = *token_hash;
        self.with(move |connection| {
            let row = connection
                .prepare_cached(
                    "SELECT s.user_name, s.csrf, s.expires_at, u.role, u.site, u.password_hash
                     FROM web_sessions s JOIN users u ON u.name = s.user_name
                     WHERE s.token_hash = ?1 AND s.expires_at > ?2",
                )
                .and_then(|mut statement| {
                    statement
                        .query_row(
                            params![token_hash.as_bytes().as_slice(), now.unix_ms()],
                            |row| {
                                Ok((
                                    row.get::<_, String>(0)?,
                                    row.get::<_, String>(1)?,
                                    row.get::<_, i64>(2)?,
                                    row.get::<_, String>(3)?,
                                    row.get::<_, Option<String>>(4)?,
                                    row.get::<_, String>(5)?,
                                ))
                            },
                        )
                        .optional()
                })
                .map_err(unavailable)?;
            let Some((name, csrf, expires_at, role, site, hash)) = row else {
                return Ok(None);
            };
            let session = WebSession {
                token_hash,
                user: name.clone(),
                csrf,
                expires_at: parse_timestamp(expires_at)?,
            };
            Ok(Some((session, super::parse_user(name, &role, site, hash)?)))
        })
        .await
    }

    async fn end_web_session(&self, token_hash: &Digest) -> Result<(), StoreError> {
        let token_hash = *token_hash;
        self.with(move |connection| {
            connection
                .execute(
                    "DELETE FROM web_sessions WHERE token_hash = ?1",
                    params![token_hash.as_bytes().as_slice()],
                )
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn failed_sign_ins(&self, name: &str, since: Timestamp) -> Result<u32, StoreError> {
        let name = name.to_owned();
        self.with(move |connection| {
            let count: i64 = connection
                .query_row(
                    "SELECT COUNT(*) FROM sign_in_failures WHERE user_name = ?1 AND at >= ?2",
                    params![name, since.unix_ms()],
                    |row| row.get(0),
                )
                .map_err(unavailable)?;
            Ok(u32::try_from(count).unwrap_or(u32::MAX))
        })
        .await
    }

    async fn record_failed_sign_in(
        &self,
        name: &str,
        at: Timestamp,
        forget_before: Timestamp,
    ) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.with(move |connection| {
            let transaction = connection.transaction().map_err(unavailable)?;
            transaction
                .execute(
                    "DELETE FROM sign_in_failures WHERE at < ?1",
                    params![forget_before.unix_ms()],
                )
                .map_err(unavailable)?;
            transaction
                .execute(
                    "INSERT INTO sign_in_failures (user_name, at) VALUES (?1, ?2)",
                    params![name, at.unix_ms()],
                )
                .map_err(unavailable)?;
            transaction.commit().map_err(unavailable)
        })
        .await
    }

    async fn clear_failed_sign_ins(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.with(move |connection| {
            connection
                .execute(
                    "DELETE FROM sign_in_failures WHERE user_name = ?1",
                    params![name],
                )
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.with(|connection| {
            let transaction = connection.transaction().map_err(unavailable)?;
            let rows = query_all(
                &transaction,
                "SELECT name, role, site, password_hash FROM users ORDER BY name",
                [],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, Option<String>>(2)?,
                        row.get::<_, String>(3)?,
                    ))
                },
            )?;
            rows.into_iter()
                .map(|(name, role, site, hash)| super::parse_user(name, &role, site, hash))
                .collect()
        })
        .await
    }

    async fn update_user(&self, user: &User) -> Result<(), StoreError> {
        let user = user.clone();
        self.with(move |connection| {
            let changed = connection
                .execute(
                    "UPDATE users SET role = ?2, site = ?3, password_hash = ?4 WHERE name = ?1",
                    params![
                        user.name,
                        user.role.as_str(),
                        user.site.as_ref().map(SiteId::as_str),
                        user.password_hash
                    ],
                )
                .map_err(unavailable)?;
            if changed == 0 {
                return Err(StoreError::NotFound {
                    what: "user",
                    id: user.name,
                });
            }
            Ok(())
        })
        .await
    }

    async fn sites(&self) -> Result<Vec<SiteId>, StoreError> {
        self.with(|connection| {
            let transaction = connection.transaction().map_err(unavailable)?;
            let rows: Vec<String> = query_all(
                &transaction,
                "SELECT site FROM devices UNION SELECT site FROM pupils
                 UNION SELECT site FROM tariffs UNION SELECT site FROM services ORDER BY 1",
                [],
                |row| row.get(0),
            )?;
            rows.iter().map(|site| web::parse_site(site)).collect()
        })
        .await
    }

    async fn site_setup(&self, site: &SiteId) -> Result<(Vec<Tariff>, Vec<Service>), StoreError> {
        let site = site.clone();
        self.with(move |connection| {
            let transaction = connection.transaction().map_err(unavailable)?;
            let tariffs: Vec<(String, String, i64)> = query_all(
                &transaction,
                "SELECT bracket, meal_type, price FROM tariffs WHERE site = ?1
                 ORDER BY bracket, meal_type",
                params![site.as_str()],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )?;
            let services: Vec<String> = query_all(
                &transaction,
                "SELECT data FROM services WHERE site = ?1 ORDER BY id",
                params![site.as_str()],
                |row| row.get(0),
            )?;
            let tariffs = tariffs
                .iter()
                .map(|(bracket, meal_type, price)| web::tariff(bracket, meal_type, *price))
                .collect::<Result<_, _>>()?;
            let services = services
                .iter()
                .map(|data| web::service(data))
                .collect::<Result<_, _>>()?;
            Ok((tariffs, services))
        })
        .await
    }

    async fn search_pupils(
        &self,
        text: &str,
        site: Option<&SiteId>,
        limit: usize,
    ) -> Result<Vec<PupilEntry>, StoreError> {
        let text = text.trim().to_owned();
        let site = site.map(|site| site.as_str().to_owned());
        self.with(move |connection| {
            let transaction = connection.transaction().map_err(unavailable)?;
            let rows: Vec<(String, String, String)> = query_all(
                &transaction,
                "SELECT id, site, data FROM pupils
                 WHERE (?1 IS NULL OR site = ?1)
                   AND (id = ?2 OR account = ?2
                        OR lower(json_extract(data, '$.first_name') || ' '
                                 || json_extract(data, '$.last_name')) LIKE ?3 ESCAPE '\\'
                        OR lower(json_extract(data, '$.last_name') || ' '
                                 || json_extract(data, '$.first_name')) LIKE ?3 ESCAPE '\\')
                 ORDER BY json_extract(data, '$.last_name'), json_extract(data, '$.first_name'), id
                 LIMIT ?4",
                params![site, text, web::contains_pattern(&text), web::limit(limit)],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )?;
            pupil_entries(&transaction, rows)
        })
        .await
    }

    async fn account_pupils(&self, account: &AccountId) -> Result<Vec<PupilEntry>, StoreError> {
        let account = account.clone();
        self.with(move |connection| {
            let transaction = connection.transaction().map_err(unavailable)?;
            let rows: Vec<(String, String, String)> = query_all(
                &transaction,
                "SELECT id, site, data FROM pupils WHERE account = ?1 ORDER BY id",
                params![account.as_str()],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )?;
            pupil_entries(&transaction, rows)
        })
        .await
    }

    async fn account_history(
        &self,
        account: &AccountId,
        limit: usize,
    ) -> Result<Vec<AccountLine>, StoreError> {
        let account = account.clone();
        self.with(move |connection| {
            let transaction = connection.transaction().map_err(unavailable)?;
            let rows: Vec<(i64, i64, String, String)> = query_all(
                &transaction,
                "SELECT at, amount, kind, detail FROM (
                    SELECT * FROM (
                        SELECT m.at AS at, m.amount AS amount,
                               CASE WHEN m.reverses_seq IS NULL THEN r.kind ELSE 'void' END
                                   AS kind,
                               m.device AS detail
                        FROM movements m JOIN records r ON r.device = m.device AND r.seq = m.seq
                        WHERE m.account = ?1 ORDER BY m.at DESC LIMIT ?2)
                    UNION ALL
                    SELECT * FROM (
                        SELECT at, amount, kind, user_name || ': ' || detail
                        FROM operations WHERE account = ?1 ORDER BY at DESC LIMIT ?2))
                 ORDER BY at DESC LIMIT ?2",
                params![account.as_str(), web::limit(limit)],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )?;
            rows.into_iter()
                .map(|(at, amount, kind, detail)| {
                    Ok(AccountLine {
                        at: parse_timestamp(at)?,
                        amount: Cents::new(amount),
                        kind,
                        detail,
                    })
                })
                .collect()
        })
        .await
    }

    async fn site_meals(
        &self,
        site: &SiteId,
        date: ServiceDate,
        limit: usize,
    ) -> Result<Vec<ServedMeal>, StoreError> {
        let site = site.clone();
        self.with(move |connection| {
            let transaction = connection.transaction().map_err(unavailable)?;
            let rows = query_all(
                &transaction,
                "SELECT device, seq, kiosk_at, service, meal_type, account, pupil, via_card,
                        via_staff, price
                 FROM meals WHERE site = ?1 AND service_date = ?2
                 ORDER BY kiosk_at, device, seq LIMIT ?3",
                params![site.as_str(), date.to_string(), web::limit(limit)],
                |row| {
                    Ok(web::MealRow {
                        device: row.get(0)?,
                        seq: row.get(1)?,
                        kiosk_at: row.get(2)?,
                        service: row.get(3)?,
                        meal_type: row.get(4)?,
                        account: row.get(5)?,
                        pupil: row.get(6)?,
                        via_card: row.get(7)?,
                        via_staff: row.get(8)?,
                        price: row.get(9)?,
                    })
                },
            )?;
            rows.into_iter().map(web::served_meal).collect()
        })
        .await
    }

    async fn meal_days(
        &self,
        from: ServiceDate,
        to: ServiceDate,
    ) -> Result<Vec<MealDay>, StoreError> {
        self.with(move |connection| {
            let transaction = connection.transaction().map_err(unavailable)?;
            let rows: Vec<(String, String, i64, i64)> = query_all(
                &transaction,
                "SELECT site, service_date, meals, revenue FROM meal_days
                 WHERE service_date >= ?1 AND service_date <= ?2
                 ORDER BY service_date, site",
                params![from.to_string(), to.to_string()],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )?;
            rows.iter()
                .map(|(site, date, meals, revenue)| web::meal_day(site, date, *meals, *revenue))
                .collect()
        })
        .await
    }
}

fn reconciliation_in(
    transaction: &rusqlite::Transaction<'_>,
    date: ServiceDate,
    scope: &str,
) -> Result<Option<SavedReconciliation>, StoreError> {
    transaction
        .query_row(
            "SELECT service_date, site, report, run_at, run_by, signed_off_by, signed_off_at
             FROM reconciliations WHERE service_date = ?1 AND site = ?2",
            params![date.to_string(), scope],
            |row| {
                Ok(ReconciliationRow {
                    date: row.get(0)?,
                    site: row.get(1)?,
                    report: row.get(2)?,
                    run_at: row.get(3)?,
                    run_by: row.get(4)?,
                    signed_off_by: row.get(5)?,
                    signed_off_at: row.get(6)?,
                })
            },
        )
        .optional()
        .map_err(unavailable)?
        .map(ReconciliationRow::parse)
        .transpose()
}

fn proposed_void_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ProposedVoidRow> {
    Ok(ProposedVoidRow {
        id: row.get(0)?,
        date: row.get(1)?,
        device: row.get(2)?,
        seq: row.get(3)?,
        kept_device: row.get(4)?,
        kept_seq: row.get(5)?,
        account: row.get(6)?,
        pupil: row.get(7)?,
        service: row.get(8)?,
        amount: row.get(9)?,
        status: row.get(10)?,
        decided_by: row.get(11)?,
        decided_at: row.get(12)?,
        correction_date: row.get(13)?,
    })
}

/// Moves money by a back-office operation inside `transaction` (the write lock is held).
fn apply_operation_in(
    transaction: &rusqlite::Transaction<'_>,
    operation: &Operation,
) -> Result<OperationOutcome, StoreError> {
    let account = operation.account.as_str();
    let balance: Option<i64> = transaction
        .query_row(
            "SELECT balance FROM accounts WHERE id = ?1",
            params![account],
            |row| row.get(0),
        )
        .optional()
        .map_err(unavailable)?;
    let Some(balance) = balance else {
        return Err(StoreError::NotFound {
            what: "account",
            id: account.to_owned(),
        });
    };
    if let Some(reference) = operation.kind.payment_reference() {
        let earlier: Option<(String, i64)> = transaction
            .query_row(
                "SELECT account, amount FROM operations WHERE payment_reference = ?1",
                params![reference],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(unavailable)?;
        if let Some((earlier_account, earlier_amount)) = earlier {
            super::same_payment(&earlier_account, earlier_amount, operation)?;
            let version: i64 = transaction
                .query_row("SELECT version FROM snapshot_version", [], |row| row.get(0))
                .map_err(unavailable)?;
            return Ok(OperationOutcome {
                balance: Cents::new(balance),
                version: super::snapshot_version(version)?,
                replayed: true,
            });
        }
    }
    let new_balance = super::checked_balance(balance, operation.amount)?;
    let version = bump_version(transaction)?;
    transaction
        .execute(
            "UPDATE accounts SET balance = ?2, version = ?3 WHERE id = ?1",
            params![account, new_balance, version],
        )
        .map_err(unavailable)?;
    transaction
        .execute(
            "INSERT INTO operations
             (kind, account, amount, detail, payment_reference, user_name, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                operation.kind.as_str(),
                account,
                operation.amount.get(),
                operation.kind.detail(),
                operation.kind.payment_reference(),
                operation.user,
                operation.at.unix_ms()
            ],
        )
        .map_err(unavailable)?;
    Ok(OperationOutcome {
        balance: Cents::new(new_balance),
        version: super::snapshot_version(version)?,
        replayed: false,
    })
}

fn ingest_in(
    connection: &mut Connection,
    device: &Device,
    batch: &[CheckedRecord],
    received_at: Timestamp,
) -> Result<IngestOutcome, StoreError> {
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    let id = device.id.as_str();
    let last: Option<(i64, Vec<u8>)> = transaction
        .query_row(
            "SELECT seq, hash FROM records WHERE device = ?1 ORDER BY seq DESC LIMIT 1",
            params![id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(unavailable)?;
    let head = match last {
        None => ChainHead::GENESIS,
        Some((seq, hash)) => ChainHead {
            next_seq: parse_seq(seq)?.next(),
            prev: super::parse_digest(&hash)?,
        },
    };
    let held = {
        let mut statement = transaction
            .prepare_cached(
                "SELECT payload, signature FROM held_records WHERE device = ?1 ORDER BY seq",
            )
            .map_err(unavailable)?;
        let rows = statement
            .query_map(params![id], |row| {
                Ok(SignedRecord {
                    payload: row.get(0)?,
                    signature: row.get(1)?,
                })
            })
            .map_err(unavailable)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)?
    };
    let mut stored_below_head = std::collections::BTreeMap::new();
    for seq in ingest::claimed_seqs_below_head(&head, batch) {
        let record = transaction
            .query_row(
                "SELECT payload, signature FROM records WHERE device = ?1 AND seq = ?2",
                params![id, seq_to_i64(seq)?],
                |row| {
                    Ok(SignedRecord {
                        payload: row.get(0)?,
                        signature: row.get(1)?,
                    })
                },
            )
            .map_err(unavailable)?;
        stored_below_head.insert(seq, record);
    }
    let stored = StoredChain {
        head,
        held,
        stored_below_head,
    };
    let plan = ingest::plan(&device.id, &device.key, &stored, batch);

    for record in &plan.append {
        let seq = seq_to_i64(record.seq())?;
        let signed = record.signed();
        transaction
            .prepare_cached(
                "INSERT INTO records
                 (device, seq, hash, kind, payload, signature, kiosk_at, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    id,
                    seq,
                    record.hash().as_bytes().as_slice(),
                    record.payload().body.kind().as_str(),
                    signed.payload,
                    signed.signature,
                    record.payload().at.unix_ms(),
                    received_at.unix_ms(),
                ])
            })
            .map_err(unavailable)?;
    }
    let before = ledger_before(&transaction, id, &plan.append)?;
    let after = ingest::apply_effects(&plan.append, before);
    // Balances a kiosk sees changed: they belong to a new snapshot version. Records that moved
    // no money change nothing a kiosk sees, and take none.
    let version = if after.balances.is_empty() {
        0
    } else {
        bump_version(&transaction)?
    };
    write_ledger(&transaction, id, &after, version, received_at)?;
    add_meal_days(&transaction, device, &plan.append, &after)?;
    for (seq, reason, detail) in &after.anomalies {
        let record = plan
            .append
            .iter()
            .find(|record| record.seq() == *seq)
            .map(proto::Record::signed)
            .ok_or_else(|| StoreError::Corrupt(format!("no record at seq {seq}")))?;
        insert_anomaly(
            &transaction,
            id,
            Some(seq_to_i64(*seq)?),
            *reason,
            detail,
            record,
            received_at,
        )?;
    }
    if !stored.held.is_empty() {
        transaction
            .execute("DELETE FROM held_records WHERE device = ?1", params![id])
            .map_err(unavailable)?;
    }
    for record in &plan.hold {
        let seq = seq_to_i64(record.seq())?;
        transaction
            .prepare_cached(
                "INSERT INTO held_records (device, seq, payload, signature, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    id,
                    seq,
                    record.signed().payload,
                    record.signed().signature,
                    received_at.unix_ms(),
                ])
            })
            .map_err(unavailable)?;
    }
    for quarantined in &plan.quarantine {
        insert_anomaly(
            &transaction,
            id,
            quarantined.seq.map(seq_to_i64).transpose()?,
            quarantined.reason,
            &quarantined.detail,
            &quarantined.record,
            received_at,
        )?;
    }
    transaction.commit().map_err(unavailable)?;
    Ok(super::outcome(&plan))
}

/// Reads what the batch's effects touch (the write lock is already held).
fn ledger_before(
    transaction: &rusqlite::Transaction<'_>,
    device: &str,
    append: &[proto::Record],
) -> Result<LedgerBefore, StoreError> {
    let (mut accounts, voided) = ingest::ledger_needs(append);
    let mut before = LedgerBefore::default();
    for seq in voided {
        let voided = seq_to_i64(seq)?;
        let hash: Option<Vec<u8>> = transaction
            .query_row(
                "SELECT hash FROM records WHERE device = ?1 AND seq = ?2",
                params![device, voided],
                |row| row.get(0),
            )
            .optional()
            .map_err(unavailable)?;
        if let Some(hash) = hash {
            before
                .voided_hashes
                .insert(seq, super::parse_digest(&hash)?);
        }
        let movements = query_all(
            transaction,
            "SELECT account, amount FROM movements WHERE device = ?1 AND seq = ?2",
            params![device, voided],
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)),
        )?;
        for (account, amount) in movements {
            let account = AccountId::parse(&account).map_err(|error| corrupt("account", error))?;
            accounts.insert(account.clone());
            before
                .voided_movements
                .entry(seq)
                .or_default()
                .push((account, Cents::new(amount)));
        }
        let reversed: i64 = transaction
            .query_row(
                "SELECT COUNT(*) FROM movements WHERE device = ?1 AND reverses_seq = ?2",
                params![device, voided],
                |row| row.get(0),
            )
            .map_err(unavailable)?;
        if reversed > 0 {
            before.already_reversed.insert(seq);
        }
    }
    for account in accounts {
        let balance: Option<i64> = transaction
            .prepare_cached("SELECT balance FROM accounts WHERE id = ?1")
            .and_then(|mut statement| {
                statement
                    .query_row(params![account.as_str()], |row| row.get(0))
                    .optional()
            })
            .map_err(unavailable)?;
        if let Some(balance) = balance {
            before.balances.insert(account, balance);
        }
    }
    Ok(before)
}

/// Writes a batch's movements and the new balances.
fn write_ledger(
    transaction: &rusqlite::Transaction<'_>,
    device: &str,
    after: &LedgerAfter,
    version: i64,
    at: Timestamp,
) -> Result<(), StoreError> {
    for movement in &after.movements {
        let seq = seq_to_i64(movement.seq)?;
        let reverses = movement.reverses.map(seq_to_i64).transpose()?;
        transaction
            .prepare_cached(
                "INSERT INTO movements (account, amount, device, seq, reverses_seq, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    movement.account.as_str(),
                    movement.amount.get(),
                    device,
                    seq,
                    reverses,
                    at.unix_ms()
                ])
            })
            .map_err(unavailable)?;
    }
    for (account, balance) in &after.balances {
        transaction
            .prepare_cached("UPDATE accounts SET balance = ?2, version = ?3 WHERE id = ?1")
            .and_then(|mut statement| {
                statement.execute(params![account.as_str(), balance, version])
            })
            .map_err(unavailable)?;
    }
    Ok(())
}

fn insert_anomaly(
    transaction: &rusqlite::Transaction<'_>,
    device: &str,
    seq: Option<i64>,
    reason: AnomalyReason,
    detail: &str,
    record: &SignedRecord,
    at: Timestamp,
) -> Result<(), StoreError> {
    transaction
        .prepare_cached(
            "INSERT INTO anomalies
             (device, seq, reason, detail, payload, signature, evidence_hash, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                device,
                seq,
                reason.as_str(),
                detail,
                record.payload,
                record.signature,
                super::evidence_hash(record).as_bytes().as_slice(),
                at.unix_ms(),
            ])
        })
        .map_err(unavailable)?;
    Ok(())
}

/// Takes the next snapshot version for the changes of this transaction.
fn bump_version(transaction: &rusqlite::Transaction<'_>) -> Result<i64, StoreError> {
    transaction
        .query_row(
            "UPDATE snapshot_version SET version = version + 1 WHERE id = 1 RETURNING version",
            [],
            |row| row.get(0),
        )
        .map_err(unavailable)
}

fn snapshot_rows(
    transaction: &rusqlite::Transaction<'_>,
    site: &SiteId,
    version: i64,
    since: Option<SnapshotVersion>,
) -> Result<SnapshotRows, StoreError> {
    let after = super::since_bound(since)?;
    let site = site.as_str();
    let accounts = query_all(
        transaction,
        "SELECT id, balance, overdraft_floor FROM accounts
         WHERE version > ?2
           AND EXISTS (SELECT 1 FROM pupils WHERE pupils.account = accounts.id AND site = ?1)
         ORDER BY id",
        params![site, after],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    let pupils = query_all(
        transaction,
        "SELECT data FROM pupils WHERE site = ?1 AND version > ?2 ORDER BY id",
        params![site, after],
        |row| row.get(0),
    )?;
    let cards = query_all(
        transaction,
        "SELECT uid, holder_kind, holder, blocked FROM cards
         WHERE site = ?1 AND version > ?2 ORDER BY uid",
        params![site, after],
        |row| {
            Ok(CardRow {
                uid: row.get(0)?,
                holder_kind: row.get(1)?,
                holder: row.get(2)?,
                blocked: row.get::<_, i64>(3)? == 1,
            })
        },
    )?;
    let hotlist = query_all(
        transaction,
        "SELECT uid FROM cards WHERE blocked = 1 AND version > ?1 ORDER BY uid",
        params![after],
        |row| row.get(0),
    )?;
    let tariffs = query_all(
        transaction,
        "SELECT bracket, meal_type, price FROM tariffs WHERE site = ?1 AND version > ?2
         ORDER BY bracket, meal_type",
        params![site, after],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    let services = query_all(
        transaction,
        "SELECT data FROM services WHERE site = ?1 AND version > ?2 ORDER BY id",
        params![site, after],
        |row| row.get(0),
    )?;
    let staff = query_all(
        transaction,
        "SELECT data FROM staff WHERE site = ?1 AND version > ?2 ORDER BY id",
        params![site, after],
        |row| row.get(0),
    )?;
    let settings = transaction
        .query_row(
            "SELECT data FROM kiosk_settings WHERE site = ?1 AND version > ?2",
            params![site, after],
            |row| row.get(0),
        )
        .optional()
        .map_err(unavailable)?;
    Ok(SnapshotRows {
        version,
        accounts,
        pupils,
        cards,
        hotlist,
        tariffs,
        services,
        staff,
        settings,
    })
}

fn query_all<T>(
    transaction: &rusqlite::Transaction<'_>,
    sql: &str,
    parameters: impl rusqlite::Params,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = transaction.prepare_cached(sql).map_err(unavailable)?;
    let rows = statement.query_map(parameters, map).map_err(unavailable)?;
    rows.collect::<Result<Vec<T>, _>>().map_err(unavailable)
}

/// Lists the batch's meals in its site's `meals` and adds them, and the meals it voids, to
/// the site's day totals.
fn add_meal_days(
    transaction: &rusqlite::Transaction<'_>,
    device: &Device,
    append: &[proto::Record],
    after: &LedgerAfter,
) -> Result<(), StoreError> {
    for (record, meal) in web::meals_of(append) {
        let seq = seq_to_i64(record.seq())?;
        let (via_card, via_staff) = web::via_columns(&meal.via);
        transaction
            .prepare_cached(
                "INSERT INTO meals (site, service_date, kiosk_at, device, seq, service,
                                    meal_type, account, pupil, via_card, via_staff, price)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    device.site.as_str(),
                    meal.service_date.to_string(),
                    record.payload().at.unix_ms(),
                    device.id.as_str(),
                    seq,
                    meal.service.as_str(),
                    meal.meal_type.as_str(),
                    meal.account.as_str(),
                    meal.pupil.as_str(),
                    via_card,
                    via_staff,
                    meal.price.get(),
                ])
            })
            .map_err(unavailable)?;
    }
    let days = crate::meal_days::changes(append, &after.movements, |seq| {
        let payload: Option<String> = transaction
            .query_row(
                "SELECT payload FROM records WHERE device = ?1 AND seq = ?2",
                params![device.id.as_str(), seq_to_i64(seq)?],
                |row| row.get(0),
            )
            .optional()
            .map_err(unavailable)?;
        Ok::<_, StoreError>(payload.as_deref().and_then(crate::meal_days::meal_of))
    })?;
    for (date, change) in days {
        transaction
            .prepare_cached(
                "INSERT INTO meal_days (site, service_date, meals, revenue) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (site, service_date) DO UPDATE SET
                    meals = meals + excluded.meals, revenue = revenue + excluded.revenue",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    device.site.as_str(),
                    date.to_string(),
                    change.meals,
                    change.revenue_cents
                ])
            })
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Pupils' rows with their cards.
fn pupil_entries(
    transaction: &rusqlite::Transaction<'_>,
    rows: Vec<(String, String, String)>,
) -> Result<Vec<PupilEntry>, StoreError> {
    rows.into_iter()
        .map(|(id, site, data)| {
            let cards: Vec<(Vec<u8>, i64)> = query_all(
                transaction,
                "SELECT uid, blocked FROM cards WHERE holder_kind = 'pupil' AND holder = ?1
                 ORDER BY blocked, uid",
                params![id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            let cards = cards
                .into_iter()
                .map(|(uid, blocked)| (uid, blocked == 1))
                .collect();
            web::pupil_entry(&site, &data, cards)
        })
        .collect()
}
