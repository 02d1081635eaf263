//! One request's way through the host: its id and where it came from
//! (trusted proxies considered), the host's own pages, the `Host` among the
//! allowed ones, the mount that answers (`mounts::dispatch`), then that
//! mount's static folders or its app (the body read only for a route that
//! takes it, by `request_body`; the handler run by `exec`), and last the
//! request's metrics and access line.
//! What to answer is decided here; `respond` writes every response.

use std::{
    borrow::Cow,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use abi_stable::std_types::RResult;
use app_api_abi::{AppError, level};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version, header};
use hyper::body::{Body as _, Incoming};

use super::{
    body::Body,
    head_timeout::Activity,
    proxy::{self, Origin},
    request_body::{Bodies, Refusal},
    request_id::{self, next_request_id},
    respond,
};
use crate::{
    exec::{Call, CallError, Reply, Runner, request as app_request},
    logging::{self, Access, AppLogger},
    metrics::Counters,
    mounts::{
        dispatch::{self, Folder, Route},
        routes::AppRoutes,
        site::{MountState, Site, SiteMount},
    },
};

/// The response header that carries the request's id (also in its log
/// lines).
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The two ends of a connection, and what its watchdog sees of it.
pub(super) struct Peer {
    /// The client's end; `None` for a Unix socket's peer (a process of
    /// this machine: the proxy).
    pub(super) address: Option<SocketAddr>,
    /// `address` as text (`unix:` for a socket's peer), made once per
    /// connection.
    pub(super) text: String,
    /// Our end, on TCP.
    pub(super) local: Option<SocketAddr>,
    pub(super) activity: Arc<Activity>,
    /// Where request bodies go while they arrive (the site's, shared).
    pub(super) bodies: Arc<Bodies>,
}

/// What the host knows of a request besides its head and body.
struct Context<'a> {
    /// Where its body goes while it arrives.
    bodies: &'a Bodies,
    /// Who sent it, proxies considered.
    origin: Origin<'a>,
    /// Our end of the connection, on TCP.
    local: Option<SocketAddr>,
    /// Its id.
    request_id: &'a str,
    /// When the host took it in.
    arrived: Instant,
}

/// Who answered a request: its metrics and its access line go there.
enum Responder<'a> {
    /// The host itself: its own pages, redirects, paths no mount covers.
    Host,
    /// A mount: its app, its static folders, or its 503 when it failed.
    Mount {
        logger: AppLogger,
        counters: &'a Counters,
    },
}

/// What the pipeline decided for a request.
struct Answer<'a> {
    response: Response<Body>,
    by: Responder<'a>,
    /// The body bytes of a file, known apart from its (streamed) body.
    file_bytes: Option<u64>,
}

impl<'a> Answer<'a> {
    fn by_host(response: Response<Body>) -> Answer<'a> {
        Answer {
            response,
            by: Responder::Host,
            file_bytes: None,
        }
    }
}

