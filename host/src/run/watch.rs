//! `serve --reload`: watching the mount table, the mounted libraries and the
//! host binary, checking a changed version in a child process, and
//! restarting on it in place, the listening socket kept open across `exec`
//! so that clients queue in the kernel's backlog instead of being refused.

use std::{
    os::{fd::AsRawFd, unix::process::CommandExt},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, SystemTime},
};

use crate::http::Listener;

use super::handover::{self, current_exe};
use crate::table::MountTable;

/// How often `--reload` looks at the watched files.
const WATCH_EVERY: Duration = Duration::from_millis(300);

/// The files `--reload` watches: the table, every mounted library and the
/// host binary itself.
pub(super) fn watched_files(
    table: &MountTable,
    reload: Option<&Path>,
) -> Option<(PathBuf, Vec<PathBuf>)> {
    let config = reload?.to_owned();
    let mut files = vec![config.clone()];
    if let Ok(exe) = current_exe() {
        files.push(exe);
    }
    for mount in &table.mounts {
        if !files.contains(&mount.library) {
            files.push(mount.library.clone());
        }
    }
    Some((config, files))
}

/// What identifies a file's version: replacing it by rename changes the
/// inode, rewriting it changes the time or size.
fn stamp(file: &Path) -> Option<(u64, SystemTime, u64)> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(file).ok()?;
    Some((metadata.ino(), metadata.modified().ok()?, metadata.len()))
}

/// Completes with a description of the change once a watched file changed
/// and the new mount table and libraries pass `host check` (run as a child
/// process, so that a broken library cannot harm this one). Never completes
/// without `--reload`.
pub(super) async fn watch(watched: Option<(PathBuf, Vec<PathBuf>)>) -> String {
    let Some((config, files)) = watched else {
        return std::future::pending().await;
    };
    let mut stamps: Vec<_> = files.iter().map(|file| stamp(file)).collect();
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let now: Vec<_> = files.iter().map(|file| stamp(file)).collect();
        if now == stamps {
            continue;
        }
        let changed: Vec<String> = files
            .iter()
            .zip(stamps.iter().zip(&now))
            .filter(|(_, (before, after))| before != after)
            .map(|(file, _)| file.display().to_string())
            .collect();
        // Let a writer finish (editors and cp write in several steps).
        tokio::time::sleep(WATCH_EVERY).await;
        stamps = files.iter().map(|file| stamp(file)).collect();
        let changed = changed.join(", ");
        tracing::info!("changed: {changed}; checking the new version");
        match check_in_child(&config).await {
            Ok(()) => return format!("changed: {changed}"),
            Err(report) => tracing::error!(
                "the changed version does not load, so the running one keeps serving:\n{report}"
            ),
        }
    }
}

async fn check_in_child(config: &Path) -> Result<(), String> {
    let exe = current_exe().map_err(|error| error.to_string())?;
    let output = tokio::process::Command::new(exe)
        .args(["check", "--config"])
        .arg(config)
        .output()
        .await
        .map_err(|error| error.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        let mut report = String::from_utf8_lossy(&output.stdout).into_owned();
        report.push_str(&String::from_utf8_lossy(&output.stderr));
        Err(report.trim().to_owned())
    }
}

/// Replaces this process with a fresh copy of itself, same arguments,
/// handing it the listening socket. Returns only on failure.
pub(super) fn re_exec(listener: Listener) -> anyhow::Error {
    let listener = match listener.into_fd() {
        Ok(listener) => listener,
        Err(error) => return anyhow::anyhow!("cannot keep the socket across the restart: {error}"),
    };
    if let Err(error) = rustix::io::fcntl_setfd(&listener, rustix::io::FdFlags::empty()) {
        return anyhow::anyhow!("cannot keep the socket across the restart: {error}");
    }
    let exe = match current_exe() {
        Ok(exe) => exe,
        Err(error) => return anyhow::anyhow!("cannot find the host binary to restart: {error}"),
    };
    let error = Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .env(handover::LISTEN_FD, listener.as_raw_fd().to_string())
        .exec();
    anyhow::anyhow!("cannot restart {}: {error}", exe.display())
}
