//! One PostgreSQL database as apps use it: a pool of connections
//! (`r2d2`), each driven by the thread that borrows it (`connection`),
//! statements translated from the portable contract and judged (`sql`,
//! `guard`), values bound and read (`values`), transactions that lost a
//! race run again.
//!
//! Every connection's transactions are `SERIALIZABLE`, so that app code
//! written for SQLite (one writer at a time: a check and an insert in one
//! transaction cannot interleave with another's) keeps its guarantees;
//! PostgreSQL then fails one of two conflicting transactions with
//! SQLSTATE 40001, and the whole transaction, which the host holds as a
//! list of statements, runs again.

use std::{
    sync::{Mutex, PoisonError, RwLock},
    time::Duration,
};

use abi_stable::std_types::{RString, RVec};
use app_api_abi::{DbRows, DbStatement, DbValue};
use tokio_postgres::{Client, Row, Statement};

use super::{
    connection::{Connection, Connector, Driven, Session},
    errors, guard, migrations, sql,
    values::{Cell, Param},
};
use crate::{
    blocking::off_runtime,
    failure::{Failure, Kind},
    history::{Inspected, Migration, check_namespace},
};

/// How many times a statement or transaction that lost a race to another
/// (serialization failure, deadlock) runs, at most.
const ATTEMPTS: u32 = 10;
/// How long connecting may take before the database counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a call waits for a free connection before `busy`, as SQLite's
/// busy timeout.
const WAIT_TIMEOUT: Duration = Duration::from_secs(5);

/// A failed call, before it is told to the app: PostgreSQL's own errors
/// keep their SQLSTATE until it is known whether to run again.
pub(super) enum Fail {
    Postgres(tokio_postgres::Error),
    Failure(Failure),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(error: tokio_postgres::Error) -> Fail {
        Fail::Postgres(error)
    }
}

impl From<Failure> for Fail {
    fn from(failure: Failure) -> Fail {
        Fail::Failure(failure)
    }
}

impl Fail {
    fn retryable(&self) -> bool {
        matches!(self, Fail::Postgres(error)
            if error.code().is_some_and(|code| errors::retryable(code.code())))
    }

    /// The failure as apps see it: PostgreSQL's message, with its detail
    /// (which key was duplicated), of the portable kind.
    pub(super) fn into_failure(self) -> Failure {
        match self {
            Fail::Failure(failure) => failure,
            Fail::Postgres(error) => match error.as_db_error() {
                Some(db) => {
                    let mut message = db.message().to_owned();
                    if let Some(detail) = db.detail() {
                        message.push_str(" (");
                        message.push_str(detail);
                        message.push(')');
                    }
                    Failure::new(errors::kind(db.code().code()), message)
                }
                None => Failure::new(Kind::Other, error.to_string()),
            },
        }
    }
}

/// One PostgreSQL database.
pub(crate) struct Postgres {
    name: String,
    /// The URL without its password, for messages.
    shown: String,
    /// `None` once closed (dropping the pool closes its connections).
    pool: RwLock<Option<r2d2::Pool<Connector>>>,
    /// The pool's size.
    max_connections: usize,
    /// Only looking (`host check`): every transaction is read-only, and
    /// migrations are reported.
    inspecting: bool,
    seen: Mutex<Vec<Inspected>>,
}

/// `url` without the password it may hold, for messages and logs.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{scheme}://{name}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Whether `url` reads as a PostgreSQL URL (libpq's form); the error
/// says what is wrong with it.
pub fn check_url(url: &str) -> Result<(), String> {
    url.parse::<tokio_postgres::Config>()
        .map(drop)
        .map_err(|error| error.to_string())
}

