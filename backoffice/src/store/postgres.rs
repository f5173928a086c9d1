//! The PostgreSQL store: a bounded pool of connections. Several back-office instances may share
//! one database: each ingest locks its kiosk's row first, so two instances racing the same
//! kiosk's upload take turns, and `(device, seq)` keys make a second copy impossible anyway.

use std::collections::BTreeMap;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use proto::api::KioskReport;
use proto::snapshot::{
    AccountState, Card, CardHolder, KioskSettings, Pupil, Service, Snapshot, StaffCredential,
    Tariff,
};
use proto::{
    AccountId, CardUid, Cents, ChainHead, DeviceId, Digest, PublicKey, Record, ServiceDate,
    SignedRecord, SiteId, SnapshotVersion, Timestamp,
};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::{
    AccountLine, Anomaly, AnomalyRow, BalanceMismatch, Device, DeviceEntry, IngestOutcome,
    KioskStatus, LedgerTotals, MealDay, NonceOutcome, Operation, OperationOutcome, ProposedVoid,
    ProposedVoidRow, PupilEntry, ReconciliationRow, SavedReconciliation, ServedMeal, Store,
    StoreError, StoredOperation, StoredRecord, VoidStatus, WebSession, corrupt, parse_seq,
    parse_timestamp, seq_to_i64, web,
};
use crate::ingest::{self, AnomalyReason, LedgerAfter, LedgerBefore, StoredChain};
use crate::snapshot::{self, CardRow, SnapshotRows};
use crate::users::User;
use proto::Seq;

/// Connections one back-office instance keeps open. PostgreSQL's default allows 100 in all;
/// a few instances of 16 leave room for reporting and administration.
pub const POOL_CONNECTIONS_MAX: usize = 16;

/// How long a request waits for a free connection, or for a new one, before answering 503.
const POOL_WAIT_MS: u64 = 5_000;
const CONNECT_TIMEOUT_MS: u64 = 5_000;

/// Any number, the same in every instance: serializes migrations of one database.
const MIGRATION_LOCK_KEY: i64 = 0x63616e_7465656e;

/// Schema versions, in order; version N is `MIGRATIONS[N - 1]`. Never edit one that shipped.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    public_key BYTEA NOT NULL,
    added_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE TABLE nonces (
    device TEXT NOT NULL REFERENCES devices (id),
    nonce TEXT NOT NULL,
    request_at BIGINT NOT NULL,
    PRIMARY KEY (device, nonce)
);
CREATE INDEX nonces_by_age ON nonces (device, request_at);
CREATE TABLE records (
    device TEXT NOT NULL REFERENCES devices (id),
    seq BIGINT NOT NULL CHECK (seq >= 1),
    hash BYTEA NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    signature TEXT NOT NULL,
    kiosk_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (device, seq)
);
CREATE TABLE held_records (
    device TEXT NOT NULL REFERENCES devices (id),
    seq BIGINT NOT NULL CHECK (seq >= 1),
    payload TEXT NOT NULL,
    signature TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (device, seq)
);
CREATE TABLE anomalies (
    id BIGSERIAL PRIMARY KEY,
    device TEXT NOT NULL REFERENCES devices (id),
    seq BIGINT,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    payload TEXT NOT NULL,
    signature TEXT NOT NULL,
    evidence_hash BYTEA NOT NULL,
    received_at BIGINT NOT NULL,
    UNIQUE (device, reason, evidence_hash)
);
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    balance BIGINT NOT NULL,
    overdraft_floor BIGINT NOT NULL CHECK (overdraft_floor <= 0),
    created_at BIGINT NOT NULL
);
CREATE TABLE movements (
    id BIGSERIAL PRIMARY KEY,
    account TEXT NOT NULL REFERENCES accounts (id),
    amount BIGINT NOT NULL,
    device TEXT NOT NULL,
    seq BIGINT NOT NULL,
    reverses_seq BIGINT,
    at BIGINT NOT NULL,
    FOREIGN KEY (device, seq) REFERENCES records (device, seq)
);
CREATE INDEX movements_by_record ON movements (device, seq);
CREATE UNIQUE INDEX movements_one_reversal ON movements (device, reverses_seq, account)
    WHERE reverses_seq IS NOT NULL;
CREATE TABLE kiosks (
    device TEXT PRIMARY KEY REFERENCES devices (id),
    last_seen BIGINT NOT NULL,
    report TEXT NOT NULL
);
",
    r"
CREATE TABLE snapshot_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO snapshot_version (id, version) VALUES (1, 0);
ALTER TABLE accounts ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
CREATE INDEX accounts_by_version ON accounts (version);
CREATE TABLE pupils (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    account TEXT NOT NULL REFERENCES accounts (id),
    data TEXT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX pupils_by_site ON pupils (site, version);
CREATE INDEX pupils_by_account ON pupils (account);
CREATE TABLE staff (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    data TEXT NOT NULL,
    version BIGINT NOT NULL
);
CREATE TABLE cards (
    uid BYTEA PRIMARY KEY,
    site TEXT NOT NULL,
    holder_kind TEXT NOT NULL CHECK (holder_kind IN ('pupil', 'staff')),
    holder TEXT NOT NULL,
    blocked BOOLEAN NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX cards_by_site ON cards (site, version);
CREATE INDEX cards_blocked ON cards (blocked, version);
CREATE TABLE tariffs (
    site TEXT NOT NULL,
    bracket TEXT NOT NULL,
    meal_type TEXT NOT NULL,
    price BIGINT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (site, bracket, meal_type)
);
CREATE TABLE services (
    site TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (site, id)
);
CREATE TABLE kiosk_settings (
    site TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    version BIGINT NOT NULL
);
",
    r"
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('staff', 'finance', 'admin', 'payments')),
    site TEXT,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE operations (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('top_up', 'adjustment', 'online_payment')),
    account TEXT NOT NULL REFERENCES accounts (id),
    amount BIGINT NOT NULL,
    detail TEXT NOT NULL,
    payment_reference TEXT UNIQUE,
    user_name TEXT NOT NULL,
    at BIGINT NOT NULL
);
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
    run_at BIGINT NOT NULL,
    run_by TEXT NOT NULL,
    signed_off_by TEXT,
    signed_off_at BIGINT,
    PRIMARY KEY (service_date, site)
);
CREATE FUNCTION refuse_signed_off_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.signed_off_at IS NOT NULL THEN
        RAISE EXCEPTION 'a signed-off reconciliation is immutable';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER reconciliations_signed_off BEFORE UPDATE OR DELETE ON reconciliations
    FOR EACH ROW EXECUTE FUNCTION refuse_signed_off_change();
CREATE TABLE proposed_voids (
    id BIGSERIAL PRIMARY KEY,
    service_date TEXT NOT NULL,
    device TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kept_device TEXT NOT NULL,
    kept_seq BIGINT NOT NULL,
    account TEXT NOT NULL,
    pupil TEXT NOT NULL,
    service TEXT NOT NULL,
    amount BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    decided_by TEXT,
    decided_at BIGINT,
    correction_date TEXT,
    UNIQUE (device, seq),
    FOREIGN KEY (device, seq) REFERENCES records (device, seq)
);
CREATE INDEX proposed_voids_by_date ON proposed_voids (service_date);
",
    r"
CREATE TABLE web_sessions (
    token_hash BYTEA PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name),
    csrf TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);
CREATE TABLE sign_in_failures (
    id BIGSERIAL PRIMARY KEY,
    user_name TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX sign_in_failures_by_name ON sign_in_failures (user_name, at);
CREATE INDEX sign_in_failures_by_age ON sign_in_failures (at);
CREATE INDEX movements_by_account ON movements (account, at);
CREATE INDEX operations_by_account_time ON operations (account, at);
CREATE INDEX records_by_kiosk_time ON records (device, kind, kiosk_at);
CREATE INDEX cards_by_holder ON cards (holder_kind, holder);
CREATE TABLE meal_days (
    site TEXT NOT NULL,
    service_date TEXT NOT NULL,
    meals BIGINT NOT NULL,
    revenue BIGINT NOT NULL,
    PRIMARY KEY (site, service_date)
);
INSERT INTO meal_days (site, service_date, meals, revenue)
SELECT d.site, r.payload::jsonb ->> 'service_date',
       SUM(CASE WHEN v.id IS NULL THEN 1 ELSE 0 END),
       SUM(CASE WHEN v.id IS NULL THEN (r.payload::jsonb ->> 'price')::BIGINT ELSE 0 END)
FROM records r
JOIN devices d ON d.id = r.device
LEFT JOIN movements v ON v.device = r.device AND v.reverses_seq = r.seq
WHERE r.kind = 'meal'
GROUP BY d.site, r.payload::jsonb ->> 'service_date';
",
    r"
-- Derived from the records, as meal_days is: no foreign key to them, so a record removed
-- behind the back-office's back is for reconciliation to find missing, not refused here.
CREATE TABLE meals (
    site TEXT NOT NULL,
    service_date TEXT NOT NULL,
    kiosk_at BIGINT NOT NULL,
    device TEXT NOT NULL,
    seq BIGINT NOT NULL,
    service TEXT NOT NULL,
    meal_type TEXT NOT NULL,
    account TEXT NOT NULL,
    pupil TEXT NOT NULL,
    via_card TEXT,
    via_staff TEXT,
    price BIGINT NOT NULL,
    PRIMARY KEY (site, service_date, kiosk_at, device, seq),
    CHECK ((via_card IS NULL) <> (via_staff IS NULL))
);
INSERT INTO meals (site, service_date, kiosk_at, device, seq, service, meal_type, account, pupil,
                   via_card, via_staff, price)
SELECT d.site, m.p ->> 'service_date', r.kiosk_at, r.device, r.seq, m.p ->> 'service',
       m.p ->> 'meal_type', m.p ->> 'account', m.p ->> 'pupil', m.p -> 'via' ->> 'card',
       m.p -> 'via' ->> 'staff', (m.p ->> 'price')::BIGINT
FROM records r
JOIN devices d ON d.id = r.device
CROSS JOIN LATERAL (SELECT r.payload::jsonb AS p) m
WHERE r.kind = 'meal';
",
    r"
-- An upload inserts its records in one statement, then their movements in another. A foreign
-- key checks each inserted row with a query of its own: half of such a statement's time with
-- 500 rows. These triggers check all of a statement's rows in one query, and refuse what the
-- foreign keys refused besides: removing a device, an account or a record that rows refer to,
-- and changing the columns that refer or are referred to (nothing changes them). It can run
-- again on a schema it already changed.
ALTER TABLE records DROP CONSTRAINT IF EXISTS records_device_fkey;
ALTER TABLE movements DROP CONSTRAINT IF EXISTS movements_account_fkey;
ALTER TABLE movements DROP CONSTRAINT IF EXISTS movements_device_seq_fkey;
CREATE OR REPLACE FUNCTION check_inserted_records() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted i
               WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = i.device)) THEN
        RAISE EXCEPTION 'a record of an unknown device' USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER records_of_known_devices AFTER INSERT ON records
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION check_inserted_records();
CREATE OR REPLACE FUNCTION check_inserted_movements() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted i
               WHERE NOT EXISTS (SELECT 1 FROM records r
                                 WHERE r.device = i.device AND r.seq = i.seq)) THEN
        RAISE EXCEPTION 'a movement without its record' USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM inserted i
               WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = i.account)) THEN
        RAISE EXCEPTION 'a movement of an unknown account'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER movements_of_known_records AFTER INSERT ON movements
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION check_inserted_movements();
CREATE OR REPLACE FUNCTION refuse_key_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% keys are never changed', TG_TABLE_NAME
        USING ERRCODE = 'foreign_key_violation';
