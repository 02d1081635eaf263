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
