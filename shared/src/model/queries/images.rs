//! Images and their ordered places in posts.

use app_api::{params, prelude::*};

use super::{Blog, IMAGE_COLUMNS, IMAGE_COLUMNS_OF_I};
use crate::model::{
    entities::{Image, now},
    entity::Entity,
    validation::{Change, Refusal},
};

impl Blog {
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
        Image::from_row(&row)
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
            .map(|row| Ok((Image::from_row(&row)?, row.get("uses")?)))
            .collect()
    }

    /// The image with this id.
    pub fn image(&self, id: i64) -> Result<Option<Image>, Error> {
        let rows = self.db.query(
            &format!("SELECT {IMAGE_COLUMNS} FROM images WHERE id = ?1"),
            params![id],
        )?;
        rows.first().map(|row| Image::from_row(&row)).transpose()
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
        rows.iter().map(|row| Image::from_row(&row)).collect()
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
