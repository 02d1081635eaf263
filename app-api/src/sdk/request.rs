//! The request as handlers see it.

use std::{
    borrow::Cow,
    sync::{Arc, OnceLock},
};

use percent_encoding::utf8_percent_encode;
use serde::de::DeserializeOwned;

use super::{Error, Mount, Router, Session, router::Route, url::PATH as URL_PATH};
use crate::abi::AppRequest;

/// One request, with the mount it came through, the route it matched and
/// the route's parameters.
pub struct Request<'a> {
    raw: &'a AppRequest,
    mount: &'a Mount,
    router: &'a Router,
    /// `None` when no route matched (a 404 or 405 page).
    route: Option<&'a Route>,
    params: Vec<(String, String)>,
    /// Made on first use: most requests never look at the session.
    session: OnceLock<Session>,
    /// The multipart body, parsed on first use.
    multipart: OnceLock<Result<Arc<super::multipart::Multipart>, Error>>,
}

impl<'a> Request<'a> {
    pub(crate) fn new(
        raw: &'a AppRequest,
        mount: &'a Mount,
        router: &'a Router,
        route: Option<&'a Route>,
        params: Vec<(String, String)>,
    ) -> Request<'a> {
        Request {
            raw,
            mount,
            router,
            route,
            params,
            session: OnceLock::new(),
            multipart: OnceLock::new(),
        }
    }

    /// Where [`multipart`](Request::multipart) keeps its parse.
    pub(crate) fn parsed_multipart(
        &self,
    ) -> &OnceLock<Result<Arc<super::multipart::Multipart>, Error>> {
        &self.multipart
    }

    /// The endpoint of the route that matched, e.g. `auth.login`; `None`
    /// for a request no route takes (its 404 or 405 page).
    pub fn endpoint(&self) -> Option<&str> {
        self.route.map(Route::endpoint)
    }

    /// The blueprint of the matched route (`auth` for `auth.login`, the
    /// innermost for nested ones), if it came from one.
    pub fn blueprint(&self) -> Option<&str> {
        let endpoint = self.endpoint()?;
        let (blueprints, _) = endpoint.rsplit_once('.')?;
        Some(blueprints.rsplit('.').next().unwrap_or(blueprints))
    }

    /// The rule the request matched, prefixes included, e.g.
    /// `/<lang_code>/post/<slug>`.
    pub fn rule(&self) -> Option<&str> {
        self.route.map(Route::rule)
    }

    /// The session, loaded from the mount's cookie on first use (see
    /// [`Session`]). Every call gives the same session: a change made
    /// anywhere while handling the request is saved with the response.
    pub fn session(&self) -> Session {
        self.session
            .get_or_init(|| Session::from_request(self))
            .clone()
    }

    /// The session's cookie for the response, if the session changed, and
    /// `Vary: Cookie` if it was read (as Flask does).
    pub(crate) fn save_session(&self, response: super::Response) -> super::Response {
        match self.session.get() {
            Some(session) => session.save(self, response),
            None => response,
        }
    }

    /// What `url_for` fills in when not given: the parameters the route's
    /// blueprint prefixes matched, then the router's `url_default`s for
    /// the others.
    fn url_defaults(&self) -> Cow<'_, [(String, String)]> {
        let prefixed = self.route.map_or(0, Route::prefix_params);
        let prefixed = &self.params[..prefixed.min(self.params.len())];
        let functions = self.router.url_default_functions();
        if functions.is_empty() {
            return Cow::Borrowed(prefixed);
        }
        let mut defaults = prefixed.to_vec();
        for (name, value) in functions {
            if !defaults.iter().any(|(known, _)| known == name)
                && let Some(value) = value(self)
            {
                defaults.push((name.clone(), value));
            }
        }
        Cow::Owned(defaults)
    }

    /// The method, e.g. `GET`.
    pub fn method(&self) -> &str {
        &self.raw.method
    }

    /// The decoded path below the mount, starting with `/` (WSGI's `PATH_INFO`).
    pub fn path(&self) -> &str {
        &self.raw.path
    }

    /// The mount prefix the request came through: `""` at the root, else e.g.
    /// `/admin` (WSGI's `SCRIPT_NAME`).
    pub fn script_root(&self) -> &str {
        &self.raw.script_root
    }

    /// The mount this instance serves.
    pub fn mount(&self) -> &Mount {
        self.mount
    }

    /// The mount's name (Flask's `app.name`).
    pub fn app_name(&self) -> &str {
        &self.mount.name
    }

    /// The mount's `config` object from the mount table.
    pub fn config(&self) -> &serde_json::Value {
        &self.mount.config
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        &self.raw.scheme
    }

    /// The host the client asked for, e.g. `example.com:5000`.
    pub fn host(&self) -> &str {
        &self.raw.host
    }

    /// `scheme://host` (Flask's `request.host_url` without the slash).
    pub fn host_url(&self) -> String {
        let mut url = String::with_capacity(self.raw.scheme.len() + 3 + self.raw.host.len());
        self.push_host_url(&mut url);
        url
    }

    fn push_host_url(&self, url: &mut String) {
        url.push_str(&self.raw.scheme);
        url.push_str("://");
        url.push_str(&self.raw.host);
    }

    /// The full URL of this request, as Flask's `request.url`:
    /// `http://127.0.0.1:5000/admin/?x=1`.
    pub fn url(&self) -> String {
        let mut url = String::with_capacity(self.url_len());
        self.push_host_url(&mut url);
        url.extend(utf8_percent_encode(&self.raw.script_root, URL_PATH));
        url.extend(utf8_percent_encode(&self.raw.path, URL_PATH));
        if !self.raw.query.is_empty() {
            url.push('?');
            url.push_str(&self.raw.query);
        }
        url
    }

    /// The length of [`url`](Self::url) when its path needs no
    /// percent-encoding, the usual case (the URL is longer when it does):
    /// the room to reserve, so that the URL is made in one allocation.
    fn url_len(&self) -> usize {
        let raw = &self.raw;
        let query = if raw.query.is_empty() {
            0
        } else {
            1 + raw.query.len()
        };
        raw.scheme.len()
            + "://".len()
            + raw.host.len()
            + raw.script_root.len()
            + raw.path.len()
            + query
    }

    /// The raw query string, without `?`.
    pub fn query_string(&self) -> &str {
        &self.raw.query
    }

    /// The first value of a query parameter, decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.raw.query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    /// Every query parameter in order, decoded.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.raw.query.as_bytes())
            .into_owned()
            .collect()
    }

    /// A path parameter of the matched rule, as the type asked for:
    /// `req.param::<&str>("slug")`, `req.param::<i64>("id")`. A value that
    /// does not convert is a 404 (the URL names nothing); a name the rule
    /// does not have is a 500 naming it (a mistake in the app).
    ///
    /// `<int:id>` matches only what converts to `i64`, so
    /// `param::<i64>` never fails on it.
    pub fn param<'s, T: FromParam<'s>>(&'s self, name: &str) -> Result<T, Error> {
        let text = self
            .params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .ok_or_else(|| {
                Error::internal(format!(
                    "the rule {:?} has no parameter {name:?}",
                    self.rule().unwrap_or("(none matched)")
                ))
            })?;
        T::from_param(text).ok_or_else(Error::not_found)
    }

    /// Every path parameter of the matched rule, in order (Flask's
    /// `request.view_args`).
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The first value of a header (name in any case), if it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.raw
            .headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
            .and_then(|header| std::str::from_utf8(&header.value).ok())
    }

    /// Every header as `(name, raw value)`, in the order sent.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.raw
            .headers
            .iter()
            .map(|header| (header.name.as_str(), header.value.as_slice()))
    }

    /// The request body.
    pub fn body(&self) -> &[u8] {
        &self.raw.body
    }

    /// The client's address, `ip:port`.
    pub fn remote_addr(&self) -> &str {
        &self.raw.remote_addr
    }

    /// The id the host gave this request (sent back as `X-Request-Id`).
    pub fn request_id(&self) -> &str {
        &self.raw.request_id
    }

    /// An entry of the request's extensions list, by key.
    pub fn extension(&self, key: &str) -> Option<&str> {
        self.raw
            .extensions
            .iter()
            .find(|entry| entry.key == key)
            .map(|entry| entry.value.as_str())
    }

    /// The urlencoded form in the body (`application/x-www-form-urlencoded`).
    /// Any other content type gives an empty form, as in Flask.
    pub fn form(&self) -> Form {
        Form {
            pairs: if self.content_type_is("application/x-www-form-urlencoded") {
                form_urlencoded::parse(&self.raw.body)
                    .into_owned()
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// The URL path for `endpoint` in this mount, prefix included (Flask's
    /// `url_for`); parameters the rule does not use go into the query string.
    /// A parameter of a blueprint's prefix (`<lang_code>`) that is not given
    /// is this request's (Flask's `url_defaults`); a given one wins.
    ///
    /// Under `/admin`, `url_for("post", &[("slug", "hi")])` is `/admin/post/hi`.
    pub fn url_for(&self, endpoint: &str, params: &[(&str, &str)]) -> Result<String, Error> {
        // The request's script root, not the mount's prefix: behind a proxy
        // that removed an outer prefix (`/site`), it includes that too.
        self.router.url_for_under(
            &self.raw.script_root,
            endpoint,
            params,
            &self.url_defaults(),
        )
    }

    /// The URL path of a file in the mount's static folder, prefix included:
    /// `static_url("style.css")` is `/admin/static/style.css` under `/admin`.
    pub fn static_url(&self, file: &str) -> String {
        file_url(&self.raw.script_root, &self.mount.static_url_path, file)
    }

    /// The URL path of a stored upload (see
    /// [`Mount::store_upload`](super::Mount::store_upload)), prefix included.
    pub fn upload_url(&self, name: &str) -> String {
        file_url(&self.raw.script_root, &self.mount.uploads_url_path, name)
    }

    /// An owned URL builder for this request (`url_for`, `static_url`,
    /// `upload_url`), for templates and other code that outlives the borrow.
    pub fn urls(&self) -> super::Urls {
        super::Urls::new(
            Arc::clone(self.router.url_map()),
            &self.raw.script_root,
            &self.mount.static_url_path,
            &self.mount.uploads_url_path,
            self.url_defaults().into_owned(),
        )
    }

    /// The urlencoded form in the body as `T` (serde): a 400 naming the
    /// field that is missing or wrong, a 415 for another content type.
    ///
    /// ```
    /// use app_api::{prelude::*, sdk::testing::TestClient};
    /// #[derive(serde::Deserialize)]
    /// struct Comment { name: String, stars: u8 }
    ///
    /// let build = |_: &Mount| -> Result<Router, Error> {
    ///     Ok(Router::new().post("/", "comment", |req: &Request| {
    ///         let comment: Comment = req.form_as()?;
    ///         Ok(Response::text(format!("{} gave {}", comment.name, comment.stars)))
    ///     }))
    /// };
    /// let client = TestClient::new(build, Mount::new("blog", "/")).unwrap();
    /// let ok = client.post_form("/", &[("name", "Ann"), ("stars", "5")]);
    /// assert_eq!(ok.body_text(), "Ann gave 5");
    /// let wrong = client.post_form("/", &[("name", "Ann"), ("stars", "many")]);
    /// assert_eq!(wrong.status(), 400);
    /// assert!(wrong.body_text().contains("stars"), "{}", wrong.body_text());
    /// ```
    pub fn form_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        if !self.raw.body.is_empty() && !self.content_type_is("application/x-www-form-urlencoded") {
            return Err(Error::unsupported_media_type(
                "Send the form as application/x-www-form-urlencoded.",
            ));
        }
        from_pairs("form", &self.raw.body)
    }

    /// The query string as `T` (serde): a 400 naming the parameter that is
    /// missing or wrong.
    pub fn query_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        from_pairs("query", self.raw.query.as_bytes())
    }

    /// The JSON body as `T` (serde): a 400 naming the field that is
    /// missing or wrong (`items[2].price`), a 415 unless the content type
    /// is JSON.
    ///
    /// ```
    /// use app_api::{prelude::*, sdk::testing::TestClient};
    /// #[derive(serde::Deserialize)]
    /// struct Order { items: Vec<Item> }
    /// #[derive(serde::Deserialize)]
    /// struct Item { price: u32 }
    ///
    /// let build = |_: &Mount| -> Result<Router, Error> {
    ///     Ok(Router::new().post("/orders", "order", |req: &Request| {
    ///         let order: Order = req.json()?;
    ///         let total: u32 = order.items.iter().map(|item| item.price).sum();
    ///         Ok(Response::json(&serde_json::json!({ "total": total })).with_status(StatusCode::CREATED))
    ///     }))
    /// };
    /// let client = TestClient::new(build, Mount::new("shop", "/")).unwrap();
    /// let made = client.post_json("/orders", &serde_json::json!({"items": [{"price": 3}, {"price": 4}]}));
    /// assert_eq!((made.status(), made.body_text().as_str()), (201, r#"{"total":7}"#));
    /// let wrong = client.post_json("/orders", &serde_json::json!({"items": [{"price": 3}, {"price": "4"}]}));
    /// assert_eq!(wrong.status(), 400);
    /// assert!(wrong.body_text().contains("items[1].price"), "{}", wrong.body_text());
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let json = self.content_type_essence().is_some_and(|mime| {
            mime.eq_ignore_ascii_case("application/json")
                || mime
                    .get(mime.len().saturating_sub(5)..)
                    .is_some_and(|suffix| suffix.eq_ignore_ascii_case("+json"))
        });
        if !json {
            return Err(Error::unsupported_media_type(
                "Send the body as application/json.",
            ));
        }
        let mut deserializer = serde_json::Deserializer::from_slice(&self.raw.body);
        serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|error| refused("JSON body", &error))
    }

    /// The content type without its parameters, e.g. `text/html`.
    fn content_type_essence(&self) -> Option<&str> {
        self.header("content-type")
            .and_then(|value| value.split(';').next())
            .map(str::trim)
    }

    /// Whether the content type's essence is `mime`.
    fn content_type_is(&self, mime: &str) -> bool {
        self.content_type_essence()
            .is_some_and(|essence| essence.eq_ignore_ascii_case(mime))
    }
}

