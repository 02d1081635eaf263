//! The header-read timeout of HTTP/1 connections (against slowloris: a
//! client that sends its request head slowly, or not at all, holding a
//! connection), which is also their idle keep-alive timeout: a connection
//! that has not sent a complete request head within `header_read_timeout_ms`
//! of opening, or of its previous response, is closed.
//!
//! hyper's own `header_read_timeout` arms a timer for every request head and
//! makes its dispatcher go round once more per request to start it, a
//! fifteenth of a small request's cost (`docs/performance.md`). Here a
//! connection instead keeps an [`Activity`] record that its socket and its
//! requests update with plain stores (and a reading of the coarse clock,
//! several times cheaper than the precise one), and one tokio sleep per
//! connection looks at it only when it fires: at the earliest one timeout
//! after the last sign of life, so under steady traffic about once per
//! timeout period, never per request.
//!
//! Signs of life are a request head taken in (from then until its response
//! is ready, the connection is busy, however slow the handler or the upload
//! of its body), and bytes written to the client; a write waiting for the
//! client to read keeps it busy too (a slow download is not cut off, as with
//! hyper's timer). Bytes read are not: a slowloris client dribbles them.
//!
//! HTTP/2 connections (recognised by their preface) are busy while a stream
//! is open, and idle from the end of their last stream: bytes written do
//! not count there, or a client sending a PING now and then (answered with
//! an ACK) would hold its connection for ever.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use http::Version;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{Instant, Sleep},
};

/// The coarse monotonic clock, in milliseconds: read from memory the
/// kernel updates every tick (4 ms here), without the precise clock's
/// counter read.
// Through libc's vDSO call: rustix's own vDSO reader crashed the host under
// valgrind, which `cargo xtask bench` uses.
#[allow(unsafe_code)]
fn coarse_ms() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the call's duration,
    // and CLOCK_MONOTONIC_COARSE exists on every Linux this runs on; on
    // failure `now` stays zero.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) };
    u64::try_from(now.tv_sec).unwrap_or(0) * 1000
        + u64::try_from(now.tv_nsec).unwrap_or(0) / 1_000_000
}

/// What a connection's socket and requests record for its watchdog.
/// Only the connection's own task writes it (HTTP/1 serves one request at
/// a time), so relaxed stores suffice.
#[derive(Debug)]
pub struct Activity {
    /// The coarse clock at the latest sign of life.
    last_ms: AtomicU64,
    /// A request is between its head and its response.
    serving: AtomicBool,
    /// HTTP/2 streams between their head and their response.
    streams: AtomicUsize,
    /// A write waits for the client to read.
    write_blocked: AtomicBool,
    /// The client spoke HTTP/2.
    http2: AtomicBool,
}

impl Activity {
    /// The record of a connection opened now.
    pub fn new() -> Activity {
        Activity {
            last_ms: AtomicU64::new(coarse_ms()),
            serving: AtomicBool::new(false),
            streams: AtomicUsize::new(0),
            write_blocked: AtomicBool::new(false),
            http2: AtomicBool::new(false),
        }
    }

    /// Marks the connection busy until the returned guard is dropped (when
    /// the response is ready). HTTP/2's requests run side by side, on
    /// other tasks: they are counted.
    pub fn serving(&self, version: Version) -> Serving<'_> {
        if version == Version::HTTP_2 {
            self.streams.fetch_add(1, Ordering::Relaxed);
            return Serving {
                activity: self,
                stream: true,
            };
        }
        self.serving.store(true, Ordering::Relaxed);
        Serving {
            activity: self,
            stream: false,
        }
    }

    fn lived(&self) {
        self.last_ms.store(coarse_ms(), Ordering::Relaxed);
    }

    fn seen(&self) -> Seen {
        Seen {
            last_ms: self.last_ms.load(Ordering::Relaxed),
            busy: self.serving.load(Ordering::Relaxed)
                || self.streams.load(Ordering::Relaxed) > 0
                || self.write_blocked.load(Ordering::Relaxed),
        }
    }
}

impl Default for Activity {
    fn default() -> Activity {
        Activity::new()
    }
}

/// A request being served; see [`Activity::serving`].
pub struct Serving<'a> {
    activity: &'a Activity,
    stream: bool,
}

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        self.activity.lived();
        if self.stream {
            self.activity.streams.fetch_sub(1, Ordering::Relaxed);
        } else {
            self.activity.serving.store(false, Ordering::Relaxed);
        }
    }
}

/// What the watchdog sees when it looks.
#[derive(Debug, Clone, Copy)]
struct Seen {
    last_ms: u64,
    busy: bool,
}

/// What the watchdog does about it.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// No request head for a whole timeout: close the connection.
    Close,
    /// Look again after this long.
    LookAgainIn(Duration),
}

fn verdict(seen: Seen, now_ms: u64, timeout: Duration) -> Verdict {
    if seen.busy {
        return Verdict::LookAgainIn(timeout);
    }
    let idle = Duration::from_millis(now_ms.saturating_sub(seen.last_ms));
    match timeout.checked_sub(idle) {
        Some(left) if !left.is_zero() => Verdict::LookAgainIn(left),
        _ => Verdict::Close,
    }
}

/// A connection's future, ended early (with `None`) when its client has
/// sent no request head within `timeout` (see the module's text).
pub struct Watched<F> {
    connection: Pin<Box<F>>,
    activity: Arc<Activity>,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
    /// The sleep has been polled since it was last set (so it will wake
    /// this task when it fires).
    armed: bool,
}

