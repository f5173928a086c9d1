//! The PostgreSQL client: a bounded pool of connections, one held by each transaction. Several
//! back-office instances may share one database: writers that touch the same rows take turns
//! through row locks the statements take (see [`super::rows`]). Connections are encrypted and
//! the server checked, or plain text, as the URL says ([`tls`]).

pub mod tls;

use std::error::Error;
use std::time::Duration;

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::private::BytesMut;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::sql::{Dialect, Read, Row, Sql, Value};
use super::{Mode, Store, StoreError, Transaction};
use crate::limits::{
    POSTGRES_CONNECT_TIMEOUT_MS, POSTGRES_POOL_CONNECTIONS_MAX, POSTGRES_POOL_WAIT_MS,
};
use tls::{Encryption, PostgresUrl};

/// The back-office's data in a PostgreSQL database.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: Pool,
}

impl PostgresStore {
    /// Connects to `url` and brings the schema up to date. The URL's `sslmode` and
    /// `sslrootcert` say whether the connections are encrypted (see [`tls`]);
    /// settings that could leave them unencrypted unexpectedly are refused here.
    pub async fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let url_error = |error: String| StoreError::Unavailable(format!("database url: {error}"));
        let url = PostgresUrl::parse(url).map_err(url_error)?;
        let plain_remote_hosts = url.plain_remote_hosts();
        let pool = Pool::builder(manager(url).map_err(url_error)?)
            .max_size(POSTGRES_POOL_CONNECTIONS_MAX)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_millis(POSTGRES_POOL_WAIT_MS)))
            .create_timeout(Some(Duration::from_millis(POSTGRES_CONNECT_TIMEOUT_MS)))
            .build()
            .map_err(|error| StoreError::Unavailable(error.to_string()))?;
        let store = PostgresStore { pool };
        super::migrate(&store).await?;
        if !plain_remote_hosts.is_empty() {
            tracing::warn!(
                hosts = ?plain_remote_hosts,
                "the connection to PostgreSQL is not encrypted: add \
                 sslmode=verify-full&sslrootcert=/path/to/ca.pem to the database url"
            );
        }
        Ok(store)
    }
}

/// Makes the pool's connections: in plain text, or over TLS checked against the URL's CA file.
fn manager(url: PostgresUrl) -> Result<Manager, String> {
    let PostgresUrl {
        mut config,
        encryption,
    } = url;
    config.connect_timeout(Duration::from_millis(POSTGRES_CONNECT_TIMEOUT_MS));
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    Ok(match encryption {
        Encryption::Plain => Manager::from_config(config, tokio_postgres::NoTls, manager_config),
        Encryption::Verified { ca_file } => {
            Manager::from_config(config, tls::connector(&ca_file)?, manager_config)
        }
    })
}

impl Store for PostgresStore {
    type Tx = PostgresTx;

    async fn begin(&self, mode: Mode) -> Result<PostgresTx, StoreError> {
        let client = self.pool.get().await.map_err(|error| match error {
            // A connection refused (by the server, by its certificate) says why below.
            PoolError::Backend(error) => unavailable(error),
            error => StoreError::Unavailable(error.to_string()),
        })?;
        let mut transaction = PostgresTx {
            client: Some(client),
            open: false,
        };
        let begin = match mode {
            Mode::Single => return Ok(transaction),
            // One consistent view: every row from the same state of the database.
            Mode::Read => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            Mode::Write => "BEGIN",
        };
        transaction.batch(begin).await?;
        transaction.open = true;
        Ok(transaction)
    }
}

/// A pooled connection, held from `BEGIN` to `COMMIT` or `ROLLBACK`. Dropped unfinished (a
/// request cancelled, a panic), it is rolled back before it returns to the pool.
#[derive(Debug)]
pub struct PostgresTx {
    /// Always present until dropped.
    client: Option<Object>,
    open: bool,
}

impl PostgresTx {
    fn client(&self) -> Result<&Object, StoreError> {
        self.client
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("the connection is gone".to_owned()))
    }
}

impl Drop for PostgresTx {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if !self.open {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if client.batch_execute("ROLLBACK").await.is_err() {
                        // Closed rather than pooled in an unknown state.
                        drop(Object::take(client));
                    }
                });
            }
            Err(_) => drop(Object::take(client)),
        }
    }
}

impl Transaction for PostgresTx {
    fn is_open(&self) -> bool {
        self.open
    }

    fn set_ended(&mut self) {
        self.open = false;
    }
}