/// `T` from urlencoded pairs, or a 400 naming the field.
fn from_pairs<T: DeserializeOwned>(what: &str, text: &[u8]) -> Result<T, Error> {
    let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(text));
    serde_path_to_error::deserialize(deserializer).map_err(|error| refused(what, &error))
}

/// The 400 for a value serde refused: the field's path, when it has one,
/// and serde's reason.
fn refused<E: std::fmt::Display>(what: &str, error: &serde_path_to_error::Error<E>) -> Error {
    match error.path().to_string().as_str() {
        "." => Error::bad_request(format!("The {what} is not right: {}.", error.inner())),
        path => Error::bad_request(format!(
            "The {what}'s field {path:?} is not right: {}.",
            error.inner()
        )),
    }
}

/// What [`Request::param`] converts a path parameter to.
pub trait FromParam<'a>: Sized {
    /// The value, or `None` when the text is not one.
    fn from_param(text: &'a str) -> Option<Self>;
}

impl<'a> FromParam<'a> for &'a str {
    fn from_param(text: &'a str) -> Option<&'a str> {
        Some(text)
    }
}

impl FromParam<'_> for String {
    fn from_param(text: &str) -> Option<String> {
        Some(text.to_owned())
    }
}

macro_rules! from_param_by_parse {
    ($($type:ty),*) => {$(
        impl FromParam<'_> for $type {
            fn from_param(text: &str) -> Option<$type> {
                text.parse().ok()
            }
        }
    )*};
}

