//! From the table as written to the validated [`MountTable`]: every value
//! checked, every default filled in. Pure: no files are read.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
};

use super::{
    DatabaseConfig, Limits, Listen, Location, Mount, MountTable, UploadsStore, defaults,
    hosts::{AllowedHosts, PublicUrl},
    proxies::{Networks, TrustedHeaders, TrustedProxies},
    raw::{RawDatabase, RawMount, RawTable, RawTrustedHeaders},
};

/// A problem found by [`validate`]: the key path and what is wrong.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Problem {
    pub(super) key: String,
    pub(super) message: String,
}

fn problem(key: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        key: key.into(),
        message: message.into(),
    }
}

/// Checks values and fills defaults; relative paths resolve against `base`.
pub(super) fn validate(raw: RawTable, base: &Path) -> Result<MountTable, Problem> {
    let listen_text = raw.listen.as_deref().unwrap_or(defaults::LISTEN);
    let listen = Listen::parse(listen_text, base).map_err(|message| problem("listen", message))?;
    if raw.mounts.is_empty() {
        return Err(problem(
            "mounts",
            "no mounts: add at least one, e.g. {\"name\": \"frontend\", \"prefix\": \"/\", \"library\": \"apps/libfrontend.so\"}",
        ));
    }
    let mut limits = limits(&raw)?;
    let data_dir = base.join(raw.data_dir.as_deref().unwrap_or(defaults::DATA_DIR));
    let mut databases = declared_databases(raw.databases.unwrap_or_default(), &data_dir)?;
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut prefixes: HashMap<String, usize> = HashMap::new();
    let mut mounts = Vec::with_capacity(raw.mounts.len());
    for (index, raw_mount) in raw.mounts.into_iter().enumerate() {
        let written_prefix = raw_mount.prefix.clone();
        let mount = validate_mount(index, raw_mount, base, &data_dir, &mut databases)?;
        if let Some(first) = names.insert(mount.name.clone(), index) {
            return Err(problem(
                format!("mounts[{index}].name"),
                format!(
                    "duplicate name {:?} (also mounts[{first}].name): names must be unique",
                    mount.name
                ),
            ));
        }
        if let Some(first) = prefixes.insert(mount.prefix.clone(), index) {
            return Err(problem(
                format!("mounts[{index}].prefix"),
                format!(
                    "duplicate prefix {written_prefix:?} (also mounts[{first}].prefix): each prefix can be mounted once"
                ),
            ));
        }
        mounts.push(mount);
    }
    limits.body_memory_bytes = body_memory(raw.body_memory_bytes, &mounts)?;
    let public_url = raw
        .public_url
        .as_deref()
        .map(PublicUrl::parse)
        .transpose()
        .map_err(|message| problem("public_url", message))?;
    let allowed_hosts =
        AllowedHosts::parse(raw.allowed_hosts.as_deref(), &listen, public_url.as_ref())
            .map_err(|(index, message)| problem(format!("allowed_hosts[{index}]"), message))?;
    let uploads = uploads_store(
        raw.uploads.as_ref().map(|uploads| uploads.url.as_str()),
        &data_dir,
    )
    .map_err(|message| problem("uploads.url", message))?;
    Ok(MountTable {
        file: PathBuf::new(),
        listen,
        data_dir,
        log_dir: base.join(raw.log_dir.as_deref().unwrap_or(defaults::LOG_DIR)),
        log_format: raw.log_format.unwrap_or_default(),
        secret_key_file: raw.secret_key_file.as_deref().map(|file| base.join(file)),
        uploads,
        mounts,
        databases,
        limits,
        health_path: host_path("health_path", raw.health_path, defaults::HEALTH_PATH)?,
        metrics_path: host_path("metrics_path", raw.metrics_path, defaults::METRICS_PATH)?,
        livez_path: host_path("livez_path", raw.livez_path, defaults::LIVEZ_PATH)?,
        readyz_path: host_path("readyz_path", raw.readyz_path, defaults::READYZ_PATH)?,
        drain_delay: drain_delay(raw.drain_delay_ms)?,
        trusted_proxies: trusted_proxies(raw.trusted_proxies, raw.trusted_headers)?,
        admin_allow: Networks::parse(raw.admin_allow.iter().flatten().map(String::as_str))
            .map_err(|message| problem("admin_allow", message))?,
        allowed_hosts,
        public_url,
    })
}

