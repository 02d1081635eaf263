//! An app exporting the changed root module.

use abi_stable::{export_root_module, prefix_type::PrefixTypeTrait, std_types::RStr};
use app_api::{AppModule, AppModuleRef};

extern "C" fn abi_info() -> u32 {
    1
}

extern "C" fn name() -> RStr<'static> {
    RStr::from_str("mismatched")
}

#[export_root_module]
fn root() -> AppModuleRef {
    AppModule { abi_info, name }.leak_into_prefix()
}
