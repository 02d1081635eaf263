//! What a change may be, and why one is refused: the rules for users and
//! posts, apart from the queries, so that a form can be checked before it
//! is sent (the admin's import does) and the rules have table tests.

use app_api::prelude::Error;

use super::entities::Post;

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

impl PostInput {
    /// Whether this may become a post (a title of 1 to 200 characters, a
    /// slug that is empty or well formed); creating it may still find its
    /// slug taken.
    pub fn check(&self) -> Result<(), Refusal> {
        if self.title.trim().is_empty() {
            return Err(Refusal::Invalid("A post needs a title.".to_owned()));
        }
        if self.title.chars().count() > 200 {
            return Err(Refusal::Invalid(
                "A title has at most 200 characters.".to_owned(),
            ));
        }
        if !self.slug.is_empty() && !valid_slug(&self.slug) {
            return Err(Refusal::Invalid(format!(
                "The slug \"{}\" may hold only lowercase letters, digits and inner dashes (e.g. \"my-first-post\").",
                self.slug
            )));
        }
        Ok(())
    }
}

/// Whether a user may be created with this (trimmed) username and this
/// password.
pub(super) fn check_user(username: &str, password: &str) -> Result<(), Refusal> {
    if username.is_empty() || username.len() > 64 || username.chars().any(char::is_control) {
        return Err(Refusal::Invalid(
            "A username is 1 to 64 characters, without control characters.".to_owned(),
        ));
    }
    if password.chars().count() < 8 {
        return Err(Refusal::Invalid(
            "A password needs at least 8 characters.".to_owned(),
        ));
    }
    Ok(())
}

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
    fn posts_need_a_title_of_at_most_200_characters_and_a_well_formed_slug() {
        let input = |title: &str, slug: &str| PostInput {
            title: title.to_owned(),
            slug: slug.to_owned(),
            ..PostInput::default()
        };
        for (title, slug, accepted) in [
            ("A title", "", true),
            ("A title", "a-title-2", true),
            (&"é".repeat(200), "", true),
            ("", "", false),
            ("   ", "", false),
            (&"é".repeat(201), "", false),
            ("A title", "A-Title", false),
            ("A title", "-a", false),
        ] {
            assert_eq!(
                input(title, slug).check().is_ok(),
                accepted,
                "{title:?} {slug:?}"
            );
        }
    }

    #[test]
    fn users_need_a_plain_name_and_eight_characters_of_password() {
        for (username, password, accepted) in [
            ("ada", "12345678", true),
            ("ada", "ééééééé€", true),
            ("", "12345678", false),
            (&"a".repeat(65), "12345678", false),
            ("a\nb", "12345678", false),
            ("ada", "1234567", false),
        ] {
            assert_eq!(
                check_user(username, password).is_ok(),
                accepted,
                "{username:?} {password:?}"
            );
        }
    }
}
