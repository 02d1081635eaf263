//! Signed cookie sessions and CSRF tokens (Flask's `session` and
//! Flask-WTF's `CSRFProtect`, in small).
//!
//! The session is a JSON object kept in the mount's session cookie
//! (`session_cookie` in the mount table), signed with HMAC-SHA256 under the
//! key the host derived for this mount only: a cookie signed for one app is
//! worthless to another, and a changed or forged cookie reads as an empty
//! session ("logged out"). The cookie is `HttpOnly`, `SameSite=Lax`, scoped
//! to the mount's prefix (`Path=/admin`, or `/` at the root) and `Secure`
//! when the request came over HTTPS. Sessions older than 31 days (Flask's
//! `PERMANENT_SESSION_LIFETIME`) are refused.
//!
//! A handler reads and changes the session through
//! [`Request::session`]; every call gives the same session, and a changed
//! session is saved with the response, whatever the response (Flask's
//! `session`): nothing is lost for want of a save.
//!
//! ```
//! use app_api::{prelude::*, sdk::testing::TestClient};
//!
//! fn visit(req: &Request) -> Result<Response, Error> {
//!     let session = req.session();
//!     let visits = session.get::<u64>("visits").unwrap_or(0) + 1;
//!     session.insert("visits", visits);
//!     Ok(Response::text(format!("visit {visits}")))
//! }
//!
//! let build = |_: &Mount| -> Result<Router, Error> { Ok(Router::new().get("/", "visit", visit)) };
//! let client = TestClient::new(build, Mount::new("blog", "/")).unwrap();
//! assert_eq!(client.get("/").body_text(), "visit 1");
//! assert_eq!(client.get("/").body_text(), "visit 2");
//! ```

use std::{
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use cookie::{Cookie, CookieJar, Key, SameSite};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use super::{Error, Mount, Request, Response};

/// How long a session stays valid after it was last written.
pub const MAX_AGE: Duration = Duration::from_secs(31 * 24 * 3600);

/// The key under which the session keeps its CSRF token.
const CSRF_KEY: &str = "_csrf";
/// The key under which the session keeps when it was written (Unix seconds).
const ISSUED_KEY: &str = "_t";
/// The key under which the session keeps flashed messages.
const FLASH_KEY: &str = "_flashes";
/// The most flashed messages kept until a page shows them: a client that
/// never follows the redirects that would show them (a script posting
/// forms) would otherwise grow the cookie past what browsers keep (4 KB)
/// and proxies accept (nginx's 4 KB `proxy_buffer_size`).
const MAX_FLASHES: usize = 8;

/// One request's session: a handle, cheap to clone, every clone the same
/// session. The cookie is verified on first use only.
#[derive(Clone, Default)]
pub struct Session {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("data", &self.with_state(|state| state.data.clone()))
            .finish()
    }
}

#[derive(Default)]
struct Shared {
    /// The mount's signing key; `None` when the host gave no secret.
    key: Option<Key>,
    /// Keys of the host's earlier secrets: a cookie they signed verifies,
    /// and is signed again with the current key.
    fallbacks: Vec<Key>,
    /// The raw (signed) value of the mount's session cookie, if sent.
    cookie: Option<String>,
    /// `None` until first used.
    state: Mutex<Option<State>>,
}

#[derive(Default)]
struct State {
    data: Map<String, Value>,
    modified: bool,
}

