//! A serving host's life: start (on a fresh socket, or one a predecessor
//! or systemd handed over), load the mounts, serve, and stop on a signal,
//! hand over to a successor on `SIGHUP` (`handover`), or restart in place
//! when its files change (`watch`, for `--reload`); systemd is told each
//! step (`systemd`). As PID 1 the host stays a supervisor of the serving
//! process and its successors (`supervise`).

pub(crate) mod handover;
pub(crate) mod supervise;
mod systemd;
mod watch;

use std::{os::fd::OwnedFd, path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::Context as _;

use crate::{
    exec::StallGuard,
    http::{self as server, Listener},
    logging,
    mounts::{
        app::{LoadedApp, load_mounts},
        loader::{LoadError, RunFlags},
        site::Site,
    },
    services::{Mode, SiteServices},
    table::{Listen, Mount, MountTable},
};

/// Threads for the runtime's blocking work (file writes of spooled bodies).
const MAX_BLOCKING_THREADS: usize = 16;

/// How `serve` runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Listen here instead of the table's address.
    pub listen: Option<Listen>,
    /// Show error pages with backtraces to loopback clients.
    pub debug: bool,
    /// Restart when the mount table or a library changes; the table's file.
    pub reload: Option<PathBuf>,
    /// Refuse to start when any mount fails, instead of answering 503 on
    /// its prefix.
    pub strict: bool,
    /// Write access lines to the console too (`--access-log -`).
    pub access_to_console: bool,
}

impl Options {
    /// What apps are told of how the host runs.
    fn flags(&self) -> RunFlags {
        RunFlags {
            debug: self.debug,
            reload: self.reload.is_some(),
        }
    }
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
    let inherited = handover::inherited_listener()?;
    supervise::adopt_pipe();
    let loggers: Vec<&str> = table
        .mounts
        .iter()
        .map(|mount| mount.logger.as_str())
        .collect();
    let log_guards = logging::init_serving(
        &table.log_dir,
        &loggers,
        table.log_format,
        options.access_to_console,
    )?;
    if options.debug {
        let listen = options.listen.as_ref().unwrap_or(&table.listen);
        // a client behind a proxy on this machine would look local: the
        // backtraces and source lines would reach anyone
        if listen.ip().is_none_or(|ip| !ip.is_loopback()) || table.trusted_proxies.any() {
            anyhow::bail!(
                "--debug shows backtraces to this machine's clients, so it runs only on a loopback address and with no trusted_proxies (listening on {listen}{}): never debug a server others reach",
                if table.trusted_proxies.any() {
                    ", trusting proxies"
                } else {
                    ""
                }
            );
        }
        tracing::warn!(
            "debug mode is on: loopback clients get error pages with backtraces; never use it in production"
        );
    }
    for warning in table.warnings() {
        tracing::warn!("{warning}");
    }
    private_data_dir(&table.data_dir)?;
    crate::services::secret::check_private(&table.data_dir).map_err(anyhow::Error::msg)?;
    raise_open_file_limit();
    let services = SiteServices::new(&table, Mode::Serve).map_err(anyhow::Error::msg)?;
    let mounts = if options.strict {
        load_all(&table, &services, options.flags())?
            .into_iter()
            .map(|(mount, app)| (mount, Ok(app)))
            .collect()
    } else {
        load_tolerant(&table, &services, options.flags())
    };
    for (mount, _) in mounts.iter().filter(|(_, outcome)| outcome.is_ok()) {
        tracing::info!(
            mount = %mount.name,
            prefix = %mount.display_prefix(),
            library = %mount.library.display(),
            "mounted"
        );
    }
    let workers = async_workers(std::thread::available_parallelism().map_or(1, |n| n.get()));
    let services_check = {
        let services = Arc::clone(&services);
        Box::new(move || services.unreachable_databases())
    };
    let site = Arc::new(Site::start(
        &table,
        mounts,
        workers,
        options.debug,
        services_check,
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        // spooling request bodies writes files on the blocking threads: 300
        // slow uploads at once must not make 300 threads (each a stack and
        // an allocator cache)
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let stall_guard = StallGuard::start(&site.inline, runtime.handle().clone())
        .context("cannot start the stall guard thread")?;
    let watched = watch::watched_files(&table, options.reload.as_deref());
    let reopener = log_guards.reopener();
    let (stop, listener) = runtime.block_on(async {
        tokio::spawn(reopen_logs_on_usr1(reopener));
        let listener = match inherited {
            Some(fd) => Listener::inherited(fd)?,
            None => Listener::bind(options.listen.as_ref().unwrap_or(&table.listen)).await?,
        };
        let address = listener.url();
        tracing::info!("listening on {address}");
        if let Err(error) = handover::write_pid_file(&table.data_dir, &table.file) {
            tracing::warn!(
                "cannot write {}: {error} (host reload will not find this process)",
                handover::pid_file(&table.data_dir).display()
            );
        }
        if !handover::notify_ready() {
            // a successor's predecessor tells systemd, once this serves
            systemd::ready(&format!(
                "serving on {address}: {} of {} mounts loaded",
                site.live_mounts(),
                table.mounts.len()
            ));
        }
        // A second descriptor for the socket, to hand to a successor.
        let shared = rustix::io::fcntl_dupfd_cloexec(&listener, 0)
            .context("cannot share the listening socket")?;
        let drain_delay = table.drain_delay;
        let stop = async {
            tokio::select! {
                () = async {
                    stop_signal().await;
                    systemd::stopping();
                    // readiness fails first, so that load balancers move
                    // away; then the server stops accepting and drains
                    site.drain();
                    if !drain_delay.is_zero() {
                        tracing::info!(
                            "not ready: serving {} ms more before draining",
                            drain_delay.as_millis()
                        );
                        tokio::time::sleep(drain_delay).await;
                    }
                } => Stop::Signal,
                change = watch::watch(watched) => Stop::Reload(change),
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
            listener.close();
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
            systemd::reloading();
            drop(log_guards);
            Err(watch::re_exec(listener))
        }
    }
}

/// Raises the soft limit on open files to the hard one, as nginx's
/// `worker_rlimit_nofile` would: each connection, spooled body and log is
/// a file, and the usual soft limit of 1024 is below `max_connections`.
fn raise_open_file_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return;
    }
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => tracing::debug!(
            "open files: soft limit raised from {:?} to {:?}",
            limit.current,
            limit.maximum
        ),
        Err(error) => tracing::warn!(
            "cannot raise the open files limit from {:?} to {:?}: {error}",
            limit.current,
            limit.maximum
        ),
    }
}

/// Makes the data folder the host's alone (0700), creating it if missing: a
/// folder an older release made with 0755 holds files others could read.
fn private_data_dir(data_dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let fail = || {
        format!(
            "cannot create or protect the data folder {}",
            data_dir.display()
        )
    };
    std::fs::create_dir_all(data_dir).with_context(fail)?;
    let mode = std::fs::metadata(data_dir)
        .with_context(fail)?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
            .with_context(fail)?;
        tracing::info!(
            "made the data folder {} private to the host's user (mode {:04o} → 0700)",
            data_dir.display(),
            mode & 0o7777
        );
    }
    Ok(())
}

