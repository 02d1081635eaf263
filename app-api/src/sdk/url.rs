//! Percent-encoding sets for URL paths (RFC 3986, section 3.3), shared by
//! the SDK and the host so that both write URLs the same way.

use percent_encoding::{AsciiSet, CONTROLS};

/// Escaped when a decoded path is written into a URL: everything but
/// `pchar` and `/`.
pub const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Escaped in one path segment: like [`PATH`], and `/` too.
pub const SEGMENT: &AsciiSet = &PATH.add(b'/');

/// Escaped in a `Location`: what may not appear in a URI at all. `%`, `?`,
/// `#` and `/` stay, so a URL that is already encoded comes out the same.
const LOCATION: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// `location` as a redirect may send it: every character a URI may not
/// hold percent-encoded (a browser reads `/\evil.example` as
/// `//evil.example`, another site), and a path that starts with `//`
/// kept on this site (`/%2Fevil.example`, not the host `evil.example`).
pub fn location(location: &str) -> String {
    let encoded: String = percent_encoding::utf8_percent_encode(location, LOCATION).collect();
    match encoded.strip_prefix("//") {
        Some(rest) => format!("/%2F{rest}"),
        None => encoded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_never_leaves_the_site_by_accident() {
        for (given, sent) in [
            ("/post/a", "/post/a"),
            ("/search?q=a%20b#top", "/search?q=a%20b#top"),
            ("/\\evil.example/", "/%5Cevil.example/"),
            ("//evil.example/", "/%2Fevil.example/"),
            ("/a b/\"<x>\"", "/a%20b/%22%3Cx%3E%22"),
            (
                "/caf\u{e9}\r\nSet-Cookie: x",
                "/caf%C3%A9%0D%0ASet-Cookie:%20x",
            ),
            ("https://example.com/a b", "https://example.com/a%20b"),
        ] {
            assert_eq!(location(given), sent, "{given:?}");
        }
    }
}
