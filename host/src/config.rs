//! The mount table (`plugins.json`): parsing, validation and defaults.
//!
//! Parse raw, then validate into [`MountTable`]; nothing unvalidated goes
//! further. Every error names the file, the line and column, and the key path
//! (`mounts[1].prefix`), and says how to fix it.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::proxy::TrustedProxies;
use serde_json::value::RawValue;

/// Where the host listens when the table says nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5000";
/// Handler threads per mount when the table says nothing.
pub const DEFAULT_MAX_CONCURRENCY: usize = 16;
/// Largest request body per mount when the table says nothing (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;

/// A validated mount table.
#[derive(Debug, Clone, PartialEq)]
pub struct MountTable {
    /// The file it was read from.
    pub file: PathBuf,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The folder for the host's data (database, secret), resolved.
    pub data_dir: PathBuf,
    /// The folder for log files, resolved.
    pub log_dir: PathBuf,
    /// The mounts, in table order.
    pub mounts: Vec<Mount>,
    /// The databases: those the table declares, then the private ones of
    /// mounts that list none, each once.
    pub databases: Vec<DatabaseConfig>,
    /// Where the host answers its health report, if anywhere.
    pub health_path: Option<String>,
    /// Where the host answers its metrics, if anywhere.
    pub metrics_path: Option<String>,
    /// Limits against misbehaving clients.
    pub limits: Limits,
    /// Proxies whose X-Forwarded-* headers are believed.
    pub trusted_proxies: TrustedProxies,
}

/// Limits against misbehaving clients, for the whole host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at most; more wait in the listen backlog.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, and the longest a
    /// keep-alive connection may sit idle (against slowloris).
    pub header_read_timeout_ms: u64,
    /// Headers in one request at most; more get 431.
    pub max_headers: usize,
    /// Bytes of request line and headers at most; more get 431.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 10_000,
            header_read_timeout_ms: 10_000,
            max_headers: 100,
            max_header_bytes: 16 * 1024,
        }
    }
}

/// One database of the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    /// Its name: the key under `databases`, or a mount's name for the
    /// private database of a mount that lists none.
    pub name: String,
    /// The SQLite file, resolved against the data folder.
    pub path: PathBuf,
    /// Whether the table declares it (else it is a mount's own).
    pub declared: bool,
}

/// The file of the site database of releases before named databases, in
/// the data folder; see `legacy_database`.
pub const LEGACY_DATABASE_FILE: &str = "app.db";

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
    /// The URL path below the prefix where the host serves the site's
    /// stored uploads (`<data_dir>/uploads`), e.g. `/uploads`; `None` when
    /// turned off.
    pub uploads_url_path: Option<String>,
    /// The logger name (`app_<name>` by default).
    pub logger: String,
    /// The session cookie name (`<name>_session` by default).
    pub session_cookie: String,
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

/// The mount table of `host`: where it listens and which app libraries it
/// serves under which URL prefixes.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "host mount table (plugins.json)")]
struct RawTable {
    /// The schema this file follows, for editors; ignored by the host.
    #[serde(rename = "$schema")]
    #[allow(dead_code)]
    schema: Option<String>,
    /// Address and port to listen on. Default "127.0.0.1:5000".
    #[schemars(example = &"127.0.0.1:5000")]
    listen: Option<String>,
    /// The host's data folder, relative to this file. Default "data".
    data_dir: Option<String>,
    /// The folder for log files, relative to this file. Default "logs".
    log_dir: Option<String>,
    /// Where the host answers its JSON health report; "" turns it off.
    /// Default "/_host/health".
    health_path: Option<String>,
    /// Where the host answers Prometheus metrics; "" turns them off.
    /// Default "/_host/metrics".
    metrics_path: Option<String>,
    /// Open connections at most; more wait in the listen backlog. Default 10000.
    max_connections: Option<usize>,
    /// Milliseconds a client has to send its request headers, also the
    /// longest idle time of a keep-alive connection. Default 10000.
    header_read_timeout_ms: Option<u64>,
    /// Headers in one request at most (more get 431). Default 100.
    max_headers: Option<usize>,
    /// Bytes of request line and headers at most (more get 431). Default 16384.
    max_header_bytes: Option<usize>,
    /// Reverse proxies (addresses or networks) whose X-Forwarded-For, -Proto,
    /// -Host and -Prefix headers are believed. Default: none.
    #[schemars(example = &["127.0.0.1", "10.0.0.0/8"])]
    trusted_proxies: Option<Vec<String>>,
    /// The databases mounts may use, by name. A mount lists those it uses
    /// ("databases": ["blog"]); one that lists none has its own,
    /// "sqlite:<mount name>.db". Default: none declared.
    #[schemars(example = &serde_json::json!({"blog": {"url": "sqlite:blog.db"}}))]
    databases: Option<BTreeMap<String, RawDatabase>>,
    /// The apps, each under its own URL prefix. The longest prefix wins.
    mounts: Vec<RawMount>,
}