END
$$;
CREATE OR REPLACE TRIGGER records_keys BEFORE UPDATE OF device, seq ON records
    FOR EACH ROW EXECUTE FUNCTION refuse_key_change();
CREATE OR REPLACE TRIGGER movements_keys BEFORE UPDATE OF account, device, seq ON movements
    FOR EACH ROW EXECUTE FUNCTION refuse_key_change();
CREATE OR REPLACE TRIGGER devices_keys BEFORE UPDATE OF id ON devices
    FOR EACH ROW EXECUTE FUNCTION refuse_key_change();
CREATE OR REPLACE TRIGGER accounts_keys BEFORE UPDATE OF id ON accounts
    FOR EACH ROW EXECUTE FUNCTION refuse_key_change();
CREATE OR REPLACE FUNCTION refuse_referenced_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    referred BOOLEAN;
BEGIN
    -- One branch a table: OLD has only its own table's columns.
    IF TG_TABLE_NAME = 'devices' THEN
        referred := EXISTS (SELECT 1 FROM records WHERE device = OLD.id);
    ELSIF TG_TABLE_NAME = 'accounts' THEN
        referred := EXISTS (SELECT 1 FROM movements WHERE account = OLD.id);
    ELSE
        referred := EXISTS (SELECT 1 FROM movements WHERE device = OLD.device AND seq = OLD.seq);
    END IF;
    IF referred THEN
        RAISE EXCEPTION 'rows refer to this % row', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END
$$;
CREATE OR REPLACE TRIGGER devices_referenced BEFORE DELETE ON devices
    FOR EACH ROW EXECUTE FUNCTION refuse_referenced_delete();
CREATE OR REPLACE TRIGGER accounts_referenced BEFORE DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION refuse_referenced_delete();
CREATE OR REPLACE TRIGGER records_referenced BEFORE DELETE ON records
    FOR EACH ROW EXECUTE FUNCTION refuse_referenced_delete();
",
];

/// The back-office's data in a PostgreSQL database.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: Pool,
}

impl PostgresStore {
    /// Connects to `url` and brings the schema up to date.
    pub async fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|error| StoreError::Unavailable(format!("database url: {error}")))?;
        config.connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS));
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_CONNECTIONS_MAX)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_millis(POOL_WAIT_MS)))
            .create_timeout(Some(Duration::from_millis(CONNECT_TIMEOUT_MS)))
            .build()
            .map_err(|error| StoreError::Unavailable(error.to_string()))?;
        let store = PostgresStore { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Runs one insert-or-update, then stamps the row it wrote with the next snapshot version
    /// (see [`take_version`]).
    async fn upsert(
        &self,
        sql: &str,
        parameters: &[&(dyn ToSql + Sync)],
        stamp: &str,
        stamp_parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<SnapshotVersion, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        transaction
            .execute(sql, parameters)
            .await
            .map_err(unavailable)?;
        let version = take_version(&transaction, &[stamp], stamp_parameters).await?;
        transaction.commit().await.map_err(unavailable)?;
        super::snapshot_version(version)
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|error| StoreError::Unavailable(error.to_string()))
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let known =
            i64::try_from(MIGRATIONS.len()).map_err(|error| corrupt("migrations", error))?;
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
            .await
            .map_err(unavailable)?;
        transaction
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                    version BIGINT PRIMARY KEY,
                    applied_at BIGINT NOT NULL
                )",
            )
            .await
            .map_err(unavailable)?;
        let found: i64 = transaction
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )
            .await
            .map_err(unavailable)?
            .get(0);
        if found > known {
            return Err(StoreError::SchemaTooNew { found, known });
        }
        for (version, sql) in (1_i64..)
            .zip(MIGRATIONS)
            .skip(usize::try_from(found).unwrap_or(0))
        {
            transaction.batch_execute(sql).await.map_err(unavailable)?;
            // Stamped by the database's clock: when the schema changed is the database's fact.
            transaction
                .execute(
                    "INSERT INTO schema_migrations (version, applied_at)
                     VALUES ($1, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT)",
                    &[&version],
                )
                .await
                .map_err(unavailable)?;
        }
        transaction.commit().await.map_err(unavailable)
    }
}

fn unavailable(error: tokio_postgres::Error) -> StoreError {
    // The server's own message says what went wrong; the error's Display only says "db error".
    match error.as_db_error() {
        Some(db_error) => StoreError::Unavailable(format!(
            "{} ({})",
            db_error.message(),
            db_error.code().code()
        )),
        None => StoreError::Unavailable(error.to_string()),
    }
}

