//! The frozen contract between the host and app libraries: the types that
//! cross the dynamic-library boundary, the root module every app exports,
//! and the contract's version.
//!
//! Everything here is made of [`abi_stable`] types only, and the host checks
//! its layout when it loads an app. This crate depends on `abi_stable`
//! alone and is versioned on its own: an SDK (`app-api`) release that
//! changes nothing here never makes apps rebuild. Rules for changing it
//! (`docs/compatibility.md` in the repository):
//!
//! - plain `#[repr(C)]` structs ([`AppRequest`], [`AppResponse`], [`HostContext`],
//!   ...) are frozen: new data goes into their `extensions` lists;
//! - the root module [`AppModule`] and the [`Host`] and [`App`] traits are prefix
//!   types: new entries are only appended after the last one, and code must
//!   treat the appended ones as optional. A [`Host`] method added after 1.0
//!   has a default body that returns an "unsupported" error: an app built
//!   against a newer contract, loaded by an older host, gets that error
//!   when it calls the service the host lacks.
//!
//! App authors never use this crate directly: the SDK (`app-api`) and its
//! `export_app!` write the glue.

// `#[sabi_trait]` and `#[derive(StableAbi)]` expand to impls that rustc's
// `non_local_definitions` lint flags on this toolchain; the expansion is
// abi_stable's, not ours. The same goes for the `unsafe` blocks and `unsafe
// impl Send/Sync` that `#[sabi_trait]` generates: this crate writes no
// `unsafe` code of its own.
#![allow(non_local_definitions, unsafe_code)]
#![warn(missing_docs)]

pub mod v1_0;

use abi_stable::{
    StableAbi, declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RArc, RBox, ROption, RResult, RSlice, RStr, RString, RVec},
};

/// One HTTP header: a name (lowercase ASCII) and its raw value bytes.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header name, lowercase.
    pub name: RString,
    /// The header value as sent; usually, but not always, ASCII.
    pub value: RVec<u8>,
}

/// An entry of an `extensions` list: data added to the contract after 1.0.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// What the entry is, e.g. `"raw_path"`.
    pub key: RString,
    /// Its value.
    pub value: RString,
}

/// A request as the host hands it to an app instance.
///
/// Frozen layout: new data is added as [`Extension`] entries.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct AppRequest {
    /// The method, e.g. `GET`.
    pub method: RString,
    /// `http` or `https`.
    pub scheme: RString,
    /// The `Host` the client asked for, with the port if it gave one.
    pub host: RString,
    /// The mount prefix this request came through (`""` for the root mount),
    /// like WSGI's `SCRIPT_NAME`.
    pub script_root: RString,
    /// The percent-decoded path below the mount, always starting with `/`,
    /// like WSGI's `PATH_INFO`.
    pub path: RString,
    /// The raw query string, without the `?`.
    pub query: RString,
    /// The request headers in the order the client sent them.
    pub headers: RVec<Header>,
    /// The whole request body.
    pub body: RVec<u8>,
    /// The client's address, `ip:port`.
    pub remote_addr: RString,
    /// The id the host gave this request (also sent back as `X-Request-Id`).
    pub request_id: RString,
    /// Data added after 1.0, in order.
    pub extensions: RVec<Extension>,
}

/// A response from an app instance.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct AppResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The response headers in order; a name may repeat (`Set-Cookie`).
    pub headers: RVec<Header>,
    /// The response body.
    pub body: RVec<u8>,
}

/// An error from an app: the host turns it into a response and logs it.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct AppError {
    /// The status to answer with (500 for internal errors).
    pub status: u16,
    /// What went wrong. Logged; shown to the client only for 4xx statuses.
    pub message: RString,
    /// Whether the error is a panic caught inside the app.
    pub panicked: bool,
    /// The app-side backtrace, when one was captured.
    pub backtrace: ROption<RString>,
}

/// What an app library says about how it was built.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct AbiInfo {
    /// The contract version the app was built against ([`API_VERSION`]
    /// of its app-api-abi; app-api 1.0.0 for the first apps).
    pub api_version: RStr<'static>,
    /// `cfg!(panic = "unwind")` in the app's build. The host refuses `false`:
    /// a panic in an `abort` build would kill the whole process.
    pub panic_unwind: bool,
}

/// Log levels as numbers, most severe first (like `tracing::Level`).
pub mod level {
    /// Logging disabled.
    pub const OFF: u8 = 0;
    /// `ERROR`.
    pub const ERROR: u8 = 1;
    /// `WARN`.
    pub const WARN: u8 = 2;
    /// `INFO`.
    pub const INFO: u8 = 3;
    /// `DEBUG`.
    pub const DEBUG: u8 = 4;
    /// `TRACE`.
    pub const TRACE: u8 = 5;
}

