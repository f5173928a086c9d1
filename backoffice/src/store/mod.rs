//! Storage: SQL only, no decisions. Two layers:
//! - [`sql`]: the client API both databases implement (statements, rows, transactions), by
//!   [`SqliteStore`] (`sqlite.rs`) and [`PostgresStore`] (`postgres.rs`);
//! - [`rows`]: the storage traits every transaction has ([`DeviceRows`], [`ChainRows`],
//!   [`PeopleRows`], [`FinanceRows`], [`SessionRows`]), each method one or a few statements,
//!   written once for both databases with the dialects' differences side by side.
//!
//! Schemas are the numbered `.sql` files of `backoffice/migrations/{sqlite,postgres}`, applied in
//! order and recorded in `schema_migrations` ([`migrate`]). What a change means (who may make it,
//! what it does to balances, in which order rows are read and written) is decided above, in
//! `ingest`, `snapshot`, `manage`, `sign_in` and `reconcile`, which open a transaction with
//! [`Store::begin`] and end it with [`finish`].

pub mod postgres;
pub mod rows;
pub mod sql;
pub mod sqlite;

use std::future::Future;

pub use postgres::PostgresStore;
pub use rows::{
    AccountLine, Anomaly, AnomalyReason, ApiToken, BalanceMismatch, ChainRows, Device, DeviceEntry,
    DeviceRows, FinanceRows, KioskStatus, LedgerTotals, MealDay, NewAnomaly, Operation,
    OperationKind, PeopleRows, ProposedVoid, PupilEntry, SavedReconciliation, ServedMeal,
    SessionRows, Stamp, StoredOperation, StoredRecord, VoidStatus, WebSession,
};
pub use sql::Sql;
pub use sqlite::SqliteStore;

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
    /// A statement broke a constraint of the schema that its caller did not expect.
    #[error("refused by the database: {0}")]
    Constraint(String),
    /// What the database holds breaks an invariant of this crate (a bad migration, a hand edit).
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("database schema version {found} is newer than this software's {known}")]
    SchemaTooNew { found: i64, known: i64 },
    /// What is stored refuses the change (a day signed off, a decision taken, a balance that
    /// would leave its range); nothing was written.
    #[error("refused: {0}")]
    Refused(String),
}

/// How a transaction reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Writes, one writer at a time where rows are shared (SQLite: `BEGIN IMMEDIATE`).
    Write,
    /// Reads only, every row from one state of the database.
    Read,
    /// No transaction: each statement stands alone (one read that needs no other).
    Single,
}

/// A database: SQLite or PostgreSQL. Cheap to clone.
pub trait Store: Clone + Send + Sync + std::fmt::Debug + 'static {
    type Tx: Transaction;

    /// A connection to work on, in a transaction of `mode`.
    fn begin(&self, mode: Mode) -> impl Future<Output = Result<Self::Tx, StoreError>> + Send;
}

/// A connection inside a transaction, with every storage trait of [`rows`]. Dropped unfinished,
/// it is rolled back.
pub trait Transaction: Sql + std::fmt::Debug + Sized + 'static {
    /// A `BEGIN` waits for its `COMMIT` or `ROLLBACK` (never in [`Mode::Single`]).
    fn is_open(&self) -> bool;

    /// The `COMMIT` or `ROLLBACK` has run: dropped now, the transaction rolls nothing back.
    fn set_ended(&mut self);

    fn commit(self) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.end("COMMIT")
    }

    fn rollback(self) -> impl Future<Output = ()> + Send {
        async move {
            let _ = self.end("ROLLBACK").await;
        }
    }

    /// Ends an open transaction with `statement`. It counts as ended only once the statement
    /// returned: an end cancelled midway leaves it open, and dropped, rolled back.
    fn end(
        mut self,
        statement: &'static str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            if !self.is_open() {
                return Ok(());
            }
            let result = self.batch(statement).await;
            self.set_ended();
            result
        }
    }
}

