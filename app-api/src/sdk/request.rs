//! The request as handlers see it.

use std::{borrow::Cow, sync::Arc};

use percent_encoding::utf8_percent_encode;

use super::{Error, Mount, Router, url::PATH as URL_PATH};
use crate::abi::AppRequest;

/// One request, with the mount it came through and the matched parameters.
pub struct Request<'a> {
    raw: &'a AppRequest,
    mount: &'a Mount,
    router: &'a Router,
    params: Vec<(String, String)>,
}

impl<'a> Request<'a> {
    pub(crate) fn new(
        raw: &'a AppRequest,
        mount: &'a Mount,
        router: &'a Router,
        params: Vec<(String, String)>,
    ) -> Request<'a> {
        Request {
            raw,
            mount,
            router,
            params,
        }
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

    /// A path parameter of the matched rule (`<slug>` in `/post/<slug>`).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
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
        let urlencoded = self
            .header("content-type")
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| {
                mime.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        Form {
            pairs: if urlencoded {
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
    ///
    /// Under `/admin`, `url_for("post", &[("slug", "hi")])` is `/admin/post/hi`.
    pub fn url_for(&self, endpoint: &str, params: &[(&str, &str)]) -> Result<String, Error> {
        // The request's script root, not the mount's prefix: behind a proxy
        // that removed an outer prefix (`/site`), it includes that too.
        self.router
            .url_for_under(&self.raw.script_root, endpoint, params)
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
        )
    }
}

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
    use crate::sdk::{Mount, Response, Router, testing::TestClient};

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