from_param_by_parse!(i8, i16, i32, i64, u8, u16, u32, u64, usize, isize);

/// `{script_root}{folder}/{file}`, the file percent-encoded.
pub(crate) fn file_url(script_root: &str, folder: &str, file: &str) -> String {
    let file: Cow<'_, str> = utf8_percent_encode(file.trim_start_matches('/'), URL_PATH).into();
    format!("{script_root}{folder}/{file}")
}

/// A decoded urlencoded form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    /// A form with these fields, in order.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Form {
        Form { pairs }
    }

    /// The first value of a field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of a field, in order.
    pub fn get_all<'f>(&'f self, name: &'f str) -> impl Iterator<Item = &'f str> {
        self.pairs
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every field in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

#[cfg(test)]
mod tests {
    use crate::sdk::{Mount, Response, Router, Routes, testing::TestClient};

    use super::Request;

    #[test]
    fn urls_are_made_in_the_room_reserved_for_them_unless_the_path_is_encoded() {
        // a path to encode (space, é) makes the URL longer than `url_len`
        for (path, url, encoded) in [
            ("/hello", "http://localhost/blog/hello?q=1", false),
            ("/a b/é", "http://localhost/blog/a%20b/%C3%A9?q=1", true),
        ] {
            let client = TestClient::new(
                |_: &Mount| {
                    Ok(Router::new().get("/<path:rest>", "any", |req: &Request| {
                        let url = req.url();
                        Ok(Response::text(format!("{url} {}", req.url_len())))
                    }))
                },
                Mount::new("blog", "/blog"),
            )
            .unwrap();
            let response = client.get(&format!("{path}?q=1"));
            let body = response.body_text();
            let (made, room) = body.split_once(' ').unwrap();
            assert_eq!(made, url);
            let room: usize = room.parse().unwrap();
            if encoded {
                assert!(made.len() > room, "{path}: {made} within {room}");
            } else {
                assert_eq!(made.len(), room, "{path}");
            }
        }
    }
}