/// The mount at `index`, checked and with its defaults; its own database
/// joins `databases` when it has one.
fn validate_mount(
    index: usize,
    mut raw: RawMount,
    base: &Path,
    data_dir: &Path,
    databases: &mut Vec<DatabaseConfig>,
) -> Result<Mount, Problem> {
    let at = |key: &str| format!("mounts[{index}].{key}");
    check_name(&raw.name).map_err(|message| problem(at("name"), message))?;
    let prefix = normalize_prefix(&raw.prefix).map_err(|message| problem(at("prefix"), message))?;
    if raw.library.trim().is_empty() {
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
        raw.static_url_path
            .as_deref()
            .unwrap_or(defaults::STATIC_URL_PATH),
        &format!("{:?}", defaults::STATIC_URL_PATH),
    )?;
    let uploads_url_path = match raw.uploads_url_path.as_deref() {
        Some("") => None,
        path => {
            let path = path.unwrap_or(defaults::UPLOADS_URL_PATH);
            let normalized = folder_path(
                "uploads_url_path",
                path,
                &format!(
                    "{:?}, or \"\" to turn uploads off",
                    defaults::UPLOADS_URL_PATH
                ),
            )?;
            if normalized == static_url_path {
                return Err(problem(
                    at("uploads_url_path"),
                    format!("{path:?} is also the static_url_path: give uploads their own path"),
                ));
            }
            Some(normalized)
        }
    };
    let logger = raw
        .logger
        .clone()
        .unwrap_or_else(|| defaults::logger(&raw.name));
    check_logger(&logger).map_err(|message| problem(at("logger"), message))?;
    let session_cookie = raw
        .session_cookie
        .clone()
        .unwrap_or_else(|| defaults::session_cookie(&raw.name));
    check_cookie_name(&session_cookie).map_err(|message| problem(at("session_cookie"), message))?;
    let headers = response_headers(raw.headers.take().unwrap_or_default())
        .map_err(|(name, message)| problem(at(&format!("headers.{name}")), message))?;
    let max_concurrency = raw.max_concurrency.unwrap_or(defaults::MAX_CONCURRENCY);
    if !defaults::MAX_CONCURRENCY_RANGE.contains(&max_concurrency) {
        return Err(problem(
            at("max_concurrency"),
            format!(
                "{max_concurrency} is out of range: use {} to {}",
                defaults::MAX_CONCURRENCY_RANGE.start(),
                defaults::MAX_CONCURRENCY_RANGE.end()
            ),
        ));
    }
    let mount_databases = mount_databases(
        index,
        &raw.name,
        raw.databases.as_deref().unwrap_or_default(),
        data_dir,
        databases,
    )?;
    Ok(Mount {
        prefix,
        library: base.join(&raw.library),
        static_folder: raw.static_folder.map(|folder| base.join(folder)),
        static_url_path,
        static_max_age: raw.static_max_age.unwrap_or(defaults::STATIC_MAX_AGE),
        compress: raw.compress.unwrap_or(true),
        uploads_url_path,
        logger,
        session_cookie,
        headers,
        config: serde_json::Value::Object(raw.config.unwrap_or_default()),
        databases: mount_databases,
        max_concurrency,
        max_body_bytes: raw.max_body_bytes.unwrap_or(defaults::MAX_BODY_BYTES),
        queue_timeout_ms: raw.queue_timeout_ms.unwrap_or(defaults::QUEUE_TIMEOUT_MS),
        timeout_ms: raw.timeout_ms.unwrap_or(defaults::TIMEOUT_MS).max(1),
        name: raw.name,
    })
}

/// The most headers a mount's `headers` may add (the host notes which of
/// them an app set in one 64-bit word), defaults included.
const MAX_RESPONSE_HEADERS: usize = 64 - defaults::RESPONSE_HEADERS.len();

/// The defaults with the mount's `headers` over them ("" drops one).
fn response_headers(
    written: BTreeMap<String, String>,
) -> Result<Vec<(http::HeaderName, http::HeaderValue)>, (String, String)> {
    let mut headers: Vec<(http::HeaderName, http::HeaderValue)> = defaults::RESPONSE_HEADERS
        .iter()
        .map(|(name, value)| {
            (
                http::HeaderName::from_static(name),
                http::HeaderValue::from_static(value),
            )
        })
        .collect();
    if written.len() > MAX_RESPONSE_HEADERS {
        let name = written.keys().next().cloned().unwrap_or_default();
        return Err((
            name,
            format!("more than {MAX_RESPONSE_HEADERS} headers: set the rest in the app"),
        ));
    }
    for (name, value) in written {
        let parsed = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            (
                name.clone(),
                format!("{name:?} is not a header name (e.g. \"X-Frame-Options\")"),
            )
        })?;
        headers.retain(|(existing, _)| *existing != parsed);
        if value.is_empty() {
            continue;
        }
        let value = http::HeaderValue::from_str(&value).map_err(|_| {
            (
                name.clone(),
                format!("{value:?} cannot be a header value: printable ASCII only"),
            )
        })?;
        headers.push((parsed, value));
    }
    Ok(headers)
}

