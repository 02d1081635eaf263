//! The HTTP server: hyper on tokio, HTTP/1.1 with keep-alive and HTTP/2 over
//! cleartext; graceful shutdown; one place that turns dispatch outcomes and
//! app replies into responses.

use std::{
    borrow::Cow,
    convert::Infallible,
    future::Future,
    hash::{BuildHasher, RandomState},
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use abi_stable::std_types::RResult;
use app_api_abi::{AppError, AppResponse, Header, level};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version, header};
use http_body_util::{BodyExt, Either, Full, Limited, combinators::BoxBody};
use hyper::{
    body::{Body as _, Incoming},
    service::service_fn,
};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use tokio::{net::TcpListener, sync::Semaphore};

pub(crate) mod coalesce;
pub(crate) mod head_timeout;
pub(crate) mod proxy;

use crate::{
    exec::{Call, CallError, request as app_request},
    logging::{self, Access, AppLogger},
    metrics::Counters,
    mounts::{
        dispatch::{self, Folder, Route},
        site::{FailedMount, LiveMount, Site, SiteMount},
    },
    static_files::Served,
};
use coalesce::Coalesced;
use head_timeout::{Activity, Tracked, Watched};
use proxy::Origin;

/// The body type of every response: whole bytes, or a stream (large
/// files). Whole bodies, nearly every response, are not boxed: a box per
/// response was an allocation and a free per request.
pub type Body = Either<Full<Bytes>, BoxBody<Bytes, std::io::Error>>;

/// A body of these bytes.
pub fn full_body(bytes: impl Into<Bytes>) -> Body {
    Either::Left(Full::new(bytes.into()))
}

/// An empty body.
pub fn empty_body() -> Body {
    full_body(Bytes::new())
}

/// A body streamed from `stream`.
pub fn streamed_body(
    stream: impl hyper::body::Body<Data = Bytes, Error = std::io::Error> + Send + Sync + 'static,
) -> Body {
    Either::Right(stream.boxed())
}

/// A response with a status, a content type and a body.
fn page(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full_body(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The response header that carries the request's id (also in its log
/// lines).
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// How many headers hyper accepts unless told otherwise.
const HYPER_MAX_HEADERS: usize = 100;

/// How long newly accepted connections get to send their request before
/// idle connections are closed at shutdown.
const SETTLE: Duration = Duration::from_millis(300);

/// How long in-flight requests may take to finish after a stop signal.
pub const GRACEFUL_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `site` on `listener` until `stop` completes, then stops accepting
/// and waits (up to [`GRACEFUL_TIMEOUT`]) for in-flight requests. Gives back
/// what `stop` said and the listener, still open (a restart hands it on).
pub async fn serve<T>(
    listener: TcpListener,
    site: Arc<Site>,
    stop: impl Future<Output = T>,
) -> (T, TcpListener) {
    let graceful = GracefulShutdown::new();
    let limits = site.limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        // no timer: `head_timeout` closes slow and idle connections
        .max_buf_size(limits.max_header_bytes.max(8192));
    // hyper's own limit is 100 headers, kept in arrays on the stack; a limit
    // set explicitly, even to 100, makes it fill a vector of that many per
    // request (measured with callgrind: 1,700 instructions, a fifth of a
    // bare hyper hello).
    if limits.max_headers != HYPER_MAX_HEADERS {
        builder.http1().max_headers(limits.max_headers);
    }
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30));
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let mut stop = std::pin::pin!(stop);
    let reason = loop {
        // At the cap, stop accepting: new clients wait in the backlog.
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => continue,
            },
            reason = &mut stop => break reason,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            reason = &mut stop => break reason,
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().unwrap_or(remote);
        let activity = Arc::new(Activity::new());
        let peer = Arc::new(Peer {
            address: remote,
            text: remote.to_string(),
            local,
            activity: Arc::clone(&activity),
        });
        let site = Arc::clone(&site);
        let service = service_fn(move |request: Request<Incoming>| {
            let site = Arc::clone(&site);
            let peer = Arc::clone(&peer);
            async move {
                let _serving = peer.activity.serving(request.version());
                Ok::<_, Infallible>(handle(&site, request, &peer).await)
            }
        });
        let io = TokioIo::new(Coalesced::new(Tracked::new(stream, Arc::clone(&activity))));
        let connection = Watched::new(
            graceful.watch(builder.serve_connection(io, service).into_owned()),
            activity,
            Duration::from_millis(limits.header_read_timeout_ms),
        );
        tokio::spawn(async move {
            match connection.await {
                Some(Ok(())) => {}
                Some(Err(error)) => {
                    tracing::debug!(%remote, %error, "connection ended with an error");
                }
                None => tracing::debug!(%remote, "closed: no request head in time"),
            }
            drop(permit);
        });
    };
    tracing::info!("stopped accepting; finishing in-flight requests");
    // A connection accepted just now may not have sent its request yet;
    // graceful shutdown would close it as idle and the request would meet a
    // reset. Give such requests a moment to arrive and be taken in.
    tokio::time::sleep(SETTLE).await;
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(GRACEFUL_TIMEOUT) => {
            tracing::warn!(timeout = ?GRACEFUL_TIMEOUT, "gave up waiting for in-flight requests");
        }
    }
    (reason, listener)
}

