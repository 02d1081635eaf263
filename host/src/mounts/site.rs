//! A site: the mount table with every mount's app loaded and instantiated.

use std::{sync::Arc, time::Duration};

use app_api_abi::AppInstance;

use crate::{
    exec::{CallLimits, InlineGate, Runner},
    logging::AppLogger,
    metrics::Counters,
    mounts::{
        dispatch::{MountPrefix, PrefixTable},
        loader::{self, Library, LoadError, Loader},
    },
    services::SiteServices,
    static_files::StaticFolder,
    table::{Limits, Mount, MountTable, TrustedProxies},
};

/// One mount with its app instance ready.
pub struct LoadedMount {
    /// The mount's settings.
    pub mount: Mount,
    /// The library it runs.
    pub library: Library,
    /// Its own app instance.
    pub instance: Arc<AppInstance>,
    /// Where its events go.
    pub logger: AppLogger,
    /// Its static folder, if it has one.
    pub static_folder: Option<StaticFolder>,
    /// The site's stored uploads, if the mount serves them.
    pub uploads: Option<Arc<StaticFolder>>,
}

/// How long browsers may keep an upload: its name is random and never
/// reused, so its content never changes.
const UPLOADS_MAX_AGE: u64 = 365 * 24 * 60 * 60;

/// Loads every mount's library (each file once) and creates its instance
/// with `services`, in table order; one outcome per mount.
/// With `debug`, apps capture backtraces for the host's error page.
pub fn load_mounts(
    table: &MountTable,
    services: &Arc<SiteServices>,
    debug: bool,
) -> Vec<(Mount, Result<LoadedMount, LoadError>)> {
    let mut loader = Loader::default();
    let mut uploads: Option<Arc<StaticFolder>> = None;
    table
        .mounts
        .iter()
        .enumerate()
        .map(|(index, mount)| {
            let outcome = loader.library(&mount.library).and_then(|library| {
                let static_folder = mount
                    .static_folder
                    .as_ref()
                    .map(|folder| {
                        StaticFolder::open(folder, mount.static_max_age).map_err(|error| {
                            LoadError::StaticFolder {
                                path: folder.clone(),
                                reason: error.to_string(),
                            }
                        })
                    })
                    .transpose()?;
                let uploads = match &mount.uploads_url_path {
                    Some(_) => uploads_folder(services, &mut uploads)?,
                    None => None,
                };
                let logger = AppLogger::new(&mount.logger);
                let instance = loader::instantiate(library, mount, index, logger, services, debug)?;
                Ok(LoadedMount {
                    mount: mount.clone(),
                    library,
                    instance: Arc::new(instance),
                    logger,
                    static_folder,
                    uploads,
                })
            });
            (mount.clone(), outcome)
        })
        .collect()
}

/// The uploads folder all mounts share, opened by the first that serves it;
/// `None` when only looking at a site whose folder does not exist yet.
fn uploads_folder(
    services: &SiteServices,
    opened: &mut Option<Arc<StaticFolder>>,
) -> Result<Option<Arc<StaticFolder>>, LoadError> {
    if let Some(folder) = opened {
        return Ok(Some(Arc::clone(folder)));
    }
    let store = services
        .uploads()
        .map_err(|reason| LoadError::StaticFolder {
            path: services
                .data_dir()
                .join(crate::services::uploads::UPLOADS_FOLDER),
            reason,
        })?;
    let Some(store) = store else {
        return Ok(None);
    };
    let folder = StaticFolder::open(store.folder(), UPLOADS_MAX_AGE).map_err(|error| {
        LoadError::StaticFolder {
            path: store.folder().to_owned(),
            reason: error.to_string(),
        }
    })?;
    Ok(Some(Arc::clone(opened.insert(Arc::new(folder)))))
}

/// A mount that serves requests.
pub struct LiveMount {
    /// The loaded app.
    pub app: LoadedMount,
    /// Its handler threads.
    pub runner: Runner,
    /// Its request metrics.
    pub counters: Counters,
}

/// A mount whose app failed to load or start: its prefix answers 503, and
/// its requests never fall through to a shorter prefix.
pub struct FailedMount {
    /// The mount's settings.
    pub mount: Mount,
    /// Why it failed (for the log and the health report, not for clients).
    pub reason: String,
    /// Where its access lines go.
    pub logger: AppLogger,
    /// Its request metrics.
    pub counters: Counters,
}