/// Answers one request and writes its access-log line.
pub(super) async fn handle(site: &Site, request: Request<Incoming>, peer: &Peer) -> Response<Body> {
    let started = Instant::now();
    let (request, body) = request.into_parts();
    let generated;
    let request_id = match request
        .headers
        .get(X_REQUEST_ID)
        .and_then(|value| request_id::incoming(value.as_bytes()))
    {
        Some(kept) => kept,
        None => {
            generated = next_request_id();
            generated.as_str()
        }
    };
    let context = Context {
        bodies: &peer.bodies,
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
    let Answer {
        mut response,
        by,
        file_bytes,
    } = answer(site, &request, body, &context).await;
    let finished = Instant::now();
    let took = finished.saturating_duration_since(started);
    let (logger, counters) = match by {
        Responder::Host => (None, &site.host_counters),
        Responder::Mount { logger, counters } => (Some(logger), counters),
    };
    counters.record(response.status().as_u16(), took);
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    if site.closing_connections() && request.version < http::Version::HTTP_2 {
        // hyper closes the connection once this response is written, and
        // the client, told so, sends its next request on a new one (to the
        // process that now accepts them)
        response
            .headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    let (method, uri) = (&request.method, &request.uri);
    let access = Access {
        client: &context.origin.client,
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
            file_bytes.unwrap_or_else(|| response.body().size_hint().exact().unwrap_or(0))
        },
        took,
        referer: header_bytes(&request.headers, http::header::REFERER),
        user_agent: header_bytes(&request.headers, http::header::USER_AGENT),
        trace_id: request
            .headers
            .get("traceparent")
            .and_then(|value| request_id::trace_id(value.as_bytes())),
        finished,
    };
    logging::log_access(logger, request_id, &access);
    response
}

/// A header's value as sent, when there is one.
fn header_bytes(headers: &http::HeaderMap, name: http::header::HeaderName) -> Option<&[u8]> {
    headers.get(name).map(HeaderValue::as_bytes)
}

/// Decides what answers the request, and answers it.
async fn answer<'s>(
    site: &'s Site,
    request: &http::request::Parts,
    body: Incoming,
    context: &Context<'_>,
) -> Answer<'s> {
    let (method, uri) = (&request.method, &request.uri);
    if let Some(response) = host_page(site, method, uri.path(), &context.origin) {
        return Answer::by_host(response);
    }
    let host = requested_host(&context.origin, request);
    if host.is_some_and(|host| !site.allowed_hosts.allows(host)) {
        return Answer::by_host(respond::unknown_host());
    }
    let route = dispatch::route(&site.prefixes, uri.path(), uri.query());
    let (index, served) = match route {
        Route::App { mount, path } => (mount, Served::App(path)),
        Route::Static {
            mount,
            folder,
            file,
        } => (mount, Served::File(folder, file)),
        // behind a proxy that removed a prefix, the client needs it back
        Route::Redirect(location) => {
            return Answer::by_host(respond::redirect(&format!(
                "{}{location}",
                context.origin.prefix
            )));
        }
        Route::NotFound => return Answer::by_host(respond::status_page(StatusCode::NOT_FOUND)),
        Route::BadRequest(reason) => return Answer::by_host(respond::bad_request(reason)),
    };
    let site_mount = site.mount(index);
    let by = Responder::Mount {
        logger: site_mount.logger,
        counters: &site_mount.counters,
    };
    let _in_flight = site_mount.counters.start();
    let (response, file_bytes) = match (&site_mount.state, served) {
        (MountState::Failed { .. }, _) => (
            respond::unavailable(site_mount.mount.display_prefix()),
            None,
        ),
        (MountState::Live { app, runner }, Served::App(path)) => (
            call_app(
                site,
                site_mount,
                (&app.routes, runner),
                (host, &path),
                request,
                body,
                context,
            )
            .await,
            None,
        ),
        (MountState::Live { app, .. }, Served::File(folder, file)) => {
            let folder = match folder {
                Folder::Static => app.static_folder.as_ref(),
                Folder::Uploads => app.uploads.as_deref(),
            };
            match folder {
                Some(folder) => {
                    let served = folder
                        .serve(method, &request.headers, &file, site_mount.mount.compress)
                        .await;
                    let bytes = served.bytes;
                    (respond::file(served), Some(bytes))
                }
                // the dispatcher routes here only for mounts with the folder
                None => (respond::status_page(StatusCode::NOT_FOUND), None),
            }
        }
    };
    Answer {
        response,
        by,
        file_bytes,
    }
}

/// What a mount serves a request with.
enum Served<'p> {
    /// Its app, for the path below the prefix.
    App(Cow<'p, str>),
    /// One of the folders the host serves for it, and the file's path.
    File(Folder, Cow<'p, str>),
}

/// The host's own pages (health, metrics, the liveness and readiness
/// probes), if `path` is one of them. Only administrators' clients
/// (`Site::is_admin`) read the details and the metrics: a failed mount's
/// error names files on the server.
fn host_page(
    site: &Site,
    method: &Method,
    path: &str,
    origin: &Origin<'_>,
) -> Option<Response<Body>> {
    let is = |configured: &Option<String>| configured.as_deref() == Some(path);
    let admin = || origin.ip().is_some_and(|address| site.is_admin(address));
    let response = if is(&site.paths.health) {
        if admin() {
            let (healthy, report) = site.health();
            respond::health(healthy, report)
        } else {
            respond::bare_health(site.healthy())
        }
    } else if is(&site.paths.metrics) {
        if !admin() {
            return Some(respond::status_page(StatusCode::NOT_FOUND));
        }
        respond::metrics(site.metrics())
    } else if is(&site.paths.livez) {
        respond::probe(Vec::new(), true)
    } else if is(&site.paths.readyz) {
        // asks each database a query: a round trip to PostgreSQL, seconds
        // when it does not answer, which must not hold up an async worker
        respond::probe(tokio::task::block_in_place(|| site.not_ready()), admin())
    } else {
        return None;
    };
    if method != Method::GET && method != Method::HEAD {
        return Some(respond::get_or_head_only());
    }
    Some(response)
}

/// Runs the request through the mount's app: reads its body (only when a
/// route takes it and a handler is free to run it), gives the app its host
/// (`public_url`'s, else the one asked for), hands the request to `exec`,
/// and answers the reply, or why there is none.
async fn call_app(
    site: &Site,
    live: &SiteMount,
    (routes, runner): (&AppRoutes, &Runner),
    (host, path): (Option<&str>, &str),
    parts: &http::request::Parts,
    body: Incoming,
    context: &Context<'_>,
) -> Response<Body> {
    let Context {
        bodies,
        origin,
        local,
        request_id,
        arrived,
    } = context;
    let mount = &live.mount;
    // Most requests have no body: nothing to check or collect, and no
    // reading future to make. A body no route takes is never read: the
    // app answers its 404 or 405 without it.
    let mut received = if body.is_end_stream() || !routes.takes(parts.method.as_str(), path) {
        None
    } else {
        if let Err(error) = runner.admit().await {
            return call_refused(live, parts, request_id, error);
        }
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        let wait = Duration::from_millis(mount.queue_timeout_ms);
        match bodies
            .receive(body, declared, mount.max_body_bytes, wait)
            .await
        {
            Ok(received) => Some(received),
            Err(refusal) => return body_refused(live, parts, request_id, refusal),
        }
    };
    // `received` keeps the body's share of the memory budget until the
    // handler is done with the bytes
    let body = received
        .as_mut()
        .map(|received| std::mem::take(&mut received.bytes))
        .unwrap_or_default();
    let local_text;
    let (scheme, host) = match (&site.public_url, host) {
        (Some(public), _) => (public.scheme, public.host.as_str()),
        (None, Some(host)) => (origin.scheme, host),
        // RFC 9112, section 3.2: a 1.1 request without Host is a 400.
        (None, None) if parts.version == Version::HTTP_11 => {
            return respond::bad_request("missing Host header");
        }
        (None, None) => {
            local_text = local.map_or_else(|| "localhost".to_owned(), |local| local.to_string());
            (origin.scheme, local_text.as_str())
        }
    };
    let abi_parts = app_request::Parts {
        method: parts.method.as_str(),
        scheme,
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
        runner.call(&site.inline, request, *arrived)
    });
    let reply = match call {
        Call::Done(reply) => reply,
        Call::Waiting(reply) => reply.await,
    };
    match reply {
        Ok(reply) => reply_response(site, live, parts, context, reply),
        Err(error) => call_refused(live, parts, request_id, error),
    }
}

