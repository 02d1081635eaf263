//! The root module as a changed interface would have it: `abi_info` returns
//! a number instead of the real `AbiInfo` struct.
#![allow(non_local_definitions)]

use abi_stable::{
    StableAbi, declare_root_module_statics, library::RootModule, package_version_strings,
    sabi_types::VersionStrings, std_types::RStr,
};

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = AppModuleRef)))]
#[sabi(missing_field(panic))]
pub struct AppModule {
    pub abi_info: extern "C" fn() -> u32,
    #[sabi(last_prefix_field)]
    pub name: extern "C" fn() -> RStr<'static>,
}

impl RootModule for AppModuleRef {
    declare_root_module_statics! {AppModuleRef}
    const BASE_NAME: &'static str = "app";
    const NAME: &'static str = "app";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
