//! What the mount table means where it says nothing, in one place: the
//! validation fills these in, and a test checks that the schema's
//! descriptions, which editors show, state the same values.

use std::ops::RangeInclusive;

/// Where the host listens.
pub const LISTEN: &str = "127.0.0.1:5000";
/// The data folder, relative to the table's folder.
pub const DATA_DIR: &str = "data";
/// The log folder, relative to the table's folder.
pub const LOG_DIR: &str = "logs";
/// Where the host answers its health report.
pub const HEALTH_PATH: &str = "/_host/health";
/// Where the host answers its metrics.
pub const METRICS_PATH: &str = "/_host/metrics";
/// Where the host answers its liveness probe.
pub const LIVEZ_PATH: &str = "/_host/livez";
/// Where the host answers its readiness probe.
pub const READYZ_PATH: &str = "/_host/readyz";
/// Time serving with readyz failing after SIGTERM, before draining.
pub const DRAIN_DELAY_MS: u64 = 0;
/// The longest drain delay the table may ask for (5 minutes): a typo of
/// more would keep a stopping host around for hours.
pub const MAX_DRAIN_DELAY_MS: u64 = 300_000;
/// Open connections at most.
pub const MAX_CONNECTIONS: usize = 10_000;
/// Open connections from one client at most.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 256;
/// Time to send a request's headers, and the longest idle keep-alive.
pub const HEADER_READ_TIMEOUT_MS: u64 = 10_000;
/// Headers per request at most (hyper's own limit: see `http`).
pub const MAX_HEADERS: usize = 100;
/// Bytes of request line and headers at most.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Time allowed between two reads of a request body.
pub const BODY_READ_TIMEOUT_MS: u64 = 60_000;
/// Bodies above this many bytes are spooled to a file (1 MiB).
pub const BODY_BUFFER_BYTES: u64 = 1024 * 1024;
/// Memory all request bodies together may hold (64 MiB), unless a mount
/// accepts larger bodies.
pub const BODY_MEMORY_BYTES: u64 = 64 * 1024 * 1024;
/// Where a mount's static folder is served below its prefix.
pub const STATIC_URL_PATH: &str = "/static";
/// Seconds static files may be cached (0: `no-cache`).
pub const STATIC_MAX_AGE: u64 = 0;
/// Where uploads are stored: below the data folder.
pub const UPLOADS_URL: &str = "file:uploads";
/// Where the stored uploads are served below a mount's prefix.
pub const UPLOADS_URL_PATH: &str = "/uploads";
/// Handlers of one mount running at once.
pub const MAX_CONCURRENCY: usize = 16;
/// What `max_concurrency` may be.
pub const MAX_CONCURRENCY_RANGE: RangeInclusive<usize> = 1..=1024;
/// The largest request body of a mount (1 MiB).
pub const MAX_BODY_BYTES: u64 = 1024 * 1024;
/// How long a request waits for a free handler.
pub const QUEUE_TIMEOUT_MS: u64 = 10_000;
/// How long a handler may take before its client gets 504.
pub const TIMEOUT_MS: u64 = 30_000;

/// The headers added to every app response that does not set them:
/// browsers must not guess types, leak full URLs to other sites, or let
/// other sites frame the pages (clickjacking).
pub const RESPONSE_HEADERS: [(&str, &str); 3] = [
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    ("x-frame-options", "DENY"),
];

/// A mount's logger (and log file name).
pub fn logger(mount: &str) -> String {
    format!("app_{mount}")
}

/// A mount's session cookie.
pub fn session_cookie(mount: &str) -> String {
    format!("{mount}_session")
}

/// The file of a mount's own database, in the data folder.
pub fn own_database(mount: &str) -> String {
    format!("{mount}.db")
}
