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
//! ```
//! use app_api::prelude::*;
//!
//! fn visit(req: &Request) -> Result<Response, Error> {
//!     let mut session = req.session();
//!     let visits = session.get::<u64>("visits").unwrap_or(0) + 1;
//!     session.insert("visits", visits);
//!     Ok(Response::text(format!("visit {visits}")).with_session(req, &session))
//! }
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use cookie::{Cookie, CookieJar, Key, SameSite};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use super::{Error, Request, Response};

/// How long a session stays valid after it was last written.
pub const MAX_AGE: Duration = Duration::from_secs(31 * 24 * 3600);

/// The key under which the session keeps its CSRF token.
const CSRF_KEY: &str = "_csrf";
/// The key under which the session keeps when it was written (Unix seconds).
const ISSUED_KEY: &str = "_t";

/// One request's session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Session {
    data: Map<String, Value>,
    /// Whether the request brought a session cookie (so clearing must delete it).
    had_cookie: bool,
    modified: bool,
}

impl Session {
    /// A value, if the session has it with the right type.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.data
            .get(key)
            .and_then(|value| serde_json::from_value(value.clone()).ok())
    }

    /// Sets a value.
    pub fn insert(&mut self, key: &str, value: impl Serialize) {
        if let Ok(value) = serde_json::to_value(value) {
            self.data.insert(key.to_owned(), value);
            self.modified = true;
        }
    }

    /// Removes a value.
    pub fn remove(&mut self, key: &str) {
        if self.data.remove(key).is_some() {
            self.modified = true;
        }
    }

    /// Empties the session (logging out). The CSRF token goes too.
    pub fn clear(&mut self) {
        if !self.data.is_empty() {
            self.data.clear();
            self.modified = true;
        }
    }

    /// Whether a handler changed the session.
    pub fn is_modified(&self) -> bool {
        self.modified
    }

    /// The session's CSRF token, created on first use: put it in every form
    /// as the `csrf_token` field.
    pub fn csrf_token(&mut self) -> String {
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

impl Request<'_> {
    /// The session from the mount's cookie; empty when there is none or it
    /// was tampered with, signed by another app or expired.
    pub fn session(&self) -> Session {
        Session::from_cookies(
            self.mount(),
            self.headers()
                .filter(|(header, _)| *header == "cookie")
                .map(|(_, value)| value),
        )
    }
}

impl Session {
    /// The session the mount's cookie holds among `Cookie` header values.
    pub(crate) fn from_cookies<'h>(
        mount: &super::Mount,
        cookie_headers: impl Iterator<Item = &'h [u8]>,
    ) -> Session {
        let name = &mount.session_cookie;
        let Some(key) = key(&mount.secret) else {
            return Session::default();
        };
        let mut jar = CookieJar::new();
        for header in cookie_headers {
            let Ok(text) = std::str::from_utf8(header) else {
                continue;
            };
            for cookie in Cookie::split_parse(text).flatten() {
                if cookie.name() == name {
                    jar.add_original(cookie.into_owned());
                }
            }
        }
        let had_cookie = jar.get(name).is_some();
        let data = jar
            .signed(&key)
            .get(name)
            .and_then(|cookie| URL_SAFE_NO_PAD.decode(cookie.value()).ok())
            .and_then(|json| serde_json::from_slice::<Map<String, Value>>(&json).ok())
            .filter(|data| {
                data.get(ISSUED_KEY)
                    .and_then(Value::as_u64)
                    .is_some_and(|issued| now().saturating_sub(issued) <= MAX_AGE.as_secs())
            })
            .unwrap_or_default();
        Session {
            data,
            had_cookie,
            modified: false,
        }
    }
}

impl Response {
    /// Saves a session a handler changed: sets the signed cookie, or
    /// deletes it when the session was emptied. Unchanged sessions add
    /// nothing.
    pub fn with_session(self, req: &Request<'_>, session: &Session) -> Response {
        if !session.modified {
            return self;
        }
        let Some(key) = key(&req.mount().secret) else {
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
        if session.data.is_empty() {
            if !session.had_cookie {
                return self;
            }
            cookie.make_removal();
            return self.with_header("set-cookie", cookie.to_string());
        }
        let mut data = session.data.clone();
        data.insert(ISSUED_KEY.to_owned(), now().into());
        let json = serde_json::to_vec(&data).unwrap_or_default();
        cookie.set_value(URL_SAFE_NO_PAD.encode(json));
        let mut jar = CookieJar::new();
        jar.signed_mut(&key).add(cookie);
        match jar.get(&name) {
            Some(signed) => self.with_header("set-cookie", signed.to_string()),
            None => self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_are_checked() {
        let mut session = Session::default();
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
