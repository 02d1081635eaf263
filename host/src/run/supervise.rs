//! Keeping one process id across reloads, for PID 1 in a container (or
//! `host serve --supervise` under any manager that follows one process).
//!
//! A reload starts a successor and ends the old process; when that process
//! is PID 1 the container stops with it. So PID 1 stays a small
//! supervisor, as tini or dumb-init would: it starts the serving process,
//! forwards it every signal an operator sends (`SIGTERM`, `SIGINT`,
//! `SIGHUP`, `SIGUSR1`, `SIGQUIT`), reaps every orphan (a container's PID 1
//! inherits them all; elsewhere it is made their subreaper), and exits with
//! the serving process's status. When a serving process hands over, it
//! writes `serving <pid>` on the pipe named by [`SUPERVISOR_FD`] (its
//! successors inherit it), and the successor is the one signals go to.

use std::{
    io::{BufRead, Write},
    os::fd::{AsRawFd, OwnedFd},
    process::{Command, ExitCode},
    sync::{Mutex, OnceLock},
};

use anyhow::Context as _;
use rustix::{
    io::{FdFlags, fcntl_setfd},
    process::{Pid, Signal, WaitOptions, WaitStatus, kill_process, waitpid},
};
use tokio::signal::unix::{SignalKind, signal};

use super::handover::{current_exe, take_inherited};

/// The variable naming the pipe a serving process reports hand-overs on.
pub const SUPERVISOR_FD: &str = "HOST_SUPERVISOR_FD";

/// Whether this process should supervise instead of serving: asked to, or
/// PID 1, and not started by a supervisor.
pub fn wanted(asked: bool) -> bool {
    (asked || std::process::id() == 1) && std::env::var_os(SUPERVISOR_FD).is_none()
}

/// Starts the serving process and supervises it (and its successors)
/// until the last one exits; its exit status.
pub fn supervise() -> anyhow::Result<ExitCode> {
    if std::process::id() != 1 {
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
            .context("cannot become the subreaper of the serving processes")?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the supervisor's runtime")?;
    runtime.block_on(async {
        // handlers first: a signal sent before the child runs is passed on,
        // and an exit that early is seen
        let signals = Signals::listen()?;
        let (reader, writer) = std::io::pipe().context("cannot make the supervisor's pipe")?;
        // the serving process and its successors write on it
        fcntl_setfd(&writer, FdFlags::empty())?;
        let exe = current_exe().map_err(anyhow::Error::msg)?;
        let child = Command::new(&exe)
            .args(std::env::args_os().skip(1))
            .env(SUPERVISOR_FD, writer.as_raw_fd().to_string())
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        drop(writer);
        let first = Pid::from_child(&child);
        // reaped with waitpid below, never through the handle
        drop(child);
        watch(first, OwnedFd::from(reader), signals).await
    })
}

/// The signals passed on to the serving process, and children's exits.
struct Signals {
    forwarded: Vec<(tokio::signal::unix::Signal, Signal)>,
    children: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> std::io::Result<Signals> {
        let kinds = [
            (SignalKind::terminate(), Signal::TERM),
            (SignalKind::interrupt(), Signal::INT),
            (SignalKind::hangup(), Signal::HUP),
            (SignalKind::user_defined1(), Signal::USR1),
            (SignalKind::quit(), Signal::QUIT),
        ];
        let mut forwarded = Vec::new();
        for (kind, sent) in kinds {
            forwarded.push((signal(kind)?, sent));
        }
        Ok(Signals {
            forwarded,
            children: signal(SignalKind::child())?,
        })
    }
}

/// Forwards signals to the serving process and follows its hand-overs
/// until the serving process exits without one.
async fn watch(first: Pid, pipe: OwnedFd, signals: Signals) -> anyhow::Result<ExitCode> {
    let Signals {
        mut forwarded,
        mut children,
    } = signals;
    // read on a thread of its own: a line waiting in the pipe when the old
    // process exits is then sure to be seen (see the exit below)
    let (sender, mut successors) = tokio::sync::mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("supervisor-pipe".to_owned())
        .spawn(move || {
            for line in std::io::BufReader::new(std::fs::File::from(pipe)).lines() {
                let Ok(line) = line else { break };
                if let Some(pid) = parse_serving(&line) {
                    let _ = sender.send(pid);
                }
            }
        })?;
    let mut serving = first;
    let mut successor: Option<Pid> = None;
    loop {
        let received = futures_util::future::select_all(
            forwarded
                .iter_mut()
                .map(|(stream, sent)| Box::pin(async { stream.recv().await.map(|_| *sent) })),
        );
        tokio::select! {
            (signal, _, _) = received => {
                if let Some(signal) = signal {
                    let _ = kill_process(serving, signal);
                }
            }
            Some(pid) = successors.recv() => successor = Some(pid),
            _ = children.recv() => {
                while let Ok(Some((pid, status))) = waitpid(None, WaitOptions::NOHANG) {
                    if pid != serving {
                        continue; // an orphan, reaped
                    }
                    // the old process writes the line a second or more
                    // before it exits (it drains first); a moment's grace
                    // for the reader anyway
                    if successor.is_none()
                        && let Ok(Some(pid)) = tokio::time::timeout(
                            std::time::Duration::from_millis(100),
                            successors.recv(),
                        )
                        .await
                    {
                        successor = Some(pid);
                    }
                    // a successor that died first was reaped as an orphan
                    let alive = |next: &Pid| rustix::process::test_kill_process(*next).is_ok();
                    match successor.take().filter(|next| *next != serving && alive(next)) {
                        Some(next) => serving = next,
                        None => return Ok(exit_code(status)),
                    }
                }
            }
        }
    }
}

/// The process id in a `serving <pid>` line.
fn parse_serving(line: &str) -> Option<Pid> {
    let pid = line.strip_prefix("serving ")?.trim().parse().ok()?;
    Pid::from_raw(pid)
}

/// A child's status as this process's exit code: its own, or 128 and the
/// signal that ended it, as shells report it.
fn exit_code(status: WaitStatus) -> ExitCode {
    let code = status
        .exit_status()
        .or_else(|| status.terminating_signal().map(|signal| 128 + signal))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// The supervisor's pipe, when this process serves under one.
static PIPE: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();

/// Takes the supervisor's pipe, if there is one; kept open (and open
/// across `exec`) for the successors this process may start.
pub fn adopt_pipe() {
    PIPE.get_or_init(|| match take_inherited(SUPERVISOR_FD) {
        Ok(fd) => fd.map(|fd| Mutex::new(std::fs::File::from(fd))),
        Err(error) => {
            tracing::warn!("no supervisor to tell of reloads: {error}");
            None
        }
    });
}

/// Tells the supervisor, if any, that `pid` serves now.
pub fn handed_over(pid: u32) {
    if let Some(Some(pipe)) = PIPE.get() {
        let mut pipe = pipe
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(error) = writeln!(pipe, "serving {pid}") {
            tracing::warn!(%error, "cannot tell the supervisor which process serves");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_over_lines_name_a_process() {
        let rows = [
            ("serving 42", Some(42)),
            ("serving 42\n", Some(42)),
            ("serving 0", None),
            ("serving x", None),
            ("ready", None),
        ];
        for (line, expected) in rows {
            assert_eq!(
                parse_serving(line)
                    .map(Pid::as_raw_nonzero)
                    .map(|pid| pid.get()),
                expected,
                "{line:?}"
            );
        }
    }
}
