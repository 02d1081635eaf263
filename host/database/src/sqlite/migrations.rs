//! Schema migrations that belong to an app, not to the database: each
//! namespace (by convention an app's name) has its own numbered steps, and
//! the host records every applied step, with a checksum of its text, in a
//! table of its own inside the same database. Namespaces sharing a database
//! never see each other's history, in whatever order their apps start.
//!
//! Also here: the host's tables themselves, created the first time the host
//! serves a database, and the adoption of a database written by an app
//! built against contract 1.0, whose migrations counted in
//! `PRAGMA user_version` for the whole database.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::{Conn, authorizer::Authorizer};
use crate::{
    failure::{Failure, Kind},
    history::{Inspected, Migration, Recorded, check_namespace, checksum, now, verify},
};

/// The host's tables, created in one transaction with the first use.
const HOST_TABLES: &str = "
CREATE TABLE _host_migrations (
    namespace TEXT NOT NULL,
    step INTEGER NOT NULL,
    checksum TEXT NOT NULL,
    applied_at INTEGER NOT NULL,
    adopted INTEGER NOT NULL DEFAULT 0 CHECK (adopted IN (0, 1)),
    PRIMARY KEY (namespace, step)
);
CREATE TABLE _host_uploads (
    name TEXT PRIMARY KEY,
    stored_at INTEGER NOT NULL
);
CREATE TABLE _host_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// The `_host_meta` key holding the `user_version` a database had when the
/// host first served it, for a namespace to adopt.
const LEGACY_VERSION: &str = "legacy_user_version";
/// The `_host_meta` key naming the namespace that adopted it.
const LEGACY_ADOPTED_BY: &str = "legacy_user_version_adopted_by";

