//! The HTTP side of the host: hyper on tokio, HTTP/1.1 with keep-alive and
//! HTTP/2 over cleartext, graceful shutdown. This module accepts
//! connections (each wrapped to coalesce small writes and to time out a
//! slow request head); `pipeline` takes each request to its answer, and
//! `respond` writes every response.

mod body;
mod coalesce;
mod head_timeout;
mod listener;
mod per_address;
mod pipeline;
mod proxy;
mod request_body;
mod request_id;
mod respond;

use std::{convert::Infallible, future::Future, sync::Arc, time::Duration};

use http::Request;
use hyper::{body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::{OwnedSemaphorePermit, Semaphore},
};

pub use listener::Listener;

use crate::{mounts::site::Site, table::Limits};
use coalesce::Coalesced;
use head_timeout::{Activity, Tracked, Watched};
use listener::Connection;
use per_address::{Counted, PerAddress};
use pipeline::Peer;
use request_body::Bodies;

/// What an accepted connection is served with, and what it holds until it
/// ends: its permit among `max_connections`, and its count for its
/// address.
struct Accepted<'a> {
    site: &'a Arc<Site>,
    builder: &'a auto::Builder<TokioExecutor>,
    graceful: &'a GracefulShutdown,
    bodies: &'a Arc<Bodies>,
    held: (OwnedSemaphorePermit, Option<Counted>),
}

impl Accepted<'_> {
    /// Serves `stream` from `remote` (`None`: a local socket's peer) on a
    /// task of its own.
    fn spawn<S>(
        self,
        stream: S,
        remote: Option<std::net::SocketAddr>,
        local: Option<std::net::SocketAddr>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Arc::new(Activity::new());
        let peer = Arc::new(Peer {
            address: remote,
            text: remote.map_or_else(|| "unix:".to_owned(), |remote| remote.to_string()),
            local,
            activity: Arc::clone(&activity),
            bodies: Arc::clone(self.bodies),
        });
        let site = Arc::clone(self.site);
        let timeout = Duration::from_millis(site.limits.header_read_timeout_ms);
        let service = service_fn(move |request: Request<Incoming>| {
            let site = Arc::clone(&site);
            let peer = Arc::clone(&peer);
            async move {
                let _serving = peer.activity.serving(request.version());
                Ok::<_, Infallible>(pipeline::handle(&site, request, &peer).await)
            }
        });
        let io = TokioIo::new(Coalesced::new(Tracked::new(stream, Arc::clone(&activity))));
        let connection = Watched::new(
            self.graceful
                .watch(self.builder.serve_connection(io, service).into_owned()),
            activity,
            timeout,
        );
        let held = self.held;
        tokio::spawn(async move {
            match connection.await {
                Some(Ok(())) => {}
                Some(Err(error)) => {
                    tracing::debug!(?remote, %error, "connection ended with an error");
                }
                None => tracing::debug!(?remote, "closed: no request head in time"),
            }
            drop(held);
        });
    }
}

/// How many headers hyper accepts unless told otherwise: its own limit,
/// kept in arrays on the stack. A limit set explicitly, even to the same
/// 100, makes it fill a vector of that many per request instead, which
/// cost a fifth of a bare hyper hello.
const HYPER_MAX_HEADERS: usize = 100;

/// Streams one HTTP/2 connection may have open at once.
const HTTP2_MAX_STREAMS: u32 = 128;

/// How long after it stops accepting the host keeps its HTTP/1
/// connections open, answering each connection's next request with
/// `Connection: close`, before it closes the ones that stayed idle.
/// Closing an idle keep-alive connection races with the client sending on
/// it (the request meets a reset, and a client that does not retry, as
/// Python's http.client, fails): a busy client has sent its next request
/// within this and is told to reconnect instead; only a client idle this
/// long meets the race.
const CLOSE_WINDOW: Duration = Duration::from_secs(1);

/// How long in-flight requests may take to finish after a stop signal.
pub const GRACEFUL_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `site` on `listener` until `stop` completes, then stops accepting
/// and waits (up to [`GRACEFUL_TIMEOUT`]) for in-flight requests. Gives back
/// what `stop` said and the listener, still open (a restart hands it on).
pub async fn serve<T>(
    listener: Listener,
    site: Arc<Site>,
    stop: impl Future<Output = T>,
) -> (T, Listener) {
    let graceful = GracefulShutdown::new();
    let limits: Limits = site.limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        // no timer: `head_timeout` closes slow and idle connections
        .max_buf_size(limits.max_header_bytes.max(8192));
    if limits.max_headers != HYPER_MAX_HEADERS {
        builder.http1().max_headers(limits.max_headers);
    }
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30))
        // nginx's http2_max_concurrent_streams: one connection may not
        // start more handlers at once than this
        .max_concurrent_streams(HTTP2_MAX_STREAMS);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let bodies = Arc::new(Bodies::new(&limits, &site.spool_dir));
    let per_address = PerAddress::new(limits.max_connections_per_address);
    let mut stop = std::pin::pin!(stop);
    let reason = loop {
        // At the cap, stop accepting: new clients wait in the backlog.
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => continue,
            },
            reason = &mut stop => break reason,
        };
        let connection = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            reason = &mut stop => break reason,
        };
        let mut accepted = Accepted {
            site: &site,
            builder: &builder,
            graceful: &graceful,
            bodies: &bodies,
            held: (permit, None),
        };
        match connection {
            Connection::Tcp(stream, remote) => {
                let counted = if site.trusted_proxies.trusts(remote.ip()) {
                    None
                } else {
                    match per_address.admit(remote.ip()) {
                        Some(counted) => Some(counted),
                        None => {
                            tracing::debug!(%remote, "closed: the client has max_connections_per_address open");
                            continue;
                        }
                    }
                };
                accepted.held.1 = counted;
                let local = stream.local_addr().ok();
                accepted.spawn(stream, Some(remote), local);
            }
            // a process of this machine: the proxy, whose file permissions
            // let it connect (see `listener`)
            Connection::Unix(stream) => accepted.spawn(stream, None, None),
        }
    };
    tracing::info!("stopped accepting; finishing in-flight requests");
    site.close_connections();
    let window_ends = tokio::time::Instant::now() + CLOSE_WINDOW;
    // every connection holds a permit: none open, nothing to wait for
    while connections.available_permits() < limits.max_connections
        && tokio::time::Instant::now() < window_ends
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(GRACEFUL_TIMEOUT) => {
            tracing::warn!(timeout = ?GRACEFUL_TIMEOUT, "gave up waiting for in-flight requests");
        }
    }
    (reason, listener)
}
