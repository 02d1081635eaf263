//! The request as the ABI carries it to an app ([`AppRequest`]), written into
//! buffers kept from an earlier request on the same thread.
//!
//! Every field of an `AppRequest` is an owned abi_stable string or vector
//! (its layout is frozen, `docs/compatibility.md`), so building a fresh one
//! takes an allocation per field and two per header, and dropping it as many
//! frees.
//! Apps only ever see the request through a shared reference, so each
//! thread keeps one request whose buffers are cleared and refilled in place
//! for the next request instead, which takes a tenth off a small request's
//! cost (`docs/performance.md`).

use std::cell::RefCell;

use abi_stable::std_types::{RString, RVec};
use app_api_abi::{AppRequest, Header};
use http::HeaderMap;

/// What an [`AppRequest`] is made of, borrowed from hyper's request and the
/// host's view of it.
#[derive(Debug)]
pub struct Parts<'a> {
    /// The method, e.g. `GET`.
    pub method: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The host the client asked for.
    pub host: &'a str,
    /// The script root in two pieces: the prefix a proxy removed, then the
    /// mount's prefix.
    pub script_root: [&'a str; 2],
    /// The decoded path below the mount.
    pub path: &'a str,
    /// The raw query string, `""` if none.
    pub query: &'a str,
    /// The request headers, in the order the client sent them.
    pub headers: &'a HeaderMap,
    /// The whole body.
    pub body: Vec<u8>,
    /// The client's address.
    pub remote_addr: &'a str,
    /// The request id.
    pub request_id: &'a str,
}

/// Buffers holding more than this many bytes in all are not kept for the
/// next request: a request with huge headers must not pin their memory to a
/// thread for good.
const MAX_KEPT_BYTES: usize = 16 * 1024;

/// Headers beyond this many are not kept for the next request.
const MAX_KEPT_HEADERS: usize = 32;

thread_local! {
    /// This thread's request buffers.
    static SPARE: RefCell<AppRequest> = const { RefCell::new(empty()) };
}

/// Runs `call` with the ABI request for `parts`, written into this thread's
/// buffers. `call` may [`take`] the request to hand it to another thread;
/// the buffers start over empty then.
pub fn with_request<T>(parts: Parts<'_>, call: impl FnOnce(&mut AppRequest) -> T) -> T {
    SPARE.with(|spare| match spare.try_borrow_mut() {
        Ok(mut request) => {
            fill(&mut request, parts);
            let result = call(&mut request);
            tidy(&mut request);
            result
        }
        // `call` cannot start another request on this thread; should it
        // ever, that one gets buffers of its own
        Err(_) => {
            let mut request = empty();
            fill(&mut request, parts);
            call(&mut request)
        }
    })
}

/// The request itself, for a handler on another thread; `request` is left
/// empty.
pub fn take(request: &mut AppRequest) -> AppRequest {
    std::mem::replace(request, empty())
}

/// Gets the buffers ready to be kept: the body is let go (it came from
/// hyper and is never refilled in place), and buffers that hold too much
/// are dropped.
fn tidy(request: &mut AppRequest) {
    if worth_keeping(request) {
        request.body = RVec::new();
        request.headers.truncate(MAX_KEPT_HEADERS);
    } else {
        *request = empty();
    }
}

/// A request with empty buffers.
pub(crate) const fn empty() -> AppRequest {
    AppRequest {
        method: RString::new(),
        scheme: RString::new(),
        host: RString::new(),
        script_root: RString::new(),
        path: RString::new(),
        query: RString::new(),
        headers: RVec::new(),
        body: RVec::new(),
        remote_addr: RString::new(),
        request_id: RString::new(),
        extensions: RVec::new(),
    }
}

/// Overwrites every field of `request` with `parts`, keeping the buffers'
/// capacity. The destructuring names every field, so a field added to the
/// ABI cannot be left holding an earlier request's data.
fn fill(request: &mut AppRequest, parts: Parts<'_>) {
    let AppRequest {
        method,
        scheme,
        host,
        script_root,
        path,
        query,
        headers,
        body,
        remote_addr,
        request_id,
        extensions,
    } = request;
    set(method, &[parts.method]);
    set(scheme, &[parts.scheme]);
    set(host, &[parts.host]);
    set(script_root, &parts.script_root);
    set(path, &[parts.path]);
    set(query, &[parts.query]);
    let mut count = 0;
    for (name, value) in parts.headers {
        match headers.get_mut(count) {
            Some(header) => {
                set(&mut header.name, &[name.as_str()]);
                header.value.clear();
                header.value.extend_from_copy_slice(value.as_bytes());
            }
            None => headers.push(Header {
                name: name.as_str().into(),
                value: value.as_bytes().into(),
            }),
        }
        count += 1;
    }
    headers.truncate(count);
    *body = RVec::from(parts.body);
    set(remote_addr, &[parts.remote_addr]);
    set(request_id, &[parts.request_id]);
    extensions.clear();
}

