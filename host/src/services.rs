//! What the host offers to app instances through the ABI (the [`Host`]
//! trait): logging now; the database and files later.

use std::panic::{AssertUnwindSafe, catch_unwind};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RArc, RStr},
};
use app_api::abi::{Host, Host_TO, HostServices};

use crate::logging::AppLogger;

/// The services of one mount.
pub struct MountServices {
    logger: AppLogger,
}

impl MountServices {
    /// The services for a mount logging under `logger`, as the FFI-safe
    /// object handed to its app instance.
    pub fn new_object(logger: AppLogger) -> HostServices {
        Host_TO::from_ptr(RArc::new(MountServices { logger }), TD_Opaque)
    }
}

impl Host for MountServices {
    fn log(&self, level: u8, module: RStr<'_>, message: RStr<'_>) {
        // Called from app code through an `extern "C"` boundary: a panic here
        // would abort the process, so none may leave.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            self.logger.emit(level, module.as_str(), message.as_str())
        }));
    }
}
