//! Where app handlers run: inline on an async worker while the mount is
//! fast, else on the mount's own handler threads.
//!
//! Handing every request to another thread costs a futex wake-up and two
//! context switches. Measured under `cargo xtask bench`'s load on this 2-core
//! machine, CPU per hello request: 18 µs through a pool of 16 threads on a
//! crossbeam channel (a quarter of it in `sched_yield` and futex wake-ups),
//! 10 µs calling the handler inline; the bare hyper baseline takes 7.5 µs.
//! Inline calls alone would let one slow handler stall the runtime, so:
//!
//! - at most [`InlineGate`]'s limit of handlers run inline at once: one fewer
//!   than the async workers, so one worker is always free to accept and
//!   dispatch (there are at least two workers, even on one CPU: see
//!   `lifecycle::async_workers`);
//! - a handler that runs longer than [`SLOW_CALL`] inline demotes its mount
//!   to the pool for [`DEMOTION`]; so does a request that finds another
//!   inline call of its mount running that long;
//! - the pool's threads start on demand, when a job arrives and no thread is
//!   idle, up to the mount's `max_concurrency`, so one app's slow handlers
//!   never take another app's threads;
//! - while a handler runs inline, a [`StallGuard`] makes sure another worker
//!   waits on the runtime's I/O (tokio lets a parked worker wait on a
//!   condition variable instead, and then nothing reads new connections and
//!   requests until the handler returns).

use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::{
        Arc, Condvar, Mutex, MutexGuard,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use abi_stable::std_types::RResult;
use app_api_abi::{AppError, AppInstance, AppRequest, AppResponse};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, oneshot};

pub(crate) mod request;

use crate::{logging, periodic::Periodic};
use request as app_request;

/// An inline call running longer than this marks its mount as slow. Wall
/// time, so it must stay well above a scheduler time slice: at 5 ms, threads
/// preempted under load demoted fast mounts (measured).
pub const SLOW_CALL: Duration = Duration::from_millis(100);

/// How long a slow mount's handlers stay on its pool before an inline call
/// is tried again.
pub const DEMOTION: Duration = Duration::from_secs(30);

/// Bounds how many handlers run inline on the async workers at once.
pub struct InlineGate {
    limit: usize,
    epoch: Instant,
    /// Shared with the [`StallGuard`].
    shared: Arc<GateShared>,
}

/// What the gate and its [`StallGuard`] share.
#[derive(Default)]
struct GateShared {
    /// Handlers running inline now.
    in_use: AtomicUsize,
    /// The guard's rounds; every inline call wakes it if it sleeps.
    guard: Periodic,
    /// Empty tasks the guard has handed the runtime (for tests).
    nudges: AtomicU64,
}

impl InlineGate {
    /// A gate for a runtime with `workers` async worker threads.
    pub fn new(workers: usize) -> InlineGate {
        InlineGate {
            limit: workers.saturating_sub(1),
            epoch: Instant::now(),
            shared: Arc::default(),
        }
    }

    fn try_enter(&self) -> Option<InlinePermit<'_>> {
        // SeqCst, as the guard's look at `in_use` before it sleeps (see
        // `Periodic::sleep_unless`)
        let permit = self
            .shared
            .in_use
            .fetch_update(Ordering::SeqCst, Ordering::Relaxed, |used| {
                (used < self.limit).then_some(used + 1)
            })
            .ok()
            .map(|_| InlinePermit { gate: self })?;
        self.shared.guard.wake();
        Some(permit)
    }

    /// Milliseconds since the gate was made, never 0.
    fn now_ms(&self) -> u64 {
        self.ms_at(Instant::now())
    }

    /// `instant` in milliseconds since the gate was made, never 0.
    fn ms_at(&self, instant: Instant) -> u64 {
        let since = instant.saturating_duration_since(self.epoch);
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX) + 1
    }
}

struct InlinePermit<'a> {
    gate: &'a InlineGate,
}

impl Drop for InlinePermit<'_> {
    fn drop(&mut self) {
        self.gate.shared.in_use.fetch_sub(1, Ordering::Release);
    }
}

/// How often a [`StallGuard`] looks at the inline calls: the longest a new
/// connection or request waits for a worker to see it while a handler runs
/// inline.
pub const STALL_CHECK: Duration = Duration::from_millis(10);

/// After this long without a handler running inline at any of its looks, a
/// [`StallGuard`] sleeps until the next inline call, so that an idle host
/// wakes no thread.
pub const GUARD_QUIET: Duration = Duration::from_secs(1);

