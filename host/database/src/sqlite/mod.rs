//! SQLite, the engine of a site on one machine: files the host opens (apps
//! never link SQLite themselves: two copies of SQLite on one file can
//! corrupt it, as SQLite's "How To Corrupt An SQLite Database File" says in
//! section 2.2.1).
//!
//! One writer connection behind a lock serialises writes (SQLite allows one
//! writer at a time anyway, and waiting on a lock is cheaper than retrying
//! on `SQLITE_BUSY`); read-only statements run on a pool of reader
//! connections, which WAL mode lets proceed alongside the writer. Every
//! connection judges apps' statements with an authorizer (the `authorizer`
//! module says what it refuses). Migrations keep their history in a table
//! of the host's (the `migrations` module).

mod authorizer;
mod migrations;
mod statement;

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use abi_stable::std_types::RVec;
use app_api_abi::{DbRows, DbStatement, DbValue};
use rusqlite::{Connection, OpenFlags};

use crate::{
    failure::{Failure, Kind},
    history::{Inspected, Migration},
};
use authorizer::Authorizer;
use statement::{check_placeholders, run};

/// How long a statement waits for another process's lock before `busy`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection with its authorizer.
pub(crate) struct Conn {
    connection: Connection,
    authorizer: Arc<Authorizer>,
}

impl Conn {
    fn new(connection: Connection) -> Result<Conn, Failure> {
        connection.busy_timeout(BUSY_TIMEOUT)?;
        let authorizer = Authorizer::install(&connection);
        Ok(Conn {
            connection,
            authorizer,
        })
    }

    /// An empty in-memory database (to try migration steps on).
    pub(crate) fn in_memory() -> Result<Conn, Failure> {
        Conn::new(Connection::open_in_memory()?)
    }

    /// Runs the host's own statements, unjudged.
    pub(crate) fn host<T>(&self, body: impl FnOnce(&Connection) -> T) -> T {
        self.authorizer.as_host(|| body(&self.connection))
    }

    /// [`Conn::host`] with the connection to change (transactions), and
    /// the authorizer, for the app's parts (a migration step) inside.
    pub(crate) fn host_mut<T>(
        &mut self,
        body: impl FnOnce(&mut Connection, &Authorizer) -> T,
    ) -> T {
        let Conn {
            connection,
            authorizer,
        } = self;
        authorizer.as_host(|| body(connection, authorizer))
    }

    /// Runs an app's statements, judged; a refusal becomes a
    /// [`Kind::Refused`] failure that says why.
    fn app<T>(&self, body: impl FnOnce(&Connection) -> Result<T, Failure>) -> Result<T, Failure> {
        // Outside `host` the authorizer judges: no flag to set here, on
        // the path every query takes.
        body(&self.connection).map_err(|failure| match self.authorizer.take_refusal() {
            Some(reason) => Failure::new(Kind::Refused, reason),
            None => failure,
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a connection leaves no half-done Rust state in
    // it; a transaction it left open is rolled back before the next use.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How an inspecting database reads, if its file exists.
struct Inspection {
    /// The URI readers open (see [`Sqlite::inspect`]).
    uri: Option<String>,
    /// The copy readers open instead of a database nobody has open that
    /// has a write-ahead log left (see [`Sqlite::inspect`]).
    _copy: Option<tempfile::TempDir>,
    /// What migration calls found, for `host check` to report.
    seen: Mutex<Vec<Inspected>>,
}

/// `path` with `suffix` appended (`app.db` → `app.db-wal`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Whether another process has the database open: every connection holds
/// a read lock on byte 128 of the `-shm` file (SQLite's "DMS" slot, in
/// `os_unix.c`) while it is open. Asking (`F_GETLK`) takes no lock.
fn in_use(shm: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(file) = std::fs::File::open(shm) else {
        return false;
    };
    let mut lock = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 128,
        l_len: 1,
        l_pid: 0,
    };
    // SAFETY: fcntl(F_GETLK) reads and fills in the `flock` this function
    // owns, on a descriptor that stays open for the whole call.
    #[allow(unsafe_code)]
    let answered = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut lock) } == 0;
    answered && lock.l_type != libc::F_UNLCK as libc::c_short
}

/// One open SQLite database.
pub(crate) struct Sqlite {
    name: String,
    path: PathBuf,
    /// `None` when only inspecting, or once closed.
    writer: Mutex<Option<Conn>>,
    readers: Mutex<Vec<Conn>>,
    /// Idle reader connections kept open: as many as there can be handlers
    /// reading at once, so that under load every reader is reused. A
    /// reader made anew reads the schema and prepares its statements again:
    /// with a fixed 8, the blog's home page under `cargo xtask bench`'s load
    /// (the frontend alone runs up to 16 handlers at once) opened some 170
    /// connections a second and closed as many.
    max_idle_readers: usize,
    inspection: Option<Inspection>,
    closed: AtomicBool,
}

impl Sqlite {
    /// Opens (creating if needed) the database `name` at `path` to serve,
    /// in WAL mode with foreign keys on; up to `max_idle_readers` reader
    /// connections stay open between uses. The first time the host serves
    /// a database it adds its own tables; a database written by apps of
    /// contract 1.0 has its `user_version` kept for adoption, and its
    /// stored uploads, `legacy_uploads()`, recorded as its own.
    pub(crate) fn open(
        name: &str,
        path: &Path,
        max_idle_readers: usize,
        legacy_uploads: &dyn Fn() -> Vec<String>,
    ) -> Result<Sqlite, Failure> {
        let cannot = |failure: Failure| {
            failure.context(format_args!(
                "cannot open the database {name:?} ({})",
                path.display()
            ))
        };
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(|error| {
                Failure::new(
                    Kind::Other,
                    format!("cannot create {}: {error}", folder.display()),
                )
            })?;
        }
        let mut writer = Connection::open(path)
            .and_then(|connection| {
                connection.pragma_update(None, "journal_mode", "WAL")?;
                connection.pragma_update(None, "synchronous", "NORMAL")?;
                connection.pragma_update(None, "foreign_keys", "ON")?;
                Ok(connection)
            })
            .map_err(Failure::from)
            .and_then(Conn::new)
            .map_err(cannot)?;
        migrations::prepare_host_tables(&mut writer, legacy_uploads).map_err(cannot)?;
        Ok(Sqlite {
            name: name.to_owned(),
            path: path.to_owned(),
            writer: Mutex::new(Some(writer)),
            readers: Mutex::new(Vec::new()),
            max_idle_readers,
            inspection: None,
            closed: AtomicBool::new(false),
        })
    }