/// The drain delay: at most [`defaults::MAX_DRAIN_DELAY_MS`].
fn drain_delay(value: Option<u64>) -> Result<std::time::Duration, Problem> {
    match value.unwrap_or(defaults::DRAIN_DELAY_MS) {
        ms if ms <= defaults::MAX_DRAIN_DELAY_MS => Ok(std::time::Duration::from_millis(ms)),
        ms => Err(problem(
            "drain_delay_ms",
            format!(
                "{ms} is more than {} (5 minutes): give the milliseconds a load balancer needs to notice, e.g. 10000",
                defaults::MAX_DRAIN_DELAY_MS
            ),
        )),
    }
}

/// A path the host answers itself (`health_path`, `metrics_path`,
/// `livez_path`, `readyz_path`): `""` turns it off.
fn host_path(key: &str, value: Option<String>, default: &str) -> Result<Option<String>, Problem> {
    match value.as_deref() {
        None => Ok(Some(default.to_owned())),
        Some("") => Ok(None),
        Some(path) if path.starts_with('/') && path.len() > 1 => Ok(Some(path.to_owned())),
        Some(path) => Err(problem(
            key,
            format!(
                "{path:?} must be a path starting with '/' (e.g. {default:?}), or \"\" to turn it off"
            ),
        )),
    }
}

/// The limits against misbehaving clients: each at least 1.
fn limits(raw: &RawTable) -> Result<Limits, Problem> {
    fn positive<T: PartialEq + From<u8>>(
        key: &str,
        value: Option<T>,
        default: T,
    ) -> Result<T, Problem> {
        match value {
            None => Ok(default),
            Some(value) if value == T::from(0) => Err(problem(key, "must be at least 1")),
            Some(value) => Ok(value),
        }
    }
    Ok(Limits {
        max_connections: positive(
            "max_connections",
            raw.max_connections,
            defaults::MAX_CONNECTIONS,
        )?,
        max_connections_per_address: positive(
            "max_connections_per_address",
            raw.max_connections_per_address,
            defaults::MAX_CONNECTIONS_PER_ADDRESS,
        )?,
        header_read_timeout_ms: positive(
            "header_read_timeout_ms",
            raw.header_read_timeout_ms,
            defaults::HEADER_READ_TIMEOUT_MS,
        )?,
        max_headers: positive("max_headers", raw.max_headers, defaults::MAX_HEADERS)?,
        max_header_bytes: positive(
            "max_header_bytes",
            raw.max_header_bytes,
            defaults::MAX_HEADER_BYTES,
        )?,
        body_read_timeout_ms: positive(
            "body_read_timeout_ms",
            raw.body_read_timeout_ms,
            defaults::BODY_READ_TIMEOUT_MS,
        )?,
        body_buffer_bytes: positive(
            "body_buffer_bytes",
            raw.body_buffer_bytes,
            defaults::BODY_BUFFER_BYTES,
        )?,
        // set once the mounts' body limits are known
        body_memory_bytes: defaults::BODY_MEMORY_BYTES,
    })
}

/// The trusted proxies, and how many hops of each header they vouch for.
fn trusted_proxies(
    entries: Option<Vec<String>>,
    headers: Option<RawTrustedHeaders>,
) -> Result<TrustedProxies, Problem> {
    let mut proxies = TrustedProxies::parse(entries.iter().flatten().map(String::as_str))
        .map_err(|message| problem("trusted_proxies", message))?;
    let defaults = TrustedHeaders::default();
    let headers = headers.unwrap_or_default();
    proxies.headers = TrustedHeaders {
        x_for: headers.x_for.unwrap_or(defaults.x_for),
        x_proto: headers.x_proto.unwrap_or(defaults.x_proto),
        x_host: headers.x_host.unwrap_or(defaults.x_host),
        x_prefix: headers.x_prefix.unwrap_or(defaults.x_prefix),
    };
    Ok(proxies)
}

