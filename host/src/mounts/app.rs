//! Loading a mount: its library (each file once), its static folders, its
//! own app instance; one outcome per mount of the table.

use std::sync::Arc;

use app_api_abi::AppInstance;

use crate::{
    logging::AppLogger,
    mounts::{
        loader::{self, Library, LoadError, Loader, RunFlags},
        routes::AppRoutes,
    },
    services::{SiteServices, uploads::Place},
    static_files::StaticFolder,
    table::{Mount, MountTable},
};

/// A mount's app, loaded: its library, its own instance, and the folders
/// the host serves for it.
pub struct LoadedApp {
    /// The library it runs.
    pub library: Library,
    /// Its own app instance.
    pub instance: Arc<AppInstance>,
    /// Its static folder, if it has one.
    pub static_folder: Option<StaticFolder>,
    /// The site's stored uploads, if the mount serves them.
    pub uploads: Option<Arc<StaticFolder>>,
    /// Its routes, listed once at load.
    pub routes: AppRoutes,
}

/// How long browsers may keep an upload: its name is random and never
/// reused, so its content never changes.
const UPLOADS_MAX_AGE: u64 = 365 * 24 * 60 * 60;

/// Loads every mount's library (each file once) and creates its instance
/// with `services`, in table order; one outcome per mount.
/// `flags` tell apps how the host runs (`--debug`, `--reload`).
pub fn load_mounts(
    table: &MountTable,
    services: &Arc<SiteServices>,
    flags: RunFlags,
) -> Vec<(Mount, Result<LoadedApp, LoadError>)> {
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
                let instance = loader::instantiate(library, mount, index, logger, services, flags)?;
                Ok(LoadedApp {
                    library,
                    routes: AppRoutes::new(&instance.routes()),
                    instance: Arc::new(instance),
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
        .map_err(|reason| LoadError::Uploads { reason })?;
    let Some(store) = store else {
        return Ok(None);
    };
    let folder = match store.place() {
        Place::Folder(path) => {
            StaticFolder::open(path, UPLOADS_MAX_AGE).map_err(|error| LoadError::StaticFolder {
                path: path.clone(),
                reason: error.to_string(),
            })?
        }
        Place::Store { store, prefix, .. } => {
            StaticFolder::in_store(Arc::clone(store), prefix.clone(), UPLOADS_MAX_AGE)
        }
    }
    .sandboxed();
    Ok(Some(Arc::clone(opened.insert(Arc::new(folder)))))
}
