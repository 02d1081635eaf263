//! The host's database, as apps use it.
//!
//! The host holds the only SQLite in the process (one file under its data
//! directory, WAL mode, foreign keys on) and runs the statements apps send;
//! apps never link SQLite themselves (two copies of SQLite on one file can
//! corrupt it). Get the handle with [`Mount::db`](super::Mount::db).
//!
//! ```no_run
//! use app_api::{prelude::*, params, sdk::db::Db};
//!
//! fn titles(db: &Db) -> Result<Vec<String>, Error> {
//!     let rows = db.query("SELECT title FROM posts WHERE published = ?1 ORDER BY id", params![true])?;
//!     rows.iter().map(|row| row.get::<String>("title")).collect()
//! }
//! ```
//!
//! # The SQL contract
//!
//! The SQL apps send must stay portable, so that the same service can be
//! backed by PostgreSQL later with apps unchanged:
//!
//! - **numbered placeholders only**: `?1`, `?2`, ... (never `?` alone, and
//!   never `$1`: SQLite binds `$`-names by first appearance, so
//!   `SELECT $2, $1` silently swaps the values);
//! - **no `AUTOINCREMENT`**: `id INTEGER PRIMARY KEY` and `RETURNING id` to
//!   learn a new row's id;
//! - **booleans are stored as 0 and 1** (bind `bool`, read `bool`);
//! - **upserts with `INSERT ... ON CONFLICT (...) DO UPDATE ... RETURNING`**;
//! - times as integers (Unix seconds) or ISO 8601 text.
//!
//! One performance rule: write `LIMIT` and `OFFSET` numbers into the SQL
//! (they are the app's own integers) rather than binding them. SQLite treats
//! a bound `LIMIT` as a constant of the plan and re-prepares the statement
//! on every run (measured: 16 µs instead of 2.5 µs for a small query).
//!
//! A [`transaction`](Db::transaction) is a list of statements that commits or
//! rolls back as one; decide in SQL (`INSERT ... SELECT`, `WHERE NOT EXISTS`)
//! rather than between statements. Schema changes go through
//! [`migrate`](Db::migrate), which runs each step once per database.
//!
//! Errors come back as values ([`DbError`]) with the database's message;
//! a failed `UNIQUE` constraint is [`DbErrorKind::Constraint`].

use std::{fmt, sync::Arc};

use abi_stable::std_types::{RResult, RSlice, RStr, RString, RVec};

use super::Error;
use crate::abi::{self, DbStatement, HostServices};

pub use crate::abi::DbValue as Value;

/// Builds a parameter list from values of mixed types:
/// `params![title, 42, true, None::<String>]`.
#[macro_export]
macro_rules! params {
    () => { &[] as &[$crate::sdk::db::Value] };
    ($($value:expr),+ $(,)?) => {
        &[$($crate::sdk::db::Value::from($value)),+] as &[$crate::sdk::db::Value]
    };
}

/// The host's database service for one app instance.
#[derive(Clone)]
pub struct Db {
    host: Arc<HostServices>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Db")
    }
}

impl Db {
    pub(crate) fn new(host: Arc<HostServices>) -> Db {
        Db { host }
    }

    /// Runs one statement and returns its rows (none for most writes).
    pub fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, DbError> {
        let result = self
            .host
            .db_query(RStr::from_str(sql), RSlice::from_slice(params));
        into_result(result).map(Rows::from_abi)
    }

