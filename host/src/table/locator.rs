//! Where a key path (`mounts[1].prefix`) is in the mount table's text, so
//! that an error found after parsing points at its line and column.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

/// The top-level values by key, as slices of the original text: where each
/// value sits, to point errors found after parsing at the right line.
type Spans<'a> = BTreeMap<String, &'a RawValue>;

/// Finds the line and column of a key path in the original text.
pub(super) struct Locator<'a> {
    text: &'a str,
    spans: Option<Spans<'a>>,
}

impl<'a> Locator<'a> {
    pub(super) fn new(text: &'a str) -> Locator<'a> {
        Locator {
            text,
            spans: serde_json::from_str(text).ok(),
        }
    }

    /// The position of `key` (`listen`, `mounts[1].prefix`), falling back to
    /// the closest enclosing value, then to the start of the file.
    pub(super) fn position(&self, key: &str) -> (usize, usize) {
        let value = self.value(key);
        let offset = value
            .map(|raw| raw.get().as_ptr() as usize - self.text.as_ptr() as usize)
            .filter(|offset| *offset <= self.text.len())
            .unwrap_or(0);
        line_column(self.text, offset)
    }

    /// The value at a key path such as `mounts[1].databases[0]` or
    /// `databases.blog.url`; the closest enclosing value when part of the
    /// path is missing.
    fn value(&self, key: &str) -> Option<&'a RawValue> {
        let spans = self.spans.as_ref()?;
        let mut steps = key.split('.').flat_map(|part| {
            let (name, indexes) = part.split_once('[').unwrap_or((part, ""));
            std::iter::once(Step::Field(name)).chain(
                indexes
                    .split('[')
                    .filter_map(|index| index.trim_end_matches(']').parse().ok())
                    .map(Step::Index),
            )
        });
        let Some(Step::Field(top)) = steps.next() else {
            return None;
        };
        let mut current = *spans.get(top)?;
        for step in steps {
            // Re-parsing a slice keeps pointers into the original text,
            // since `RawValue` borrows.
            let next = match step {
                Step::Field(name) => {
                    serde_json::from_str::<BTreeMap<String, &'a RawValue>>(current.get())
                        .ok()
                        .and_then(|fields| fields.get(name).copied())
                }
                Step::Index(index) => serde_json::from_str::<Vec<&'a RawValue>>(current.get())
                    .ok()
                    .and_then(|items| items.get(index).copied()),
            };
            match next {
                Some(value) => current = value,
                None => break,
            }
        }
        Some(current)
    }
}

/// One step of a key path.
enum Step<'k> {
    Field(&'k str),
    Index(usize),
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    (line, before[line_start..].chars().count() + 1)
}
