//! Compression of responses: brotli or gzip, as the client accepts
//! (`negotiate`), for bodies that gain from it. Whole bodies are compressed
//! at once; streamed ones (large files) as they are sent.
//!
//! Two efforts: [`Effort::Best`] for a static file compressed once and kept
//! in memory, [`Effort::Fast`] for what is compressed on every response.

mod negotiate;

use std::io::{self, Write};

use async_compression::{
    Level,
    brotli::EncoderParams,
    tokio::bufread::{BrotliEncoder, GzipEncoder},
};
use bytes::Bytes;
use futures_core::Stream;
use http::HeaderValue;
use tokio_util::io::{ReaderStream, StreamReader};

pub use negotiate::{compressible, negotiate};

/// Bodies smaller than this are sent as they are: a few hundred bytes fit
/// in one packet either way, and compressing costs more than it saves.
pub const MIN_SIZE: u64 = 1024;

/// A content coding the host sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Brotli,
    Gzip,
}

/// How hard to compress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    /// Once per file (kept in memory): the smallest result worth tens of
    /// milliseconds.
    Best,
    /// On every response: little CPU per byte (brotli 4, gzip 5; nginx
    /// compresses at gzip 1 by default).
    Fast,
}

/// Brotli's window for what is compressed as it is sent: 256 KiB (not the
/// default 4 MiB), which bounds the memory of each such response.
const STREAM_WINDOW: i32 = 18;

impl Encoding {
    /// Both, the host's preference first.
    pub const ALL: [Encoding; 2] = [Encoding::Brotli, Encoding::Gzip];

    /// Its place in [`Encoding::ALL`], for per-encoding arrays.
    pub fn index(self) -> usize {
        match self {
            Encoding::Brotli => 0,
            Encoding::Gzip => 1,
        }
    }

    /// The `Content-Encoding` value.
    pub fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        })
    }

    /// The extension of a precompressed sibling file (`style.css.br`),
    /// nginx's `gzip_static` and `brotli_static`.
    pub fn extension(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gz",
        }
    }

    /// An entity tag for this encoding of the representation tagged
    /// `etag` (`"abc"` becomes `"abc-br"`): each encoding is a different
    /// representation, and caches must not mix them up.
    pub fn etag(self, etag: &str) -> String {
        let opaque = etag.strip_suffix('"').unwrap_or(etag);
        format!("{opaque}-{}\"", self.extension())
    }

    /// `bytes` compressed.
    pub fn compress(self, bytes: &[u8], effort: Effort) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len() / 3 + 64);
        let written = match self {
            Encoding::Brotli => {
                let quality = if effort == Effort::Best { 11 } else { 4 };
                let mut encoder = brotli::CompressorWriter::new(&mut out, 16 * 1024, quality, 22);
                encoder.write_all(bytes).and_then(|()| encoder.flush())
            }
            Encoding::Gzip => {
                let level = if effort == Effort::Best { 9 } else { 5 };
                let mut encoder =
                    flate2::write::GzEncoder::new(&mut out, flate2::Compression::new(level));
                encoder.write_all(bytes).and_then(|()| encoder.try_finish())
            }
        };
        // writing into a Vec does not fail
        written.expect("compressing into memory");
        out
    }

    /// `chunks` compressed as they arrive, at [`Effort::Fast`].
    pub fn compress_stream(self, chunks: Chunks) -> Chunks {
        let reader = StreamReader::new(chunks);
        match self {
            Encoding::Brotli => {
                let params = EncoderParams::default()
                    .quality(Level::Precise(4))
                    .window_size(STREAM_WINDOW);
                Box::pin(ReaderStream::new(BrotliEncoder::with_params(
                    reader, params,
                )))
            }
            Encoding::Gzip => Box::pin(ReaderStream::new(GzipEncoder::with_quality(
                reader,
                Level::Precise(5),
            ))),
        }
    }
}

/// The chunks of a streamed body.
pub type Chunks = std::pin::Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

#[cfg(test)]
mod tests {
    use std::io::Read;

    use futures_util::StreamExt;

    use super::*;

    fn decoded(encoding: Encoding, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match encoding {
            Encoding::Brotli => brotli::Decompressor::new(bytes, 4096)
                .read_to_end(&mut out)
                .unwrap(),
            Encoding::Gzip => flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .unwrap(),
        };
        out
    }

    fn text() -> Vec<u8> {
        (0..20_000)
            .map(|i| format!("<p>line {i} of a page</p>\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn compressed_bodies_decode_to_the_originals() {
        let original = text();
        for encoding in Encoding::ALL {
            for effort in [Effort::Best, Effort::Fast] {
                let compressed = encoding.compress(&original, effort);
                assert!(compressed.len() < original.len() / 5, "{encoding:?}");
                assert!(decoded(encoding, &compressed) == original, "{encoding:?}");
            }
        }
    }

    #[test]
    fn streamed_bodies_decode_to_the_originals() {
        let original = text();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for encoding in Encoding::ALL {
            let chunks: Vec<io::Result<Bytes>> = original
                .chunks(7000)
                .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
                .collect();
            let stream = encoding.compress_stream(Box::pin(futures_util::stream::iter(chunks)));
            let compressed: Vec<u8> =
                runtime.block_on(stream.map(|chunk| chunk.unwrap().to_vec()).concat());
            assert!(decoded(encoding, &compressed) == original, "{encoding:?}");
        }
    }

    #[test]
    fn each_encoding_has_its_own_entity_tag() {
        assert_eq!(Encoding::Brotli.etag("\"5f-1a\""), "\"5f-1a-br\"");
        assert_eq!(Encoding::Gzip.etag("\"5f-1a\""), "\"5f-1a-gz\"");
    }
}
