//! Zero-downtime restart: on `SIGHUP` (or `host reload`) the running host
//! starts a successor process that inherits the listening socket, waits
//! until the successor says it is serving, and only then stops accepting,
//! finishes its in-flight requests and exits. If the successor cannot start
//! (an invalid mount table, a broken library), the running host keeps
//! serving and logs why. Both processes accept on the same socket for a
//! moment, so no connection is refused or dropped.
//!
//! Also here: the listening socket a predecessor (or systemd) handed to this
//! process, the pid file `host reload` reads, and this binary's own path.

use std::{
    io::{Read, Write},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use rustix::io::{FdFlags, fcntl_setfd};

/// The variable naming the inherited listening socket's descriptor.
pub const LISTEN_FD: &str = "HOST_LISTEN_FD";

/// The variable naming the pipe the successor reports readiness on.
const READY_FD: &str = "HOST_READY_FD";

/// How long a successor may take to start serving.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Takes ownership of the descriptor named by the environment variable
/// `variable`, if it is set and open.
// Taking ownership of an inherited descriptor is the one thing here that
// std cannot do safely.
#[allow(unsafe_code)]
pub fn take_inherited(variable: &str) -> Result<Option<OwnedFd>, String> {
    let Some(value) = std::env::var_os(variable) else {
        return Ok(None);
    };
    let fd = value
        .to_str()
        .and_then(|fd| fd.parse::<i32>().ok())
        .filter(|fd| *fd >= 0)
        .ok_or_else(|| format!("{variable} is not a file descriptor number"))?;
    take_fd(fd).map(Some)
}

/// Takes ownership of descriptor `fd`, handed to this process to own.
#[allow(unsafe_code)]
pub fn take_fd(fd: i32) -> Result<OwnedFd, String> {
    if !Path::new(&format!("/proc/self/fd/{fd}")).exists() {
        return Err(format!("inherited descriptor {fd} is not open"));
    }
    // SAFETY: the descriptor is open (checked above) and was handed to this
    // process to own, by its parent or by systemd; nothing else in the
    // process knows its number, so nothing else uses or closes it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Tells the process that started this one that it is serving now;
/// whether there is one (this process is a successor).
pub fn notify_ready() -> bool {
    match take_inherited(READY_FD) {
        Ok(Some(fd)) => {
            let mut pipe = std::fs::File::from(fd);
            let _ = pipe.write_all(b"ready\n");
            true
        }
        Ok(None) => false,
        Err(error) => {
            tracing::warn!("cannot report readiness: {error}");
            false
        }
    }
}

/// Starts a successor with this process's arguments and a copy of
/// `listener`, and waits until it serves. Returns its process id.
pub async fn start_successor(listener: &OwnedFd) -> Result<u32, String> {
    let socket = listener
        .try_clone()
        .map_err(|error| format!("cannot share the socket: {error}"))?;
    let (mut ready, ready_writer) =
        std::io::pipe().map_err(|error| format!("cannot make a pipe: {error}"))?;
    // Both descriptors must survive the successor's exec.
    fcntl_setfd(&socket, FdFlags::empty()).map_err(|error| error.to_string())?;
    fcntl_setfd(&ready_writer, FdFlags::empty()).map_err(|error| error.to_string())?;
    let exe = current_exe().map_err(|error| error.to_string())?;
    let mut child = Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .env(LISTEN_FD, socket.as_raw_fd().to_string())
        .env(READY_FD, ready_writer.as_raw_fd().to_string())
        .spawn()
        .map_err(|error| format!("cannot start {}: {error}", exe.display()))?;
    // Only the successor may hold the write end now, so that its exit
    // closes the pipe.
    drop(ready_writer);
    drop(socket);
    let pid = child.id();
    let said = tokio::task::spawn_blocking(move || {
        let mut said = String::new();
        let _ = ready.read_to_string(&mut said);
        said
    });
    let outcome = match tokio::time::timeout(READY_TIMEOUT, said).await {
        Ok(Ok(said)) if said.starts_with("ready") => Ok(pid),
        Ok(_) => Err(match child.wait() {
            Ok(status) => format!("the new process (pid {pid}) exited before serving: {status}"),
            Err(error) => format!("the new process (pid {pid}) failed: {error}"),
        }),
        Err(_) => {
            let _ = child.kill();
            Err(format!(
                "the new process (pid {pid}) did not serve within {READY_TIMEOUT:?}"
            ))
        }
    };
    // Dropping the handle neither waits for nor stops the successor.
    drop(child);
    outcome
}

/// Where the running host writes its process id, for `host reload`.
pub fn pid_file(data_dir: &Path) -> PathBuf {
    data_dir.join("host.pid")
}

/// Records this process's id, when it started and the mount table it
/// serves; the successor overwrites it.
pub fn write_pid_file(data_dir: &Path, table: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    let pid = std::process::id();
    let started = start_time(pid).unwrap_or_default();
    let table = std::fs::canonicalize(table).unwrap_or_else(|_| table.to_owned());
    // written aside and renamed into place: a `host reload` reading the
    // file while a successor writes it must see the old one or the new,
    // never an empty one
    let file = pid_file(data_dir);
    let written = file.with_extension(format!("pid.{pid}"));
    std::fs::write(
        &written,
        format!("{pid}\nstarted {started}\nserves {}\n", table.display()),
    )?;
    std::fs::rename(&written, &file).inspect_err(|_| {
        let _ = std::fs::remove_file(&written);
    })
}

/// Removes the pid file if it still names this process.
pub fn remove_pid_file(data_dir: &Path) {
    let file = pid_file(data_dir);
    if std::fs::read_to_string(&file).is_ok_and(|text| {
        text.lines().next().map(str::trim) == Some(std::process::id().to_string().as_str())
    }) {
        let _ = std::fs::remove_file(file);
    }
}

/// When process `pid` started, in clock ticks since boot (`/proc/PID/stat`,
/// field 22): a process id is reused, this pair never is.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name, field 2, is in parentheses and may hold anything
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// What a pid file says: the process, when it started, the table it
/// serves (the last two missing from files older hosts wrote).
#[derive(Debug, PartialEq, Eq)]
struct PidFile {
    pid: u32,
    started: Option<u64>,
    serves: Option<PathBuf>,
}

fn parse_pid_file(text: &str) -> Option<PidFile> {
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    let mut parsed = PidFile {
        pid,
        started: None,
        serves: None,
    };
    for line in lines {
        if let Some(started) = line.strip_prefix("started ") {
            parsed.started = started.trim().parse().ok();
        } else if let Some(table) = line.strip_prefix("serves ") {
            parsed.serves = Some(PathBuf::from(table));
        }
    }
    Some(parsed)
}

/// Sends `SIGHUP` to the host serving `table`, whose data folder is
/// `data_dir`, once sure the process the pid file names is that host: a
/// stale file's id may since belong to any process, which the signal
/// would kill. Returns its process id.
pub fn signal_reload(data_dir: &Path, table: &Path) -> Result<u32, String> {
    let file = pid_file(data_dir);
    let text = std::fs::read_to_string(&file).map_err(|error| {
        format!(
            "{}: {error} (is the host running with this mount table?)",
            file.display()
        )
    })?;
    let named =
        parse_pid_file(&text).ok_or_else(|| format!("{}: not a process id", file.display()))?;
    let pid = named.pid;
    let stale = |why: &str| {
        format!(
            "{}: process {pid} {why}: the file is stale; start the host with `host serve` (nothing was signalled)",
            file.display()
        )
    };
    let running = start_time(pid).ok_or_else(|| stale("is not running"))?;
    match named.started {
        Some(started) if started != running => return Err(stale("is another process now")),
        Some(_) => {}
        // a file from a host before this check: the process must at least
        // be this program
        None if !same_program(pid) => return Err(stale("is not a host")),
        None => {}
    }
    let table = std::fs::canonicalize(table).unwrap_or_else(|_| table.to_owned());
    if let Some(serves) = &named.serves
        && *serves != table
    {
        return Err(format!(
            "{}: process {pid} serves {}, not {}: reload it with that mount table (nothing was signalled)",
            file.display(),
            serves.display(),
            table.display()
        ));
    }
    let target = rustix::process::Pid::from_raw(pid as i32)
        .ok_or_else(|| format!("{}: not a process id", file.display()))?;
    rustix::process::kill_process(target, rustix::process::Signal::HUP)
        .map_err(|error| format!("cannot signal host {pid}: {error}"))?;
    Ok(pid)
}

/// Whether process `pid` runs a file of the same name as this program.
fn same_program(pid: u32) -> bool {
    let name = |path: PathBuf| {
        let text = path.to_string_lossy().into_owned();
        let text = text.strip_suffix(" (deleted)").unwrap_or(&text).to_owned();
        Path::new(&text).file_name().map(|name| name.to_owned())
    };
    let theirs = std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .and_then(name);
    let ours = std::env::current_exe().ok().and_then(name);
    theirs.is_some() && theirs == ours
}

/// This binary's path. After a rebuild replaced the file, Linux reports the
/// old one as `<path> (deleted)`; the new one is at `<path>`.
pub fn current_exe() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(
        match exe
            .to_str()
            .and_then(|path| path.strip_suffix(" (deleted)"))
        {
            Some(path) => PathBuf::from(path),
            None => exe,
        },
    )
}

/// The listening socket handed over by the process this one replaced
/// (`HOST_LISTEN_FD`), or by systemd socket activation (`LISTEN_FDS`).
/// Called first thing, before any file is opened, so that descriptor 3 can
/// only be what the parent passed.
pub(super) fn inherited_listener() -> anyhow::Result<Option<OwnedFd>> {
    use std::os::fd::IntoRawFd;
    let owned = match take_inherited(LISTEN_FD).map_err(anyhow::Error::msg)? {
        Some(owned) => owned,
        None if std::env::var("LISTEN_PID").ok() == Some(std::process::id().to_string())
            && std::env::var("LISTEN_FDS")
                .is_ok_and(|count| count.parse::<u32>().unwrap_or(0) >= 1) =>
        {
            // systemd passes its sockets from descriptor 3 (sd_listen_fds(3)).
            take_fd(3).map_err(anyhow::Error::msg)?
        }
        None => return Ok(None),
    };
    let is_stream = rustix::net::sockopt::socket_type(&owned)
        .is_ok_and(|socket_type| socket_type == rustix::net::SocketType::STREAM);
    if !is_stream {
        // Not ours to close: let go of it untouched.
        let fd = owned.into_raw_fd();
        anyhow::bail!("the inherited descriptor {fd} is not a listening stream socket");
    }
    Ok(Some(owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_files_of_this_and_older_hosts_are_read() {
        assert_eq!(
            parse_pid_file("42\nstarted 1234\nserves /srv/site/plugins.json\n"),
            Some(PidFile {
                pid: 42,
                started: Some(1234),
                serves: Some(PathBuf::from("/srv/site/plugins.json")),
            })
        );
        assert_eq!(
            parse_pid_file("42\n"),
            Some(PidFile {
                pid: 42,
                started: None,
                serves: None
            })
        );
        assert_eq!(parse_pid_file("nonsense\n"), None);
    }

    #[test]
    fn a_process_start_time_is_read_from_proc() {
        let mine = start_time(std::process::id()).unwrap();
        assert_eq!(start_time(std::process::id()), Some(mine));
        assert!(same_program(std::process::id()));
    }
}
