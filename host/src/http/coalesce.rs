//! A connection's socket, with small vectored writes sent as one `write`.
//!
//! hyper keeps a response's head and its body in separate buffers and
//! sends them together with one `writev`. For a small response (a hello,
//! a page, a small static file, an error page), the kernel takes that
//! measurably slower than one `write` of the same bytes, so small writes are
//! copied into one buffer first (`docs/performance.md`).
//!
//! hyper's own switch (`writev(false)`) copies every body into its buffer,
//! large ones too, which costs large files more than it saves small ones.
//! Here, writes above [`MAX_COPIED`] go out vectored as before, so large
//! bodies are never copied.

use std::{
    cell::RefCell,
    io::{self, IoSlice},
    pin::Pin,
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The largest vectored write copied into one buffer, in bytes; larger ones
/// go out as `writev`. Copying 16 KB costs about what `writev` costs more.
pub const MAX_COPIED: usize = 16 * 1024;

thread_local! {
    /// Where this thread joins the buffers of a small write.
    static JOINED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// An I/O object whose small vectored writes become one `write`.
#[derive(Debug)]
pub struct Coalesced<T> {
    inner: T,
}

impl<T> Coalesced<T> {
    pub fn new(inner: T) -> Coalesced<T> {
        Coalesced { inner }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Coalesced<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalesced<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let inner = Pin::new(&mut self.inner);
        match bufs {
            [one] => inner.poll_write(cx, one),
            _ if bufs.iter().map(|buf| buf.len()).sum::<usize>() <= MAX_COPIED => {
                // A thread that is ending, or a write from inside another
                // (neither happens under hyper), writes vectored.
                let joined = JOINED.try_with(|joined| {
                    let mut joined = joined.try_borrow_mut().ok()?;
                    joined.clear();
                    for buf in bufs {
                        joined.extend_from_slice(buf);
                    }
                    Some(inner.poll_write(cx, &joined))
                });
                match joined {
                    Ok(Some(written)) => written,
                    _ => Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
                }
            }
            _ => inner.poll_write_vectored(cx, bufs),
        }
    }

    /// Always: hyper then queues bodies instead of copying them into its
    /// buffer, and this type copies only the small ones.
    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One call a writer saw: `write` or `writev`, and its buffers.
    type Seen = (&'static str, Vec<Vec<u8>>);

    /// A writer that records each call and takes at most `accept` bytes
    /// of each.
    #[derive(Default)]
    struct Recorder {
        calls: Vec<Seen>,
        accept: Option<usize>,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let taken = self
                .accept
                .map_or(buf.len(), |accept| accept.min(buf.len()));
            self.calls.push(("write", vec![buf.to_vec()]));
            Poll::Ready(Ok(taken))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let total: usize = bufs.iter().map(|buf| buf.len()).sum();
            let taken = self.accept.map_or(total, |accept| accept.min(total));
            self.calls
                .push(("writev", bufs.iter().map(|buf| buf.to_vec()).collect()));
            Poll::Ready(Ok(taken))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Writes `bufs` once through a `Coalesced` recorder: what it
    /// reported written, and the calls the recorder saw.
    fn write_once(bufs: &[&[u8]], accept: Option<usize>) -> (usize, Vec<Seen>) {
        let mut io = Coalesced::new(Recorder {
            accept,
            ..Recorder::default()
        });
        let slices: Vec<IoSlice<'_>> = bufs.iter().map(|buf| IoSlice::new(buf)).collect();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let written = match Pin::new(&mut io).poll_write_vectored(&mut cx, &slices) {
            Poll::Ready(Ok(written)) => written,
            other => panic!("the recorder is always ready: {other:?}"),
        };
        (written, io.inner.calls)
    }

    #[test]
    fn small_writes_go_out_as_one_and_large_ones_vectored() {
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n".as_slice();
        let large = vec![7u8; MAX_COPIED];
        // what is written, and the one call the socket should see
        let cases: [(&str, Vec<&[u8]>, Seen); 5] = [
            (
                "head and body",
                vec![head, b"hello"],
                ("write", vec![[head, b"hello"].concat()]),
            ),
            (
                "one buffer",
                vec![b"hello"],
                ("write", vec![b"hello".to_vec()]),
            ),
            (
                "three buffers at the limit",
                vec![head, &large[..MAX_COPIED - head.len() - 1], b"!"],
                (
                    "write",
                    vec![[head, &large[..MAX_COPIED - head.len() - 1], b"!"].concat()],
                ),
            ),
            (
                "one byte over the limit",
                vec![head, &large[..MAX_COPIED - head.len()], b"!"],
                (
                    "writev",
                    vec![
                        head.to_vec(),
                        large[..MAX_COPIED - head.len()].to_vec(),
                        b"!".to_vec(),
                    ],
                ),
            ),
            (
                "a large body",
                vec![head, &large],
                ("writev", vec![head.to_vec(), large.clone()]),
            ),
        ];
        for (case, bufs, seen) in cases {
            let total = bufs.iter().map(|buf| buf.len()).sum::<usize>();
            let (written, calls) = write_once(&bufs, None);
            assert_eq!(written, total, "{case}");
            assert_eq!(calls, vec![seen], "{case}");
        }
    }

    #[test]
    fn a_partial_write_reports_what_the_socket_took() {
        // the caller (hyper) then sends the rest from its own buffers
        let bufs: [&[u8]; 2] = [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", b"hello"];
        let total = bufs[0].len() + bufs[1].len();
        for (accept, written) in [(0, 0), (10, 10), (1000, total)] {
            let (reported, calls) = write_once(&bufs, Some(accept));
            assert_eq!(reported, written, "socket took {accept}");
            assert_eq!(calls, vec![("write", vec![bufs.concat()])]);
        }
    }

    #[test]
    fn the_thread_buffer_is_reused_not_appended_to() {
        let (_, first) = write_once(&[b"ab", b"cd"], None);
        let (_, second) = write_once(&[b"ef", b"gh"], None);
        assert_eq!(first, vec![("write", vec![b"abcd".to_vec()])]);
        assert_eq!(second, vec![("write", vec![b"efgh".to_vec()])]);
    }
}
