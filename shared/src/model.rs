//! The blog's data model on the host's database: users, posts, images and
//! the ordered post↔image relation, with its schema migrations.
//!
//! All SQL here follows the portable contract of [`app_api::sdk::db`]:
//! numbered placeholders, no `AUTOINCREMENT`, booleans as 0/1, times as
//! Unix seconds.

use std::{
    sync::{Arc, LazyLock},
    time::{SystemTime, UNIX_EPOCH},
};

use app_api::{
    params,
    prelude::*,
    sdk::db::{Db, Row, Statement},
};
use serde::{Deserialize, Serialize};

/// The namespace of the blog's migrations, shared by every app that uses
/// this model (the frontend and the admin).
pub const MIGRATIONS_NAMESPACE: &str = "blog";

/// The schema, one step at a time. Append new steps; never edit a released
/// one (the host refuses a changed step).
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE posts (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    published INTEGER NOT NULL DEFAULT 0 CHECK (published IN (0, 1)),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX posts_by_date ON posts (published, created_at DESC, id DESC);
CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    file_name TEXT NOT NULL UNIQUE,
    original_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE post_images (
    post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE RESTRICT,
    position INTEGER NOT NULL,
    PRIMARY KEY (post_id, image_id)
);
CREATE INDEX post_images_by_image ON post_images (image_id);
CREATE TABLE login_failures (
    username TEXT NOT NULL,
    address TEXT NOT NULL,
    failed_at INTEGER NOT NULL
);
CREATE INDEX login_failures_by_key ON login_failures (username, address, failed_at);
"#,
    r#"
-- a post's images in order, and its first one, without a sort
CREATE INDEX post_images_by_position ON post_images (post_id, position, image_id);
"#,
];

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// A user who can log in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    /// Its id.
    pub id: i64,
    /// Its login name.
    pub username: String,
}

/// A post.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Post {
    /// Its id.
    pub id: i64,
    /// Its title (plain text).
    pub title: String,
    /// Its URL name, unique.
    pub slug: String,
    /// Its body, in markdown.
    pub body: String,
    /// Whether the frontend shows it.
    pub published: bool,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// When it was last changed (Unix seconds).
    pub updated_at: i64,
}

/// An uploaded image.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Image {
    /// Its id.
    pub id: i64,
    /// The stored file's name (random), served under the uploads path.
    pub file_name: String,
    /// The name it was uploaded with (for display only).
    pub original_name: String,
    /// Its type, from its bytes: `image/png`, `image/jpeg`, ...
    pub content_type: String,
    /// Its size in bytes.
    pub size: i64,
    /// Its width in pixels.
    pub width: i64,
    /// Its height in pixels.
    pub height: i64,
}

/// A post on a listing page, with its first image. It serialises as the
/// post's fields and `first_image` side by side; templates read it as an
/// object instead (below), which makes only the fields they read.
#[derive(Debug, Clone, Serialize)]
pub struct PostSummary {
    /// The post, without its body (empty): a listing does not show it, and
    /// reading, copying and serialising ten bodies of a few KB made up a
    /// third of the home page's CPU.
    #[serde(flatten)]
    pub post: Post,
    /// Its first image, if it has any.
    pub first_image: Option<Image>,
}

/// The fields of a [`PostSummary`] in templates, as it serialises: the
/// post's, then `first_image`.
const SUMMARY_FIELDS: &[&str] = &[
    "id",
    "title",
    "slug",
    "body",
    "published",
    "created_at",
    "updated_at",
    "first_image",
];

/// The fields of a [`Post`] in templates, as it serialises.
const POST_FIELDS: &[&str] = SUMMARY_FIELDS.split_last().unwrap().1;

impl Post {
    /// The field `name` as a template value.
    fn template_field(&self, name: &str) -> Option<minijinja::Value> {
        use minijinja::Value;
        Some(match name {
            "id" => Value::from(self.id),
            "title" => Value::from(self.title.as_str()),
            "slug" => Value::from(self.slug.as_str()),
            "body" => Value::from(self.body.as_str()),
            "published" => Value::from(self.published),
            "created_at" => Value::from(self.created_at),
            "updated_at" => Value::from(self.updated_at),
            _ => return None,
        })
    }
}