/// One database.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    /// Where it is: "sqlite:FILE", relative to data_dir (or absolute).
    #[schemars(example = &"sqlite:blog.db")]
    url: String,
}

/// One app library mounted under a URL prefix.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawMount {
    /// Unique name: letters, digits, '_' and '-'.
    #[schemars(example = &"admin")]
    name: String,
    /// URL prefix, starting with '/'; a trailing '/' is ignored; unique.
    #[schemars(example = &"/admin")]
    prefix: String,
    /// The app's .so file, relative to this file.
    #[schemars(example = &"apps/libadmin.so")]
    library: String,
    /// Folder of static files the host serves for this mount.
    static_folder: Option<String>,
    /// Where the static folder is served below the prefix. Default "/static".
    static_url_path: Option<String>,
    /// Seconds static files may be cached; 0 (the default) sends no-cache.
    static_max_age: Option<u64>,
    /// Where the host serves the site's stored uploads (<data_dir>/uploads)
    /// below the prefix. Default "/uploads"; "" turns it off.
    uploads_url_path: Option<String>,
    /// Logger name: event target and log file. Default "app_<name>".
    logger: Option<String>,
    /// Session cookie name. Default "<name>_session".
    session_cookie: Option<String>,
    /// Settings handed to the app as JSON. Default {}.
    config: Option<serde_json::Map<String, serde_json::Value>>,
    /// The databases (names under the top-level "databases") this mount may
    /// use; the first is its default. Its own name may be listed without a
    /// declaration: its private database. Default: only its private
    /// database, "sqlite:<name>.db", created on first use.
    #[schemars(example = &["blog"])]
    databases: Option<Vec<String>>,
    /// Handler threads for this mount, 1 to 1024. Default 16.
    max_concurrency: Option<usize>,
    /// Largest request body in bytes; larger gets 413. Default 1048576.
    max_body_bytes: Option<u64>,
    /// Milliseconds a request may wait for a free handler; then 503 with
    /// Retry-After. Default 10000.
    queue_timeout_ms: Option<u64>,
    /// Milliseconds a handler may take; then the client gets 504 (the
    /// handler finishes and is logged as slow). Default 30000.
    timeout_ms: Option<u64>,
}

/// The JSON Schema of the mount table, for editors (`host schema`).
pub fn schema() -> String {
    let schema = schemars::schema_for!(RawTable);
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}

/// A one-mount table for `host run`: the library served at `prefix`, with
/// every other setting at its default, relative to the current folder.
pub fn single(
    name: &str,
    prefix: &str,
    library: &Path,
    static_folder: Option<&Path>,
) -> Result<MountTable, String> {
    let raw = RawTable {
        schema: None,
        listen: None,
        data_dir: None,
        log_dir: None,
        health_path: None,
        metrics_path: None,
        max_connections: None,
        header_read_timeout_ms: None,
        max_headers: None,
        max_header_bytes: None,
        trusted_proxies: None,
        databases: None,
        mounts: vec![RawMount {
            name: name.to_owned(),
            prefix: prefix.to_owned(),
            library: library.display().to_string(),
            static_folder: static_folder.map(|folder| folder.display().to_string()),
            static_url_path: None,
            static_max_age: None,
            uploads_url_path: None,
            logger: None,
            session_cookie: None,
            config: None,
            databases: None,
            max_concurrency: None,
            max_body_bytes: None,
            queue_timeout_ms: None,
            timeout_ms: None,
        }],
    };
    validate(raw, Path::new("")).map_err(|problem| {
        format!(
            "{}: {}",
            problem.key.replace("mounts[0].", "--"),
            problem.message
        )
    })
}

/// The top-level values by key, as slices of the original text: where each
/// value sits, to point errors found after parsing at the right line.
type Spans<'a> = BTreeMap<String, &'a RawValue>;

