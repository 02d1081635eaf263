//! App-side logging: forwards `tracing` events to the host.
//!
//! Each app library has its own copy of `tracing`'s globals, so without this
//! its events would go nowhere (`docs/architecture.md`, "Inside an app").
//! Every instance owns a [`Dispatch`] that hands events to the host's log
//! callback, which re-emits them under the mount's logger name. Handlers run
//! with it as the thread's default; the first instance of a library also
//! becomes the library's global default, for threads the app spawns itself. When one library is mounted
//! several times, threads started with [`spawn`] keep their own mount's
//! logger; threads from `std::thread::spawn` log under the first mount's.

use std::{
    fmt::{self, Write as _},
    sync::Arc,
};

use tracing::{
    Dispatch, Event, Level, Metadata, Subscriber,
    field::{Field, Visit},
    span,
    subscriber::Interest,
};
use tracing_core::LevelFilter;

use crate::abi::{HostServices, level};

struct Forwarder {
    host: Arc<HostServices>,
    max_level: LevelFilter,
}

/// The dispatcher that forwards this instance's events to the host.
pub(crate) fn dispatch(host: Arc<HostServices>, max_log_level: u8) -> Dispatch {
    let max_level = match max_log_level {
        level::OFF => LevelFilter::OFF,
        level::ERROR => LevelFilter::ERROR,
        level::WARN => LevelFilter::WARN,
        level::INFO => LevelFilter::INFO,
        level::DEBUG => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let dispatch = Dispatch::new(Forwarder { host, max_level });
    // Fails when another instance of this library was first; that one keeps
    // the threads the app spawns.
    let _ = tracing::dispatcher::set_global_default(dispatch.clone());
    dispatch
}

/// Starts a thread whose `tracing` events go to the logger of the mount that
/// started it, like `std::thread::spawn` otherwise.
///
/// ```
/// let worker = app_api::sdk::spawn(|| {
///     tracing::info!("resizing images in the background");
///     42
/// });
/// assert_eq!(worker.join().unwrap(), 42);
/// ```
pub fn spawn<F, T>(body: F) -> std::thread::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let dispatch = tracing::dispatcher::get_default(Dispatch::clone);
    std::thread::spawn(move || tracing::dispatcher::with_default(&dispatch, body))
}

fn level_number(level: &Level) -> u8 {
    match *level {
        Level::ERROR => level::ERROR,
        Level::WARN => level::WARN,
        Level::INFO => level::INFO,
        Level::DEBUG => level::DEBUG,
        Level::TRACE => level::TRACE,
    }
}

/// Collects an event's message and fields as `message key=value ...`.
#[derive(Default)]
struct Line(String);

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl Subscriber for Forwarder {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.enabled(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_event() && *metadata.level() <= self.max_level
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max_level)
    }

    fn new_span(&self, _span: &span::Attributes<'_>) -> span::Id {
        // Spans stay on the app side: the host's request span already gives
        // app events their context.
        span::Id::from_u64(1)
    }

    fn record(&self, _span: &span::Id, _values: &span::Record<'_>) {}

    fn record_follows_from(&self, _span: &span::Id, _follows: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = Line::default();
        event.record(&mut line);
        let metadata = event.metadata();
        self.host.log(
            level_number(metadata.level()),
            metadata.target().into(),
            line.0.as_str().into(),
        );
    }

    fn enter(&self, _span: &span::Id) {}

    fn exit(&self, _span: &span::Id) {}
}
