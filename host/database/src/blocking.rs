//! Synchronous calls to asynchronous network clients (PostgreSQL's driver,
//! the object store's): apps call the host synchronously, from the threads
//! that run their handlers, and wait here while a small runtime of the
//! host's drives the sockets.

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

/// Runs the future `make` gives to its end, from synchronous code. A
/// thread already inside a runtime (one of the host's async workers, when
/// an app migrates while it loads) may not block on another: there the
/// call runs on a thread of its own for its duration.
pub fn block<F: Future>(make: impl FnOnce() -> F + Send) -> F::Output
where
    F::Output: Send,
{
    let run = || runtime().block_on(make());
    if tokio::runtime::Handle::try_current().is_err() {
        return run();
    }
    std::thread::scope(|scope| {
        scope
            .spawn(run)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