/// Reads and validates the mount table at `file`.
pub fn load(file: &Path) -> Result<MountTable, ConfigError> {
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
    let mut table = validate(raw, &base).map_err(|problem| {
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

/// A problem found by [`validate`]: the key path and what is wrong.
#[derive(Debug, PartialEq, Eq)]
struct Problem {
    key: String,
    message: String,
}

fn problem(key: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        key: key.into(),
        message: message.into(),
    }
}

/// Checks values and fills defaults; pure.
fn validate(raw: RawTable, base: &Path) -> Result<MountTable, Problem> {
    let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        problem(
            "listen",
            format!("{listen_text:?} is not an address with a port (e.g. \"127.0.0.1:5000\")"),
        )
    })?;
    if raw.mounts.is_empty() {
        return Err(problem(
            "mounts",
            "no mounts: add at least one, e.g. {\"name\": \"frontend\", \"prefix\": \"/\", \"library\": \"apps/libfrontend.so\"}",
        ));
    }
    let data_dir = base.join(raw.data_dir.as_deref().unwrap_or("data"));
    let mut databases = declared_databases(raw.databases.unwrap_or_default(), &data_dir)?;
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut prefixes: HashMap<String, usize> = HashMap::new();
    let mut mounts = Vec::with_capacity(raw.mounts.len());
    for (index, raw_mount) in raw.mounts.into_iter().enumerate() {
        let at = |key: &str| format!("mounts[{index}].{key}");
        check_name(&raw_mount.name).map_err(|message| problem(at("name"), message))?;
        if let Some(first) = names.insert(raw_mount.name.clone(), index) {
            return Err(problem(
                at("name"),
                format!(
                    "duplicate name {:?} (also mounts[{first}].name): names must be unique",
                    raw_mount.name
                ),
            ));
        }
        let prefix = normalize_prefix(&raw_mount.prefix)
            .map_err(|message| problem(at("prefix"), message))?;
        if let Some(first) = prefixes.insert(prefix.clone(), index) {
            return Err(problem(
                at("prefix"),
                format!(
                    "duplicate prefix {:?} (also mounts[{first}].prefix): each prefix can be mounted once",
                    raw_mount.prefix
                ),
            ));
        }
        if raw_mount.library.trim().is_empty() {
            return Err(problem(
                at("library"),
                "empty: give the path of the app's .so file, e.g. \"apps/libadmin.so\"",
            ));
        }
        // a folder the host serves below the prefix: a path, never the prefix itself
        let folder_path = |key: &str, path: &str, example: &str| {
            normalize_prefix(path)
                .ok()
                .filter(|path| !path.is_empty())
                .ok_or_else(|| {
                    problem(
                        at(key),
                        format!("{path:?} is not a URL path below the prefix (e.g. {example})"),
                    )
                })
        };
        let static_url_path = folder_path(
            "static_url_path",
            raw_mount.static_url_path.as_deref().unwrap_or("/static"),
            "\"/static\"",
        )?;
        let uploads_url_path = match raw_mount.uploads_url_path.as_deref() {
            Some("") => None,
            path => {
                let path = path.unwrap_or("/uploads");
                let normalized = folder_path(
                    "uploads_url_path",
                    path,
                    "\"/uploads\", or \"\" to turn uploads off",
                )?;
                if normalized == static_url_path {
                    return Err(problem(
                        at("uploads_url_path"),
                        format!(
                            "{path:?} is also the static_url_path: give uploads their own path"
                        ),
                    ));
                }
                Some(normalized)
            }
        };
        let logger = raw_mount
            .logger
            .clone()
            .unwrap_or_else(|| format!("app_{}", raw_mount.name));
        check_logger(&logger).map_err(|message| problem(at("logger"), message))?;
        let session_cookie = raw_mount
            .session_cookie
            .clone()
            .unwrap_or_else(|| format!("{}_session", raw_mount.name));
        check_cookie_name(&session_cookie)
            .map_err(|message| problem(at("session_cookie"), message))?;
        let config = serde_json::Value::Object(raw_mount.config.unwrap_or_default());
        let mount_databases = mount_databases(
            index,
            &raw_mount.name,
            raw_mount.databases.as_deref().unwrap_or_default(),
            &data_dir,
            &mut databases,
        )?;
        let max_concurrency = raw_mount.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY);
        if !(1..=1024).contains(&max_concurrency) {
            return Err(problem(
                at("max_concurrency"),
                format!("{max_concurrency} is out of range: use 1 to 1024"),
            ));
        }
        mounts.push(Mount {
            name: raw_mount.name,
            prefix,
            library: base.join(&raw_mount.library),
            static_folder: raw_mount.static_folder.map(|folder| base.join(folder)),
            static_url_path,
            static_max_age: raw_mount.static_max_age.unwrap_or(0),
            uploads_url_path,
            logger,
            session_cookie,
            config,
            databases: mount_databases,
            max_concurrency,
            max_body_bytes: raw_mount.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
            queue_timeout_ms: raw_mount.queue_timeout_ms.unwrap_or(10_000),
            timeout_ms: raw_mount.timeout_ms.unwrap_or(30_000).max(1),
        });
    }
    let host_path = |key: &str, value: Option<String>, default: &str| match value.as_deref() {
        None => Ok(Some(default.to_owned())),
        Some("") => Ok(None),
        Some(path) if path.starts_with('/') && path.len() > 1 => Ok(Some(path.to_owned())),
        Some(path) => Err(problem(
            key,
            format!(
                "{path:?} must be a path starting with '/' (e.g. {default:?}), or \"\" to turn it off"
            ),
        )),
    };
    let health_path = host_path("health_path", raw.health_path, "/_host/health")?;
    let metrics_path = host_path("metrics_path", raw.metrics_path, "/_host/metrics")?;
    let defaults = Limits::default();
    let positive = |key: &str, value: Option<u64>, default: u64| match value {
        None => Ok(default),
        Some(0) => Err(problem(key, "must be at least 1")),
        Some(value) => Ok(value),
    };
    let to_u64 = |value: Option<usize>| value.map(|v| v as u64);
    let limits = Limits {
        max_connections: positive(
            "max_connections",
            to_u64(raw.max_connections),
            defaults.max_connections as u64,
        )? as usize,
        header_read_timeout_ms: positive(
            "header_read_timeout_ms",
            raw.header_read_timeout_ms,
            defaults.header_read_timeout_ms,
        )?,
        max_headers: positive(
            "max_headers",
            to_u64(raw.max_headers),
            defaults.max_headers as u64,
        )? as usize,
        max_header_bytes: positive(
            "max_header_bytes",
            to_u64(raw.max_header_bytes),
            defaults.max_header_bytes as u64,
        )? as usize,
    };
    let trusted_proxies =
        TrustedProxies::parse(raw.trusted_proxies.iter().flatten().map(String::as_str))
            .map_err(|message| problem("trusted_proxies", message))?;
    Ok(MountTable {
        file: PathBuf::new(),
        trusted_proxies,
        health_path,
        metrics_path,
        limits,
        listen,
        data_dir,
        log_dir: base.join(raw.log_dir.as_deref().unwrap_or("logs")),
        mounts,
        databases,
    })
}