/// In templates (`Value::from_object(post)`), a post hands out the fields a
/// template reads when it reads them, instead of being serialised whole
/// into a map of values first: a post's page and the feed read its title,
/// slug and dates, and serialising copied its body too, which they take
/// rendered from elsewhere.
impl minijinja::value::Object for Post {
    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        self.template_field(key.as_str()?)
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Str(POST_FIELDS)
    }
}

/// Like [`Post`]'s, with `first_image`: a home page reads three of eight
/// fields, cheaper made when read than all serialised first.
impl minijinja::value::Object for PostSummary {
    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        match key.as_str()? {
            "first_image" => Some(minijinja::Value::from_serialize(&self.first_image)),
            name => self.post.template_field(name),
        }
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Str(SUMMARY_FIELDS)
    }
}

/// What a post is made of, as a form gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostInput {
    /// The title.
    pub title: String,
    /// The slug; empty to generate one from the title.
    pub slug: String,
    /// The markdown body.
    pub body: String,
    /// Whether it is published.
    pub published: bool,
}

impl From<&Post> for PostInput {
    fn from(post: &Post) -> PostInput {
        PostInput {
            title: post.title.clone(),
            slug: post.slug.clone(),
            body: post.body.clone(),
            published: post.published,
        }
    }
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Another post has this slug.
    SlugTaken(String),
    /// The image is still attached to posts.
    ImageInUse,
    /// A field is invalid; the message says which and why.
    Invalid(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::SlugTaken(slug) => {
                write!(
                    f,
                    "The slug \"{slug}\" is already used by another post; choose another."
                )
            }
            Refusal::ImageInUse => {
                f.write_str("The image is attached to a post; detach it from every post first.")
            }
            Refusal::Invalid(message) => f.write_str(message),
        }
    }
}

/// The outcome of a change: done, refused (the person can fix it), or
/// failed (a server error).
pub type Change<T> = Result<Result<T, Refusal>, Error>;

/// A URL name from a title: lowercase ASCII letters and digits joined by
/// single dashes (`"Hello, World!"` → `hello-world`); `post` when nothing
/// is left.
pub fn slugify(title: &str) -> String {
    let mut slug = String::new();
    for word in title
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
    {
        if !slug.is_empty() {
            slug.push('-');
        }
        slug.push_str(&word.to_ascii_lowercase());
        if slug.len() >= 80 {
            break;
        }
    }
    slug.truncate(80);
    let slug = slug.trim_end_matches('-').to_owned();
    if slug.is_empty() {
        "post".to_owned()
    } else {
        slug
    }
}

/// Whether `slug` is a valid URL name as [`slugify`] makes them.
fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 80
        && !slug.starts_with('-')
        && !slug.ends_with('-')
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

const POST_COLUMNS: &str = "id, title, slug, body, published, created_at, updated_at";
/// [`IMAGE_COLUMNS`] of the table `i`, named as themselves, for joins
/// (made once: the page queries are built per request).
static IMAGE_COLUMNS_OF_I: LazyLock<String> = LazyLock::new(|| prefixed(IMAGE_COLUMNS, "i"));
/// [`POST_COLUMNS`] with an empty body.
const SUMMARY_COLUMNS: &str = "id, title, slug, '' AS body, published, created_at, updated_at";
const IMAGE_COLUMNS: &str = "id, file_name, original_name, content_type, size, width, height";

