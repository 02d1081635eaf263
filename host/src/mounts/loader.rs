//! Loading app libraries and creating one app instance per mount.
//!
//! Each library is loaded with `lib_header_from_path(..).init_root_module()`
//! (never `load_from_file`, which caches one module per interface type, so
//! that a second library would get the first one's module: abi_stable issue
//! #92); each distinct file is loaded once and never unloaded (abi_stable
//! leaks libraries by design, and a call after `dlclose` would crash); the
//! same file mounted twice gives two instances; `panic = "abort"` builds are
//! refused (`docs/architecture.md`).

use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use abi_stable::{
    library::{LibraryError, lib_header_from_path},
    sabi_trait::TD_Opaque,
    std_types::{RArc, RResult, RString, RVec},
};
use app_api_abi::{
    API_VERSION, AppError, AppInstance, AppModuleRef, CommandInfo, Extension, Host_TO, HostContext,
    HostServices, v1_0,
};

use crate::{
    logging::AppLogger,
    services::{MountServices, SiteServices},
    table::Mount,
};

/// Why an app library or instance could not be used.
#[derive(Debug)]
pub enum LoadError {
    /// No file at the path.
    Missing {
        /// The library path.
        path: PathBuf,
    },
    /// The dynamic loader refused the file.
    NotALibrary {
        /// The library path.
        path: PathBuf,
        /// The loader's reason.
        reason: String,
    },
    /// A library, but it exports no abi_stable root module.
    NoRootModule {
        /// The library path.
        path: PathBuf,
    },
    /// Built against an interface this host does not speak.
    Incompatible {
        /// The library path.
        path: PathBuf,
        /// The key lines of abi_stable's report.
        summary: String,
        /// abi_stable's whole report (hundreds of lines), for debug logs.
        full: String,
    },
    /// Built with `panic = "abort"`.
    PanicAbort {
        /// The library path.
        path: PathBuf,
    },
    /// The mount's static folder cannot be served.
    StaticFolder {
        /// The folder.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The site's uploads store cannot be opened.
    Uploads {
        /// Why, naming the store.
        reason: String,
    },
    /// The host's services cannot give the mount its secret.
    Secret {
        /// Why.
        message: String,
    },
    /// The app's `instantiate` failed.
    Init {
        /// The library path.
        path: PathBuf,
        /// The app's message.
        message: String,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Missing { path } => write!(
                f,
                "{}: no such file (build the app and install it there; `cargo xtask serve` does both)",
                path.display()
            ),
            LoadError::NotALibrary { path, reason } => {
                write!(f, "{}: not a loadable library: {reason}", path.display())
            }
            LoadError::NoRootModule { path } => write!(
                f,
                "{}: not an app library: it exports no app root module (an app crate calls `app_api::export_app!` and is built as a cdylib)",
                path.display()
            ),
            LoadError::Incompatible { path, summary, .. } => write!(
                f,
                "{}: built against an incompatible contract: {summary} (rebuild the app against this host's app-api-abi {API_VERSION})",
                path.display(),
            ),
            LoadError::PanicAbort { path } => write!(
                f,
                "{}: built with panic = \"abort\", so one panicking request would kill the whole host; build it with panic = \"unwind\" (the default)",
                path.display()
            ),
            LoadError::StaticFolder { path, reason } => {
                write!(f, "static_folder {}: {reason}", path.display())
            }
            LoadError::Uploads { reason } => write!(f, "uploads: {reason}"),
            LoadError::Secret { message } => write!(f, "the host's secret: {message}"),
            LoadError::Init { path, message } => {
                write!(f, "{}: the app failed to start: {message}", path.display())
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// A loaded app library.
#[derive(Clone, Copy)]
pub struct Library {
    module: Module,
}

/// An app's root module, in the shape of the contract it was built against.
#[derive(Clone, Copy)]
enum Module {
    /// This host's contract, or a later 1.x.
    Current(AppModuleRef),
    /// Contract 1.0, whose host object had fewer services.
    V1_0(v1_0::AppModuleRef),
}

/// The same call on a root module of either shape.
macro_rules! on_module {
    ($library:expr, |$module:ident| $body:expr) => {
        match $library.module {
            Module::Current($module) => $body,
            Module::V1_0($module) => $body,
        }
    };
}

impl Library {
    /// The app's default name.
    pub fn name(&self) -> &'static str {
        on_module!(self, |module| (module.name())()).as_str()
    }

    /// The contract version the app was built against.
    pub fn api_version(&self) -> &'static str {
        on_module!(self, |module| (module.abi_info())())
            .api_version
            .as_str()
    }
}

/// Loads each distinct library file once (dlopen would share it anyway, and
/// abi_stable never unloads libraries: a call into one after `dlclose`
/// would crash).
#[derive(Default)]
pub struct Loader {
    loaded: HashMap<PathBuf, Library>,
}

impl Loader {
    /// The library at `path`, loaded and checked on first use.
    pub fn library(&mut self, path: &Path) -> Result<Library, LoadError> {
        let key = path.canonicalize().map_err(|_| LoadError::Missing {
            path: path.to_owned(),
        })?;
        if let Some(library) = self.loaded.get(&key) {
            return Ok(*library);
        }
        let library = load(path)?;
        self.loaded.insert(key, library);
        Ok(library)
    }
}

fn load(path: &Path) -> Result<Library, LoadError> {
    if !path.is_file() {
        return Err(LoadError::Missing {
            path: path.to_owned(),
        });
    }
    let header = lib_header_from_path(path).map_err(|error| library_error(path, error))?;
    // An app of contract 1.0 fails the check against the current shapes
    // (its view of the host object is shorter); the report that matters
    // is the current one.
    let module = match header.init_root_module::<AppModuleRef>() {
        Ok(module) => Module::Current(module),
        Err(current) => match header.init_root_module::<v1_0::AppModuleRef>() {
            Ok(module) => Module::V1_0(module),
            Err(_) => return Err(library_error(path, current)),
        },
    };
    let library = Library { module };
    if !on_module!(library, |module| (module.abi_info())()).panic_unwind {
        return Err(LoadError::PanicAbort {
            path: path.to_owned(),
        });
    }
    Ok(library)
}

fn library_error(path: &Path, error: LibraryError) -> LoadError {
    let path = path.to_owned();
    match error {
        LibraryError::OpenError { err, .. } => LoadError::NotALibrary {
            path,
            reason: err.to_string(),
        },
        LibraryError::GetSymbolError { .. } => LoadError::NoRootModule { path },
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => LoadError::Incompatible {
            summary: format!(
                "the app was built with app-api {actual_version}, this host has {expected_version}"
            ),
            full: String::new(),
            path,
        },
        other => {
            let full = other.to_string();
            LoadError::Incompatible {
                summary: summarize_abi_report(&full),
                full,
                path,
            }
        }
    }
}

/// abi_stable's layout report is 200–1400 lines of type dumps. Keep each
/// `Error:` with the `Expected:` and `Found:` values under it: `mismatched
/// type (expected AbiInfo, found u32)`.
pub fn summarize_abi_report(report: &str) -> String {
    let mut lines = report.lines().map(str::trim);
    let mut errors: Vec<String> = Vec::new();
    while let Some(line) = lines.next() {
        let Some(error) = line.strip_prefix("Error:") else {
            continue;
        };
        let mut value_after = |key: &str| {
            if lines.next() != Some(key) {
                return None;
            }
            lines.next().map(str::to_owned)
        };
        let expected = value_after("Expected:");
        let found = expected.as_ref().and_then(|_| value_after("Found:"));
        let entry = match (expected, found) {
            (Some(expected), Some(found)) => {
                format!("{} (expected {expected}, found {found})", error.trim())
            }
            _ => error.trim().to_owned(),
        };
        if !errors.contains(&entry) {
            errors.push(entry);
        }
    }
    if errors.is_empty() {
        return report
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .unwrap_or("the interface does not match")
            .to_owned();
    }
    errors.truncate(4);
    errors.join("; ")
}

/// What an app instance is told about its mount (the one at `index` in the
/// table), in the shape of the app's contract: a macro, because the two
/// shapes are distinct types with the same fields.
macro_rules! context {
    ($context:path, $host:expr, $mount:expr, $index:expr, $logger:expr, $services:expr, $flags:expr) => {{
        let (mount, logger): (&Mount, AppLogger) = ($mount, $logger);
        let secret = $services
            .mount_secret(&mount.name)
            .map_err(|message| LoadError::Secret { message })?;
        let fallbacks = $services.mount_secret_fallbacks(&mount.name);
        let services = MountServices::new(mount, $index, logger, Arc::clone($services));
        $context {
            mount_name: mount.name.as_str().into(),
            prefix: mount.prefix.as_str().into(),
            static_url_path: mount.static_url_path.as_str().into(),
            logger: mount.logger.as_str().into(),
            session_cookie: mount.session_cookie.as_str().into(),
            config_json: mount.config.to_string().into(),
            secret: RVec::from(secret),
            max_log_level: logger.max_level(),
            host: $host(services),
            extensions: extensions(mount, $flags, &fallbacks),
        }
    }};
}

fn current_host(services: MountServices) -> HostServices {
    Host_TO::from_ptr(RArc::new(services), TD_Opaque)
}

fn host_v1_0(services: MountServices) -> v1_0::HostServices {
    v1_0::Host_TO::from_ptr(RArc::new(services), TD_Opaque)
}

/// How the host runs, as apps are told it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunFlags {
    /// `--debug`: apps capture backtraces for the host's error page.
    pub debug: bool,
    /// `--reload`: apps read their templates from disk, and again when
    /// they change.
    pub reload: bool,
}

/// What the context's `extensions` say about the mount and the host; the
/// mount's keys from fallback secrets go as `secret_fallbacks`, each in
/// hex, comma-separated.
fn extensions(mount: &Mount, flags: RunFlags, fallbacks: &[Vec<u8>]) -> RVec<Extension> {
    let mut extensions = RVec::new();
    extensions.push(Extension {
        key: "host_contract".into(),
        value: API_VERSION.into(),
    });
    for (on, key) in [(flags.debug, "debug"), (flags.reload, "reload")] {
        if on {
            extensions.push(Extension {
                key: key.into(),
                value: "true".into(),
            });
        }
    }
    if !fallbacks.is_empty() {
        let hex: Vec<String> = fallbacks
            .iter()
            .map(|key| key.iter().map(|byte| format!("{byte:02x}")).collect())
            .collect();
        extensions.push(Extension {
            key: "secret_fallbacks".into(),
            value: hex.join(",").into(),
        });
    }
    if let Some(path) = &mount.uploads_url_path {
        extensions.push(Extension {
            key: "uploads_url_path".into(),
            value: path.as_str().into(),
        });
    }
    extensions
}

/// Evaluates `$body` with the app's root module and a context for the
/// mount in the shape of the app's contract; `?` inside returns the
/// `LoadError` of a context that could not be made.
macro_rules! with_context {
    ($library:expr, $mount:expr, $index:expr, $logger:expr, $services:expr, $flags:expr,
     |$module:ident, $context:ident| $body:expr) => {
        match $library.module {
            Module::Current($module) => {
                let $context = context!(
                    HostContext,
                    current_host,
                    $mount,
                    $index,
                    $logger,
                    $services,
                    $flags
                );
                $body
            }
            Module::V1_0($module) => {
                let $context = context!(
                    v1_0::HostContext,
                    host_v1_0,
                    $mount,
                    $index,
                    $logger,
                    $services,
                    $flags
                );
                $body
            }
        }
    };
}

/// Creates the app instance for one mount, the one at `index` in the table.
pub fn instantiate(
    library: Library,
    mount: &Mount,
    index: usize,
    logger: AppLogger,
    services: &Arc<SiteServices>,
    flags: RunFlags,
) -> Result<AppInstance, LoadError> {
    let outcome = with_context!(
        library,
        mount,
        index,
        logger,
        services,
        flags,
        |module, context| (module.instantiate())(context)
    );
    match outcome {
        RResult::ROk(instance) => Ok(instance),
        RResult::RErr(AppError { message, .. }) => Err(LoadError::Init {
            path: mount.library.clone(),
            message: message.into(),
        }),
    }
}

/// The commands an app offers (`host cmd`).
pub fn commands(library: Library) -> Vec<CommandInfo> {
    on_module!(library, |module| module.commands())
        .map(|list| list().into_vec())
        .unwrap_or_default()
}

/// Runs one of the app's commands for `mount` (at `index` in the table);
/// `arguments[0]` is the command's name. Returns what to print, or the
/// app's error.
pub fn run_command(
    library: Library,
    mount: &Mount,
    index: usize,
    logger: AppLogger,
    services: &Arc<SiteServices>,
    arguments: Vec<String>,
) -> Result<String, String> {
    let arguments: RVec<RString> = arguments.into_iter().map(RString::from).collect();
    let run = || -> Result<Option<RResult<RString, AppError>>, LoadError> {
        Ok(with_context!(
            library,
            mount,
            index,
            logger,
            services,
            RunFlags::default(),
            |module, context| module.run_command().map(|run| run(context, arguments))
        ))
    };
    match run().map_err(|error| error.to_string())? {
        Some(RResult::ROk(output)) => Ok(output.into()),
        Some(RResult::RErr(AppError { message, .. })) => Err(message.into()),
        None => Err(format!(
            "{}: built before apps could have commands; it has none",
            mount.library.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_reports_are_cut_to_their_key_lines() {
        let report = "\nCompared <this>:\n  type dump\n\nError:incompatible type size\nExpected:\n    24\nFound:\n    16\n\n\
                      lots of type dump\nError:mismatched type\nExpected:\n    AbiInfo\nFound:\n    u32\n\
                      Error:incompatible type size\nExpected:\n    24\nFound:\n    16\n";
        assert_eq!(
            summarize_abi_report(report),
            "incompatible type size (expected 24, found 16); mismatched type (expected AbiInfo, found u32)"
        );
        assert_eq!(summarize_abi_report("\n\nodd text\nmore"), "odd text");
    }
}
