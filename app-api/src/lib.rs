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
//! The app's crate needs only `app-api` as a dependency (it re-exports what
//! the macro and an app use: [`tracing`], [`minijinja`]) and
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
//! the databases the mount table grants the mount
//! ([`Mount::db`](sdk::Mount::db), [`Mount::database`](sdk::Mount::database);
//! see [`sdk::db`] for the portable SQL contract and migrations), a signing
//! key per mount for the session cookie
//! ([`Request::session`](sdk::Request::session), see [`sdk::session`]),
//! stored uploads ([`Mount::store_upload`](sdk::Mount::store_upload), served
//! at [`Request::upload_url`](sdk::Request::upload_url)), and command-line
//! commands ([`sdk::commands`], run with `host cmd`).
//!
//! # Handlers are synchronous
//!
//! Handlers run on host threads, several at once, so app state must be `Sync`.
//! Do not start a tokio runtime inside an app: its tokio would be a copy of
//! its own that cannot see the host's reactor.
//!
//! # The contract and this SDK
//!
//! What crosses the library boundary is the contract, [`abi`] (the crate
//! `app-api-abi`, versioned on its own). This crate, the SDK, can change
//! without making apps rebuild as long as the contract does not.
#![warn(missing_docs)]

pub mod sdk;

/// The contract between the host and apps (the `app-api-abi` crate).
pub use app_api_abi as abi;
pub use minijinja;
pub use tracing;

#[doc(hidden)]
pub mod __private {
    pub use crate::sdk::export::{commands, instantiate, run_command};
    pub use abi_stable;
    pub use rust_embed;
}

// `templates!` names the SDK `app_api` (rust-embed's `crate_path` takes a
// path, not `$crate`): this makes the name resolve inside the SDK too.
extern crate self as app_api;

/// The symbol under which abi_stable's loader finds an app's root module
/// (abi_stable's `ROOT_MODULE_LOADER_NAME`; a test checks they agree).
/// `export_app!` writes the header itself, instead of using abi_stable's
/// attribute macro, whose expansion names `::abi_stable` and so would make
/// every app depend on abi_stable directly.
#[doc(hidden)]
#[macro_export]
macro_rules! __root_module_loader_name {
    () => {
        "_1as_0lib_1header_0root_bmodule_bloader"
    };
}

/// The names an app usually needs.
pub mod prelude {
    pub use crate::sdk::{
        Blueprint, Error, Form, Mount, Request, Response, Router, Routes, StatusCode,
    };
}

/// Exports an app from a `cdylib` crate: its default name, the function
/// that builds its [`Router`](sdk::Router) for each mount, and optionally
/// the function that lists its command-line [`Commands`](sdk::Commands)
/// (`commands: my_commands`).
///
/// Writes the root module with every exported function guarded by
/// `catch_unwind`, and reports whether the crate was built with
/// `panic = "unwind"` (the host refuses `abort` builds).
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
        #[doc(hidden)]
        pub fn __app_api_root_module() -> $crate::abi::AppModuleRef {
            // Paths in full and names prefixed: the items of a macro are not
            // hygienic, and the app's `init` and `commands` expressions are
            // resolved in here.
            use $crate::__private::abi_stable::prefix_type::PrefixTypeTrait as _;

            extern "C" fn __app_api_abi_info() -> $crate::abi::AbiInfo {
                $crate::abi::AbiInfo {
                    api_version: $crate::__private::abi_stable::std_types::RStr::from_str(
                        $crate::abi::API_VERSION,
                    ),
                    // Evaluated in the app's own build, where the panic
                    // strategy is decided.
                    panic_unwind: cfg!(panic = "unwind"),
                }
            }
            extern "C" fn __app_api_name() -> $crate::__private::abi_stable::std_types::RStr<'static>
            {
                $crate::__private::abi_stable::std_types::RStr::from_str($name)
            }
            extern "C" fn __app_api_instantiate(
                context: $crate::abi::HostContext,
            ) -> $crate::__private::abi_stable::std_types::RResult<
                $crate::abi::AppInstance,
                $crate::abi::AppError,
            > {
                $crate::__private::instantiate(context, $init)
            }
            extern "C" fn __app_api_commands()
            -> $crate::__private::abi_stable::std_types::RVec<$crate::abi::CommandInfo> {
                $crate::__private::commands($commands)
            }
            extern "C" fn __app_api_run_command(
                context: $crate::abi::HostContext,
                arguments: $crate::__private::abi_stable::std_types::RVec<
                    $crate::__private::abi_stable::std_types::RString,
                >,
            ) -> $crate::__private::abi_stable::std_types::RResult<
                $crate::__private::abi_stable::std_types::RString,
                $crate::abi::AppError,
            > {
                $crate::__private::run_command(context, arguments, $commands)
            }
            $crate::abi::AppModule {
                abi_info: __app_api_abi_info,
                name: __app_api_name,
                instantiate: __app_api_instantiate,
                commands: __app_api_commands,
                run_command: __app_api_run_command,
            }
            .leak_into_prefix()
        }

        #[doc(hidden)]
        pub extern "C" fn __app_api_root_module_loader()
        -> $crate::__private::abi_stable::library::RootModuleResult {
            $crate::__private::abi_stable::library::__call_root_module_loader(
                __app_api_root_module,
            )
        }

        /// What abi_stable's loader looks up in the library: checked
        /// layouts and the function that makes the root module.
        #[doc(hidden)]
        #[unsafe(export_name = $crate::__root_module_loader_name!())]
        pub static __APP_API_LIB_HEADER: $crate::__private::abi_stable::library::LibHeader =
            // SAFETY: the constructor returns the `AppModuleRef` that
            // `__app_api_root_module` builds, erased by abi_stable's own
            // `__call_root_module_loader`, as `from_constructor` requires.
            unsafe {
                $crate::__private::abi_stable::library::LibHeader::from_constructor::<
                    $crate::abi::AppModuleRef,
                >(
                    __app_api_root_module_loader,
                    $crate::__private::abi_stable::library::CheckTypeLayout::Yes,
                )
            };
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_exported_symbol_is_the_one_abi_stable_looks_up() {
        assert_eq!(
            crate::__root_module_loader_name!(),
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