impl Sql for PostgresTx {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn query<T: Send + 'static>(
        &mut self,
        sql: &str,
        parameters: Vec<Value>,
        read: Read<T>,
    ) -> Result<Vec<T>, StoreError> {
        let client = self.client()?;
        // Every request runs the same few statements: prepared once per connection.
        let statement = client.prepare_cached(sql).await.map_err(unavailable)?;
        let rows = client
            .query(&statement, &references(&parameters))
            .await
            .map_err(unavailable)?;
        rows.iter().map(|row| read(row)).collect()
    }

    async fn execute(&mut self, sql: &str, parameters: Vec<Value>) -> Result<u64, StoreError> {
        let client = self.client()?;
        let statement = client.prepare_cached(sql).await.map_err(unavailable)?;
        client
            .execute(&statement, &references(&parameters))
            .await
            .map_err(unavailable)
    }

    async fn execute_each(&mut self, sql: &str, each: Vec<Vec<Value>>) -> Result<u64, StoreError> {
        let mut changed = 0;
        for parameters in each {
            changed += self.execute(sql, parameters).await?;
        }
        Ok(changed)
    }

    async fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.client()?.batch_execute(sql).await.map_err(unavailable)
    }
}

fn references(parameters: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    parameters
        .iter()
        .map(|value| value as &(dyn ToSql + Sync))
        .collect()
}

/// `value` as the type PostgreSQL expects, or an error naming both.
fn typed<T: ToSql>(
    value: &T,
    ty: &Type,
    out: &mut BytesMut,
) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
    if !T::accepts(ty) {
        return Err(format!(
            "a {} parameter where {ty} is expected",
            std::any::type_name::<T>()
        )
        .into());
    }
    value.to_sql(ty, out)
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(value) => match *ty {
                Type::INT2 => typed(&i16::try_from(*value)?, ty, out),
                Type::INT4 => typed(&i32::try_from(*value)?, ty, out),
                _ => typed(value, ty, out),
            },
            Value::Bool(value) => typed(value, ty, out),
            Value::Text(text) => typed(text, ty, out),
            Value::Bytes(bytes) => typed(bytes, ty, out),
            Value::Ints(values) => typed(values, ty, out),
            Value::OptInts(values) => typed(values, ty, out),
            Value::Texts(values) => typed(values, ty, out),
            Value::OptTexts(values) => typed(values, ty, out),
            Value::Blobs(values) => typed(values, ty, out),
        }
    }

    /// Every type: [`typed`] checks the value against the one PostgreSQL asks for.
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl Row for tokio_postgres::Row {
    fn int(&self, column: usize) -> Result<i64, StoreError> {
        self.opt_int(column)?
            .ok_or_else(|| StoreError::Corrupt(format!("column {column}: null")))
    }

    fn opt_int(&self, column: usize) -> Result<Option<i64>, StoreError> {
        let ty = self
            .columns()
            .get(column)
            .map(|column| column.type_().clone());
        match ty {
            Some(Type::INT2) => Ok(get::<Option<i16>>(self, column)?.map(i64::from)),
            Some(Type::INT4) => Ok(get::<Option<i32>>(self, column)?.map(i64::from)),
            _ => get(self, column),
        }
    }

    fn bool(&self, column: usize) -> Result<bool, StoreError> {
        get(self, column)
    }

    fn text(&self, column: usize) -> Result<String, StoreError> {
        get(self, column)
    }

    fn opt_text(&self, column: usize) -> Result<Option<String>, StoreError> {
        get(self, column)
    }

    fn bytes(&self, column: usize) -> Result<Vec<u8>, StoreError> {
        get(self, column)
    }
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    column: usize,
) -> Result<T, StoreError> {
    row.try_get(column)
        .map_err(|error| StoreError::Corrupt(format!("column {column}: {error}")))
}

fn unavailable(error: tokio_postgres::Error) -> StoreError {
    // The server's own message says what went wrong; the error's Display only says "db error".
    let Some(db_error) = error.as_db_error() else {
        return StoreError::Unavailable(with_sources(&error));
    };
    let message = format!("{} ({})", db_error.message(), db_error.code().code());
    let code = db_error.code();
    if [
        SqlState::UNIQUE_VIOLATION,
        SqlState::FOREIGN_KEY_VIOLATION,
        SqlState::CHECK_VIOLATION,
        SqlState::NOT_NULL_VIOLATION,
    ]
    .contains(code)
    {
        return StoreError::Constraint(message);
    }
    StoreError::Unavailable(message)
}

/// `error` and what caused it: tokio-postgres's own message names only the kind of failure
/// ("error performing TLS handshake"), its sources say why ("invalid peer certificate: ...").
fn with_sources(error: &tokio_postgres::Error) -> String {
    let mut message = error.to_string();
    for source in std::iter::successors(error.source(), |&source| source.source()) {
        message.push_str(": ");
        message.push_str(&source.to_string());
    }
    message
}
