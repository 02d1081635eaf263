//! Logging: the console, one file per app logger and `host.log`, written by
//! a background thread so that request handling never waits for the disk.
//!
//! Every event goes to the console (filtered by `RUST_LOG`, default `info`)
//! and to exactly one file: the file of the app logger named by its target,
//! else `host.log`. An app's events carry its logger name as their target
//! (see `app_events`), so one app's lines never land in another's file (the
//! bug of Flask issue #2866).

mod access;
mod app_events;
mod sink;

pub use sink::Reopener;

use std::{
    collections::HashMap,
    fmt, fs,
    io::{self, IsTerminal},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use crate::table::LogFormat;
use sink::{BufferedWriter, Flusher, Sinks};
use tracing::Metadata;
use tracing_subscriber::{
    EnvFilter, fmt::MakeWriter, layer::SubscriberExt, util::SubscriberInitExt,
};

pub use access::{Access, log_access};
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

/// Keeps the background writer alive; dropping it flushes what it holds.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuards {
    flusher: Flusher,
}

impl LogGuards {
    /// What reopens the log files (on `SIGUSR1`).
    pub fn reopener(&self) -> Reopener {
        self.flusher.reopener()
    }
}

/// Where file events go: one writer per app logger, `host.log` for the rest.
struct LogFiles {
    host: BufferedWriter,
    apps: HashMap<String, BufferedWriter>,
}

impl<'a> MakeWriter<'a> for LogFiles {
    type Writer = BufferedWriter;

    fn make_writer(&'a self) -> BufferedWriter {
        self.host.clone()
    }

    fn make_writer_for(&'a self, metadata: &Metadata<'_>) -> BufferedWriter {
        self.apps
            .get(metadata.target())
            .unwrap_or(&self.host)
            .clone()
    }
}

/// Every event to the console and to its file.
struct Tee {
    console: BufferedWriter,
    files: LogFiles,
}

/// A writer to two destinations.
struct TeeWriter {
    console: BufferedWriter,
    file: BufferedWriter,
}

impl io::Write for TeeWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.console.write_all(bytes)?;
        self.file.write_all(bytes)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Tee {
    type Writer = TeeWriter;

    fn make_writer(&'a self) -> TeeWriter {
        TeeWriter {
            console: self.console.clone(),
            file: self.files.make_writer(),
        }
    }

    fn make_writer_for(&'a self, metadata: &Metadata<'_>) -> TeeWriter {
        TeeWriter {
            console: self.console.clone(),
            file: self.files.make_writer_for(metadata),
        }
    }
}

/// Opens `<dir>/<name>.log` for appending, as a buffered destination. A
/// new file is made readable by the group too (0640, the host's umask
/// makes everything else private): log readers such as `adm` are given
/// the folder's group; a file that exists keeps the mode it has.
fn open_log(dir: &Path, name: &str, sinks: &mut Sinks) -> Result<BufferedWriter, LogError> {
    let path = dir.join(format!("{name}.log"));
    let file = open_log_file(&path).map_err(|source| LogError {
        path: path.clone(),
        source,
    })?;
    let reopen =
        move || open_log_file(&path).map(|file| Box::new(file) as Box<dyn io::Write + Send>);
    Ok(sinks.add_reopenable(name, Box::new(file), Some(Box::new(reopen))))
}

/// Opens the log file at `path` for appending, made (mode 0640) if missing.
fn open_log_file(path: &Path) -> io::Result<fs::File> {
    let open = |create_new: bool| {
        fs::OpenOptions::new()
            .create_new(create_new)
            .append(true)
            .open(path)
    };
    match open(true) {
        Ok(file) => file
            .set_permissions(fs::Permissions::from_mode(LOG_FILE_MODE))
            .map(|()| file),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => open(false),
        Err(error) => Err(error),
    }
}

/// The mode of new log files, and (with the search bit) of a new log folder.
const LOG_FILE_MODE: u32 = 0o640;

/// Installs console and file logging for serving: `<log_dir>/<logger>.log`
/// for each app logger and `<log_dir>/host.log`, in `format`.
pub fn init_serving(
    log_dir: &Path,
    loggers: &[&str],
    format: LogFormat,
    access_to_console: bool,
) -> Result<LogGuards, LogError> {
    let created = !log_dir.exists();
    fs::create_dir_all(log_dir)
        .and_then(|()| match created {
            true => fs::set_permissions(log_dir, fs::Permissions::from_mode(LOG_FILE_MODE | 0o110)),
            false => Ok(()),
        })
        .map_err(|source| LogError {
            path: log_dir.to_owned(),
            source,
        })?;
    let mut sinks = Sinks::default();
    let host = open_log(log_dir, "host", &mut sinks)?;
    let mut apps = HashMap::new();
    for logger in loggers {
        if !apps.contains_key(*logger) {
            let writer = open_log(log_dir, logger, &mut sinks)?;
            apps.insert((*logger).to_owned(), writer);
        }
    }
    let console = sinks.add("the console", io::stderr());
    // One global filter, not one per layer: per-layer filters keep state
    // between `enabled` and the event, which the app loggers' own
    // `enabled` checks would disturb.
    let registry = tracing_subscriber::registry().with(filter());
    let files = LogFiles { host, apps };
    let json = format == LogFormat::Json;
    // JSON goes to a terminal as it is: a collector may be reading it
    let terminal = io::stderr().is_terminal() && !json;
    // access lines bypass the formatter into the files, and into the
    // console only when asked (`--access-log -`)
    sink::write_directly(sink::Direct {
        console: console.clone(),
        host: files.host.clone(),
        apps: files.apps.clone(),
        access_to_console,
        console_plain: !terminal,
        json,
    });
    if json {
        // the event's fields beside time, level and target, no spans
        let both = tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(Tee { console, files });
        let _ = registry.with(both).try_init();
    } else if terminal {
        // A person is watching: colours on the console, plain files.
        let console_layer = tracing_subscriber::fmt::layer()
            .with_writer(console)
            .with_ansi(true);
        let file_layer = tracing_subscriber::fmt::layer()
            .with_writer(files)
            .with_ansi(false);
        let _ = registry.with(console_layer).with(file_layer).try_init();
    } else {
        // Format each event once and copy the line to both destinations
        // (formatting is the costly part); access lines skip the formatter
        // (see `access`).
        let both = tracing_subscriber::fmt::layer()
            .with_writer(Tee { console, files })
            .with_ansi(false);
        let _ = registry.with(both).try_init();
    }
    let flusher = sinks.start().map_err(|source| LogError {
        path: log_dir.to_owned(),
        source,
    })?;
    Ok(LogGuards { flusher })
}

/// `text` with its control characters escaped (`\n`, `\r`, `\u{1b}`; tab
/// kept), so that it stays one log line; borrowed when there are none.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    let escaped = |c: char| c.is_control() && c != '\t';
    if !text.contains(escaped) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut line = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            c if escaped(c) => line.extend(c.escape_unicode()),
            c => line.push(c),
        }
    }
    std::borrow::Cow::Owned(line)
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn a_logged_message_stays_on_one_line() {
        for (text, line) in [
            ("plain\ttext", "plain\ttext"),
            ("eve\n2026 INFO forged", "eve\\n2026 INFO forged"),
            ("a\r\nb", "a\\r\\nb"),
            ("\u{1b}[31mred", "\\u{1b}[31mred"),
            ("caf\u{e9}", "caf\u{e9}"),
        ] {
            assert_eq!(one_line(text), line, "{text:?}");
        }
    }
}