    /// The database `name` at `path` for looking only: nothing is created
    /// or written; statements that write and migrations are refused or
    /// reported (see [`Sqlite::inspected`]).
    ///
    /// Without a write-ahead log nobody has the database open, and it is
    /// read as immutable (no lock, no `-shm` file). With one, and another
    /// process using it, it is read in place (the live host's `-shm` is
    /// shared). With one left by a process that is gone (a crash, or a
    /// release that never closed its databases), reading in place would
    /// replay the log into a new `-shm`: a copy of the file and its log is
    /// read instead.
    pub(crate) fn inspect(name: &str, path: &Path) -> Sqlite {
        let (wal, shm) = (with_suffix(path, "-wal"), with_suffix(path, "-shm"));
        let mut copy = None;
        let uri = path.is_file().then(|| {
            if !wal.exists() {
                return format!("file:{}?immutable=1", uri_path(path));
            }
            if in_use(&shm) {
                return format!("file:{}?mode=ro", uri_path(path));
            }
            let copied = tempfile::tempdir().and_then(|folder| {
                let file = folder.path().join("copy.db");
                std::fs::copy(path, &file)?;
                std::fs::copy(&wal, with_suffix(&file, "-wal"))?;
                Ok((folder, file))
            });
            match copied {
                Ok((folder, file)) => {
                    copy = Some(folder);
                    format!("file:{}?mode=ro", uri_path(&file))
                }
                // then in place: still only read
                Err(_) => format!("file:{}?mode=ro", uri_path(path)),
            }
        });
        Sqlite {
            name: name.to_owned(),
            path: path.to_owned(),
            writer: Mutex::new(None),
            readers: Mutex::new(Vec::new()),
            max_idle_readers: 1,
            inspection: Some(Inspection {
                uri,
                _copy: copy,
                seen: Mutex::new(Vec::new()),
            }),
            closed: AtomicBool::new(false),
        }
    }

