//! A mount's own handler threads, for when its handlers are slow: started
//! on demand up to the mount's `max_concurrency`, so that one app's slow
//! handlers never take another app's threads.

use std::{
    collections::VecDeque,
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use abi_stable::std_types::RResult;
use app_api_abi::{AppError, AppInstance, AppRequest, AppResponse};
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use crate::logging;

/// What a handler answers.
pub type Reply = RResult<AppResponse, AppError>;

/// A handler to run on a pool thread.
pub(super) struct Job {
    pub(super) request: AppRequest,
    pub(super) reply: oneshot::Sender<Reply>,
    /// The mount's concurrency slot, held until the handler returns (even
    /// after the client got its 504).
    pub(super) _slot: OwnedSemaphorePermit,
    /// The deadline given to the client, to log handlers that outlive it.
    pub(super) timeout: Duration,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Threads waiting for a job.
    idle: usize,
    /// Wake-ups sent and not yet taken by a waiting thread.
    wakeups: usize,
    /// Threads that just finished a job and look for the next one before
    /// they wait.
    spinning: usize,
    threads: Vec<JoinHandle<()>>,
    stopping: bool,
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
    /// How long a thread that finished a job looks for the next (see
    /// [`SPIN`]).
    spin: Duration,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The pool is gone (the host is shutting down) or cannot start a thread.
#[derive(Debug)]
pub(super) struct PoolClosed;

/// One mount's handler threads.
pub(super) struct Pool {
    mount: Arc<str>,
    max_threads: usize,
    instance: Arc<AppInstance>,
    shared: Arc<Shared>,
}

impl Pool {
    /// Up to `max_threads` threads for the mount `mount`, running
    /// `instance`'s handlers.
    pub(super) fn new(mount: &str, max_threads: usize, instance: Arc<AppInstance>) -> Pool {
        Pool {
            mount: Arc::from(mount),
            max_threads: max_threads.max(1),
            instance,
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                work: Condvar::new(),
                spin: SPIN,
            }),
        }
    }

    /// Queues `job` for a thread: an idle one, or a new one up to the
    /// limit; `PoolClosed` once stopping (or when no thread can start).
    pub(super) fn submit(&self, job: Job) -> Result<(), PoolClosed> {
        let mut state = self.shared.lock();
        if state.stopping {
            return Err(PoolClosed);
        }
        state.jobs.push_back(job);
        if state.jobs.len() <= state.spinning {
            // a thread that just finished a job takes it, no wake-up needed
        } else if state.idle > state.wakeups {
            state.wakeups += 1;
            drop(state);
            self.shared.work.notify_one();
        } else if state.threads.len() < self.max_threads {
            let index = state.threads.len();
            let shared = Arc::clone(&self.shared);
            let instance = Arc::clone(&self.instance);
            let mount = Arc::clone(&self.mount);
            let thread = thread::Builder::new()
                .name(format!("{}-{index}", self.mount))
                .spawn(move || work(&shared, &instance, &mount))
                .map_err(|error| {
                    tracing::error!(mount = %self.mount, %error, "cannot start a handler thread");
                    PoolClosed
                });
            match thread {
                Ok(thread) => state.threads.push(thread),
                // The job stays queued for the threads already running.
                Err(closed) if state.threads.is_empty() => return Err(closed),
                Err(_) => {}
            }
        }
        Ok(())
    }

    /// Lets the queued jobs finish, then ends and joins the threads.
    pub(super) fn stop(&self) {
        let threads = {
            let mut state = self.shared.lock();
            state.stopping = true;
            std::mem::take(&mut state.threads)
        };
        self.shared.work.notify_all();
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How long a handler thread that finished a job looks for the next one
/// (yielding the CPU between looks) before it waits to be woken. Under load
/// the next job comes within that time, and neither the thread's sleep and
/// wake-up nor the submitter's futex call happen: the blog's home page,
/// mostly served here, needs a quarter less CPU per request
/// (`docs/performance.md`).
const SPIN: Duration = Duration::from_micros(50);

/// After a job: looks for the next one for up to `shared.spin`, yielding
/// the CPU between looks, unless one is queued or the pool stops. Gives the
/// lock back.
fn look_for_next<'a>(
    shared: &'a Shared,
    mut state: MutexGuard<'a, State>,
) -> MutexGuard<'a, State> {
    if !state.jobs.is_empty() || state.stopping {
        return state;
    }
    // counted, so that `submit` wakes no thread for a job this one takes
    state.spinning += 1;
    drop(state);
    let until = Instant::now() + shared.spin;
    loop {
        thread::yield_now();
        let mut state = shared.lock();
        if !state.jobs.is_empty() || state.stopping || Instant::now() > until {
            state.spinning -= 1;
            return state;
        }
    }
}

