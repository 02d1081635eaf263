//! App events re-emitted under each mount's logger name, and each mount's
//! access log.
//!
//! An app's `tracing` events arrive through the log callback as plain values
//! (`docs/architecture.md`, "Inside an app"). To make them first-class
//! events whose *target* is the logger name (so `RUST_LOG=app_admin=debug`
//! filters them), each logger gets one callsite per level, created once and
//! registered with `tracing` like the callsites its macros make.

use std::{
    cell::RefCell,
    collections::HashMap,
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicU8, Ordering},
    },
};

use app_api_abi::level;
use tracing::{
    Event, Level, Metadata,
    callsite::{Callsite, Identifier},
    field::{FieldSet, Value},
    metadata::Kind,
    subscriber::Interest,
};

use super::sink::{self, BufferedWriter};

thread_local! {
    /// The id of the request this thread is handling, for app events.
    static REQUEST_ID: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `body` with `request_id` as the context of the app events emitted on
/// this thread. Cheaper than a span per request, which the subscriber would
/// have to allocate and format even when the app logs nothing.
pub fn with_request_id<T>(request_id: &str, body: impl FnOnce() -> T) -> T {
    REQUEST_ID.with(|current| {
        let mut current = current.borrow_mut();
        let slot = current.get_or_insert_with(String::new);
        slot.clear();
        slot.push_str(request_id);
    });
    let result = body();
    REQUEST_ID.with(|current| {
        if let Some(slot) = current.borrow_mut().as_mut() {
            slot.clear();
        }
    });
    result
}

/// One dynamically created callsite: an app logger at one level.
struct AppCallsite {
    metadata: OnceLock<Metadata<'static>>,
    /// What the subscribers said of this callsite: [`NEVER`], [`SOMETIMES`]
    /// or [`ALWAYS`], kept as `tracing`'s own callsites keep it, so that the
    /// access line of every request does not ask the filter again.
    interest: AtomicU8,
}

const NEVER: u8 = 0;
const SOMETIMES: u8 = 1;
const ALWAYS: u8 = 2;

impl Callsite for AppCallsite {
    fn set_interest(&self, interest: Interest) {
        let interest = if interest.is_never() {
            NEVER
        } else if interest.is_always() {
            ALWAYS
        } else {
            SOMETIMES
        };
        self.interest.store(interest, Ordering::Relaxed);
    }

    fn metadata(&self) -> &Metadata<'static> {
        self.metadata.get().expect("set before registration")
    }
}

const LEVELS: [Level; 5] = [
    Level::ERROR,
    Level::WARN,
    Level::INFO,
    Level::DEBUG,
    Level::TRACE,
];

/// The logger of one mount: where its app's events are re-emitted.
#[derive(Clone, Copy)]
pub struct AppLogger {
    /// One callsite per level, `ERROR` first.
    callsites: [&'static AppCallsite; 5],
    /// Its file's buffer, when access lines are written there directly.
    direct_file: Option<&'static BufferedWriter>,
}

/// Creates and registers a callsite for `target`'s events at `level`.
fn new_callsite(target: &'static str, level: Level) -> &'static AppCallsite {
    let callsite: &'static AppCallsite = Box::leak(Box::new(AppCallsite {
        metadata: OnceLock::new(),
        interest: AtomicU8::new(SOMETIMES),
    }));
    let _ = callsite.metadata.set(Metadata::new(
        "app event",
        target,
        level,
        None,
        None,
        None,
        FieldSet::new(&["message", "module", "request_id"], Identifier(callsite)),
        Kind::EVENT,
    ));
    tracing::callsite::register(callsite);
    callsite
}

impl AppLogger {
    /// The logger named `name` (the event target); the same name always gives
    /// the same callsites, so re-creating mounts leaks nothing more.
    pub fn new(name: &str) -> AppLogger {
        static LOGGERS: OnceLock<Mutex<HashMap<String, AppLogger>>> = OnceLock::new();
        let mut loggers = LOGGERS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(logger) = loggers.get(name) {
            return *logger;
        }
        let target: &'static str = Box::leak(name.to_owned().into_boxed_str());
        let callsites = LEVELS.map(|level| new_callsite(target, level));
        let logger = AppLogger {
            callsites,
            direct_file: sink::direct_file(name),
        };
        loggers.insert(name.to_owned(), logger);
        logger
    }

    fn callsite(&self, level_number: u8) -> &'static AppCallsite {
        let index = usize::from(level_number.clamp(level::ERROR, level::TRACE) - 1);
        self.callsites[index]
    }

    /// The logger's name: its events' target.
    pub fn name(&self) -> &'static str {
        self.callsites[0].metadata().target()
    }

    /// Its file's buffer, when access lines are written there directly.
    pub(super) fn direct_file(&self) -> Option<&'static BufferedWriter> {
        self.direct_file
    }

    /// Whether an event at this [`level`] would be recorded.
    pub fn enabled(&self, level_number: u8) -> bool {
        let callsite = self.callsite(level_number);
        match callsite.interest.load(Ordering::Relaxed) {
            NEVER => false,
            ALWAYS => true,
            _ => tracing::dispatcher::get_default(|dispatch| dispatch.enabled(callsite.metadata())),
        }
    }

    /// The most verbose level recorded for this logger, as a [`level`].
    pub fn max_level(&self) -> u8 {
        (level::ERROR..=level::TRACE)
            .rev()
            .find(|&number| self.enabled(number))
            .unwrap_or(level::OFF)
    }

    /// Emits `message` at `level_number` under this logger; `module` says
    /// where in the app it came from.
    pub fn emit(&self, level_number: u8, module: &str, message: &str) {
        if level_number == level::OFF || !self.enabled(level_number) {
            return;
        }
        let metadata = self.callsite(level_number).metadata();
        let fields = metadata.fields();
        let (Some(message_field), Some(module_field), Some(request_field)) = (
            fields.field("message"),
            fields.field("module"),
            fields.field("request_id"),
        ) else {
            return;
        };
        let message = format_args!("{message}");
        let module = tracing::field::display(module);
        REQUEST_ID.with(|current| {
            let current = current.borrow();
            let request_id = current
                .as_deref()
                .filter(|id| !id.is_empty())
                .map(tracing::field::display);
            let values: [(&_, Option<&dyn Value>); 3] = [
                (&message_field, Some(&message as &dyn Value)),
                (&module_field, Some(&module as &dyn Value)),
                (
                    &request_field,
                    request_id.as_ref().map(|id| id as &dyn Value),
                ),
            ];
            Event::dispatch(metadata, &fields.value_set(&values));
        });
    }
}