impl Session {
    /// Runs `body` on the state, verified from the cookie on first use.
    /// The lock is held only inside: nothing a caller does can deadlock.
    fn with_state<R>(&self, body: impl FnOnce(&mut State) -> R) -> R {
        let mut guard: MutexGuard<'_, Option<State>> = self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let state = guard.get_or_insert_with(|| {
            let cookie = self.shared.cookie.as_deref();
            let current = verified(self.shared.key.as_ref(), cookie);
            if !current.is_empty() || cookie.is_none() {
                return State {
                    data: current,
                    modified: false,
                };
            }
            // signed with an earlier key: accepted, and signed anew
            let earlier = self
                .shared
                .fallbacks
                .iter()
                .map(|key| verified(Some(key), cookie))
                .find(|data| !data.is_empty())
                .unwrap_or_default();
            State {
                modified: !earlier.is_empty(),
                data: earlier,
            }
        });
        body(state)
    }

    /// A value, if the session has it with the right type.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.with_state(|state| {
            state
                .data
                .get(key)
                .and_then(|value| T::deserialize(value).ok())
        })
    }

    /// Sets a value.
    pub fn insert(&self, key: &str, value: impl Serialize) {
        if let Ok(value) = serde_json::to_value(value) {
            self.with_state(|state| {
                state.data.insert(key.to_owned(), value);
                state.modified = true;
            });
        }
    }

    /// Removes a value.
    pub fn remove(&self, key: &str) {
        self.with_state(|state| {
            if state.data.remove(key).is_some() {
                state.modified = true;
            }
        });
    }

    /// Empties the session (logging out). The CSRF token goes too.
    pub fn clear(&self) {
        self.with_state(|state| {
            if !state.data.is_empty() {
                state.data.clear();
                state.modified = true;
            }
        });
    }

    /// Whether the session was changed while handling this request.
    pub fn is_modified(&self) -> bool {
        self.with_state(|state| state.modified)
    }

    /// Keeps a message for the next page the person sees (Flask's
    /// `flash`); the newest few when no page showed the earlier ones.
    pub fn flash(&self, message: &str) {
        let mut flashes: Vec<String> = self.get(FLASH_KEY).unwrap_or_default();
        flashes.push(message.to_owned());
        let excess = flashes.len().saturating_sub(MAX_FLASHES);
        flashes.drain(..excess);
        self.insert(FLASH_KEY, flashes);
    }

    /// The flashed messages, removed from the session (Flask's
    /// `get_flashed_messages`).
    pub fn take_flashes(&self) -> Vec<String> {
        let flashes: Vec<String> = self.get(FLASH_KEY).unwrap_or_default();
        if !flashes.is_empty() {
            self.remove(FLASH_KEY);
        }
        flashes
    }

    /// The session's CSRF token, created on first use: put it in every form
    /// as the `csrf_token` field.
    pub fn csrf_token(&self) -> String {
        if let Some(token) = self.get::<String>(CSRF_KEY) {
            return token;
        }
        let token = random_token();
        self.insert(CSRF_KEY, &token);
        token
    }

    /// The session's CSRF token if it has one already.
    pub(crate) fn existing_csrf_token(&self) -> Option<String> {
        self.get::<String>(CSRF_KEY)
    }

    /// Checks a submitted CSRF token against the session's (in constant
    /// time): `400` when it is missing or does not match.
    pub fn verify_csrf(&self, submitted: Option<&str>) -> Result<(), Error> {
        let submitted = submitted
            .filter(|token| !token.is_empty())
            .ok_or_else(|| Error::bad_request("The CSRF token is missing."))?;
        let expected = self
            .get::<String>(CSRF_KEY)
            .ok_or_else(|| Error::bad_request("The CSRF session token is missing."))?;
        if bool::from(expected.as_bytes().ct_eq(submitted.as_bytes())) {
            Ok(())
        } else {
            Err(Error::bad_request("The CSRF tokens do not match."))
        }
    }
}

