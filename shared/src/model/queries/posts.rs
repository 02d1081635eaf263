//! Posts: pages of them, one by its slug, and their changes.

use app_api::{params, prelude::*, sdk::db::Statement};

use super::{Blog, COMMENT_COLUMNS_OF_C, IMAGE_COLUMNS_OF_I, POST_COLUMNS, SUMMARY_COLUMNS};
use crate::model::{
    entities::{Comment, Image, Post, PostSummary, now},
    entity::Entity,
    validation::{Change, PostInput, Refusal, slugify},
};

/// A published post as its page shows it.
#[derive(Debug, Clone)]
pub struct PublishedPost {
    /// The post.
    pub post: Post,
    /// Its images, in order.
    pub images: Vec<Image>,
    /// Its approved comments, oldest first.
    pub comments: Vec<Comment>,
}

impl Blog {
    /// One page (from 1) of the published posts in `lang`, newest first,
    /// with each post's first image; and the number of them.
    pub fn published_page(
        &self,
        lang: &str,
        page: u32,
        per_page: u32,
    ) -> Result<(Vec<PostSummary>, u32), Error> {
        // in u64: a page number near u32::MAX would overflow u32 (a 500
        // for `?page=4294967295`); past the last page the page is empty
        let offset = u64::from(page.max(1) - 1) * u64::from(per_page);
        // LIMIT and OFFSET are written into the SQL, not bound: SQLite
        // re-prepares a statement with a bound LIMIT on every run, several
        // times the cost of the query. They are our own integers, so
        // nothing can be injected.
        let page_order = format!(
            "WHERE lang = ?1 AND published = 1 ORDER BY created_at DESC, id DESC LIMIT {per_page} OFFSET {offset}"
        );
        // Both queries walk the `posts_by_date` index and need no temporary
        // table: the page's ids are read as a subquery in FROM, which SQLite
        // runs as a co-routine when it is the outer loop (CROSS JOIN keeps
        // it there; its condition is in WHERE, since PostgreSQL allows no
        // ON after CROSS JOIN), where `id IN (subquery)` built a temporary index and
        // sorting its rows a temporary b-tree, on every request (EXPLAIN:
        // OpenEphemeral, SorterOpen; the home page took 24% more CPU).
        let statements = [
            Statement::new(
                format!("SELECT {} FROM posts {page_order}", &*SUMMARY_COLUMNS),
                params![lang],
            ),
            Statement::new(
                format!(
                    "SELECT pi.post_id AS post_id, {} \
                     FROM (SELECT id FROM posts {page_order}) AS page \
                     CROSS JOIN post_images pi \
                     JOIN images i ON i.id = pi.image_id \
                     WHERE pi.post_id = page.id \
                     AND pi.position = (SELECT MIN(position) FROM post_images WHERE post_id = pi.post_id)",
                    &*IMAGE_COLUMNS_OF_I
                ),
                params![lang],
            ),
            Statement::new(
                "SELECT COUNT(*) AS total FROM posts WHERE lang = ?1 AND published = 1",
                params![lang],
            ),
        ];
        // one transaction: the three reads see the same snapshot
        let results = self.db.transaction(&statements)?;
        let [posts, images, total] = results.as_slice() else {
            return Err(Error::internal("the database returned too few results"));
        };
        let mut firsts = Vec::new();
        for row in images.iter() {
            firsts.push((row.get::<i64>("post_id")?, Image::from_row(&row)?));
        }
        let summaries = posts
            .iter()
            .map(|row| {
                let post = Post::from_row(&row)?;
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

    /// The `count` newest published posts in `lang`, with their bodies.
    pub fn latest_posts(&self, lang: &str, count: u32) -> Result<Vec<Post>, Error> {
        // the count is written into the SQL, as in `published_page`
        let rows = self.db.query(
            &format!(
                "SELECT {POST_COLUMNS} FROM posts WHERE lang = ?1 AND published = 1 \
                 ORDER BY created_at DESC, id DESC LIMIT {count}"
            ),
            params![lang],
        )?;
        rows.iter().map(|row| Post::from_row(&row)).collect()
    }

    /// Every post, drafts too, newest first, without their bodies (empty),
    /// which a list of every post does not show.
    pub fn all_posts(&self) -> Result<Vec<Post>, Error> {
        let rows = self.db.query(
            &format!(
                "SELECT {} FROM posts ORDER BY created_at DESC, id DESC",
                &*SUMMARY_COLUMNS
            ),
            params![],
        )?;
        rows.iter().map(|row| Post::from_row(&row)).collect()
    }

    /// The published post with this slug, its images in order and its
    /// approved comments, read in one transaction (each transaction takes
    /// and gives back SQLite's shared-memory read lock with system calls).
    pub fn published_post(&self, slug: &str) -> Result<Option<PublishedPost>, Error> {
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
            Statement::new(
                format!(
                    "SELECT {} FROM comments c JOIN posts p ON p.id = c.post_id \
                     WHERE p.slug = ?1 AND p.published = 1 AND c.approved = 1 \
                     ORDER BY c.created_at, c.id",
                    &*COMMENT_COLUMNS_OF_C
                ),
                params![slug],
            ),
        ])?;
        let [posts, images, comments] = results.as_slice() else {
            return Err(Error::internal("the database returned too few results"));
        };
        let Some(found) = posts.first() else {
            return Ok(None);
        };
        let images = images
            .iter()
            .map(|row| Image::from_row(&row))
            .collect::<Result<_, _>>()?;
        let comments = comments
            .iter()
            .map(|row| Comment::from_row(&row))
            .collect::<Result<_, _>>()?;
        Ok(Some(PublishedPost {
            post: Post::from_row(&found)?,
            images,
            comments,
        }))
    }

    /// The post with this id.
    pub fn post(&self, id: i64) -> Result<Option<Post>, Error> {
        let rows = self.db.query(
            &format!("SELECT {POST_COLUMNS} FROM posts WHERE id = ?1"),
            params![id],
        )?;
        rows.first().map(|row| Post::from_row(&row)).transpose()
    }

    /// Creates a post. An empty slug is made from the title, with `-2`,
    /// `-3`, ... added while taken; a slug given explicitly must be free.
    pub fn create_post(&self, input: &PostInput) -> Change<Post> {
        if let Err(refusal) = input.check() {
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
                    "INSERT INTO posts (title, slug, body, published, lang, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?6, ?5, ?5) RETURNING {POST_COLUMNS}"
                ),
                params![
                    input.title.trim(),
                    slug.as_str(),
                    input.body.as_str(),
                    input.published,
                    time,
                    input.lang.as_str()
                ],
            ) {
                Ok(rows) => {
                    let row = rows
                        .first()
                        .ok_or_else(|| Error::internal("INSERT ... RETURNING returned no row"))?;
                    return Ok(Ok(Post::from_row(&row)?));
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
        if let Err(refusal) = input.check() {
            return Ok(Err(refusal));
        }
        let result = self.db.query(
            &format!(
                "UPDATE posts SET title = ?1, slug = COALESCE(NULLIF(?2, ''), slug), body = ?3, \
                 published = ?4, updated_at = ?5, lang = ?7 WHERE id = ?6 RETURNING {POST_COLUMNS}"
            ),
            params![
                input.title.trim(),
                input.slug.as_str(),
                input.body.as_str(),
                input.published,
                now(),
                id,
                input.lang.as_str()
            ],
        );
        match result {
            Ok(rows) => Ok(Ok(rows
                .first()
                .map(|row| Post::from_row(&row))
                .transpose()?)),
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
}
