//! Running an app's handlers: one boundary, [`Runner::call`] (the request
//! in, its reply, at once or as a future, out), and the strategies behind
//! it. Inline on an async worker while the mount is fast: handing every
//! request to another thread costs a futex wake-up and two context
//! switches, most of a small request's CPU. On the mount's own threads
//! (`pool`) once a call was slow (`demotion`), since one slow handler
//! inline would stall the runtime. At most [`InlineGate`]'s limit of
//! handlers run inline at once (`gate`), and while one does, a
//! [`StallGuard`] keeps the runtime's I/O watched (`stall_guard`).

mod demotion;
mod gate;
mod pool;
pub(crate) mod request;
mod stall_guard;

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use app_api_abi::{AppInstance, AppRequest};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, oneshot};

use crate::logging;
use demotion::{Demotion, Verdict};
pub use gate::InlineGate;
pub use pool::Reply;
use pool::{Job, Pool};
pub use stall_guard::StallGuard;

/// Why a call got no reply from the app.
#[derive(Debug)]
pub enum CallError {
    /// The runner is stopped (the host is shutting down).
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
    /// Whether handlers may run inline on an async worker. Not for a mount
    /// with a database on the network: each of its calls waits on round
    /// trips, and on its own threads `max_concurrency` of them wait at
    /// once, where inline they would hold up the runtime.
    pub inline: bool,
}

/// What [`Runner::call`] gives back.
pub enum Call<'a> {
    /// The answer, already there (the handler ran inline, or the mount is
    /// closed).
    Done(Result<Reply, CallError>),
    /// The answer once a slot is free or a pool thread has answered.
    Waiting(Pin<Box<dyn Future<Output = Result<Reply, CallError>> + Send + 'a>>),
}

/// Where one mount's handlers run.
pub struct Runner {
    name: String,
    limits: CallLimits,
    slots: Arc<Semaphore>,
    instance: Arc<AppInstance>,
    pool: Pool,
    demotion: Demotion,
}

impl Runner {
    /// A runner for the mount `name` running handlers of `instance` within
    /// `limits`.
    pub fn new(name: &str, limits: CallLimits, instance: Arc<AppInstance>) -> Runner {
        Runner {
            name: name.to_owned(),
            limits,
            slots: Arc::new(Semaphore::new(limits.max_concurrency.max(1))),
            pool: Pool::new(name, limits.max_concurrency, Arc::clone(&instance)),
            instance,
            demotion: Demotion::default(),
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
    /// several times per request.
    ///
    /// An inline call only borrows `request`; a call that has to wait takes
    /// it (see [`request::take`]).
    ///
    /// `arrived` is when the host took the request in: a call made at once
    /// times itself from there rather than read the clock again (the
    /// microseconds of dispatch in between are nothing beside
    /// [`demotion::SLOW_CALL`]).
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
                let request = request::take(request);
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
            None => Call::Waiting(Box::pin(self.call_on_pool(request::take(request), slot))),
        }
    }

