//! Calling an app's handlers in a unit test, without a host or a library
//! (Flask's `app.test_client()`).
//!
//! ```
//! use app_api::{prelude::*, sdk::testing::TestClient};
//!
//! fn build(_mount: &Mount) -> Result<Router, Error> {
//!     Ok(Router::new().get("/", "index", |req: &Request| {
//!         Ok(Response::text(format!("hi from {}", req.url_for("index", &[])?)))
//!     }))
//! }
//!
//! let client = TestClient::new(build, Mount::new("hello", "/hello")).unwrap();
//! let response = client.get("/");
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.body_text(), "hi from /hello/");
//! assert_eq!(client.get("/missing").status(), 404);
//! ```

use abi_stable::std_types::RVec;

use super::{Error, Mount, Response, Router, export::respond};
use crate::abi::{AppRequest, Header};

/// An app built for one mount, answering requests in-process.
pub struct TestClient {
    mount: Mount,
    router: Router,
}

impl TestClient {
    /// Builds the app with its init function for `mount`.
    pub fn new(
        init: impl FnOnce(&Mount) -> Result<Router, Error>,
        mount: Mount,
    ) -> Result<TestClient, Error> {
        let router = init(&mount)?;
        router.check()?;
        Ok(TestClient { mount, router })
    }

    /// `GET` of a path below the mount, with an optional `?query`.
    pub fn get(&self, target: &str) -> Response {
        self.request("GET", target, &[], b"")
    }

    /// Any request; errors become the responses the host would send.
    pub fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let request = AppRequest {
            method: method.into(),
            scheme: "http".into(),
            host: "localhost".into(),
            script_root: self.mount.prefix.as_str().into(),
            path: path.into(),
            query: query.into(),
            headers: headers
                .iter()
                .map(|(name, value)| Header {
                    name: name.to_ascii_lowercase().into(),
                    value: RVec::from(value.as_bytes()),
                })
                .collect(),
            body: RVec::from(body),
            remote_addr: "127.0.0.1:0".into(),
            request_id: "test".into(),
            extensions: RVec::new(),
        };
        respond(&self.router, &self.mount, &request).unwrap_or_else(Response::from)
    }
}
