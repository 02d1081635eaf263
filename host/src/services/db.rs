//! The site's database: the only SQLite in the process (DESIGN.md,
//! "Host-owned services"), offered to apps as statements with typed
//! parameters and rows back.
//!
//! One writer connection behind a lock serialises writes (SQLite allows one
//! writer at a time anyway, and waiting on a lock is cheaper than retrying
//! on `SQLITE_BUSY`); read-only statements run on a pool of reader
//! connections, which WAL mode lets proceed alongside the writer.

use std::{
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use abi_stable::std_types::{RString, RVec};
use app_api::abi::{DbError, DbRows, DbStatement, DbValue};
use rusqlite::{
    Connection, ErrorCode, OpenFlags, Statement,
    types::{Value, ValueRef},
};

/// How long a statement waits for another process's lock before `busy`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The open database.
pub struct Database {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Idle reader connections kept open: as many as there can be handlers
    /// reading at once, so that under load every reader is reused. A
    /// reader made anew reads the schema and prepares its statements again:
    /// with a fixed 8, the blog's home page under `cargo xtask bench`'s load
    /// (the frontend alone runs up to 16 handlers at once) opened some 170
    /// connections a second and closed as many.
    max_idle_readers: usize,
}

/// A database error before it crosses the ABI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    kind: &'static str,
    message: String,
}