/// A mount of the site, by index.
pub enum SiteMount<'a> {
    /// Serving.
    Live(&'a LiveMount),
    /// Failed.
    Failed(&'a FailedMount),
}

/// Paths the host answers itself, before any mount.
#[derive(Debug, Clone, Default)]
pub struct HostPaths {
    /// The health report, if enabled.
    pub health: Option<String>,
    /// The Prometheus metrics, if enabled.
    pub metrics: Option<String>,
}

/// Everything the server needs to answer requests.
pub struct Site {
    /// The prefixes; mount indexes count the live mounts, then the failed.
    pub prefixes: PrefixTable,
    /// The mounts that serve, in table order.
    pub mounts: Vec<LiveMount>,
    /// The mounts that failed.
    pub failed: Vec<FailedMount>,
    /// Metrics of the requests no mount answered.
    pub host_counters: Counters,
    /// The host's own paths.
    pub paths: HostPaths,
    /// Limits against misbehaving clients.
    pub limits: Limits,
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// How many handlers may run on the async workers at once.
    pub inline: InlineGate,
    /// Show error pages with backtraces to loopback clients.
    pub debug: bool,
}

impl Site {
    /// Prepares every loaded mount to serve on a runtime with `workers`
    /// async worker threads (handler threads start on demand).
    pub fn start(
        loaded: Vec<LoadedMount>,
        failed: Vec<FailedMount>,
        workers: usize,
        debug: bool,
        paths: HostPaths,
        limits: Limits,
        trusted_proxies: TrustedProxies,
    ) -> Site {
        let live_prefixes = loaded.iter().map(|app| MountPrefix {
            prefix: &app.mount.prefix,
            static_url_path: app
                .static_folder
                .as_ref()
                .map(|_| app.mount.static_url_path.as_str()),
            uploads_url_path: app
                .uploads
                .as_ref()
                .and(app.mount.uploads_url_path.as_deref()),
        });
        let failed_prefixes = failed.iter().map(|failed| MountPrefix {
            prefix: &failed.mount.prefix,
            static_url_path: None,
            uploads_url_path: None,
        });
        let prefixes = PrefixTable::new(live_prefixes.chain(failed_prefixes));
        let mounts = loaded
            .into_iter()
            .map(|app| {
                let limits = CallLimits {
                    max_concurrency: app.mount.max_concurrency,
                    queue_timeout: Duration::from_millis(app.mount.queue_timeout_ms),
                    timeout: Duration::from_millis(app.mount.timeout_ms),
                };
                let runner = Runner::new(&app.mount.name, limits, Arc::clone(&app.instance));
                LiveMount {
                    app,
                    runner,
                    counters: Counters::default(),
                }
            })
            .collect();
        Site {
            prefixes,
            mounts,
            failed,
            host_counters: Counters::default(),
            paths,
            limits,
            trusted_proxies,
            inline: InlineGate::new(workers),
            debug,
        }
    }

    /// The mount at a dispatcher index.
    pub fn mount(&self, index: usize) -> SiteMount<'_> {
        match self.mounts.get(index) {
            Some(live) => SiteMount::Live(live),
            None => SiteMount::Failed(&self.failed[index - self.mounts.len()]),
        }
    }

    /// The health report: each mount's state; healthy when all are loaded.
    pub fn health(&self) -> (bool, String) {
        let mut mounts: Vec<serde_json::Value> = self
            .mounts
            .iter()
            .map(|live| {
                serde_json::json!({
                    "name": live.app.mount.name,
                    "prefix": live.app.mount.display_prefix(),
                    "state": "loaded",
                })
            })
            .collect();
        mounts.extend(self.failed.iter().map(|failed| {
            serde_json::json!({
                "name": failed.mount.name,
                "prefix": failed.mount.display_prefix(),
                "state": "failed",
                "error": failed.reason,
            })
        }));
        let healthy = self.failed.is_empty();
        let report = serde_json::json!({
            "status": if healthy { "ok" } else { "degraded" },
            "mounts": mounts,
        });
        (healthy, report.to_string())
    }

    /// The metrics in Prometheus' text format.
    pub fn metrics(&self) -> String {
        let mounts = self
            .mounts
            .iter()
            .map(|live| (live.app.mount.name.as_str(), &live.counters))
            .chain(
                self.failed
                    .iter()
                    .map(|failed| (failed.mount.name.as_str(), &failed.counters)),
            )
            .chain(std::iter::once(("_host", &self.host_counters)));
        crate::metrics::render(mounts, self.failed.len())
    }

    /// Waits for the handler threads to finish their work, then shuts every
    /// app instance down.
    pub fn shut_down(&self) {
        for live in &self.mounts {
            live.runner.stop();
            live.app.instance.shutdown();
        }
    }
}
