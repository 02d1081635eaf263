//! The mount table (`plugins.json`): what the site is made of, as the
//! operator wrote it.
//!
//! Parse raw (`raw`), then validate into [`MountTable`] (`validate`, with
//! the `defaults`); nothing unvalidated goes further. Every error names the
//! file, the line and column (`locator`), and the key path
//! (`mounts[1].prefix`), and says how to fix it.

mod defaults;
mod hosts;
mod listen;
mod locator;
mod proxies;
mod raw;
#[cfg(test)]
mod tests;
mod validate;

use std::{
    fmt,
    path::{Path, PathBuf},
};

pub use host_database::Location;
pub use hosts::{AllowedHosts, PublicUrl};
pub use listen::Listen;
use locator::Locator;
pub use proxies::{Networks, TrustedHeaders, TrustedProxies};
use raw::{RawMount, RawTable};
pub(crate) use validate::normalize_prefix;

/// A validated mount table.
#[derive(Debug, Clone, PartialEq)]
pub struct MountTable {
    /// The file it was read from.
    pub file: PathBuf,
    /// Where to listen.
    pub listen: Listen,
    /// The folder for the host's data (database, secret), resolved.
    pub data_dir: PathBuf,
    /// The folder for log files, resolved.
    pub log_dir: PathBuf,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// The file of the host's secret key, when the table names one (else
    /// the data folder's `secret.key`).
    pub secret_key_file: Option<PathBuf>,
    /// Where uploads are stored.
    pub uploads: UploadsStore,
    /// The mounts, in table order.
    pub mounts: Vec<Mount>,
    /// The databases: those the table declares, then the private ones of
    /// mounts that list none, each once.
    pub databases: Vec<DatabaseConfig>,
    /// Where the host answers its health report, if anywhere.
    pub health_path: Option<String>,
    /// Where the host answers its metrics, if anywhere.
    pub metrics_path: Option<String>,
    /// Where the host answers its liveness probe, if anywhere.
    pub livez_path: Option<String>,
    /// Where the host answers its readiness probe, if anywhere.
    pub readyz_path: Option<String>,
    /// How long the host serves, not ready, after SIGTERM before draining.
    pub drain_delay: std::time::Duration,
    /// Limits against misbehaving clients.
    pub limits: Limits,
    /// Proxies whose X-Forwarded-* headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// Clients besides this machine and the trusted proxies that may read
    /// the health details and the metrics.
    pub admin_allow: Networks,
    /// The hosts the site answers for.
    pub allowed_hosts: AllowedHosts,
    /// The scheme and host absolute URLs are built from, if configured.
    pub public_url: Option<PublicUrl>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// A line a person reads: time, level, target, message, fields.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Limits against misbehaving clients, for the whole host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at most; more wait in the listen backlog.
    pub max_connections: usize,
    /// Open connections from one client at most; more are closed.
    pub max_connections_per_address: usize,
    /// Time a client has to send a request's headers, and the longest a
    /// keep-alive connection may sit idle (against slowloris).
    pub header_read_timeout_ms: u64,
    /// Headers in one request at most; more get 431.
    pub max_headers: usize,
    /// Bytes of request line and headers at most; more get 431.
    pub max_header_bytes: usize,
    /// Time allowed between two reads of a request body; then 408.
    pub body_read_timeout_ms: u64,
    /// Bodies larger than this are spooled to a file as they arrive.
    pub body_buffer_bytes: u64,
    /// Memory all request bodies together may hold.
    pub body_memory_bytes: u64,
}

/// One database of the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    /// Its name: the key under `databases`, or a mount's name for the
    /// private database of a mount that lists none.
    pub name: String,
    /// Where it is: an SQLite file (resolved against the data folder) or
    /// a PostgreSQL URL.
    pub location: Location,
    /// Whether the table declares it (else it is a mount's own).
    pub declared: bool,
}

/// Where the site's uploads are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadsStore {
    /// A folder, resolved against the data folder.
    Folder(PathBuf),
    /// An S3 bucket and the prefix of the uploads' keys in it, as the
    /// table writes them (`s3://bucket/prefix`).
    S3(String),
}

/// The file of the site database of releases before named databases, in
/// the data folder (the services refuse a table that leaves it out).
pub(crate) const LEGACY_DATABASE_FILE: &str = "app.db";