fn is_unique_violation(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// Runs a statement of the sync path, prepared once per connection: one round trip, not two.
async fn execute_cached<C: deadpool_postgres::GenericClient>(
    client: &C,
    sql: &str,
    parameters: &[&(dyn ToSql + Sync)],
) -> Result<u64, StoreError> {
    let statement = client.prepare_cached(sql).await.map_err(unavailable)?;
    client
        .execute(&statement, parameters)
        .await
        .map_err(unavailable)
}

/// [`execute_cached`] for a query.
async fn query_cached<C: deadpool_postgres::GenericClient>(
    client: &C,
    sql: &str,
    parameters: &[&(dyn ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    let statement = client.prepare_cached(sql).await.map_err(unavailable)?;
    client
        .query(&statement, parameters)
        .await
        .map_err(unavailable)
}

/// [`execute_cached`] for a query of at most one row.
async fn query_opt_cached<C: deadpool_postgres::GenericClient>(
    client: &C,
    sql: &str,
    parameters: &[&(dyn ToSql + Sync)],
) -> Result<Option<tokio_postgres::Row>, StoreError> {
    let statement = client.prepare_cached(sql).await.map_err(unavailable)?;
    client
        .query_opt(&statement, parameters)
        .await
        .map_err(unavailable)
}

impl Store for PostgresStore {
    async fn add_device(&self, device: Device, at: Timestamp) -> Result<(), StoreError> {
        let client = self.client().await?;
        let inserted = client
            .execute(
                "INSERT INTO devices (id, site, public_key, added_at, revoked_at)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &device.id.as_str(),
                    &device.site.as_str(),
                    &device.key.as_bytes().as_slice(),
                    &at.unix_ms(),
                    &device.revoked_at.map(Timestamp::unix_ms),
                ],
            )
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(error) if is_unique_violation(&error) => Err(StoreError::AlreadyExists {
                what: "device",
                id: device.id.to_string(),
            }),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn revoke_device(&self, device: &DeviceId, at: Timestamp) -> Result<(), StoreError> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE devices SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
                &[&device.as_str(), &at.unix_ms()],
            )
            .await
            .map_err(unavailable)?;
        if changed == 0 {
            return Err(StoreError::NotFound {
                what: "device",
                id: device.to_string(),
            });
        }
        Ok(())
    }

    async fn device(&self, device: &DeviceId) -> Result<Option<Device>, StoreError> {
        let client = self.client().await?;
        let Some(row) = query_opt_cached(
            &client,
            "SELECT site, public_key, revoked_at FROM devices WHERE id = $1",
            &[&device.as_str()],
        )
        .await?
        else {
            return Ok(None);
        };
        let site: &str = row.get(0);
        let key: &[u8] = row.get(1);
        let revoked_at: Option<i64> = row.get(2);
        Ok(Some(Device {
            id: device.clone(),
            site: SiteId::parse(site).map_err(|error| corrupt("site", error))?,
            key: PublicKey::from_bytes(key).map_err(|error| corrupt("public key", error))?,
            revoked_at: revoked_at.map(parse_timestamp).transpose()?,
        }))
    }

    async fn remember_nonce(
        &self,
        device: &DeviceId,
        nonce: &str,
        request_at: Timestamp,
        now: Timestamp,
    ) -> Result<NonceOutcome, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        execute_cached(
            &transaction,
            "DELETE FROM nonces WHERE device = $1 AND request_at < $2",
            &[&device.as_str(), &super::nonce_forget_before(now)],
        )
        .await?;
        let inserted = execute_cached(
            &transaction,
            "INSERT INTO nonces (device, nonce, request_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&device.as_str(), &nonce, &request_at.unix_ms()],
        )
        .await?;
        transaction.commit().await.map_err(unavailable)?;
        Ok(if inserted == 1 {
            NonceOutcome::Fresh
        } else {
            NonceOutcome::Replayed
        })
    }

    async fn add_account(
        &self,
        account: &AccountId,
        overdraft_floor: Cents,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let inserted = transaction
            .execute(
                "INSERT INTO accounts (id, balance, overdraft_floor, created_at, version)
                 VALUES ($1, 0, $2, $3, $4)",
                &[
                    &account.as_str(),
                    &overdraft_floor.get(),
                    &at.unix_ms(),
                    &VERSION_UNSTAMPED,
                ],
            )
            .await;
        match inserted {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                return Err(StoreError::AlreadyExists {
                    what: "account",
                    id: account.to_string(),
                });
            }
            Err(error) => return Err(unavailable(error)),
        }
        take_version(
            &transaction,
            &["UPDATE accounts SET version = (SELECT version FROM next) WHERE id = $1"],
            &[&account.as_str()],
        )
        .await?;
        transaction.commit().await.map_err(unavailable)
    }

    async fn set_overdraft_floor(
        &self,
        account: &AccountId,
        overdraft_floor: Cents,
    ) -> Result<SnapshotVersion, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let changed = transaction
            .execute(
                "UPDATE accounts SET overdraft_floor = $2 WHERE id = $1",
                &[&account.as_str(), &overdraft_floor.get()],
            )
            .await
            .map_err(unavailable)?;
        if changed == 0 {
            return Err(StoreError::NotFound {
                what: "account",
                id: account.to_string(),
            });
        }
        let version = take_version(
            &transaction,
            &["UPDATE accounts SET version = (SELECT version FROM next) WHERE id = $1"],
            &[&account.as_str()],
        )
        .await?;
        transaction.commit().await.map_err(unavailable)?;
        super::snapshot_version(version)
    }

    async fn balance(&self, account: &AccountId) -> Result<Option<Cents>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT balance FROM accounts WHERE id = $1",
                &[&account.as_str()],
            )
            .await
            .map_err(unavailable)?;
        Ok(row.map(|row| Cents::new(row.get(0))))
    }

    async fn ingest(
        &self,
        device: &Device,
        batch: Vec<SignedRecord>,
        received_at: Timestamp,
    ) -> Result<IngestOutcome, StoreError> {
        let batch = super::check_batch(device.key, batch).await?;
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let id = device.id.as_str();
        // Take turns with any other instance ingesting for this kiosk.
        execute_cached(
            &transaction,
            "SELECT id FROM devices WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?;
        let last = query_opt_cached(
            &transaction,
            "SELECT seq, hash FROM records WHERE device = $1 ORDER BY seq DESC LIMIT 1",
            &[&id],
        )
        .await?;
        let head = match last {
            None => ChainHead::GENESIS,
            Some(row) => ChainHead {
                next_seq: parse_seq(row.get(0))?.next(),
                prev: super::parse_digest(row.get(1))?,
            },
        };
        let held = query_cached(
            &transaction,
            "SELECT payload, signature FROM held_records WHERE device = $1 ORDER BY seq",
            &[&id],
        )
        .await?
        .into_iter()
        .map(|row| SignedRecord {
            payload: row.get(0),
            signature: row.get(1),
        })
        .collect();
        let claimed = ingest::claimed_seqs_below_head(&head, &batch)
            .into_iter()
            .map(seq_to_i64)
            .collect::<Result<Vec<i64>, _>>()?;
        let mut stored_below_head = BTreeMap::new();
        if !claimed.is_empty() {
            for row in query_cached(
                &transaction,
                "SELECT seq, payload, signature FROM records
                 WHERE device = $1 AND seq = ANY($2)",
                &[&id, &claimed],
            )
            .await?
            {
                let record = SignedRecord {
                    payload: row.get(1),
                    signature: row.get(2),
                };
                stored_below_head.insert(parse_seq(row.get(0))?, record);
            }
        }
        let stored = StoredChain {
            head,
            held,
            stored_below_head,
        };
        let plan = ingest::plan(&device.id, &device.key, &stored, &batch);

        // Whole-batch statements: a round trip per batch rather than several per record.
        let mut seqs = Vec::with_capacity(plan.append.len());
        let mut hashes = Vec::with_capacity(plan.append.len());
        let mut kinds = Vec::with_capacity(plan.append.len());
        let mut payloads = Vec::with_capacity(plan.append.len());
        let mut signatures = Vec::with_capacity(plan.append.len());
        let mut kiosk_ats = Vec::with_capacity(plan.append.len());
        for record in &plan.append {
            seqs.push(seq_to_i64(record.seq())?);
            hashes.push(record.hash().as_bytes().to_vec());
            kinds.push(record.payload().body.kind().as_str());
            payloads.push(record.signed().payload.as_str());
            signatures.push(record.signed().signature.as_str());
            kiosk_ats.push(record.payload().at.unix_ms());
        }
        execute_cached(
            &transaction,
            "INSERT INTO records
             (device, seq, hash, kind, payload, signature, kiosk_at, received_at)
             SELECT $1, u.seq, u.hash, u.kind, u.payload, u.signature, u.kiosk_at, $8
             FROM UNNEST($2::BIGINT[], $3::BYTEA[], $4::TEXT[], $5::TEXT[], $6::TEXT[],
                         $7::BIGINT[])
                  AS u (seq, hash, kind, payload, signature, kiosk_at)",
            &[
                &id,
                &seqs,
                &hashes,
                &kinds,
                &payloads,
                &signatures,
                &kiosk_ats,
                &received_at.unix_ms(),
            ],
        )
        .await?;
        let before = ledger_before(&transaction, id, &plan.append).await?;
        let after = ingest::apply_effects(&plan.append, before);
        insert_movements(&transaction, id, &after, received_at).await?;
        for (seq, reason, detail) in &after.anomalies {
            let record = plan
                .append
                .iter()
                .find(|record| record.seq() == *seq)
                .map(Record::signed)
                .ok_or_else(|| StoreError::Corrupt(format!("no record at seq {seq}")))?;
            insert_anomaly(
                &transaction,
                id,
                Some(seq_to_i64(*seq)?),
                *reason,
                detail,
                record,
                received_at,
            )
            .await?;
        }
        if !stored.held.is_empty() {
            execute_cached(
                &transaction,
                "DELETE FROM held_records WHERE device = $1",
                &[&id],
            )
            .await?;
        }
        for record in &plan.hold {
            execute_cached(
                &transaction,
                "INSERT INTO held_records (device, seq, payload, signature, received_at)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &id,
                    &seq_to_i64(record.seq())?,
                    &record.signed().payload,
                    &record.signed().signature,
                    &received_at.unix_ms(),
                ],
            )
            .await?;
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
            )
            .await?;
        }
        // The site's day totals are one row every kiosk of the site updates: held from here to
        // the commit only.
        add_meal_days(&transaction, device, &plan.append, &after).await?;
        // Balances a kiosk sees changed: written with the new snapshot version they belong to,
        // one update a row (the rows are locked since `ledger_before` read them). Records that
        // moved no money change nothing a kiosk sees, and take none.
        if !after.balances.is_empty() {
            let ids: Vec<&str> = after.balances.keys().map(AccountId::as_str).collect();
            let balances: Vec<i64> = after.balances.values().copied().collect();
            take_version(
                &transaction,
                &[
                    "UPDATE accounts SET balance = u.balance, version = (SELECT version FROM next)
                   FROM UNNEST($1::TEXT[], $2::BIGINT[]) AS u (id, balance)
                   WHERE accounts.id = u.id",
                ],
                &[&ids, &balances],
            )
            .await?;
        }
        transaction.commit().await.map_err(unavailable)?;
        Ok(super::outcome(&plan))
    }

    async fn record_kiosk_report(
        &self,
        device: &DeviceId,
        report: &KioskReport,
        received_at: Timestamp,
    ) -> Result<(), StoreError> {
        let report = serde_json::to_string(report).map_err(|error| corrupt("report", error))?;
        let client = self.client().await?;
        execute_cached(
            &client,
            "INSERT INTO kiosks (device, last_seen, report) VALUES ($1, $2, $3)
             ON CONFLICT (device) DO UPDATE SET last_seen = $2, report = $3",
            &[&device.as_str(), &received_at.unix_ms(), &report],
        )
        .await?;
        Ok(())
    }

    async fn kiosk_statuses(&self) -> Result<Vec<KioskStatus>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT device, last_seen, report FROM kiosks ORDER BY device",
                &[],
            )
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|row| super::kiosk_status(row.get(0), row.get(1), row.get(2)))
            .collect()
    }

    async fn records(&self, device: &DeviceId) -> Result<Vec<StoredRecord>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT seq, payload, signature, kiosk_at, received_at FROM records
                 WHERE device = $1 ORDER BY seq",
                &[&device.as_str()],
            )
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|row| {
                Ok(StoredRecord {
                    seq: parse_seq(row.get(0))?,
                    record: SignedRecord {
                        payload: row.get(1),
                        signature: row.get(2),
                    },
                    kiosk_at: parse_timestamp(row.get(3))?,
                    received_at: parse_timestamp(row.get(4))?,
                })
            })
            .collect()
    }

    async fn anomalies(&self) -> Result<Vec<Anomaly>, StoreError> {
        let client = self.client().await?;
        let mut anomalies = Vec::new();
        for row in client
            .query(
                "SELECT device, seq, reason, detail, payload, signature FROM anomalies
                 ORDER BY id",
                &[],
            )
            .await
            .map_err(unavailable)?
        {
            let row = AnomalyRow {
                device: row.get(0),
                seq: row.get(1),
                reason: row.get(2),
                detail: row.get(3),
                payload: row.get(4),
                signature: row.get(5),
            };
            anomalies.push(row.parse()?);
        }
        for row in client
            .query(
                "SELECT held.device, MIN(held.seq),
                        (SELECT MAX(seq) FROM records WHERE records.device = held.device)
                 FROM held_records AS held GROUP BY held.device ORDER BY held.device",
                &[],
            )
            .await
            .map_err(unavailable)?
        {
            anomalies.push(super::gap_anomaly(row.get(0), row.get(1), row.get(2))?);
        }
        Ok(anomalies)
    }

    async fn balance_mismatches(&self) -> Result<Vec<BalanceMismatch>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT id, balance, total FROM (
                    SELECT id, balance,
                        ((SELECT COALESCE(SUM(amount), 0) FROM movements
                          WHERE movements.account = accounts.id)
                         + (SELECT COALESCE(SUM(amount), 0) FROM operations
                            WHERE operations.account = accounts.id))::BIGINT AS total
                    FROM accounts) AS sums
                 WHERE balance != total",
                &[],
            )
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|row| {
                Ok(BalanceMismatch {
                    account: AccountId::parse(row.get(0))
                        .map_err(|error| corrupt("account", error))?,
                    balance: Cents::new(row.get(1)),
                    movements_sum: Cents::new(row.get(2)),
                })
            })
            .collect()
    }

    async fn save_pupil(
        &self,
        site: &SiteId,
        pupil: &Pupil,
    ) -> Result<SnapshotVersion, StoreError> {
        let data = snapshot::to_json(pupil)?;
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        // The account joins the site's snapshots with its first pupil there: it is stamped too.
        let account_found = transaction
            .execute(
                "SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE",
                &[&pupil.account.as_str()],
            )
            .await
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
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO UPDATE SET site = $2, account = $3, data = $4",
                &[
                    &pupil.id.as_str(),
                    &site.as_str(),
                    &pupil.account.as_str(),
                    &data,
                    &VERSION_UNSTAMPED,
                ],
            )
            .await
            .map_err(unavailable)?;
        let version = take_version(
            &transaction,
            &[
                "UPDATE accounts SET version = (SELECT version FROM next) WHERE id = $1",
                "UPDATE pupils SET version = (SELECT version FROM next) WHERE id = $2",
            ],
            &[&pupil.account.as_str(), &pupil.id.as_str()],
        )
        .await?;
        transaction.commit().await.map_err(unavailable)?;
        super::snapshot_version(version)
    }

    async fn save_staff(
        &self,
        site: &SiteId,
        staff: &StaffCredential,
    ) -> Result<SnapshotVersion, StoreError> {
        let data = snapshot::to_json(staff)?;
        self.upsert(
            "INSERT INTO staff (id, site, data, version) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET site = $2, data = $3",
            &[
                &staff.id.as_str(),
                &site.as_str(),
                &data,
                &VERSION_UNSTAMPED,
            ],
            "UPDATE staff SET version = (SELECT version FROM next) WHERE id = $1",
            &[&staff.id.as_str()],
        )
        .await
    }

    async fn assign_card(&self, card: &Card) -> Result<SnapshotVersion, StoreError> {
        let (kind, holder) = super::holder_columns(&card.holder);
        let table = if kind == "pupil" { "pupils" } else { "staff" };
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let Some(row) = transaction
            .query_opt(
                &format!("SELECT site FROM {table} WHERE id = $1"),
                &[&holder],
            )
            .await
            .map_err(unavailable)?
        else {
            return Err(StoreError::NotFound {
                what: kind,
                id: holder.to_owned(),
            });
        };
        let site: String = row.get(0);
        let inserted = transaction
            .execute(
                "INSERT INTO cards (uid, site, holder_kind, holder, blocked, version)
                 VALUES ($1, $2, $3, $4, false, $5)",
                &[
                    &card.uid.as_bytes(),
                    &site,
                    &kind,
                    &holder,
                    &VERSION_UNSTAMPED,
                ],
            )
            .await;
        match inserted {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                return Err(StoreError::AlreadyExists {
                    what: "card",
                    id: card.uid.to_string(),
                });
            }
            Err(error) => return Err(unavailable(error)),
        }
        let version = take_version(
            &transaction,
            &["UPDATE cards SET version = (SELECT version FROM next) WHERE uid = $1"],
            &[&card.uid.as_bytes()],
        )
        .await?;
        transaction.commit().await.map_err(unavailable)?;
        super::snapshot_version(version)
    }

    async fn block_card(&self, uid: &CardUid) -> Result<SnapshotVersion, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let changed = transaction
            .execute(
                "UPDATE cards SET blocked = true WHERE uid = $1",
                &[&uid.as_bytes()],
            )
            .await
            .map_err(unavailable)?;
        if changed == 0 {
            return Err(StoreError::NotFound {
                what: "card",
                id: uid.to_string(),
            });
        }
        let version = take_version(
            &transaction,
            &["UPDATE cards SET version = (SELECT version FROM next) WHERE uid = $1"],
            &[&uid.as_bytes()],
        )
        .await?;
        transaction.commit().await.map_err(unavailable)?;
        super::snapshot_version(version)
    }

    async fn save_tariff(
        &self,
        site: &SiteId,
        tariff: &Tariff,
    ) -> Result<SnapshotVersion, StoreError> {
        self.upsert(
            "INSERT INTO tariffs (site, bracket, meal_type, price, version)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (site, bracket, meal_type) DO UPDATE SET price = $4",
            &[
                &site.as_str(),
                &tariff.bracket.as_str(),
                &tariff.meal_type.as_str(),
                &tariff.price.get(),
                &VERSION_UNSTAMPED,
            ],
            "UPDATE tariffs SET version = (SELECT version FROM next)
             WHERE site = $1 AND bracket = $2 AND meal_type = $3",
            &[
                &site.as_str(),
                &tariff.bracket.as_str(),
                &tariff.meal_type.as_str(),
            ],
        )
        .await
    }

    async fn save_service(
        &self,
        site: &SiteId,
        service: &Service,
    ) -> Result<SnapshotVersion, StoreError> {
        let data = snapshot::to_json(service)?;
        self.upsert(
            "INSERT INTO services (site, id, data, version) VALUES ($1, $2, $3, $4)
             ON CONFLICT (site, id) DO UPDATE SET data = $3",
            &[
                &site.as_str(),
                &service.id.as_str(),
                &data,
                &VERSION_UNSTAMPED,
            ],
            "UPDATE services SET version = (SELECT version FROM next) WHERE site = $1 AND id = $2",
            &[&site.as_str(), &service.id.as_str()],
        )
        .await
    }

    async fn save_kiosk_settings(
        &self,
        site: &SiteId,
        settings: &KioskSettings,
    ) -> Result<SnapshotVersion, StoreError> {
        let data = snapshot::to_json(settings)?;
        self.upsert(
            "INSERT INTO kiosk_settings (site, data, version) VALUES ($1, $2, $3)
             ON CONFLICT (site) DO UPDATE SET data = $2",
            &[&site.as_str(), &data, &VERSION_UNSTAMPED],
            "UPDATE kiosk_settings SET version = (SELECT version FROM next) WHERE site = $1",
            &[&site.as_str()],
        )
        .await
    }

    async fn snapshot(
        &self,
        site: &SiteId,
        device: Option<&DeviceId>,
        since: Option<SnapshotVersion>,
    ) -> Result<Snapshot, StoreError> {
        let mut client = self.client().await?;
        // One consistent view: every row from the same state of the database.
        let transaction = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(unavailable)?;
        let version = current_version(&transaction).await?;
        let since = since.filter(|since| i64::try_from(since.0).is_ok_and(|v| v <= version));
        let after = super::since_bound(since)?;
        let site_id = site.as_str();
        let query = |sql: &'static str, with_site: bool| {
            let transaction = &transaction;
            async move {
                // Every sync runs these: prepared once per connection, one round trip each.
                if with_site {
                    query_cached(transaction, sql, &[&site_id, &after]).await
                } else {
                    query_cached(transaction, sql, &[&after]).await
                }
            }
        };
        let accounts = query(
            "SELECT id, balance, overdraft_floor FROM accounts
             WHERE version > $2
               AND EXISTS (SELECT 1 FROM pupils WHERE pupils.account = accounts.id AND site = $1)
             ORDER BY id",
            true,
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
        let pupils = query(
            "SELECT data FROM pupils WHERE site = $1 AND version > $2 ORDER BY id",
            true,
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
        let cards = query(
            "SELECT uid, holder_kind, holder, blocked FROM cards
             WHERE site = $1 AND version > $2 ORDER BY uid",
            true,
        )
        .await?
        .iter()
        .map(|row| CardRow {
            uid: row.get(0),
            holder_kind: row.get(1),
            holder: row.get(2),
            blocked: row.get(3),
        })
        .collect();
        let hotlist = query(
            "SELECT uid FROM cards WHERE blocked AND version > $1 ORDER BY uid",
            false,
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
        let tariffs = query(
            "SELECT bracket, meal_type, price FROM tariffs WHERE site = $1 AND version > $2
             ORDER BY bracket, meal_type",
            true,
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
        let services = query(
            "SELECT data FROM services WHERE site = $1 AND version > $2 ORDER BY id",
            true,
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
        let staff = query(
            "SELECT data FROM staff WHERE site = $1 AND version > $2 ORDER BY id",
            true,
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
        let settings = query(
            "SELECT data FROM kiosk_settings WHERE site = $1 AND version > $2",
            true,
        )
        .await?
        .first()
        .map(|row| row.get(0));
        let records_through = match device {
            Some(device) => transaction
                .query_one(
                    "SELECT MAX(seq) FROM records WHERE device = $1",
                    &[&device.as_str()],
                )
                .await
                .map_err(unavailable)?
                .get::<_, Option<i64>>(0)
                .map(parse_seq)
                .transpose()?,
            None => None,
        };
        transaction.commit().await.map_err(unavailable)?;
        let rows = SnapshotRows {
            version,
            accounts,
            pupils,
            cards,
            hotlist,
            tariffs,
            services,
            staff,
            settings,
        };
        snapshot::build(site, since, rows, records_through)
    }

    async fn add_user(&self, user: &User, at: Timestamp) -> Result<(), StoreError> {
        let client = self.client().await?;
        let inserted = client
            .execute(
                "INSERT INTO users (name, role, site, password_hash, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &user.name,
                    &user.role.as_str(),
                    &user.site.as_ref().map(SiteId::as_str),
                    &user.password_hash,
                    &at.unix_ms(),
                ],
            )
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(error) if is_unique_violation(&error) => Err(StoreError::AlreadyExists {
                what: "user",
                id: user.name.clone(),
            }),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT role, site, password_hash FROM users WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(unavailable)?;
        row.map(|row| super::parse_user(name.to_owned(), row.get(0), row.get(1), row.get(2)))
            .transpose()
    }

    async fn account(&self, account: &AccountId) -> Result<Option<AccountState>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT balance, overdraft_floor FROM accounts WHERE id = $1",
                &[&account.as_str()],
            )
            .await
            .map_err(unavailable)?;
        Ok(row.map(|row| AccountState {
            id: account.clone(),
            balance: Cents::new(row.get(0)),
            overdraft_floor: Cents::new(row.get(1)),
        }))
    }

    async fn apply_operation(&self, operation: &Operation) -> Result<OperationOutcome, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let outcome = apply_operation_in(&transaction, operation).await?;
        if !outcome.replayed {
            transaction.commit().await.map_err(unavailable)?;
        }
        Ok(outcome)
    }

    async fn holder_site(&self, holder: &CardHolder) -> Result<Option<SiteId>, StoreError> {
        let (kind, id) = super::holder_columns(holder);
        let table = if kind == "pupil" { "pupils" } else { "staff" };
        let client = self.client().await?;
        let row = client
            .query_opt(&format!("SELECT site FROM {table} WHERE id = $1"), &[&id])
            .await
            .map_err(unavailable)?;
        row.map(|row| SiteId::parse(row.get(0)).map_err(|error| corrupt("site", error)))
            .transpose()
    }

    async fn card(&self, uid: &CardUid) -> Result<Option<(CardHolder, bool)>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT holder_kind, holder, blocked FROM cards WHERE uid = $1",
                &[&uid.as_bytes()],
            )
            .await
            .map_err(unavailable)?;
        row.map(|row| Ok((super::parse_holder(row.get(0), row.get(1))?, row.get(2))))
            .transpose()
    }

    async fn replace_card(
        &self,
        old: &CardUid,
        new: &CardUid,
    ) -> Result<SnapshotVersion, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let Some(row) = transaction
            .query_opt(
                "UPDATE cards SET blocked = true WHERE uid = $1
                 RETURNING site, holder_kind, holder",
                &[&old.as_bytes()],
            )
            .await
            .map_err(unavailable)?
        else {
            return Err(StoreError::NotFound {
                what: "card",
                id: old.to_string(),
            });
        };
        let (site, kind, holder): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let inserted = transaction
            .execute(
                "INSERT INTO cards (uid, site, holder_kind, holder, blocked, version)
                 VALUES ($1, $2, $3, $4, false, $5)",
                &[&new.as_bytes(), &site, &kind, &holder, &VERSION_UNSTAMPED],
            )
            .await;
        match inserted {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                return Err(StoreError::AlreadyExists {
                    what: "card",
                    id: new.to_string(),
                });
            }
            Err(error) => return Err(unavailable(error)),
        }
        let version = take_version(
            &transaction,
            &["UPDATE cards SET version = (SELECT version FROM next) WHERE uid IN ($1, $2)"],
            &[&old.as_bytes(), &new.as_bytes()],
        )
        .await?;
        transaction.commit().await.map_err(unavailable)?;
        super::snapshot_version(version)
    }

    async fn devices(&self) -> Result<Vec<DeviceEntry>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, site, public_key, revoked_at, added_at FROM devices ORDER BY id",
                &[],
            )
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                super::parse_device_entry(
                    row.get(0),
                    row.get(1),
                    row.get(2),
                    row.get(3),
                    row.get(4),
                )
            })
            .collect()
    }

    async fn services(&self) -> Result<Vec<(SiteId, Service)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT site, data FROM services ORDER BY site, id", &[])
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|row| super::parse_service(row.get(0), row.get(1)))
            .collect()
    }

    async fn overdraft_floors(&self) -> Result<Vec<(AccountId, Cents)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT id, overdraft_floor FROM accounts ORDER BY id", &[])
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                Ok((
                    AccountId::parse(row.get(0)).map_err(|error| corrupt("account", error))?,
                    Cents::new(row.get(1)),
                ))
            })
            .collect()
    }

    async fn day_closes(&self, device: &DeviceId) -> Result<Vec<(Seq, ServiceDate)>, StoreError> {
        let client = self.client().await?;
        // Prepared once per connection: a reconciliation asks this of every kiosk.
        let rows = query_cached(
            &client,
            "SELECT seq, (payload::jsonb) ->> 'service_date' FROM records
             WHERE device = $1 AND kind = 'day_close' ORDER BY seq",
            &[&device.as_str()],
        )
        .await?;
        rows.iter()
            .map(|row| {
                let date: Option<&str> = row.get(1);
                let date = date.ok_or_else(|| corrupt("day close", "no service_date"))?;
                Ok((parse_seq(row.get(0))?, super::parse_service_date(date)?))
            })
            .collect()
    }

    async fn record_range(
        &self,
        device: &DeviceId,
        from: Seq,
        to: Option<Seq>,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let from = seq_to_i64(from)?;
        let to = to.map_or(Ok(i64::MAX), seq_to_i64)?;
        let client = self.client().await?;
        // Prepared once per connection: a reconciliation or an export reads every kiosk's
        // range, and an extra round trip each costs more than the rows under load.
        let rows = query_cached(
            &client,
            "SELECT seq, payload, signature, kiosk_at, received_at FROM records
             WHERE device = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq",
            &[&device.as_str(), &from, &to],
        )
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredRecord {
                    seq: parse_seq(row.get(0))?,
                    record: SignedRecord {
                        payload: row.get(1),
                        signature: row.get(2),
                    },
                    kiosk_at: parse_timestamp(row.get(3))?,
                    received_at: parse_timestamp(row.get(4))?,
                })
            })
            .collect()
    }

    async fn ledger_totals(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<LedgerTotals, StoreError> {
        let mut client = self.client().await?;
        // One snapshot of the database for all four sums.
        let transaction = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(unavailable)?;
        let row = transaction
            .query_one(
                "SELECT
                    (SELECT COALESCE(SUM(balance), 0) FROM accounts)::BIGINT,
                    COALESCE(SUM(CASE WHEN at < $1 THEN amount END), 0)::BIGINT,
                    COALESCE(SUM(CASE WHEN at >= $1 AND at < $2 THEN amount END), 0)::BIGINT,
                    COALESCE(SUM(CASE WHEN at >= $2 THEN amount END), 0)::BIGINT
                 FROM (SELECT amount, at FROM movements
                       UNION ALL SELECT amount, at FROM operations) AS ledger",
                &[&from.unix_ms(), &to.unix_ms()],
            )
            .await
            .map_err(unavailable)?;
        transaction.commit().await.map_err(unavailable)?;
        Ok(LedgerTotals {
            balances_now: Cents::new(row.get(0)),
            before: Cents::new(row.get(1)),
            during: Cents::new(row.get(2)),
            after: Cents::new(row.get(3)),
        })
    }

    async fn operations_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<StoredOperation>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, kind, account, amount, detail, user_name, at FROM operations
                 WHERE at >= $1 AND at < $2 ORDER BY id",
                &[&from.unix_ms(), &to.unix_ms()],
            )
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                super::parse_stored_operation(
                    row.get(0),
                    row.get(1),
                    row.get(2),
                    row.get(3),
                    row.get(4),
                    row.get(5),
                    row.get(6),
                )
            })
            .collect()
    }

    async fn save_reconciliation(
        &self,
        saved: &SavedReconciliation,
        proposals: &[ProposedVoid],
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let scope = super::scope_column(saved.site.as_ref());
        let date = saved.date.to_string();
        let existing = transaction
            .query_opt(
                "SELECT signed_off_at FROM reconciliations
                 WHERE service_date = $1 AND site = $2 FOR UPDATE",
                &[&date, &scope],
            )
            .await
            .map_err(unavailable)?;
        if let Some(row) = existing
            && row.get::<_, Option<i64>>(0).is_some()
        {
            return Err(super::signed_off_refusal(saved.date, saved.site.as_ref()));
        }
        transaction
            .execute(
                "INSERT INTO reconciliations (service_date, site, report, run_at, run_by)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (service_date, site) DO UPDATE SET
                    report = $3, run_at = $4, run_by = $5",
                &[
                    &date,
                    &scope,
                    &saved.report,
                    &saved.run_at.unix_ms(),
                    &saved.run_by,
                ],
            )
            .await
            .map_err(unavailable)?;
        let insert = transaction
            .prepare(
                "INSERT INTO proposed_voids (service_date, device, seq, kept_device, kept_seq,
                    account, pupil, service, amount, status)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending')
                 ON CONFLICT (device, seq) DO NOTHING",
            )
            .await
            .map_err(unavailable)?;
        for proposal in proposals {
            transaction
                .execute(
                    &insert,
                    &[
                        &proposal.date.to_string(),
                        &proposal.device.as_str(),
                        &seq_to_i64(proposal.seq)?,
                        &proposal.kept_device.as_str(),
                        &seq_to_i64(proposal.kept_seq)?,
                        &proposal.account.as_str(),
                        &proposal.pupil.as_str(),
                        &proposal.service.as_str(),
                        &proposal.amount.get(),
                    ],
                )
                .await
                .map_err(unavailable)?;
        }
        transaction.commit().await.map_err(unavailable)
    }

    async fn reconciliation(
        &self,
        date: ServiceDate,
        site: Option<&SiteId>,
    ) -> Result<Option<SavedReconciliation>, StoreError> {
        let client = self.client().await?;
        reconciliation_in(&client, date, super::scope_column(site), false).await
    }

    async fn sign_off_reconciliation(
        &self,
        date: ServiceDate,
        site: Option<&SiteId>,
        user: &str,
        at: Timestamp,
    ) -> Result<SavedReconciliation, StoreError> {
        let scope = super::scope_column(site);
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let Some(saved) = reconciliation_in(&transaction, date, scope, true).await? else {
            return Err(StoreError::NotFound {
                what: "reconciliation",
                id: format!("{date} {scope}"),
            });
        };
        if saved.signed_off_at.is_some() {
            return Err(super::signed_off_refusal(date, site));
        }
        let pending: i64 = transaction
            .query_one(
                "SELECT COUNT(*) FROM proposed_voids
                 WHERE service_date = $1 AND status = 'pending'",
                &[&date.to_string()],
            )
            .await
            .map_err(unavailable)?
            .get(0);
        if pending > 0 {
            return Err(StoreError::Refused(format!(
                "{pending} proposed void(s) of {date} are still pending: approve or reject them first"
            )));
        }
        transaction
            .execute(
                "UPDATE reconciliations SET signed_off_by = $3, signed_off_at = $4
                 WHERE service_date = $1 AND site = $2",
                &[&date.to_string(), &scope, &user, &at.unix_ms()],
            )
            .await
            .map_err(unavailable)?;
        let signed = reconciliation_in(&transaction, date, scope, false)
            .await?
            .ok_or_else(|| StoreError::Corrupt("signed-off reconciliation vanished".to_owned()))?;
        transaction.commit().await.map_err(unavailable)?;
        Ok(signed)
    }

    async fn proposed_voids(
        &self,
        date: Option<ServiceDate>,
    ) -> Result<Vec<ProposedVoid>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {} FROM proposed_voids
             WHERE $1::TEXT IS NULL OR service_date = $1 ORDER BY id",
            super::PROPOSED_VOID_COLUMNS
        );
        let rows = client
            .query(&sql, &[&date.map(|date| date.to_string())])
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|row| proposed_void_row(row).parse())
            .collect()
    }

    async fn decide_proposed_void(
        &self,
        id: i64,
        status: VoidStatus,
        user: &str,
        at: Timestamp,
        correction: Option<(&Operation, ServiceDate)>,
    ) -> Result<ProposedVoid, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let sql = format!(
            "SELECT {} FROM proposed_voids WHERE id = $1",
            super::PROPOSED_VOID_COLUMNS
        );
        let Some(row) = transaction
            .query_opt(&format!("{sql} FOR UPDATE"), &[&id])
            .await
            .map_err(unavailable)?
        else {
            return Err(StoreError::NotFound {
                what: "proposed void",
                id: id.to_string(),
            });
        };
        let proposal = proposed_void_row(&row).parse()?;
        if proposal.status != VoidStatus::Pending {
            return Err(StoreError::Refused(format!(
                "proposed void {id} was already {}",
                proposal.status.as_str()
            )));
        }
        if let Some((operation, _)) = correction {
            apply_operation_in(&transaction, operation).await?;
        }
        transaction
            .execute(
                "UPDATE proposed_voids SET status = $2, decided_by = $3, decided_at = $4,
                    correction_date = $5
                 WHERE id = $1",
                &[
                    &id,
                    &status.as_str(),
                    &user,
                    &at.unix_ms(),
                    &correction.map(|(_, date)| date.to_string()),
                ],
            )
            .await
            .map_err(unavailable)?;
        let row = transaction
            .query_one(&sql, &[&id])
            .await
            .map_err(unavailable)?;
        let decided = proposed_void_row(&row).parse()?;
        transaction.commit().await.map_err(unavailable)?;
        Ok(decided)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.execute("SELECT 1", &[]).await.map_err(unavailable)?;
        Ok(())
    }

    async fn create_web_session(
        &self,
        session: &WebSession,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        transaction
            .execute(
                "DELETE FROM web_sessions WHERE expires_at <= $1",
                &[&now.unix_ms()],
            )
            .await
            .map_err(unavailable)?;
        transaction
            .execute(
                "INSERT INTO web_sessions (token_hash, user_name, csrf, expires_at)
                 VALUES ($1, $2, $3, $4)",
                &[
                    &session.token_hash.as_bytes().as_slice(),
                    &session.user,
                    &session.csrf,
                    &session.expires_at.unix_ms(),
                ],
            )
            .await
            .map_err(unavailable)?;
        transaction.commit().await.map_err(unavailable)
    }

    async fn web_session(
        &self,
        token_hash: &Digest,
        now: Timestamp,
    ) -> Result<Option<(WebSession, User)>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT s.user_name, s.csrf, s.expires_at, u.role, u.site, u.password_hash
                 FROM web_sessions s JOIN users u ON u.name = s.user_name
                 WHERE s.token_hash = $1 AND s.expires_at > $2",
                &[&token_hash.as_bytes().as_slice(), &now.unix_ms()],
            )
            .await
            .map_err(unavailable)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let name: String = row.get(0);
        let session = WebSession {
            token_hash: *token_hash,
            user: name.clone(),
            csrf: row.get(1),
            expires_at: parse_timestamp(row.get(2))?,
        };
        let user = super::parse_user(name, row.get(3), row.get(4), row.get(5))?;
        Ok(Some((session, user)))
    }

    async fn end_web_session(&self, token_hash: &Digest) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM web_sessions WHERE token_hash = $1",
                &[&token_hash.as_bytes().as_slice()],
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn failed_sign_ins(&self, name: &str, since: Timestamp) -> Result<u32, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT COUNT(*) FROM sign_in_failures WHERE user_name = $1 AND at >= $2",
                &[&name, &since.unix_ms()],
            )
            .await
            .map_err(unavailable)?;
        Ok(u32::try_from(row.get::<_, i64>(0)).unwrap_or(u32::MAX))
    }

    async fn record_failed_sign_in(
        &self,
        name: &str,
        at: Timestamp,
        forget_before: Timestamp,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        transaction
            .execute(
                "DELETE FROM sign_in_failures WHERE at < $1",
                &[&forget_before.unix_ms()],
            )
            .await
            .map_err(unavailable)?;
        transaction
            .execute(
                "INSERT INTO sign_in_failures (user_name, at) VALUES ($1, $2)",
                &[&name, &at.unix_ms()],
            )
            .await
            .map_err(unavailable)?;
        transaction.commit().await.map_err(unavailable)
    }

    async fn clear_failed_sign_ins(&self, name: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM sign_in_failures WHERE user_name = $1",
                &[&name],
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT name, role, site, password_hash FROM users ORDER BY name",
                &[],
            )
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|row| super::parse_user(row.get(0), row.get(1), row.get(2), row.get(3)))
            .collect()
    }

    async fn update_user(&self, user: &User) -> Result<(), StoreError> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE users SET role = $2, site = $3, password_hash = $4 WHERE name = $1",
                &[
                    &user.name,
                    &user.role.as_str(),
                    &user.site.as_ref().map(SiteId::as_str),
                    &user.password_hash,
                ],
            )
            .await
            .map_err(unavailable)?;
        if changed == 0 {
            return Err(StoreError::NotFound {
                what: "user",
                id: user.name.clone(),
            });
        }
        Ok(())
    }

    async fn sites(&self) -> Result<Vec<SiteId>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT site FROM devices UNION SELECT site FROM pupils
                 UNION SELECT site FROM tariffs UNION SELECT site FROM services ORDER BY 1",
                &[],
            )
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|row| web::parse_site(row.get(0)))
            .collect()
    }

    async fn site_setup(&self, site: &SiteId) -> Result<(Vec<Tariff>, Vec<Service>), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let tariffs = transaction
            .query(
                "SELECT bracket, meal_type, price FROM tariffs WHERE site = $1
                 ORDER BY bracket, meal_type",
                &[&site.as_str()],
            )
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|row| web::tariff(row.get(0), row.get(1), row.get(2)))
            .collect::<Result<_, _>>()?;
        let services = transaction
            .query(
                "SELECT data FROM services WHERE site = $1 ORDER BY id",
                &[&site.as_str()],
            )
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|row| web::service(row.get(0)))
            .collect::<Result<_, _>>()?;
        transaction.commit().await.map_err(unavailable)?;
        Ok((tariffs, services))
    }

    async fn search_pupils(
        &self,
        text: &str,
        site: Option<&SiteId>,
        limit: usize,
    ) -> Result<Vec<PupilEntry>, StoreError> {
        let text = text.trim();
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let rows = transaction
            .query(
                "SELECT id, site, data FROM pupils
                 WHERE ($1::TEXT IS NULL OR site = $1)
                   AND (id = $2 OR account = $2
                        OR lower((data::jsonb ->> 'first_name') || ' '
                                 || (data::jsonb ->> 'last_name')) LIKE $3
                        OR lower((data::jsonb ->> 'last_name') || ' '
                                 || (data::jsonb ->> 'first_name')) LIKE $3)
                 ORDER BY data::jsonb ->> 'last_name', data::jsonb ->> 'first_name', id
                 LIMIT $4",
                &[
                    &site.map(SiteId::as_str),
                    &text,
                    &web::contains_pattern(text),
                    &web::limit(limit),
                ],
            )
            .await
            .map_err(unavailable)?;
        let entries = pupil_entries(&transaction, rows).await?;
        transaction.commit().await.map_err(unavailable)?;
        Ok(entries)
    }

    async fn account_pupils(&self, account: &AccountId) -> Result<Vec<PupilEntry>, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let rows = transaction
            .query(
                "SELECT id, site, data FROM pupils WHERE account = $1 ORDER BY id",
                &[&account.as_str()],
            )
            .await
            .map_err(unavailable)?;
        let entries = pupil_entries(&transaction, rows).await?;
        transaction.commit().await.map_err(unavailable)?;
        Ok(entries)
    }

    async fn account_history(
        &self,
        account: &AccountId,
        limit: usize,
    ) -> Result<Vec<AccountLine>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT at, amount, kind, detail FROM (
                    (SELECT m.at AS at, m.amount AS amount,
                            CASE WHEN m.reverses_seq IS NULL THEN r.kind ELSE 'void' END AS kind,
                            m.device AS detail
                     FROM movements m JOIN records r ON r.device = m.device AND r.seq = m.seq
                     WHERE m.account = $1 ORDER BY m.at DESC LIMIT $2)
                    UNION ALL
                    (SELECT at, amount, kind, user_name || ': ' || detail
                     FROM operations WHERE account = $1 ORDER BY at DESC LIMIT $2)) lines
                 ORDER BY at DESC LIMIT $2",
                &[&account.as_str(), &web::limit(limit)],
            )
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|row| {
                Ok(AccountLine {
                    at: parse_timestamp(row.get(0))?,
                    amount: Cents::new(row.get(1)),
                    kind: row.get(2),
                    detail: row.get(3),
                })
            })
            .collect()
    }

    async fn site_meals(
        &self,
        site: &SiteId,
        date: ServiceDate,
        limit: usize,
    ) -> Result<Vec<ServedMeal>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT device, seq, kiosk_at, service, meal_type, account, pupil, via_card,
                        via_staff, price
                 FROM meals WHERE site = $1 AND service_date = $2
                 ORDER BY kiosk_at, device, seq LIMIT $3",
                &[&site.as_str(), &date.to_string(), &web::limit(limit)],
            )
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|row| {
                web::served_meal(web::MealRow {
                    device: row.get(0),
                    seq: row.get(1),
                    kiosk_at: row.get(2),
                    service: row.get(3),
                    meal_type: row.get(4),
                    account: row.get(5),
                    pupil: row.get(6),
                    via_card: row.get(7),
                    via_staff: row.get(8),
                    price: row.get(9),
                })
            })
            .collect()
    }

    async fn meal_days(
        &self,
        from: ServiceDate,
        to: ServiceDate,
    ) -> Result<Vec<MealDay>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT site, service_date, meals, revenue FROM meal_days
                 WHERE service_date >= $1 AND service_date <= $2
                 ORDER BY service_date, site",
                &[&from.to_string(), &to.to_string()],
            )
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|row| web::meal_day(row.get(0), row.get(1), row.get(2), row.get(3)))
            .collect()
    }
}

