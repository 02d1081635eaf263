//! The mounts of a site, in the stages of their life: a mount as the table
//! says it is `table::Mount`; loading its library and creating its app
//! instance is `loader`, which `app` uses to make a `LoadedApp` of each
//! mount with its static folders; the live `site` holds every mount as a
//! `SiteMount`, serving or failed, and `dispatch` says which one answers a
//! path. `routes` says whether the app has a route for a request, before
//! its body is read.

pub(crate) mod app;
pub mod dispatch;
pub(crate) mod loader;
pub(crate) mod routes;
pub(crate) mod site;
