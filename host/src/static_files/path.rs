//! Which file a static URL names, if any; pure. Everything that could leave
//! the folder is refused here, before the file system is asked; symlinks
//! are checked after (see `StaticFolder::locate`).

use std::path::PathBuf;

/// The relative file path for the decoded URL path below the static URL
/// (`css/site.css`), or `None` if it is not a plain relative path: empty,
/// absolute, with `.`, `..` or empty segments, backslashes or NUL bytes.
pub fn relative_file(url_path: &str) -> Option<PathBuf> {
    if url_path.is_empty() || url_path.contains(['\\', '\0']) {
        return None;
    }
    let mut path = PathBuf::new();
    for segment in url_path.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return None;
        }
        path.push(segment);
    }
    // `push` of an absolute segment would replace the path; none can be
    // absolute after the checks above, but say so where it matters.
    path.is_relative().then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_name_a_file() {
        let rows: &[(&str, Option<&str>)] = &[
            ("style.css", Some("style.css")),
            ("css/site.css", Some("css/site.css")),
            ("with space.txt", Some("with space.txt")),
            ("ünïcödé.txt", Some("ünïcödé.txt")),
            (".hidden", Some(".hidden")),
            ("a..b", Some("a..b")),
            ("", None),
            ("/etc/passwd", None),
            ("../secret", None),
            ("a/../../secret", None),
            ("a/./b", None),
            ("..", None),
            (".", None),
            ("a//b", None),
            ("dir/", None),
            ("..\\secret", None),
            ("a\\b", None),
            ("a\0b", None),
        ];
        for (input, expected) in rows {
            assert_eq!(
                relative_file(input),
                expected.map(PathBuf::from),
                "{input:?}"
            );
        }
    }
}