/// Services the host offers to one app instance.
///
/// Append-only: new services are added after the last method, and apps must
/// treat them as optional (an older host does not have them).
#[sabi_trait]
pub trait Host: Send + Sync {
    /// Emits a log event under the mount's logger name. `level` is one of
    /// [`level`]; `module` is where the event came from inside the app.
    #[sabi(last_prefix_field)]
    fn log(&self, level: u8, module: RStr<'_>, message: RStr<'_>);

    /// Runs one SQL statement with `params` bound to `?1`, `?2`, ... and
    /// returns its rows (see the SDK's `sdk::db` for the SQL
    /// contract).
    fn db_query(&self, sql: RStr<'_>, params: RSlice<'_, DbValue>) -> RResult<DbRows, DbError>;

    /// Runs `statements` in one transaction: all of them commit, or none
    /// (the first error rolls the transaction back and is returned).
    fn db_transaction(&self, statements: RSlice<'_, DbStatement>)
    -> RResult<RVec<DbRows>, DbError>;

    /// Brings the database schema to `steps.len()`: step `i` (from 1) takes
    /// it from version `i - 1` to `i`, each in its own transaction, under a
    /// lock that makes concurrent callers wait. Returns the version found
    /// before.
    fn db_migrate(&self, steps: RSlice<'_, RStr<'_>>) -> RResult<u32, DbError>;

    /// Stores an uploaded file under a new random name ending in
    /// `.{extension}` and returns that name; the host serves it under the
    /// mount's uploads URL path.
    fn store_upload(&self, data: RSlice<'_, u8>, extension: RStr<'_>) -> RResult<RString, RString>;

    /// Deletes a stored upload; `false` if there was none by that name.
    fn delete_upload(&self, name: RStr<'_>) -> RResult<bool, RString>;

    /// Asks the person at the terminal for a line of input (without echo
    /// when `hidden`); only while a command runs (`host cmd`), else an error.
    fn prompt(&self, text: RStr<'_>, hidden: bool) -> RResult<RString, RString>;

    // Added in 1.1.0: each with a default body, which an older host's
    // object lacks, so that an app calling it there gets an error value.

    /// Checks that this mount may use the database `database` (`""`: the
    /// mount's default one) and returns its name. Since 1.1.0.
    fn db_open(&self, database: RStr<'_>) -> RResult<RString, DbError> {
        let _ = database;
        RResult::RErr(DbError::unsupported("named databases (db_open)", "1.1.0"))
    }

    /// [`db_query`](Host::db_query) on the database `database` of this
    /// mount (`""`: its default). Since 1.1.0.
    fn db_query_in(
        &self,
        database: RStr<'_>,
        sql: RStr<'_>,
        params: RSlice<'_, DbValue>,
    ) -> RResult<DbRows, DbError> {
        let _ = (database, sql, params);
        RResult::RErr(DbError::unsupported(
            "named databases (db_query_in)",
            "1.1.0",
        ))
    }

    /// [`db_transaction`](Host::db_transaction) on the database `database`
    /// of this mount (`""`: its default). Since 1.1.0.
    fn db_transaction_in(
        &self,
        database: RStr<'_>,
        statements: RSlice<'_, DbStatement>,
    ) -> RResult<RVec<DbRows>, DbError> {
        let _ = (database, statements);
        RResult::RErr(DbError::unsupported(
            "named databases (db_transaction_in)",
            "1.1.0",
        ))
    }

    /// Applies the schema steps of `namespace` in the database `database`
    /// (`""`: the mount's default): step `i` (from 1) runs once, in its own
    /// transaction, and the host records it with a checksum of its text in
    /// a table of its own. Namespaces never see each other's history. A
    /// recorded step whose text changed, or a history longer than `steps`,
    /// is an error. `options`: `adopt_user_version` = `true` first counts
    /// the steps that `PRAGMA user_version` says a 1.0 app applied as this
    /// namespace's (once per database). Since 1.1.0.
    fn db_migrate_in(
        &self,
        database: RStr<'_>,
        namespace: RStr<'_>,
        steps: RSlice<'_, RStr<'_>>,
        options: RSlice<'_, Extension>,
    ) -> RResult<DbMigration, DbError> {
        let _ = (database, namespace, steps, options);
        RResult::RErr(DbError::unsupported(
            "namespaced migrations (db_migrate_in)",
            "1.1.0",
        ))
    }
}

/// A value bound to a statement parameter or read from a row: SQLite's
/// storage classes, which PostgreSQL can map too.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub enum DbValue {
    /// SQL `NULL`.
    Null,
    /// A 64-bit signed integer (also booleans, as 0 and 1).
    Integer(i64),
    /// A 64-bit float.
    Real(f64),
    /// UTF-8 text.
    Text(RString),
    /// Bytes.
    Blob(RVec<u8>),
}

// Conversions for binding parameters (the SDK's `params!`); here because
// the type is defined here.

impl From<i64> for DbValue {
    fn from(number: i64) -> DbValue {
        DbValue::Integer(number)
    }
}

impl From<i32> for DbValue {
    fn from(number: i32) -> DbValue {
        DbValue::Integer(number.into())
    }
}

impl From<u32> for DbValue {
    fn from(number: u32) -> DbValue {
        DbValue::Integer(number.into())
    }
}

impl From<u64> for DbValue {
    /// Values above `i64::MAX` are stored as `i64::MAX`.
    fn from(number: u64) -> DbValue {
        DbValue::Integer(i64::try_from(number).unwrap_or(i64::MAX))
    }
}

impl From<usize> for DbValue {
    /// Values above `i64::MAX` are stored as `i64::MAX`.
    fn from(number: usize) -> DbValue {
        DbValue::Integer(i64::try_from(number).unwrap_or(i64::MAX))
    }
}

impl From<bool> for DbValue {
    fn from(flag: bool) -> DbValue {
        DbValue::Integer(flag.into())
    }
}

impl From<f64> for DbValue {
    fn from(number: f64) -> DbValue {
        DbValue::Real(number)
    }
}

impl From<&str> for DbValue {
    fn from(text: &str) -> DbValue {
        DbValue::Text(text.into())
    }
}

impl From<&String> for DbValue {
    fn from(text: &String) -> DbValue {
        DbValue::Text(text.as_str().into())
    }
}

impl From<String> for DbValue {
    fn from(text: String) -> DbValue {
        DbValue::Text(RString::from(text))
    }
}

impl From<&[u8]> for DbValue {
    fn from(bytes: &[u8]) -> DbValue {
        DbValue::Blob(RVec::from(bytes))
    }
}

impl From<Vec<u8>> for DbValue {
    fn from(bytes: Vec<u8>) -> DbValue {
        DbValue::Blob(RVec::from(bytes))
    }
}

impl<T: Into<DbValue>> From<Option<T>> for DbValue {
    fn from(value: Option<T>) -> DbValue {
        value.map_or(DbValue::Null, Into::into)
    }
}

/// One statement of a transaction.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct DbStatement {
    /// The SQL, with numbered placeholders `?1`, `?2`, ...
    pub sql: RString,
    /// The values of the placeholders, in order.
    pub params: RVec<DbValue>,
}

/// What a statement returned.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Default)]
pub struct DbRows {
    /// The names of the result columns.
    pub columns: RVec<RString>,
    /// The rows, each with one value per column.
    pub rows: RVec<RVec<DbValue>>,
    /// How many rows an `INSERT`, `UPDATE` or `DELETE` changed.
    pub rows_affected: u64,
}

/// A database error, as a value.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct DbError {
    /// What kind of error, portable across backends: `constraint` (a
    /// `UNIQUE`, `FOREIGN KEY`, `CHECK` or `NOT NULL` constraint failed),
    /// `busy` (the database stayed locked past the busy timeout), `sql` (the
    /// statement is wrong: syntax, unknown table, bad parameter count), or
    /// `other`.
    pub kind: RString,
    /// The database's own message, e.g. `UNIQUE constraint failed: posts.slug`.
    pub message: RString,
}