/// Keeps the runtime's I/O watched while handlers run inline.
///
/// A tokio worker with nothing to do parks either on the I/O driver or, when
/// another worker holds the driver, on a condition variable. A worker that
/// was woken from the driver and then runs a handler inline leaves the
/// driver unwatched if the other workers sleep on the condition variable:
/// new connections and requests then wait until the handler returns
/// (measured: a request sent during a 3 s inline call was answered when the
/// call ended, in 3 of 25 runs of a test on one CPU). Every [`STALL_CHECK`]
/// this guard's thread checks whether a handler runs inline and, if so,
/// hands the runtime an empty task: that wakes a sleeping worker, which,
/// finding nothing else to do, parks again, now on the free driver. After
/// [`GUARD_QUIET`] without inline calls seen it sleeps, and the next inline
/// call wakes it (looking every 10 ms, it woke 100 times a second on an idle
/// host).
pub struct StallGuard {
    shared: Arc<GateShared>,
    thread: Option<JoinHandle<()>>,
}

impl StallGuard {
    /// Starts watching the handlers that `gate` lets run inline on
    /// `runtime`'s workers.
    pub fn start(
        gate: &InlineGate,
        runtime: tokio::runtime::Handle,
    ) -> std::io::Result<StallGuard> {
        Self::start_with_quiet(gate, runtime, GUARD_QUIET)
    }

    fn start_with_quiet(
        gate: &InlineGate,
        runtime: tokio::runtime::Handle,
        quiet: Duration,
    ) -> std::io::Result<StallGuard> {
        let shared = Arc::clone(&gate.shared);
        let thread = thread::Builder::new().name("stall-guard".into()).spawn({
            let shared = Arc::clone(&shared);
            move || guard(&shared, &runtime, quiet)
        })?;
        Ok(StallGuard {
            shared,
            thread: Some(thread),
        })
    }

    /// Whether the guard sleeps until the next inline call.
    #[cfg(test)]
    fn asleep(&self) -> bool {
        self.shared.guard.asleep()
    }
}

/// The guard's thread: see [`StallGuard`].
fn guard(shared: &GateShared, runtime: &tokio::runtime::Handle, quiet: Duration) {
    let inline = || shared.in_use.load(Ordering::SeqCst) > 0;
    let quiet_looks = quiet.as_nanos() / STALL_CHECK.as_nanos();
    let mut looks_without_inline = 0;
    while !shared.guard.wait(STALL_CHECK) {
        if inline() {
            looks_without_inline = 0;
            shared.nudges.fetch_add(1, Ordering::Relaxed);
            drop(runtime.spawn(async {}));
            continue;
        }
        looks_without_inline += 1;
        if looks_without_inline >= quiet_looks {
            shared.guard.sleep_unless(inline);
            looks_without_inline = 0;
        }
    }
}

impl Drop for StallGuard {
    fn drop(&mut self) {
        self.shared.guard.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What a handler thread sends back.
pub type Reply = RResult<AppResponse, AppError>;

struct Job {
    request: AppRequest,
    reply: oneshot::Sender<Reply>,
    /// The mount's concurrency slot, held until the handler returns (even
    /// after the client got its 504).
    _slot: OwnedSemaphorePermit,
    /// The deadline given to the client, to log handlers that outlive it.
    timeout: Duration,
    mount: Arc<str>,
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

/// Why a call got no reply from the app.
#[derive(Debug)]
pub enum CallError {
    /// The pool is gone (the host is shutting down).
    Closed,
    /// Every slot of the mount stayed busy for `queue_timeout`.
    Busy,
    /// The handler did not answer within `timeout`.
    TimedOut(Duration),
}

/// The mount's limits on its handlers.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// Handlers running at once, at most.
    pub max_concurrency: usize,
    /// How long a request may wait for a free slot.
    pub queue_timeout: Duration,
    /// How long a handler may take before the client gets 504.
    pub timeout: Duration,
}

/// Where one mount's handlers run.
pub struct HandlerPool {
    name: String,
    mount: Arc<str>,
    limits: CallLimits,
    slots: Arc<Semaphore>,
    max_threads: usize,
    instance: Arc<AppInstance>,
    shared: Arc<Shared>,
    /// Until when (gate milliseconds) the mount stays on its pool.
    demoted_until: AtomicU64,
    /// When the latest inline call started (gate milliseconds), 0 if none
    /// runs.
    inline_since: AtomicU64,
}

/// What [`HandlerPool::call`] gives back.
pub enum Call<'a> {
    /// The answer, already there (the handler ran inline, or the mount is
    /// closed).
    Done(Result<Reply, CallError>),
    /// The answer once a slot is free or a pool thread has answered.
    Waiting(Pin<Box<dyn Future<Output = Result<Reply, CallError>> + Send + 'a>>),
}

/// The pool is gone (the host is shutting down) or cannot start a thread.
#[derive(Debug)]
pub struct PoolClosed;

impl HandlerPool {
    /// A pool for the mount `name` running handlers of `instance` within
    /// `limits`.
    pub fn new(name: &str, limits: CallLimits, instance: Arc<AppInstance>) -> HandlerPool {
        HandlerPool {
            name: name.to_owned(),
            mount: Arc::from(name),
            limits,
            slots: Arc::new(Semaphore::new(limits.max_concurrency.max(1))),
            max_threads: limits.max_concurrency.max(1),
            instance,
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                work: Condvar::new(),
                spin: SPIN,
            }),
            demoted_until: AtomicU64::new(0),
            inline_since: AtomicU64::new(0),
        }
    }

