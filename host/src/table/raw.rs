//! The mount table as it is written: serde's view of `plugins.json`, which
//! is also its JSON Schema (`host schema`). Every field is optional where
//! the table may say nothing; `validate` fills in the defaults.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::LogFormat;

/// The mount table of `host`: where it listens and which app libraries it
/// serves under which URL prefixes.
#[derive(Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
#[schemars(title = "host mount table (plugins.json)")]
pub(super) struct RawTable {
    /// The schema this file follows, for editors; ignored by the host.
    #[serde(rename = "$schema")]
    #[allow(dead_code)]
    pub(super) schema: Option<String>,
    /// Address and port to listen on. Default "127.0.0.1:5000".
    #[schemars(example = &"127.0.0.1:5000")]
    pub(super) listen: Option<String>,
    /// The host's data folder, relative to this file. Default "data".
    pub(super) data_dir: Option<String>,
    /// The folder for log files, relative to this file. Default "logs".
    pub(super) log_dir: Option<String>,
    /// How log lines are written, in the files and on the console: "text"
    /// (a line a person reads) or "json" (one JSON object per line, for a
    /// log collector). Default "text".
    pub(super) log_format: Option<LogFormat>,
    /// A file holding the host's secret key (at least 32 bytes, readable by
    /// its owner only), relative to this file: one every host of a cluster
    /// shares, so that a cookie one signs the others accept. Never made by
    /// the host. HOST_SECRET_KEY overrides it. Default: data_dir's
    /// secret.key, made when missing.
    pub(super) secret_key_file: Option<String>,
    /// Where the host answers its JSON health report; "" turns it off.
    /// Default "/_host/health".
    pub(super) health_path: Option<String>,
    /// Where the host answers Prometheus metrics; "" turns them off.
    /// Default "/_host/metrics".
    pub(super) metrics_path: Option<String>,
    /// Where the host answers whether it runs at all (a load balancer's or
    /// an orchestrator's liveness probe): 200 while the process serves.
    /// "" turns it off. Default "/_host/livez".
    pub(super) livez_path: Option<String>,
    /// Where the host answers whether it should get traffic (a readiness
    /// probe): 200 when every mount is loaded and every database reachable,
    /// 503 from the moment it is asked to stop. "" turns it off.
    /// Default "/_host/readyz".
    pub(super) readyz_path: Option<String>,
    /// Milliseconds the host keeps serving after SIGTERM with readyz
    /// answering 503, so that load balancers stop sending it requests
    /// before it stops accepting them; then it drains. Set it to your load
    /// balancer's check interval and a little more. Default 0.
    pub(super) drain_delay_ms: Option<u64>,
    /// Open connections at most; more wait in the listen backlog. Default 10000.
    pub(super) max_connections: Option<usize>,
    /// Open connections from one client address at most (an IPv6 client
    /// counted by its /64; trusted proxies not counted); more are closed at
    /// once. Default 256.
    pub(super) max_connections_per_address: Option<usize>,
    /// Milliseconds a client has to send its request headers, also the
    /// longest idle time of a keep-alive connection. Default 10000.
    pub(super) header_read_timeout_ms: Option<u64>,
    /// Headers in one request at most (more get 431). Default 100.
    pub(super) max_headers: Option<usize>,
    /// Bytes of request line and headers at most (more get 431). Default 16384.
    pub(super) max_header_bytes: Option<usize>,
    /// Milliseconds allowed between two reads of a request body (nginx's
    /// client_body_timeout); then 408. Default 60000.
    pub(super) body_read_timeout_ms: Option<u64>,
    /// Request bodies larger than this many bytes are written to a
    /// temporary file under data_dir while they arrive instead of being
    /// kept in memory. Default 1048576.
    pub(super) body_buffer_bytes: Option<u64>,
    /// Bytes of memory all request bodies together may hold, while read or
    /// handed to an app; at least every mount's max_body_bytes. A body
    /// that finds no room waits like a request for a busy mount.
    /// Default 67108864, or the largest max_body_bytes if that is more.
    pub(super) body_memory_bytes: Option<u64>,
    /// The hosts this site answers for: exact names ("blog.example.com"),
    /// ".example.com" for a domain and its subdomains, "*" for any. Another
    /// Host gets 400. Default: the listen address, "localhost", "127.0.0.1"
    /// and "::1" (and public_url's host).
    #[schemars(example = &["blog.example.com", ".example.org"])]
    pub(super) allowed_hosts: Option<Vec<String>>,
    /// The scheme and host the site is reached at, e.g.
    /// "https://blog.example.com": apps build absolute URLs (feeds,
    /// redirects) from it whatever Host a request named. Default: the
    /// request's own (allowed) host.
    #[schemars(example = &"https://blog.example.com")]
    pub(super) public_url: Option<String>,
    /// Reverse proxies (addresses or networks) whose X-Forwarded-For, -Proto,
    /// -Host and -Prefix headers are believed. Default: none.
    #[schemars(example = &["127.0.0.1", "10.0.0.0/8"])]
    pub(super) trusted_proxies: Option<Vec<String>>,
    /// Clients (addresses or networks) besides this machine and the trusted
    /// proxies that get the health report's details and the metrics;
    /// others get a bare status and 404. Default: none.
    #[schemars(example = &["10.0.0.0/8"])]
    pub(super) admin_allow: Option<Vec<String>>,
    /// How many proxies' worth of each forwarding header to believe from a
    /// trusted proxy, counted from the right (Werkzeug's ProxyFix); 0
    /// ignores the header. Default {"x_for": 1, "x_proto": 1, "x_host": 0,
    /// "x_prefix": 0}.
    pub(super) trusted_headers: Option<RawTrustedHeaders>,
    /// The databases mounts may use, by name. A mount lists those it uses
    /// ("databases": ["blog"]); one that lists none has its own,
    /// "sqlite:<mount name>.db". Default: none declared.
    #[schemars(example = &serde_json::json!({"blog": {"url": "sqlite:blog.db"}}))]
    pub(super) databases: Option<BTreeMap<String, RawDatabase>>,
    /// Where apps' uploads are stored, for every mount. Default
    /// {"url": "file:uploads"} (below data_dir).
    pub(super) uploads: Option<RawUploads>,
    /// The apps, each under its own URL prefix. The longest prefix wins.
    pub(super) mounts: Vec<RawMount>,
}

