//! What app authors write against: [`Router`], [`Request`], [`Response`],
//! [`Error`] and the per-mount [`Mount`] settings.

mod logging;
mod request;
mod response;
mod router;

#[doc(hidden)]
pub mod export;
pub mod testing;
pub mod url;

pub use logging::spawn;
pub use request::{Form, Request};
pub use response::{Error, Response, reason_phrase};
pub use router::{Handler, HandlerResult, Router, Rule, RuleError};

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
            secret: Vec::new(),
        }
    }
}
