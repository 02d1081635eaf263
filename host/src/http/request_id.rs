//! Request ids: sent back as `X-Request-Id` and written in every log line
//! of the request.

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

#[cfg(test)]
mod tests {
    use super::*;

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