/// Loads every mount; a mount that fails is logged and kept with its
/// reason, so that its prefix answers 503 while the others serve (Tomcat's
/// way).
fn load_tolerant(
    table: &MountTable,
    services: &Arc<SiteServices>,
    flags: RunFlags,
) -> Vec<(Mount, Result<LoadedApp, String>)> {
    load_mounts(table, services, flags)
        .into_iter()
        .map(|(mount, outcome)| {
            let outcome = outcome.map_err(|error| {
                log_full_report(&mount, &error);
                tracing::error!(
                    mount = %mount.name,
                    prefix = %mount.display_prefix(),
                    "not serving this mount (its prefix answers 503): {error}"
                );
                error.to_string()
            });
            (mount, outcome)
        })
        .collect()
}

fn log_full_report(mount: &Mount, error: &LoadError) {
    if let LoadError::Incompatible { full, .. } = error {
        tracing::debug!(mount = %mount.name, "abi_stable's full report:\n{full}");
    }
}

/// Loads every mount, failing with every mount's error when any fails.
pub fn load_all(
    table: &MountTable,
    services: &Arc<SiteServices>,
    flags: RunFlags,
) -> anyhow::Result<Vec<(Mount, LoadedApp)>> {
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    for (mount, outcome) in load_mounts(table, services, flags) {
        match outcome {
            Ok(app) => loaded.push((mount, app)),
            Err(error) => {
                log_full_report(&mount, &error);
                errors.push(format!("mount {:?}: {error}", mount.name));
            }
        }
    }
    if errors.is_empty() {
        Ok(loaded)
    } else {
        for (_, app) in &loaded {
            app.instance.shutdown();
        }
        anyhow::bail!("{}", errors.join("\n"))
    }
}

/// Completes with the successor's pid once a `SIGHUP` started one that
/// serves; a successor that fails is logged and this process keeps serving.
async fn upgrade_on_hangup(listener: &OwnedFd) -> u32 {
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
        systemd::reloading();
        match handover::start_successor(listener).await {
            Ok(pid) => {
                systemd::handed_over(pid);
                supervise::handed_over(pid);
                return pid;
            }
            Err(error) => {
                tracing::error!(
                    "the new process did not start, so this one keeps serving: {error}"
                );
                systemd::reload_failed(&error);
            }
        }
    }
}

/// Reopens the log files on each SIGUSR1 (nginx's convention), after
/// logrotate moved them away.
async fn reopen_logs_on_usr1(reopener: logging::Reopener) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut signals = match signal(SignalKind::user_defined1()) {
        Ok(signals) => signals,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGUSR1: log files will not be reopened");
            return;
        }
    };
    while signals.recv().await.is_some() {
        reopener.reopen();
        tracing::info!("SIGUSR1 received: log files reopened");
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

/// How many async workers to run on `cpus` CPUs (what the scheduler
/// affinity and the cgroup's CPU quota allow): one per CPU, and at least two.
///
/// Handlers run inline on all workers but one (see `exec`), so that a
/// worker is always free to accept while a handler runs. One worker per CPU
/// is fastest on two (one more means more wake-ups between them), but on
/// one CPU (a container with `--cpus=1`, a small VM) it would leave no
/// worker for inline calls and send every request to a handler thread,
/// which costs more than two workers time-sharing the CPU
/// (`docs/performance.md`).
fn async_workers(cpus: usize) -> usize {
    cpus.max(2)
}