fn post(row: &Row<'_>) -> Result<Post, Error> {
    Ok(Post {
        id: row.get("id")?,
        title: row.get("title")?,
        slug: row.get("slug")?,
        body: row.get("body")?,
        published: row.get("published")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

fn image(row: &Row<'_>) -> Result<Image, Error> {
    Ok(Image {
        id: row.get("id")?,
        file_name: row.get("file_name")?,
        original_name: row.get("original_name")?,
        content_type: row.get("content_type")?,
        size: row.get("size")?,
        width: row.get("width")?,
        height: row.get("height")?,
    })
}

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

    // --- users ---

    /// Creates a user with an argon2id hash of `password`.
    pub fn create_user(&self, username: &str, password: &str) -> Change<User> {
        let username = username.trim();
        if username.is_empty() || username.len() > 64 || username.chars().any(char::is_control) {
            return Ok(Err(Refusal::Invalid(
                "A username is 1 to 64 characters, without control characters.".to_owned(),
            )));
        }
        if password.chars().count() < 8 {
            return Ok(Err(Refusal::Invalid(
                "A password needs at least 8 characters.".to_owned(),
            )));
        }
        let hash = crate::auth::hash_password(password)?;
        match self.db.query(
            "INSERT INTO users (username, password_hash, created_at) VALUES (?1, ?2, ?3) RETURNING id",
            params![username, hash, now()],
        ) {
            Ok(rows) => {
                let id = rows.first().map(|row| row.get("id")).transpose()?.unwrap_or(0);
                Ok(Ok(User {
                    id,
                    username: username.to_owned(),
                }))
            }
            Err(error) if error.is_constraint() => Ok(Err(Refusal::Invalid(format!(
                "A user named \"{username}\" already exists."
            )))),
            Err(error) => Err(error.into()),
        }
    }

    /// The user with this id.
    pub fn user(&self, id: i64) -> Result<Option<User>, Error> {
        let rows = self
            .db
            .query("SELECT id, username FROM users WHERE id = ?1", params![id])?;
        rows.first()
            .map(|row| {
                Ok(User {
                    id: row.get("id")?,
                    username: row.get("username")?,
                })
            })
            .transpose()
    }

    /// The user and password hash for a login name.
    pub fn credentials(&self, username: &str) -> Result<Option<(User, String)>, Error> {
        let rows = self.db.query(
            "SELECT id, username, password_hash FROM users WHERE username = ?1",
            params![username],
        )?;
        rows.first()
            .map(|row| {
                Ok((
                    User {
                        id: row.get("id")?,
                        username: row.get("username")?,
                    },
                    row.get("password_hash")?,
                ))
            })
            .transpose()
    }

    /// Failed logins for `username` from `address` since `since`, and the
    /// time of the oldest of them.
    pub fn login_failures(
        &self,
        username: &str,
        address: &str,
        since: i64,
    ) -> Result<(u32, Option<i64>), Error> {
        let rows = self.db.query(
            "SELECT COUNT(*) AS failures, MIN(failed_at) AS oldest FROM login_failures \
             WHERE username = ?1 AND address = ?2 AND failed_at > ?3",
            params![username, address, since],
        )?;
        match rows.first() {
            Some(row) => Ok((row.get("failures")?, row.get("oldest")?)),
            None => Ok((0, None)),
        }
    }

    /// Records a failed login, forgetting those older than `forget_before`.
    pub fn record_login_failure(
        &self,
        username: &str,
        address: &str,
        forget_before: i64,
    ) -> Result<(), Error> {
        self.db.transaction(&[
            Statement::new(
                "DELETE FROM login_failures WHERE failed_at <= ?1",
                params![forget_before],
            ),
            Statement::new(
                "INSERT INTO login_failures (username, address, failed_at) VALUES (?1, ?2, ?3)",
                params![username, address, now()],
            ),
        ])?;
        Ok(())
    }

    /// Forgets the failed logins for `username` from `address`.
    pub fn clear_login_failures(&self, username: &str, address: &str) -> Result<(), Error> {
        self.db.execute(
            "DELETE FROM login_failures WHERE username = ?1 AND address = ?2",
            params![username, address],
        )?;
        Ok(())
    }

    // --- posts ---

    /// One page (from 1) of published posts, newest first, with each
    /// post's first image; and the number of published posts.
    pub fn published_page(
        &self,
        page: u32,
        per_page: u32,
    ) -> Result<(Vec<PostSummary>, u32), Error> {
        let offset = (page.max(1) - 1) * per_page;
        // LIMIT and OFFSET are written into the SQL, not bound: SQLite
        // re-prepares a statement with a bound LIMIT on every run, several
        // times the cost of the query. They are our own integers, so
        // nothing can be injected.
        let page_order = format!(
            "WHERE published = 1 ORDER BY created_at DESC, id DESC LIMIT {per_page} OFFSET {offset}"
        );
        // Both queries walk the `posts_by_date` index and need no temporary
        // table: the page's ids are read as a subquery in FROM, which SQLite
        // runs as a co-routine when it is the outer loop (CROSS JOIN keeps
        // it there), where `id IN (subquery)` built a temporary index and
        // sorting its rows a temporary b-tree, on every request (EXPLAIN:
        // OpenEphemeral, SorterOpen; the home page took 24% more CPU).
        let statements = [
            Statement::new(
                format!("SELECT {SUMMARY_COLUMNS} FROM posts {page_order}"),
                params![],
            ),
            Statement::new(
                format!(
                    "SELECT pi.post_id AS post_id, {} \
                     FROM (SELECT id FROM posts {page_order}) AS page \
                     CROSS JOIN post_images pi ON pi.post_id = page.id \
                     JOIN images i ON i.id = pi.image_id \
                     WHERE pi.position = (SELECT MIN(position) FROM post_images WHERE post_id = pi.post_id)",
                    &*IMAGE_COLUMNS_OF_I
                ),
                params![],
            ),
            Statement::new(
                "SELECT COUNT(*) AS total FROM posts WHERE published = 1",
                params![],
            ),
        ];
        // one transaction: the three reads see the same snapshot
        let results = self.db.transaction(&statements)?;
        let [posts, images, total] = results.as_slice() else {
            return Err(Error::internal("the database returned too few results"));
        };
        let mut firsts = Vec::new();
        for row in images.iter() {
            firsts.push((row.get::<i64>("post_id")?, image(&row)?));
        }
        let summaries = posts
            .iter()
            .map(|row| {
                let post = post(&row)?;
                let first_image = firsts
                    .iter()
                    .find(|(post_id, _)| *post_id == post.id)
                    .map(|(_, image)| image.clone());
                Ok(PostSummary { post, first_image })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let total = total
            .first()
            .map(|row| row.get("total"))
            .transpose()?
            .unwrap_or(0);
        Ok((summaries, total))
    }

    /// The `count` newest published posts, with their bodies.
    pub fn latest_posts(&self, count: u32) -> Result<Vec<Post>, Error> {
        // the count is written into the SQL, as in `published_page`
        let rows = self.db.query(
            &format!(
                "SELECT {POST_COLUMNS} FROM posts WHERE published = 1 \
                 ORDER BY created_at DESC, id DESC LIMIT {count}"
            ),
            params![],
        )?;
        rows.iter().map(|row| post(&row)).collect()
    }

    /// Every post, drafts too, newest first, without their bodies (empty),
    /// which a list of every post does not show.
    pub fn all_posts(&self) -> Result<Vec<Post>, Error> {
        let rows = self.db.query(
            &format!("SELECT {SUMMARY_COLUMNS} FROM posts ORDER BY created_at DESC, id DESC"),
            params![],
        )?;
        rows.iter().map(|row| post(&row)).collect()
    }

    /// The published post with this slug and its images in order, read in
    /// one transaction (each transaction takes and gives back SQLite's
    /// shared-memory read lock with system calls).
    pub fn published_post(&self, slug: &str) -> Result<Option<(Post, Vec<Image>)>, Error> {
        let results = self.db.transaction(&[
            Statement::new(
                format!("SELECT {POST_COLUMNS} FROM posts WHERE slug = ?1 AND published = 1"),
                params![slug],
            ),
            Statement::new(
                format!(
                    "SELECT {} FROM posts p JOIN post_images pi ON pi.post_id = p.id \
                     JOIN images i ON i.id = pi.image_id \
                     WHERE p.slug = ?1 AND p.published = 1 ORDER BY pi.position, pi.image_id",
                    &*IMAGE_COLUMNS_OF_I
                ),
                params![slug],
            ),
        ])?;
        let [posts, images] = results.as_slice() else {
            return Err(Error::internal("the database returned too few results"));
        };
        let Some(found) = posts.first() else {
            return Ok(None);
        };
        let images = images
            .iter()
            .map(|row| image(&row))
            .collect::<Result<_, _>>()?;
        Ok(Some((post(&found)?, images)))
    }

    /// The post with this id.
    pub fn post(&self, id: i64) -> Result<Option<Post>, Error> {
        let rows = self.db.query(
            &format!("SELECT {POST_COLUMNS} FROM posts WHERE id = ?1"),
            params![id],
        )?;
        rows.first().map(|row| post(&row)).transpose()
    }

    /// Whether `input` may become a post (a title of 1 to 200 characters,
    /// a slug that is empty or well formed); creating it may still find
    /// its slug taken.
    pub fn check_post(input: &PostInput) -> Result<(), Refusal> {
        if input.title.trim().is_empty() {
            return Err(Refusal::Invalid("A post needs a title.".to_owned()));
        }
        if input.title.chars().count() > 200 {
            return Err(Refusal::Invalid(
                "A title has at most 200 characters.".to_owned(),
            ));
        }
        if !input.slug.is_empty() && !valid_slug(&input.slug) {
            return Err(Refusal::Invalid(format!(
                "The slug \"{}\" may hold only lowercase letters, digits and inner dashes (e.g. \"my-first-post\").",
                input.slug
            )));
        }
        Ok(())
    }

    /// Creates a post. An empty slug is made from the title, with `-2`,
    /// `-3`, ... added while taken; a slug given explicitly must be free.
    pub fn create_post(&self, input: &PostInput) -> Change<Post> {
        if let Err(refusal) = Self::check_post(input) {
            return Ok(Err(refusal));
        }
        let generated = input.slug.is_empty();
        let base = if generated {
            slugify(&input.title)
        } else {
            input.slug.clone()
        };
        let time = now();
        for attempt in 1..=100 {
            let slug = if attempt == 1 {
                base.clone()
            } else {
                format!("{base}-{attempt}")
            };
            match self.db.query(
                &format!(
                    "INSERT INTO posts (title, slug, body, published, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5) RETURNING {POST_COLUMNS}"
                ),
                params![
                    input.title.trim(),
                    slug.as_str(),
                    input.body.as_str(),
                    input.published,
                    time
                ],
            ) {
                Ok(rows) => {
                    let row = rows
                        .first()
                        .ok_or_else(|| Error::internal("INSERT ... RETURNING returned no row"))?;
                    return Ok(Ok(post(&row)?));
                }
                Err(error) if error.is_constraint() && generated => continue,
                Err(error) if error.is_constraint() => return Ok(Err(Refusal::SlugTaken(slug))),
                Err(error) => return Err(error.into()),
            }
        }
        Ok(Err(Refusal::SlugTaken(base)))
    }

    /// Changes a post; `None` if there is no such post. An empty slug
    /// keeps the current one.
    pub fn update_post(&self, id: i64, input: &PostInput) -> Change<Option<Post>> {
        if let Err(refusal) = Self::check_post(input) {
            return Ok(Err(refusal));
        }
        let result = self.db.query(
            &format!(
                "UPDATE posts SET title = ?1, slug = COALESCE(NULLIF(?2, ''), slug), body = ?3, \
                 published = ?4, updated_at = ?5 WHERE id = ?6 RETURNING {POST_COLUMNS}"
            ),
            params![
                input.title.trim(),
                input.slug.as_str(),
                input.body.as_str(),
                input.published,
                now(),
                id
            ],
        );
        match result {
            Ok(rows) => Ok(Ok(rows.first().map(|row| post(&row)).transpose()?)),
            Err(error) if error.is_constraint() => Ok(Err(Refusal::SlugTaken(input.slug.clone()))),
            Err(error) => Err(error.into()),
        }
    }

    /// Publishes or unpublishes a post; `false` if there is none.
    pub fn set_published(&self, id: i64, published: bool) -> Result<bool, Error> {
        let changed = self.db.execute(
            "UPDATE posts SET published = ?1, updated_at = ?2 WHERE id = ?3",
            params![published, now(), id],
        )?;
        Ok(changed > 0)
    }

    /// Deletes a post (its images stay); `false` if there was none.
    pub fn delete_post(&self, id: i64) -> Result<bool, Error> {
        Ok(self
            .db
            .execute("DELETE FROM posts WHERE id = ?1", params![id])?
            > 0)
    }

    // --- images ---

    /// Records an uploaded image.
    pub fn create_image(&self, image: &Image) -> Result<Image, Error> {
        let rows = self.db.query(
            &format!(
                "INSERT INTO images (file_name, original_name, content_type, size, width, height, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING {IMAGE_COLUMNS}"
            ),
            params![
                image.file_name.as_str(),
                image.original_name.as_str(),
                image.content_type.as_str(),
                image.size,
                image.width,
                image.height,
                now()
            ],
        )?;
        let row = rows
            .first()
            .ok_or_else(|| Error::internal("INSERT ... RETURNING returned no row"))?;
        self::image(&row)
    }

    /// Every image, newest first, with how many posts use it.
    pub fn images(&self) -> Result<Vec<(Image, u32)>, Error> {
        let rows = self.db.query(
            &format!(
                "SELECT {}, (SELECT COUNT(*) FROM post_images pi WHERE pi.image_id = i.id) AS uses \
                 FROM images i ORDER BY i.id DESC",
                &*IMAGE_COLUMNS_OF_I
            ),
            params![],
        )?;
        rows.iter()
            .map(|row| Ok((image(&row)?, row.get("uses")?)))
            .collect()
    }

    /// The image with this id.
    pub fn image(&self, id: i64) -> Result<Option<Image>, Error> {
        let rows = self.db.query(
            &format!("SELECT {IMAGE_COLUMNS} FROM images WHERE id = ?1"),
            params![id],
        )?;
        rows.first().map(|row| image(&row)).transpose()
    }

    /// A post's images, in order.
    pub fn post_images(&self, post_id: i64) -> Result<Vec<Image>, Error> {
        let rows = self.db.query(
            &format!(
                "SELECT {} FROM post_images pi JOIN images i ON i.id = pi.image_id \
                 WHERE pi.post_id = ?1 ORDER BY pi.position, pi.image_id",
                &*IMAGE_COLUMNS_OF_I
            ),
            params![post_id],
        )?;
        rows.iter().map(|row| image(&row)).collect()
    }

    /// Attaches an image at the end of a post's images (no change if it is
    /// attached already); `false` when the post or the image does not exist.
    pub fn attach(&self, post_id: i64, image_id: i64) -> Result<bool, Error> {
        let result = self.db.execute(
            "INSERT INTO post_images (post_id, image_id, position) \
             SELECT ?1, ?2, COALESCE(MAX(position), 0) + 1 FROM post_images WHERE post_id = ?1 \
             ON CONFLICT (post_id, image_id) DO NOTHING",
            params![post_id, image_id],
        );
        match result {
            Ok(_) => Ok(true),
            Err(error) if error.is_constraint() => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Moves an attached image one place earlier (`earlier`) or later in
    /// its post, swapping it with its neighbour; `false` if it is not
    /// attached or already first (last).
    pub fn move_image(&self, post_id: i64, image_id: i64, earlier: bool) -> Result<bool, Error> {
        let (compare, order) = if earlier { ("<", "DESC") } else { (">", "ASC") };
        let changed = self.db.execute(
            &format!(
                "WITH me AS (SELECT position AS p FROM post_images WHERE post_id = ?1 AND image_id = ?2), \
                 other AS (SELECT image_id, position AS p FROM post_images \
                    WHERE post_id = ?1 AND position {compare} (SELECT p FROM me) \
                    ORDER BY position {order} LIMIT 1) \
                 UPDATE post_images SET position = CASE WHEN image_id = ?2 \
                    THEN (SELECT p FROM other) ELSE (SELECT p FROM me) END \
                 WHERE post_id = ?1 AND image_id IN (?2, (SELECT image_id FROM other)) \
                    AND EXISTS (SELECT 1 FROM other)"
            ),
            params![post_id, image_id],
        )?;
        Ok(changed == 2)
    }

    /// Detaches an image from a post; `false` if it was not attached.
    pub fn detach(&self, post_id: i64, image_id: i64) -> Result<bool, Error> {
        Ok(self.db.execute(
            "DELETE FROM post_images WHERE post_id = ?1 AND image_id = ?2",
            params![post_id, image_id],
        )? > 0)
    }

    /// Deletes an image record unless a post uses it; its stored file is
    /// the caller's to delete. `Ok(None)` if there was no such image.
    pub fn delete_image(&self, id: i64) -> Change<Option<Image>> {
        let Some(image) = self.image(id)? else {
            return Ok(Ok(None));
        };
        match self
            .db
            .execute("DELETE FROM images WHERE id = ?1", params![id])
        {
            Ok(_) => Ok(Ok(Some(image))),
            // the foreign key refuses while post_images rows point here
            Err(error) if error.is_constraint() => Ok(Err(Refusal::ImageInUse)),
            Err(error) => Err(error.into()),
        }
    }
}

/// `a, b` → `t.a AS a, t.b AS b`.
fn prefixed(columns: &str, table: &str) -> String {
    columns
        .split(", ")
        .map(|column| format!("{table}.{column} AS {column}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_made_from_titles() {
        for (title, slug) in [
            ("Hello, World!", "hello-world"),
            ("  Rust 2024: what's new?  ", "rust-2024-what-s-new"),
            ("<script>alert(1)</script>", "script-alert-1-script"),
            ("Ünïcode only ☃", "n-code-only"),
            ("☃☃", "post"),
            ("", "post"),
        ] {
            assert_eq!(slugify(title), slug, "{title:?}");
            assert!(valid_slug(&slugify(title)));
        }
        assert_eq!(slugify(&"word ".repeat(40)).len(), 79);
        for bad in ["", "-a", "a-", "A", "a b", "a/b", "ü"] {
            assert!(!valid_slug(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_summary_serialises_as_its_post_with_the_first_image() {
        let post = Post {
            id: 7,
            title: "T".to_owned(),
            slug: "t".to_owned(),
            body: String::new(),
            published: true,
            created_at: 1,
            updated_at: 2,
        };
        let summary = PostSummary {
            post: post.clone(),
            first_image: None,
        };
        let mut expected = serde_json::to_value(&post).unwrap();
        expected["first_image"] = serde_json::Value::Null;
        assert_eq!(serde_json::to_value(&summary).unwrap(), expected);
    }

    #[test]
    fn in_templates_a_summary_reads_as_it_serialises() {
        let summary = PostSummary {
            post: Post {
                id: 7,
                title: "A title longer than a small string's inline bytes".to_owned(),
                slug: "t".to_owned(),
                body: String::new(),
                published: true,
                created_at: 1,
                updated_at: 2,
            },
            first_image: Some(Image {
                id: 3,
                file_name: "f.png".to_owned(),
                original_name: "o.png".to_owned(),
                content_type: "image/png".to_owned(),
                size: 10,
                width: 4,
                height: 5,
            }),
        };
        let object = minijinja::Value::from_object(summary.clone());
        let serialised = minijinja::Value::from_serialize(&summary);
        let keys = |value: &minijinja::Value| -> Vec<String> {
            value
                .try_iter()
                .unwrap()
                .map(|key| key.to_string())
                .collect()
        };
        let mut expected_keys: Vec<String> = serde_json::to_value(&summary)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let mut object_keys = keys(&object);
        expected_keys.sort();
        object_keys.sort();
        assert_eq!(object_keys, expected_keys);
        for key in keys(&serialised) {
            assert_eq!(
                object.get_attr(&key).unwrap(),
                serialised.get_attr(&key).unwrap(),
                "{key}"
            );
        }
        let env = minijinja::Environment::new();
        let text = env
            .render_str(
                "{{ p.title }}|{{ p.first_image.file_name }}|{{ p.created_at }}",
                minijinja::context! { p => object },
            )
            .unwrap();
        assert_eq!(
            text,
            "A title longer than a small string's inline bytes|f.png|1"
        );
    }

    #[test]
    fn columns_are_prefixed_and_named() {
        assert_eq!(prefixed("id, size", "i"), "i.id AS id, i.size AS size");
    }
}
