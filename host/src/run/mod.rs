//! A serving host's life: start (on a fresh or inherited socket), serve,
//! restart itself when its files change (`--reload`), stop on a signal.
//!
//! A restart keeps the listening socket open across `exec`, so clients
//! queue in the kernel's backlog instead of being refused while the new
//! process loads the apps.

use std::{
    net::SocketAddr,
    os::{fd::AsRawFd, unix::process::CommandExt},
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    sync::Arc,
    time::{Duration, SystemTime},
};

use anyhow::Context as _;
use tokio::net::TcpListener;

pub(crate) mod handover;

use crate::{
    exec::StallGuard,
    http as server, logging,
    logging::AppLogger,
    mounts::site::{self, FailedMount, HostPaths, LoadedMount, Site},
    services::{Mode, SiteServices},
    table::MountTable,
};

/// How often `--reload` looks at the watched files.
const WATCH_EVERY: Duration = Duration::from_millis(300);

/// How `serve` runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Listen here instead of the table's address.
    pub listen: Option<SocketAddr>,
    /// Show error pages with backtraces to loopback clients.
    pub debug: bool,
    /// Restart when the mount table or a library changes; the table's file.
    pub reload: Option<PathBuf>,
    /// Refuse to start when any mount fails, instead of answering 503 on
    /// its prefix.
    pub strict: bool,
}

/// Why serving stopped.
enum Stop {
    Signal,
    Reload(String),
    /// A successor (this pid) serves now.
    HandedOver(u32),
}

