//! The shapes of contract 1.0 that later versions changed, frozen, so that
//! a host of a later version still loads apps built against 1.0.
//!
//! abi_stable lets a library's prefix types have *more* fields than the
//! loader expects (an older host loads a newer app, whose extra services the
//! older host's objects simply lack), but refuses a library with *fewer*:
//! the [`Host`](crate::Host) object that 1.1 hands to apps has four methods
//! more than a 1.0 app's view of it. So the host checks an app against the
//! current shapes first and, when that fails, against these; an app of 1.0
//! then gets a host object of the 1.0 shape. Only the types that contain
//! the changed `Host` are here; the others are the same in both versions.
//!
//! Never change anything here: it is what apps of 1.0 were built against.

use abi_stable::{
    StableAbi, declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RArc, RResult, RSlice, RStr, RString, RVec},
};

use crate::{
    AbiInfo, AppError, AppInstance, CommandInfo, DbError, DbRows, DbStatement, DbValue, Extension,
};

/// The host's services as contract 1.0 had them.
#[sabi_trait]
pub trait Host: Send + Sync {
    /// As [`crate::Host::log`].
    #[sabi(last_prefix_field)]
    fn log(&self, level: u8, module: RStr<'_>, message: RStr<'_>);

    /// As [`crate::Host::db_query`].
    fn db_query(&self, sql: RStr<'_>, params: RSlice<'_, DbValue>) -> RResult<DbRows, DbError>;

    /// As [`crate::Host::db_transaction`].
    fn db_transaction(&self, statements: RSlice<'_, DbStatement>)
    -> RResult<RVec<DbRows>, DbError>;

    /// As [`crate::Host::db_migrate`].
    fn db_migrate(&self, steps: RSlice<'_, RStr<'_>>) -> RResult<u32, DbError>;

    /// As [`crate::Host::store_upload`].
    fn store_upload(&self, data: RSlice<'_, u8>, extension: RStr<'_>) -> RResult<RString, RString>;

    /// As [`crate::Host::delete_upload`].
    fn delete_upload(&self, name: RStr<'_>) -> RResult<bool, RString>;

    /// As [`crate::Host::prompt`].
    fn prompt(&self, text: RStr<'_>, hidden: bool) -> RResult<RString, RString>;
}

/// The host services object of contract 1.0.
pub type HostServices = Host_TO<'static, RArc<()>>;

/// [`crate::HostContext`] with the host object of contract 1.0.
#[repr(C)]
#[derive(StableAbi)]
pub struct HostContext {
    /// As in [`crate::HostContext`].
    pub mount_name: RString,
    /// As in [`crate::HostContext`].
    pub prefix: RString,
    /// As in [`crate::HostContext`].
    pub static_url_path: RString,
    /// As in [`crate::HostContext`].
    pub logger: RString,
    /// As in [`crate::HostContext`].
    pub session_cookie: RString,
    /// As in [`crate::HostContext`].
    pub config_json: RString,
    /// As in [`crate::HostContext`].
    pub secret: RVec<u8>,
    /// As in [`crate::HostContext`].
    pub max_log_level: u8,
    /// The services of contract 1.0.
    pub host: HostServices,
    /// As in [`crate::HostContext`].
    pub extensions: RVec<Extension>,
}

/// [`crate::AppModule`] as apps of contract 1.0 export it.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = AppModuleRef)))]
#[sabi(missing_field(panic))]
pub struct AppModule {
    /// As in [`crate::AppModule`].
    pub abi_info: extern "C" fn() -> AbiInfo,
    /// As in [`crate::AppModule`].
    pub name: extern "C" fn() -> RStr<'static>,
    /// As in [`crate::AppModule`], with the 1.0 context.
    #[sabi(last_prefix_field)]
    pub instantiate: extern "C" fn(HostContext) -> RResult<AppInstance, AppError>,
    /// As in [`crate::AppModule`].
    #[sabi(missing_field(option))]
    pub commands: extern "C" fn() -> RVec<CommandInfo>,
    /// As in [`crate::AppModule`], with the 1.0 context.
    #[sabi(missing_field(option))]
    pub run_command: extern "C" fn(HostContext, RVec<RString>) -> RResult<RString, AppError>,
}

impl RootModule for AppModuleRef {
    declare_root_module_statics! {AppModuleRef}
    const BASE_NAME: &'static str = "app";
    const NAME: &'static str = "app";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
