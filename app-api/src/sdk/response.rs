//! Responses and HTTP errors as handlers build them.

use std::fmt;

use abi_stable::std_types::{RString, RVec};

use crate::abi::{AppResponse, Header};

pub use http::StatusCode;

/// A status as handlers give it: a [`StatusCode`] or its number.
pub trait IntoStatus {
    /// The status's number.
    fn into_status(self) -> u16;
}

impl IntoStatus for u16 {
    fn into_status(self) -> u16 {
        self
    }
}

impl IntoStatus for StatusCode {
    fn into_status(self) -> u16 {
        self.as_u16()
    }
}

/// A response under construction.
///
/// ```
/// use app_api::prelude::*;
/// let response = Response::html("<h1>Hi</h1>")
///     .with_status(StatusCode::CREATED)
///     .with_header("x-kind", "greeting");
/// assert_eq!(response.status(), 201);
/// assert_eq!(response.status_code(), Some(StatusCode::CREATED));
/// ```
#[derive(Debug, Clone)]
pub struct Response {
    status: u16,
    /// Already in the ABI's types: handing them over moves, never copies.
    headers: Vec<Header>,
    body: Vec<u8>,
}

impl Response {
    /// A response with this status, content type and body.
    pub fn new(status: impl IntoStatus, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status: status.into_status(),
            headers: vec![Header {
                name: RString::from("content-type"),
                value: RVec::from(content_type.as_bytes()),
            }],
            body: body.into(),
        }
    }

    /// `200`, `text/plain; charset=utf-8`.
    pub fn text(body: impl Into<String>) -> Response {
        Response::new(200, "text/plain; charset=utf-8", body.into())
    }

    /// `200`, `text/html; charset=utf-8`.
    pub fn html(body: impl Into<String>) -> Response {
        Response::new(200, "text/html; charset=utf-8", body.into())
    }

    /// `200`, `application/json`, the value serialised.
    pub fn json(value: &impl serde::Serialize) -> Response {
        match serde_json::to_vec(value) {
            Ok(body) => Response::new(200, "application/json", body),
            Err(error) => Error::internal(format!("JSON serialisation failed: {error}")).into(),
        }
    }

    /// `302 Found` to `location` (Flask's `redirect`). Build the location with
    /// [`Request::url_for`](super::Request::url_for) so it keeps the mount prefix.
    pub fn redirect(location: &str) -> Response {
        Response::redirect_with(302, location)
    }

    /// A redirect with a chosen status (301, 302, 303, 307 or 308).
    /// Characters a URL may not hold are percent-encoded, and a location
    /// starting with `//` stays on this site (`/%2F...`): write another
    /// site's address in full, `https://...`.
    pub fn redirect_with(status: impl IntoStatus, location: &str) -> Response {
        let location = super::url::location(location);
        Response::text(format!("Redirecting to {location}\n"))
            .with_status(status)
            .with_header("location", location)
    }

    /// Sets the status.
    pub fn with_status(mut self, status: impl IntoStatus) -> Response {
        self.status = status.into_status();
        self
    }

    /// Adds a header (a name may repeat, e.g. `set-cookie`).
    pub fn with_header(mut self, name: &str, value: impl AsRef<[u8]>) -> Response {
        let name = RString::from(name.to_ascii_lowercase());
        if name == "content-type" {
            self.headers.retain(|existing| existing.name != name);
        }
        self.headers.push(Header {
            name,
            value: RVec::from(value.as_ref()),
        });
        self
    }

    /// The status's number.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The status as a [`StatusCode`] (`None` for a number HTTP cannot
    /// carry).
    pub fn status_code(&self) -> Option<StatusCode> {
        StatusCode::from_u16(self.status).ok()
    }

    /// The first value of a header, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
            .and_then(|header| std::str::from_utf8(&header.value).ok())
    }

    /// Every header in order, names lowercase (a name may repeat).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers
            .iter()
            .map(|header| (header.name.as_str(), header.value.as_slice()))
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn into_abi(self) -> AppResponse {
        AppResponse {
            status: self.status,
            headers: RVec::from(self.headers),
            body: RVec::from(self.body),
        }
    }
}

/// An HTTP error a handler returns: a status and a message.
///
/// Client errors (4xx) answer with the message as text (or the app's error
/// page); server errors (5xx) answer a generic page while the message goes
/// to the app's log. Any `std::error::Error` converts into a 500, so `?`
/// works in handlers.
///
/// ```
/// use app_api::prelude::*;
/// let error = Error::conflict("The slug is taken.");
/// assert_eq!((error.status(), error.message()), (409, "The slug is taken."));
/// assert_eq!(Error::new(StatusCode::GONE, "It left.").status(), 410);
/// let parsed: Result<i64, Error> = "x".parse::<i64>().map_err(Error::from);
/// assert_eq!(parsed.unwrap_err().status(), 500);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    status: u16,
    message: String,
}

impl Error {
    /// An error with this status and message.
    pub fn new(status: impl IntoStatus, message: impl Into<String>) -> Error {
        Error {
            status: status.into_status(),
            message: message.into(),
        }
    }

    /// `400 Bad Request`.
    pub fn bad_request(message: impl Into<String>) -> Error {
        Error::new(400, message)
    }

    /// `401 Unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Error {
        Error::new(401, message)
    }

    /// `403 Forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Error {
        Error::new(403, message)
    }

    /// `404 Not Found`, with Werkzeug's message.
    pub fn not_found() -> Error {
        Error::new(404, "The requested URL was not found on the server.")
    }

    /// `404 Not Found` with a message of the app's (`There is no such
    /// post.`).
    pub fn not_found_with(message: impl Into<String>) -> Error {
        Error::new(404, message)
    }

    /// `409 Conflict`.
    pub fn conflict(message: impl Into<String>) -> Error {
        Error::new(409, message)
    }

    /// `410 Gone`.
    pub fn gone(message: impl Into<String>) -> Error {
        Error::new(410, message)
    }

    /// `413 Content Too Large`.
    pub fn too_large(message: impl Into<String>) -> Error {
        Error::new(413, message)
    }

    /// `415 Unsupported Media Type`.
    pub fn unsupported_media_type(message: impl Into<String>) -> Error {
        Error::new(415, message)
    }

    /// `422 Unprocessable Content`: well-formed, but refused.
    pub fn unprocessable(message: impl Into<String>) -> Error {
        Error::new(422, message)
    }

    /// `429 Too Many Requests`.
    pub fn too_many_requests(message: impl Into<String>) -> Error {
        Error::new(429, message)
    }

    /// `500 Internal Server Error`; the message is logged, not shown.
    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(500, message)
    }

    /// `503 Service Unavailable`; the message is logged, not shown.
    pub fn unavailable(message: impl Into<String>) -> Error {
        Error::new(503, message)
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(error: E) -> Error {
        Error::internal(error.to_string())
    }
}

impl From<Error> for Response {
    /// The client-facing response for an error: its message for 4xx, a
    /// generic text for the rest.
    fn from(error: Error) -> Response {
        let reason = reason_phrase(error.status);
        let body = if (400..500).contains(&error.status) {
            format!("{} {reason}\n\n{}\n", error.status, error.message)
        } else {
            format!("{} {reason}\n", error.status)
        };
        Response::text(body).with_status(error.status)
    }
}

/// The standard reason phrase of a status code (`""` if it has none).
pub fn reason_phrase(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|code| code.canonical_reason())
        .unwrap_or("")
}
