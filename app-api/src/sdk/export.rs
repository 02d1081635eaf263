//! The glue `export_app!` expands to: an [`App`] implementation around a
//! [`Router`], with every call guarded by `catch_unwind`.

use std::{
    any::Any,
    cell::RefCell,
    panic::{self, AssertUnwindSafe},
    sync::{
        Arc, Once,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RNone, RResult, RSome, RString, RVec},
};
use tracing::{Dispatch, dispatcher::DefaultGuard};

use super::{Commands, Error, Mount, Router, Services, logging};
use crate::abi::{
    App, App_TO, AppError, AppInstance, AppRequest, AppResponse, CommandInfo, HostContext,
    RouteInfo,
};

/// Whether panics capture a backtrace even without `RUST_BACKTRACE`: set
/// when the host runs with `--debug` (it shows them on its error page).
static FORCE_BACKTRACES: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Where the panic hook leaves the message of a panic on this thread.
    static LAST_PANIC: RefCell<Option<(String, Option<String>)>> = const { RefCell::new(None) };
}

/// Replaces the library's panic hook (its own copy of std's) once: the hook
/// records the message and location for [`guard`] instead of printing to
/// stderr; the host logs it under the app's logger.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let location = info
                .location()
                .map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            let message = format!("panicked{location}: {}", payload_text(info.payload()));
            let backtrace = if FORCE_BACKTRACES.load(Ordering::Relaxed) {
                std::backtrace::Backtrace::force_capture()
            } else {
                std::backtrace::Backtrace::capture()
            };
            let backtrace = (backtrace.status() == std::backtrace::BacktraceStatus::Captured)
                .then(|| backtrace.to_string());
            LAST_PANIC.with(|last| *last.borrow_mut() = Some((message, backtrace)));
        }));
    });
}

fn payload_text(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "(non-text panic payload)"
    }
}

/// Runs `body`, turning a panic into an [`AppError`] so it never crosses the
/// FFI boundary, where it would abort the host (`docs/architecture.md`,
/// "Loading apps").
fn guard<T>(body: impl FnOnce() -> Result<T, AppError>) -> RResult<T, AppError> {
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result.into(),
        Err(payload) => {
            let (message, backtrace) = LAST_PANIC
                .with(|last| last.borrow_mut().take())
                .unwrap_or_else(|| (format!("panicked: {}", payload_text(&*payload)), None));
            RResult::RErr(AppError {
                status: 500,
                message: message.into(),
                panicked: true,
                backtrace: backtrace.map(Into::into).map_or(RNone, RSome),
            })
        }
    }
}

fn internal_error(error: Error) -> AppError {
    AppError {
        status: error.status(),
        message: error.message().into(),
        panicked: false,
        backtrace: RNone,
    }
}

/// One mount's instance of an app.
struct Instance {
    mount: Mount,
    router: Router,
    dispatch: Dispatch,
    /// Tells this instance from the library's others in [`CURRENT`] (an
    /// address could be reused by a later instance).
    id: u64,
}

/// Ids for [`Instance`]s.
static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The instance whose dispatcher is this thread's default for this
    /// library's copy of `tracing`, and the guard that keeps it there.
    static CURRENT: RefCell<Option<(u64, DefaultGuard)>> = const { RefCell::new(None) };
}

impl Instance {
    /// Runs `body` with this instance's dispatcher as the thread's default,
    /// so that the app's events go to its mount's logger.
    ///
    /// The default stays set after `body` (until a call for another
    /// instance of this library comes on this thread): setting and
    /// restoring it per call, as `with_default` does, costs three writes to
    /// atomics that every thread running this library shares, on every
    /// call.
    /// A call made while another runs on this thread (not something the
    /// host does) nests with `with_default`.
    fn in_scope<T>(&self, body: impl FnOnce() -> T) -> T {
        let mut body = Some(body);
        let ran = CURRENT.try_with(|current| {
            // held while the body runs: a nested call finds it taken
            let mut current = current.try_borrow_mut().ok()?;
            if current.as_ref().is_none_or(|(id, _)| *id != self.id) {
                // the old guard first: it restores the default it replaced
                *current = None;
                *current = Some((self.id, tracing::dispatcher::set_default(&self.dispatch)));
            }
            body.take().map(|body| body())
        });
        match (ran, body) {
            (Ok(Some(result)), _) => result,
            // not run: a call nested in another, or the thread is ending
            (_, Some(body)) => tracing::dispatcher::with_default(&self.dispatch, body),
            (_, None) => unreachable!("the body runs once, and returned"),
        }
    }
}

