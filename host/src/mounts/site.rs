//! The live site: every mount of the table in its state (serving, or
//! failed and answering 503), the prefix table that dispatches to them, and
//! what the server needs besides: the host's own paths, limits, trusted
//! proxies, the inline gate.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use crate::{
    exec::{CallLimits, InlineGate, Runner},
    logging::AppLogger,
    metrics::Counters,
    mounts::{
        app::LoadedApp,
        dispatch::{MountPrefix, PrefixTable},
    },
    table::{
        AllowedHosts, Limits, Location, Mount, MountTable, Networks, PublicUrl, TrustedProxies,
    },
};

/// One mount of the serving site.
pub struct SiteMount {
    /// Its settings.
    pub mount: Mount,
    /// Where its events and access lines go.
    pub logger: AppLogger,
    /// Its request metrics.
    pub counters: Counters,
    /// Serving, or failed.
    pub state: MountState,
}

/// Whether a mount serves.
// One per mount, read in place: a failed mount's entry being as large as
// a live one's costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum MountState {
    /// Its app is loaded, and its handlers run through its runner.
    Live {
        /// The app.
        app: LoadedApp,
        /// Where its handlers run.
        runner: Runner,
    },
    /// Its app failed to load or start: its prefix answers 503, and its
    /// requests never fall through to a shorter prefix.
    Failed {
        /// Why (for the log and the health report, not for clients).
        reason: String,
    },
}

/// Paths the host answers itself, before any mount.
#[derive(Debug, Clone, Default)]
pub struct HostPaths {
    /// The health report, if enabled.
    pub health: Option<String>,
    /// The Prometheus metrics, if enabled.
    pub metrics: Option<String>,
    /// The liveness probe, if enabled.
    pub livez: Option<String>,
    /// The readiness probe, if enabled.
    pub readyz: Option<String>,
}

/// What the readiness probe asks of the services beyond the mounts: why
/// each database that cannot serve cannot.
pub type ServicesCheck = Box<dyn Fn() -> Vec<String> + Send + Sync>;

/// Everything the server needs to answer requests.
pub struct Site {
    /// The prefixes; a mount's index is its place in the table.
    pub prefixes: PrefixTable,
    /// The mounts, in table order.
    pub mounts: Vec<SiteMount>,
    /// Metrics of the requests no mount answered.
    pub host_counters: Counters,
    /// The host's own paths.
    pub paths: HostPaths,
    /// Limits against misbehaving clients.
    pub limits: Limits,
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// Clients besides this machine and the trusted proxies that may read
    /// the health details and the metrics.
    pub admin_allow: Networks,
    /// The hosts the site answers for.
    pub allowed_hosts: AllowedHosts,
    /// The scheme and host apps build absolute URLs from, if configured.
    pub public_url: Option<PublicUrl>,
    /// How many handlers may run on the async workers at once.
    pub inline: InlineGate,
    /// Show error pages with backtraces to loopback clients.
    pub debug: bool,
    /// Where request bodies too large for memory are written as they
    /// arrive.
    pub spool_dir: PathBuf,
    /// Asks the services whether they can serve (readiness).
    services_check: ServicesCheck,
    /// Set once the host was asked to stop: readiness fails from then on.
    draining: AtomicBool,
    /// Set once the host stopped accepting: every HTTP/1 response closes
    /// its connection.
    closing: AtomicBool,
}

/// The folder of the data folder where request bodies spool.
const SPOOL_FOLDER: &str = "tmp";