fn table_exists(connection: &Connection, name: &str) -> Result<bool, Failure> {
    Ok(connection
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Creates the host's tables the first time the host serves a database. A
/// database that has none yet but a `user_version` was written by apps of
/// contract 1.0: its version is kept for a namespace to adopt, and the
/// stored uploads of that time (`legacy_uploads()`) are recorded as its.
pub(crate) fn prepare_host_tables(
    writer: &mut Conn,
    legacy_uploads: &dyn Fn() -> Vec<String>,
) -> Result<(), Failure> {
    writer.host_mut(|connection, _| {
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if table_exists(&transaction, "_host_migrations")? {
            return Ok(());
        }
        let version: u32 =
            transaction.pragma_query_value(None, "user_version", |row| row.get(0))?;
        transaction.execute_batch(HOST_TABLES)?;
        if version > 0 {
            transaction.execute(
                "INSERT INTO _host_meta (key, value) VALUES (?1, ?2)",
                (LEGACY_VERSION, version.to_string()),
            )?;
            let mut record = transaction
                .prepare("INSERT OR IGNORE INTO _host_uploads (name, stored_at) VALUES (?1, ?2)")?;
            for name in legacy_uploads() {
                record.execute((name, now()))?;
            }
        }
        transaction.commit()?;
        Ok(())
    })
}

fn recorded(connection: &Connection, namespace: &str) -> Result<Vec<Recorded>, Failure> {
    let mut statement = connection.prepare_cached(
        "SELECT step, checksum, applied_at FROM _host_migrations WHERE namespace = ?1 ORDER BY step",
    )?;
    let rows = statement.query_map([namespace], |row| {
        Ok(Recorded {
            step: row.get(0)?,
            checksum: row.get(1)?,
            applied_at: row.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The `user_version` left to adopt: kept when the host first served the
/// database and not yet adopted by a namespace.
fn legacy_to_adopt(connection: &Connection) -> Result<Option<u32>, Failure> {
    let value = |key: &str| -> Result<Option<String>, Failure> {
        Ok(connection
            .query_row(
                "SELECT value FROM _host_meta WHERE key = ?1",
                [key],
                |row| row.get::<_, String>(0),
            )
            .optional()?)
    };
    if value(LEGACY_ADOPTED_BY)?.is_some() {
        return Ok(None);
    }
    Ok(value(LEGACY_VERSION)?.and_then(|version| version.parse().ok()))
}

fn adopt_too_many(database: &str, namespace: &str, version: u32, known: usize) -> Failure {
    Failure::new(
        Kind::Other,
        format!(
            "database {database:?}: PRAGMA user_version says an app built against contract 1.0 applied {version} steps, but migration {namespace:?} knows only {known}: run a newer build of the app"
        ),
    )
}

/// Checks that the first `version` steps of `namespace` are what a
/// contract 1.0 app applied to this database before the host kept a
/// history: every table, index, view and trigger they create (tried on an
/// empty in-memory database) must be there. Stops one app from adopting the
/// `user_version` another app wrote.
fn check_adoption(
    connection: &Connection,
    database: &str,
    namespace: &str,
    steps: &[&str],
    version: u32,
) -> Result<(), Failure> {
    if version as usize > steps.len() {
        return Err(adopt_too_many(database, namespace, version, steps.len()));
    }
    let scratch = Conn::in_memory()?;
    let created: Vec<(String, String)> = scratch.host(|c| -> Result<_, Failure> {
        for (index, step) in steps.iter().take(version as usize).enumerate() {
            run_step(c, &scratch.authorizer, database, namespace, index + 1, step)?;
        }
        let mut statement = c.prepare(
            "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
        )?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    })?;
    let mut missing = Vec::new();
    for (kind, name) in &created {
        let present = connection
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = ?1 AND name = ?2",
                (kind, name),
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if !present {
            missing.push(format!("{kind} {name}"));
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(Failure::new(
        Kind::Other,
        format!(
            "database {database:?}: its PRAGMA user_version {version} was not written by migration {namespace:?}: its first {version} steps create {}, which the database lacks. Adopt the user_version only in the app that used this database with contract 1.0; other apps migrate without adopting",
            missing.join(", ")
        ),
    ))
}

/// Applies the steps of `namespace` that its history lacks, each in its
/// own write transaction (re-reading the history inside it, so that two
/// instances or two processes apply each step once). With
/// `adopt_user_version`, a `user_version` kept by [`prepare_host_tables`]
/// counts as this namespace's first steps.
pub(crate) fn migrate(
    writer: &mut Conn,
    database: &str,
    namespace: &str,
    steps: &[&str],
    adopt_user_version: bool,
) -> Result<Migration, Failure> {
    check_namespace(namespace)?;
    let mut before = None;
    loop {
        let applied = writer.host_mut(|connection, authorizer| -> Result<Option<u32>, Failure> {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let history = recorded(&transaction, namespace)?;
            before.get_or_insert(history.len() as u32);
            verify(database, namespace, &history, steps)?;
            if history.is_empty()
                && adopt_user_version
                && let Some(version) = legacy_to_adopt(&transaction)?
            {
                check_adoption(&transaction, database, namespace, steps, version)?;
                for (index, step) in steps.iter().take(version as usize).enumerate() {
                    transaction.execute(
                        "INSERT INTO _host_migrations (namespace, step, checksum, applied_at, adopted) VALUES (?1, ?2, ?3, ?4, 1)",
                        (namespace, index + 1, checksum(step), now()),
                    )?;
                }
                transaction.execute(
                    "INSERT INTO _host_meta (key, value) VALUES (?1, ?2)",
                    (LEGACY_ADOPTED_BY, namespace),
                )?;
                transaction.commit()?;
                return Ok(Some(version));
            }
            let next = history.len() + 1;
            let Some(step) = steps.get(next - 1) else {
                return Ok(None);
            };
            Ok(Some(run_step(&transaction, authorizer, database, namespace, next, step)
                .map(|()| next as u32)
                .and_then(|applied| {
                    transaction.execute(
                        "INSERT INTO _host_migrations (namespace, step, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)",
                        (namespace, applied, checksum(step), now()),
                    )?;
                    transaction.commit()?;
                    Ok(applied)
                })?))
        })?;
        if applied.is_none() {
            let after = writer
                .host(|connection| recorded(connection, namespace))?
                .len() as u32;
            return Ok(Migration {
                before: before.unwrap_or(0),
                after,
            });
        }
    }
}

/// Runs one step's SQL as the app's, judged by the authorizer.
fn run_step(
    connection: &Connection,
    authorizer: &Authorizer,
    database: &str,
    namespace: &str,
    number: usize,
    step: &str,
) -> Result<(), Failure> {
    authorizer
        .as_app(|| connection.execute_batch(step))
        .map_err(|error| {
            let failure = match authorizer.take_refusal() {
                Some(reason) => Failure::new(Kind::Refused, reason),
                None => Failure::from(error),
            };
            failure.context(format_args!(
                "database {database:?}: migration {namespace:?} step {number} failed"
            ))
        })
}

/// The migrations of an app built against contract 1.0: one version for
/// the whole database, in `PRAGMA user_version`. Kept as it was, so that
/// such apps behave on this host as they did on theirs.
pub(crate) fn migrate_user_version(
    writer: &mut Conn,
    database: &str,
    steps: &[&str],
) -> Result<u32, Failure> {
    let mut found = None;
    loop {
        let done = writer.host_mut(|connection, authorizer| -> Result<bool, Failure> {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let version: u32 =
                transaction.pragma_query_value(None, "user_version", |row| row.get(0))?;
            found.get_or_insert(version);
            let Some(step) = steps.get(version as usize) else {
                if version as usize > steps.len() {
                    return Err(Failure::new(
                        Kind::Other,
                        format!(
                            "database {database:?}: its schema is at version {version} (PRAGMA user_version), newer than the {} migrations this app knows: run a newer build of the app",
                            steps.len()
                        ),
                    ));
                }
                return Ok(true);
            };
            run_step(
                &transaction,
                authorizer,
                database,
                "PRAGMA user_version",
                version as usize + 1,
                step,
            )?;
            transaction.pragma_update(None, "user_version", version + 1)?;
            transaction.commit()?;
            Ok(false)
        })?;
        if done {
            return Ok(found.unwrap_or(0));
        }
    }
}

/// What [`migrate`] would do, without changing anything: the history is
/// read (when the database exists), checked, and the pending steps are
/// tried on an in-memory copy of the schema.
pub(crate) fn inspect(
    reader: Option<&Conn>,
    database: &str,
    namespace: &str,
    steps: &[&str],
    adopt_user_version: bool,
) -> Result<Inspected, Failure> {
    check_namespace(namespace)?;
    let (history, adopted) = match reader {
        Some(reader) => reader.host(|connection| -> Result<_, Failure> {
            let (history, legacy) = if table_exists(connection, "_host_migrations")? {
                (
                    recorded(connection, namespace)?,
                    legacy_to_adopt(connection)?,
                )
            } else {
                // the host has never served it: what it would keep
                let version: u32 =
                    connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
                (Vec::new(), (version > 0).then_some(version))
            };
            let adoption = match legacy {
                Some(version) if history.is_empty() && adopt_user_version => {
                    check_adoption(connection, database, namespace, steps, version)?;
                    version
                }
                _ => 0,
            };
            Ok((history, adoption))
        })?,
        None => (Vec::new(), 0),
    };
    verify(database, namespace, &history, steps)?;
    let applied = history.len() as u32;
    let first_pending = (applied + adopted) as usize;
    try_on_schema_copy(reader, database, namespace, first_pending, steps)?;
    Ok(Inspected {
        namespace: namespace.to_owned(),
        applied,
        adopted,
        known: steps.len() as u32,
    })
}

/// [`migrate_user_version`] without changing anything, like [`inspect`].
pub(crate) fn inspect_user_version(
    reader: Option<&Conn>,
    database: &str,
    steps: &[&str],
) -> Result<Inspected, Failure> {
    let version: u32 = match reader {
        Some(reader) => reader.host(|connection| {
            connection.pragma_query_value(None, "user_version", |row| row.get(0))
        })?,
        None => 0,
    };
    let namespace = "PRAGMA user_version";
    if version as usize > steps.len() {
        return Err(Failure::new(
            Kind::Other,
            format!(
                "database {database:?}: its schema is at version {version} (PRAGMA user_version), newer than the {} migrations this app knows: run a newer build of the app",
                steps.len()
            ),
        ));
    }
    try_on_schema_copy(reader, database, namespace, version as usize, steps)?;
    Ok(Inspected {
        namespace: namespace.to_owned(),
        applied: version,
        adopted: 0,
        known: steps.len() as u32,
    })
}

/// Runs `steps[first..]` on an in-memory database holding a copy of the
/// schema of `reader`'s (no rows), so that `host check` finds a step that
/// would fail before the host runs it for real. Data-dependent failures (a
/// unique index over duplicates) only show when the step runs.
fn try_on_schema_copy(
    reader: Option<&Conn>,
    database: &str,
    namespace: &str,
    first: usize,
    steps: &[&str],
) -> Result<(), Failure> {
    if first >= steps.len() {
        return Ok(());
    }
    let schema: Vec<String> = match reader {
        Some(reader) => reader.host(|connection| -> Result<Vec<String>, Failure> {
            // shadow tables are made by their virtual table's own CREATE
            let shadow: Vec<String> = connection
                .prepare("SELECT name FROM pragma_table_list WHERE type = 'shadow'")?
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            let mut statement = connection.prepare(
                "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
            )?;
            let rows = statement.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?;
            let mut schema = Vec::new();
            for row in rows {
                let (name, sql) = row?;
                if !shadow.contains(&name) {
                    schema.push(sql);
                }
            }
            Ok(schema)
        })?,
        None => Vec::new(),
    };
    let copy = Conn::in_memory()?;
    copy.host(|connection| -> Result<(), Failure> {
        for sql in &schema {
            connection.execute_batch(sql)?;
        }
        connection.execute_batch("BEGIN")?;
        Ok(())
    })
    .map_err(|failure| {
        failure.context(format_args!(
            "database {database:?}: its schema could not be copied to try migration {namespace:?}"
        ))
    })?;
    for (index, step) in steps.iter().enumerate().skip(first) {
        copy.host(|connection| {
            run_step(
                connection,
                &copy.authorizer,
                database,
                namespace,
                index + 1,
                step,
            )
        })
        .map_err(|failure| Failure {
            message: format!(
                "{} (tried on a copy of the schema; nothing was changed)",
                failure.message.replacen(" failed", " would fail", 1)
            ),
            ..failure
        })?;
    }
    Ok(())
}
