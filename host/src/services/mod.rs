//! What the host offers to app instances through the contract (the
//! [`Host`] trait): logging, the databases a mount may use, stored uploads,
//! the per-app secret, and a terminal prompt for commands.
//!
//! The host owns these so that apps never hold copies of their own: one
//! SQLite in the process (two copies on one file can corrupt it), one
//! secret from which each mount's key is derived.

pub mod secret;
pub mod uploads;

use std::{
    io::{BufRead, IsTerminal, Write},
    panic::{AssertUnwindSafe, catch_unwind},
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock, PoisonError},
};

use abi_stable::std_types::{RResult, RSlice, RStr, RString, RVec};
use app_api_abi::{DbError, DbMigration, DbRows, DbStatement, DbValue, Extension, Host, v1_0};
use host_database::{Database, Inspected, Kind};

use crate::{
    logging::AppLogger,
    table::{DatabaseConfig, LEGACY_DATABASE_FILE, Location, Mount, MountTable, UploadsStore},
};
use secret::MasterSecret;
use uploads::Uploads;

/// What the services are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Serving requests.
    Serve,
    /// Running an app's command (`host cmd`): apps may prompt at the
    /// terminal.
    Command,
    /// Looking only (`host check`, `host routes`): no database, secret or
    /// folder is created or changed; migrations are checked and reported,
    /// not run.
    Inspect,
}

/// One database of the site, opened on first use.
pub struct DatabaseSlot {
    config: DatabaseConfig,
    /// Connections kept open (SQLite: for reading): as many as handlers
    /// may use it at once (the `max_concurrency` of the mounts that list
    /// it).
    connections: usize,
    inspect: bool,
    /// The uploads folder, for the uploads a database of an earlier release
    /// owns (see `Database::open`).
    uploads_folder: PathBuf,
    database: OnceLock<Database>,
    /// Held while opening, so that one caller opens and the others wait.
    opening: Mutex<()>,
}

impl DatabaseSlot {
    /// The database, opened on the first call. A failure is not kept: the
    /// next call tries again (the file may have been locked by another
    /// process for longer than the busy timeout, or the disk full).
    fn get(&self) -> Result<&Database, DbError> {
        if let Some(database) = self.database.get() {
            return Ok(database);
        }
        let _opening = self.opening.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(database) = self.database.get() {
            return Ok(database);
        }
        let opened = if self.inspect {
            Database::inspect(&self.config.name, &self.config.location).map_err(DbError::from)?
        } else {
            let legacy_uploads = || uploads::stored_names(&self.uploads_folder);
            Database::open(
                &self.config.name,
                &self.config.location,
                self.connections,
                &legacy_uploads,
            )
            .map_err(DbError::from)?
        };
        Ok(self.database.get_or_init(|| opened))
    }
}

/// The services every mount of a site shares.
pub struct SiteServices {
    table_file: PathBuf,
    mode: Mode,
    databases: Vec<Arc<DatabaseSlot>>,
    uploads_store: UploadsStore,
    uploads: OnceLock<Result<Uploads, String>>,
    secret: Result<MasterSecret, String>,
}

/// What `host check` saw of one database.
pub struct DatabaseReport {
    /// Its name.
    pub name: String,
    /// Where it is.
    pub location: Location,
    /// What each migration call found.
    pub inspected: Vec<Inspected>,
}