/// A handler thread: takes jobs until the pool stops and the queue is empty.
fn work(shared: &Shared, instance: &AppInstance, mount: &str) {
    let mut state = shared.lock();
    loop {
        if let Some(job) = state.jobs.pop_front() {
            drop(state);
            let started = Instant::now();
            let answer =
                logging::with_request_id(&job.request.request_id, || instance.handle(&job.request));
            let took = started.elapsed();
            if took > job.timeout {
                tracing::warn!(
                    mount = %mount,
                    request_id = %job.request.request_id,
                    path = %job.request.path,
                    "slow handler finished after {took:?}, past its {:?} timeout (the client got 504)",
                    job.timeout
                );
            }
            // The client may have gone; nothing to do then.
            let _ = job.reply.send(answer);
            state = look_for_next(shared, shared.lock());
            continue;
        }
        if state.stopping {
            return;
        }
        state.idle += 1;
        state = shared
            .work
            .wait(state)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.idle -= 1;
        state.wakeups = state.wakeups.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use abi_stable::{
        sabi_trait::TD_Opaque,
        std_types::{RResult, RVec},
    };
    use app_api_abi::{App, App_TO, AppError, AppResponse, RouteInfo};
    use tokio::sync::Semaphore;

    use super::*;

    /// An app whose handler answers 200 only if another call of it runs at
    /// the same time (within 10 s), 504 otherwise.
    struct Rendezvous {
        arrived: Mutex<usize>,
        met: Condvar,
    }

    impl App for Rendezvous {
        fn handle(&self, _: &AppRequest) -> RResult<AppResponse, AppError> {
            let mut arrived = self.arrived.lock().unwrap();
            *arrived += 1;
            self.met.notify_all();
            let (arrived, _) = self
                .met
                .wait_timeout_while(arrived, Duration::from_secs(10), |arrived| {
                    *arrived % 2 == 1
                })
                .unwrap();
            let status = if *arrived % 2 == 0 { 200 } else { 504 };
            RResult::ROk(AppResponse {
                status,
                headers: RVec::new(),
                body: RVec::new(),
            })
        }

        fn routes(&self) -> RVec<RouteInfo> {
            RVec::new()
        }

        fn shutdown(&self) {}
    }

    fn status(reply: Reply) -> u16 {
        match reply {
            RResult::ROk(response) => response.status,
            other => panic!("no response: {other:?}"),
        }
    }

    /// Runs one request on the pool; its reply.
    async fn run(pool: &Pool, slots: &Arc<Semaphore>) -> Reply {
        let (reply, answer) = oneshot::channel();
        pool.submit(Job {
            request: super::super::request::empty(),
            reply,
            _slot: Arc::clone(slots).try_acquire_owned().unwrap(),
            timeout: Duration::from_secs(20),
        })
        .unwrap();
        answer.await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_that_come_while_a_thread_looks_for_work_all_get_a_thread() {
        let app = Rendezvous {
            arrived: Mutex::new(0),
            met: Condvar::new(),
        };
        let instance = Arc::new(App_TO::from_value(app, TD_Opaque));
        let mut pool = Pool::new("rendezvous", 8, instance);
        // a thread that finishes a job keeps looking for the next one
        // throughout this test
        Arc::get_mut(&mut pool.shared).unwrap().spin = Duration::from_secs(30);
        let slots = Arc::new(Semaphore::new(8));
        // two jobs meet: two threads start, and both then look for work
        let (first, second) = tokio::join!(run(&pool, &slots), run(&pool, &slots));
        assert_eq!((status(first), status(second)), (200, 200));
        // two pairs at once while they look: every job must get a thread of
        // its own, or a job waits behind its partner and they never meet
        let (a, b, c, d) = tokio::join!(
            run(&pool, &slots),
            run(&pool, &slots),
            run(&pool, &slots),
            run(&pool, &slots)
        );
        assert_eq!(
            [status(a), status(b), status(c), status(d)],
            [200, 200, 200, 200]
        );
        pool.stop();
    }
}