impl DbError {
    /// The error an app gets when it calls a service its host does not
    /// offer: the host was built against a contract older than `since`.
    pub fn unsupported(service: &str, since: &str) -> DbError {
        DbError {
            kind: "unsupported".into(),
            message: format!(
                "this host does not offer {service}: it needs a host built against app-api-abi {since} or newer (upgrade the host)"
            )
            .into(),
        }
    }
}

/// What [`Host::db_migrate_in`] did.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct DbMigration {
    /// Steps of the namespace recorded as applied before the call.
    pub before: u32,
    /// Steps recorded as applied after it. Equal to `before` when the host
    /// only looks (`host check`): pending steps are then reported, not run.
    pub after: u32,
    /// Data added later, in order.
    pub extensions: RVec<Extension>,
}

/// The host services as an FFI-safe object owned by the app instance.
pub type HostServices = Host_TO<'static, RArc<()>>;

/// What the host tells an app instance when it creates it for one mount.
#[repr(C)]
#[derive(StableAbi)]
pub struct HostContext {
    /// The mount's name from the mount table, e.g. `admin`.
    pub mount_name: RString,
    /// The mount prefix, normalised (`""` for the root mount, else `/admin`).
    pub prefix: RString,
    /// The URL path of the mount's static folder below the prefix, e.g. `/static`.
    pub static_url_path: RString,
    /// The logger name, e.g. `app_admin`.
    pub logger: RString,
    /// The session cookie name, e.g. `admin_session`.
    pub session_cookie: RString,
    /// The mount's `config` object as JSON text.
    pub config_json: RString,
    /// A secret derived by the host for this mount only (empty until the
    /// host's secret service is configured).
    pub secret: RVec<u8>,
    /// The most verbose [`level`] the host will record for this logger.
    pub max_log_level: u8,
    /// Logging and later services.
    pub host: HostServices,
    /// Data added after 1.0, in order. Known keys: `debug` (`true` when the
    /// host runs with `--debug`: capture backtraces of panics),
    /// `uploads_url_path` (where the host serves stored uploads below the
    /// prefix, e.g. `/uploads`), `host_contract` (the contract version the
    /// host was built against, since 1.1.0), `reload` (`true` when the
    /// host runs with `--reload`: read templates from disk),
    /// `secret_fallbacks` (the mount's keys from the host's earlier
    /// secrets, each in hex, comma-separated: what they signed still
    /// verifies).
    pub extensions: RVec<Extension>,
}