impl SiteServices {
    /// The services of the site `table` describes. Refuses a data folder
    /// whose site database of an earlier release no database of the table
    /// uses: its rows would silently be out of every app's reach.
    pub fn new(table: &MountTable, mode: Mode) -> Result<Arc<SiteServices>, String> {
        check_legacy_database(table)?;
        let shared = table
            .databases
            .iter()
            .find_map(|database| match &database.location {
                Location::Postgres(_) => Some(format!(
                    "the database {:?} is on PostgreSQL ({})",
                    database.name,
                    database.location.shown()
                )),
                Location::Sqlite(_) => None,
            });
        if let Some(reason) = shared {
            secret::require_shared(table.secret_key_file.as_deref(), &reason)
                .map_err(|error| format!("{}: {error}", table.file.display()))?;
        }
        let data_dir = &table.data_dir;
        let uploads_folder = data_dir.join(uploads::UPLOADS_FOLDER);
        let databases = table
            .databases
            .iter()
            .map(|config| {
                let connections = table
                    .mounts
                    .iter()
                    .filter(|mount| mount.databases.contains(&config.name))
                    .map(|mount| mount.max_concurrency)
                    .sum::<usize>()
                    .max(1);
                Arc::new(DatabaseSlot {
                    config: config.clone(),
                    connections,
                    inspect: mode == Mode::Inspect,
                    uploads_folder: uploads_folder.clone(),
                    database: OnceLock::new(),
                    opening: Mutex::new(()),
                })
            })
            .collect();
        let secret = match mode {
            Mode::Inspect => MasterSecret::peek(data_dir, table.secret_key_file.as_deref()),
            Mode::Serve | Mode::Command => {
                MasterSecret::load(data_dir, table.secret_key_file.as_deref())
            }
        };
        Ok(Arc::new(SiteServices {
            table_file: table.file.clone(),
            mode,
            databases,
            uploads_store: table.uploads.clone(),
            uploads: OnceLock::new(),
            secret,
        }))
    }

    /// The key of the mount named `mount`, derived from the host's secret.
    pub fn mount_secret(&self, mount: &str) -> Result<Vec<u8>, String> {
        self.secret
            .as_ref()
            .map(|secret| secret.for_mount(mount))
            .map_err(Clone::clone)
    }

    /// The mount's keys from the fallback secrets (earlier keys whose
    /// signatures still verify); none when the secret failed.
    pub fn mount_secret_fallbacks(&self, mount: &str) -> Vec<Vec<u8>> {
        self.secret
            .as_ref()
            .map(|secret| secret.fallbacks_for_mount(mount))
            .unwrap_or_default()
    }

    /// The uploads store: its folder is created on first use when serving;
    /// when inspecting, `None` if it does not exist.
    pub fn uploads(&self) -> Result<Option<&Uploads>, String> {
        let create = self.mode != Mode::Inspect;
        let opened = self
            .uploads
            .get_or_init(|| Uploads::open(&self.uploads_store, create))
            .as_ref()
            .map_err(Clone::clone)?;
        Ok(opened.exists().then_some(opened))
    }

    /// What inspecting found in each database a mount used.
    pub fn inspected(&self) -> Vec<DatabaseReport> {
        self.databases
            .iter()
            .filter_map(|slot| {
                let opened = slot.database.get()?;
                Some(DatabaseReport {
                    name: slot.config.name.clone(),
                    location: slot.config.location.clone(),
                    inspected: opened.inspected(),
                })
            })
            .collect()
    }

    /// Why each open database cannot serve, for the readiness probe: its
    /// file must still be where the table says (a database deleted or
    /// unmounted under a running host still answers from its open
    /// connections, to nobody's benefit) and a query must run. A database
    /// no app has used yet is not opened for the probe's sake.
    pub fn unreachable_databases(&self) -> Vec<String> {
        self.databases
            .iter()
            .filter_map(|slot| {
                let database = slot.database.get()?;
                let name = &slot.config.name;
                if let Location::Sqlite(path) = &slot.config.location
                    && let Err(error) = std::fs::metadata(path)
                {
                    return Some(format!("database {name}: {}: {error}", path.display()));
                }
                database
                    .query("SELECT 1", &[])
                    .err()
                    .map(|failure| format!("database {name}: {}", DbError::from(failure).message))
            })
            .collect()
    }

    /// Closes every open database (after the last request and the apps'
    /// shutdown), so that their write-ahead logs are folded back.
    pub fn close(&self) {
        for slot in &self.databases {
            if let Some(database) = slot.database.get() {
                database.close();
            }
        }
    }