/// Ends a transaction with what was done in it: commits a success, rolls back a failure.
pub async fn finish<X: Transaction, T, E: From<StoreError>>(
    transaction: X,
    result: Result<T, E>,
) -> Result<T, E> {
    match result {
        Ok(value) => {
            transaction.commit().await?;
            Ok(value)
        }
        Err(error) => {
            transaction.rollback().await;
            Err(error)
        }
    }
}

/// Whether the database answers.
pub async fn ping<S: Store>(store: &S) -> Result<(), StoreError> {
    let mut transaction = store.begin(Mode::Single).await?;
    transaction
        .query("SELECT 1", Vec::new(), |_| Ok(()))
        .await?;
    Ok(())
}

/// Schema versions, in order; version N is the N-th file. Never edit one that shipped.
const SQLITE_MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_devices_and_records.sql"),
    include_str!("../../migrations/sqlite/0002_snapshot_rows.sql"),
    include_str!("../../migrations/sqlite/0003_users_and_operations.sql"),
    include_str!("../../migrations/sqlite/0004_reconciliations.sql"),
    include_str!("../../migrations/sqlite/0005_web_sessions_and_meal_days.sql"),
    include_str!("../../migrations/sqlite/0006_meals.sql"),
    include_str!("../../migrations/sqlite/0007_sign_ins_by_client_and_disabled_users.sql"),
    include_str!("../../migrations/sqlite/0008_api_tokens.sql"),
];

const POSTGRES_MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_devices_and_records.sql"),
    include_str!("../../migrations/postgres/0002_snapshot_rows.sql"),
    include_str!("../../migrations/postgres/0003_users_and_operations.sql"),
    include_str!("../../migrations/postgres/0004_reconciliations.sql"),
    include_str!("../../migrations/postgres/0005_web_sessions_and_meal_days.sql"),
    include_str!("../../migrations/postgres/0006_meals.sql"),
    include_str!("../../migrations/postgres/0007_statement_checks.sql"),
    include_str!("../../migrations/postgres/0008_sign_ins_by_client_and_disabled_users.sql"),
    include_str!("../../migrations/postgres/0009_api_tokens.sql"),
];

/// Any number, the same in every instance: serializes migrations of one PostgreSQL database.
const MIGRATION_LOCK_KEY: i64 = 0x63616e_7465656e;

/// Brings the schema up to date in one transaction; a database newer than this software is
/// refused. Migrations are stamped by the database's own clock: when the schema changed is the
/// database's fact.
async fn migrate<S: Store>(store: &S) -> Result<(), StoreError> {
    let mut transaction = store.begin(Mode::Write).await?;
    let result = migrate_in(&mut transaction).await;
    finish(transaction, result).await
}

async fn migrate_in<X: Transaction>(transaction: &mut X) -> Result<(), StoreError> {
    let dialect = transaction.dialect();
    let migrations = dialect.pick(SQLITE_MIGRATIONS, POSTGRES_MIGRATIONS);
    if dialect == sql::Dialect::Postgres {
        transaction
            .execute(
                "SELECT pg_advisory_xact_lock($1)",
                sql::values![MIGRATION_LOCK_KEY],
            )
            .await?;
    }
    transaction
        .batch(dialect.pick(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY,
                applied_at INTEGER NOT NULL
            ) STRICT;",
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version BIGINT PRIMARY KEY,
                applied_at BIGINT NOT NULL
            )",
        ))
        .await?;
    let found = transaction
        .query_one(
            "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM schema_migrations",
            Vec::new(),
            |row| row.int(0),
        )
        .await?;
    let known = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    let stamp = dialect.pick(
        "INSERT INTO schema_migrations (version, applied_at)
         VALUES ($1, CAST(unixepoch('subsec') * 1000 AS INTEGER))",
        "INSERT INTO schema_migrations (version, applied_at)
         VALUES ($1, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT)",
    );
    for (version, migration) in (1_i64..)
        .zip(migrations)
        .skip(usize::try_from(found).unwrap_or(0))
    {
        transaction.batch(migration).await?;
        transaction.execute(stamp, sql::values![version]).await?;
    }
    Ok(())
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
