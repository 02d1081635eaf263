//! Migrations on PostgreSQL: the same history as on SQLite (a namespace's
//! steps, each recorded once with its checksum, in `_host_migrations`),
//! with the steps written once in the portable dialect and translated
//! (`sql::schema`). Hosts on several machines start together: each step
//! runs in a transaction that first takes an advisory lock of its
//! namespace, so one host applies it and the others, once it commits, find
//! it in the history.

use sha2::{Digest, Sha256};
use tokio_postgres::IsolationLevel;

use super::{engine::Fail, guard, sql};
use crate::{
    failure::{Failure, Kind},
    history::{Inspected, Migration, Recorded, checksum, now, verify},
};

/// The host's tables; made once, under [`HOST_TABLES_LOCK`].
const HOST_TABLES: &str = "
CREATE TABLE IF NOT EXISTS _host_migrations (
    namespace TEXT NOT NULL,
    step BIGINT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at BIGINT NOT NULL,
    adopted BIGINT NOT NULL DEFAULT 0 CHECK (adopted IN (0, 1)),
    PRIMARY KEY (namespace, step)
);
CREATE TABLE IF NOT EXISTS _host_uploads (
    name TEXT PRIMARY KEY,
    stored_at BIGINT NOT NULL
);
";

/// The advisory lock held while the host's tables are made ("host" and
/// zeros: apps may not take advisory locks, see `guard`).
const HOST_TABLES_LOCK: i64 = 0x686f_7374_0000_0000;

/// The advisory lock of a namespace's migrations: 64 bits of a hash of its
/// name.
fn lock_of(namespace: &str) -> i64 {
    let digest = Sha256::digest(format!("host migrations of {namespace}").as_bytes());
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// A transaction that sees what others committed while it waited for a
/// lock: the connection's default, serializable, would keep the snapshot
/// taken before the wait and miss the step another host just applied.
async fn locked(
    client: &mut tokio_postgres::Client,
    lock: i64,
) -> Result<tokio_postgres::Transaction<'_>, Fail> {
    let transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()
        .await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&lock])
        .await?;
    Ok(transaction)
}

/// Makes the host's tables if the database lacks them.
pub(super) async fn prepare_host_tables(client: &mut tokio_postgres::Client) -> Result<(), Fail> {
    let transaction = locked(client, HOST_TABLES_LOCK).await?;
    transaction.batch_execute(HOST_TABLES).await?;
    transaction.commit().await?;
    Ok(())
}

async fn recorded(
    client: &impl tokio_postgres::GenericClient,
    namespace: &str,
) -> Result<Vec<Recorded>, Fail> {
    let rows = client
        .query(
            "SELECT step, checksum, applied_at FROM _host_migrations WHERE namespace = $1 ORDER BY step",
            &[&namespace],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Recorded {
                step: u32::try_from(row.try_get::<_, i64>(0)?).unwrap_or(u32::MAX),
                checksum: row.try_get(1)?,
                applied_at: row.try_get(2)?,
            })
        })
        .collect()
}

/// Applies the steps of `namespace` its history lacks, each in its own
/// transaction holding the namespace's lock.
pub(super) async fn migrate(
    client: &mut tokio_postgres::Client,
    database: &str,
    namespace: &str,
    steps: &[&str],
) -> Result<Migration, Fail> {
    let lock = lock_of(namespace);
    let mut before = None;
    loop {
        let transaction = locked(client, lock).await?;
        let history = recorded(&transaction, namespace).await?;
        let applied = history.len() as u32;
        let before = *before.get_or_insert(applied);
        verify(database, namespace, &history, steps)?;
        let Some(step) = steps.get(history.len()) else {
            transaction.commit().await?;
            return Ok(Migration {
                before,
                after: applied,
            });
        };
        let number = applied + 1;
        let failed = |failure: Failure| {
            Fail::Failure(failure.context(format_args!(
                "database {database:?}: migration {namespace:?} step {number} failed"
            )))
        };
        let translated = sql::schema(step);
        if let Some(reason) = guard::judge(&translated) {
            return Err(failed(Failure::new(Kind::Refused, reason)));
        }
        transaction
            .batch_execute(&translated)
            .await
            .map_err(|error| failed(Fail::Postgres(error).into_failure()))?;
        transaction
            .execute(
                "INSERT INTO _host_migrations (namespace, step, checksum, applied_at) VALUES ($1, $2, $3, $4)",
                &[&namespace, &i64::from(number), &checksum(step), &now()],
            )
            .await?;
        transaction.commit().await?;
    }
}

/// What [`migrate`] would do, without changing anything: the history is
/// read and checked, and the pending steps counted (they cannot be tried
/// on a copy of the schema, as on SQLite).
pub(super) async fn inspect(
    client: &tokio_postgres::Client,
    database: &str,
    namespace: &str,
    steps: &[&str],
) -> Result<Inspected, Fail> {
    let kept: bool = client
        .query_one("SELECT to_regclass('_host_migrations') IS NOT NULL", &[])
        .await?
        .try_get(0)?;
    let history = if kept {
        recorded(client, namespace).await?
    } else {
        Vec::new()
    };
    verify(database, namespace, &history, steps)?;
    Ok(Inspected {
        namespace: namespace.to_owned(),
        applied: history.len() as u32,
        adopted: 0,
        known: steps.len() as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_have_locks_of_their_own() {
        assert_eq!(lock_of("blog"), lock_of("blog"));
        assert_ne!(lock_of("blog"), lock_of("admin"));
        assert_ne!(lock_of("blog"), HOST_TABLES_LOCK);
    }
}
