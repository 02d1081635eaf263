//! Calling an app's handlers in a unit test, without a host or a library
//! (Flask's `app.test_client()`), with a cookie jar like a browser's.
//!
//! With app-api's `testing` feature, which an app turns on for its tests
//! only:
//!
//! ```toml
//! [dev-dependencies]
//! app-api = { version = "3", features = ["testing"] }
//! ```
//!
//! the mount also gets what the host gives it: databases (each a temporary
//! SQLite file behind the service the host itself runs, so the same SQL
//! rules, refusals and migrations apply; any name may be opened) and
//! stored uploads in a temporary folder. The app library itself never links
//! SQLite: the feature only builds into the app's test binary.
//!
//! ```
//! use app_api::{prelude::*, sdk::testing::TestClient};
//!
//! fn build(_mount: &Mount) -> Result<Router, Error> {
//!     Ok(Router::new()
//!         .get("/", "index", |req: &Request| {
//!             // made and saved in the session cookie
//!             let _token = req.session().csrf_token();
//!             Ok(Response::text(format!("hi from {}", req.url_for("index", &[])?)))
//!         })
//!         .post("/", "post", |req: &Request| {
//!             req.session().verify_csrf(req.form().get("csrf_token"))?;
//!             Ok(Response::text("posted"))
//!         }))
//! }
//!
//! let client = TestClient::new(build, Mount::new("hello", "/hello")).unwrap();
//! let response = client.get("/");
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.body_text(), "hi from /hello/");
//! assert_eq!(client.get("/missing").status(), 404);
//! // the session cookie came back, so the form's token is known
//! let token = client.csrf_token().unwrap();
//! assert_eq!(client.post_form("/", &[("csrf_token", &token)]).status(), 200);
//! assert_eq!(client.post_form("/", &[("csrf_token", "forged")]).status(), 400);
//! ```

use std::{
    collections::BTreeMap,
    sync::{Mutex, PoisonError},
};

use abi_stable::std_types::RVec;
use cookie::Cookie;

use super::{Error, Mount, Response, Router, Session};
use crate::abi::{AppRequest, Header};

/// An app built for one mount, answering requests in-process.
pub struct TestClient {
    mount: Mount,
    router: Router,
    /// Cookies the responses set, by name, sent with every request (all of
    /// them are below the mount, inside every cookie's path).
    cookies: Mutex<BTreeMap<String, String>>,
}

impl TestClient {
    /// Builds the app with its init function for `mount`. With the
    /// `testing` feature, a mount without host services gets test ones
    /// (databases, uploads) first.
    pub fn new(
        init: impl FnOnce(&Mount) -> Result<Router, Error>,
        #[allow(unused_mut)] mut mount: Mount,
    ) -> Result<TestClient, Error> {
        #[cfg(feature = "testing")]
        if mount.host.is_none() {
            mount.host = Some(services::for_mount(&mount.name)?);
        }
        let router = init(&mount)?;
        router.check()?;
        Ok(TestClient {
            mount,
            router,
            cookies: Mutex::new(BTreeMap::new()),
        })
    }

    /// The mount the app was built for (with the test services, if any).
    pub fn mount(&self) -> &Mount {
        &self.mount
    }

    /// `GET` of a path below the mount, with an optional `?query`.
    pub fn get(&self, target: &str) -> Response {
        self.request("GET", target, &[], b"")
    }