/// One running app instance, created per mount.
///
/// Every method runs its body inside `catch_unwind` on the app side: a panic
/// must never cross this boundary (it aborts the whole process,
/// `docs/architecture.md`).
#[sabi_trait]
pub trait App: Send + Sync {
    /// Handles one request. Called from several host threads at once.
    fn handle(&self, request: &AppRequest) -> RResult<AppResponse, AppError>;

    /// Lists the routes as `(methods, rule, endpoint)` triples, rules relative
    /// to the mount, for `host routes`.
    fn routes(&self) -> RVec<RouteInfo>;

    /// Called once when the host stops, after the last request finished.
    #[sabi(last_prefix_field)]
    fn shutdown(&self);
}

/// An app instance as the host owns it.
pub type AppInstance = App_TO<'static, RBox<()>>;

/// One route of an app, for listings.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// Allowed methods, comma-separated (`GET,HEAD`).
    pub methods: RString,
    /// The URL rule relative to the mount, e.g. `/post/<slug>`.
    pub rule: RString,
    /// The endpoint name used with `url_for`.
    pub endpoint: RString,
}

/// The root module every app library exports (through the SDK's
/// `export_app!`).
///
/// Append-only: new functions go after the last field and are optional.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = AppModuleRef)))]
#[sabi(missing_field(panic))]
pub struct AppModule {
    /// How the library was built. The host calls this first.
    pub abi_info: extern "C" fn() -> AbiInfo,
    /// The app's default name, e.g. `frontend`.
    pub name: extern "C" fn() -> RStr<'static>,
    /// Creates one instance for one mount.
    #[sabi(last_prefix_field)]
    pub instantiate: extern "C" fn(HostContext) -> RResult<AppInstance, AppError>,
    /// The commands the app offers on the command line (`host cmd MOUNT
    /// COMMAND ARGS...`). Optional: apps without commands leave it out.
    #[sabi(missing_field(option))]
    pub commands: extern "C" fn() -> RVec<CommandInfo>,
    /// Runs one command for a mount: `arguments[0]` is the command's name.
    /// Returns what to print. Optional, like `commands`.
    #[sabi(missing_field(option))]
    pub run_command: extern "C" fn(HostContext, RVec<RString>) -> RResult<RString, AppError>,
}

/// One command an app offers on the command line.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct CommandInfo {
    /// The command's name, e.g. `create-user`.
    pub name: RString,
    /// Its arguments as shown in usage lines, e.g. `NAME`.
    pub usage: RString,
    /// One line saying what it does.
    pub about: RString,
}

impl RootModule for AppModuleRef {
    declare_root_module_statics! {AppModuleRef}
    const BASE_NAME: &'static str = "app";
    const NAME: &'static str = "app";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// The version of this contract, as apps report it in [`AbiInfo`] and the
/// host in [`HostContext`]'s `host_contract` extension.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");