    /// Closes every connection; later calls fail. With the last connection
    /// of any process closed, SQLite folds the write-ahead log back into
    /// the file and removes it, so a stopped site's folder holds the
    /// database alone.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        lock(&self.readers).clear();
        *lock(&self.writer) = None;
    }

    fn reader(&self) -> Result<Conn, Failure> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Failure::stopped(&self.name));
        }
        if let Some(connection) = lock(&self.readers).pop() {
            return Ok(connection);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = match &self.inspection {
            None => Connection::open_with_flags(&self.path, flags)?,
            Some(Inspection { uri: Some(uri), .. }) => {
                Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)?
            }
            Some(Inspection { uri: None, .. }) => {
                return Err(Failure::new(
                    Kind::Other,
                    format!(
                        "the database {:?} ({}) does not exist yet: the host creates it when it serves (host check and host routes create nothing)",
                        self.name,
                        self.path.display()
                    ),
                ));
            }
        };
        Conn::new(connection)
    }

    fn give_back(&self, connection: Conn) {
        if !connection.connection.is_autocommit() {
            // Left open by a panic inside a call: never hand a connection
            // inside a transaction to the next caller.
            let rolled_back = connection.host(|c| c.execute_batch("ROLLBACK"));
            if rolled_back.is_err() {
                return;
            }
        }
        let mut readers = lock(&self.readers);
        if readers.len() < self.max_idle_readers && !self.closed.load(Ordering::Acquire) {
            readers.push(connection);
        }
    }

    fn writer(&self) -> Result<MutexGuard<'_, Option<Conn>>, Failure> {
        let writer = lock(&self.writer);
        if writer.is_some() {
            Ok(writer)
        } else if self.inspection.is_some() {
            Err(Failure::new(
                Kind::Refused,
                "host check and host routes only look: they run no statement that writes",
            ))
        } else {
            Err(Failure::stopped(&self.name))
        }
    }

    /// Runs one statement: on a reader when it only reads, else on the
    /// writer.
    pub(crate) fn query(&self, sql: &str, params: &[DbValue]) -> Result<DbRows, Failure> {
        let reader = self.reader()?;
        // `None`: the statement writes, so it runs on the writer
        let on_reader = reader.app(|connection| {
            let mut statement = connection.prepare_cached(sql)?;
            check_placeholders(&statement)?;
            if statement.readonly() {
                run(connection, &mut statement, params).map(Some)
            } else {
                Ok(None)
            }
        });
        self.give_back(reader);
        if let Some(rows) = on_reader? {
            return Ok(rows);
        }
        let writer = self.writer()?;
        let writer = writer.as_ref().expect("checked by writer()");
        writer.app(|connection| {
            let mut statement = connection.prepare_cached(sql)?;
            run(connection, &mut statement, params)
        })
    }

    /// Runs `statements` in one transaction; the first error rolls back.
    /// A transaction that only reads runs on a reader, so it sees one
    /// snapshot without waiting for the writer (and without making it wait).
    pub(crate) fn transaction(&self, statements: &[DbStatement]) -> Result<RVec<DbRows>, Failure> {
        let reader = self.reader()?;
        let read_only = statements.iter().try_fold(true, |all, statement| {
            reader.app(|connection| {
                let prepared = connection.prepare_cached(&statement.sql)?;
                Ok(all && prepared.readonly())
            })
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
        let writer = self.writer()?;
        run_all(
            writer.as_ref().expect("checked by writer()"),
            "BEGIN IMMEDIATE",
            statements,
        )
    }

    /// Applies the steps of `namespace` its history lacks, each once, in
    /// its own transaction, recorded with a checksum of its text; with
    /// `adopt_user_version`, first counts as its own the steps that a
    /// contract 1.0 app's `PRAGMA user_version` says were applied (once per
    /// database, and only when the objects those steps create are there).
    /// When inspecting, checks and reports instead (see [`Sqlite::inspected`]).
    pub(crate) fn migrate(
        &self,
        namespace: &str,
        steps: &[&str],
        adopt_user_version: bool,
    ) -> Result<Migration, Failure> {
        if let Some(inspection) = &self.inspection {
            let reader = inspection.uri.as_ref().map(|_| self.reader()).transpose()?;
            let seen = migrations::inspect(
                reader.as_ref(),
                &self.name,
                namespace,
                steps,
                adopt_user_version,
            )?;
            let migration = Migration {
                before: seen.applied,
                after: seen.applied,
            };
            lock(&inspection.seen).push(seen);
            return Ok(migration);
        }
        let mut writer = self.writer()?;
        migrations::migrate(
            writer.as_mut().expect("checked by writer()"),
            &self.name,
            namespace,
            steps,
            adopt_user_version,
        )
    }

    /// The migrations of an app of contract 1.0: one version for the whole
    /// database, in `PRAGMA user_version`, as that contract had them. When
    /// inspecting, checks and reports instead.
    pub(crate) fn migrate_user_version(&self, steps: &[&str]) -> Result<u32, Failure> {
        if let Some(inspection) = &self.inspection {
            let reader = inspection.uri.as_ref().map(|_| self.reader()).transpose()?;
            let seen = migrations::inspect_user_version(reader.as_ref(), &self.name, steps)?;
            let version = seen.applied;
            lock(&inspection.seen).push(seen);
            return Ok(version);
        }
        let mut writer = self.writer()?;
        migrations::migrate_user_version(
            writer.as_mut().expect("checked by writer()"),
            &self.name,
            steps,
        )
    }

    /// What migration calls found while inspecting, in call order.
    pub(crate) fn inspected(&self) -> Vec<Inspected> {
        self.inspection
            .as_ref()
            .map(|inspection| lock(&inspection.seen).clone())
            .unwrap_or_default()
    }

    /// Records that the upload `name` was stored through a mount whose
    /// default database this is.
    pub(crate) fn record_upload(&self, name: &str, stored_at: i64) -> Result<(), Failure> {
        let writer = self.writer()?;
        writer
            .as_ref()
            .expect("checked by writer()")
            .host(|connection| {
                connection.execute(
                    "INSERT OR IGNORE INTO _host_uploads (name, stored_at) VALUES (?1, ?2)",
                    (name, stored_at),
                )
            })?;
        Ok(())
    }

    /// Forgets the upload `name`; `false` when this database has no record
    /// of it (it was stored through a mount with another default database).
    pub(crate) fn forget_upload(&self, name: &str) -> Result<bool, Failure> {
        let writer = self.writer()?;
        let changed = writer
            .as_ref()
            .expect("checked by writer()")
            .host(|connection| {
                connection.execute("DELETE FROM _host_uploads WHERE name = ?1", [name])
            })?;
        Ok(changed > 0)
    }
}

/// Copies the SQLite database at `source` to the new file `destination`
/// as it is at one moment, while other connections read and write it
/// (SQLite's online backup, in one step: one read transaction, so one
/// snapshot).
pub(crate) fn backup(source: &Path, destination: &Path) -> Result<(), Failure> {
    let from = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    from.busy_timeout(BUSY_TIMEOUT)?;
    let mut to = Connection::open(destination)?;
    let backup = rusqlite::backup::Backup::new(&from, &mut to)?;
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        // -1: every page in this step
        match backup.step(-1)? {
            rusqlite::backup::StepResult::Done => return Ok(()),
            _ if std::time::Instant::now() > deadline => {
                return Err(Failure::new(
                    Kind::Busy,
                    format!(
                        "{} stayed locked for {} s",
                        source.display(),
                        BUSY_TIMEOUT.as_secs()
                    ),
                ));
            }
            // busy or locked by a writer: try again
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Whether the SQLite file at `path` is a site database of a release
/// before named databases: the host never served it (it has no
/// `_host_migrations`) and apps of contract 1.0 migrated it (its
/// `user_version` is above 0). Reads without creating or changing a file.
pub(crate) fn is_legacy(path: &Path) -> Result<bool, Failure> {
    let database = Sqlite::inspect("", path);
    if database
        .inspection
        .as_ref()
        .is_some_and(|inspection| inspection.uri.is_none())
    {
        return Ok(false);
    }
    let reader = database.reader()?;
    reader.host(|connection| -> Result<bool, Failure> {
        let version: u32 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let served = connection
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_host_migrations'",
                [],
                |_| Ok(()),
            )
            .is_ok();
        Ok(version > 0 && !served)
    })
}

/// A file path as the path of an SQLite URI (`file:` + this): `?`, `#` and
/// `%` would end or escape it.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for character in path.to_string_lossy().chars() {
        match character {
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            '%' => out.push_str("%25"),
            other => out.push(other),
        }
    }
    out
}

