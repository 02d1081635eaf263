//! Which encoding a response may use: the client's `Accept-Encoding`
//! (RFC 9110, section 12.5.3) and whether a content type gains from
//! compression at all; pure.

use super::Encoding;

/// The encoding of `offered` (in the server's order of preference) to send
/// to a client that sent `accept_encoding`, if any: the one with the
/// highest weight, the earlier offered on a tie; `*` stands for any
/// encoding not named; weight 0 refuses.
pub fn negotiate(accept_encoding: Option<&[u8]>, offered: &[Encoding]) -> Option<Encoding> {
    let accept = accept_encoding?;
    let (mut brotli, mut gzip, mut any) = (None::<u16>, None::<u16>, None::<u16>);
    for item in accept.split(|&byte| byte == b',') {
        let mut parts = item.split(|&byte| byte == b';');
        let name = parts.next().unwrap_or_default().trim_ascii();
        let weight = parts
            .find_map(|parameter| {
                let parameter = parameter.trim_ascii();
                let value = parameter
                    .strip_prefix(b"q=")
                    .or_else(|| parameter.strip_prefix(b"Q="))?;
                Some(weight(value))
            })
            .unwrap_or(Some(1000));
        let Some(weight) = weight else {
            // a weight that does not parse: the item is ignored
            continue;
        };
        let slot = if name.eq_ignore_ascii_case(b"br") {
            &mut brotli
        } else if name.eq_ignore_ascii_case(b"gzip") || name.eq_ignore_ascii_case(b"x-gzip") {
            &mut gzip
        } else if name == b"*" {
            &mut any
        } else {
            continue;
        };
        *slot = Some(slot.map_or(weight, |earlier| earlier.max(weight)));
    }
    let weight_of = |encoding: Encoding| {
        match encoding {
            Encoding::Brotli => brotli,
            Encoding::Gzip => gzip,
        }
        .or(any)
        .unwrap_or(0)
    };
    let mut best: Option<(Encoding, u16)> = None;
    for &encoding in offered {
        let weight = weight_of(encoding);
        if weight > 0 && best.is_none_or(|(_, best)| weight > best) {
            best = Some((encoding, weight));
        }
    }
    best.map(|(encoding, _)| encoding)
}

/// A weight (`qvalue`: `0`, `0.5`, `1.000`) in thousandths; `None` when
/// it is not one.
fn weight(value: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(value).ok()?;
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let thousandths = fraction
        .bytes()
        .zip([100, 10, 1])
        .map(|(digit, place)| u16::from(digit - b'0') * place)
        .sum::<u16>();
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Whether a body of `content_type` gains from compression: text, scripts,
/// JSON, XML, SVG, WebAssembly and uncompressed fonts. Images, audio,
/// video, archives and WOFF fonts are compressed already.
pub fn compressible(content_type: &[u8]) -> bool {
    let essence = content_type
        .split(|&byte| byte == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let Some(slash) = essence.iter().position(|&byte| byte == b'/') else {
        return false;
    };
    let (kind, subtype) = (&essence[..slash], &essence[slash + 1..]);
    // compared without changing case: this runs for every page
    let is = |names: &[&str]| {
        names
            .iter()
            .any(|name| subtype.eq_ignore_ascii_case(name.as_bytes()))
    };
    let ends_with = |suffix: &[u8]| {
        subtype.len() >= suffix.len()
            && subtype[subtype.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
    };
    if kind.eq_ignore_ascii_case(b"text") {
        true
    } else if kind.eq_ignore_ascii_case(b"application") {
        is(&[
            "javascript",
            "ecmascript",
            "json",
            "xml",
            "wasm",
            "x-javascript",
        ]) || ends_with(b"+json")
            || ends_with(b"+xml")
    } else if kind.eq_ignore_ascii_case(b"image") {
        is(&["svg+xml", "x-icon", "vnd.microsoft.icon", "bmp"])
    } else if kind.eq_ignore_ascii_case(b"font") {
        is(&["ttf", "otf", "collection"])
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encoding_follows_the_clients_weights() {
        use Encoding::{Brotli, Gzip};
        let rows: [(Option<&str>, Option<Encoding>); 18] = [
            (None, None),
            (Some(""), None),
            (Some("identity"), None),
            (Some("gzip"), Some(Gzip)),
            (Some("x-gzip"), Some(Gzip)),
            (Some("GZIP"), Some(Gzip)),
            (Some("br"), Some(Brotli)),
            (Some("gzip, deflate, br"), Some(Brotli)),
            (Some("gzip, deflate, br, zstd"), Some(Brotli)),
            (Some("br;q=0.5, gzip"), Some(Gzip)),
            (Some("br;q=0, gzip;q=0.1"), Some(Gzip)),
            (Some("br;q=0, gzip;q=0"), None),
            (Some("*"), Some(Brotli)),
            (Some("*;q=0"), None),
            (Some("gzip, *;q=0"), Some(Gzip)),
            // a weight that is not one: that item is ignored
            (Some("br;q=2, gzip"), Some(Gzip)),
            (Some("br;q=0.0001, gzip;q=0.5"), Some(Gzip)),
            (Some("deflate"), None),
        ];
        for (accept, expected) in rows {
            let chosen = negotiate(accept.map(str::as_bytes), &Encoding::ALL);
            assert_eq!(chosen, expected, "{accept:?}");
        }
    }

    #[test]
    fn only_what_is_offered_is_chosen() {
        use Encoding::{Brotli, Gzip};
        let rows: [(&str, &[Encoding], Option<Encoding>); 5] = [
            ("gzip, br", &[Gzip], Some(Gzip)),
            ("br", &[Gzip], None),
            ("*", &[Gzip], Some(Gzip)),
            ("gzip, br", &[Gzip, Brotli], Some(Gzip)),
            ("gzip, br", &[], None),
        ];
        for (accept, offered, expected) in rows {
            let chosen = negotiate(Some(accept.as_bytes()), offered);
            assert_eq!(chosen, expected, "{accept} of {offered:?}");
        }
    }

    #[test]
    fn weights_parse_as_rfc_9110_writes_them() {
        let rows = [
            ("1", Some(1000)),
            ("1.000", Some(1000)),
            ("0", Some(0)),
            ("0.5", Some(500)),
            ("0.25", Some(250)),
            ("0.125", Some(125)),
            ("1.5", None),
            ("0.1234", None),
            ("2", None),
            ("x", None),
            ("", None),
        ];
        for (value, expected) in rows {
            assert_eq!(weight(value.as_bytes()), expected, "{value}");
        }
    }

    #[test]
    fn text_compresses_and_compressed_formats_do_not() {
        let rows = [
            ("text/html; charset=utf-8", true),
            ("text/css; charset=utf-8", true),
            ("TEXT/PLAIN", true),
            ("text/javascript; charset=utf-8", true),
            ("application/json", true),
            ("application/ld+json", true),
            ("application/atom+xml", true),
            ("application/wasm", true),
            ("Application/Manifest+JSON", true),
            ("application/rss+xml", true),
            ("image/svg+xml; charset=utf-8", true),
            ("font/ttf", true),
            ("image/png", false),
            ("image/jpeg", false),
            ("image/webp", false),
            ("font/woff2", false),
            ("application/gzip", false),
            ("application/zip", false),
            ("application/octet-stream", false),
            ("video/mp4", false),
            ("nonsense", false),
            ("", false),
        ];
        for (content_type, expected) in rows {
            assert_eq!(
                compressible(content_type.as_bytes()),
                expected,
                "{content_type}"
            );
        }
    }
}