/// The file of a database URL: `sqlite:FILE`, relative to the data folder,
/// or `sqlite:/absolute/FILE`.
fn database_path(url: &str, data_dir: &Path) -> Result<PathBuf, String> {
    let example = "use \"sqlite:FILE\", relative to data_dir (e.g. \"sqlite:blog.db\"), or \"sqlite:/absolute/path.db\"";
    let Some(file) = url.strip_prefix("sqlite:") else {
        return Err(format!(
            "{url:?} is not a database URL this host supports: {example}"
        ));
    };
    if file.is_empty()
        || file.starts_with("//")
        || file.starts_with(':')
        || file.starts_with("file:")
        || file.contains(['?', '#'])
        || file.ends_with('/')
    {
        return Err(format!("{url:?} does not name a database file: {example}"));
    }
    Ok(data_dir.join(file))
}

/// The databases the table declares, each with its own file.
fn declared_databases(
    raw: BTreeMap<String, RawDatabase>,
    data_dir: &Path,
) -> Result<Vec<DatabaseConfig>, Problem> {
    let mut databases: Vec<DatabaseConfig> = Vec::with_capacity(raw.len());
    for (name, raw_database) in raw {
        let at = format!("databases.{name}");
        check_name(&name).map_err(|message| problem(&at, message))?;
        let path = database_path(&raw_database.url, data_dir)
            .map_err(|message| problem(format!("{at}.url"), message))?;
        if let Some(other) = databases.iter().find(|other| other.path == path) {
            return Err(problem(
                format!("{at}.url"),
                format!(
                    "{:?} is also the file of databases.{}: give each database its own file",
                    raw_database.url, other.name
                ),
            ));
        }
        databases.push(DatabaseConfig {
            name,
            path,
            declared: true,
        });
    }
    Ok(databases)
}

