//! The body of every response the host sends.

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, combinators::BoxBody};

/// Whole bytes, or a stream (large files). Whole bodies, nearly every
/// response, are not boxed: a box per response was an allocation and a
/// free per request.
pub type Body = Either<Full<Bytes>, BoxBody<Bytes, std::io::Error>>;

/// A body of these bytes.
pub fn full_body(bytes: impl Into<Bytes>) -> Body {
    Either::Left(Full::new(bytes.into()))
}

/// An empty body.
pub fn empty_body() -> Body {
    full_body(Bytes::new())
}

/// A body streamed from `stream`.
pub fn streamed_body(
    stream: impl hyper::body::Body<Data = Bytes, Error = std::io::Error> + Send + Sync + 'static,
) -> Body {
    Either::Right(stream.boxed())
}
