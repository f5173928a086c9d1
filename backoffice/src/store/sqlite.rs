//! The SQLite client: one connection, owned by a thread of its own that runs statements in the
//! order they come. A transaction holds the connection (an async mutex) from `BEGIN` to its end,
//! so SQLite's one writer at a time is also the back-office's; a statement that panics is
//! answered with an error and its transaction rolled back, and the thread serves the next one.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

use super::sql::{Dialect, Read, Row, Sql, Value};
use super::{Mode, Store, StoreError, Transaction};
use crate::limits::{SQLITE_BUSY_TIMEOUT_MS, SQLITE_CONNECTION_WAIT_MS};

/// Work for the connection's thread.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// The back-office's data in one SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// The way to the connection's thread. A tokio mutex: a transaction holds it across awaits,
    /// from `BEGIN` to `COMMIT`.
    jobs: Arc<Mutex<mpsc::Sender<Job>>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (opened, open) = oneshot::channel();
        let path = path.to_owned();
        std::thread::Builder::new()
            .name("sqlite-store".to_owned())
            .spawn(move || match connect(&path) {
                Ok(connection) => {
                    let _ = opened.send(Ok(()));
                    serve(connection, &queue);
                }
                Err(error) => {
                    let _ = opened.send(Err(error));
                }
            })
            .map_err(|error| StoreError::Unavailable(format!("database thread: {error}")))?;
        open.await.map_err(|_| thread_gone())??;
        let store = SqliteStore {
            jobs: Arc::new(Mutex::new(jobs)),
        };
        super::migrate(&store).await?;
        Ok(store)
    }
}

/// Opens the file with explicit pragmas, not defaults: durability before speed, references
/// enforced, and a writer waits for another process's lock instead of failing at once.
fn connect(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open(path).map_err(unavailable)?;
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
        .busy_timeout(Duration::from_millis(SQLITE_BUSY_TIMEOUT_MS))
        .map_err(unavailable)?;
    Ok(connection)
}

/// The connection's thread: runs jobs until every store handle is gone. A job that panics
/// drops its answer (its caller gets an error) and leaves no transaction open behind it.
fn serve(mut connection: Connection, queue: &mpsc::Receiver<Job>) {
    while let Ok(job) = queue.recv() {
        let done = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut connection)));
        if done.is_err() && !connection.is_autocommit() {
            let _ = connection.execute_batch("ROLLBACK");
        }
    }
}

impl Store for SqliteStore {
    type Tx = SqliteTx;

    async fn begin(&self, mode: Mode) -> Result<SqliteTx, StoreError> {
        let wait = Duration::from_millis(SQLITE_CONNECTION_WAIT_MS);
        let jobs = tokio::time::timeout(wait, Arc::clone(&self.jobs).lock_owned())
            .await
            .map_err(|_| {
                StoreError::Unavailable("the database stayed busy: try again later".to_owned())
            })?;
        let mut transaction = SqliteTx {
            jobs,
            open: false,
            broken: false,
        };
        let begin = match mode {
            Mode::Single => return Ok(transaction),
            Mode::Read => "BEGIN DEFERRED",
            Mode::Write => "BEGIN IMMEDIATE",
        };
        transaction.batch(begin).await?;
        transaction.open = true;
        Ok(transaction)
    }
}

/// The connection, held from `BEGIN` to `COMMIT` or `ROLLBACK` (sent when dropped unfinished).
#[derive(Debug)]
pub struct SqliteTx {
    jobs: OwnedMutexGuard<mpsc::Sender<Job>>,
    /// A transaction is open on the connection.
    open: bool,
    /// A statement of this transaction panicked: the thread rolled it back, so nothing more may
    /// run in it.
    broken: bool,
}

impl SqliteTx {
    /// Runs `work` on the connection's thread.
    async fn call<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if self.broken {
            return Err(StoreError::Unavailable(
                "the transaction was rolled back after a failure".to_owned(),
            ));
        }
        let (answer, answered) = oneshot::channel();
        self.jobs
            .send(Box::new(move |connection| {
                let _ = answer.send(work(connection));
            }))
            .map_err(|_| thread_gone())?;
        match answered.await {
            Ok(result) => result,
            Err(_) => {
                self.broken = true;
                Err(StoreError::Unavailable(
                    "a database statement failed unexpectedly".to_owned(),
                ))
            }
        }
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if self.open {
            // Queued before the connection is let go: the next transaction starts clean.
            let _ = self.jobs.send(Box::new(|connection: &mut Connection| {
                if !connection.is_autocommit() {
                    let _ = connection.execute_batch("ROLLBACK");
                }
            }));
        }
    }
}