    /// Waits, up to `queue_timeout`, until one of the mount's handlers is
    /// free, without taking it: a request's body is read only once its
    /// handler could run, yet no handler sits idle while a slow client
    /// sends the body (the slot is taken by [`Runner::call`]).
    pub async fn admit(&self) -> Result<(), CallError> {
        match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(_) => Ok(()),
            Err(TryAcquireError::Closed) => Err(CallError::Closed),
            Err(TryAcquireError::NoPermits) => self.wait_for_slot().await.map(drop),
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
        self.pool
            .submit(Job {
                request,
                reply,
                _slot: slot,
                timeout: self.limits.timeout,
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
        // Forms and uploads are where the slow work is (password hashing,
        // writes, image decoding): they run on the mount's threads, never on
        // an async worker, and the handoff is nothing beside that work.
        if !self.limits.inline || !matches!(request.method.as_str(), "GET" | "HEAD" | "OPTIONS") {
            return None;
        }
        let now = gate.ms_at(started);
        match self.demotion.verdict(now) {
            Verdict::Inline => {}
            Verdict::Pool => return None,
            Verdict::Demote(why) => {
                self.demote(gate, why);
                return None;
            }
        }
        let _permit = gate.try_enter()?;
        self.demotion.started(now);
        let reply = logging::with_request_id(&request.request_id, || self.instance.handle(request));
        if let Some(why) = self.demotion.finished(started.elapsed()) {
            self.demote(gate, &why);
        }
        Some(reply)
    }

    fn demote(&self, gate: &InlineGate, why: &str) {
        if self.demotion.demote(gate.now_ms()) {
            tracing::info!(
                mount = %self.name,
                "handlers run on the mount's own threads for {:?}: {why}",
                demotion::DEMOTION
            );
        }
    }

    /// Lets the handlers that run finish, then ends the mount's threads;
    /// later calls get [`CallError::Closed`].
    pub fn stop(&self) {
        self.slots.close();
        self.pool.stop();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Condvar, Mutex};

    use abi_stable::{
        sabi_trait::TD_Opaque,
        std_types::{RResult, RVec},
    };
    use app_api_abi::{App, App_TO, AppResponse, RouteInfo};

    use super::*;

    /// A handler that answers with the name of the thread it ran on, after
    /// `sleep`, and not before `open` is set.
    #[derive(Default)]
    struct Probe {
        sleep: Duration,
        open: Mutex<bool>,
        opened: Condvar,
    }

    /// The app of a [`Probe`] the test keeps a handle to.
    struct Shared(Arc<Probe>);

    impl App for Shared {
        fn handle(&self, _: &AppRequest) -> Reply {
            let probe = &self.0;
            std::thread::sleep(probe.sleep);
            let open = probe.open.lock().unwrap();
            drop(probe.opened.wait_while(open, |open| !*open).unwrap());
            let thread = std::thread::current().name().unwrap_or("").to_owned();
            RResult::ROk(AppResponse {
                status: 200,
                headers: RVec::new(),
                body: thread.into_bytes().into(),
            })
        }

        fn routes(&self) -> RVec<RouteInfo> {
            RVec::new()
        }

        fn shutdown(&self) {}
    }

    impl Probe {
        fn open(&self) {
            *self.open.lock().unwrap() = true;
            self.opened.notify_all();
        }
    }

    /// Two handlers at once, and time enough that no test call waits out
    /// a limit.
    const TWO_PATIENT_SLOTS: CallLimits = CallLimits {
        max_concurrency: 2,
        queue_timeout: Duration::from_secs(10),
        timeout: Duration::from_secs(10),
        inline: true,
    };

    fn runner(probe: &Arc<Probe>, limits: CallLimits) -> Runner {
        let instance = Arc::new(App_TO::from_value(Shared(Arc::clone(probe)), TD_Opaque));
        Runner::new("probe", limits, instance)
    }

    async fn call(runner: &Runner, gate: &InlineGate) -> Result<Reply, CallError> {
        call_with(runner, gate, "GET").await
    }

    async fn call_with(
        runner: &Runner,
        gate: &InlineGate,
        method: &str,
    ) -> Result<Reply, CallError> {
        let mut request = request::empty();
        request.method = method.into();
        match runner.call(gate, &mut request, Instant::now()) {
            Call::Done(reply) => reply,
            Call::Waiting(reply) => reply.await,
        }
    }

    fn thread_of(reply: Result<Reply, CallError>) -> String {
        match reply {
            Ok(RResult::ROk(response)) => String::from_utf8(response.body.into_vec()).unwrap(),
            other => panic!("no response: {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_mount_whose_slots_stay_busy_answers_busy_and_a_slow_handler_times_out() {
        let probe = Arc::new(Probe::default());
        let runner = runner(
            &probe,
            CallLimits {
                max_concurrency: 1,
                queue_timeout: Duration::from_millis(200),
                timeout: Duration::from_millis(300),
                inline: true,
            },
        );
        // no inline calls: every call goes to the mount's one thread
        let gate = InlineGate::new(1);
        // the one slot is taken by a handler that waits to be let go
        let first = call(&runner, &gate);
        let second = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            call(&runner, &gate).await
        };
        let (first, second) = tokio::join!(first, second);
        assert!(
            matches!(first, Err(CallError::TimedOut(limit)) if limit == Duration::from_millis(300)),
            "{first:?}"
        );
        assert!(matches!(second, Err(CallError::Busy)), "{second:?}");
        // let go, the slot comes back once the handler returns
        probe.open();
        let third = call(&runner, &gate).await;
        assert_eq!(thread_of(third), "probe-0");
        runner.stop();
        assert!(matches!(call(&runner, &gate).await, Err(CallError::Closed)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_inline_call_sends_its_mount_to_its_own_threads() {
        let probe = Arc::new(Probe {
            sleep: demotion::SLOW_CALL + Duration::from_millis(20),
            ..Probe::default()
        });
        probe.open();
        let runner = runner(&probe, TWO_PATIENT_SLOTS);
        let gate = InlineGate::new(2);
        let first = thread_of(call(&runner, &gate).await);
        assert!(
            !first.starts_with("probe-"),
            "a fast mount's call runs inline, on this thread: {first}"
        );
        // that call took longer than SLOW_CALL: the next go to the pool
        for _ in 0..2 {
            let next = thread_of(call(&runner, &gate).await);
            assert!(next.starts_with("probe-"), "on the mount's threads: {next}");
        }
        runner.stop();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn forms_and_uploads_never_run_on_an_async_worker() {
        let probe = Arc::new(Probe::default());
        probe.open();
        let runner = runner(&probe, TWO_PATIENT_SLOTS);
        let gate = InlineGate::new(2);
        for method in ["POST", "PUT", "PATCH", "DELETE"] {
            let thread = thread_of(call_with(&runner, &gate, method).await);
            assert!(thread.starts_with("probe-"), "{method} ran on {thread}");
        }
        // the mount is fast: reads still run inline
        let thread = thread_of(call(&runner, &gate).await);
        assert!(!thread.starts_with("probe-"), "GET ran on {thread}");
        runner.stop();
    }
}