    /// Runs the request's handler, inline when the mount is fast and the gate
    /// allows, else on one of the pool's threads. The request id is the
    /// context of the app's log events either way. At most
    /// `max_concurrency` handlers of the mount run at once; a request waits
    /// for a slot up to `queue_timeout`, and a pooled handler's client waits
    /// up to `timeout` (the handler runs on; its slot stays taken).
    ///
    /// Not an `async fn`: the common case, a free slot and an inline call,
    /// is answered at once, and only waiting for a slot or for the pool
    /// makes a (boxed) future. An `async fn` would carry the request, the
    /// timers and the channel in every request's future, which is moved
    /// several times per request (measured: a request's future went from
    /// 1,872 to 1,216 bytes, a hello request from 20,280 to 19,820
    /// instructions).
    ///
    /// An inline call only borrows `request`; a call that has to wait takes
    /// it (see [`app_request::take`]).
    ///
    /// `arrived` is when the host took the request in: a call made at once
    /// times itself from there rather than read the clock again (the
    /// microseconds of dispatch in between are nothing beside
    /// [`SLOW_CALL`]).
    pub fn call<'a>(
        &'a self,
        gate: &'a InlineGate,
        request: &mut AppRequest,
        arrived: Instant,
    ) -> Call<'a> {
        // The semaphore is fair: while requests wait, released slots go to
        // them, never to a `try_acquire`.
        let slot = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(TryAcquireError::Closed) => return Call::Done(Err(CallError::Closed)),
            Err(TryAcquireError::NoPermits) => {
                let request = app_request::take(request);
                return Call::Waiting(Box::pin(async move {
                    let slot = self.wait_for_slot().await?;
                    if let Some(reply) = self.try_inline(gate, &request, Instant::now()) {
                        return Ok(reply);
                    }
                    self.call_on_pool(request, slot).await
                }));
            }
        };
        match self.try_inline(gate, request, arrived) {
            Some(reply) => Call::Done(Ok(reply)),
            None => Call::Waiting(Box::pin(
                self.call_on_pool(app_request::take(request), slot),
            )),
        }
    }

    async fn wait_for_slot(&self) -> Result<OwnedSemaphorePermit, CallError> {
        match tokio::time::timeout(
            self.limits.queue_timeout,
            Arc::clone(&self.slots).acquire_owned(),
        )
        .await
        {
            Ok(Ok(slot)) => Ok(slot),
            Ok(Err(_)) => Err(CallError::Closed),
            Err(_) => Err(CallError::Busy),
        }
    }

    async fn call_on_pool(
        &self,
        request: AppRequest,
        slot: OwnedSemaphorePermit,
    ) -> Result<Reply, CallError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job {
            request,
            reply,
            _slot: slot,
            timeout: self.limits.timeout,
            mount: Arc::clone(&self.mount),
        })
        .map_err(|_| CallError::Closed)?;
        match tokio::time::timeout(self.limits.timeout, answer).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(CallError::Closed),
            Err(_) => Err(CallError::TimedOut(self.limits.timeout)),
        }
    }

    /// Calls the handler on this thread if the mount is fast and the gate
    /// lets it; `started` (a recent reading of the clock) serves the checks
    /// and the call's duration.
    fn try_inline(
        &self,
        gate: &InlineGate,
        request: &AppRequest,
        started: Instant,
    ) -> Option<Reply> {
        let now = gate.ms_at(started);
        if self.demoted_until.load(Ordering::Relaxed) > now {
            return None;
        }
        let running_since = self.inline_since.load(Ordering::Relaxed);
        let slow_ms = u64::try_from(SLOW_CALL.as_millis()).unwrap_or(u64::MAX);
        if running_since != 0 && now.saturating_sub(running_since) > slow_ms {
            self.demote(gate, "an inline call is still running");
            return None;
        }
        let _permit = gate.try_enter()?;
        self.inline_since.store(now, Ordering::Relaxed);
        let reply = logging::with_request_id(&request.request_id, || self.instance.handle(request));
        let took = started.elapsed();
        self.inline_since.store(0, Ordering::Relaxed);
        if took > SLOW_CALL {
            self.demote(gate, &format!("an inline call took {took:?}"));
        }
        Some(reply)
    }

    fn demote(&self, gate: &InlineGate, why: &str) {
        let until = gate.now_ms() + u64::try_from(DEMOTION.as_millis()).unwrap_or(u64::MAX);
        if self.demoted_until.swap(until, Ordering::Relaxed) <= gate.now_ms() {
            tracing::info!(
                mount = %self.name,
                "handlers run on the mount's own threads for {DEMOTION:?}: {why}"
            );
        }
    }

    fn submit(&self, job: Job) -> Result<(), PoolClosed> {
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
            let thread = thread::Builder::new()
                .name(format!("{}-{index}", self.name))
                .spawn(move || work(&shared, &instance))
                .map_err(|error| {
                    tracing::error!(mount = %self.name, %error, "cannot start a handler thread");
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
    pub fn stop(&self) {
        self.slots.close();
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

impl Drop for HandlerPool {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How long a handler thread that finished a job looks for the next one
/// (yielding the CPU between looks) before it waits to be woken. Under load
/// the next job comes within that time, and neither the thread's sleep and
/// wake-up nor the submitter's futex call happen. Measured on the blog's
/// home page, whose ~40 µs handler mostly finds the one inline slot of two
/// workers taken and goes to the pool (70,000 of 80,000 requests): 61-70
/// -> 45-55 µs of CPU per request, 23,000-26,000 -> 28,000-32,000 req/s in
/// three A/B runs (20 µs and 100 µs measured the same within the noise; the
/// hello request unchanged).
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
fn work(shared: &Shared, instance: &AppInstance) {
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
                    mount = %job.mount,
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
    use abi_stable::{sabi_trait::TD_Opaque, std_types::RVec};
    use app_api_abi::{App, App_TO, AppResponse, RouteInfo};

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

    fn status(reply: Result<Reply, CallError>) -> u16 {
        match reply {
            Ok(RResult::ROk(response)) => response.status,
            other => panic!("no response: {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_that_come_while_a_thread_looks_for_work_all_get_a_thread() {
        let app = Rendezvous {
            arrived: Mutex::new(0),
            met: Condvar::new(),
        };
        let instance = Arc::new(App_TO::from_value(app, TD_Opaque));
        let limits = CallLimits {
            max_concurrency: 8,
            queue_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(20),
        };
        let mut pool = HandlerPool::new("rendezvous", limits, instance);
        // a thread that finishes a job keeps looking for the next one
        // throughout this test
        Arc::get_mut(&mut pool.shared).unwrap().spin = Duration::from_secs(30);
        let request = app_request::empty;
        let slot = || Arc::clone(&pool.slots).try_acquire_owned().unwrap();
        // two jobs meet: two threads start, and both then look for work
        let (first, second) = tokio::join!(
            pool.call_on_pool(request(), slot()),
            pool.call_on_pool(request(), slot())
        );
        assert_eq!((status(first), status(second)), (200, 200));
        // two pairs at once while they look: every job must get a thread of
        // its own, or a job waits behind its partner and they never meet
        let (a, b, c, d) = tokio::join!(
            pool.call_on_pool(request(), slot()),
            pool.call_on_pool(request(), slot()),
            pool.call_on_pool(request(), slot()),
            pool.call_on_pool(request(), slot())
        );
        assert_eq!(
            [status(a), status(b), status(c), status(d)],
            [200, 200, 200, 200]
        );
        pool.stop();
    }
}

#[cfg(test)]
mod stall_guard_tests {
    use super::*;
    use crate::periodic::tests::soon;

    #[test]
    fn the_guard_sleeps_when_quiet_and_the_next_inline_call_wakes_it() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let gate = InlineGate::new(2);
        let guard =
            StallGuard::start_with_quiet(&gate, runtime.handle().clone(), STALL_CHECK * 5).unwrap();
        let nudges = || gate.shared.nudges.load(Ordering::Relaxed);
        for _ in 0..3 {
            assert!(soon(|| guard.asleep()), "no inline call: the guard sleeps");
            let before = nudges();
            thread::sleep(STALL_CHECK * 3);
            assert_eq!(nudges(), before, "asleep, it hands the runtime nothing");
            let permit = gate.try_enter().expect("a free slot");
            assert!(!guard.asleep());
            assert!(
                soon(|| nudges() >= before + 3),
                "while a handler runs inline, the woken guard keeps the I/O watched"
            );
            drop(permit);
        }
        // stopping a sleeping guard ends its thread
        assert!(soon(|| guard.asleep()));
        drop(guard);
    }
}
