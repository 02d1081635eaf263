//! What the host offers to app instances through the ABI (the [`Host`]
//! trait): logging, the site's database, stored uploads, the per-app
//! secret, and a terminal prompt for commands (DESIGN.md, "Host-owned
//! services").

pub mod db;
pub mod secret;
pub mod uploads;

use std::{
    io::{BufRead, IsTerminal, Write},
    panic::{AssertUnwindSafe, catch_unwind},
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RArc, RResult, RSlice, RStr, RString, RVec},
};
use app_api::abi::{DbError, DbRows, DbStatement, DbValue, Host, Host_TO, HostServices};

use crate::{config::MountTable, logging::AppLogger};
use db::Database;
use secret::MasterSecret;
use uploads::Uploads;

/// The database file in the data directory.
pub const DATABASE_FILE: &str = "app.db";

/// The services every mount of a site shares.
pub struct SiteServices {
    data_dir: PathBuf,
    /// The most handlers that can run at once, so the most database
    /// readers in use at once.
    max_handlers: usize,
    /// Opened on first use, so a site whose apps never touch the database
    /// never creates one.
    database: OnceLock<Result<Database, String>>,
    uploads: OnceLock<Result<Uploads, String>>,
    secret: Result<MasterSecret, String>,
    interactive: bool,
}

impl SiteServices {
    /// The services of the site `table` describes; with `interactive`,
    /// apps may prompt at the terminal (`host cmd`).
    pub fn new(table: &MountTable, interactive: bool) -> Arc<SiteServices> {
        let data_dir = &table.data_dir;
        Arc::new(SiteServices {
            data_dir: data_dir.to_owned(),
            // each handler holds a slot of its mount's `max_concurrency`
            max_handlers: table.mounts.iter().map(|mount| mount.max_concurrency).sum(),
            database: OnceLock::new(),
            uploads: OnceLock::new(),
            secret: MasterSecret::load(data_dir),
            interactive,
        })
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The key of the mount named `mount`, derived from the host's secret.
    pub fn mount_secret(&self, mount: &str) -> Result<Vec<u8>, String> {
        self.secret
            .as_ref()
            .map(|secret| secret.for_mount(mount))
            .map_err(Clone::clone)
    }

    fn database(&self) -> Result<&Database, DbError> {
        self.database
            .get_or_init(|| Database::open(&self.data_dir.join(DATABASE_FILE), self.max_handlers))
            .as_ref()
            .map_err(|message| DbError {
                kind: "other".into(),
                message: message.as_str().into(),
            })
    }

    /// The uploads store (its folder created on first use).
    pub fn uploads(&self) -> Result<&Uploads, String> {
        self.uploads
            .get_or_init(|| Uploads::open(&self.data_dir))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn prompt(&self, text: &str, hidden: bool) -> Result<String, String> {
        if !self.interactive {
            return Err("prompting is only possible while a command runs (host cmd)".to_owned());
        }
        let line = if hidden && std::io::stdin().is_terminal() {
            rpassword::prompt_password(text).map_err(|error| error.to_string())?
        } else {
            eprint!("{text}");
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            if std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|error| error.to_string())?
                == 0
            {
                return Err("no input: standard input is closed".to_owned());
            }
            line
        };
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

/// The services of a mount.
pub struct MountServices {
    logger: AppLogger,
    site: Arc<SiteServices>,
}

impl MountServices {
    /// The services for a mount logging under `logger`, as the FFI-safe
    /// object handed to its app instance.
    pub fn new_object(logger: AppLogger, site: Arc<SiteServices>) -> HostServices {
        Host_TO::from_ptr(RArc::new(MountServices { logger, site }), TD_Opaque)
    }
}

/// Runs a service called from app code through an `extern "C"` boundary,
/// where a panic would abort the process: a panic becomes `error`.
fn guarded<T, E>(error: impl FnOnce() -> E, body: impl FnOnce() -> Result<T, E>) -> RResult<T, E> {
    catch_unwind(AssertUnwindSafe(body))
        .unwrap_or_else(|_| Err(error()))
        .into()
}

fn db_panic() -> DbError {
    DbError {
        kind: "other".into(),
        message: "the host's database service failed (see the host's log)".into(),
    }
}

fn service_panic() -> RString {
    "the host's service failed (see the host's log)".into()
}

impl Host for MountServices {
    fn log(&self, level: u8, module: RStr<'_>, message: RStr<'_>) {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            self.logger.emit(level, module.as_str(), message.as_str())
        }));
    }

    fn db_query(&self, sql: RStr<'_>, params: RSlice<'_, DbValue>) -> RResult<DbRows, DbError> {
        guarded(db_panic, || {
            self.site
                .database()?
                .query(sql.as_str(), params.as_slice())
                .map_err(Into::into)
        })
    }

    fn db_transaction(
        &self,
        statements: RSlice<'_, DbStatement>,
    ) -> RResult<RVec<DbRows>, DbError> {
        guarded(db_panic, || {
            self.site
                .database()?
                .transaction(statements.as_slice())
                .map_err(Into::into)
        })
    }

    fn db_migrate(&self, steps: RSlice<'_, RStr<'_>>) -> RResult<u32, DbError> {
        guarded(db_panic, || {
            let steps: Vec<&str> = steps.iter().map(RStr::as_str).collect();
            self.site.database()?.migrate(&steps).map_err(Into::into)
        })
    }

    fn store_upload(&self, data: RSlice<'_, u8>, extension: RStr<'_>) -> RResult<RString, RString> {
        guarded(service_panic, || {
            self.site
                .uploads()
                .and_then(|uploads| uploads.store(data.as_slice(), extension.as_str()))
                .map(Into::into)
                .map_err(Into::into)
        })
    }

    fn delete_upload(&self, name: RStr<'_>) -> RResult<bool, RString> {
        guarded(service_panic, || {
            self.site
                .uploads()
                .and_then(|uploads| uploads.delete(name.as_str()))
                .map_err(Into::into)
        })
    }

    fn prompt(&self, text: RStr<'_>, hidden: bool) -> RResult<RString, RString> {
        guarded(service_panic, || {
            self.site
                .prompt(text.as_str(), hidden)
                .map(Into::into)
                .map_err(Into::into)
        })
    }
}
