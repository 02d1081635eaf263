//! The blog's rows: users, posts and images, each field written once (see
//! [`entity!`](super::entity::entity)), and a post as a listing shows it.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::entity::entity;

/// Seconds since the Unix epoch: how rows hold times.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

entity! {
    /// A user who can log in.
    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
    pub struct User {
        /// Its id.
        pub id: i64,
        /// Its login name.
        pub username: String,
    }
}

entity! {
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
        /// Its language's code: `en`, `nl`.
        pub lang: String,
        /// When it was created (Unix seconds).
        pub created_at: i64,
        /// When it was last changed (Unix seconds).
        pub updated_at: i64,
    }
}

entity! {
    /// A reader's comment on a post.
    #[derive(Debug, Clone, Serialize, PartialEq, Eq)]
    pub struct Comment {
        /// Its id.
        pub id: i64,
        /// The post it is about.
        pub post_id: i64,
        /// The name it is signed with (the user's, when logged in).
        pub author: String,
        /// Its text, in markdown (raw HTML shows as text).
        pub body: String,
        /// Whether the admin approved it (only then is it shown).
        pub approved: bool,
        /// When it was written (Unix seconds).
        pub created_at: i64,
    }
}

entity! {
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
}

/// A post on a listing page, with its first image. It serialises as the
/// post's fields and `first_image` side by side (templates read it as an
/// object instead: see `presentation`).
#[derive(Debug, Clone, Serialize)]
pub struct PostSummary {
    /// The post, without its body (empty): a listing does not show it, and
    /// reading and copying ten bodies of a few KB made up a third of the
    /// home page's CPU.
    #[serde(flatten)]
    pub post: Post,
    /// Its first image, if it has any.
    pub first_image: Option<Image>,
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::model::entity::Entity;

    /// A post whose every field differs from the default.
    pub(in crate::model) fn post() -> Post {
        Post {
            id: 7,
            title: "A title longer than a small string's inline bytes".to_owned(),
            slug: "t".to_owned(),
            body: "Some *markdown*.".to_owned(),
            published: true,
            lang: "nl".to_owned(),
            created_at: 1,
            updated_at: 2,
        }
    }

    /// An image whose every field differs from the default.
    pub(in crate::model) fn image() -> Image {
        Image {
            id: 3,
            file_name: "f.png".to_owned(),
            original_name: "o.png".to_owned(),
            content_type: "image/png".to_owned(),
            size: 10,
            width: 4,
            height: 5,
        }
    }

    #[test]
    fn the_columns_and_template_fields_are_the_serialised_fields() {
        fn check<T: Entity + Serialize>(entity: &T) {
            let serialised = serde_json::to_value(entity).unwrap();
            let names: Vec<&String> = serialised.as_object().unwrap().keys().collect();
            let mut fields: Vec<&str> = T::FIELDS.to_vec();
            let mut sorted: Vec<&str> = names.iter().map(|name| name.as_str()).collect();
            fields.sort_unstable();
            sorted.sort_unstable();
            assert_eq!(fields, sorted);
            assert_eq!(T::COLUMNS, T::FIELDS.join(", "));
            for name in T::FIELDS {
                let value = entity.template_field(name).unwrap();
                assert_eq!(
                    serde_json::to_value(&value).unwrap(),
                    serialised[name],
                    "{name}"
                );
            }
            assert!(entity.template_field("password_hash").is_none());
        }
        check(&User {
            id: 1,
            username: "ada".to_owned(),
        });
        check(&post());
        check(&image());
        check(&Comment {
            id: 1,
            post_id: 2,
            author: "Ann".to_owned(),
            body: "Nice.".to_owned(),
            approved: true,
            created_at: 3,
        });
    }

    #[test]
    fn a_summary_serialises_as_its_post_with_the_first_image() {
        let summary = PostSummary {
            post: post(),
            first_image: None,
        };
        let mut expected = serde_json::to_value(post()).unwrap();
        expected["first_image"] = serde_json::Value::Null;
        assert_eq!(serde_json::to_value(&summary).unwrap(), expected);
    }
}