    /// Runs one statement and returns how many rows it changed.
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        self.query(sql, params).map(|rows| rows.rows_affected)
    }

    /// Runs statements in one transaction: every one commits, or none.
    /// Returns each statement's rows, in order.
    pub fn transaction(&self, statements: &[Statement]) -> Result<Vec<Rows>, DbError> {
        let statements: Vec<DbStatement> = statements
            .iter()
            .map(|statement| DbStatement {
                sql: statement.sql.as_str().into(),
                params: statement.params.iter().cloned().collect(),
            })
            .collect();
        let result = self.host.db_transaction(RSlice::from_slice(&statements));
        into_result(result).map(|all| all.into_iter().map(Rows::from_abi).collect())
    }

    /// Brings the schema up to date: step `i` (counting from 1) is the SQL
    /// that takes the database from version `i - 1` to `i` (kept in
    /// `PRAGMA user_version`). Steps already applied are skipped; each new
    /// one runs in its own transaction, and concurrent callers (two apps
    /// starting at once) wait for each other. Never edit a released step:
    /// append a new one. Returns the version found before.
    pub fn migrate(&self, steps: &[&str]) -> Result<u32, DbError> {
        let steps: Vec<RStr<'_>> = steps.iter().map(|step| RStr::from_str(step)).collect();
        into_result(self.host.db_migrate(RSlice::from_slice(&steps)))
    }
}

fn into_result<T>(result: RResult<T, abi::DbError>) -> Result<T, DbError> {
    result.into_result().map_err(|error| DbError {
        kind: match error.kind.as_str() {
            "constraint" => DbErrorKind::Constraint,
            "busy" => DbErrorKind::Busy,
            "sql" => DbErrorKind::Sql,
            _ => DbErrorKind::Other,
        },
        message: error.message.into(),
    })
}

/// One statement of a [transaction](Db::transaction).
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    sql: String,
    params: Vec<Value>,
}

impl Statement {
    /// A statement with its parameters (`?1`, `?2`, ...).
    pub fn new(sql: impl Into<String>, params: &[Value]) -> Statement {
        Statement {
            sql: sql.into(),
            params: params.to_vec(),
        }
    }
}

/// What kind of database error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbErrorKind {
    /// A `UNIQUE`, `FOREIGN KEY`, `CHECK` or `NOT NULL` constraint failed.
    Constraint,
    /// The database stayed locked for longer than the busy timeout.
    Busy,
    /// The statement is wrong (syntax, unknown table or column, parameters).
    Sql,
    /// Anything else (disk full, no database service, ...).
    Other,
}

/// A database error, with the database's own message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError {
    /// What kind.
    pub kind: DbErrorKind,
    /// The message, e.g. `UNIQUE constraint failed: posts.slug`.
    pub message: String,
}

impl DbError {
    /// Whether a constraint failed (a duplicate key, a missing reference).
    pub fn is_constraint(&self) -> bool {
        self.kind == DbErrorKind::Constraint
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "database error: {}", self.message)
    }
}

impl std::error::Error for DbError {}

/// The rows a statement returned.
///
/// Kept as the host sent them: copying them into the app's own vectors
/// took an allocation per row and per column name, and a copy of each.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rows {
    columns: RVec<RString>,
    rows: RVec<RVec<Value>>,
    rows_affected: u64,
}

impl Rows {
    fn from_abi(rows: abi::DbRows) -> Rows {
        let abi::DbRows {
            columns,
            rows,
            rows_affected,
        } = rows;
        Rows {
            columns,
            rows,
            rows_affected,
        }
    }

    /// How many rows came back.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row came back.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// How many rows an `INSERT`, `UPDATE` or `DELETE` changed.
    pub fn rows_affected(&self) -> u64 {
        self.rows_affected
    }

    /// The rows in order.
    pub fn iter(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(|values| Row {
            columns: &self.columns,
            values,
        })
    }

    /// The first row, if any.
    pub fn first(&self) -> Option<Row<'_>> {
        self.iter().next()
    }
}

/// One row, read by column name.
#[derive(Debug, Clone, Copy)]
pub struct Row<'r> {
    columns: &'r [RString],
    values: &'r [Value],
}

