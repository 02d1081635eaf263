//! A site: the mount table with every mount's app loaded and instantiated.

use std::sync::Arc;

use app_api::abi::AppInstance;

use crate::{
    config::{Mount, MountTable},
    dispatch::{MountPrefix, PrefixTable},
    handler_pool::{HandlerPool, InlineGate},
    loader::{self, Library, LoadError, Loader},
    logging::AppLogger,
    static_files::StaticFolder,
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
}

/// Loads every mount's library (each file once) and creates its instance,
/// in table order; one outcome per mount.
/// With `debug`, apps capture backtraces for the host's error page.
pub fn load_mounts(
    table: &MountTable,
    debug: bool,
) -> Vec<(Mount, Result<LoadedMount, LoadError>)> {
    let mut loader = Loader::default();
    table
        .mounts
        .iter()
        .map(|mount| {
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
                let logger = AppLogger::new(&mount.logger);
                let instance = loader::instantiate(library, mount, logger, Vec::new(), debug)?;
                Ok(LoadedMount {
                    mount: mount.clone(),
                    library,
                    instance: Arc::new(instance),
                    logger,
                    static_folder,
                })
            });
            (mount.clone(), outcome)
        })
        .collect()
}

/// A mount that serves requests.
pub struct LiveMount {
    /// The loaded app.
    pub app: LoadedMount,
    /// Its handler threads.
    pub pool: HandlerPool,
}

/// Everything the server needs to answer requests.
pub struct Site {
    /// The prefixes, mount indexes into `mounts`.
    pub prefixes: PrefixTable,
    /// The mounts, in table order.
    pub mounts: Vec<LiveMount>,
    /// How many handlers may run on the async workers at once.
    pub inline: InlineGate,
    /// Show error pages with backtraces to loopback clients.
    pub debug: bool,
}

impl Site {
    /// Prepares every loaded mount to serve on a runtime with `workers`
    /// async worker threads (handler threads start on demand).
    pub fn start(loaded: Vec<LoadedMount>, workers: usize, debug: bool) -> Site {
        let prefixes = PrefixTable::new(loaded.iter().map(|app| {
            MountPrefix {
                prefix: &app.mount.prefix,
                static_url_path: app
                    .static_folder
                    .as_ref()
                    .map(|_| app.mount.static_url_path.as_str()),
            }
        }));
        let mounts = loaded
            .into_iter()
            .map(|app| {
                let pool = HandlerPool::new(
                    &app.mount.name,
                    app.mount.max_concurrency,
                    Arc::clone(&app.instance),
                );
                LiveMount { app, pool }
            })
            .collect();
        Site {
            prefixes,
            mounts,
            inline: InlineGate::new(workers),
            debug,
        }
    }

    /// Waits for the handler threads to finish their work, then shuts every
    /// app instance down.
    pub fn shut_down(&self) {
        for live in &self.mounts {
            live.pool.stop();
            live.app.instance.shutdown();
        }
    }
}
