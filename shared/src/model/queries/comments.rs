//! Readers' comments: written by the frontend, waiting for the admin's
//! approval, shown under their post once approved.

use app_api::{params, prelude::*, sdk::db::Statement};
use serde::Serialize;

use super::{Blog, COMMENT_COLUMNS_OF_C};
use crate::model::{
    entities::{Comment, now},
    entity::Entity,
    validation::{Change, CommentInput, Refusal},
};

/// How many comments one client (an address, an IPv6 client's /64) may
/// leave within a window of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommentLimit {
    /// Comments allowed within the window.
    pub count: u32,
    /// The window, in seconds.
    pub window: i64,
}

/// A comment waiting for approval, with the post it is about.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PendingComment {
    /// The comment.
    #[serde(flatten)]
    pub comment: Comment,
    /// Its post's title.
    pub post_title: String,
    /// Its post's slug.
    pub post_slug: String,
    /// Its post's language.
    pub post_lang: String,
}

impl Blog {
    /// Records a comment on a post, waiting for approval, unless `address`
    /// left `limit.count` in the last `limit.window` seconds (then
    /// [`Refusal::TooMany`]). The check and the insert are one statement,
    /// so parallel requests cannot overrun the limit. Addresses older than
    /// the window are forgotten in the same transaction: they are needed
    /// for nothing else.
    pub fn add_comment(
        &self,
        post_id: i64,
        user_id: Option<i64>,
        input: &CommentInput,
        address: &str,
        limit: CommentLimit,
    ) -> Change<Comment> {
        if let Err(refusal) = input.check() {
            return Ok(Err(refusal));
        }
        let time = now();
        let since = time - limit.window;
        let results = self.db.transaction(&[
            Statement::new(
                format!(
                    "INSERT INTO comments (post_id, user_id, author, body, approved, address, created_at) \
                     SELECT ?1, ?2, ?3, ?4, 0, ?5, ?6 \
                     WHERE (SELECT COUNT(*) FROM comments WHERE address = ?5 AND created_at > ?7) < ?8 \
                     RETURNING {}",
                    Comment::COLUMNS
                ),
                params![
                    post_id,
                    user_id,
                    input.author.trim(),
                    input.body.trim().replace("\r\n", "\n").as_str(),
                    address,
                    time,
                    since,
                    limit.count
                ],
            ),
            Statement::new(
                "UPDATE comments SET address = '' WHERE address <> '' AND created_at <= ?1",
                params![since],
            ),
        ])?;
        match results.first().and_then(|rows| rows.first()) {
            Some(row) => Ok(Ok(Comment::from_row(&row)?)),
            None => Ok(Err(Refusal::TooMany)),
        }
    }

    /// The comments waiting for approval, oldest first, with their posts.
    pub fn pending_comments(&self) -> Result<Vec<PendingComment>, Error> {
        let rows = self.db.query(
            &format!(
                "SELECT {}, p.title AS post_title, p.slug AS post_slug, p.lang AS post_lang \
                 FROM comments c JOIN posts p ON p.id = c.post_id \
                 WHERE c.approved = 0 ORDER BY c.created_at, c.id",
                &*COMMENT_COLUMNS_OF_C
            ),
            params![],
        )?;
        rows.iter()
            .map(|row| {
                Ok(PendingComment {
                    comment: Comment::from_row(&row)?,
                    post_title: row.get("post_title")?,
                    post_slug: row.get("post_slug")?,
                    post_lang: row.get("post_lang")?,
                })
            })
            .collect()
    }

    /// How many comments wait for approval.
    pub fn pending_comment_count(&self) -> Result<i64, Error> {
        let rows = self.db.query(
            "SELECT COUNT(*) AS waiting FROM comments WHERE approved = 0",
            params![],
        )?;
        Ok(rows
            .first()
            .map(|row| row.get("waiting"))
            .transpose()?
            .unwrap_or(0))
    }

    /// Approves a comment: it shows under its post. `false` if there is no
    /// such comment.
    pub fn approve_comment(&self, id: i64) -> Result<bool, Error> {
        Ok(self.db.execute(
            "UPDATE comments SET approved = 1 WHERE id = ?1",
            params![id],
        )? > 0)
    }

    /// Deletes a comment; `false` if there was none.
    pub fn delete_comment(&self, id: i64) -> Result<bool, Error> {
        Ok(self
            .db
            .execute("DELETE FROM comments WHERE id = ?1", params![id])?
            > 0)
    }
}
