//! A PostgreSQL server of the test's own: Debian's programs, a cluster
//! made with `initdb` in a temporary folder, listening on 127.0.0.1 on a
//! free port, stopped and deleted when dropped. PostgreSQL refuses to run
//! as root: a test run as root runs it as `nobody` (`setpriv`, which runs
//! the program in its own place, so that the server's pid is the child's
//! and a signal reaches it), on a folder given to that user.

use std::{
    net::TcpListener,
    os::unix::fs::chown,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

/// The user the server runs as when the tests run as root.
const UNPRIVILEGED: &str = "nobody";

/// A running server; `postgres` is its superuser, trusted without a
/// password on loopback.
pub struct Postgres {
    folder: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    server: Child,
}

/// The newest installed version's programs (`/usr/lib/postgresql/N/bin`).
fn programs() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server is installed (.ci/install tests installs Debian's postgresql)")
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    versions.sort_by_key(|bin| {
        bin.parent()
            .and_then(Path::file_name)
            .and_then(|name| name.to_str()?.parse::<u32>().ok())
    });
    versions.pop().expect("a PostgreSQL version with initdb")
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|metadata| std::os::unix::fs::MetadataExt::uid(&metadata) == 0)
        .unwrap_or(false)
}

/// `program` with `args`, as the unprivileged user when the tests are root.
fn command(program: &Path, args: &[&str]) -> Command {
    if running_as_root() {
        let mut command = Command::new("setpriv");
        command
            .args([
                &format!("--reuid={UNPRIVILEGED}"),
                "--regid=nogroup",
                "--clear-groups",
                "--",
            ])
            .arg(program)
            .args(args);
        command
    } else {
        let mut command = Command::new(program);
        command.args(args);
        command
    }
}

impl Postgres {
    /// Makes a cluster and starts its server; panics, saying why, when it
    /// cannot.
    pub fn start() -> Postgres {
        let bin = programs();
        let folder = tempfile::tempdir().unwrap();
        if running_as_root() {
            let uid = users_id(UNPRIVILEGED);
            chown(folder.path(), Some(uid), None).unwrap();
        }
        let data = folder.path().join("data");
        let data_text = data.to_str().unwrap();
        let init = command(
            &bin.join("initdb"),
            &[
                "-D",
                data_text,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )
        .output()
        .unwrap();
        assert!(
            init.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let port_text = port.to_string();
        let socket_folder = folder.path().to_str().unwrap().to_owned();
        let server = command(
            &bin.join("postgres"),
            &[
                "-D",
                data_text,
                "-p",
                &port_text,
                "-k",
                &socket_folder,
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let postgres = Postgres {
            folder,
            bin,
            port,
            server,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !postgres.psql("SELECT 1").status.success() {
            assert!(Instant::now() < deadline, "PostgreSQL did not start");
            thread::sleep(Duration::from_millis(100));
        }
        postgres
    }

    /// Runs `sql` with psql as `postgres` (errors verbose: with their
    /// SQLSTATE), stopping at the first error.
    pub fn psql(&self, sql: &str) -> Output {
        self.psql_in("postgres", sql)
    }

    /// [`Postgres::psql`] in the database `database`.
    pub fn psql_in(&self, database: &str, sql: &str) -> Output {
        Command::new(self.psql_program())
            .args(self.psql_args(database))
            .args(["-c", sql])
            .output()
            .unwrap()
    }

    /// psql, of the server's version.
    pub fn psql_program(&self) -> PathBuf {
        self.bin.join("psql")
    }

    /// psql's arguments to reach `database` as `postgres`: unaligned rows,
    /// stopping at the first error, errors with their SQLSTATE.
    pub fn psql_args(&self, database: &str) -> Vec<String> {
        [
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "-d",
            database,
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            "VERBOSITY=verbose",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// A new database `name` owned by a new role of that name, which is no
    /// superuser (as a site's role should be): its URL.
    pub fn database(&self, name: &str) -> String {
        // one statement per call: CREATE DATABASE cannot run inside the
        // transaction psql makes of several
        for sql in [
            format!("CREATE ROLE {name} LOGIN"),
            format!("CREATE DATABASE {name} OWNER {name}"),
        ] {
            let made = self.psql(&sql);
            assert!(
                made.status.success(),
                "{sql}: {}",
                String::from_utf8_lossy(&made.stderr)
            );
        }
        format!("postgres://{name}@127.0.0.1:{}/{name}", self.port)
    }

    /// The server's process id (its backends are its children).
    pub fn pid(&self) -> u32 {
        self.server.id()
    }

    /// The cluster's folder.
    pub fn folder(&self) -> &Path {
        self.folder.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT is PostgreSQL's fast shutdown
        let _ = Command::new("kill")
            .args(["-INT", &self.server.id().to_string()])
            .status();
        let _ = self.server.wait();
    }
}

/// The numeric id of user `name`, from /etc/passwd.
fn users_id(name: &str) -> u32 {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            (fields.next() == Some(name))
                .then(|| fields.nth(1)?.parse().ok())
                .flatten()
        })
        .unwrap_or_else(|| panic!("no user {name} to run PostgreSQL as"))
}