/// The two ends of a connection, and what its watchdog sees of it.
struct Peer {
    /// The client's end.
    address: SocketAddr,
    /// `address` as text, made once per connection.
    text: String,
    /// Our end.
    local: SocketAddr,
    activity: Arc<Activity>,
}

/// Answers one request and writes its access-log line.
async fn handle(site: &Site, request: Request<Incoming>, peer: &Peer) -> Response<Body> {
    let started = Instant::now();
    let request_id = next_request_id();
    let request_id = request_id.as_str();
    let (request, body) = request.into_parts();
    let context = Context {
        origin: proxy::origin(
            &site.trusted_proxies,
            peer.address,
            &peer.text,
            &request.headers,
        ),
        local: peer.local,
        request_id,
        arrived: started,
    };
    let origin = &context.origin;
    let method = &request.method;
    let uri = &request.uri;
    // What serves the request: its logger and metrics (`None`: the host).
    let (mut response, served_by, static_bytes) =
        if let Some(response) = host_path(site, method, uri.path()) {
            (response, None, None)
        } else {
            match dispatch::route(&site.prefixes, uri.path(), uri.query()) {
                Route::App { mount, path } => match site.mount(mount) {
                    SiteMount::Live(live) => {
                        let _in_flight = live.counters.start();
                        let response = call_app(site, live, &path, &request, body, &context).await;
                        (response, Some((live.app.logger, &live.counters)), None)
                    }
                    SiteMount::Failed(failed) => unavailable(failed),
                },
                Route::Static {
                    mount,
                    folder,
                    file,
                } => match site.mount(mount) {
                    SiteMount::Live(live) => {
                        let _in_flight = live.counters.start();
                        let folder = match folder {
                            Folder::Static => live.app.static_folder.as_ref(),
                            Folder::Uploads => live.app.uploads.as_deref(),
                        };
                        let served = match folder {
                            Some(folder) => folder.serve(method, &request.headers, &file).await,
                            // the dispatcher routes here only for mounts with the folder
                            None => Served {
                                response: status_page(StatusCode::NOT_FOUND),
                                bytes: 0,
                            },
                        };
                        (
                            served.response,
                            Some((live.app.logger, &live.counters)),
                            Some(served.bytes),
                        )
                    }
                    SiteMount::Failed(failed) => unavailable(failed),
                },
                Route::Redirect(location) => {
                    let mut response = text(StatusCode::PERMANENT_REDIRECT, "");
                    // behind a proxy that removed a prefix, the client needs it back
                    let location = format!("{}{location}", origin.prefix);
                    if let Ok(value) = HeaderValue::from_str(&location) {
                        response.headers_mut().insert(header::LOCATION, value);
                    }
                    (response, None, None)
                }
                Route::NotFound => (status_page(StatusCode::NOT_FOUND), None, None),
                Route::BadRequest(reason) => (
                    text(
                        StatusCode::BAD_REQUEST,
                        &format!("400 Bad Request\n\n{reason}\n"),
                    ),
                    None,
                    None,
                ),
            }
        };
    let finished = Instant::now();
    let took = finished.saturating_duration_since(started);
    let counters = served_by.map_or(&site.host_counters, |(_, counters)| counters);
    counters.record(response.status().as_u16(), took);
    let logger = served_by.map(|(logger, _)| logger);
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    let access = Access {
        client: &origin.client,
        method,
        target: &uri.path_and_query().map_or_else(
            || Cow::Owned(uri.to_string()),
            |target| Cow::Borrowed(target.as_str()),
        ),
        version: request.version,
        status: response.status(),
        bytes: if *method == Method::HEAD {
            0
        } else {
            static_bytes.unwrap_or_else(|| response.body().size_hint().exact().unwrap_or(0))
        },
        took,
        finished,
    };
    logging::log_access(logger, request_id, &access);
    response
}