/// The databases of the mount at `index`: those it lists, each declared or
/// its own name; none listed is its own database alone. Its own database
/// joins `databases` when the table does not declare one of that name.
fn mount_databases(
    index: usize,
    mount: &str,
    listed: &[String],
    data_dir: &Path,
    databases: &mut Vec<DatabaseConfig>,
) -> Result<Vec<String>, Problem> {
    let mut names: Vec<String> = Vec::with_capacity(listed.len().max(1));
    for (position, name) in listed.iter().enumerate() {
        let at = format!("mounts[{index}].databases[{position}]");
        if names.contains(name) {
            return Err(problem(at, format!("{name:?} is listed twice")));
        }
        let declared = databases.iter().any(|database| database.name == *name);
        if !declared && name != mount {
            return Err(problem(
                at,
                format!(
                    "{name:?} is not a database of this table: declare it under \"databases\" (e.g. \"databases\": {{\"{name}\": {{\"url\": \"sqlite:{name}.db\"}}}}), or list the mount's own, {mount:?}"
                ),
            ));
        }
        names.push(name.clone());
    }
    if names.is_empty() {
        names.push(mount.to_owned());
    }
    if names.iter().any(|name| name == mount)
        && !databases.iter().any(|database| database.name == mount)
    {
        let path = data_dir.join(format!("{mount}.db"));
        if let Some(other) = databases.iter().find(|other| other.path == path) {
            return Err(problem(
                format!("mounts[{index}].name"),
                format!(
                    "the mount's own database would be {}, the file of databases.{} already: list {:?} in the mount's \"databases\", or give databases.{} another file",
                    path.display(),
                    other.name,
                    other.name,
                    other.name
                ),
            ));
        }
        databases.push(DatabaseConfig {
            name: mount.to_owned(),
            path,
            declared: false,
        });
    }
    Ok(names)
}

/// Normalises a mount prefix: must start with `/`; trailing slashes are
/// stripped (Werkzeug loops forever on `/admin/` keys), so `/` becomes `""`.
pub fn normalize_prefix(prefix: &str) -> Result<String, String> {
    if !prefix.starts_with('/') {
        return Err(format!("{prefix:?} must start with '/' (e.g. \"/admin\")"));
    }
    let trimmed = prefix.trim_end_matches('/');
    if let Some(bad) = trimmed
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '%' | '\\'))
    {
        return Err(format!(
            "{prefix:?} contains {bad:?}: a prefix is plain path segments (e.g. \"/admin/reports\")"
        ));
    }
    if trimmed
        .split('/')
        .skip(1)
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err(format!(
            "{prefix:?} has an empty, '.' or '..' segment: write it like \"/admin/reports\""
        ));
    }
    Ok(trimmed.to_owned())
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "{name:?} is not a valid name: use letters, digits, '_' and '-' (e.g. \"admin\")"
        ));
    }
    Ok(())
}

fn check_logger(logger: &str) -> Result<(), String> {
    if logger == "host" {
        return Err("\"host\" is the host's own logger: choose another name".to_owned());
    }
    if logger.is_empty()
        || logger.starts_with('.')
        || !logger
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(format!(
            "{logger:?} is not a valid logger name: use letters, digits, '_', '-' and '.' (it names the log file)"
        ));
    }
    Ok(())
}

/// A cookie name is an RFC 6265 (section 4.1.1) token.
fn check_cookie_name(name: &str) -> Result<(), String> {
    let token = |c: char| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!(
            "{name:?} is not a valid cookie name: use letters, digits, '_' and '-'"
        ));
    }
    Ok(())
}

/// Finds the line and column of a key path in the original text.
struct Locator<'a> {
    text: &'a str,
    spans: Option<Spans<'a>>,
}