/// The store of uploads.
#[derive(Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUploads {
    /// "file:FOLDER" (relative to data_dir, or absolute), or
    /// "s3://BUCKET/PREFIX" in S3 or an S3-compatible store, its endpoint,
    /// region and credentials from the environment (AWS_ENDPOINT,
    /// AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ALLOW_HTTP).
    #[schemars(example = &"s3://site-uploads/blog")]
    pub(super) url: String,
}

/// How many hops of each forwarding header are believed.
#[derive(Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTrustedHeaders {
    /// X-Forwarded-For (the client's address). Default 1.
    pub(super) x_for: Option<usize>,
    /// X-Forwarded-Proto (http or https). Default 1.
    pub(super) x_proto: Option<usize>,
    /// X-Forwarded-Host (the host the client asked for). Default 0.
    pub(super) x_host: Option<usize>,
    /// X-Forwarded-Prefix (the path prefix the proxy removed). Default 0.
    pub(super) x_prefix: Option<usize>,
}

/// One database.
#[derive(Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    /// Where it is: "sqlite:FILE", relative to data_dir (or absolute).
    #[schemars(example = &"sqlite:blog.db")]
    pub(super) url: String,
}

/// One app library mounted under a URL prefix.
#[derive(Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMount {
    /// Unique name: letters, digits, '_' and '-'.
    #[schemars(example = &"admin")]
    pub(super) name: String,
    /// URL prefix, starting with '/'; a trailing '/' is ignored; unique.
    #[schemars(example = &"/admin")]
    pub(super) prefix: String,
    /// The app's .so file, relative to this file.
    #[schemars(example = &"apps/libadmin.so")]
    pub(super) library: String,
    /// Folder of static files the host serves for this mount.
    pub(super) static_folder: Option<String>,
    /// Where the static folder is served below the prefix. Default "/static".
    pub(super) static_url_path: Option<String>,
    /// Seconds static files may be cached; 0 sends no-cache. Default 0.
    pub(super) static_max_age: Option<u64>,
    /// Whether the host compresses this mount's responses (its pages, its
    /// static files, the uploads it serves) with brotli or gzip for
    /// clients that accept it. Pages to a signed-in user (the request or
    /// the response carries the session cookie) are never compressed.
    /// Default true.
    pub(super) compress: Option<bool>,
    /// Where the host serves the site's stored uploads (<data_dir>/uploads)
    /// below the prefix. Default "/uploads"; "" turns it off.
    pub(super) uploads_url_path: Option<String>,
    /// Logger name: event target and log file. Default "app_<name>".
    pub(super) logger: Option<String>,
    /// Session cookie name. Default "<name>_session".
    pub(super) session_cookie: Option<String>,
    /// Headers added to the app's responses when the app sets none of that
    /// name; "" drops one of the defaults. Default {"X-Content-Type-Options":
    /// "nosniff", "Referrer-Policy": "strict-origin-when-cross-origin",
    /// "X-Frame-Options": "DENY"}.
    #[schemars(example = &serde_json::json!({"X-Frame-Options": "SAMEORIGIN", "Strict-Transport-Security": "max-age=31536000"}))]
    pub(super) headers: Option<BTreeMap<String, String>>,
    /// Settings handed to the app as JSON. Default {}.
    pub(super) config: Option<serde_json::Map<String, serde_json::Value>>,
    /// The databases (names under the top-level "databases") this mount may
    /// use; the first is its default. Its own name may be listed without a
    /// declaration: its private database. Default: only its private
    /// database, "sqlite:<name>.db", created on first use.
    #[schemars(example = &["blog"])]
    pub(super) databases: Option<Vec<String>>,
    /// Handler threads for this mount, 1 to 1024. Default 16.
    pub(super) max_concurrency: Option<usize>,
    /// Largest request body in bytes; larger gets 413. Default 1048576.
    pub(super) max_body_bytes: Option<u64>,
    /// Milliseconds a request may wait for a free handler; then 503 with
    /// Retry-After. Default 10000.
    pub(super) queue_timeout_ms: Option<u64>,
    /// Milliseconds a handler may take; then the client gets 504 (the
    /// handler finishes and is logged as slow). Default 30000.
    pub(super) timeout_ms: Option<u64>,
}

/// The JSON Schema of the mount table, for editors (`host schema`).
pub(super) fn schema() -> String {
    let schema = schemars::schema_for!(RawTable);
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}