/// Loads every mount of `table` and serves them until a signal, or until a
/// watched file changes (then the process replaces itself).
pub fn serve(table: MountTable, options: Options) -> anyhow::Result<ExitCode> {
    let inherited = inherited_listener()?;
    let loggers: Vec<&str> = table
        .mounts
        .iter()
        .map(|mount| mount.logger.as_str())
        .collect();
    let log_guards = logging::init_serving(&table.log_dir, &loggers)?;
    if options.debug {
        tracing::warn!(
            "debug mode is on: loopback clients get error pages with backtraces; never use it in production"
        );
    }
    let services = SiteServices::new(&table, Mode::Serve).map_err(anyhow::Error::msg)?;
    let (loaded, failed) = if options.strict {
        (load_all(&table, &services, options.debug)?, Vec::new())
    } else {
        load_tolerant(&table, &services, options.debug)
    };
    for app in &loaded {
        tracing::info!(
            mount = %app.mount.name,
            prefix = %app.mount.display_prefix(),
            library = %app.mount.library.display(),
            "mounted"
        );
    }
    let workers = async_workers(std::thread::available_parallelism().map_or(1, |n| n.get()));
    let paths = HostPaths {
        health: table.health_path.clone(),
        metrics: table.metrics_path.clone(),
    };
    let site = Arc::new(Site::start(
        loaded,
        failed,
        workers,
        options.debug,
        paths,
        table.limits,
        table.trusted_proxies.clone(),
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let stall_guard = StallGuard::start(&site.inline, runtime.handle().clone())
        .context("cannot start the stall guard thread")?;
    let watched = watched_files(&table, options.reload.as_deref());
    let (stop, listener) = runtime.block_on(async {
        let listener = match inherited {
            Some(listener) => TcpListener::from_std(listener)?,
            None => {
                let address = options.listen.unwrap_or(table.listen);
                TcpListener::bind(address)
                    .await
                    .with_context(|| format!("cannot listen on {address}"))?
            }
        };
        tracing::info!("listening on http://{}", listener.local_addr()?);
        if let Err(error) = handover::write_pid_file(&table.data_dir) {
            tracing::warn!(
                "cannot write {}: {error} (host reload will not find this process)",
                handover::pid_file(&table.data_dir).display()
            );
        }
        handover::notify_ready();
        // A second descriptor for the socket, to hand to a successor.
        let shared = std::net::TcpListener::from(
            rustix::io::fcntl_dupfd_cloexec(&listener, 0)
                .context("cannot share the listening socket")?,
        );
        let stop = async {
            tokio::select! {
                () = stop_signal() => Stop::Signal,
                change = watch(watched) => Stop::Reload(change),
                pid = upgrade_on_hangup(&shared) => Stop::HandedOver(pid),
            }
        };
        anyhow::Ok(server::serve(listener, Arc::clone(&site), stop).await)
    })?;
    drop(stall_guard);
    site.shut_down();
    drop(runtime);
    services.close();
    match stop {
        Stop::Signal => {
            handover::remove_pid_file(&table.data_dir);
            tracing::info!("stopped");
            drop(log_guards);
            Ok(ExitCode::SUCCESS)
        }
        Stop::HandedOver(pid) => {
            tracing::info!("stopped: process {pid} serves now");
            drop(log_guards);
            Ok(ExitCode::SUCCESS)
        }
        Stop::Reload(change) => {
            tracing::info!("restarting: {change}");
            drop(log_guards);
            Err(re_exec(listener))
        }
    }
}

/// Loads every mount; a mount that fails is logged and kept as failed, so
/// that its prefix answers 503 while the others serve (Tomcat's way).
fn load_tolerant(
    table: &MountTable,
    services: &Arc<SiteServices>,
    debug: bool,
) -> (Vec<LoadedMount>, Vec<FailedMount>) {
    let mut loaded = Vec::new();
    let mut failed = Vec::new();
    for (mount, outcome) in site::load_mounts(table, services, debug) {
        match outcome {
            Ok(app) => loaded.push(app),
            Err(error) => {
                log_full_report(&mount, &error);
                tracing::error!(
                    mount = %mount.name,
                    prefix = %mount.display_prefix(),
                    "not serving this mount (its prefix answers 503): {error}"
                );
                failed.push(FailedMount {
                    logger: AppLogger::new(&mount.logger),
                    reason: error.to_string(),
                    mount,
                    counters: Default::default(),
                });
            }
        }
    }
    (loaded, failed)
}

fn log_full_report(mount: &crate::table::Mount, error: &crate::mounts::loader::LoadError) {
    if let crate::mounts::loader::LoadError::Incompatible { full, .. } = error {
        tracing::debug!(mount = %mount.name, "abi_stable's full report:\n{full}");
    }
}

/// Loads every mount, failing with every mount's error when any fails.
pub fn load_all(
    table: &MountTable,
    services: &Arc<SiteServices>,
    debug: bool,
) -> anyhow::Result<Vec<LoadedMount>> {
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    for (mount, outcome) in site::load_mounts(table, services, debug) {
        match outcome {
            Ok(app) => loaded.push(app),
            Err(error) => {
                log_full_report(&mount, &error);
                errors.push(format!("mount {:?}: {error}", mount.name));
            }
        }
    }
    if errors.is_empty() {
        Ok(loaded)
    } else {
        for app in &loaded {
            app.instance.shutdown();
        }
        anyhow::bail!("{}", errors.join("\n"))
    }
}

/// Completes with the successor's pid once a `SIGHUP` started one that
/// serves; a successor that fails is logged and this process keeps serving.
async fn upgrade_on_hangup(listener: &std::net::TcpListener) -> u32 {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP");
            return std::future::pending().await;
        }
    };
    loop {
        hangups.recv().await;
        tracing::info!("SIGHUP received: starting a new process on the same socket");
        match handover::start_successor(listener).await {
            Ok(pid) => return pid,
            Err(error) => {
                tracing::error!("the new process did not start, so this one keeps serving: {error}")
            }
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
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

/// The files `--reload` watches: the table, every mounted library and the
/// host binary itself.
fn watched_files(table: &MountTable, reload: Option<&Path>) -> Option<(PathBuf, Vec<PathBuf>)> {
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
async fn watch(watched: Option<(PathBuf, Vec<PathBuf>)>) -> String {
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
fn re_exec(listener: TcpListener) -> anyhow::Error {
    let listener = match listener.into_std() {
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

/// The listening socket handed over by the process this one replaced
/// (`HOST_LISTEN_FD`), or by systemd socket activation (`LISTEN_FDS`).
/// Called first thing, before any file is opened, so that descriptor 3 can
/// only be what the parent passed.
fn inherited_listener() -> anyhow::Result<Option<std::net::TcpListener>> {
    use std::os::fd::IntoRawFd;
    let owned = match handover::take_inherited(handover::LISTEN_FD).map_err(anyhow::Error::msg)? {
        Some(owned) => owned,
        None if std::env::var("LISTEN_PID").ok() == Some(std::process::id().to_string())
            && std::env::var("LISTEN_FDS")
                .is_ok_and(|count| count.parse::<u32>().unwrap_or(0) >= 1) =>
        {
            // systemd passes its sockets from descriptor 3 (sd_listen_fds(3)).
            handover::take_fd(3).map_err(anyhow::Error::msg)?
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
    let listener = std::net::TcpListener::from(owned);
    listener.set_nonblocking(true)?;
    Ok(Some(listener))
}

/// How many async workers to run on `cpus` CPUs (what the scheduler
/// affinity and the cgroup's CPU quota allow): one per CPU, and at least two.
///
/// Handlers run inline on all workers but one (see `exec`), so that a
/// worker is always free to accept while a handler runs. One worker per CPU
/// measured best on two (one more was slower: more wake-ups between them),
/// but on one CPU (a container with `--cpus=1`, a small VM) it would leave
/// no worker for inline calls and send every request to a handler thread:
/// measured with the host pinned to one CPU and wrk on another, 57,000
/// req/s at 17.6 µs of CPU per hello request, against 100,000 req/s at 10
/// µs with two workers time-sharing the CPU (the bare hyper baseline: 139,000
/// at 7.2 µs).
fn async_workers(cpus: usize) -> usize {
    cpus.max(2)
}
