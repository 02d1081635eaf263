//! Request ids: sent back as `X-Request-Id` and written in every log line
//! of the request; one a proxy sent is kept, so that its log and the
//! host's join on it. And the trace id of a W3C `traceparent`, for the
//! access line.

use std::{
    hash::{BuildHasher, RandomState},
    sync::atomic::{AtomicU64, Ordering},
};

/// A request id: 16 hex digits, unique in this process and not guessable
/// from the previous one (a random key mixed with a counter, SplitMix64).
pub(super) fn next_request_id() -> RequestId {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| RandomState::new().hash_one(std::process::id()));
    let mut z = seed.wrapping_add(
        COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    let z = z ^ (z >> 31);
    let mut id = [0u8; 16];
    for (digit, byte) in id.iter_mut().enumerate() {
        *byte = b"0123456789abcdef"[(z >> (60 - 4 * digit)) as usize & 0xf];
    }
    RequestId(id)
}

/// A request id as [`next_request_id`] makes it, kept on the stack.
pub(super) struct RequestId([u8; 16]);

impl RequestId {
    pub(super) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits are ASCII")
    }
}

/// The `X-Request-Id` a client or proxy sent, if it reads as one: 1 to
/// 128 of `A-Z a-z 0-9 . _ -` (nginx's `$request_id` is 32 hex digits);
/// anything else, which could confuse the logs, is replaced.
pub(super) fn incoming(value: &[u8]) -> Option<&str> {
    let fits = (1..=128).contains(&value.len())
        && value
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
    fits.then(|| std::str::from_utf8(value).expect("checked ASCII"))
}

/// The trace id of a `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`,
/// W3C Trace Context): lowercase hex, not all zeros; a version other than
/// `00` may add fields after these.
pub(super) fn trace_id(traceparent: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(traceparent).ok()?;
    let mut fields = text.split('-');
    let (version, trace, parent, flags) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    let hex = |field: &str, length: usize| {
        field.len() == length
            && field
                .bytes()
                .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
    };
    let well_formed = hex(version, 2)
        && version != "ff"
        && (version != "00" || fields.next().is_none())
        && hex(trace, 32)
        && trace.bytes().any(|byte| byte != b'0')
        && hex(parent, 16)
        && hex(flags, 2);
    well_formed.then_some(trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incoming_ids_are_kept_only_when_they_read_as_ids() {
        let longest = "a".repeat(128);
        for (value, kept) in [
            ("5f3a9c0e8b7d4e21a0b1c2d3e4f50617", true),
            ("req-2026.12_05", true),
            (longest.as_str(), true),
            ("", false),
            (&"a".repeat(129), false),
            ("has space", false),
            ("new\nline", false),
            ("caf\u{e9}", false),
            ("a/b", false),
        ] {
            assert_eq!(incoming(value.as_bytes()).is_some(), kept, "{value:?}");
        }
    }

    #[test]
    fn trace_ids_come_from_well_formed_traceparents_only() {
        for (value, trace) in [
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                Some("4bf92f3577b34da6a3ce929d0e0e4736"),
            ),
            // a later version may carry more
            (
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more",
                Some("4bf92f3577b34da6a3ce929d0e0e4736"),
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more",
                None,
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                None,
            ),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                None,
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                None,
            ),
            ("00-4bf92f35-00f067aa0ba902b7-01", None),
            ("nonsense", None),
        ] {
            assert_eq!(trace_id(value.as_bytes()), trace, "{value:?}");
        }
    }

    #[test]
    fn request_ids_are_unique_hex() {
        let ids: std::collections::HashSet<String> = (0..10_000)
            .map(|_| next_request_id().as_str().to_owned())
            .collect();
        assert_eq!(ids.len(), 10_000);
        assert!(
            ids.iter()
                .all(|id| id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit()))
        );
    }
}
