//! What app authors write against: [`Router`] and [`Blueprint`] (with
//! [`Routes`] to add routes and hooks), [`Request`], [`Response`],
//! [`Error`], [`Session`], [`templates`] and the per-mount [`Mount`]
//! settings.

pub mod commands;
pub mod db;
mod logging;
pub mod multipart;
mod request;
mod response;
mod router;
pub mod session;
pub mod templates;

#[doc(hidden)]
pub mod export;
pub mod testing;
pub mod url;

use std::{fmt, sync::Arc};

use abi_stable::std_types::RStr;

pub use commands::Commands;
pub use logging::spawn;
pub use request::{Form, FromParam, Request};
pub use response::{Error, IntoStatus, Response, StatusCode, reason_phrase};
pub use router::{
    AfterRequest, BeforeRequest, Blueprint, ErrorHandler, Handler, HandlerResult, Router, Routes,
    Rule, RuleError, UrlDefault, Urls,
};
pub use session::Session;

use crate::abi::HostServices;

/// The settings of the mount an app instance serves, from the mount table.
///
/// One library may be mounted several times; each mount gets its own
/// instance and its own `Mount`. Keep per-mount state in what the init
/// function builds (captured by the handlers), never in `static`s: every
/// mount of one library shares the library's statics.
#[derive(Debug, Clone)]
pub struct Mount {
    /// The mount's name, e.g. `admin`.
    pub name: String,
    /// The normalised prefix: `""` for the root mount, else e.g. `/admin`.
    pub prefix: String,
    /// The URL path of the static folder below the prefix, e.g. `/static`.
    pub static_url_path: String,
    /// The logger name, e.g. `app_admin`.
    pub logger: String,
    /// The session cookie name, e.g. `admin_session`.
    pub session_cookie: String,
    /// The mount's `config` object.
    pub config: serde_json::Value,
    /// A secret the host derived for this mount only (for signing cookies).
    pub secret: Vec<u8>,
    /// The mount's keys from the host's earlier secrets
    /// (`HOST_SECRET_KEY_FALLBACKS`): what they signed still verifies.
    pub secret_fallbacks: Vec<Vec<u8>>,
    /// The URL path below the prefix where the host serves stored uploads,
    /// e.g. `/uploads`.
    pub uploads_url_path: String,
    /// Whether the host runs with `--reload`: templates are read from
    /// their folders on disk, and again when they change.
    pub reload: bool,
    /// The host's services (database, uploads); none in unit tests.
    pub(crate) host: Option<Services>,
}

/// The host's services as the SDK holds them.
#[derive(Clone)]
pub(crate) struct Services(pub(crate) Arc<HostServices>);

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HostServices")
    }
}

impl Mount {
    /// A mount with the host's defaults for `name` at `prefix` (`"/"` or
    /// e.g. `"/admin"`): static files at `/static`, logger `app_<name>`,
    /// cookie `<name>_session`, empty config. For tests.
    pub fn new(name: &str, prefix: &str) -> Mount {
        Mount {
            name: name.to_owned(),
            prefix: prefix.trim_end_matches('/').to_owned(),
            static_url_path: "/static".to_owned(),
            logger: format!("app_{name}"),
            session_cookie: format!("{name}_session"),
            config: serde_json::Value::Object(Default::default()),
            secret: {
                let mut secret = vec![0; 64];
                getrandom::fill(&mut secret).expect("the operating system's random source works");
                secret
            },
            uploads_url_path: "/uploads".to_owned(),
            secret_fallbacks: Vec::new(),
            reload: false,
            host: None,
        }
    }

    fn services(&self) -> Result<&Arc<HostServices>, Error> {
        self.host.as_ref().map(|services| &services.0).ok_or_else(|| {
            Error::internal(
                "no host services here: a unit test without a host (app-api's `testing` feature gives testing::TestClient a database)",
            )
        })
    }

    /// The mount's default database: the first it lists in the mount
    /// table, or its own, named after it (see [`db`] for the SQL contract).
    pub fn db(&self) -> Result<db::Db, Error> {
        self.database("")
    }

    /// The database `name`, which the mount must list in the mount table
    /// (`"databases": ["blog", "name"]`); an error naming the key to add
    /// otherwise.
    pub fn database(&self, name: &str) -> Result<db::Db, Error> {
        let host = self.services()?;
        db::Db::open(host, name).map_err(|error| Error::internal(error.message))
    }

    /// Stores an uploaded file under a new random name ending in
    /// `.{extension}`; the host serves it at
    /// [`Request::upload_url`]`(name)`. Returns the name.
    pub fn store_upload(&self, data: &[u8], extension: &str) -> Result<String, Error> {
        let host = self.services()?;
        host.store_upload(data.into(), RStr::from_str(extension))
            .into_result()
            .map(Into::into)
            .map_err(|message| Error::internal(format!("storing an upload failed: {message}")))
    }

    /// Deletes a stored upload; `false` if there was none by that name.
    pub fn delete_upload(&self, name: &str) -> Result<bool, Error> {
        let host = self.services()?;
        host.delete_upload(RStr::from_str(name))
            .into_result()
            .map_err(|message| {
                Error::internal(format!("deleting upload {name:?} failed: {message}"))
            })
    }

    /// Asks the person at the terminal for a line (no echo when `hidden`).
    /// Only while a command runs (`host cmd`); an error while serving.
    pub fn prompt(&self, text: &str, hidden: bool) -> Result<String, Error> {
        let host = self.services()?;
        host.prompt(RStr::from_str(text), hidden)
            .into_result()
            .map(Into::into)
            .map_err(|message| Error::internal(message.to_string()))
    }
}
