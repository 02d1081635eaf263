//! The host's databases, as apps use it.
//!
//! The host holds the only SQLite in the process and runs the statements
//! apps send; apps never link SQLite themselves (two copies of SQLite on
//! one file can corrupt it). Databases are named in the mount table
//! (`"databases": {"blog": {"url": "sqlite:blog.db"}}`), and a mount may use
//! those it lists (`"databases": ["blog"]`): the first is its default,
//! [`Mount::db`](super::Mount::db), the others come by name,
//! [`Mount::database`](super::Mount::database). A mount that lists none
//! has a database of its own, named after the mount and created on first
//! use, so a new section needs no database configuration at all.
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
//! The SQL apps send is portable: the host runs the same statements on
//! SQLite and on PostgreSQL (a `postgres://` database in the mount table),
//! translating placeholders and type names, so an app moves from one to the
//! other unchanged if it keeps to:
//!
//! - **numbered placeholders only**: `?1`, `?2`, ... (never `?` alone, and
//!   never `$1`: SQLite binds `$`-names by first appearance, so
//!   `SELECT $2, $1` silently swaps the values);
//! - **no `AUTOINCREMENT`**: `id INTEGER PRIMARY KEY` and `RETURNING id` to
//!   learn a new row's id;
//! - **booleans are stored as 0 and 1** (bind `bool`, read `bool`);
//! - **upserts with `INSERT ... ON CONFLICT (...) DO UPDATE ... RETURNING`**;
//! - times as integers (Unix seconds) or ISO 8601 text, made in Rust;
//! - **SQLite's type names** in migrations (`INTEGER`, `REAL`, `TEXT`,
//!   `BLOB`), which PostgreSQL reads as `BIGINT`, `DOUBLE PRECISION`, `TEXT`
//!   and `BYTEA`;
//! - **no function only one engine has** (`randomblob`, `strftime`,
//!   `now()`): random ids and times come from the app;
//! - `JOIN ... ON`, and a `CROSS JOIN`'s condition in `WHERE` (PostgreSQL
//!   allows no `ON` after `CROSS JOIN`).
//!
//! Transactions are serializable on both engines. On PostgreSQL two that
//! conflict make one fail, and the host runs that one again, whole, before
//! it reports `busy`.
//!
//! One performance rule: write `LIMIT` and `OFFSET` numbers into the SQL
//! (they are the app's own integers) rather than binding them. SQLite treats
//! a bound `LIMIT` as a constant of the plan and re-prepares the statement
//! on every run, several times the cost of the query itself.
//!
//! A [`transaction`](Db::transaction) is a list of statements that commits or
//! rolls back as one; decide in SQL (`INSERT ... SELECT`, `WHERE NOT EXISTS`)
//! rather than between statements. `BEGIN`, `COMMIT` and `SAVEPOINT` are
//! refused: connections are shared, and one left inside a transaction would
//! show every later caller an old snapshot.
//!
//! # Migrations belong to the app
//!
//! Schema changes go through [`migrate`](Db::migrate) with a namespace, by
//! convention the app's name: `db.migrate("guestbook", &STEPS)`. Step `i`
//! (from 1) runs once, in a transaction of its own, and the host records it
//! with a checksum of its text in a table of its own (`_host_migrations`)
//! in that database. Apps with different namespaces in one database never
//! interfere, in whatever order they start; two instances of one app, or
//! two processes during a reload, apply each step once. Never edit an
//! applied step, append a new one: a step whose text changed is an error
//! naming the namespace and the step, as is a history with more steps than
//! the app knows (an older build on a newer database).
//!
//! # What the host refuses
//!
//! `ATTACH`/`DETACH` (and `VACUUM`, which attaches), `load_extension()`,
//! PRAGMAs that change settings (`journal_mode = ...`; reading one, and
//! `table_info(...)`, `index_list(...)`, `foreign_key_check`,
//! `integrity_check`, `defer_foreign_keys = ON` and the like are fine),
//! transaction statements, temporary tables, and changes to the host's
//! `_host_*` tables come back as [`DbErrorKind::Refused`] saying why. Apps
//! are native code in the host's process: this guards against mistakes,
//! not against a malicious app.
//!
//! Errors come back as values ([`DbError`]) with the database's message;
//! a failed `UNIQUE` constraint is [`DbErrorKind::Constraint`].

use std::{fmt, sync::Arc};

use abi_stable::std_types::{RResult, RSlice, RStr, RString, RVec};

use super::Error;
use crate::abi::{self, DbStatement, Extension, HostServices};

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

/// One database of the host, as a mount may use it.
#[derive(Clone)]
pub struct Db {
    host: Arc<HostServices>,
    /// Its name; `None` on a host of contract 1.0, whose one site database
    /// is reached through the calls of that contract.
    name: Option<RString>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "Db({name:?})"),
            None => f.write_str("Db(the site database of a contract 1.0 host)"),
        }
    }
}

/// What [`Db::migrate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// Steps of the namespace applied before the call.
    pub before: u32,
    /// Steps applied after it. `host check` only looks: there it stays
    /// `before`, and the host reports the pending steps itself.
    pub after: u32,
}

