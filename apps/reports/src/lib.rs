//! A third section, the README's "write your own app" example: yearly
//! reports, mounted wherever the mount table says (e.g. `/admin/reports`).

use app_api::prelude::*;

fn index(req: &Request) -> Result<Response, Error> {
    let latest = req.url_for("year", &[("year", "2026")])?;
    Ok(Response::html(format!(
        "<h1>Reports</h1><p><a href=\"{latest}\">2026</a></p>"
    )))
}

fn year(req: &Request) -> Result<Response, Error> {
    let year = req.param("year").unwrap_or_default();
    tracing::info!(year, "report viewed");
    Ok(Response::text(format!("Report for {year}")))
}

/// Builds the app's routes for one mount.
pub fn build(_mount: &Mount) -> Result<Router, Error> {
    Ok(Router::new()
        .get("/", "index", index)
        .get("/<int:year>", "year", year))
}

app_api::export_app!(name: "reports", init: build);