    /// `POST` of a urlencoded form.
    pub fn post_form(&self, target: &str, fields: &[(&str, &str)]) -> Response {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.request(
            "POST",
            target,
            &[("content-type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
    }

    /// `POST` of `value` as JSON.
    pub fn post_json(&self, target: &str, value: &impl serde::Serialize) -> Response {
        let body = serde_json::to_vec(value).unwrap_or_default();
        self.request(
            "POST",
            target,
            &[("content-type", "application/json")],
            &body,
        )
    }

    /// Any request, with the cookies earlier responses set; errors become
    /// the responses the host would send.
    pub fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        // decoded, as the host hands paths to apps
        let path = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
        let mut all: Vec<Header> = headers
            .iter()
            .map(|(name, value)| Header {
                name: name.to_ascii_lowercase().into(),
                value: RVec::from(value.as_bytes()),
            })
            .collect();
        if let Some(cookies) = self.cookie_header() {
            all.push(Header {
                name: "cookie".into(),
                value: RVec::from(cookies.into_bytes()),
            });
        }
        let request = AppRequest {
            method: method.into(),
            scheme: "http".into(),
            host: "localhost".into(),
            script_root: self.mount.prefix.as_str().into(),
            path: path.as_ref().into(),
            query: query.into(),
            headers: all.into(),
            body: RVec::from(body),
            remote_addr: "127.0.0.1:0".into(),
            request_id: "test".into(),
            extensions: RVec::new(),
        };
        let response = self
            .router
            .dispatch(&self.mount, &request)
            .unwrap_or_else(Response::from);
        self.keep_cookies(&response);
        response
    }

    /// The session the jar's cookie holds now, as the app would read it.
    pub fn session(&self) -> Session {
        let header = self.cookie_header().unwrap_or_default();
        Session::from_cookies(&self.mount, std::iter::once(header.as_bytes()))
    }

    /// The CSRF token of the current session, once a page made one (put it
    /// in a form as `csrf_token`).
    pub fn csrf_token(&self) -> Option<String> {
        self.session().existing_csrf_token()
    }

    fn jar(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.cookies.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cookie_header(&self) -> Option<String> {
        let jar = self.jar();
        (!jar.is_empty()).then(|| {
            jar.iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    fn keep_cookies(&self, response: &Response) {
        let mut jar = self.jar();
        for (_, value) in response
            .headers()
            .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        {
            let Ok(cookie) = Cookie::parse(String::from_utf8_lossy(value).into_owned()) else {
                continue;
            };
            let removed = cookie.max_age().is_some_and(|age| age.is_zero())
                || cookie
                    .expires_datetime()
                    .is_some_and(|at| at <= cookie::time::OffsetDateTime::now_utc());
            if removed {
                jar.remove(cookie.name());
            } else {
                jar.insert(cookie.name().to_owned(), cookie.value().to_owned());
            }
        }
    }
}

/// What a host offers, for a unit test: databases as temporary SQLite files
/// through the host's own database service, and stored uploads.
#[cfg(feature = "testing")]
mod services {
    use std::{
        collections::BTreeMap,
        panic::{AssertUnwindSafe, catch_unwind},
        sync::{Arc, Mutex, PoisonError},
    };

    use abi_stable::{
        sabi_trait::TD_Opaque,
        std_types::{RArc, RResult, RSlice, RStr, RString, RVec},
    };
    use host_database::{Database, Location};

    use crate::{
        abi::{
            DbError, DbMigration, DbRows, DbStatement, DbValue, Extension, Host, Host_TO, level,
        },
        sdk::{Error, Services},
    };

    /// The services of one test mount.
    struct TestServices {
        folder: tempfile::TempDir,
        mount: String,
        databases: Mutex<BTreeMap<String, Arc<Database>>>,
    }

    /// Test services for the mount `name`: its default database is named
    /// after it, like a mount that lists none.
    pub(super) fn for_mount(name: &str) -> Result<Services, Error> {
        let folder = tempfile::tempdir()
            .map_err(|error| Error::internal(format!("no temporary folder: {error}")))?;
        let services = TestServices {
            folder,
            mount: name.to_owned(),
            databases: Mutex::new(BTreeMap::new()),
        };
        Ok(Services(Arc::new(Host_TO::from_ptr(
            RArc::new(services),
            TD_Opaque,
        ))))
    }

    fn guarded<T, E>(
        error: impl FnOnce() -> E,
        body: impl FnOnce() -> Result<T, E>,
    ) -> RResult<T, E> {
        catch_unwind(AssertUnwindSafe(body))
            .unwrap_or_else(|_| Err(error()))
            .into()
    }

    fn db_panic() -> DbError {
        DbError {
            kind: "other".into(),
            message: "the test database service panicked".into(),
        }
    }

    impl TestServices {
        fn database(&self, name: &str) -> Result<Arc<Database>, DbError> {
            let name = if name.is_empty() { &self.mount } else { name };
            let mut databases = self
                .databases
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(database) = databases.get(name) {
                return Ok(Arc::clone(database));
            }
            let path = self.folder.path().join(format!("{name}.db"));
            let database = Arc::new(
                Database::open(name, &Location::Sqlite(path), 4, &Vec::new)
                    .map_err(DbError::from)?,
            );
            databases.insert(name.to_owned(), Arc::clone(&database));
            Ok(database)
        }

        fn uploads(&self) -> std::path::PathBuf {
            self.folder.path().join("uploads")
        }
    }

    impl Host for TestServices {
        fn log(&self, level: u8, module: RStr<'_>, message: RStr<'_>) {
            let level = match level {
                level::ERROR => "ERROR",
                level::WARN => "WARN",
                level::INFO => "INFO",
                level::DEBUG => "DEBUG",
                _ => "TRACE",
            };
            eprintln!("{level} {module}: {message}");
        }

        fn db_query(&self, sql: RStr<'_>, params: RSlice<'_, DbValue>) -> RResult<DbRows, DbError> {
            self.db_query_in(RStr::from_str(""), sql, params)
        }

        fn db_transaction(
            &self,
            statements: RSlice<'_, DbStatement>,
        ) -> RResult<RVec<DbRows>, DbError> {
            self.db_transaction_in(RStr::from_str(""), statements)
        }

        fn db_migrate(&self, steps: RSlice<'_, RStr<'_>>) -> RResult<u32, DbError> {
            guarded(db_panic, || {
                let steps: Vec<&str> = steps.iter().map(RStr::as_str).collect();
                self.database("")?
                    .migrate_user_version(&steps)
                    .map_err(DbError::from)
            })
        }

        fn store_upload(
            &self,
            data: RSlice<'_, u8>,
            extension: RStr<'_>,
        ) -> RResult<RString, RString> {
            guarded(
                || RString::from("storing the upload panicked"),
                || {
                    let mut random = [0u8; 16];
                    getrandom::fill(&mut random).map_err(|error| error.to_string())?;
                    let stem: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
                    let name = format!("{stem}.{extension}");
                    std::fs::create_dir_all(self.uploads())
                        .and_then(|()| std::fs::write(self.uploads().join(&name), data.as_slice()))
                        .map_err(|error| error.to_string())?;
                    self.database("")
                        .map_err(|error| error.message.to_string())?
                        .record_upload(&name, 0)
                        .map_err(|failure| failure.message)?;
                    Ok(RString::from(name))
                },
            )
        }

        fn delete_upload(&self, name: RStr<'_>) -> RResult<bool, RString> {
            guarded(
                || RString::from("deleting the upload panicked"),
                || {
                    let recorded = self
                        .database("")
                        .map_err(|error| error.message.to_string())?
                        .forget_upload(name.as_str())
                        .map_err(|failure| failure.message)?;
                    if !recorded {
                        return Ok(false);
                    }
                    std::fs::remove_file(self.uploads().join(name.as_str()))
                        .map(|()| true)
                        .map_err(|error| RString::from(error.to_string()))
                },
            )
        }

        fn prompt(&self, _text: RStr<'_>, _hidden: bool) -> RResult<RString, RString> {
            RResult::RErr("no terminal in a unit test: pass the input as an argument".into())
        }

        fn db_open(&self, database: RStr<'_>) -> RResult<RString, DbError> {
            guarded(db_panic, || {
                self.database(database.as_str())
                    .map(|database| RString::from(database.name()))
            })
        }

        fn db_query_in(
            &self,
            database: RStr<'_>,
            sql: RStr<'_>,
            params: RSlice<'_, DbValue>,
        ) -> RResult<DbRows, DbError> {
            guarded(db_panic, || {
                self.database(database.as_str())?
                    .query(sql.as_str(), params.as_slice())
                    .map_err(DbError::from)
            })
        }

        fn db_transaction_in(
            &self,
            database: RStr<'_>,
            statements: RSlice<'_, DbStatement>,
        ) -> RResult<RVec<DbRows>, DbError> {
            guarded(db_panic, || {
                self.database(database.as_str())?
                    .transaction(statements.as_slice())
                    .map_err(DbError::from)
            })
        }

        fn db_migrate_in(
            &self,
            database: RStr<'_>,
            namespace: RStr<'_>,
            steps: RSlice<'_, RStr<'_>>,
            options: RSlice<'_, Extension>,
        ) -> RResult<DbMigration, DbError> {
            guarded(db_panic, || {
                let steps: Vec<&str> = steps.iter().map(RStr::as_str).collect();
                let adopt = host_database::adopts_user_version(options.as_slice());
                Ok(self
                    .database(database.as_str())?
                    .migrate(namespace.as_str(), &steps, adopt)?
                    .into())
            })
        }
    }
}