impl Db {
    /// The database `name` (`""`: the mount's default) if the mount may
    /// use it.
    pub(crate) fn open(host: &Arc<HostServices>, name: &str) -> Result<Db, DbError> {
        match into_result(host.db_open(RStr::from_str(name))) {
            Ok(resolved) => Ok(Db {
                host: Arc::clone(host),
                name: Some(resolved),
            }),
            // a host of contract 1.0 has one database, every mount's default
            Err(error) if error.kind == DbErrorKind::Unsupported && name.is_empty() => Ok(Db {
                host: Arc::clone(host),
                name: None,
            }),
            Err(error) => Err(error),
        }
    }

    /// The database's name in the mount table.
    pub fn name(&self) -> &str {
        self.name.as_ref().map_or("", RString::as_str)
    }

    /// Runs one statement and returns its rows (none for most writes).
    pub fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, DbError> {
        let (sql, params) = (RStr::from_str(sql), RSlice::from_slice(params));
        let result = match &self.name {
            Some(name) => self.host.db_query_in(name.as_rstr(), sql, params),
            None => self.host.db_query(sql, params),
        };
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
        let statements = RSlice::from_slice(&statements);
        let result = match &self.name {
            Some(name) => self.host.db_transaction_in(name.as_rstr(), statements),
            None => self.host.db_transaction(statements),
        };
        into_result(result).map(|all| all.into_iter().map(Rows::from_abi).collect())
    }

    /// Applies the schema steps of `namespace` (by convention the app's
    /// name) that this database has not seen: step `i` (from 1) runs once,
    /// in its own transaction, and is recorded with a checksum of its text.
    /// See the [module documentation](self) for the rules; never edit an
    /// applied step, append a new one.
    ///
    /// ```no_run
    /// # use app_api::prelude::*;
    /// const MIGRATIONS: &[&str] = &[
    ///     "CREATE TABLE entries (id INTEGER PRIMARY KEY, message TEXT NOT NULL)",
    ///     "ALTER TABLE entries ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0",
    /// ];
    /// fn build(mount: &Mount) -> Result<Router, Error> {
    ///     mount.db()?.migrate("guestbook", MIGRATIONS)?;
    ///     Ok(Router::new())
    /// }
    /// ```
    pub fn migrate(&self, namespace: &str, steps: &[&str]) -> Result<Migrated, DbError> {
        self.migrate_with(namespace, steps, &[])
    }

    /// [`migrate`](Db::migrate) for an app that used this database with
    /// `app-api` 1.0, whose migrations counted in `PRAGMA user_version` for
    /// the whole database: the first time, the steps that version says were
    /// applied count as this namespace's (if the tables and indexes they
    /// create are there), then it goes on as `migrate`. Only the app that
    /// wrote the version may adopt it, once per database.
    pub fn migrate_from_user_version(
        &self,
        namespace: &str,
        steps: &[&str],
    ) -> Result<Migrated, DbError> {
        let adopt = Extension {
            key: "adopt_user_version".into(),
            value: "true".into(),
        };
        self.migrate_with(namespace, steps, &[adopt])
    }

    fn migrate_with(
        &self,
        namespace: &str,
        steps: &[&str],
        options: &[Extension],
    ) -> Result<Migrated, DbError> {
        let steps: Vec<RStr<'_>> = steps.iter().map(|step| RStr::from_str(step)).collect();
        // on a contract 1.0 host, `""`: its default body answers that the
        // host does not offer namespaced migrations
        let name = self
            .name
            .as_ref()
            .map_or(RStr::from_str(""), RString::as_rstr);
        let result = self.host.db_migrate_in(
            name,
            RStr::from_str(namespace),
            RSlice::from_slice(&steps),
            RSlice::from_slice(options),
        );
        into_result(result).map(|migration| Migrated {
            before: migration.before,
            after: migration.after,
        })
    }
}

fn into_result<T>(result: RResult<T, abi::DbError>) -> Result<T, DbError> {
    result.into_result().map_err(|error| DbError {
        kind: match error.kind.as_str() {
            "constraint" => DbErrorKind::Constraint,
            "busy" => DbErrorKind::Busy,
            "sql" => DbErrorKind::Sql,
            "refused" => DbErrorKind::Refused,
            "unsupported" => DbErrorKind::Unsupported,
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
#[non_exhaustive]
pub enum DbErrorKind {
    /// A `UNIQUE`, `FOREIGN KEY`, `CHECK` or `NOT NULL` constraint failed.
    Constraint,
    /// The database stayed locked for longer than the busy timeout.
    Busy,
    /// The statement is wrong (syntax, unknown table or column, parameters).
    Sql,
    /// The host does not allow it (see "What the host refuses" above), or
    /// the mount may not use that database.
    Refused,
    /// The host is older than the service: it was built against a contract
    /// that lacks it.
    Unsupported,
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

    /// The names of the columns, in order.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(RString::as_str)
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

impl<'r> Row<'r> {
    /// The row's values, in the order of the statement's columns.
    pub fn values(&self) -> &'r [Value] {
        self.values
    }

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
