//! A third section, added with no change to the host: a yearly archive,
//! mounted wherever the mount table says (e.g. `/admin/archive`, nested
//! under the admin).

use app_api::{prelude::*, tracing};

fn index(req: &Request) -> Result<Response, Error> {
    let latest = req.url_for("year", &[("year", "2026")])?;
    Ok(Response::html(format!(
        "<h1>Archive</h1><p><a href=\"{latest}\">2026</a></p>"
    )))
}

fn year(req: &Request) -> Result<Response, Error> {
    let year: i64 = req.param("year")?;
    tracing::info!(year, "archive viewed");
    Ok(Response::text(format!("Archive for {year}")))
}

/// Builds the app's routes for one mount.
pub fn build(_mount: &Mount) -> Result<Router, Error> {
    Ok(Router::new()
        .get("/", "index", index)
        .get("/<int:year>", "year", year))
}

app_api::export_app!(name: "archive", init: build);

#[cfg(test)]
mod tests {
    use app_api::{prelude::*, sdk::testing::TestClient};

    #[test]
    fn links_carry_the_mount_prefix_and_years_are_integers() {
        let client =
            TestClient::new(super::build, Mount::new("archive", "/admin/archive")).unwrap();
        let index = client.get("/");
        assert!(index.body_text().contains("href=\"/admin/archive/2026\""));
        assert_eq!(client.get("/2026").body_text(), "Archive for 2026");
        assert_eq!(client.get("/twenty").status(), 404);
    }
}