/// Reads, with the accounts' rows locked in a fixed order, what the batch's effects touch.
/// A stored reconciliation, locked for update when `lock`.
async fn reconciliation_in(
    client: &impl deadpool_postgres::GenericClient,
    date: ServiceDate,
    scope: &str,
    lock: bool,
) -> Result<Option<SavedReconciliation>, StoreError> {
    let sql = format!(
        "SELECT service_date, site, report, run_at, run_by, signed_off_by, signed_off_at
         FROM reconciliations WHERE service_date = $1 AND site = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row = client
        .query_opt(&sql, &[&date.to_string(), &scope])
        .await
        .map_err(unavailable)?;
    row.map(|row| {
        ReconciliationRow {
            date: row.get(0),
            site: row.get(1),
            report: row.get(2),
            run_at: row.get(3),
            run_by: row.get(4),
            signed_off_by: row.get(5),
            signed_off_at: row.get(6),
        }
        .parse()
    })
    .transpose()
}

fn proposed_void_row(row: &tokio_postgres::Row) -> ProposedVoidRow {
    ProposedVoidRow {
        id: row.get(0),
        date: row.get(1),
        device: row.get(2),
        seq: row.get(3),
        kept_device: row.get(4),
        kept_seq: row.get(5),
        account: row.get(6),
        pupil: row.get(7),
        service: row.get(8),
        amount: row.get(9),
        status: row.get(10),
        decided_by: row.get(11),
        decided_at: row.get(12),
        correction_date: row.get(13),
    }
}

/// Moves money by a back-office operation inside `transaction`, taking the snapshot version last
/// (see [`take_version`]): after it, the caller may touch only rows it already holds.
async fn apply_operation_in(
    transaction: &deadpool_postgres::Transaction<'_>,
    operation: &Operation,
) -> Result<OperationOutcome, StoreError> {
    let account = operation.account.as_str();
    let Some(row) = transaction
        .query_opt(
            "SELECT balance FROM accounts WHERE id = $1 FOR NO KEY UPDATE",
            &[&account],
        )
        .await
        .map_err(unavailable)?
    else {
        return Err(StoreError::NotFound {
            what: "account",
            id: account.to_owned(),
        });
    };
    let balance: i64 = row.get(0);
    if let Some(reference) = operation.kind.payment_reference()
        && let Some(earlier) = transaction
            .query_opt(
                "SELECT account, amount FROM operations WHERE payment_reference = $1",
                &[&reference],
            )
            .await
            .map_err(unavailable)?
    {
        super::same_payment(earlier.get(0), earlier.get(1), operation)?;
        // Nothing changes: no new version.
        return Ok(OperationOutcome {
            balance: Cents::new(balance),
            version: super::snapshot_version(current_version(transaction).await?)?,
            replayed: true,
        });
    }
    let new_balance = super::checked_balance(balance, operation.amount)?;
    transaction
        .execute(
            "UPDATE accounts SET balance = $2 WHERE id = $1",
            &[&account, &new_balance],
        )
        .await
        .map_err(unavailable)?;
    let inserted = transaction
        .execute(
            "INSERT INTO operations
             (kind, account, amount, detail, payment_reference, user_name, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &operation.kind.as_str(),
                &account,
                &operation.amount.get(),
                &operation.kind.detail(),
                &operation.kind.payment_reference(),
                &operation.user,
                &operation.at.unix_ms(),
            ],
        )
        .await;
    match inserted {
        Ok(_) => {}
        // Another instance credited the same payment first: the provider retries and
        // then gets the replayed answer.
        Err(error) if is_unique_violation(&error) => {
            return Err(StoreError::Unavailable(
                "the same payment is being credited concurrently".to_owned(),
            ));
        }
        Err(error) => return Err(unavailable(error)),
    }
    let version = take_version(
        transaction,
        &["UPDATE accounts SET version = (SELECT version FROM next) WHERE id = $1"],
        &[&account],
    )
    .await?;
    Ok(OperationOutcome {
        balance: Cents::new(new_balance),
        version: super::snapshot_version(version)?,
        replayed: false,
    })
}

async fn ledger_before(
    transaction: &deadpool_postgres::Transaction<'_>,
    device: &str,
    append: &[Record],
) -> Result<LedgerBefore, StoreError> {
    let (mut accounts, voided) = ingest::ledger_needs(append);
    let mut before = LedgerBefore::default();
    if !voided.is_empty() {
        let voided: Vec<i64> = voided
            .into_iter()
            .map(seq_to_i64)
            .collect::<Result<_, _>>()?;
        for row in query_cached(
            transaction,
            "SELECT seq, hash FROM records WHERE device = $1 AND seq = ANY($2)",
            &[&device, &voided],
        )
        .await?
        {
            before
                .voided_hashes
                .insert(parse_seq(row.get(0))?, super::parse_digest(row.get(1))?);
        }
        for row in query_cached(
            transaction,
            "SELECT seq, account, amount, reverses_seq FROM movements
             WHERE device = $1 AND (seq = ANY($2) OR reverses_seq = ANY($2))",
            &[&device, &voided],
        )
        .await?
        {
            let seq: i64 = row.get(0);
            let reverses: Option<i64> = row.get(3);
            if voided.contains(&seq) {
                let account =
                    AccountId::parse(row.get(1)).map_err(|error| corrupt("account", error))?;
                accounts.insert(account.clone());
                before
                    .voided_movements
                    .entry(parse_seq(seq)?)
                    .or_default()
                    .push((account, Cents::new(row.get(2))));
            }
            if let Some(reverses) = reverses.filter(|reverses| voided.contains(reverses)) {
                before.already_reversed.insert(parse_seq(reverses)?);
            }
        }
    }
    if !accounts.is_empty() {
        let ids: Vec<&str> = accounts.iter().map(AccountId::as_str).collect();
        // Sorted, so two uploads touching the same accounts lock them in the same order.
        for row in query_cached(
            transaction,
            "SELECT id, balance FROM accounts WHERE id = ANY($1) ORDER BY id
             FOR NO KEY UPDATE",
            &[&ids],
        )
        .await?
        {
            let account =
                AccountId::parse(row.get(0)).map_err(|error| corrupt("account", error))?;
            before.balances.insert(account, row.get(1));
        }
    }
    Ok(before)
}

/// Writes a batch's movements; the new balances are written with their version at the end.
async fn insert_movements(
    transaction: &deadpool_postgres::Transaction<'_>,
    device: &str,
    after: &LedgerAfter,
    at: Timestamp,
) -> Result<(), StoreError> {
    if after.movements.is_empty() {
        return Ok(());
    }
    let accounts: Vec<&str> = after.movements.iter().map(|m| m.account.as_str()).collect();
    let amounts: Vec<i64> = after.movements.iter().map(|m| m.amount.get()).collect();
    let seqs = after
        .movements
        .iter()
        .map(|m| seq_to_i64(m.seq))
        .collect::<Result<Vec<i64>, _>>()?;
    let reverses = after
        .movements
        .iter()
        .map(|m| m.reverses.map(seq_to_i64).transpose())
        .collect::<Result<Vec<Option<i64>>, _>>()?;
    execute_cached(
        transaction,
        "INSERT INTO movements (account, amount, device, seq, reverses_seq, at)
         SELECT u.account, u.amount, $1, u.seq, u.reverses, $6
         FROM UNNEST($2::TEXT[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[])
              AS u (account, amount, seq, reverses)",
        &[
            &device,
            &accounts,
            &amounts,
            &seqs,
            &reverses,
            &at.unix_ms(),
        ],
    )
    .await?;
    Ok(())
}

async fn insert_anomaly(
    transaction: &deadpool_postgres::Transaction<'_>,
    device: &str,
    seq: Option<i64>,
    reason: AnomalyReason,
    detail: &str,
    record: &SignedRecord,
    at: Timestamp,
) -> Result<(), StoreError> {
    execute_cached(
        transaction,
        "INSERT INTO anomalies
         (device, seq, reason, detail, payload, signature, evidence_hash, received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        &[
            &device,
            &seq,
            &reason.as_str(),
            &detail,
            &record.payload,
            &record.signature,
            &super::evidence_hash(record).as_bytes().as_slice(),
            &at.unix_ms(),
        ],
    )
    .await?;
    Ok(())
}

/// Takes the next snapshot version and stamps it on the rows this transaction changed: the last
/// statement of every transaction that changes what kiosks see, right before COMMIT.
///
/// The counter's row lock orders the writers, so versions become visible in the order they
/// were taken: a snapshot that reads version V sees every change stamped V or lower, and a
/// change that commits later is stamped higher, so no delta misses it. Taken last, the lock is
/// held only for this statement and the commit, not for a whole ingest. `stamps` are `UPDATE`s
/// setting `version = (SELECT version FROM next)` on rows this transaction already wrote (so
/// already holds): a transaction holding the counter never waits for another lock, and no two
/// transactions can wait for each other through it.
async fn take_version(
    transaction: &deadpool_postgres::Transaction<'_>,
    stamps: &[&str],
    parameters: &[&(dyn ToSql + Sync)],
) -> Result<i64, StoreError> {
    let mut sql = String::from(
        "WITH next AS (
            UPDATE snapshot_version SET version = version + 1 WHERE id = 1 RETURNING version)",
    );
    for (index, stamp) in stamps.iter().enumerate() {
        sql.push_str(&format!(", stamp_{index} AS ({stamp})"));
    }
    sql.push_str(" SELECT version FROM next");
    let statement = transaction
        .prepare_cached(&sql)
        .await
        .map_err(unavailable)?;
    Ok(transaction
        .query_one(&statement, parameters)
        .await
        .map_err(unavailable)?
        .get(0))
}

/// The version of what is committed, without taking a new one.
async fn current_version(
    transaction: &deadpool_postgres::Transaction<'_>,
) -> Result<i64, StoreError> {
    Ok(transaction
        .query_one("SELECT version FROM snapshot_version WHERE id = 1", &[])
        .await
        .map_err(unavailable)?
        .get(0))
}

/// The value a version column holds between a row's write and [`take_version`]'s stamp in the
/// same transaction; no other transaction ever sees it.
const VERSION_UNSTAMPED: i64 = 0;

/// Lists the batch's meals in its site's `meals` and adds them, and the meals it voids, to
/// the site's day totals.
async fn add_meal_days(
    transaction: &deadpool_postgres::Transaction<'_>,
    device: &Device,
    append: &[Record],
    after: &LedgerAfter,
) -> Result<(), StoreError> {
    // The whole batch's meals in one statement, as its records.
    let mut service_dates = Vec::new();
    let mut kiosk_ats = Vec::new();
    let mut seqs = Vec::new();
    let mut services = Vec::new();
    let mut meal_types = Vec::new();
    let mut accounts = Vec::new();
    let mut pupils = Vec::new();
    let mut via_cards = Vec::new();
    let mut via_staff = Vec::new();
    let mut prices = Vec::new();
    for (record, meal) in web::meals_of(append) {
        let (card, staff) = web::via_columns(&meal.via);
        service_dates.push(meal.service_date.to_string());
        kiosk_ats.push(record.payload().at.unix_ms());
        seqs.push(seq_to_i64(record.seq())?);
        services.push(meal.service.as_str());
        meal_types.push(meal.meal_type.as_str());
        accounts.push(meal.account.as_str());
        pupils.push(meal.pupil.as_str());
        via_cards.push(card);
        via_staff.push(staff);
        prices.push(meal.price.get());
    }
    if !seqs.is_empty() {
        execute_cached(
            transaction,
            "INSERT INTO meals (site, service_date, kiosk_at, device, seq, service, meal_type,
                                account, pupil, via_card, via_staff, price)
             SELECT $1, u.service_date, u.kiosk_at, $2, u.seq, u.service, u.meal_type,
                    u.account, u.pupil, u.via_card, u.via_staff, u.price
             FROM UNNEST($3::TEXT[], $4::BIGINT[], $5::BIGINT[], $6::TEXT[], $7::TEXT[],
                         $8::TEXT[], $9::TEXT[], $10::TEXT[], $11::TEXT[], $12::BIGINT[])
                  AS u (service_date, kiosk_at, seq, service, meal_type, account, pupil,
                        via_card, via_staff, price)",
            &[
                &device.site.as_str(),
                &device.id.as_str(),
                &service_dates,
                &kiosk_ats,
                &seqs,
                &services,
                &meal_types,
                &accounts,
                &pupils,
                &via_cards,
                &via_staff,
                &prices,
            ],
        )
        .await?;
    }
    // Meals voided by this batch but stored before it: read first, the rule needs no I/O.
    let in_batch: std::collections::BTreeSet<Seq> = append.iter().map(Record::seq).collect();
    let mut stored = BTreeMap::new();
    for movement in &after.movements {
        if let Some(voided) = movement.reverses
            && !in_batch.contains(&voided)
        {
            let row = query_opt_cached(
                transaction,
                "SELECT payload FROM records WHERE device = $1 AND seq = $2",
                &[&device.id.as_str(), &seq_to_i64(voided)?],
            )
            .await?;
            let meal = row.and_then(|row| crate::meal_days::meal_of(row.get(0)));
            stored.insert(voided, meal);
        }
    }
    let days = crate::meal_days::changes(append, &after.movements, |seq| {
        Ok::<_, StoreError>(stored.get(&seq).cloned().flatten())
    })?;
    for (date, change) in days {
        execute_cached(
            transaction,
            "INSERT INTO meal_days (site, service_date, meals, revenue) VALUES ($1, $2, $3, $4)
             ON CONFLICT (site, service_date) DO UPDATE SET
                meals = meal_days.meals + excluded.meals,
                revenue = meal_days.revenue + excluded.revenue",
            &[
                &device.site.as_str(),
                &date.to_string(),
                &change.meals,
                &change.revenue_cents,
            ],
        )
        .await?;
    }
    Ok(())
}

/// Pupils' rows with their cards.
async fn pupil_entries(
    transaction: &deadpool_postgres::Transaction<'_>,
    rows: Vec<tokio_postgres::Row>,
) -> Result<Vec<PupilEntry>, StoreError> {
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let id: &str = row.get(0);
        let cards = transaction
            .query(
                "SELECT uid, blocked FROM cards WHERE holder_kind = 'pupil' AND holder = $1
                 ORDER BY blocked, uid",
                &[&id],
            )
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|card| (card.get::<_, Vec<u8>>(0), card.get::<_, bool>(1)))
            .collect();
        entries.push(web::pupil_entry(row.get(1), row.get(2), cards)?);
    }
    Ok(entries)
}