impl Site {
    /// Prepares every mount to serve (its app loaded, or the reason it
    /// failed) on a runtime with `workers` async worker threads; handler
    /// threads start on demand.
    pub fn start(
        table: &MountTable,
        mounts: Vec<(Mount, Result<LoadedApp, String>)>,
        workers: usize,
        debug: bool,
        services_check: ServicesCheck,
    ) -> Site {
        let mounts: Vec<SiteMount> = mounts
            .into_iter()
            .map(|(mount, outcome)| {
                let state = match outcome {
                    Ok(app) => {
                        let limits = CallLimits {
                            max_concurrency: mount.max_concurrency,
                            queue_timeout: Duration::from_millis(mount.queue_timeout_ms),
                            timeout: Duration::from_millis(mount.timeout_ms),
                            inline: !table.databases.iter().any(|database| {
                                matches!(database.location, Location::Postgres(_))
                                    && mount.databases.contains(&database.name)
                            }),
                        };
                        let runner = Runner::new(&mount.name, limits, Arc::clone(&app.instance));
                        MountState::Live { app, runner }
                    }
                    Err(reason) => MountState::Failed { reason },
                };
                SiteMount {
                    logger: AppLogger::new(&mount.logger),
                    counters: Counters::default(),
                    mount,
                    state,
                }
            })
            .collect();
        let prefixes = PrefixTable::new(mounts.iter().map(|site_mount| {
            let mount = &site_mount.mount;
            let (static_url_path, uploads_url_path) = match &site_mount.state {
                MountState::Live { app, .. } => (
                    app.static_folder
                        .as_ref()
                        .map(|_| mount.static_url_path.as_str()),
                    app.uploads.as_ref().and(mount.uploads_url_path.as_deref()),
                ),
                MountState::Failed { .. } => (None, None),
            };
            MountPrefix {
                prefix: &mount.prefix,
                static_url_path,
                uploads_url_path,
            }
        }));
        Site {
            prefixes,
            mounts,
            host_counters: Counters::default(),
            paths: HostPaths {
                health: table.health_path.clone(),
                metrics: table.metrics_path.clone(),
                livez: table.livez_path.clone(),
                readyz: table.readyz_path.clone(),
            },
            limits: table.limits,
            trusted_proxies: table.trusted_proxies.clone(),
            admin_allow: table.admin_allow.clone(),
            allowed_hosts: table.allowed_hosts.clone(),
            public_url: table.public_url.clone(),
            inline: InlineGate::new(workers),
            debug,
            spool_dir: table.data_dir.join(SPOOL_FOLDER),
            services_check,
            draining: AtomicBool::new(false),
            closing: AtomicBool::new(false),
        }
    }

    /// Makes the readiness probe fail from now on: the host is stopping.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// From now on, every HTTP/1 response says `Connection: close`: the
    /// host stopped accepting, and its connections' clients should take
    /// their next request elsewhere.
    pub fn close_connections(&self) {
        self.closing.store(true, Ordering::Relaxed);
    }

    /// Whether responses close their connections.
    pub fn closing_connections(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// Why the host should get no traffic now; empty when it should:
    /// stopping, a mount that failed, a database that cannot serve.
    pub fn not_ready(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if self.draining.load(Ordering::Relaxed) {
            reasons.push("stopping".to_owned());
        }
        for site_mount in &self.mounts {
            if let MountState::Failed { .. } = site_mount.state {
                reasons.push(format!("mount {} failed to load", site_mount.mount.name));
            }
        }
        reasons.extend((self.services_check)());
        reasons
    }

    /// The mount at a dispatcher index.
    pub fn mount(&self, index: usize) -> &SiteMount {
        &self.mounts[index]
    }

    /// Whether the client at `address` may read the health details and the
    /// metrics: this machine, a trusted proxy, or one `admin_allow` lists.
    pub fn is_admin(&self, address: std::net::IpAddr) -> bool {
        let address = address.to_canonical();
        address.is_loopback()
            || self.trusted_proxies.trusts(address)
            || self.admin_allow.contains(address)
    }

    /// Whether every mount serves.
    pub fn healthy(&self) -> bool {
        self.failed() == 0
    }

    /// How many mounts serve.
    pub fn live_mounts(&self) -> usize {
        self.mounts.len() - self.failed()
    }

    /// The health report: each mount's state; healthy when all are loaded.
    pub fn health(&self) -> (bool, String) {
        let mounts: Vec<serde_json::Value> = self
            .mounts
            .iter()
            .map(|site_mount| {
                let mount = &site_mount.mount;
                match &site_mount.state {
                    MountState::Live { .. } => serde_json::json!({
                        "name": mount.name,
                        "prefix": mount.display_prefix(),
                        "state": "loaded",
                    }),
                    MountState::Failed { reason } => serde_json::json!({
                        "name": mount.name,
                        "prefix": mount.display_prefix(),
                        "state": "failed",
                        "error": reason,
                    }),
                }
            })
            .collect();
        let healthy = self.failed() == 0;
        let report = serde_json::json!({
            "status": if healthy { "ok" } else { "degraded" },
            "mounts": mounts,
        });
        (healthy, report.to_string())
    }

    /// How many mounts failed.
    fn failed(&self) -> usize {
        self.mounts
            .iter()
            .filter(|mount| matches!(mount.state, MountState::Failed { .. }))
            .count()
    }

    /// The metrics in Prometheus' text format.
    pub fn metrics(&self) -> String {
        let mounts = self
            .mounts
            .iter()
            .map(|site_mount| (site_mount.mount.name.as_str(), &site_mount.counters))
            .chain(std::iter::once(("_host", &self.host_counters)));
        crate::metrics::render(mounts, self.failed())
    }

    /// Waits for the handler threads to finish their work, then shuts every
    /// app instance down.
    pub fn shut_down(&self) {
        for site_mount in &self.mounts {
            if let MountState::Live { app, runner } = &site_mount.state {
                runner.stop();
                app.instance.shutdown();
            }
        }
    }
}
