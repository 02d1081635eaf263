//! The blog's public site, mounted at `/`.

use app_api::prelude::*;

/// Builds the app's routes for one mount.
pub fn build(_mount: &Mount) -> Result<Router, Error> {
    Ok(Router::new().get("/", "index", shared::pages::hello))
}

app_api::export_app!(name: "frontend", init: build);