/// The host the client asked for: from a trusted proxy, else `Host`, else
/// the request target's authority (HTTP/2's `:authority`).
fn requested_host<'r>(origin: &'r Origin<'_>, parts: &'r http::request::Parts) -> Option<&'r str> {
    origin.host.as_deref().or_else(|| {
        parts
            .headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .or_else(|| parts.uri.authority().map(http::uri::Authority::as_str))
    })
}

/// Logs `what` happened to the request under the mount's logger, with the
/// request's method, target and id.
fn log_request(
    live: &SiteMount,
    parts: &http::request::Parts,
    request_id: &str,
    level: u8,
    what: std::fmt::Arguments<'_>,
) {
    logging::with_request_id(request_id, || {
        live.logger.emit(
            level,
            "host",
            &format!("{} {}: {what}", parts.method, parts.uri),
        );
    });
}

/// The response when the app got no call, or gave no answer in time.
fn call_refused(
    live: &SiteMount,
    parts: &http::request::Parts,
    request_id: &str,
    error: CallError,
) -> Response<Body> {
    match error {
        CallError::Closed => respond::status_page(StatusCode::SERVICE_UNAVAILABLE),
        CallError::Busy => respond::busy(),
        CallError::TimedOut(limit) => {
            log_request(
                live,
                parts,
                request_id,
                level::WARN,
                format_args!("no answer within {limit:?}: 504 sent, the handler runs on"),
            );
            respond::status_page(StatusCode::GATEWAY_TIMEOUT)
        }
    }
}

/// The response when a request's body was not received.
fn body_refused(
    live: &SiteMount,
    parts: &http::request::Parts,
    request_id: &str,
    refusal: Refusal,
) -> Response<Body> {
    match refusal {
        Refusal::TooLarge(limit) => respond::too_large(limit),
        Refusal::TimedOut => respond::body_timeout(),
        Refusal::Unreadable => respond::bad_request("the request body could not be read"),
        Refusal::NoRoom => respond::busy(),
        Refusal::Spool(error) => {
            log_request(
                live,
                parts,
                request_id,
                level::ERROR,
                format_args!("cannot spool the request body to a temporary file: {error}"),
            );
            respond::status_page(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// The response to the app's reply: its own, or for an error a status page
/// (with `--debug`, for a client on this machine, the debug page), the
/// error logged under the mount's logger.
fn reply_response(
    site: &Site,
    live: &SiteMount,
    parts: &http::request::Parts,
    context: &Context<'_>,
    reply: Reply,
) -> Response<Body> {
    let request_id = context.request_id;
    match reply {
        RResult::ROk(response) => match respond::app_reply(response, &live.mount, &parts.headers) {
            Ok(response) => response,
            Err(problem) => {
                log_request(
                    live,
                    parts,
                    request_id,
                    level::ERROR,
                    format_args!("invalid response from the app: {problem}"),
                );
                respond::status_page(StatusCode::INTERNAL_SERVER_ERROR)
            }
        },
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
            if respond::shows_debug_page(site.debug, &context.origin.client) {
                return respond::debug_page(
                    status,
                    &live.mount.name,
                    &parts.method,
                    &parts.uri,
                    &error,
                );
            }
            respond::status_page(status)
        }
    }
}

fn log_app_error(live: &SiteMount, method: &Method, uri: &http::Uri, error: &AppError) {
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
    live.logger.emit(level::ERROR, "host", &message);
}
