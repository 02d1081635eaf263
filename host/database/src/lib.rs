//! The host's databases, as apps use them: statements with typed
//! parameters and rows back, through the types of the contract
//! (`app-api-abi`), on SQLite files the host opens (`sqlite`) or on
//! PostgreSQL (`postgres`, with the `postgres` feature). Apps write their
//! SQL once, in the portable contract (numbered `?N` placeholders,
//! SQLite's type names), and it runs on both.
//!
//! Migrations belong to namespaces, with their history in a table of the
//! host's (`history`). A database opened with [`Database::inspect`] only
//! looks, for `host check` and `host routes`: it creates no file, writes
//! nothing, and reports what migrations would do.
//!
//! The SDK's test client uses this crate too (SQLite only), so that an
//! app's unit tests run under the rules the host applies.

#[cfg(feature = "postgres")]
pub mod blocking;
mod failure;
mod history;
pub mod postgres;
mod sqlite;

use std::path::{Path, PathBuf};

use abi_stable::std_types::RVec;
use app_api_abi::{DbMigration, DbRows, DbStatement, DbValue, Extension};

pub use failure::{Failure, Kind};
pub use history::{Inspected, Migration};

/// Where a database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database, by its URL.
    Postgres(String),
}

impl Location {
    /// How messages name it: the file, or the URL without its password.
    pub fn shown(&self) -> String {
        match self {
            Location::Sqlite(path) => path.display().to_string(),
            #[cfg(feature = "postgres")]
            Location::Postgres(url) => postgres::without_password(url),
            #[cfg(not(feature = "postgres"))]
            Location::Postgres(url) => url.clone(),
        }
    }
}

// One per database, made once and never moved: boxing the larger variant
// would only add a pointer to follow on every call.
#[allow(clippy::large_enum_variant)]
enum Engine {
    Sqlite(sqlite::Sqlite),
    #[cfg(feature = "postgres")]
    Postgres(postgres::Postgres),
}

/// One open database.
pub struct Database {
    name: String,
    location: Location,
    engine: Engine,
}

/// Calls the same method on whichever engine holds the database.
macro_rules! on_engine {
    ($database:expr, $engine:ident => $call:expr) => {
        match &$database.engine {
            Engine::Sqlite($engine) => $call,
            #[cfg(feature = "postgres")]
            Engine::Postgres($engine) => $call,
        }
    };
}

impl Database {
    /// Opens the database `name` at `location` to serve: an SQLite file is
    /// created if needed (see `sqlite::Sqlite::open`, which also says what
    /// `legacy_uploads` is for), a PostgreSQL database is connected to.
    /// Up to `connections` connections (SQLite: idle readers) stay open:
    /// as many as handlers may use it at once. The host adds its own
    /// tables the first time it serves a database.
    pub fn open(
        name: &str,
        location: &Location,
        connections: usize,
        legacy_uploads: &dyn Fn() -> Vec<String>,
    ) -> Result<Database, Failure> {
        let engine = match location {
            Location::Sqlite(path) => Engine::Sqlite(sqlite::Sqlite::open(
                name,
                path,
                connections,
                legacy_uploads,
            )?),
            Location::Postgres(url) => postgres_engine(name, url, connections, false)?,
        };
        Ok(Database {
            name: name.to_owned(),
            location: location.clone(),
            engine,
        })
    }

    /// The database `name` at `location` for looking only: nothing is
    /// created or written; statements that write and migrations are
    /// refused or reported (see [`Database::inspected`]).
    pub fn inspect(name: &str, location: &Location) -> Result<Database, Failure> {
        let engine = match location {
            Location::Sqlite(path) => Engine::Sqlite(sqlite::Sqlite::inspect(name, path)),
            Location::Postgres(url) => postgres_engine(name, url, 1, true)?,
        };
        Ok(Database {
            name: name.to_owned(),
            location: location.clone(),
            engine,
        })
    }

    /// Its name in the mount table.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where it is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Closes every connection; later calls fail. An SQLite database's
    /// write-ahead log is folded back into its file once the last
    /// connection of any process closes.
    pub fn close(&self) {
        on_engine!(self, engine => engine.close())
    }