impl<F: Future> Watched<F> {
    pub fn new(connection: F, activity: Arc<Activity>, timeout: Duration) -> Self {
        Watched {
            connection: Box::pin(connection),
            activity,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            armed: false,
        }
    }
}

impl<F: Future> Future for Watched<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(output) = self.connection.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        loop {
            if self.armed && !self.sleep.is_elapsed() {
                return Poll::Pending;
            }
            if !self.armed {
                self.armed = true;
                if self.sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
            // the sleep has fired: look
            match verdict(self.activity.seen(), coarse_ms(), self.timeout) {
                Verdict::Close => return Poll::Ready(None),
                Verdict::LookAgainIn(wait) => {
                    self.sleep.as_mut().reset(Instant::now() + wait);
                    self.armed = false;
                }
            }
        }
    }
}

/// The HTTP/2 connection preface (RFC 9113, section 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A connection's socket, recording writes in its [`Activity`] and whether
/// the client opens with the HTTP/2 preface.
pub struct Tracked<T> {
    inner: T,
    activity: Arc<Activity>,
    /// Bytes of the preface seen so far; `None` once decided.
    preface: Option<usize>,
}

impl<T> Tracked<T> {
    pub fn new(inner: T, activity: Arc<Activity>) -> Tracked<T> {
        Tracked {
            inner,
            activity,
            preface: Some(0),
        }
    }

    /// Follows the preface through the connection's first bytes.
    fn sniff(&mut self, read: &[u8]) {
        if let Some(matched) = self.preface {
            let wanted = &PREFACE[matched..];
            let compared = wanted.len().min(read.len());
            self.preface = if read[..compared] != wanted[..compared] {
                None
            } else if matched + compared == PREFACE.len() {
                self.activity.http2.store(true, Ordering::Relaxed);
                None
            } else {
                Some(matched + compared)
            };
        }
    }

    fn wrote(&self, result: &Poll<io::Result<usize>>) {
        match result {
            Poll::Ready(Ok(_)) => {
                if !self.activity.http2.load(Ordering::Relaxed) {
                    self.activity.lived();
                }
                self.activity.write_blocked.store(false, Ordering::Relaxed);
            }
            Poll::Ready(Err(_)) => {}
            Poll::Pending => self.activity.write_blocked.store(true, Ordering::Relaxed),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.preface.is_some() && matches!(result, Poll::Ready(Ok(()))) {
            self.sniff(&buf.filled()[before..]);
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(&result);
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
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

    #[test]
    fn a_connection_is_closed_a_timeout_after_its_last_sign_of_life_unless_busy() {
        let timeout = Duration::from_millis(500);
        let idle = |last_ms| Seen {
            last_ms,
            busy: false,
        };
        let busy = |last_ms| Seen {
            last_ms,
            busy: true,
        };
        let rows = [
            (
                "just active",
                idle(1000),
                1000,
                Verdict::LookAgainIn(timeout),
            ),
            (
                "idle a while",
                idle(1000),
                1300,
                Verdict::LookAgainIn(Duration::from_millis(200)),
            ),
            ("idle exactly the timeout", idle(1000), 1500, Verdict::Close),
            ("idle longer", idle(1000), 9000, Verdict::Close),
            (
                "busy for long",
                busy(1000),
                9000,
                Verdict::LookAgainIn(timeout),
            ),
            // the coarse clock read before the stamp: no underflow
            (
                "stamped after now",
                idle(1004),
                1000,
                Verdict::LookAgainIn(timeout),
            ),
        ];
        for (case, seen, now, expected) in rows {
            assert_eq!(verdict(seen, now, timeout), expected, "{case}");
        }
    }

    #[test]
    fn the_http2_preface_is_recognised_across_reads_and_nothing_else_is() {
        let rows: [(&str, &[&[u8]], bool); 5] = [
            ("whole", &[PREFACE], true),
            (
                "in pieces",
                &[&PREFACE[..3], &PREFACE[3..20], &PREFACE[20..]],
                true,
            ),
            (
                "with a frame after it",
                &[&[PREFACE, b"\0\0\0\x04"].concat()],
                true,
            ),
            ("HTTP/1.1", &[b"GET / HTTP/1.1\r\n"], false),
            ("diverging late", &[&PREFACE[..10], b"X"], false),
        ];
        for (case, reads, http2) in rows {
            let activity = Arc::new(Activity::new());
            let mut tracked = Tracked::new((), Arc::clone(&activity));
            for read in reads {
                tracked.sniff(read);
            }
            assert_eq!(activity.http2.load(Ordering::Relaxed), http2, "{case}");
            if !http2 {
                assert_eq!(tracked.preface, None, "{case}: decided");
            }
        }
    }

    #[test]
    fn serving_marks_requests_busy_until_their_responses_are_ready() {
        let activity = Activity::new();
        activity.last_ms.store(0, Ordering::Relaxed);
        let serving = activity.serving(Version::HTTP_11);
        assert!(activity.seen().busy);
        drop(serving);
        let seen = activity.seen();
        assert!(!seen.busy);
        assert!(seen.last_ms > 0, "the response stamps the time");
        // HTTP/2 streams side by side: busy until the last one is answered
        let first = activity.serving(Version::HTTP_2);
        let second = activity.serving(Version::HTTP_2);
        drop(first);
        assert!(activity.seen().busy);
        drop(second);
        assert!(!activity.seen().busy);
    }
}
