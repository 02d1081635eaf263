//! Logging: the console, one file per app logger and `host.log`, written by
//! background threads so that request handling never waits for the disk.
//!
//! Every event goes to the console (filtered by `RUST_LOG`, default `info`)
//! and to exactly one file: the file of the app logger named by its target,
//! else `host.log`. An app's events carry its logger name as their target
//! (see `app_events`), so one app's lines never land in another's file (the
//! bug of Flask issue #2866).

mod app_events;

use std::{
    collections::HashMap,
    fmt, fs,
    io::{self, IsTerminal},
    path::{Path, PathBuf},
};

use tracing::Metadata;
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::{
    EnvFilter, fmt::MakeWriter, layer::SubscriberExt, util::SubscriberInitExt,
};

pub use app_events::{AppLogger, with_request_id};

/// The filter: `RUST_LOG`, default `info`.
fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the console subscriber alone (for `check` and `routes`).
pub fn init_console() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .try_init();
}

/// Why logging could not start.
#[derive(Debug)]
pub struct LogError {
    path: PathBuf,
    source: io::Error,
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot write logs to {}: {} (check the folder's permissions or set \"log_dir\" in the mount table)",
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for LogError {}

/// Keeps the background writers alive; dropping it flushes what they hold.
#[must_use = "dropping the guards stops the log writers"]
pub struct LogGuards {
    _guards: Vec<WorkerGuard>,
}

/// Where file events go: one writer per app logger, `host.log` for the rest.
struct LogFiles {
    host: NonBlocking,
    apps: HashMap<String, NonBlocking>,
}

impl<'a> MakeWriter<'a> for LogFiles {
    type Writer = NonBlocking;

    fn make_writer(&'a self) -> NonBlocking {
        self.host.clone()
    }

    fn make_writer_for(&'a self, metadata: &Metadata<'_>) -> NonBlocking {
        self.apps
            .get(metadata.target())
            .unwrap_or(&self.host)
            .clone()
    }
}

/// Opens `<dir>/<name>.log` for appending, creating the folder if needed,
/// with a background writer.
fn open_log(
    dir: &Path,
    name: &str,
    guards: &mut Vec<WorkerGuard>,
) -> Result<NonBlocking, LogError> {
    let path = dir.join(format!("{name}.log"));
    let file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|source| LogError { path, source })?;
    let (writer, guard) = background(file);
    guards.push(guard);
    Ok(writer)
}

fn background<W: io::Write + Send + 'static>(writer: W) -> (NonBlocking, WorkerGuard) {
    // Lossy: under a flood, lines are dropped rather than requests slowed.
    NonBlockingBuilder::default()
        .lossy(true)
        .thread_name("log-writer")
        .finish(writer)
}

/// Installs console and file logging for serving: `<log_dir>/<logger>.log`
/// for each app logger and `<log_dir>/host.log`.
pub fn init_serving(log_dir: &Path, loggers: &[&str]) -> Result<LogGuards, LogError> {
    fs::create_dir_all(log_dir).map_err(|source| LogError {
        path: log_dir.to_owned(),
        source,
    })?;
    let mut guards = Vec::new();
    let host = open_log(log_dir, "host", &mut guards)?;
    let mut apps = HashMap::new();
    for logger in loggers {
        if !apps.contains_key(*logger) {
            let writer = open_log(log_dir, logger, &mut guards)?;
            apps.insert((*logger).to_owned(), writer);
        }
    }
    let (console, console_guard) = background(io::stderr());
    guards.push(console_guard);
    let console_layer = tracing_subscriber::fmt::layer()
        .with_writer(console)
        .with_ansi(io::stderr().is_terminal());
    let file_layer = tracing_subscriber::fmt::layer()
        .with_writer(LogFiles { host, apps })
        .with_ansi(false);
    // One global filter, not one per layer: per-layer filters keep state
    // between `enabled` and the event, which the app loggers' own
    // `enabled` checks would disturb.
    let _ = tracing_subscriber::registry()
        .with(filter())
        .with(console_layer)
        .with(file_layer)
        .try_init();
    Ok(LogGuards { _guards: guards })
}