/// Runs `statements` on `connection` between `begin` and `COMMIT`;
/// the first error rolls everything back.
fn run_all(
    connection: &Conn,
    begin: &str,
    statements: &[DbStatement],
) -> Result<RVec<DbRows>, Failure> {
    connection.host(|c| -> Result<(), Failure> {
        if !c.is_autocommit() {
            // left open by a panic in an earlier call
            c.execute_batch("ROLLBACK")?;
        }
        c.prepare_cached(begin)?.execute([])?;
        Ok(())
    })?;
    let mut results = RVec::with_capacity(statements.len());
    for (index, statement) in statements.iter().enumerate() {
        let outcome = connection.app(|c| {
            let mut prepared = c.prepare_cached(&statement.sql)?;
            check_placeholders(&prepared)?;
            run(c, &mut prepared, &statement.params)
        });
        match outcome {
            Ok(rows) => results.push(rows),
            Err(failure) => {
                let _ = connection.host(|c| c.execute_batch("ROLLBACK"));
                return Err(
                    failure.context(format_args!("statement {} of the transaction", index + 1))
                );
            }
        }
    }
    let committed = connection.host(|c| {
        c.prepare_cached("COMMIT")
            .and_then(|mut commit| commit.execute([]))
    });
    if let Err(error) = committed {
        let _ = connection.host(|c| c.execute_batch("ROLLBACK"));
        return Err(error.into());
    }
    Ok(results)
}

#[cfg(test)]
mod tests;
