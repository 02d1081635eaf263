//! [`Blog`]: every read and write of the blog's data, by what it is about.

mod comments;
mod images;
mod posts;
mod users;

pub use comments::{CommentLimit, PendingComment};
pub use posts::PublishedPost;
pub use users::LoginLimits;

use std::sync::LazyLock;

use app_api::{prelude::*, sdk::db::Db};

use super::{
    entities::{Comment, Image, Post},
    entity::Entity,
    migrations::{MIGRATIONS, MIGRATIONS_NAMESPACE},
};

/// The blog's data, on the host's database.
#[derive(Debug, Clone)]
pub struct Blog {
    db: Db,
}

impl Blog {
    /// The model on `db`, its schema brought up to date (safe when both
    /// apps start at once: the host runs each step once, and logs it). A
    /// database the blog of app-api 1.0 wrote, whose steps counted in
    /// `PRAGMA user_version`, is adopted as it is.
    pub fn open(db: Db) -> Result<Blog, Error> {
        db.migrate_from_user_version(MIGRATIONS_NAMESPACE, MIGRATIONS)?;
        Ok(Blog { db })
    }
}

const POST_COLUMNS: &str = Post::COLUMNS;
const IMAGE_COLUMNS: &str = Image::COLUMNS;
/// [`POST_COLUMNS`] with an empty body, for lists that do not show it
/// (made once, as the next: the page queries are built per request).
static SUMMARY_COLUMNS: LazyLock<String> =
    LazyLock::new(|| select_list(Post::FIELDS, None, Some("body")));
/// [`IMAGE_COLUMNS`] of the table `i`, named as themselves, for joins.
static IMAGE_COLUMNS_OF_I: LazyLock<String> =
    LazyLock::new(|| select_list(Image::FIELDS, Some("i"), None));

/// [`Comment`]'s columns of the table `c`, for joins.
static COMMENT_COLUMNS_OF_C: LazyLock<String> =
    LazyLock::new(|| select_list(Comment::FIELDS, Some("c"), None));

/// The select list of `fields`: each read from `table` when one is given
/// and named as itself (`i.id AS id`), and `empty` as an empty text
/// (`'' AS body`).
fn select_list(fields: &[&str], table: Option<&str>, empty: Option<&str>) -> String {
    let columns: Vec<String> = fields
        .iter()
        .map(|field| match table {
            _ if Some(*field) == empty => format!("'' AS {field}"),
            Some(table) => format!("{table}.{field} AS {field}"),
            None => (*field).to_owned(),
        })
        .collect();
    columns.join(", ")
}

#[cfg(test)]
mod tests {
    use super::select_list;

    #[test]
    fn select_lists_name_their_table_and_empty_what_they_skip() {
        let fields = ["id", "body", "size"];
        for (table, empty, list) in [
            (None, None, "id, body, size"),
            (
                Some("i"),
                None,
                "i.id AS id, i.body AS body, i.size AS size",
            ),
            (None, Some("body"), "id, '' AS body, size"),
            (
                Some("p"),
                Some("body"),
                "p.id AS id, '' AS body, p.size AS size",
            ),
        ] {
            assert_eq!(
                select_list(&fields, table, empty),
                list,
                "{table:?} {empty:?}"
            );
        }
    }
}