impl Failure {
    fn new(kind: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

impl From<rusqlite::Error> for Failure {
    fn from(error: rusqlite::Error) -> Failure {
        let kind = match &error {
            rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
                ErrorCode::ConstraintViolation => "constraint",
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => "busy",
                // SQLITE_ERROR: a syntax error, an unknown table or column
                ErrorCode::Unknown => "sql",
                _ => "other",
            },
            rusqlite::Error::SqlInputError { .. }
            | rusqlite::Error::InvalidParameterCount(..)
            | rusqlite::Error::InvalidParameterName(_)
            | rusqlite::Error::InvalidColumnName(_)
            | rusqlite::Error::MultipleStatement => "sql",
            _ => "other",
        };
        Failure::new(kind, error.to_string())
    }
}

impl From<Failure> for DbError {
    fn from(failure: Failure) -> DbError {
        DbError {
            kind: failure.kind.into(),
            message: failure.message.into(),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a connection leaves no half-done Rust state in
    // it (SQLite rolls back an unfinished transaction on the next BEGIN).
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Database {
    /// Opens (creating if needed) the database file at `path`, in WAL mode
    /// with foreign keys on; up to `max_idle_readers` reader connections
    /// stay open between uses.
    pub fn open(path: &Path, max_idle_readers: usize) -> Result<Database, String> {
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)
                .map_err(|error| format!("cannot create {}: {error}", folder.display()))?;
        }
        let writer = Connection::open(path)
            .and_then(|connection| {
                connection.busy_timeout(BUSY_TIMEOUT)?;
                connection.pragma_update(None, "journal_mode", "WAL")?;
                connection.pragma_update(None, "synchronous", "NORMAL")?;
                connection.pragma_update(None, "foreign_keys", "ON")?;
                Ok(connection)
            })
            .map_err(|error| format!("cannot open the database {}: {error}", path.display()))?;
        Ok(Database {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            max_idle_readers,
        })
    }

    fn reader(&self) -> Result<Connection, Failure> {
        if let Some(connection) = lock(&self.readers).pop() {
            return Ok(connection);
        }
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        Ok(connection)
    }

    fn give_back(&self, connection: Connection) {
        let mut readers = lock(&self.readers);
        if readers.len() < self.max_idle_readers {
            readers.push(connection);
        }
    }

    /// Runs one statement: on a reader when it only reads, else on the
    /// writer.
    pub fn query(&self, sql: &str, params: &[DbValue]) -> Result<DbRows, Failure> {
        let reader = self.reader()?;
        // `None`: the statement writes, so it runs on the writer
        let on_reader =
            reader
                .prepare_cached(sql)
                .map_err(Failure::from)
                .and_then(|mut statement| {
                    check_placeholders(&statement)?;
                    if statement.readonly() {
                        run(&reader, &mut statement, params).map(Some)
                    } else {
                        Ok(None)
                    }
                });
        self.give_back(reader);
        if let Some(rows) = on_reader? {
            return Ok(rows);
        }
        let writer = lock(&self.writer);
        let mut statement = writer.prepare_cached(sql)?;
        run(&writer, &mut statement, params)
    }

    /// Runs `statements` in one transaction; the first error rolls back.
    /// A transaction that only reads runs on a reader, so it sees one
    /// snapshot without waiting for the writer (and without making it wait).
    pub fn transaction(&self, statements: &[DbStatement]) -> Result<RVec<DbRows>, Failure> {
        let reader = self.reader()?;
        let read_only = statements.iter().try_fold(true, |all, statement| {
            let prepared = reader.prepare_cached(&statement.sql)?;
            Ok::<_, Failure>(all && prepared.readonly())
        });
        let outcome = match read_only {
            Ok(true) => Some(run_all(&reader, "BEGIN DEFERRED", statements)),
            // a statement that does not even prepare fails the same way on
            // the writer, with the position of the statement in the message
            Ok(false) | Err(_) => None,
        };
        self.give_back(reader);
        if let Some(outcome) = outcome {
            return outcome;
        }
        let writer = lock(&self.writer);
        run_all(&writer, "BEGIN IMMEDIATE", statements)
    }

    /// Brings the schema to version `steps.len()` (`PRAGMA user_version`),
    /// one step per transaction. Each step re-reads the version inside its
    /// write transaction, so concurrent callers (both apps starting at
    /// once, or two host processes during a reload) apply each step once.
    /// Returns the version found first.
    pub fn migrate(&self, steps: &[&str]) -> Result<u32, Failure> {
        let mut writer = lock(&self.writer);
        let mut found = None;
        loop {
            let transaction =
                writer.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let version: u32 =
                transaction.pragma_query_value(None, "user_version", |row| row.get(0))?;
            found.get_or_insert(version);
            let Some(step) = steps.get(version as usize) else {
                if version as usize > steps.len() {
                    return Err(Failure::new(
                        "other",
                        format!(
                            "the database's schema is at version {version}, newer than the {} migrations this app knows: run a newer build of the app",
                            steps.len()
                        ),
                    ));
                }
                return Ok(found.unwrap_or(version));
            };
            transaction.execute_batch(step).map_err(|error| Failure {
                message: format!("migration {} failed: {error}", version + 1),
                ..Failure::from(error)
            })?;
            transaction.pragma_update(None, "user_version", version + 1)?;
            transaction.commit()?;
        }
    }
}

/// Runs `statements` on `connection` between `begin` and `COMMIT`;
/// the first error rolls everything back.
fn run_all(
    connection: &Connection,
    begin: &str,
    statements: &[DbStatement],
) -> Result<RVec<DbRows>, Failure> {
    if !connection.is_autocommit() {
        // left open by a panic in an earlier call
        connection.execute_batch("ROLLBACK")?;
    }
    connection.prepare_cached(begin)?.execute([])?;
    let mut results = RVec::with_capacity(statements.len());
    for (index, statement) in statements.iter().enumerate() {
        let outcome = connection
            .prepare_cached(&statement.sql)
            .map_err(Failure::from)
            .and_then(|mut prepared| {
                check_placeholders(&prepared)?;
                run(connection, &mut prepared, &statement.params)
            });
        match outcome {
            Ok(rows) => results.push(rows),
            Err(failure) => {
                let _ = connection.execute_batch("ROLLBACK");
                return Err(Failure {
                    message: format!(
                        "statement {} of the transaction: {}",
                        index + 1,
                        failure.message
                    ),
                    ..failure
                });
            }
        }
    }
    if let Err(error) = connection
        .prepare_cached("COMMIT")
        .and_then(|mut commit| commit.execute([]))
    {
        let _ = connection.execute_batch("ROLLBACK");
        return Err(error.into());
    }
    Ok(results)
}

/// A text column's value. SQLite does not check that text is UTF-8, so
/// invalid bytes become U+FFFD; valid text (all of it, in practice) is
/// checked with `str::from_utf8`, which runs a word at a time over ASCII,
/// where `String::from_utf8_lossy` went byte by byte (a tenth of the blog's
/// home page when it read ten 3 KB post bodies).
fn text_value(bytes: &[u8]) -> RString {
    match std::str::from_utf8(bytes) {
        Ok(text) => RString::from(text),
        Err(_) => String::from_utf8_lossy(bytes).into(),
    }
}

/// Refuses placeholders other than `?NNN` (DESIGN.md: `$1` names bind by
/// first appearance in SQLite, `:name` and bare `?` do not port).
fn check_placeholders(statement: &Statement<'_>) -> Result<(), Failure> {
    for index in 1..=statement.parameter_count() {
        let numbered = statement.parameter_name(index).is_some_and(|name| {
            name.strip_prefix('?')
                .is_some_and(|digits| digits.parse::<usize>() == Ok(index))
        });
        if !numbered {
            return Err(Failure::new(
                "sql",
                format!(
                    "parameter {index} is written {}: use numbered placeholders ?1, ?2, ... only (the portable SQL contract)",
                    statement.parameter_name(index).unwrap_or("?")
                ),
            ));
        }
    }
    Ok(())
}

fn run(
    connection: &Connection,
    statement: &mut Statement<'_>,
    params: &[DbValue],
) -> Result<DbRows, Failure> {
    let columns: RVec<RString> = statement
        .column_names()
        .into_iter()
        .map(RString::from)
        .collect();
    let values = params.iter().map(|value| match value {
        DbValue::Null => Value::Null,
        DbValue::Integer(number) => Value::Integer(*number),
        DbValue::Real(number) => Value::Real(*number),
        DbValue::Text(text) => Value::Text(text.to_string()),
        DbValue::Blob(bytes) => Value::Blob(bytes.to_vec()),
    });
    let before = connection.total_changes();
    let mut rows = statement.query(rusqlite::params_from_iter(values))?;
    let mut out = RVec::new();
    while let Some(row) = rows.next()? {
        let mut values = RVec::with_capacity(columns.len());
        for index in 0..columns.len() {
            values.push(match row.get_ref(index)? {
                ValueRef::Null => DbValue::Null,
                ValueRef::Integer(number) => DbValue::Integer(number),
                ValueRef::Real(number) => DbValue::Real(number),
                ValueRef::Text(text) => DbValue::Text(text_value(text)),
                ValueRef::Blob(bytes) => DbValue::Blob(bytes.into()),
            });
        }
        out.push(values);
    }
    drop(rows);
    Ok(DbRows {
        columns,
        rows: out,
        rows_affected: connection.total_changes().saturating_sub(before),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> (tempfile::TempDir, Database) {
        let folder = tempfile::tempdir().unwrap();
        let database = Database::open(&folder.path().join("app.db"), 4).unwrap();
        (folder, database)
    }

    fn text(value: &str) -> DbValue {
        DbValue::Text(value.into())
    }

    #[test]
    fn statements_bind_numbered_parameters_and_return_typed_rows() {
        let (_folder, db) = database();
        db.migrate(&[
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, score REAL, data BLOB)",
        ])
        .unwrap();
        let inserted = db
            .query(
                "INSERT INTO t (name, score, data) VALUES (?1, ?2, ?3) RETURNING id",
                &[
                    text("a"),
                    DbValue::Real(1.5),
                    DbValue::Blob(vec![0, 1].into()),
                ],
            )
            .unwrap();
        assert_eq!(
            inserted.rows.as_slice(),
            [RVec::from(vec![DbValue::Integer(1)])]
        );
        assert_eq!(inserted.rows_affected, 1);
        let swapped = db
            .query("SELECT ?2, ?1", &[text("one"), text("two")])
            .unwrap();
        assert_eq!(swapped.rows[0].as_slice(), [text("two"), text("one")]);
        let rows = db
            .query("SELECT name, score, data, NULL AS absent FROM t", &[])
            .unwrap();
        let columns: Vec<&str> = rows.columns.iter().map(RString::as_str).collect();
        assert_eq!(columns, ["name", "score", "data", "absent"]);
        assert_eq!(
            rows.rows[0].as_slice(),
            [
                text("a"),
                DbValue::Real(1.5),
                DbValue::Blob(vec![0, 1].into()),
                DbValue::Null
            ]
        );
    }

    #[test]
    fn errors_are_values_with_a_portable_kind() {
        let (_folder, db) = database();
        db.migrate(&["CREATE TABLE t (name TEXT UNIQUE NOT NULL)"])
            .unwrap();
        db.query("INSERT INTO t VALUES (?1)", &[text("a")]).unwrap();
        let kind = |sql: &str, params: &[DbValue]| db.query(sql, params).unwrap_err().kind;
        assert_eq!(
            kind("INSERT INTO t VALUES (?1)", &[text("a")]),
            "constraint"
        );
        assert_eq!(kind("SELEC 1", &[]), "sql");
        assert_eq!(kind("SELECT * FROM missing", &[]), "sql");
        assert_eq!(kind("SELECT ?1", &[]), "sql");
        assert_eq!(kind("SELECT $1", &[text("a")]), "sql");
        assert_eq!(kind("SELECT ?", &[text("a")]), "sql");
        let message = db
            .query("INSERT INTO t VALUES (?1)", &[text("a")])
            .unwrap_err()
            .message;
        assert!(
            message.contains("UNIQUE constraint failed: t.name"),
            "{message}"
        );
    }

    #[test]
    fn a_failed_transaction_leaves_nothing() {
        let (_folder, db) = database();
        db.migrate(&["CREATE TABLE t (name TEXT UNIQUE)"]).unwrap();
        let statement = |name: &str| DbStatement {
            sql: "INSERT INTO t VALUES (?1)".into(),
            params: vec![text(name)].into(),
        };
        let failure = db
            .transaction(&[statement("a"), statement("b"), statement("a")])
            .unwrap_err();
        assert_eq!(failure.kind, "constraint");
        assert!(
            failure
                .message
                .starts_with("statement 3 of the transaction"),
            "{}",
            failure.message
        );
        assert!(db.query("SELECT * FROM t", &[]).unwrap().rows.is_empty());
        let done = db.transaction(&[statement("a"), statement("b")]).unwrap();
        assert_eq!(done.len(), 2);
        assert_eq!(db.query("SELECT * FROM t", &[]).unwrap().rows.len(), 2);
    }

    #[test]
    fn text_is_kept_and_invalid_bytes_are_replaced() {
        for (bytes, expected) in [
            (&b"plain ascii"[..], "plain ascii"),
            ("caf\u{e9} \u{1f600}".as_bytes(), "caf\u{e9} \u{1f600}"),
            (b"bad \xff byte", "bad \u{fffd} byte"),
            (b"", ""),
        ] {
            assert_eq!(text_value(bytes).as_str(), expected, "{bytes:?}");
        }
    }

    #[test]
    fn readers_in_use_at_once_stay_open_up_to_the_limit() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("app.db");
        for (limit, at_once, kept) in [(16, 16, 16), (4, 6, 4), (4, 1, 1)] {
            let db = Database::open(&path, limit).unwrap();
            let readers: Vec<Connection> = (0..at_once).map(|_| db.reader().unwrap()).collect();
            for reader in readers {
                db.give_back(reader);
            }
            assert_eq!(
                lock(&db.readers).len(),
                kept,
                "limit {limit}, {at_once} at once"
            );
            // the next uses take the kept connections
            let reused: Vec<Connection> = (0..kept).map(|_| db.reader().unwrap()).collect();
            assert!(lock(&db.readers).is_empty());
            drop(reused);
        }
    }

    #[test]
    fn read_only_transactions_do_not_wait_for_the_writer() {
        let (_folder, db) = database();
        db.migrate(&["CREATE TABLE t (n INTEGER)"]).unwrap();
        db.query("INSERT INTO t VALUES (1)", &[]).unwrap();
        let reads = [
            DbStatement {
                sql: "SELECT n FROM t".into(),
                params: RVec::new(),
            },
            DbStatement {
                sql: "SELECT COUNT(*) FROM t".into(),
                params: RVec::new(),
            },
        ];
        let writer = lock(&db.writer);
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| sender.send(db.transaction(&reads)).unwrap());
            let result = receiver.recv_timeout(Duration::from_secs(10));
            drop(writer);
            let results = result
                .expect("the reads did not wait for the writer")
                .unwrap();
            assert_eq!(results.len(), 2);
            assert_eq!(results[1].rows[0].as_slice(), [DbValue::Integer(1)]);
        });
    }

    #[test]
    fn migrations_run_once_in_order_even_from_many_threads() {
        let (_folder, db) = database();
        let steps = [
            "CREATE TABLE t (n INTEGER)",
            "INSERT INTO t VALUES (1)",
            "INSERT INTO t VALUES (2)",
        ];
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| db.migrate(&steps).unwrap());
            }
        });
        let rows = db.query("SELECT n FROM t ORDER BY n", &[]).unwrap();
        assert_eq!(rows.rows.len(), 2);
        assert_eq!(db.migrate(&steps).unwrap(), 3);
        let newer = db.migrate(&steps[..1]).unwrap_err();
        assert!(
            newer.message.contains("schema is at version 3"),
            "{}",
            newer.message
        );
        let broken = db
            .migrate(&[steps[0], steps[1], steps[2], "NOT SQL"])
            .unwrap_err();
        assert!(
            broken.message.starts_with("migration 4 failed"),
            "{}",
            broken.message
        );
        assert_eq!(db.migrate(&steps).unwrap(), 3);
    }
}