impl Postgres {
    /// Connects to the database `name` at `url` (`postgres://user@host:port/db`,
    /// or any URL `libpq` reads; the password from the URL, else from
    /// `PGPASSWORD`), with up to `max_connections` connections, and makes
    /// the host's tables on first use. With `inspecting`, writes nothing.
    pub(crate) fn open(
        name: &str,
        url: &str,
        max_connections: usize,
        inspecting: bool,
    ) -> Result<Postgres, Failure> {
        let shown = without_password(url);
        let mut config: tokio_postgres::Config = url.parse().map_err(|error| {
            Failure::new(
                Kind::Other,
                format!("database {name:?}: {shown} is not a PostgreSQL URL: {error}"),
            )
        })?;
        if config.get_password().is_none()
            && let Ok(password) = std::env::var("PGPASSWORD")
        {
            config.password(password);
        }
        if config.get_application_name().is_none() {
            config.application_name("host");
        }
        config.connect_timeout(CONNECT_TIMEOUT);
        let mut options = config.get_options().unwrap_or_default().to_owned();
        // serializable: see the module's documentation; warnings only, so
        // that "already exists, skipping" notices stay out of the log
        options.push_str(
            " -c default_transaction_isolation=serializable -c client_min_messages=warning",
        );
        if inspecting {
            options.push_str(" -c default_transaction_read_only=on");
        }
        config.options(options.trim_start());
        let pool = r2d2::Pool::builder()
            .max_size(u32::try_from(max_connections.clamp(1, 10_000)).unwrap_or(10_000))
            // made as handlers need them, not when the host starts
            .min_idle(Some(0))
            // a connection broken by the server shows at its next use,
            // which fails and is not retried: the next call gets another
            .test_on_check_out(false)
            .connection_timeout(WAIT_TIMEOUT)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(Connector { config });
        let database = Postgres {
            name: name.to_owned(),
            shown,
            pool: RwLock::new(Some(pool)),
            max_connections,
            inspecting,
            seen: Mutex::new(Vec::new()),
        };
        // connecting once says at start whether the database answers
        database
            .attempt(async |session| match inspecting {
                true => Ok(()),
                false => migrations::prepare_host_tables(session.client).await,
            })
            .map_err(|fail| {
                fail.into_failure().context(format_args!(
                    "cannot open the database {name:?} ({})",
                    database.shown
                ))
            })?;
        Ok(database)
    }