impl Row<'_> {
    /// The value of a column, converted; an unknown column or a value of
    /// another type is an error naming the column.
    pub fn get<T: FromValue>(&self, column: &str) -> Result<T, Error> {
        let index = self
            .columns
            .iter()
            .position(|name| name.as_str() == column)
            .ok_or_else(|| Error::internal(format!("no column {column:?} in the result")))?;
        T::from_value(&self.values[index]).ok_or_else(|| {
            Error::internal(format!(
                "column {column:?}: unexpected {:?}",
                self.values[index]
            ))
        })
    }
}

/// Values a column can be read as.
pub trait FromValue: Sized {
    /// The value as `Self`, if it has the right type.
    fn from_value(value: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Option<i64> {
        match value {
            Value::Integer(number) => Some(*number),
            _ => None,
        }
    }
}

impl FromValue for u64 {
    fn from_value(value: &Value) -> Option<u64> {
        i64::from_value(value).and_then(|number| u64::try_from(number).ok())
    }
}

impl FromValue for u32 {
    fn from_value(value: &Value) -> Option<u32> {
        i64::from_value(value).and_then(|number| u32::try_from(number).ok())
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Option<bool> {
        i64::from_value(value).map(|number| number != 0)
    }
}

impl FromValue for f64 {
    fn from_value(value: &Value) -> Option<f64> {
        match value {
            Value::Real(number) => Some(*number),
            Value::Integer(number) => Some(*number as f64),
            _ => None,
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Option<String> {
        match value {
            Value::Text(text) => Some(text.to_string()),
            _ => None,
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> Option<Vec<u8>> {
        match value {
            Value::Blob(bytes) => Some(bytes.to_vec()),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Option<Option<T>> {
        match value {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl From<i64> for Value {
    fn from(number: i64) -> Value {
        Value::Integer(number)
    }
}

impl From<i32> for Value {
    fn from(number: i32) -> Value {
        Value::Integer(number.into())
    }
}

impl From<u32> for Value {
    fn from(number: u32) -> Value {
        Value::Integer(number.into())
    }
}

impl From<u64> for Value {
    /// Values above `i64::MAX` are stored as `i64::MAX`.
    fn from(number: u64) -> Value {
        Value::Integer(i64::try_from(number).unwrap_or(i64::MAX))
    }
}

impl From<usize> for Value {
    /// Values above `i64::MAX` are stored as `i64::MAX`.
    fn from(number: usize) -> Value {
        Value::Integer(i64::try_from(number).unwrap_or(i64::MAX))
    }
}

impl From<bool> for Value {
    fn from(flag: bool) -> Value {
        Value::Integer(flag.into())
    }
}

impl From<f64> for Value {
    fn from(number: f64) -> Value {
        Value::Real(number)
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value::Text(text.into())
    }
}

impl From<&String> for Value {
    fn from(text: &String) -> Value {
        Value::Text(text.as_str().into())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value::Text(RString::from(text))
    }
}

impl From<&[u8]> for Value {
    fn from(bytes: &[u8]) -> Value {
        Value::Blob(RVec::from(bytes))
    }
}

impl From<Vec<u8>> for Value {
    fn from(bytes: Vec<u8>) -> Value {
        Value::Blob(RVec::from(bytes))
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Value {
        value.map_or(Value::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_convert_both_ways() {
        let row_columns = [
            RString::from("n"),
            RString::from("flag"),
            RString::from("name"),
            RString::from("none"),
        ];
        let values: Vec<Value> = params![7, true, "ann", None::<i64>].to_vec();
        let row = Row {
            columns: &row_columns,
            values: &values,
        };
        assert_eq!(row.get::<i64>("n").unwrap(), 7);
        assert!(row.get::<bool>("flag").unwrap());
        assert_eq!(row.get::<String>("name").unwrap(), "ann");
        assert_eq!(row.get::<Option<i64>>("none").unwrap(), None);
        assert!(
            row.get::<i64>("name")
                .unwrap_err()
                .message()
                .contains("\"name\"")
        );
        assert!(
            row.get::<i64>("missing")
                .unwrap_err()
                .message()
                .contains("no column")
        );
    }
}
