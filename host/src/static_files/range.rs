//! `Range` requests (RFC 9110, section 14): one byte range; pure.

/// What a `Range` header asks of a representation of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: send the whole representation (200). Invalid and
    /// multi-range headers land here too; RFC 9110 section 14.2 lets a
    /// server ignore them.
    Full,
    /// Bytes `start..=end` (206).
    Partial {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// A valid range that lies outside the representation (416).
    Unsatisfiable,
}

/// Reads a `Range` header (`bytes=a-b`, `bytes=a-`, `bytes=-n`).
pub fn parse(header: &str, size: u64) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let number = |text: &str| -> Option<u64> {
        let text = text.trim();
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse().ok())
            .flatten()
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // bytes=-n: the last n bytes
        (true, _, Some(suffix)) => {
            if suffix == 0 || size == 0 {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Partial {
                    start: size.saturating_sub(suffix),
                    end: size - 1,
                }
            }
        }
        // bytes=a-
        (false, Some(start), None) if last.trim().is_empty() => {
            if start >= size {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Partial {
                    start,
                    end: size - 1,
                }
            }
        }
        // bytes=a-b
        (false, Some(start), Some(end)) if start <= end => {
            if start >= size {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Partial {
                    start,
                    end: end.min(size - 1),
                }
            }
        }
        _ => RangeRequest::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::{RangeRequest::*, *};

    #[test]
    fn byte_ranges_of_a_ten_byte_file() {
        let rows: &[(&str, RangeRequest)] = &[
            ("bytes=0-3", Partial { start: 0, end: 3 }),
            ("bytes=2-", Partial { start: 2, end: 9 }),
            ("bytes=-4", Partial { start: 6, end: 9 }),
            // a suffix longer than the file is the whole file
            ("bytes=-40", Partial { start: 0, end: 9 }),
            // an end past the file is clamped
            ("bytes=5-100", Partial { start: 5, end: 9 }),
            ("bytes=9-9", Partial { start: 9, end: 9 }),
            ("bytes=10-", Unsatisfiable),
            ("bytes=10-20", Unsatisfiable),
            ("bytes=-0", Unsatisfiable),
            // invalid or unsupported: ignored, the whole file is sent
            ("bytes=4-2", Full),
            ("bytes=0-1,4-5", Full),
            ("items=0-1", Full),
            ("bytes=a-b", Full),
            ("bytes=", Full),
            ("bytes=-", Full),
            ("bytes=+1-2", Full),
        ];
        for (header, expected) in rows {
            assert_eq!(parse(header, 10), *expected, "{header}");
        }
    }

    #[test]
    fn nothing_is_satisfiable_in_an_empty_file() {
        assert_eq!(parse("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse("bytes=-1", 0), Unsatisfiable);
    }
}