/// Makes `target` the concatenation of `pieces`.
fn set(target: &mut RString, pieces: &[&str]) {
    target.clear();
    for piece in pieces {
        target.push_str(piece);
    }
}

/// Whether the request's buffers are small enough to keep.
fn worth_keeping(request: &AppRequest) -> bool {
    let strings = [
        &request.method,
        &request.scheme,
        &request.host,
        &request.script_root,
        &request.path,
        &request.query,
        &request.remote_addr,
        &request.request_id,
    ];
    let headers: usize = request
        .headers
        .iter()
        .map(|header| header.name.capacity() + header.value.capacity())
        .sum();
    let total = strings.iter().map(|text| text.capacity()).sum::<usize>() + headers;
    total <= MAX_KEPT_BYTES
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn parts<'a>(path: &'a str, headers: &'a HeaderMap, body: &'static [u8]) -> Parts<'a> {
        Parts {
            method: if body.is_empty() { "GET" } else { "POST" },
            scheme: "http",
            host: "example.com:5000",
            script_root: ["/site", "/admin"],
            path,
            query: if body.is_empty() { "" } else { "x=1&y=2" },
            headers,
            body: body.to_vec(),
            remote_addr: "127.0.0.1:40000",
            request_id: "00ff00ff00ff00ff",
        }
    }

    #[test]
    fn refilled_buffers_hold_exactly_what_a_fresh_request_would() {
        let many = headers(&[
            ("host", "example.com:5000"),
            ("accept", "text/html,application/xhtml+xml"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            ("x-long", &"v".repeat(500)),
        ]);
        let one = headers(&[("host", "h")]);
        let none = HeaderMap::new();
        // each request is built in the buffers the one before it left
        let steps: [(&str, &HeaderMap, &'static [u8]); 5] = [
            ("/a/very/long/path/below/the/mount", &many, b"title=x"),
            ("/", &one, b""),
            ("/users/5", &many, b""),
            ("/x", &none, b"body"),
            ("/", &one, b""),
        ];
        let mut spare = empty();
        for (path, map, body) in steps {
            let mut fresh = empty();
            fill(&mut fresh, parts(path, map, body));
            fill(&mut spare, parts(path, map, body));
            assert_eq!(format!("{spare:?}"), format!("{fresh:?}"), "after {path}");
        }
    }

    #[test]
    fn the_buffers_are_reused_by_the_next_request_on_the_thread() {
        let map = headers(&[("host", "example.com"), ("accept", "*/*")]);
        let (method, header_name) = with_request(parts("/first/path", &map, b""), |request| {
            (request.method.as_ptr(), request.headers[1].name.as_ptr())
        });
        with_request(parts("/second", &map, b""), |request| {
            assert_eq!(request.method.as_ptr(), method);
            assert_eq!(request.headers[1].name.as_ptr(), header_name);
            assert_eq!(request.path.as_str(), "/second");
        });
    }

    #[test]
    fn a_taken_request_keeps_its_data_and_the_buffers_start_over() {
        let map = headers(&[("host", "example.com")]);
        let taken = with_request(parts("/to/the/pool", &map, b"body"), take);
        assert_eq!(taken.path.as_str(), "/to/the/pool");
        assert_eq!(taken.body.as_slice(), b"body");
        SPARE.with(|spare| assert_eq!(spare.borrow().path.capacity(), 0));
    }

    #[test]
    fn large_buffers_and_bodies_are_not_kept() {
        let big = "v".repeat(MAX_KEPT_BYTES);
        let map = headers(&[("x-big", &big)]);
        with_request(parts("/", &map, b""), |request| {
            assert!(!worth_keeping(request))
        });
        SPARE.with(|spare| {
            let kept = spare.borrow();
            assert!(
                kept.headers.is_empty() && kept.path.capacity() == 0,
                "a request holding {} bytes was kept",
                big.len()
            );
        });
        let small = headers(&[("host", "h")]);
        with_request(parts("/", &small, b"abc"), |request| {
            assert!(worth_keeping(request))
        });
        SPARE.with(|spare| {
            let kept = spare.borrow();
            assert_eq!(kept.headers.len(), 1, "a small request is kept");
            assert!(kept.body.is_empty(), "the body is not kept");
        });
    }
}
