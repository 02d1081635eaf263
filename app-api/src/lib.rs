//! The interface between the host and the web apps it loads, and the SDK app
//! authors write against.
//!
//! An app is a `cdylib` crate that builds a [`Router`](sdk::Router) for each
//! mount and exports it with [`export_app!`]:
//!
//! ```
//! use app_api::prelude::*;
//!
//! fn index(req: &Request) -> Result<Response, Error> {
//!     Ok(Response::text(format!("Hello {}! request.url = {}", req.app_name(), req.url())))
//! }
//!
//! fn build(_mount: &Mount) -> Result<Router, Error> {
//!     Ok(Router::new().get("/", "index", index))
//! }
//!
//! app_api::export_app!(name: "hello", init: build);
//! # fn main() {}
//! ```
//!
//! The app's crate needs `app-api` and `abi_stable` as dependencies and
//! `crate-type = ["cdylib", "rlib"]`.
//!
//! # The prefix is stripped: use `script_root`
//!
//! An app mounted at `/admin` sees `/admin/users/5` as [`Request::path`](sdk::Request::path)
//! `/users/5` with [`Request::script_root`](sdk::Request::script_root) `/admin`.
//! Build every link with [`Request::url_for`](sdk::Request::url_for) and
//! [`Request::static_url`](sdk::Request::static_url): they include the prefix,
//! so the app works wherever it is mounted.
//!
//! # What the host offers
//!
//! The host owns what apps must share rather than each keep a copy of:
//! the site's database ([`Mount::db`](sdk::Mount::db), see [`sdk::db`] for
//! the portable SQL contract), a signing key per mount for the session
//! cookie ([`Request::session`](sdk::Request::session), see
//! [`sdk::session`]), stored uploads
//! ([`Mount::store_upload`](sdk::Mount::store_upload), served at
//! [`Request::upload_url`](sdk::Request::upload_url)), and command-line
//! commands ([`sdk::commands`], run with `host cmd`).
//!
//! # Handlers are synchronous
//!
//! Handlers run on host threads, several at once, so app state must be `Sync`.
//! Do not start a tokio runtime inside an app: it cannot see the host's
//! (DESIGN.md, fact 6).
#![warn(missing_docs)]

pub mod abi;
pub mod sdk;

#[doc(hidden)]
pub mod __private {
    pub use crate::sdk::export::{commands, instantiate, run_command};
}

/// The names an app usually needs.
pub mod prelude {
    pub use crate::sdk::{Error, Form, Mount, Request, Response, Router};
}

/// Exports an app from a `cdylib` crate: its default name, the function
/// that builds its [`Router`](sdk::Router) for each mount, and optionally
/// the function that lists its command-line [`Commands`](sdk::Commands)
/// (`commands: my_commands`).
///
/// Writes the root module with every exported function guarded by
/// `catch_unwind`, and reports whether the crate was built with
/// `panic = "unwind"` (the host refuses `abort` builds). The app crate must
/// depend on `abi_stable`, whose attribute macro this expands to.
///
/// ```
/// use app_api::prelude::*;
/// fn build(_mount: &Mount) -> Result<Router, Error> {
///     Ok(Router::new().get("/", "index", |_req: &Request| Ok(Response::text("hi"))))
/// }
/// app_api::export_app!(name: "hello", init: build);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export_app {
    (name: $name:literal, init: $init:expr $(,)?) => {
        $crate::export_app!(name: $name, init: $init, commands: $crate::sdk::Commands::new);
    };
    (name: $name:literal, init: $init:expr, commands: $commands:expr $(,)?) => {
        #[::abi_stable::export_root_module]
        pub fn __app_api_root_module() -> $crate::abi::AppModuleRef {
            use ::abi_stable::prefix_type::PrefixTypeTrait as _;
            use ::abi_stable::std_types::{RResult, RStr};

            extern "C" fn __abi_info() -> $crate::abi::AbiInfo {
                $crate::abi::AbiInfo {
                    api_version: RStr::from_str($crate::abi::API_VERSION),
                    // Evaluated in the app's own build, where the panic
                    // strategy is decided.
                    panic_unwind: cfg!(panic = "unwind"),
                }
            }
            extern "C" fn __name() -> RStr<'static> {
                RStr::from_str($name)
            }
            extern "C" fn __instantiate(
                context: $crate::abi::HostContext,
            ) -> RResult<$crate::abi::AppInstance, $crate::abi::AppError> {
                $crate::__private::instantiate(context, $init)
            }
            extern "C" fn __commands() -> ::abi_stable::std_types::RVec<$crate::abi::CommandInfo> {
                $crate::__private::commands($commands)
            }
            extern "C" fn __run_command(
                context: $crate::abi::HostContext,
                arguments: ::abi_stable::std_types::RVec<::abi_stable::std_types::RString>,
            ) -> RResult<::abi_stable::std_types::RString, $crate::abi::AppError> {
                $crate::__private::run_command(context, arguments, $commands)
            }
            $crate::abi::AppModule {
                abi_info: __abi_info,
                name: __name,
                instantiate: __instantiate,
                commands: __commands,
                run_command: __run_command,
            }
            .leak_into_prefix()
        }
    };
}
