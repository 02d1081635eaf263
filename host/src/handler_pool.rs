//! Per-mount handler threads: app handlers are synchronous, so they run on
//! threads of their own, never on the async workers.
//!
//! A fixed pool fed by a channel, answering through a oneshot, measured as
//! the fastest way that keeps a slow handler off the runtime (DESIGN.md,
//! fact 11); one pool per mount keeps one app's load from starving another's.

use std::{
    sync::{Arc, Mutex},
    thread::{self, JoinHandle},
};

use abi_stable::std_types::RResult;
use app_api::abi::{AppError, AppInstance, AppRequest, AppResponse};
use crossbeam_channel::{Sender, unbounded};
use tokio::sync::oneshot;
use tracing::Span;

/// What a handler thread sends back.
pub type Reply = RResult<AppResponse, AppError>;

// `Stop` is sent once per thread at shutdown; boxing every job to shrink it
// would cost an allocation per request instead.
#[allow(clippy::large_enum_variant)]
enum Message {
    Job {
        request: AppRequest,
        span: Span,
        reply: oneshot::Sender<Reply>,
    },
    /// Ends the thread that takes it; sent once per thread, after the jobs
    /// already queued.
    Stop,
}

/// The handler threads of one mount.
pub struct HandlerPool {
    sender: Sender<Message>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// The pool is gone (the host is shutting down).
#[derive(Debug)]
pub struct PoolClosed;

impl HandlerPool {
    /// Starts `size` threads named after the mount, all calling `instance`.
    pub fn start(
        name: &str,
        size: usize,
        instance: Arc<AppInstance>,
    ) -> std::io::Result<HandlerPool> {
        let (sender, receiver) = unbounded::<Message>();
        let mut threads = Vec::with_capacity(size);
        for index in 0..size {
            let receiver = receiver.clone();
            let instance = Arc::clone(&instance);
            let thread = thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn(move || {
                    while let Ok(Message::Job {
                        request,
                        span,
                        reply,
                    }) = receiver.recv()
                    {
                        let answer = span.in_scope(|| instance.handle(&request));
                        // The client may have gone; nothing to do then.
                        let _ = reply.send(answer);
                    }
                })?;
            threads.push(thread);
        }
        Ok(HandlerPool {
            sender,
            threads: Mutex::new(threads),
        })
    }

    /// Runs the request on one of the pool's threads, inside `span`.
    pub async fn call(&self, request: AppRequest, span: Span) -> Result<Reply, PoolClosed> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Message::Job {
                request,
                span,
                reply,
            })
            .map_err(|_| PoolClosed)?;
        answer.await.map_err(|_| PoolClosed)
    }

    /// Lets the queued jobs finish, then ends and joins the threads.
    pub fn stop(&self) {
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for _ in &threads {
            let _ = self.sender.send(Message::Stop);
        }
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for HandlerPool {
    fn drop(&mut self) {
        self.stop();
    }
}
