//! Synchronous calls to asynchronous network clients: apps call the host
//! synchronously, from the threads that run their handlers, and wait here.
//! The object store's client runs on a small runtime of the host's
//! ([`block`]); PostgreSQL's connections each drive themselves on the
//! waiting thread (`postgres::connection`), which must not be inside a
//! runtime ([`off_runtime`]).

use std::{future::Future, sync::OnceLock};

/// The runtime that drives the clients' sockets: one thread is plenty, the
/// work being the servers'; callers poll their own calls while they block.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("network-clients")
            .enable_all()
            .build()
            .expect("the network clients' runtime starts (a thread and an epoll instance)")
    })
}

/// Runs the future `make` gives to its end on [`runtime`], from
/// synchronous code.
pub fn block<F: Future>(make: impl FnOnce() -> F + Send) -> F::Output
where
    F::Output: Send,
{
    off_runtime(|| runtime().block_on(make()))
}

/// Runs `work`, which blocks on a runtime, on this thread, or on a thread
/// of its own for its duration when this one is inside a runtime (one of
/// the host's async workers, when an app migrates while it loads, or the
/// readiness probe): a runtime may not block on another.
pub fn off_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return work();
    }
    std::thread::scope(|scope| {
        scope
            .spawn(work)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