/// The memory all bodies may hold: enough for the largest body any mount
/// accepts, which otherwise could never be handed to its app.
fn body_memory(written: Option<u64>, mounts: &[Mount]) -> Result<u64, Problem> {
    let (largest, index) = mounts
        .iter()
        .enumerate()
        .map(|(index, mount)| (mount.max_body_bytes, index))
        .max()
        .unwrap_or((0, 0));
    match written {
        None => Ok(defaults::BODY_MEMORY_BYTES.max(largest)),
        Some(bytes) if bytes < largest => Err(problem(
            "body_memory_bytes",
            format!(
                "{bytes} is less than mounts[{index}].max_body_bytes ({largest}): a body that large could never be handed to its app; raise body_memory_bytes or lower max_body_bytes"
            ),
        )),
        Some(bytes) => Ok(bytes),
    }
}

/// Where a database URL points: `sqlite:FILE`, relative to the data
/// folder, or `sqlite:/absolute/FILE`; or `postgres://user@host:port/db`.
fn database_location(url: &str, data_dir: &Path) -> Result<Location, String> {
    let example = "use \"sqlite:FILE\", relative to data_dir (e.g. \"sqlite:blog.db\"), \"sqlite:/absolute/path.db\", or \"postgres://user@host:5432/database\"";
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        host_database::postgres::check_url(url)
            .map_err(|error| {
            format!(
                "{:?} is not a PostgreSQL URL ({error}): write postgres://user@host:5432/database (libpq's form; the password in PGPASSWORD)",
                host_database::postgres::without_password(url)
            )
        })?;
        return Ok(Location::Postgres(url.to_owned()));
    }
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
    Ok(Location::Sqlite(data_dir.join(file)))
}

/// Where uploads go: `file:FOLDER` (the default, `file:uploads`, below the
/// data folder) or `s3://BUCKET/PREFIX`.
fn uploads_store(url: Option<&str>, data_dir: &Path) -> Result<UploadsStore, String> {
    let url = url.unwrap_or(defaults::UPLOADS_URL);
    let example = "use \"file:FOLDER\" (relative to data_dir, e.g. \"file:uploads\") or \"s3://BUCKET/PREFIX\"";
    if let Some(folder) = url.strip_prefix("file:") {
        if folder.is_empty() || folder.starts_with("//") || folder.contains(['?', '#']) {
            return Err(format!("{url:?} does not name a folder: {example}"));
        }
        return Ok(UploadsStore::Folder(data_dir.join(folder)));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let bucket = rest.split('/').next().unwrap_or_default();
        // S3's rules for a bucket's name: 3 to 63 lowercase letters,
        // digits, dots and hyphens
        let valid = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|byte| {
                byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'.' || byte == b'-'
            });
        if !valid || rest.contains(['?', '#']) {
            return Err(format!(
                "{url:?} does not name an S3 bucket (3 to 63 lowercase letters, digits, '.' and '-'): {example}"
            ));
        }
        return Ok(UploadsStore::S3(url.to_owned()));
    }
    Err(format!(
        "{url:?} is not an uploads store this host supports: {example}"
    ))
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
        let location = database_location(&raw_database.url, data_dir)
            .map_err(|message| problem(format!("{at}.url"), message))?;
        if let Some(other) = databases.iter().find(|other| other.location == location) {
            return Err(problem(
                format!("{at}.url"),
                format!(
                    "{:?} is also the {} of databases.{}: give each database its own {}",
                    host_database::postgres::without_password(&raw_database.url),
                    match location {
                        Location::Sqlite(_) => "file",
                        Location::Postgres(_) => "database",
                    },
                    other.name,
                    match location {
                        Location::Sqlite(_) => "file",
                        Location::Postgres(_) =>
                            "URL (two names for one database would mix their migration histories)",
                    }
                ),
            ));
        }
        databases.push(DatabaseConfig {
            name,
            location,
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
        let path = data_dir.join(defaults::own_database(mount));
        let location = Location::Sqlite(path.clone());
        if let Some(other) = databases.iter().find(|other| other.location == location) {
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
            location,
            declared: false,
        });
    }
    Ok(names)
}

/// Normalises a mount prefix: must start with `/`; trailing slashes are
/// stripped (Werkzeug loops forever on `/admin/` keys), so `/` becomes `""`.
pub(crate) fn normalize_prefix(prefix: &str) -> Result<String, String> {
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
