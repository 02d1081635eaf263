//! Posts in templates (`Value::from_object(post)`): an object hands out the
//! fields a template reads when it reads them, instead of being serialised
//! whole into a map of values first. A post's page and the feed read its
//! title, slug and dates, and take its body rendered from elsewhere; a
//! home page reads three of a summary's eight fields.

use std::sync::Arc;

use minijinja::{
    Value,
    value::{Enumerator, Object},
};

use super::{
    entities::{Post, PostSummary},
    entity::Entity,
};

/// The fields of a [`PostSummary`] in templates, as it serialises: the
/// post's, then `first_image`.
const SUMMARY_FIELDS: [&str; Post::FIELDS.len() + 1] = {
    let mut fields = [""; Post::FIELDS.len() + 1];
    let mut at = 0;
    while at < Post::FIELDS.len() {
        fields[at] = Post::FIELDS[at];
        at += 1;
    }
    fields[at] = "first_image";
    fields
};

impl Object for Post {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.template_field(key.as_str()?)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(Post::FIELDS)
    }
}

impl Object for PostSummary {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "first_image" => Some(Value::from_serialize(&self.first_image)),
            name => self.post.template_field(name),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&SUMMARY_FIELDS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::entities::tests::{image, post};

    /// The keys a template finds in `value`, sorted.
    fn keys(value: &Value) -> Vec<String> {
        let mut keys: Vec<String> = value
            .try_iter()
            .unwrap()
            .map(|key| key.to_string())
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn in_templates_posts_and_summaries_read_as_they_serialise() {
        let summary = PostSummary {
            post: post(),
            first_image: Some(image()),
        };
        for (object, serialised) in [
            (Value::from_object(post()), Value::from_serialize(post())),
            (
                Value::from_object(summary.clone()),
                Value::from_serialize(&summary),
            ),
        ] {
            assert_eq!(keys(&object), keys(&serialised));
            for key in keys(&serialised) {
                assert_eq!(
                    object.get_attr(&key).unwrap(),
                    serialised.get_attr(&key).unwrap(),
                    "{key}"
                );
            }
        }
        let text = minijinja::Environment::new()
            .render_str(
                "{{ p.title }}|{{ p.first_image.file_name }}|{{ p.created_at }}",
                minijinja::context! { p => Value::from_object(summary) },
            )
            .unwrap();
        assert_eq!(
            text,
            "A title longer than a small string's inline bytes|f.png|1"
        );
    }
}