    /// A connection of the pool, waiting up to [`WAIT_TIMEOUT`] for one.
    fn connection(&self) -> Result<r2d2::PooledConnection<Connector>, Fail> {
        let pool = self
            .pool
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| Failure::stopped(&self.name))?;
        pool.get().map_err(|error| {
            // r2d2 says the last error making a connection, if there was one
            let text = error.to_string();
            Fail::Failure(match text.split_once(": ") {
                Some((_, reason)) => Failure::new(
                    Kind::Other,
                    format!(
                        "cannot reach the database {:?} ({}): {reason}",
                        self.name, self.shown
                    ),
                ),
                None => Failure::new(
                    Kind::Busy,
                    format!(
                        "every connection to the database {:?} stayed busy for {} s",
                        self.name,
                        WAIT_TIMEOUT.as_secs()
                    ),
                ),
            })
        })
    }

    /// Runs `work` once on a connection of the pool.
    fn attempt<T: Send>(
        &self,
        work: impl AsyncFnOnce(&mut Session<'_>) -> Result<T, Fail> + Send,
    ) -> Result<T, Fail> {
        off_runtime(|| {
            let closed = || {
                Fail::Failure(Failure::new(
                    Kind::Other,
                    format!(
                        "the connection to the database {:?} ({}) closed",
                        self.name, self.shown
                    ),
                ))
            };
            // connections the server closed while they sat in the pool are
            // dropped, and the work goes to the next (at most all of them,
            // then a new one)
            let mut work = work;
            for _ in 0..=self.max_connections {
                let mut connection = self.connection()?;
                let connection: &mut Connection = &mut connection;
                match connection.drive(work) {
                    Driven::Done(outcome) => return outcome,
                    Driven::Ended => return Err(closed()),
                    Driven::Unused(unused) => work = unused,
                }
            }
            Err(closed())
        })
    }

    /// Closes every connection; later calls fail.
    pub(crate) fn close(&self) {
        self.pool
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// Runs `work` until it succeeds, fails for good, or lost the race
    /// [`ATTEMPTS`] times; waits a little longer after each loss, so that
    /// two transactions that conflict do not meet again at once.
    fn with_retries<T: Send>(
        &self,
        work: impl AsyncFn(&mut Session<'_>) -> Result<T, Fail> + Send + Sync,
    ) -> Result<T, Failure> {
        let mut pause = Duration::from_millis(1);
        for attempt in 1.. {
            match self.attempt(async |session| work(session).await) {
                Err(fail) if fail.retryable() && attempt < ATTEMPTS => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                other => return other.map_err(Fail::into_failure),
            }
        }
        unreachable!("the loop returns by its last attempt")
    }

    /// Runs one statement.
    pub(crate) fn query(&self, sql: &str, params: &[DbValue]) -> Result<DbRows, Failure> {
        let translated = translate(sql, params)?;
        self.with_retries(async |session| {
            let statement = session.prepare(&translated).await?;
            run(session.client, &statement, sql, params).await
        })
    }

    /// Runs `statements` in one transaction; the first error rolls back; a
    /// transaction that lost a race runs again, whole.
    ///
    /// The statements are known before the transaction starts, so it is
    /// sent whole, `BEGIN` to `COMMIT`, and answered in one round trip
    /// (once each statement is prepared on the connection, which it keeps):
    /// one statement after another, each waiting for its answer, made the
    /// blog's pages (three reads) five round trips. A statement that fails
    /// makes PostgreSQL skip the rest (25P02) and end the transaction at
    /// `COMMIT` with a rollback; the first failure is the one reported.
    pub(crate) fn transaction(&self, statements: &[DbStatement]) -> Result<RVec<DbRows>, Failure> {
        let translated = statements
            .iter()
            .enumerate()
            .map(|(index, statement)| {
                translate(&statement.sql, &statement.params).map_err(|failure| {
                    failure.context(format_args!("statement {} of the transaction", index + 1))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let in_statement = |index: usize, fail: Fail| match fail {
            fail if fail.retryable() => fail,
            fail => Fail::Failure(
                fail.into_failure()
                    .context(format_args!("statement {} of the transaction", index + 1)),
            ),
        };
        self.with_retries(async |session| {
            let mut prepared = Vec::with_capacity(translated.len());
            for (index, sql) in translated.iter().enumerate() {
                let statement = session
                    .prepare(sql)
                    .await
                    .map_err(|error| in_statement(index, error.into()))?;
                prepared.push(statement);
            }
            let client: &Client = session.client;
            let runs = prepared
                .iter()
                .zip(statements)
                .map(|(statement, original)| {
                    run(client, statement, &original.sql, &original.params)
                });
            let (began, outcomes, committed) = futures_util::future::join3(
                client.batch_execute("BEGIN"),
                futures_util::future::join_all(runs),
                client.batch_execute("COMMIT"),
            )
            .await;
            began?;
            let mut results = RVec::with_capacity(outcomes.len());
            for (index, outcome) in outcomes.into_iter().enumerate() {
                results.push(outcome.map_err(|fail| in_statement(index, fail))?);
            }
            committed?;
            Ok(results)
        })
    }

    /// Applies the steps of `namespace` its history lacks (see
    /// `migrations::migrate`); when inspecting, reports instead.
    pub(crate) fn migrate(&self, namespace: &str, steps: &[&str]) -> Result<Migration, Failure> {
        check_namespace(namespace)?;
        self.migrate_unchecked(namespace, steps)
    }

    /// The migrations of an app of contract 1.0, which counted one version
    /// for the whole database: a history of their own here, under a
    /// namespace no app's can be.
    pub(crate) fn migrate_user_version(&self, steps: &[&str]) -> Result<u32, Failure> {
        self.migrate_unchecked("PRAGMA user_version", steps)
            .map(|migration| migration.after)
    }

    fn migrate_unchecked(&self, namespace: &str, steps: &[&str]) -> Result<Migration, Failure> {
        let name = &self.name;
        if self.inspecting {
            let seen = self
                .attempt(async |session| {
                    migrations::inspect(session.client, name, namespace, steps).await
                })
                .map_err(Fail::into_failure)?;
            let migration = Migration {
                before: seen.applied,
                after: seen.applied,
            };
            self.seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(seen);
            return Ok(migration);
        }
        self.attempt(async |session| {
            migrations::migrate(session.client, name, namespace, steps).await
        })
        .map_err(Fail::into_failure)
    }

    /// What migration calls found while inspecting, in call order.
    pub(crate) fn inspected(&self) -> Vec<Inspected> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records that the upload `name` was stored through a mount whose
    /// default database this is.
    pub(crate) fn record_upload(&self, name: &str, stored_at: i64) -> Result<(), Failure> {
        self.host_statement(
            "INSERT INTO _host_uploads (name, stored_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&name, &stored_at],
        )
        .map(drop)
    }

    /// Forgets the upload `name`; `false` when this database has no record
    /// of it.
    pub(crate) fn forget_upload(&self, name: &str) -> Result<bool, Failure> {
        self.host_statement("DELETE FROM _host_uploads WHERE name = $1", &[&name])
            .map(|changed| changed > 0)
    }

    fn host_statement(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, Failure> {
        self.with_retries(async |session| {
            let statement = session.prepare(sql).await?;
            Ok(session.client.execute(&statement, params).await?)
        })
    }
}

/// `sql` as PostgreSQL reads it, once the guard let it pass.
fn translate(sql: &str, params: &[DbValue]) -> Result<String, Failure> {
    if let Some(reason) = guard::judge(sql) {
        return Err(Failure::new(Kind::Refused, reason));
    }
    sql::placeholders(sql, params).map_err(|message| Failure::new(Kind::Sql, message))
}

/// Runs a prepared statement (`original` is the app's text) and reads its
/// rows back as the contract's values.
async fn run(
    client: &Client,
    statement: &Statement,
    original: &str,
    params: &[DbValue],
) -> Result<DbRows, Fail> {
    let columns: RVec<RString> = statement
        .columns()
        .iter()
        .map(|column| RString::from(column.name()))
        .collect();
    let stream = client
        .query_raw(statement, params.iter().map(Param))
        .await?;
    let mut stream = std::pin::pin!(stream);
    let mut rows = RVec::new();
    while let Some(row) =
        std::future::poll_fn(|context| futures_core::Stream::poll_next(stream.as_mut(), context))
            .await
    {
        rows.push(values_of(&row?, &columns)?);
    }
    let rows_affected = if sql::changes_rows(original) {
        stream.rows_affected().unwrap_or(0)
    } else {
        0
    };
    Ok(DbRows {
        columns,
        rows,
        rows_affected,
    })
}

fn values_of(row: &Row, columns: &[RString]) -> Result<RVec<DbValue>, Fail> {
    (0..row.len())
        .map(|index| {
            row.try_get::<_, Cell>(index)
                .map(|cell| cell.0)
                .map_err(|error| {
                    let reason = std::error::Error::source(&error)
                        .map_or_else(|| error.to_string(), ToString::to_string);
                    Fail::Failure(Failure::new(
                        Kind::Sql,
                        format!("column {:?}: {reason}", columns[index].as_str()),
                    ))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        for (url, shown) in [
            (
                "postgres://blog:s3cret@db.internal:5432/blog",
                "postgres://blog:***@db.internal:5432/blog",
            ),
            (
                "postgres://blog@db.internal/blog",
                "postgres://blog@db.internal/blog",
            ),
            (
                "postgresql://u:p@[::1]:5433/x?sslmode=disable",
                "postgresql://u:***@[::1]:5433/x?sslmode=disable",
            ),
            ("postgres://localhost/blog", "postgres://localhost/blog"),
        ] {
            assert_eq!(without_password(url), shown, "{url}");
        }
    }
}