    /// Runs one statement.
    pub fn query(&self, sql: &str, params: &[DbValue]) -> Result<DbRows, Failure> {
        on_engine!(self, engine => engine.query(sql, params))
    }

    /// Runs `statements` in one transaction; the first error rolls back.
    pub fn transaction(&self, statements: &[DbStatement]) -> Result<RVec<DbRows>, Failure> {
        on_engine!(self, engine => engine.transaction(statements))
    }

    /// Applies the steps of `namespace` its history lacks, each once, in
    /// its own transaction, recorded with a checksum of its text; with
    /// `adopt_user_version` (SQLite only), first counts as its own the
    /// steps that a contract 1.0 app's `PRAGMA user_version` says were
    /// applied. When inspecting, checks and reports instead.
    pub fn migrate(
        &self,
        namespace: &str,
        steps: &[&str],
        adopt_user_version: bool,
    ) -> Result<Migration, Failure> {
        match &self.engine {
            Engine::Sqlite(engine) => engine.migrate(namespace, steps, adopt_user_version),
            #[cfg(feature = "postgres")]
            Engine::Postgres(engine) => engine.migrate(namespace, steps),
        }
    }

    /// The migrations of an app of contract 1.0: one version for the whole
    /// database. When inspecting, checks and reports instead.
    pub fn migrate_user_version(&self, steps: &[&str]) -> Result<u32, Failure> {
        on_engine!(self, engine => engine.migrate_user_version(steps))
    }

    /// What migration calls found while inspecting, in call order.
    pub fn inspected(&self) -> Vec<Inspected> {
        on_engine!(self, engine => engine.inspected())
    }

    /// Records that the upload `name` was stored through a mount whose
    /// default database this is.
    pub fn record_upload(&self, name: &str, stored_at: i64) -> Result<(), Failure> {
        on_engine!(self, engine => engine.record_upload(name, stored_at))
    }

    /// Forgets the upload `name`; `false` when this database has no record
    /// of it (it was stored through a mount with another default database).
    pub fn forget_upload(&self, name: &str) -> Result<bool, Failure> {
        on_engine!(self, engine => engine.forget_upload(name))
    }
}

#[cfg(feature = "postgres")]
fn postgres_engine(
    name: &str,
    url: &str,
    connections: usize,
    inspecting: bool,
) -> Result<Engine, Failure> {
    postgres::Postgres::open(name, url, connections, inspecting).map(Engine::Postgres)
}

#[cfg(not(feature = "postgres"))]
fn postgres_engine(name: &str, _: &str, _: usize, _: bool) -> Result<Engine, Failure> {
    Err(Failure::new(
        Kind::Other,
        format!(
            "the database {name:?} is on PostgreSQL, which this build does not include (the \"postgres\" feature of host-database)"
        ),
    ))
}

/// Copies the SQLite database at `source` to `destination` (a new file)
/// consistently while the host serves it (SQLite's online backup API).
pub fn backup_sqlite(source: &Path, destination: &Path) -> Result<(), Failure> {
    sqlite::backup(source, destination)
}

/// Whether the SQLite file at `path` is a site database of a release
/// before named databases: the host never served it (it has no
/// `_host_migrations`) and apps of contract 1.0 migrated it (its
/// `user_version` is above 0). Reads without creating or changing a file.
pub fn is_legacy(path: &Path) -> Result<bool, Failure> {
    sqlite::is_legacy(path)
}

/// Whether the options of a migration call (`Host::db_migrate_in`) ask to
/// adopt the `user_version` of a contract 1.0 app.
pub fn adopts_user_version(options: &[Extension]) -> bool {
    options
        .iter()
        .any(|option| option.key == "adopt_user_version" && option.value == "true")
}

impl From<Migration> for DbMigration {
    fn from(migration: Migration) -> DbMigration {
        DbMigration {
            before: migration.before,
            after: migration.after,
            extensions: RVec::new(),
        }
    }
}