/// One validated mount.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    /// Its unique name, e.g. `admin`.
    pub name: String,
    /// The normalised prefix: `""` for the root mount, else `/admin` (no
    /// trailing slash).
    pub prefix: String,
    /// The app library, resolved against the table's folder.
    pub library: PathBuf,
    /// The static folder, resolved, if the mount serves one.
    pub static_folder: Option<PathBuf>,
    /// The URL path of the static folder below the prefix, e.g. `/static`.
    pub static_url_path: String,
    /// Seconds static files may be cached (`Cache-Control`); 0 is `no-cache`.
    pub static_max_age: u64,
    /// Whether responses are compressed for clients that accept it.
    pub compress: bool,
    /// The URL path below the prefix where the host serves the site's
    /// stored uploads (`<data_dir>/uploads`), e.g. `/uploads`; `None` when
    /// turned off.
    pub uploads_url_path: Option<String>,
    /// The logger name (`app_<name>` by default).
    pub logger: String,
    /// The session cookie name (`<name>_session` by default).
    pub session_cookie: String,
    /// Headers added to the app's responses that lack them.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// The app's own settings, handed to it as JSON.
    pub config: serde_json::Value,
    /// The databases the mount may use, by name; the first is its default.
    /// Never empty: a mount that lists none has its own, named after it.
    pub databases: Vec<String>,
    /// Handler threads for this mount.
    pub max_concurrency: usize,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: u64,
    /// How long a request may wait for a free handler (then 503).
    pub queue_timeout_ms: u64,
    /// How long a handler may take before the client gets 504.
    pub timeout_ms: u64,
}

impl MountTable {
    /// What is allowed but likely a mistake, one sentence each with the
    /// fix (`host check` prints them, `host serve` logs them).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.listen.reaches_beyond() && !self.allowed_hosts.written {
            warnings.push(format!(
                "listen {} reaches beyond this machine but allowed_hosts is not set: requests naming any host but this machine's get 400; list the site's names in allowed_hosts (e.g. [\"blog.example.com\"])",
                self.listen
            ));
        }
        if self.allowed_hosts.any() && self.public_url.is_none() {
            warnings.push(
                "allowed_hosts has \"*\" and public_url is not set: absolute URLs (feeds, redirects) take whatever host a client names; set public_url or list the site's names".to_owned(),
            );
        }
        warnings
    }
}

impl Mount {
    /// The prefix as people write it: `/` for the root mount.
    pub fn display_prefix(&self) -> &str {
        if self.prefix.is_empty() {
            "/"
        } else {
            &self.prefix
        }
    }
}

/// Why a mount table was refused.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file's content is wrong at a place.
    Invalid {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The key path, e.g. `mounts[1].prefix`; empty for the whole file.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { file, source } => {
                write!(
                    f,
                    "{}: cannot read the mount table: {source}",
                    file.display()
                )
            }
            ConfigError::Invalid {
                file,
                line,
                column,
                key,
                message,
            } => {
                write!(f, "{}:{line}:{column}: ", file.display())?;
                if !key.is_empty() {
                    write!(f, "{key}: ")?;
                }
                f.write_str(message)
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            ConfigError::Invalid { .. } => None,
        }
    }
}

/// A one-mount table for `host run`: the library served at `prefix`, with
/// every other setting at its default, relative to the current folder.
pub(crate) fn single(
    name: &str,
    prefix: &str,
    library: &Path,
    static_folder: Option<&Path>,
) -> Result<MountTable, String> {
    let raw = RawTable {
        mounts: vec![RawMount {
            name: name.to_owned(),
            prefix: prefix.to_owned(),
            library: library.display().to_string(),
            static_folder: static_folder.map(|folder| folder.display().to_string()),
            ..RawMount::default()
        }],
        ..RawTable::default()
    };
    validate::validate(raw, Path::new("")).map_err(|problem| {
        format!(
            "{}: {}",
            problem.key.replace("mounts[0].", "--"),
            problem.message
        )
    })
}

/// The JSON Schema of the mount table, for editors (`host schema`).
pub(crate) fn schema() -> String {
    raw::schema()
}

/// Reads and validates the mount table at `file`.
pub(crate) fn load(file: &Path) -> Result<MountTable, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        file: file.to_owned(),
        source,
    })?;
    parse(&text, file)
}

/// Validates the mount table `text`, read from `file` (relative paths in it
/// resolve against the file's folder).
pub fn parse(text: &str, file: &Path) -> Result<MountTable, ConfigError> {
    let invalid = |line, column, key: &str, message: String| ConfigError::Invalid {
        file: file.to_owned(),
        line,
        column,
        key: key.to_owned(),
        message,
    };
    let from_serde = |key: String, error: &serde_json::Error| {
        let message = error.to_string();
        let location = format!(" at line {} column {}", error.line(), error.column());
        let message = message.strip_suffix(&location).unwrap_or(&message);
        // serde_path_to_error writes `?` for a key it did not get to read.
        let key = key.trim_end_matches(".?");
        let key = if key == "." || key == "?" { "" } else { key };
        invalid(error.line(), error.column(), key, explain_serde(message))
    };
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let raw: RawTable = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| from_serde(error.path().to_string(), error.inner()))?;
    deserializer
        .end()
        .map_err(|error| from_serde(String::new(), &error))?;
    let spans = Locator::new(text);
    let base = file.parent().unwrap_or(Path::new("")).to_owned();
    let mut table = validate::validate(raw, &base).map_err(|problem| {
        let (line, column) = spans.position(&problem.key);
        invalid(line, column, &problem.key, problem.message)
    })?;
    table.file = file.to_owned();
    Ok(table)
}

/// Rewords serde's messages where a user would not know what to do.
fn explain_serde(message: &str) -> String {
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return format!("missing required key {field:?}");
    }
    message.replace('`', "\"")
}