impl App for Instance {
    fn handle(&self, request: &AppRequest) -> RResult<AppResponse, AppError> {
        guard(|| {
            self.in_scope(|| match self.router.dispatch(&self.mount, request) {
                Ok(response) => Ok(response.into_abi()),
                Err(error) => Err(internal_error(error)),
            })
        })
    }

    fn routes(&self) -> RVec<RouteInfo> {
        // Nothing in here can panic; no guard needed beyond what the
        // allocator already guarantees.
        self.router
            .routes()
            .map(|(methods, rule, endpoint)| RouteInfo {
                methods: methods.into(),
                rule: rule.into(),
                endpoint: endpoint.into(),
            })
            .collect()
    }

    fn shutdown(&self) {
        let _ = guard(|| {
            tracing::dispatcher::with_default(&self.dispatch, || {
                tracing::debug!(mount = %self.mount.name, "app instance shut down");
            });
            Ok(())
        });
    }
}

/// The mount settings and log dispatcher a [`HostContext`] describes.
fn mount_from_context(context: HostContext) -> Result<(Mount, Dispatch), AppError> {
    let config = serde_json::from_str(&context.config_json).map_err(|error| {
        internal_error(Error::internal(format!(
            "config is not valid JSON: {error}"
        )))
    })?;
    let extension = |key: &str| {
        context
            .extensions
            .iter()
            .find(|entry| entry.key == key)
            .map(|entry| entry.value.to_string())
    };
    if extension("debug").as_deref() == Some("true") {
        FORCE_BACKTRACES.store(true, Ordering::Relaxed);
    }
    let uploads_url_path = extension("uploads_url_path").unwrap_or_else(|| "/uploads".to_owned());
    let host = Arc::new(context.host);
    let dispatch = logging::dispatch(Arc::clone(&host), context.max_log_level);
    let mount = Mount {
        name: context.mount_name.into(),
        prefix: context.prefix.into(),
        static_url_path: context.static_url_path.into(),
        logger: context.logger.into(),
        session_cookie: context.session_cookie.into(),
        config,
        secret: context.secret.into(),
        uploads_url_path,
        reload: extension("reload").as_deref() == Some("true"),
        secret_fallbacks: extension("secret_fallbacks")
            .map(|hex| hex.split(',').filter_map(from_hex).collect())
            .unwrap_or_default(),
        host: Some(Services(host)),
    };
    Ok((mount, dispatch))
}

/// The bytes a string of hex digits spells; `None` if it spells none.
fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(hex.get(at..at + 2)?, 16).ok())
        .collect()
}

/// Creates one instance for one mount: what `export_app!`'s `instantiate`
/// calls.
pub fn instantiate<F>(context: HostContext, init: F) -> RResult<AppInstance, AppError>
where
    F: FnOnce(&Mount) -> Result<Router, Error>,
{
    guard(move || {
        install_panic_hook();
        let (mount, dispatch) = mount_from_context(context)?;
        let router = tracing::dispatcher::with_default(&dispatch, || init(&mount))
            .map_err(internal_error)?;
        router.check().map_err(internal_error)?;
        let instance = Instance {
            mount,
            router,
            dispatch,
            id: NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed),
        };
        Ok(App_TO::from_value(instance, TD_Opaque))
    })
}

/// Lists an app's commands: what `export_app!`'s `commands` calls.
pub fn commands(commands: impl FnOnce() -> Commands) -> RVec<CommandInfo> {
    guard(|| {
        Ok(commands()
            .iter()
            .map(|command| CommandInfo {
                name: command.name.as_str().into(),
                usage: command.usage.as_str().into(),
                about: command.about.as_str().into(),
            })
            .collect())
    })
    .unwrap_or_default()
}

/// Runs one command for one mount: what `export_app!`'s `run_command`
/// calls. Errors of any status come back as errors, for the host to print.
pub fn run_command(
    context: HostContext,
    arguments: RVec<RString>,
    commands: impl FnOnce() -> Commands,
) -> RResult<RString, AppError> {
    guard(move || {
        install_panic_hook();
        let (mount, dispatch) = mount_from_context(context)?;
        let arguments: Vec<String> = arguments.into_iter().map(Into::into).collect();
        tracing::dispatcher::with_default(&dispatch, || commands().run(&mount, &arguments))
            .map(Into::into)
            .map_err(internal_error)
    })
}