/// A before-request hook that checks every unsafe method (`POST`, `PUT`,
/// `PATCH`, `DELETE`) for the session's CSRF token (Flask-WTF's
/// `CSRFProtect`): in the `X-CSRFToken` header, or the `csrf_token` field
/// of a urlencoded or multipart form. A 400 otherwise.
///
/// ```
/// use app_api::{prelude::*, sdk::{session::csrf_protect, testing::TestClient}};
/// let build = |_: &Mount| -> Result<Router, Error> {
///     Ok(Router::new()
///         .before_request(csrf_protect)
///         .get("/", "form", |req: &Request| Ok(Response::text(req.session().csrf_token())))
///         .post("/", "send", |_: &Request| Ok(Response::text("sent"))))
/// };
/// let client = TestClient::new(build, Mount::new("blog", "/")).unwrap();
/// let token = client.get("/").body_text();
/// assert_eq!(client.post_form("/", &[("csrf_token", &token)]).body_text(), "sent");
/// assert_eq!(client.post_form("/", &[("csrf_token", "forged")]).status(), 400);
/// assert_eq!(client.post_form("/", &[]).status(), 400);
/// ```
pub fn csrf_protect(req: &Request<'_>) -> Result<Option<Response>, Error> {
    if matches!(req.method(), "GET" | "HEAD" | "OPTIONS" | "TRACE") {
        return Ok(None);
    }
    let submitted = match req.header("x-csrftoken") {
        Some(token) => Some(token.to_owned()),
        None if req.header("content-type").is_some_and(|value| {
            value
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        }) =>
        {
            req.multipart()?.form.get("csrf_token").map(str::to_owned)
        }
        None => req.form().get("csrf_token").map(str::to_owned),
    };
    req.session().verify_csrf(submitted.as_deref())?;
    Ok(None)
}

/// 32 random bytes, URL-safe base64.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The signing key for a mount's secret, if the host gave one.
fn key(secret: &[u8]) -> Option<Key> {
    Key::try_from(secret).ok()
}

/// The session data a signed cookie value holds: empty when it is
/// missing, tampered with, signed by another app or expired.
fn verified(key: Option<&Key>, cookie: Option<&str>) -> Map<String, Value> {
    let (Some(key), Some(cookie)) = (key, cookie) else {
        return Map::new();
    };
    let mut jar = CookieJar::new();
    jar.add_original(Cookie::new("s", cookie.to_owned()));
    jar.signed(key)
        .get("s")
        .and_then(|cookie| URL_SAFE_NO_PAD.decode(cookie.value()).ok())
        .and_then(|json| serde_json::from_slice::<Map<String, Value>>(&json).ok())
        .filter(|data| {
            data.get(ISSUED_KEY)
                .and_then(Value::as_u64)
                .is_some_and(|issued| now().saturating_sub(issued) <= MAX_AGE.as_secs())
        })
        .unwrap_or_default()
}

impl Session {
    /// The request's session, unverified until used.
    pub(crate) fn from_request(req: &Request<'_>) -> Session {
        Session::from_cookies(
            req.mount(),
            req.headers()
                .filter(|(header, _)| *header == "cookie")
                .map(|(_, value)| value),
        )
    }