/// What the host knows of a request besides its head and body.
struct Context<'a> {
    /// Who sent it, proxies considered.
    origin: Origin<'a>,
    /// Our end of the connection.
    local: SocketAddr,
    /// Its id.
    request_id: &'a str,
    /// When the host took it in.
    arrived: Instant,
}

/// Who answers for a mount: its logger and its metrics.
type ServedBy<'a> = Option<(AppLogger, &'a Counters)>;

/// The answer for a mount whose app failed to load or start: 503, never a
/// fall-through to a shorter prefix.
fn unavailable(failed: &FailedMount) -> (Response<Body>, ServedBy<'_>, Option<u64>) {
    let _in_flight = failed.counters.start();
    let response = text(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!(
            "503 Service Unavailable\n\nthe app mounted at {} failed to start; the host's log says why\n",
            failed.mount.display_prefix()
        ),
    );
    (response, Some((failed.logger, &failed.counters)), None)
}

/// The host's own pages (health, metrics), if `path` is one of them.
fn host_path(site: &Site, method: &Method, path: &str) -> Option<Response<Body>> {
    let is = |configured: &Option<String>| configured.as_deref() == Some(path);
    let response = if is(&site.paths.health) {
        let (healthy, report) = site.health();
        let status = if healthy {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        page(status, "application/json", report)
    } else if is(&site.paths.metrics) {
        page(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            site.metrics(),
        )
    } else {
        return None;
    };
    if method != Method::GET && method != Method::HEAD {
        let mut refused = status_page(StatusCode::METHOD_NOT_ALLOWED);
        refused
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Some(refused);
    }
    Some(response)
}

async fn call_app(
    site: &Site,
    live: &LiveMount,
    path: &str,
    parts: &http::request::Parts,
    body: Incoming,
    context: &Context<'_>,
) -> Response<Body> {
    let Context {
        origin,
        local,
        request_id,
        arrived,
    } = context;
    let mount = &live.app.mount;
    let body = if body.is_end_stream() {
        // most requests have no body: nothing to check or collect
        Bytes::new()
    } else {
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > mount.max_body_bytes) {
            return too_large(mount.max_body_bytes);
        }
        let limit = usize::try_from(mount.max_body_bytes).unwrap_or(usize::MAX);
        // boxed: the collecting future would otherwise make every
        // request's future larger, and it is moved several times
        match Box::pin(Limited::new(body, limit).collect()).await {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                return too_large(mount.max_body_bytes);
            }
            Err(error) => {
                tracing::debug!(%error, "could not read the request body");
                return text(
                    StatusCode::BAD_REQUEST,
                    "400 Bad Request\n\nthe request body could not be read\n",
                );
            }
        }
    };
    let host = origin.host.as_deref().or_else(|| {
        parts
            .headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .or_else(|| parts.uri.authority().map(http::uri::Authority::as_str))
    });
    let local_text;
    let host = match host {
        Some(host) => host,
        // RFC 9112, section 3.2: a 1.1 request without Host is a 400.
        None if parts.version == Version::HTTP_11 => {
            return text(
                StatusCode::BAD_REQUEST,
                "400 Bad Request\n\nmissing Host header\n",
            );
        }
        None => {
            local_text = local.to_string();
            &local_text
        }
    };
    let abi_parts = app_request::Parts {
        method: parts.method.as_str(),
        scheme: origin.scheme,
        host,
        script_root: [&origin.prefix, &mount.prefix],
        path,
        query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        body,
        remote_addr: &origin.client,
        request_id,
    };
    let call = app_request::with_request(abi_parts, |request| {
        live.pool.call(&site.inline, request, *arrived)
    });
    let reply = match call {
        Call::Done(reply) => reply,
        Call::Waiting(reply) => reply.await,
    };
    let reply = match reply {
        Ok(reply) => reply,
        Err(CallError::Closed) => return status_page(StatusCode::SERVICE_UNAVAILABLE),
        Err(CallError::Busy) => {
            let mut response = text(
                StatusCode::SERVICE_UNAVAILABLE,
                "503 Service Unavailable\n\nthis section is busy; try again in a moment\n",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        Err(CallError::TimedOut(limit)) => {
            logging::with_request_id(request_id, || {
                live.app.logger.emit(
                    level::WARN,
                    "host",
                    &format!(
                        "{} {}: no answer within {limit:?}: 504 sent, the handler runs on",
                        parts.method, parts.uri
                    ),
                );
            });
            return status_page(StatusCode::GATEWAY_TIMEOUT);
        }
    };
    match reply {
        RResult::ROk(response) => into_response(response).unwrap_or_else(|problem| {
            logging::with_request_id(request_id, || {
                live.app.logger.emit(
                    level::ERROR,
                    "host",
                    &format!(
                        "{} {}: invalid response from the app: {problem}",
                        parts.method, parts.uri
                    ),
                );
            });
            status_page(StatusCode::INTERNAL_SERVER_ERROR)
        }),
        RResult::RErr(error) => {
            if error.panicked {
                live.counters.panicked();
            }
            logging::with_request_id(request_id, || {
                log_app_error(live, &parts.method, &parts.uri, &error)
            });
            let status = StatusCode::from_u16(error.status)
                .ok()
                .filter(|status| status.is_client_error() || status.is_server_error())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            // Like Werkzeug's debugger, minus code execution: only with
            // --debug, and only for clients on this machine.
            if shows_debug_page(site.debug, &origin.client) {
                return debug_page(status, &mount.name, &parts.method, &parts.uri, &error);
            }
            status_page(status)
        }
    }
}

fn log_app_error(live: &LiveMount, method: &Method, uri: &http::Uri, error: &AppError) {
    let what = if error.panicked {
        "handler panicked"
    } else {
        "handler failed"
    };
    let mut message = format!("{method} {uri}: {what}: {}", error.message);
    if let Some(backtrace) = error.backtrace.as_ref().into_option() {
        message.push('\n');
        message.push_str(backtrace);
    }
    live.app.logger.emit(level::ERROR, "host", &message);
}

/// Turns an app's response into hyper's, without copying the body: the
/// app-allocated buffer is freed by the app's allocator when hyper is done
/// (`docs/architecture.md`, "Inside an app").
fn into_response(response: AppResponse) -> Result<Response<Body>, String> {
    let status = StatusCode::from_u16(response.status)
        .map_err(|_| format!("status {} is not a valid HTTP status", response.status))?;
    let mut built = Response::new(full_body(Bytes::from_owner(response.body)));
    *built.status_mut() = status;
    let headers = built.headers_mut();
    for Header { name, value } in response.headers {
        let name = common_name(&name)
            .map_or_else(|| HeaderName::from_bytes(name.as_bytes()), Ok)
            .map_err(|_| format!("header name {name:?} is not valid"))?;
        let value = common_value(&value)
            .map_or_else(|| HeaderValue::from_bytes(&value), Ok)
            .map_err(|_| format!("the value of header {name} is not valid"))?;
        headers.append(name, value);
    }
    Ok(built)
}

/// The header names the SDK writes, by their text: a comparison instead of
/// `HeaderName::from_bytes`'s parse (callgrind: about 100 instructions per
/// header).
fn common_name(name: &str) -> Option<HeaderName> {
    Some(match name {
        "content-type" => header::CONTENT_TYPE,
        "location" => header::LOCATION,
        "set-cookie" => header::SET_COOKIE,
        "allow" => header::ALLOW,
        _ => return None,
    })
}

/// Header values nearly every app response carries (the SDK's content
/// types), as static values: no copy, allocation and free per response.
static COMMON_VALUES: [HeaderValue; 3] = [
    HeaderValue::from_static("text/html; charset=utf-8"),
    HeaderValue::from_static("text/plain; charset=utf-8"),
    HeaderValue::from_static("application/json"),
];

/// The static value equal to `bytes`, if it is a common one.
fn common_value(bytes: &[u8]) -> Option<HeaderValue> {
    COMMON_VALUES
        .iter()
        .find(|common| common.as_bytes() == bytes)
        .cloned()
}

/// Whether a failed request gets the `--debug` page: only in debug mode, and
/// only for a client on this machine (IPv4-mapped loopback included).
fn shows_debug_page(debug: bool, client: &str) -> bool {
    let ip = client
        .parse::<SocketAddr>()
        .map(|address| address.ip())
        .or_else(|_| client.parse::<std::net::IpAddr>());
    debug && ip.is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// The `--debug` error page: the app, the request line, the message and the
/// app-side backtrace.
fn debug_page(
    status: StatusCode,
    app: &str,
    method: &Method,
    uri: &http::Uri,
    error: &AppError,
) -> Response<Body> {
    let what = if error.panicked { "panicked" } else { "failed" };
    let backtrace = error
        .backtrace
        .as_ref()
        .map_or("(no backtrace captured)", |text| text.as_str());
    let html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{status} in {app}</title>\
         <style>body{{font:15px/1.5 system-ui,sans-serif;margin:2rem}}pre{{background:#f6f6f6;padding:1rem;overflow:auto}}</style>\
         </head><body><h1>{status}: the handler {what}</h1>\
         <p>app <b>{app}</b> &middot; <code>{method} {uri}</code></p>\
         <h2>Message</h2><pre>{message}</pre><h2>Backtrace (app side)</h2><pre>{backtrace}</pre>\
         <p><small>Shown because the host runs with --debug and you are on this machine.</small></p></body></html>\n",
        app = escape_html(app),
        uri = escape_html(&uri.to_string()),
        message = escape_html(&error.message),
        backtrace = escape_html(backtrace),
    );
    page(status, "text/html; charset=utf-8", html)
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

fn too_large(limit: u64) -> Response<Body> {
    text(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!(
            "413 Content Too Large\n\nthe request body is larger than this mount accepts ({limit} bytes)\n"
        ),
    )
}

/// A short plain-text page for a status, e.g. `404 Not Found`.
pub fn status_page(status: StatusCode) -> Response<Body> {
    text(
        status,
        &format!(
            "{} {}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ),
    )
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    page(status, "text/plain; charset=utf-8", body.to_owned())
}

/// A request id: 16 hex digits, unique in this process and not guessable
/// from the previous one (a random key mixed with a counter, SplitMix64).
fn next_request_id() -> RequestId {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| RandomState::new().hash_one(std::process::id()));
    let mut z = seed.wrapping_add(
        COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    let z = z ^ (z >> 31);
    let mut id = [0u8; 16];
    for (digit, byte) in id.iter_mut().enumerate() {
        *byte = b"0123456789abcdef"[(z >> (60 - 4 * digit)) as usize & 0xf];
    }
    RequestId(id)
}

/// A request id as [`next_request_id`] makes it, kept on the stack.
struct RequestId([u8; 16]);

impl RequestId {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits are ASCII")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi_stable::std_types::{RString, RVec};

    #[test]
    fn the_debug_page_is_for_local_clients_in_debug_mode_only() {
        let rows = [
            (true, "127.0.0.1", true),
            (true, "127.0.0.1:5000", true),
            (true, "[::1]:80", true),
            (true, "not an address", false),
            (true, "::1", true),
            (true, "::ffff:127.0.0.1", true),
            (true, "10.0.0.7", false),
            (true, "192.168.1.2", false),
            (true, "2001:db8::1", false),
            (false, "127.0.0.1", false),
        ];
        for (debug, client, expected) in rows {
            assert_eq!(shows_debug_page(debug, client), expected, "{client}");
        }
    }

    #[test]
    fn html_is_escaped_on_the_debug_page() {
        assert_eq!(
            escape_html("<script>alert('x & \"y\"')</script>"),
            "&lt;script&gt;alert(&#39;x &amp; &quot;y&quot;&#39;)&lt;/script&gt;"
        );
    }

    #[test]
    fn request_ids_are_unique_hex() {
        let ids: std::collections::HashSet<String> = (0..10_000)
            .map(|_| next_request_id().as_str().to_owned())
            .collect();
        assert_eq!(ids.len(), 10_000);
        assert!(
            ids.iter()
                .all(|id| id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit()))
        );
    }

    #[test]
    fn header_values_arrive_as_the_app_sent_them_common_or_not() {
        for value in [
            "text/html; charset=utf-8",
            "text/plain; charset=utf-8",
            "application/json",
            "application/json; charset=utf-8",
            "text/html",
        ] {
            let response = AppResponse {
                status: 200,
                headers: vec![Header {
                    name: RString::from("content-type"),
                    value: RVec::from(value.as_bytes()),
                }]
                .into(),
                body: RVec::new(),
            };
            let built = into_response(response).unwrap();
            assert_eq!(built.headers()[header::CONTENT_TYPE], value);
        }
    }

    #[test]
    fn header_names_arrive_as_the_app_sent_them_common_or_not() {
        for name in [
            "content-type",
            "location",
            "set-cookie",
            "allow",
            "Content-Type",
            "x-kind",
            "cache-control",
        ] {
            let response = AppResponse {
                status: 200,
                headers: vec![Header {
                    name: RString::from(name),
                    value: RVec::from(b"v".to_vec()),
                }]
                .into(),
                body: RVec::new(),
            };
            let built = into_response(response).unwrap();
            let (sent, _) = built.headers().iter().next().unwrap();
            assert_eq!(sent, HeaderName::from_bytes(name.as_bytes()).unwrap());
            assert_eq!(sent.as_str(), name.to_ascii_lowercase());
        }
    }

    #[test]
    fn app_responses_keep_repeated_headers_and_refuse_bad_ones() {
        let response = AppResponse {
            status: 200,
            headers: vec![
                Header {
                    name: RString::from("set-cookie"),
                    value: RVec::from(b"a=1".to_vec()),
                },
                Header {
                    name: RString::from("set-cookie"),
                    value: RVec::from(b"b=2".to_vec()),
                },
            ]
            .into(),
            body: RVec::new(),
        };
        let built = into_response(response).unwrap();
        assert_eq!(built.headers().get_all("set-cookie").iter().count(), 2);
        let bad = AppResponse {
            status: 200,
            headers: vec![Header {
                name: RString::from("bad name"),
                value: RVec::new(),
            }]
            .into(),
            body: RVec::new(),
        };
        assert!(into_response(bad).is_err());
        let bad_status = AppResponse {
            status: 1000,
            headers: RVec::new(),
            body: RVec::new(),
        };
        assert!(into_response(bad_status).is_err());
    }
}
