//! The client API both databases implement, and nothing more: statements with positional
//! parameters, rows read by column index, transactions. Every statement of the back-office is
//! written once above this (the storage traits of [`super::rows`]), with the few places where
//! SQLite's and PostgreSQL's SQL differ side by side; [`super::sqlite`] and [`super::postgres`]
//! only carry statements to their database and rows back.
//!
//! Parameters are written `$1`, `$2`, ... in both dialects. PostgreSQL reads them by number;
//! SQLite reads `$1` as a parameter named "$1" and numbers parameters in the order they first
//! appear, so every statement names them in ascending order of first use, which the SQLite
//! client checks before it runs one.

use std::future::Future;

use super::StoreError;

/// Which SQL a statement must be written in, where the two differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The statement (or anything else) for this dialect.
    pub fn pick<T>(self, sqlite: T, postgres: T) -> T {
        match self {
            Dialect::Sqlite => sqlite,
            Dialect::Postgres => postgres,
        }
    }
}

/// A parameter of a statement. The list forms are for PostgreSQL's `UNNEST` and `ANY`, which
/// SQLite lacks; SQLite's statements take one row at a time instead ([`Sql::write_batch`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Bool(bool),
    Text(String),
    Bytes(Vec<u8>),
    Ints(Vec<i64>),
    OptInts(Vec<Option<i64>>),
    Texts(Vec<String>),
    OptTexts(Vec<Option<String>>),
    Blobs(Vec<Vec<u8>>),
}

impl From<i64> for Value {
    fn from(value: i64) -> Value {
        Value::Int(value)
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Value {
        Value::Bool(value)
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Value {
        Value::Text(value.to_owned())
    }
}

impl From<String> for Value {
    fn from(value: String) -> Value {
        Value::Text(value)
    }
}

impl From<&[u8]> for Value {
    fn from(value: &[u8]) -> Value {
        Value::Bytes(value.to_vec())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Value {
        value.map_or(Value::Null, Into::into)
    }
}

/// A statement's parameters: `values![a, b]` is `vec![Value::from(a), Value::from(b)]`.
macro_rules! values {
    ($($value:expr),* $(,)?) => {
        vec![$($crate::store::sql::Value::from($value)),*]
    };
}
pub(crate) use values;

/// A row of either database, read by column index. A column of another type than asked is
/// [`StoreError::Corrupt`]: the schema and the statement disagree.
pub trait Row {
    fn int(&self, column: usize) -> Result<i64, StoreError>;
    fn opt_int(&self, column: usize) -> Result<Option<i64>, StoreError>;
    fn bool(&self, column: usize) -> Result<bool, StoreError>;
    fn text(&self, column: usize) -> Result<String, StoreError>;
    fn opt_text(&self, column: usize) -> Result<Option<String>, StoreError>;
    fn bytes(&self, column: usize) -> Result<Vec<u8>, StoreError>;
}

/// How a row becomes a value: a plain function, so that it can travel to SQLite's thread.
pub type Read<T> = fn(&dyn Row) -> Result<T, StoreError>;

/// Statements and rows on one connection, inside the transaction it holds (or, for
/// [`super::Mode::Single`], each statement its own).
pub trait Sql: Send {
    fn dialect(&self) -> Dialect;

    /// The rows of a query, each read by `read`.
    fn query<T: Send + 'static>(
        &mut self,
        sql: &str,
        parameters: Vec<Value>,
        read: Read<T>,
    ) -> impl Future<Output = Result<Vec<T>, StoreError>> + Send;

    /// A statement that returns no rows; the number of rows it changed.
    fn execute(
        &mut self,
        sql: &str,
        parameters: Vec<Value>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The same statement once per parameter list, in order; the rows changed in all.
    fn execute_each(
        &mut self,
        sql: &str,
        each: Vec<Vec<Value>>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Statements without parameters, separated by `;` (a migration).
    fn batch(&mut self, sql: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The row of a query that finds one row or none, read by `read`.
    fn query_optional<T: Send + 'static>(
        &mut self,
        sql: &str,
        parameters: Vec<Value>,
        read: Read<T>,
    ) -> impl Future<Output = Result<Option<T>, StoreError>> + Send {
        async move { at_most_one(self.query(sql, parameters, read).await?) }
    }

    /// The row of a query that always finds exactly one (a count, a sum, a counter).
    fn query_one<T: Send + 'static>(
        &mut self,
        sql: &str,
        parameters: Vec<Value>,
        read: Read<T>,
    ) -> impl Future<Output = Result<T, StoreError>> + Send {
        async move { one(self.query(sql, parameters, read).await?) }
    }

    /// A statement run for what it writes, however many rows that is.
    fn write(
        &mut self,
        sql: &str,
        parameters: Vec<Value>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move { self.execute(sql, parameters).await.map(drop) }
    }

    /// [`Sql::write`] once per item, in order, with the parameters `row` makes of it.
    fn write_rows<I>(
        &mut self,
        sql: &str,
        items: impl IntoIterator<Item = I>,
        row: impl FnMut(I) -> Vec<Value>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let each = items.into_iter().map(row).collect();
        async move { self.execute_each(sql, each).await.map(drop) }
    }

    /// A batch of rows written as each database writes a batch best: SQLite runs `sqlite` once
    /// per item with the parameters `row` makes of it; PostgreSQL runs `postgres` once with one
    /// array per column that `columns` makes of all items (for `UNNEST`), a round trip per batch
    /// rather than per row. An empty batch writes nothing.
    fn write_batch<'s, I>(
        &mut self,
        items: &[I],
        sqlite: &'s str,
        row: impl FnMut(&I) -> Vec<Value>,
        postgres: &'s str,
        columns: impl FnOnce(&[I]) -> Vec<Value>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let (sql, each) = match self.dialect() {
            _ if items.is_empty() => (sqlite, Vec::new()),
            Dialect::Sqlite => (sqlite, items.iter().map(row).collect()),
            Dialect::Postgres => (postgres, vec![columns(items)]),
        };
        async move { self.execute_each(sql, each).await.map(drop) }
    }

    /// An insert of a new key: a key already taken (any constraint refusing the row) is
    /// [`StoreError::AlreadyExists`] for the `what` named `id`.
    fn insert_new(
        &mut self,
        sql: &str,
        parameters: Vec<Value>,
        what: &'static str,
        id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            match self.execute(sql, parameters).await {
                Err(StoreError::Constraint(_)) => Err(StoreError::AlreadyExists {
                    what,
                    id: id.to_owned(),
                }),
                other => other.map(drop),
            }
        }
    }

    /// An update of a row that must exist: changing no row is [`StoreError::NotFound`] for the
    /// `what` named `id`.
    fn update_existing(
        &mut self,
        sql: &str,
        parameters: Vec<Value>,
        what: &'static str,
        id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            if self.execute(sql, parameters).await? == 0 {
                return Err(StoreError::NotFound {
                    what,
                    id: id.to_owned(),
                });
            }
            Ok(())
        }
    }
}

/// Everything [`Sql::query`] returns, expecting at most one row.
pub fn at_most_one<T>(mut rows: Vec<T>) -> Result<Option<T>, StoreError> {
    if rows.len() > 1 {
        return Err(StoreError::Corrupt(format!(
            "{} rows where one at most was expected",
            rows.len()
        )));
    }
    Ok(rows.pop())
}

/// Exactly one row.
pub fn one<T>(rows: Vec<T>) -> Result<T, StoreError> {
    at_most_one(rows)?.ok_or_else(|| StoreError::Corrupt("no row where one was expected".into()))
}