impl Transaction for SqliteTx {
    fn is_open(&self) -> bool {
        self.open
    }

    fn set_ended(&mut self) {
        self.open = false;
    }
}

impl Sql for SqliteTx {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn query<T: Send + 'static>(
        &mut self,
        sql: &str,
        parameters: Vec<Value>,
        read: Read<T>,
    ) -> Result<Vec<T>, StoreError> {
        let sql = sql.to_owned();
        self.call(move |connection| {
            let mut statement = prepare(connection, &sql)?;
            let mut rows = statement
                .query(rusqlite::params_from_iter(parameters.iter()))
                .map_err(unavailable)?;
            let mut read_rows = Vec::new();
            while let Some(row) = rows.next().map_err(unavailable)? {
                read_rows.push(read(row)?);
            }
            Ok(read_rows)
        })
        .await
    }

    async fn execute(&mut self, sql: &str, parameters: Vec<Value>) -> Result<u64, StoreError> {
        self.execute_each(sql, vec![parameters]).await
    }

    async fn execute_each(&mut self, sql: &str, each: Vec<Vec<Value>>) -> Result<u64, StoreError> {
        if each.is_empty() {
            return Ok(0);
        }
        let sql = sql.to_owned();
        self.call(move |connection| {
            let mut statement = prepare(connection, &sql)?;
            let mut changed = 0_u64;
            for parameters in &each {
                let rows = statement
                    .execute(rusqlite::params_from_iter(parameters.iter()))
                    .map_err(unavailable)?;
                changed += u64::try_from(rows).unwrap_or(u64::MAX);
            }
            Ok(changed)
        })
        .await
    }

    async fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        let sql = sql.to_owned();
        self.call(move |connection| connection.execute_batch(&sql).map_err(unavailable))
            .await
    }
}

/// A statement from the connection's cache, checked to number its parameters `$1`, `$2`, ... in
/// order of first use, as SQLite numbers them (see [`super::sql`]).
fn prepare<'c>(
    connection: &'c Connection,
    sql: &str,
) -> Result<rusqlite::CachedStatement<'c>, StoreError> {
    let statement = connection.prepare_cached(sql).map_err(unavailable)?;
    for index in 1..=statement.parameter_count() {
        let number = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|number| number.parse::<usize>().ok());
        if number != Some(index) {
            return Err(StoreError::Corrupt(format!(
                "parameter {index} of {sql:?} is not ${index}"
            )));
        }
    }
    Ok(statement)
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(value) => ToSqlOutput::Borrowed(ValueRef::Integer(*value)),
            Value::Bool(value) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*value))),
            Value::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Value::Bytes(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
            Value::Ints(_)
            | Value::OptInts(_)
            | Value::Texts(_)
            | Value::OptTexts(_)
            | Value::Blobs(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    "SQLite takes no lists: one statement a row".into(),
                ));
            }
        })
    }
}

impl Row for rusqlite::Row<'_> {
    fn int(&self, column: usize) -> Result<i64, StoreError> {
        self.get(column).map_err(column_error)
    }

    fn opt_int(&self, column: usize) -> Result<Option<i64>, StoreError> {
        self.get(column).map_err(column_error)
    }

    fn bool(&self, column: usize) -> Result<bool, StoreError> {
        Ok(self.get::<_, i64>(column).map_err(column_error)? != 0)
    }

    fn text(&self, column: usize) -> Result<String, StoreError> {
        self.get(column).map_err(column_error)
    }

    fn opt_text(&self, column: usize) -> Result<Option<String>, StoreError> {
        self.get(column).map_err(column_error)
    }

    fn bytes(&self, column: usize) -> Result<Vec<u8>, StoreError> {
        self.get(column).map_err(column_error)
    }
}

fn column_error(error: rusqlite::Error) -> StoreError {
    StoreError::Corrupt(format!("column: {error}"))
}

fn unavailable(error: rusqlite::Error) -> StoreError {
    if error.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) {
        return StoreError::Constraint(error.to_string());
    }
    StoreError::Unavailable(error.to_string())
}

fn thread_gone() -> StoreError {
    StoreError::Unavailable("the database thread has stopped".to_owned())
}
