//! What the host tells systemd (`Type=notify`), through `$NOTIFY_SOCKET`:
//! `READY=1` once the mounts are loaded and the socket listens,
//! `RELOADING=1` when a reload starts, and when the successor serves, its
//! process id (`MAINPID=`) with `READY=1` again, sent by the old process,
//! which systemd still listens to (`NotifyAccess=main`), before it exits;
//! `STOPPING=1` on `SIGTERM`; a `STATUS=` line with each. Without the
//! variable (not under systemd) every call does nothing.

use sd_notify::NotifyState;

fn notify(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(error) = sd_notify::notify(false, states) {
        tracing::warn!(%error, "cannot notify systemd");
    }
}

/// The host serves.
pub fn ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload began (a successor is starting).
pub fn reloading() {
    let mut states = vec![
        NotifyState::Reloading,
        NotifyState::Status("reloading: starting a new process"),
    ];
    // systemd 253 and later want the time the reload began
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    notify(&states);
}

/// The successor `pid` serves: it is the service's main process now.
pub fn handed_over(pid: u32) {
    let status = format!("serving: process {pid} took over");
    notify(&[
        NotifyState::MainPid(pid),
        NotifyState::Ready,
        NotifyState::Status(&status),
    ]);
}

/// A reload failed; this process goes on serving.
pub fn reload_failed(reason: &str) {
    let status = format!("serving; the reload failed: {reason}");
    notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// The host is stopping.
pub fn stopping() {
    notify(&[
        NotifyState::Stopping,
        NotifyState::Status("stopping: finishing the requests in flight"),
    ]);
}
