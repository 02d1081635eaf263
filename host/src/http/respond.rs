//! The one place that builds the host's responses: its short pages for a
//! status, redirects, its own health and metrics pages, the apps' replies,
//! files from static folders, and the `--debug` page. The pipeline decides
//! what to answer; this module writes it.

use std::net::SocketAddr;

use app_api_abi::{AppError, AppResponse, Header};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, header};

use super::body::{Body, empty_body, full_body, streamed_body};
use crate::{
    compression::{self, Effort},
    static_files::{Content, Served},
    table::Mount,
};

/// A response with a status, a content type and a body.
fn page(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full_body(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    page(status, "text/plain; charset=utf-8", body.to_owned())
}

/// A short plain-text page for a status, e.g. `404 Not Found`.
pub(super) fn status_page(status: StatusCode) -> Response<Body> {
    text(
        status,
        &format!(
            "{} {}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ),
    )
}

/// 400, saying what was wrong with the request.
pub(super) fn bad_request(reason: &str) -> Response<Body> {
    text(
        StatusCode::BAD_REQUEST,
        &format!("400 Bad Request\n\n{reason}\n"),
    )
}

/// 400 for a `Host` the site does not answer for (`allowed_hosts`).
pub(super) fn unknown_host() -> Response<Body> {
    text(
        StatusCode::BAD_REQUEST,
        "400 Bad Request: this site does not answer for that Host\n",
    )
}

/// 413: the body is larger than the mount accepts.
pub(super) fn too_large(limit: u64) -> Response<Body> {
    text(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!(
            "413 Content Too Large\n\nthe request body is larger than this mount accepts ({limit} bytes)\n"
        ),
    )
}

/// 408: the client stopped sending its body. The connection closes: what
/// is left of the body would be read as the next request.
pub(super) fn body_timeout() -> Response<Body> {
    let mut response = text(
        StatusCode::REQUEST_TIMEOUT,
        "408 Request Timeout\n\nthe request body stopped arriving\n",
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// 503 for a mount whose app failed to load or start (never a
/// fall-through to a shorter prefix); the log says why, the client does not.
pub(super) fn unavailable(prefix: &str) -> Response<Body> {
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!(
            "503 Service Unavailable\n\nthe app mounted at {prefix} failed to start; the host's log says why\n"
        ),
    )
}

/// 503 with `Retry-After`: all of the mount's handlers stayed busy.
pub(super) fn busy() -> Response<Body> {
    let mut response = text(
        StatusCode::SERVICE_UNAVAILABLE,
        "503 Service Unavailable\n\nthis section is busy; try again in a moment\n",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// 308 to `location` (a bare mount prefix to its form with a slash).
pub(super) fn redirect(location: &str) -> Response<Body> {
    let mut response = text(StatusCode::PERMANENT_REDIRECT, "");
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// 405 for the host's own pages, which answer `GET` and `HEAD` only.
pub(super) fn get_or_head_only() -> Response<Body> {
    let mut response = status_page(StatusCode::METHOD_NOT_ALLOWED);
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

/// The health report, 200 when every mount is loaded, else 503.
pub(super) fn health(healthy: bool, report: String) -> Response<Body> {
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    page(status, "application/json", report)
}

/// The health status alone, for clients that may not read the details.
pub(super) fn bare_health(healthy: bool) -> Response<Body> {
    let report = if healthy {
        r#"{"status":"ok"}"#
    } else {
        r#"{"status":"degraded"}"#
    };
    health(healthy, report.to_owned())
}

/// A liveness or readiness probe's answer: 200 `ok` without `problems`,
/// else 503 `not ready`, followed by the problems for those who may read
/// them (`details`).
pub(super) fn probe(problems: Vec<String>, details: bool) -> Response<Body> {
    if problems.is_empty() {
        return page(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            "ok\n".to_owned(),
        );
    }
    let mut text = "not ready\n".to_owned();
    if details {
        for problem in problems {
            text.push_str(&problem);
            text.push('\n');
        }
    }
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "text/plain; charset=utf-8",
        text,
    )
}

/// The metrics, in Prometheus' text format.
pub(super) fn metrics(text: String) -> Response<Body> {
    page(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        text,
    )
}

/// A file of a static folder, or the refusal its request got.
pub(super) fn file(served: Served) -> Response<Body> {
    let mut response = match served.content {
        Content::StatusPage => status_page(served.status),
        Content::Empty => Response::new(empty_body()),
        Content::Whole(bytes) => Response::new(full_body(bytes)),
        Content::Stream(stream) => Response::new(streamed_body(stream)),
    };
    *response.status_mut() = served.status;
    response.headers_mut().extend(served.headers);
    response
}

/// Turns an app's response into hyper's, without copying the body: the
/// app-allocated buffer is freed by the app's allocator when hyper is done
/// (`docs/architecture.md`, "Inside an app").
///
/// The host adds the mount's `headers` the app did not set, and
/// `Cache-Control: no-store` when the response sets the mount's session
/// cookie or answers a request (`request`) that carried it, unless the app
/// chose its own caching: a shared cache must never hand one user's page,
/// or cookie, to another. What the app set is noted while its headers are
/// converted, with no lookup in the map.
///
/// The body is compressed when the mount allows, the client accepts it and
/// the page is not a signed-in user's: a page carrying a secret (the CSRF
/// token) beside text an attacker chose leaks the secret through its
/// compressed length (BREACH).
pub(super) fn app_reply(
    response: AppResponse,
    mount: &Mount,
    request: &HeaderMap,
) -> Result<Response<Body>, String> {
    let status = StatusCode::from_u16(response.status)
        .map_err(|_| format!("status {} is not a valid HTTP status", response.status))?;
    let body = response.body;
    // room for `Cache-Control` and `Vary` besides the app's and the mount's
    let mut headers = HeaderMap::with_capacity(response.headers.len() + mount.headers.len() + 2);
    // which of the mount's headers the app set (the table holds at most 64)
    let mut set: u64 = 0;
    let (mut caching_chosen, mut sets_session) = (false, false);
    let cookie = mount.session_cookie.as_bytes();
    for Header { name, value } in response.headers {
        let name = common_name(&name)
            .map_or_else(|| HeaderName::from_bytes(name.as_bytes()), Ok)
            .map_err(|_| format!("header name {name:?} is not valid"))?;
        let value = common_value(&value)
            .map_or_else(|| HeaderValue::from_bytes(&value), Ok)
            .map_err(|_| format!("the value of header {name} is not valid"))?;
        for (index, (added, _)) in mount.headers.iter().enumerate() {
            if *added == name {
                set |= 1 << index;
            }
        }
        if name == header::CACHE_CONTROL {
            caching_chosen = true;
        } else if name == header::SET_COOKIE && names_cookie(value.as_bytes(), cookie) {
            sets_session = true;
        }
        headers.append(name, value);
    }
    for (index, (name, value)) in mount.headers.iter().enumerate() {
        if set & (1 << index) == 0 {
            headers.append(name.clone(), value.clone());
        }
    }
    let carries_session = || {
        request.get_all(header::COOKIE).iter().any(|value| {
            value
                .as_bytes()
                .split(|&b| b == b';')
                .any(|pair| names_cookie(pair.trim_ascii_start(), cookie))
        })
    };
    let private = sets_session || carries_session();
    if !caching_chosen && private {
        headers.append(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let compressed = match mount.compress && !private {
        true => compress_reply(status, &mut headers, &body, request),
        false => None,
    };
    let mut built = Response::new(match compressed {
        Some(compressed) => full_body(compressed),
        None => full_body(Bytes::from_owner(body)),
    });
    *built.status_mut() = status;
    *built.headers_mut() = headers;
    Ok(built)
}

/// `body` compressed, with `headers` saying so, if the reply may be
/// compressed and the client (`request`) accepts it. `Vary:
/// Accept-Encoding` is added whenever the reply could be compressed.
fn compress_reply(
    status: StatusCode,
    headers: &mut HeaderMap,
    body: &[u8],
    request: &HeaderMap,
) -> Option<Vec<u8>> {
    let compressible = (body.len() as u64) >= compression::MIN_SIZE
        && !matches!(status.as_u16(), 204 | 206 | 304)
        && !headers.contains_key(header::CONTENT_ENCODING)
        && !headers.contains_key(header::CONTENT_RANGE)
        && headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| compression::compressible(value.as_bytes()))
        && !headers.get_all(header::CACHE_CONTROL).iter().any(|value| {
            value
                .as_bytes()
                .windows(12)
                .any(|word| word.eq_ignore_ascii_case(b"no-transform"))
        });
    if !compressible {
        return None;
    }
    headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    let accepted = request
        .get(header::ACCEPT_ENCODING)
        .map(HeaderValue::as_bytes);
    let encoding = compression::negotiate(accepted, &compression::PAGE_ENCODINGS)?;
    let compressed = encoding.compress(body, Effort::Fast);
    if compressed.len() >= body.len() {
        return None;
    }
    headers.insert(header::CONTENT_ENCODING, encoding.header_value());
    // the app's tag names the uncompressed bytes; the compressed ones are
    // only semantically the same (what nginx's gzip does too)
    if let Some(etag) = headers.get(header::ETAG)
        && !etag.as_bytes().starts_with(b"W/")
    {
        let mut weak = b"W/".to_vec();
        weak.extend_from_slice(etag.as_bytes());
        if let Ok(weak) = HeaderValue::from_bytes(&weak) {
            headers.insert(header::ETAG, weak);
        }
    }
    Some(compressed)
}

/// Whether `pair` (`name=value...`) is the cookie `name`.
fn names_cookie(pair: &[u8], name: &[u8]) -> bool {
    pair.starts_with(name) && pair.get(name.len()) == Some(&b'=')
}

fn common_name(name: &str) -> Option<HeaderName> {
    Some(match name {
        "content-type" => header::CONTENT_TYPE,
        "location" => header::LOCATION,
        "set-cookie" => header::SET_COOKIE,
        "allow" => header::ALLOW,
        "cache-control" => header::CACHE_CONTROL,
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
pub(super) fn shows_debug_page(debug: bool, client: &str) -> bool {
    let ip = client
        .parse::<SocketAddr>()
        .map(|address| address.ip())
        .or_else(|_| client.parse::<std::net::IpAddr>());
    debug && ip.is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// The `--debug` error page: the app, the request line, the message and the
/// app-side backtrace.
pub(super) fn debug_page(
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

#[cfg(test)]
mod tests {
    use abi_stable::std_types::{RString, RVec};

    use super::*;

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

    /// `app_reply` for a mount of the default table, to a request without
    /// cookies.
    fn reply(response: AppResponse) -> Result<Response<Body>, String> {
        let table = crate::table::parse(
            r#"{"mounts": [{"name": "a", "prefix": "/", "library": "a.so"}]}"#,
            std::path::Path::new("plugins.json"),
        )
        .unwrap();
        app_reply(response, &table.mounts[0], &HeaderMap::new())
    }

    #[test]
    fn pages_are_compressed_only_when_nothing_forbids_it() {
        let page = "<p>a line of the page</p>\n".repeat(100);
        let page = page.as_str();
        // (status, the reply's headers, body, Accept-Encoding):
        // (compressed, Vary added, ETag sent)
        type Row<'a> = (u16, &'a [(&'a str, &'a str)], &'a str, Option<&'a str>);
        type Expected<'a> = (bool, bool, Option<&'a str>);
        const HTML: (&str, &str) = ("content-type", "text/html; charset=utf-8");
        let rows: [(Row<'_>, Expected<'_>); 11] = [
            ((200, &[HTML], page, Some("gzip, br")), (true, true, None)),
            ((200, &[HTML], page, Some("br")), (false, true, None)),
            ((200, &[HTML], page, None), (false, true, None)),
            ((404, &[HTML], page, Some("gzip")), (true, true, None)),
            (
                (200, &[HTML], "<p>short</p>", Some("gzip")),
                (false, false, None),
            ),
            (
                (200, &[("content-type", "image/png")], page, Some("gzip")),
                (false, false, None),
            ),
            (
                (200, &[HTML, ("content-encoding", "br")], page, Some("gzip")),
                (false, false, None),
            ),
            ((206, &[HTML], page, Some("gzip")), (false, false, None)),
            (
                (
                    200,
                    &[HTML, ("cache-control", "public, No-Transform")],
                    page,
                    Some("gzip"),
                ),
                (false, false, None),
            ),
            (
                (200, &[HTML, ("etag", "\"v1\"")], page, Some("gzip")),
                (true, true, Some("W/\"v1\"")),
            ),
            (
                (200, &[HTML, ("etag", "W/\"v1\"")], page, Some("gzip")),
                (true, true, Some("W/\"v1\"")),
            ),
        ];
        for ((status, reply, body, accept), (compressed, varies, etag)) in rows {
            let mut headers = HeaderMap::new();
            for (name, value) in reply {
                let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
                headers.insert(name, HeaderValue::from_str(value).unwrap());
            }
            let mut request = HeaderMap::new();
            if let Some(accept) = accept {
                request.insert(
                    header::ACCEPT_ENCODING,
                    HeaderValue::from_str(accept).unwrap(),
                );
            }
            let status = StatusCode::from_u16(status).unwrap();
            let out = compress_reply(status, &mut headers, body.as_bytes(), &request);
            let row = format!("{status} {reply:?} {} bytes {accept:?}", body.len());
            assert_eq!(out.is_some(), compressed, "{row}");
            assert_eq!(headers.contains_key(header::VARY), varies, "{row}");
            assert_eq!(
                headers
                    .get(header::ETAG)
                    .map(|value| value.to_str().unwrap()),
                etag.or(reply
                    .iter()
                    .find(|(name, _)| *name == "etag")
                    .map(|(_, v)| *v)),
                "{row}"
            );
            if let Some(out) = out {
                assert_eq!(headers[header::CONTENT_ENCODING], "gzip", "{row}");
                let mut decoded = Vec::new();
                std::io::Read::read_to_end(
                    &mut flate2::read::GzDecoder::new(&out[..]),
                    &mut decoded,
                )
                .unwrap();
                assert_eq!(decoded, body.as_bytes(), "{row}");
            }
        }
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
            let built = reply(response).unwrap();
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
            let built = reply(response).unwrap();
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
        let built = reply(response).unwrap();
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
        assert!(reply(bad).is_err());
        let bad_status = AppResponse {
            status: 1000,
            headers: RVec::new(),
            body: RVec::new(),
        };
        assert!(reply(bad_status).is_err());
    }
}