    /// The session the mount's cookie holds among `Cookie` header values.
    pub(crate) fn from_cookies<'h>(
        mount: &Mount,
        cookie_headers: impl Iterator<Item = &'h [u8]>,
    ) -> Session {
        let name = &mount.session_cookie;
        let cookie = cookie_headers
            .filter_map(|header| std::str::from_utf8(header).ok())
            .flat_map(|text| Cookie::split_parse(text).flatten())
            .find(|cookie| cookie.name() == name)
            .map(|cookie| cookie.value().to_owned());
        Session {
            shared: Arc::new(Shared {
                key: key(&mount.secret),
                fallbacks: mount
                    .secret_fallbacks
                    .iter()
                    .filter_map(|secret| key(secret))
                    .collect(),
                cookie,
                state: Mutex::new(None),
            }),
        }
    }

    /// `response` with what the session needs: `Vary: Cookie` once the
    /// session was read, and the signed cookie once it changed (a removal
    /// when it was emptied).
    pub(crate) fn save(&self, req: &Request<'_>, response: Response) -> Response {
        let guard = self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(state) = guard.as_ref() else {
            return response;
        };
        let response = response.with_header("vary", "Cookie");
        if !state.modified {
            return response;
        }
        let Some(key) = &self.shared.key else {
            return Error::internal("the host gave this mount no secret to sign sessions with")
                .into();
        };
        let path = match req.script_root() {
            "" => "/".to_owned(),
            root => root.to_owned(),
        };
        let name = req.mount().session_cookie.clone();
        let mut cookie = Cookie::build((name.clone(), String::new()))
            .path(path)
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(req.scheme() == "https")
            .build();
        if state.data.is_empty() {
            if self.shared.cookie.is_none() {
                return response;
            }
            cookie.make_removal();
            return response.with_header("set-cookie", cookie.to_string());
        }
        let mut data = state.data.clone();
        data.insert(ISSUED_KEY.to_owned(), now().into());
        let json = serde_json::to_vec(&data).unwrap_or_default();
        cookie.set_value(URL_SAFE_NO_PAD.encode(json));
        let mut jar = CookieJar::new();
        jar.signed_mut(key).add(cookie);
        match jar.get(&name) {
            Some(signed) => response.with_header("set-cookie", signed.to_string()),
            None => response,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::{Router, Routes, testing::TestClient};

    /// An app that remembers a name and tells it, for `mount`.
    fn remembering(mount: Mount) -> TestClient {
        let build = |_: &Mount| -> Result<Router, Error> {
            Ok(Router::new()
                .get("/set", "set", |req: &Request| {
                    req.session().insert("name", "ann");
                    Ok(Response::text("set"))
                })
                .get("/get", "get", |req: &Request| {
                    Ok(Response::text(
                        req.session().get::<String>("name").unwrap_or_default(),
                    ))
                }))
        };
        TestClient::new(build, mount).unwrap()
    }

    #[test]
    fn cookies_signed_with_an_earlier_key_verify_and_are_signed_anew() {
        let old = Mount::new("blog", "/");
        let cookie = remembering(old.clone())
            .get("/set")
            .header("set-cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let mut rotated = Mount::new("blog", "/");
        assert_ne!(rotated.secret, old.secret);
        // without the old key: logged out
        let stranger = remembering(rotated.clone());
        let read = stranger.request("GET", "/get", &[("cookie", &cookie)], b"");
        assert_eq!(read.body_text(), "");
        // with it as a fallback: read, and signed again with the new key
        rotated.secret_fallbacks = vec![old.secret.clone()];
        let client = remembering(rotated.clone());
        let read = client.request("GET", "/get", &[("cookie", &cookie)], b"");
        assert_eq!(read.body_text(), "ann");
        let resigned = read.header("set-cookie").expect("signed anew").to_owned();
        let resigned = resigned.split(';').next().unwrap();
        rotated.secret_fallbacks.clear();
        let after = remembering(rotated);
        let read = after.request("GET", "/get", &[("cookie", resigned)], b"");
        assert_eq!(read.body_text(), "ann", "the new cookie needs no fallback");
    }

    #[test]
    fn flashes_nobody_reads_are_kept_to_the_newest_few() {
        let session = Session::default();
        for n in 0..100 {
            session.flash(&format!("message {n}"));
        }
        let kept = session.take_flashes();
        assert_eq!(kept.len(), MAX_FLASHES);
        assert_eq!(kept.last().map(String::as_str), Some("message 99"));
        assert!(session.take_flashes().is_empty());
    }

    #[test]
    fn csrf_tokens_are_checked() {
        let session = Session::default();
        assert_eq!(
            session.verify_csrf(Some("x")).unwrap_err().status(),
            400,
            "no token in the session"
        );
        let token = session.csrf_token();
        assert_eq!(token, session.csrf_token(), "stable once made");
        assert!(session.verify_csrf(Some(&token)).is_ok());
        assert!(
            session
                .verify_csrf(None)
                .unwrap_err()
                .message()
                .contains("missing")
        );
        assert!(
            session
                .verify_csrf(Some(""))
                .unwrap_err()
                .message()
                .contains("missing")
        );
        assert!(
            session
                .verify_csrf(Some("nope"))
                .unwrap_err()
                .message()
                .contains("match")
        );
    }
}