    fn prompt(&self, text: &str, hidden: bool) -> Result<String, String> {
        if self.mode != Mode::Command {
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

/// Refuses to go on when the data folder holds the site database of a
/// release before named databases (`app.db`, never served by this host)
/// and no database the table declares is that file: the apps would start
/// on empty databases of their own, and the site would look empty.
fn check_legacy_database(table: &MountTable) -> Result<(), String> {
    let path = table.data_dir.join(LEGACY_DATABASE_FILE);
    let claimed = table
        .databases
        .iter()
        .any(|database| database.declared && database.location == Location::Sqlite(path.clone()));
    if claimed || !path.is_file() {
        return Ok(());
    }
    match host_database::is_legacy(&path) {
        Ok(false) => Ok(()),
        Ok(true) => Err(format!(
            "{}: {} holds the site database of an earlier release, and no database of this table uses it: declare it and list it in the mounts that use it, e.g. \"databases\": {{\"blog\": {{\"url\": \"sqlite:{LEGACY_DATABASE_FILE}\"}}}} and \"databases\": [\"blog\"] in the blog's mounts (nothing was changed)",
            table.file.display(),
            path.display()
        )),
        Err(failure) => Err(format!(
            "{}: cannot tell whether it is the site database of an earlier release: {failure}",
            path.display()
        )),
    }
}

/// The services of a mount.
pub struct MountServices {
    logger: AppLogger,
    site: Arc<SiteServices>,
    mount: String,
    /// Where the mount's database list is, to name it in errors
    /// (`mounts[2].databases in /site/plugins.json`).
    databases_key: String,
    /// The databases it may use; the first is its default.
    databases: Vec<Arc<DatabaseSlot>>,
}

impl MountServices {
    /// The services for `mount` (at `index` in the table), logging under
    /// `logger`; the loader wraps them in the host object of the app's
    /// contract.
    pub fn new(
        mount: &Mount,
        index: usize,
        logger: AppLogger,
        site: Arc<SiteServices>,
    ) -> MountServices {
        let databases = mount
            .databases
            .iter()
            .filter_map(|name| {
                site.databases
                    .iter()
                    .find(|slot| slot.config.name == *name)
                    .cloned()
            })
            .collect();
        MountServices {
            logger,
            mount: mount.name.clone(),
            databases_key: format!("mounts[{index}].databases in {}", site.table_file.display()),
            databases,
            site,
        }
    }

    /// The database `name` if the mount may use it (`""`: its default).
    fn database(&self, name: &str) -> Result<&Database, DbError> {
        let slot = if name.is_empty() {
            self.databases.first()
        } else {
            self.databases.iter().find(|slot| slot.config.name == name)
        };
        match slot {
            Some(slot) => slot.get(),
            None => Err(self.not_granted(name)),
        }
    }

    fn not_granted(&self, name: &str) -> DbError {
        let declared = self
            .site
            .databases
            .iter()
            .any(|slot| slot.config.name == name && slot.config.declared);
        let fix = if declared {
            format!("add {name:?} to {}", self.databases_key)
        } else {
            format!(
                "declare it under \"databases\" and add {name:?} to {}",
                self.databases_key
            )
        };
        DbError {
            kind: Kind::Refused.as_str().into(),
            message: format!(
                "the mount {:?} may not use the database {name:?}: {fix} (the first listed is the mount's default)",
                self.mount
            )
            .into(),
        }
    }

    fn store_upload(&self, data: &[u8], extension: &str) -> Result<String, String> {
        let uploads = self.site.uploads()?.ok_or_else(inspecting)?;
        let database = self
            .database("")
            .map_err(|error| error.message.to_string())?;
        let name = uploads.store(data, extension)?;
        if let Err(failure) = database.record_upload(&name, now()) {
            // keep no file that no database owns
            let _ = uploads.delete(&name);
            return Err(format!("cannot record the upload: {failure}"));
        }
        Ok(name)
    }

    fn delete_upload(&self, name: &str) -> Result<bool, String> {
        let uploads = self.site.uploads()?.ok_or_else(inspecting)?;
        uploads::check_name(name)?;
        let database = self
            .database("")
            .map_err(|error| error.message.to_string())?;
        if database
            .forget_upload(name)
            .map_err(|failure| failure.message)?
        {
            return uploads.delete(name);
        }
        if uploads.contains(name)? {
            return Err(format!(
                "the upload {name:?} was stored through a mount whose default database is not {:?}: an app may delete only the uploads stored through a mount that shares its default database",
                database.name()
            ));
        }
        Ok(false)
    }
}

fn inspecting() -> String {
    "host check and host routes only look: no upload is stored or deleted".to_owned()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
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
            // one event, one line: a newline an app logs from a client's
            // input (a username) must not start a forged line
            let message = crate::logging::one_line(message.as_str());
            self.logger.emit(level, module.as_str(), &message)
        }));
    }

    fn db_query(&self, sql: RStr<'_>, params: RSlice<'_, DbValue>) -> RResult<DbRows, DbError> {
        self.db_query_in(RStr::from_str(""), sql, params)
    }

    fn db_transaction(
        &self,
        statements: RSlice<'_, DbStatement>,
    ) -> RResult<RVec<DbRows>, DbError> {
        self.db_transaction_in(RStr::from_str(""), statements)
    }

    fn db_migrate(&self, steps: RSlice<'_, RStr<'_>>) -> RResult<u32, DbError> {
        guarded(db_panic, || {
            let steps: Vec<&str> = steps.iter().map(RStr::as_str).collect();
            self.database("")?
                .migrate_user_version(&steps)
                .map_err(Into::into)
        })
    }

    fn store_upload(&self, data: RSlice<'_, u8>, extension: RStr<'_>) -> RResult<RString, RString> {
        guarded(service_panic, || {
            MountServices::store_upload(self, data.as_slice(), extension.as_str())
                .map(Into::into)
                .map_err(Into::into)
        })
    }

    fn delete_upload(&self, name: RStr<'_>) -> RResult<bool, RString> {
        guarded(service_panic, || {
            MountServices::delete_upload(self, name.as_str()).map_err(Into::into)
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

    fn db_open(&self, database: RStr<'_>) -> RResult<RString, DbError> {
        guarded(db_panic, || {
            self.database(database.as_str())
                .map(|database| RString::from(database.name()))
        })
    }

    fn db_query_in(
        &self,
        database: RStr<'_>,
        sql: RStr<'_>,
        params: RSlice<'_, DbValue>,
    ) -> RResult<DbRows, DbError> {
        guarded(db_panic, || {
            self.database(database.as_str())?
                .query(sql.as_str(), params.as_slice())
                .map_err(Into::into)
        })
    }

    fn db_transaction_in(
        &self,
        database: RStr<'_>,
        statements: RSlice<'_, DbStatement>,
    ) -> RResult<RVec<DbRows>, DbError> {
        guarded(db_panic, || {
            self.database(database.as_str())?
                .transaction(statements.as_slice())
                .map_err(Into::into)
        })
    }

    fn db_migrate_in(
        &self,
        database: RStr<'_>,
        namespace: RStr<'_>,
        steps: RSlice<'_, RStr<'_>>,
        options: RSlice<'_, Extension>,
    ) -> RResult<DbMigration, DbError> {
        guarded(db_panic, || {
            let steps: Vec<&str> = steps.iter().map(RStr::as_str).collect();
            let adopt = host_database::adopts_user_version(options.as_slice());
            let database = self.database(database.as_str())?;
            let migration = database.migrate(namespace.as_str(), &steps, adopt)?;
            if migration.after > migration.before {
                tracing::info!(
                    mount = %self.mount,
                    database = %database.name(),
                    namespace = %namespace.as_str(),
                    "migrated from step {} to {}",
                    migration.before,
                    migration.after
                );
            }
            Ok(migration.into())
        })
    }
}

/// The same services for apps of contract 1.0, whose host object has the
/// methods of 1.0 only.
impl v1_0::Host for MountServices {
    fn log(&self, level: u8, module: RStr<'_>, message: RStr<'_>) {
        Host::log(self, level, module, message)
    }

    fn db_query(&self, sql: RStr<'_>, params: RSlice<'_, DbValue>) -> RResult<DbRows, DbError> {
        Host::db_query(self, sql, params)
    }

    fn db_transaction(
        &self,
        statements: RSlice<'_, DbStatement>,
    ) -> RResult<RVec<DbRows>, DbError> {
        Host::db_transaction(self, statements)
    }

    fn db_migrate(&self, steps: RSlice<'_, RStr<'_>>) -> RResult<u32, DbError> {
        Host::db_migrate(self, steps)
    }

    fn store_upload(&self, data: RSlice<'_, u8>, extension: RStr<'_>) -> RResult<RString, RString> {
        Host::store_upload(self, data, extension)
    }

    fn delete_upload(&self, name: RStr<'_>) -> RResult<bool, RString> {
        Host::delete_upload(self, name)
    }

    fn prompt(&self, text: RStr<'_>, hidden: bool) -> RResult<RString, RString> {
        Host::prompt(self, text, hidden)
    }
}
