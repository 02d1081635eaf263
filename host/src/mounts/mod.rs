//! The mounts of a site: which one answers a path (`dispatch`), loading
//! their libraries and creating their app instances (`loader`), and the
//! live table the server answers from (`site`).

pub mod dispatch;
pub(crate) mod loader;
pub(crate) mod site;
