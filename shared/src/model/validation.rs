//! What a change may be, and why one is refused: the rules for users and
//! posts, apart from the queries, so that a form can be checked before it
//! is sent (the admin's import does) and the rules have table tests.

use app_api::prelude::Error;

use super::entities::Post;

/// What a post is made of, as a form gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostInput {
    /// The title.
    pub title: String,
    /// The slug; empty to generate one from the title.
    pub slug: String,
    /// The markdown body.
    pub body: String,
    /// Whether it is published.
    pub published: bool,
    /// Its language's code.
    pub lang: String,
}

impl Default for PostInput {
    fn default() -> PostInput {
        PostInput {
            title: String::new(),
            slug: String::new(),
            body: String::new(),
            published: false,
            lang: crate::i18n::DEFAULT.to_owned(),
        }
    }
}

impl From<&Post> for PostInput {
    fn from(post: &Post) -> PostInput {
        PostInput {
            title: post.title.clone(),
            slug: post.slug.clone(),
            body: post.body.clone(),
            published: post.published,
            lang: post.lang.clone(),
        }
    }
}

/// What a reader's comment is made of, as the form gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommentInput {
    /// The name to sign with (a logged-in user's own name is used instead).
    pub author: String,
    /// The text.
    pub body: String,
}

/// The longest name a comment is signed with, in characters.
pub const MAX_AUTHOR_CHARS: usize = 80;
/// The longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 4000;

impl CommentInput {
    /// Whether this may become a comment: a name of 1 to 80 characters and
    /// a text of 1 to 4000, neither with control characters but line
    /// breaks in the text. The refusal's text is English: translate it
    /// with `i18n::tr`.
    pub fn check(&self) -> Result<(), Refusal> {
        let author = self.author.trim();
        if author.is_empty()
            || author.chars().count() > MAX_AUTHOR_CHARS
            || author.chars().any(char::is_control)
        {
            return Err(Refusal::Invalid(
                "Sign your comment with a name of at most 80 characters.".to_owned(),
            ));
        }
        let body = self.body.trim();
        if body.is_empty()
            || body.chars().count() > MAX_COMMENT_CHARS
            || body
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(Refusal::Invalid(
                "A comment is 1 to 4000 characters of text.".to_owned(),
            ));
        }
        Ok(())
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
    /// The client left too many comments lately.
    TooMany,
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
            Refusal::TooMany => {
                f.write_str("You have left many comments lately; wait a while before the next.")
            }
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
        if crate::i18n::supported(&self.lang).is_none() {
            return Err(Refusal::Invalid(format!(
                "There is no language {:?}: choose one of {}.",
                self.lang,
                crate::i18n::LANGUAGES
                    .iter()
                    .map(|(code, _)| *code)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
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
    fn posts_are_in_one_of_the_languages() {
        for (lang, accepted) in [("en", true), ("nl", true), ("de", false), ("", false)] {
            let input = PostInput {
                title: "A title".to_owned(),
                lang: lang.to_owned(),
                ..PostInput::default()
            };
            assert_eq!(input.check().is_ok(), accepted, "{lang:?}");
        }
    }

    #[test]
    fn comments_need_a_name_and_a_text_within_limits() {
        let input = |author: &str, body: &str| CommentInput {
            author: author.to_owned(),
            body: body.to_owned(),
        };
        for (author, body, accepted) in [
            ("Ann", "Nice post.", true),
            ("Ann", "Line one\nline two\r\n\tindented", true),
            (&"é".repeat(80), &"é".repeat(4000), true),
            ("", "Nice post.", false),
            ("   ", "Nice post.", false),
            ("Ann", "  ", false),
            (&"é".repeat(81), "Nice post.", false),
            ("Ann", &"é".repeat(4001), false),
            ("A\u{1b}[31mnn", "Nice post.", false),
            ("Ann", "bell \u{7}", false),
        ] {
            assert_eq!(
                input(author, body).check().is_ok(),
                accepted,
                "{author:?} {body:?}"
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
