//! Compression of responses: brotli or gzip, as the client accepts
//! (`negotiate`), for bodies that gain from it. Whole bodies are compressed
//! at once; streamed ones (large files) as they are sent.
//!
//! Two efforts: [`Effort::Best`] for a static file compressed once and kept
//! in memory, [`Effort::Fast`] for what is compressed on every response.
//!
//! Pages are offered gzip only ([`PAGE_ENCODINGS`]), from a deflate state
//! each thread keeps: a compressor's state is hundreds of KiB of zeroed
//! memory, and jemalloc zeroes a reused block by handing its pages back to
//! the kernel (`madvise`), whose page faults and TLB shootdowns cost many
//! times the compressing (`docs/performance.md`). brotli's encoder cannot
//! be reset and reused; gzip's can.

mod negotiate;

use std::{
    cell::RefCell,
    io::{self, Write},
};

use async_compression::{
    Level,
    brotli::EncoderParams,
    tokio::bufread::{BrotliEncoder, GzipEncoder},
};
use bytes::Bytes;
use flate2::{Compress, Crc, FlushCompress};
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

/// What an app's page may be sent in.
pub const PAGE_ENCODINGS: [Encoding; 1] = [Encoding::Gzip];

/// gzip's level for what is compressed on every response.
const FAST_GZIP: u32 = 5;

/// brotli's quality for what is compressed as it is sent.
const FAST_BROTLI: u32 = 4;

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
                let quality = if effort == Effort::Best {
                    11
                } else {
                    FAST_BROTLI
                };
                let mut encoder = brotli::CompressorWriter::new(&mut out, 16 * 1024, quality, 22);
                encoder.write_all(bytes).and_then(|()| encoder.flush())
            }
            Encoding::Gzip if effort == Effort::Fast => return gzip_reusing_state(bytes),
            Encoding::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(&mut out, flate2::Compression::best());
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
                    .quality(Level::Precise(FAST_BROTLI as i32))
                    .window_size(STREAM_WINDOW);
                Box::pin(ReaderStream::new(BrotliEncoder::with_params(
                    reader, params,
                )))
            }
            Encoding::Gzip => Box::pin(ReaderStream::new(GzipEncoder::with_quality(
                reader,
                Level::Precise(FAST_GZIP as i32),
            ))),
        }
    }
}

thread_local! {
    /// This thread's deflate state, reset after each use.
    static DEFLATE: RefCell<Compress> =
        RefCell::new(Compress::new(flate2::Compression::new(FAST_GZIP), false));
}

/// `bytes` in gzip (RFC 1952) at [`FAST_GZIP`]: the thread's deflate state,
/// between a header and a trailer written here.
fn gzip_reusing_state(bytes: &[u8]) -> Vec<u8> {
    // no name, no time, "unknown" operating system, as nginx writes it
    const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut out = Vec::with_capacity(bytes.len() / 2 + 64);
    out.extend_from_slice(&HEADER);
    DEFLATE.with_borrow_mut(|deflate| {
        deflate.reset();
        let mut input = bytes;
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity());
            }
            let before = deflate.total_in();
            let status = deflate
                .compress_vec(input, &mut out, FlushCompress::Finish)
                .expect("deflate into memory does not fail");
            input = &input[usize::try_from(deflate.total_in() - before).unwrap_or(0)..];
            if status == flate2::Status::StreamEnd {
                break;
            }
        }
    });
    let mut crc = Crc::new();
    crc.update(bytes);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    // the length modulo 2^32, as the format says
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out
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
    fn the_reused_deflate_state_starts_afresh_each_time() {
        let texts = [
            text(),
            b"short".to_vec(),
            Vec::new(),
            text()[..5000].to_vec(),
        ];
        for original in texts {
            let compressed = Encoding::Gzip.compress(&original, Effort::Fast);
            assert!(decoded(Encoding::Gzip, &compressed) == original);
        }
    }

    #[test]
    fn each_encoding_has_its_own_entity_tag() {
        assert_eq!(Encoding::Brotli.etag("\"5f-1a\""), "\"5f-1a-br\"");
        assert_eq!(Encoding::Gzip.etag("\"5f-1a\""), "\"5f-1a-gz\"");
    }
}