impl<'a> Locator<'a> {
    fn new(text: &'a str) -> Locator<'a> {
        Locator {
            text,
            spans: serde_json::from_str(text).ok(),
        }
    }

    /// The position of `key` (`listen`, `mounts[1].prefix`), falling back to
    /// the closest enclosing value, then to the start of the file.
    fn position(&self, key: &str) -> (usize, usize) {
        let value = self.value(key);
        let offset = value
            .map(|raw| raw.get().as_ptr() as usize - self.text.as_ptr() as usize)
            .filter(|offset| *offset <= self.text.len())
            .unwrap_or(0);
        line_column(self.text, offset)
    }

    /// The value at a key path such as `mounts[1].databases[0]` or
    /// `databases.blog.url`; the closest enclosing value when part of the
    /// path is missing.
    fn value(&self, key: &str) -> Option<&'a RawValue> {
        let spans = self.spans.as_ref()?;
        let mut steps = key.split('.').flat_map(|part| {
            let (name, indexes) = part.split_once('[').unwrap_or((part, ""));
            std::iter::once(Step::Field(name)).chain(
                indexes
                    .split('[')
                    .filter_map(|index| index.trim_end_matches(']').parse().ok())
                    .map(Step::Index),
            )
        });
        let Some(Step::Field(top)) = steps.next() else {
            return None;
        };
        let mut current = *spans.get(top)?;
        for step in steps {
            // Re-parsing a slice keeps pointers into the original text,
            // since `RawValue` borrows.
            let next = match step {
                Step::Field(name) => {
                    serde_json::from_str::<BTreeMap<String, &'a RawValue>>(current.get())
                        .ok()
                        .and_then(|fields| fields.get(name).copied())
                }
                Step::Index(index) => serde_json::from_str::<Vec<&'a RawValue>>(current.get())
                    .ok()
                    .and_then(|items| items.get(index).copied()),
            };
            match next {
                Some(value) => current = value,
                None => break,
            }
        }
        Some(current)
    }
}

