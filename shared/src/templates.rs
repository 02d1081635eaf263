//! What the blog adds to the SDK's templates (`app_api::sdk::templates`):
//! the `date` filter (`_()`, the translation, comes with each render:
//! `Site::render`). The shared templates are in `shared/templates/`: the
//! base layout, the login, logout, about and error pages.

use app_api::minijinja;

/// Adds the blog's filters to a template environment.
pub fn setup(env: &mut minijinja::Environment<'static>) {
    env.add_filter("date", date_filter);
}

/// `{{ post.created_at|date }}`: Unix seconds as `2026-11-25`;
/// `|date("rfc3339")` for feeds.
fn date_filter(seconds: i64, format: Option<&str>) -> Result<String, minijinja::Error> {
    let time = time::OffsetDateTime::from_unix_timestamp(seconds).map_err(|error| {
        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, error.to_string())
    })?;
    let text = match format {
        Some("rfc3339") => time.format(&time::format_description::well_known::Rfc3339),
        _ => time.format(time::macros::format_description!("[year]-[month]-[day]")),
    };
    text.map_err(|error| {
        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, error.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_as_days_or_rfc3339() {
        assert_eq!(date_filter(0, None).unwrap(), "1970-01-01");
        assert_eq!(
            date_filter(1_700_000_000, Some("rfc3339")).unwrap(),
            "2023-11-14T22:13:20Z"
        );
    }
}