/// One step of a key path.
enum Step<'k> {
    Field(&'k str),
    Index(usize),
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
  "listen": "127.0.0.1:5000",
  "data_dir": "data",
  "log_dir": "logs",
  "mounts": [
    { "name": "frontend", "prefix": "/", "library": "apps/libfrontend.so",
      "static_folder": "shared/static", "static_url_path": "/static",
      "logger": "app_frontend", "session_cookie": "frontend_session", "config": {} },
    { "name": "admin", "prefix": "/admin", "library": "apps/libadmin.so",
      "static_folder": "shared/static", "logger": "app_admin", "session_cookie": "admin_session", "config": {} }
  ]
}"#;

    fn error_of(text: &str) -> String {
        parse(text, Path::new("/site/plugins.json"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_documented_table_parses_with_defaults_and_resolved_paths() {
        let table = parse(GOOD, Path::new("/site/plugins.json")).unwrap();
        assert_eq!(table.listen, "127.0.0.1:5000".parse().unwrap());
        assert_eq!(table.data_dir, Path::new("/site/data"));
        assert_eq!(table.mounts.len(), 2);
        let admin = &table.mounts[1];
        assert_eq!(admin.prefix, "/admin");
        assert_eq!(admin.library, Path::new("/site/apps/libadmin.so"));
        assert_eq!(admin.static_url_path, "/static");
        assert_eq!(admin.uploads_url_path.as_deref(), Some("/uploads"));
        assert_eq!(table.mounts[0].prefix, "");
        assert_eq!(table.mounts[0].display_prefix(), "/");
    }

    #[test]
    fn defaults_follow_the_mount_name() {
        let table = parse(
            r#"{"mounts": [{"name": "blog", "prefix": "/blog/", "library": "x.so"}]}"#,
            Path::new("plugins.json"),
        )
        .unwrap();
        let blog = &table.mounts[0];
        assert_eq!(blog.prefix, "/blog");
        assert_eq!(blog.logger, "app_blog");
        assert_eq!(blog.session_cookie, "blog_session");
        assert_eq!(blog.config, serde_json::json!({}));
        assert_eq!(blog.max_concurrency, DEFAULT_MAX_CONCURRENCY);
        assert_eq!(table.listen.to_string(), DEFAULT_LISTEN);
        let off = parse(
            r#"{"mounts": [{"name": "a", "prefix": "/", "library": "x.so", "uploads_url_path": ""}]}"#,
            Path::new("plugins.json"),
        )
        .unwrap();
        assert_eq!(off.mounts[0].uploads_url_path, None);
    }

    #[test]
    fn errors_name_file_line_column_and_key() {
        let rows: &[(&str, &str)] = &[
            // invalid JSON: serde's position
            (
                "{\n  \"mounts\": [\n    {\"name\": \"a\",, }\n  ]\n}",
                "/site/plugins.json:3:18: ",
            ),
            // an unknown key, named with its path
            (
                "{\"mounts\": [\n  {\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"},\n  {\"name\": \"b\", \"prefx\": \"/b\"}\n]}",
                "/site/plugins.json:3:23: mounts[1].prefx: unknown field \"prefx\"",
            ),
            // a missing key
            (
                "{\"mounts\": [\n  {\"name\": \"a\", \"library\": \"a.so\"}\n]}",
                "/site/plugins.json:2:34: mounts[0]: missing required key \"prefix\"",
            ),
            // a prefix without its slash: the position of the value
            (
                "{\"mounts\": [\n  {\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"},\n  {\"name\": \"b\", \"prefix\": \"admin\", \"library\": \"b.so\"}\n]}",
                "/site/plugins.json:3:27: mounts[1].prefix: \"admin\" must start with '/' (e.g. \"/admin\")",
            ),
            // duplicates count after stripping the trailing slash
            (
                "{\"mounts\": [\n  {\"name\": \"a\", \"prefix\": \"/admin\", \"library\": \"a.so\"},\n  {\"name\": \"b\", \"prefix\": \"/admin/\", \"library\": \"b.so\"}\n]}",
                "/site/plugins.json:3:27: mounts[1].prefix: duplicate prefix \"/admin/\" (also mounts[0].prefix)",
            ),
            (
                "{\"mounts\": [\n  {\"name\": \"a\", \"prefix\": \"/a\", \"library\": \"a.so\"},\n  {\"name\": \"a\", \"prefix\": \"/b\", \"library\": \"b.so\"}\n]}",
                "/site/plugins.json:3:12: mounts[1].name: duplicate name \"a\" (also mounts[0].name)",
            ),
            (
                "{\"listen\": \"localhost\", \"mounts\": []}",
                "/site/plugins.json:1:12: listen: \"localhost\" is not an address",
            ),
            (
                "{\"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\", \"config\": []}]}",
                "/site/plugins.json:1:70: mounts[0].config: invalid type: sequence, expected a map",
            ),
            (
                "{\"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\", \"logger\": \"host\"}]}",
                "mounts[0].logger: \"host\" is the host's own logger",
            ),
            (
                "{\"mounts\": []}",
                "/site/plugins.json:1:12: mounts: no mounts",
            ),
            (
                "{\"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\", \"uploads_url_path\": \"files\"}]}",
                "mounts[0].uploads_url_path: \"files\" is not a URL path below the prefix (e.g. \"/uploads\", or \"\" to turn uploads off)",
            ),
            (
                "{\"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\", \"uploads_url_path\": \"/static/\"}]}",
                "mounts[0].uploads_url_path: \"/static/\" is also the static_url_path: give uploads their own path",
            ),
            (
                "{\"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\", \"static_url_path\": \"/\"}]}",
                "mounts[0].static_url_path: \"/\" is not a URL path below the prefix (e.g. \"/static\")",
            ),
            (
                "{\"mounts\": [] } x",
                "/site/plugins.json:1:17: trailing characters",
            ),
        ];
        for (text, expected) in rows {
            let error = error_of(text);
            assert!(
                error.contains(expected),
                "for {text:?}\n  got      {error}\n  expected {expected}"
            );
        }
    }

    #[test]
    fn databases_are_declared_once_and_granted_to_mounts() {
        let table = parse(
            r#"{
  "databases": {"blog": {"url": "sqlite:app.db"}, "stats": {"url": "sqlite:/var/lib/site/stats.db"}},
  "mounts": [
    {"name": "frontend", "prefix": "/", "library": "f.so", "databases": ["blog"]},
    {"name": "admin", "prefix": "/admin", "library": "a.so", "databases": ["blog", "stats"]},
    {"name": "guestbook", "prefix": "/guestbook", "library": "g.so"},
    {"name": "notes", "prefix": "/notes", "library": "n.so", "databases": ["notes", "blog"]}
  ]
}"#,
            Path::new("/site/plugins.json"),
        )
        .unwrap();
        let databases: Vec<(&str, &Path, bool)> = table
            .databases
            .iter()
            .map(|database| {
                (
                    database.name.as_str(),
                    database.path.as_path(),
                    database.declared,
                )
            })
            .collect();
        assert_eq!(
            databases,
            [
                ("blog", Path::new("/site/data/app.db"), true),
                ("stats", Path::new("/var/lib/site/stats.db"), true),
                // a mount that lists none has its own, named after it
                ("guestbook", Path::new("/site/data/guestbook.db"), false),
                // and one that lists its own name
                ("notes", Path::new("/site/data/notes.db"), false),
            ]
        );
        let granted: Vec<&[String]> = table
            .mounts
            .iter()
            .map(|mount| mount.databases.as_slice())
            .collect();
        assert_eq!(
            granted,
            [
                &["blog".to_owned()][..],
                &["blog".to_owned(), "stats".to_owned()],
                &["guestbook".to_owned()],
                &["notes".to_owned(), "blog".to_owned()],
            ]
        );
        // a database declared under a mount's name is that mount's own
        let named = parse(
            r#"{"databases": {"guestbook": {"url": "sqlite:gb/guestbook.sqlite"}},
                "mounts": [{"name": "guestbook", "prefix": "/", "library": "g.so"}]}"#,
            Path::new("/site/plugins.json"),
        )
        .unwrap();
        assert_eq!(named.databases.len(), 1);
        assert_eq!(
            named.databases[0].path,
            Path::new("/site/data/gb/guestbook.sqlite")
        );
    }

    #[test]
    fn database_errors_name_the_key_and_the_fix() {
        let rows: &[(&str, &str)] = &[
            (
                "{\"mounts\": [\n  {\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\",\n   \"databases\": [\"blog\"]}\n]}",
                "/site/plugins.json:3:18: mounts[0].databases[0]: \"blog\" is not a database of this table: declare it under \"databases\" (e.g. \"databases\": {\"blog\": {\"url\": \"sqlite:blog.db\"}}), or list the mount's own, \"a\"",
            ),
            (
                "{\"databases\": {\"blog\": {\"url\": \"sqlite:b.db\"}}, \"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\", \"databases\": [\"blog\", \"blog\"]}]}",
                "mounts[0].databases[1]: \"blog\" is listed twice",
            ),
            (
                "{\"databases\": {\"blog\": {\"url\": \"mysql://db/blog\"}}, \"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"}]}",
                "/site/plugins.json:1:32: databases.blog.url: \"mysql://db/blog\" is not a database URL this host supports: use \"sqlite:FILE\"",
            ),
            (
                "{\"databases\": {\"blog\": {\"url\": \"sqlite::memory:\"}}, \"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"}]}",
                "databases.blog.url: \"sqlite::memory:\" does not name a database file",
            ),
            (
                "{\"databases\": {\"blog\": {\"url\": \"sqlite:b.db?mode=ro\"}}, \"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"}]}",
                "databases.blog.url: \"sqlite:b.db?mode=ro\" does not name a database file",
            ),
            (
                "{\"databases\": {\"blog\": {\"url\": \"sqlite:x.db\"}, \"other\": {\"url\": \"sqlite:x.db\"}}, \"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"}]}",
                "databases.other.url: \"sqlite:x.db\" is also the file of databases.blog: give each database its own file",
            ),
            (
                "{\"databases\": {\"blog\": {\"url\": \"sqlite:a.db\"}}, \"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"}]}",
                "mounts[0].name: the mount's own database would be /site/data/a.db, the file of databases.blog already",
            ),
            (
                "{\"databases\": {\"my blog\": {\"url\": \"sqlite:b.db\"}}, \"mounts\": [{\"name\": \"a\", \"prefix\": \"/\", \"library\": \"a.so\"}]}",
                "databases.my blog: \"my blog\" is not a valid name",
            ),
            (
                "{\"databases\": {\"blog\": {\"path\": \"b.db\"}}, \"mounts\": []}",
                "databases.blog.path: unknown field \"path\"",
            ),
        ];
        for (text, expected) in rows {
            let error = error_of(text);
            assert!(
                error.contains(expected),
                "for {text:?}\n  got      {error}\n  expected {expected}"
            );
        }
    }

    #[test]
    fn prefixes_normalise_or_explain() {
        let rows: &[(&str, Result<&str, ()>)] = &[
            ("/", Ok("")),
            ("/admin", Ok("/admin")),
            ("/admin/", Ok("/admin")),
            ("/admin/reports", Ok("/admin/reports")),
            ("admin", Err(())),
            ("", Err(())),
            ("/a//b", Err(())),
            ("/a/../b", Err(())),
            ("/a b", Err(())),
            ("/a?x", Err(())),
            ("/a%2Fb", Err(())),
        ];
        for (input, expected) in rows {
            let got = normalize_prefix(input);
            match expected {
                Ok(want) => assert_eq!(got.as_deref(), Ok(*want), "{input}"),
                Err(()) => assert!(got.is_err(), "{input} should be refused"),
            }
        }
    }

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("é\nx", 3), (2, 1));
    }
}
