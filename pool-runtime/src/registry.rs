//! Worker threads, their queues, and how they sleep and wake.
//!
//! A pool has two lanes. The CPU lane has a fixed set of `threads` workers,
//! started when the pool is built. The blocking lane starts with no thread
//! and grows on demand, up to a cap, for tasks marked `blocking`; its threads
//! retire after an idle timeout.
//!
//! Each lane is a FIFO of jobs (whole batches) behind one mutex, plus the
//! list of its sleeping threads behind the same mutex, so a submitter that
//! pushes a job and a worker that decides to sleep cannot miss each other.
//! The CPU lane also has a lock-free FIFO, `singles`, for jobs of one task
//! submitted while nothing waits on the locked queue: a task submitted on
//! its own is the common case of `apply_async` in a loop, and the lane's
//! mutex, shared with every worker, was most of its cost.
//!
//! ## Memory ordering
//!
//! Job queues and sleeper lists are only touched under the lane mutex, which
//! orders them. `Lane::queued` is a `Relaxed` hint read by spinning workers
//! only to decide whether to take the lock; a stale value costs a lock, never
//! a lost wake-up. A sleeper's `woken` flag is set with `Release` by the
//! thread that removed it from the sleeper list (under the lock) and read
//! with `Acquire` by the sleeper after `park` returns, since `park` may wake
//! spuriously.
//!
//! `singles` is pushed without the lock, so a submitter and a worker going
//! to sleep meet through a store-buffering hand-shake instead: the submitter
//! pushes, then reads `sleeping`; the worker raises `sleeping`, then reads
//! `singles`; a `SeqCst` fence between each one's write and read makes at
//! least one of them see the other (see `Registry::push_single`). The loom
//! models fail if either fence is removed.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use crate::error::{BuildError, TaskErrorKind};
use crate::job::JobRef;
use crate::primitive::thread::{self, JoinHandle, Thread};
use crate::primitive::{
    fence, lock, mpsc, thread_local, Arc, AtomicBool, AtomicUsize, Backoff, IdCounter, Injector,
    Instant, Mutex, Ordering,
};
use crate::unwind;

/// A hook run on each worker thread, given the thread's index.
pub(crate) type ThreadHook = Arc<dyn Fn(usize) + Send + Sync>;

/// Settings fixed when a pool is built.
pub(crate) struct Config {
    pub(crate) threads: usize,
    pub(crate) thread_name: Option<String>,
    pub(crate) stack_size: Option<usize>,
    pub(crate) on_start: Option<ThreadHook>,
    pub(crate) on_exit: Option<ThreadHook>,
    pub(crate) max_blocking_threads: usize,
    pub(crate) blocking_idle_timeout: Duration,
}

static NEXT_REGISTRY_ID: IdCounter = IdCounter::new(1);

thread_local! {
    /// The id of the registry whose worker this thread is (0: none).
    static CURRENT_REGISTRY: Cell<usize> = const { Cell::new(0) };
}

/// Which lane a job is queued on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LaneKind {
    Cpu,
    Blocking,
}

struct Sleeper {
    thread: Thread,
    woken: AtomicBool,
}

#[derive(Default)]
struct LaneState {
    jobs: VecDeque<JobRef>,
    sleepers: Vec<Arc<Sleeper>>,
    /// Blocking lane only: threads alive (running or sleeping).
    live: usize,
}

impl LaneState {
    /// Drops exhausted jobs from the front; returns the first job with work.
    fn front_with_work(&mut self, queued: &AtomicUsize) -> Option<JobRef> {
        while let Some(job) = self.jobs.front() {
            if job.has_unclaimed() {
                return Some(job.clone());
            }
            self.jobs.pop_front();
            queued.fetch_sub(1, Ordering::Relaxed);
        }
        None
    }

    /// Takes up to `n` sleepers off the list, marked woken; `sleeping`
    /// is their lane's mirror of the list's length.
    fn take_sleepers(&mut self, n: usize, sleeping: &AtomicUsize) -> Vec<Arc<Sleeper>> {
        let keep = self.sleepers.len().saturating_sub(n);
        let woken = self.sleepers.split_off(keep);
        sleeping.fetch_sub(woken.len(), Ordering::SeqCst);
        for sleeper in &woken {
            sleeper.woken.store(true, Ordering::Release);
        }
        woken
    }
}

struct Lane {
    state: Mutex<LaneState>,
    queued: AtomicUsize,
    /// Threads spinning for work right now: a submission leaves that much
    /// work to them instead of waking sleepers.
    spinning: AtomicUsize,
    /// CPU lane only: jobs of one task, queued without the lock (see
    /// `push_single`).
    singles: Injector<JobRef>,
    /// How many threads are in `state.sleepers`; changed only under the
    /// lock, read without it by `push_single`.
    sleeping: AtomicUsize,
}

impl Lane {
    fn new() -> Lane {
        Lane {
            state: Mutex::new(LaneState::default()),
            queued: AtomicUsize::new(0),
            spinning: AtomicUsize::new(0),
            singles: Injector::new(),
            sleeping: AtomicUsize::new(0),
        }
    }

    /// Whether a spinning thread should look for work.
    fn may_have_work(&self) -> bool {
        self.queued.load(Ordering::Relaxed) > 0 || !self.singles.is_empty()
    }

    /// Wakes one sleeper if nobody spins: the wake-up a submission (or a
    /// worker that saw more work behind what it took) owes the lane.
    fn wake_one_unless_spinning(&self) {
        if self.sleeping.load(Ordering::SeqCst) == 0 || self.spinning.load(Ordering::SeqCst) > 0 {
            return;
        }
        let woken = lock(&self.state).take_sleepers(1, &self.sleeping);
        for sleeper in woken {
            sleeper.thread.unpark();
        }
    }
}

/// The shared state of one pool: its lanes, its threads, its lifecycle.
pub(crate) struct Registry {
    id: usize,
    config: Config,
    cpu: Lane,
    blocking: Lane,
    /// `Pool` handles plus scopes currently open; at zero the threads exit.
    users: AtomicUsize,
    terminating: AtomicBool,
    broken: Mutex<Option<String>>,
    is_broken: AtomicBool,
    join_handles: Mutex<Vec<JoinHandle<()>>>,
    next_thread_index: AtomicUsize,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("threads", &self.config.threads)
            .field("broken", &self.broken_reason())
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Starts the CPU workers and waits until each ran its start hook.
    pub(crate) fn start(config: Config) -> Result<Arc<Registry>, BuildError> {
        if config.threads == 0 {
            return Err(BuildError::ZeroThreads);
        }
        unwind::install_location_hook();
        let threads = config.threads;
        let registry = Arc::new(Registry {
            id: NEXT_REGISTRY_ID.fetch_add(1, Ordering::Relaxed),
            config,
            cpu: Lane::new(),
            blocking: Lane::new(),
            users: AtomicUsize::new(1),
            terminating: AtomicBool::new(false),
            broken: Mutex::new(None),
            is_broken: AtomicBool::new(false),
            join_handles: Mutex::new(Vec::new()),
            next_thread_index: AtomicUsize::new(threads),
        });
        let (tx, rx) = mpsc::channel::<Result<(), BuildError>>();
        for index in 0..threads {
            let tx = tx.clone();
            let worker_registry = registry.clone();
            let spawned = registry.spawn_thread(index, move || {
                let started = worker_registry.run_start_hook(index);
                let ok = started.is_ok();
                let _ = tx.send(started);
                if ok {
                    worker_registry.cpu_main();
                }
            });
            if let Err(err) = spawned {
                registry.shut_down_after_failed_start();
                return Err(err);
            }
        }
        drop(tx);
        let mut failure = None;
        for _ in 0..threads {
            match rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    failure.get_or_insert(err);
                }
                Err(_) => break,
            }
        }
        if let Some(err) = failure {
            registry.shut_down_after_failed_start();
            return Err(err);
        }
        Ok(registry)
    }

    fn shut_down_after_failed_start(&self) {
        self.users.store(0, Ordering::SeqCst);
        self.terminate_threads();
        self.join_threads();
    }

    fn spawn_thread(
        &self,
        index: usize,
        main: impl FnOnce() + Send + 'static,
    ) -> Result<(), BuildError> {
        let mut builder = thread::Builder::new();
        if let Some(prefix) = &self.config.thread_name {
            builder = builder.name(format!("{prefix}-{index}"));
        } else {
            builder = builder.name(format!("poolscope-{index}"));
        }
        if let Some(size) = self.config.stack_size {
            builder = builder.stack_size(size);
        }
        let id = self.id;
        let exit_hook = self.config.on_exit.clone();
        let handle = builder
            .spawn(move || {
                CURRENT_REGISTRY.with(|current| current.set(id));
                main();
                if let Some(hook) = exit_hook {
                    // An exit hook that panics must not take the pool down
                    // with it; the thread is leaving anyway.
                    if let Err(payload) =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(index)))
                    {
                        eprintln!(
                            "poolscope: the thread exit hook panicked on worker {index}: {}",
                            unwind::message(&*payload)
                        );
                    }
                }
                CURRENT_REGISTRY.with(|current| current.set(0));
            })
            .map_err(|source| BuildError::Spawn {
                thread: index,
                source,
            })?;
        lock(&self.join_handles).push(handle);
        Ok(())
    }

    fn run_start_hook(&self, index: usize) -> Result<(), BuildError> {
        let Some(hook) = &self.config.on_start else {
            return Ok(());
        };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(index))).map_err(|payload| {
            BuildError::StartHookPanicked {
                thread: index,
                message: unwind::message(&*payload),
            }
        })
    }

    pub(crate) fn threads(&self) -> usize {
        self.config.threads
    }

    /// Whether the calling thread is one of this pool's workers (either lane).
    pub(crate) fn is_current_worker(&self) -> bool {
        CURRENT_REGISTRY.with(|current| current.get() == self.id)
    }

    pub(crate) fn broken_reason(&self) -> Option<String> {
        if !self.is_broken.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.broken).clone()
    }

    /// Queues a job of `tasks` tasks and wakes as many threads as it can use.
    pub(crate) fn push(self: &Arc<Self>, job: JobRef, tasks: usize, kind: LaneKind) {
        // While no job waits on the locked queue, a single task skips it.
        // Behind a queued job it waits its turn there instead, so that jobs
        // start in the order they were submitted: workers take singles
        // before queued jobs, and a submitter that queued a job sees
        // `queued` non-zero until that job has started.
        if kind == LaneKind::Cpu && tasks == 1 && self.cpu.queued.load(Ordering::Relaxed) == 0 {
            self.push_single(job);
            return;
        }
        let lane = self.lane(kind);
        let (wake, spawn) = {
            let mut state = lock(&lane.state);
            state.jobs.push_back(job);
            lane.queued.fetch_add(1, Ordering::Relaxed);
            // A spinning thread re-checks the queue under this lock before it
            // sleeps, so leaving work to spinners cannot strand it.
            let spinning = lane.spinning.load(Ordering::SeqCst);
            let wake = state.take_sleepers(tasks.saturating_sub(spinning), &lane.sleeping);
            let mut spawn = 0;
            if kind == LaneKind::Blocking {
                let missing = tasks.saturating_sub(spinning + wake.len());
                let room = self.config.max_blocking_threads.saturating_sub(state.live);
                spawn = missing.min(room);
                state.live += spawn;
            }
            (wake, spawn)
        };
        for sleeper in wake {
            sleeper.thread.unpark();
        }
        for _ in 0..spawn {
            self.spawn_blocking_thread();
        }
    }

    /// Queues a job of one task on the CPU lane without taking the lane's
    /// lock, and wakes a sleeper only if no thread spins.
    ///
    /// The hand-shake with `sleep`: this pushes, then (`SeqCst` fence) reads
    /// `sleeping` and `spinning`; a thread going to sleep stops spinning,
    /// raises `sleeping`, then (`SeqCst` fence) looks at `singles`. In the
    /// single total order of the two fences, either the sleeper's comes
    /// second and it sees the job, or this thread's comes second and it
    /// sees the sleeper counted and the spinner gone, and wakes it.
    fn push_single(&self, job: JobRef) {
        let lane = &self.cpu;
        lane.singles.push(job);
        fence(Ordering::SeqCst);
        lane.wake_one_unless_spinning();
    }

    fn lane(&self, kind: LaneKind) -> &Lane {
        match kind {
            LaneKind::Cpu => &self.cpu,
            LaneKind::Blocking => &self.blocking,
        }
    }

    fn spawn_blocking_thread(self: &Arc<Self>) {
        let index = self.next_thread_index.fetch_add(1, Ordering::Relaxed);
        let registry = self.clone();
        let spawned = self.spawn_thread(index, move || match registry.run_start_hook(index) {
            Ok(()) => registry.blocking_main(),
            Err(err) => {
                lock(&registry.blocking.state).live -= 1;
                registry.break_pool(err.to_string());
            }
        });
        if let Err(err) = spawned {
            let live = {
                let mut state = lock(&self.blocking.state);
                state.live -= 1;
                state.live
            };
            if live == 0 {
                // Nobody is left to run blocking tasks: fail them rather than
                // let their waits hang.
                self.break_pool(format!("no blocking-lane thread could be started: {err}"));
            }
        }
    }

    /// Marks the pool broken and fails every task still queued, so that
    /// every wait returns and every later submission is refused.
    pub(crate) fn break_pool(&self, reason: String) {
        {
            let mut broken = lock(&self.broken);
            if broken.is_none() {
                *broken = Some(reason.clone());
            }
        }
        self.is_broken.store(true, Ordering::Release);
        for lane in [&self.cpu, &self.blocking] {
            let mut jobs: Vec<JobRef> = {
                let mut state = lock(&lane.state);
                lane.queued.store(0, Ordering::Relaxed);
                state.jobs.drain(..).collect()
            };
            while let Some(job) = lane.singles.pop() {
                jobs.push(job);
            }
            for job in jobs {
                job.fail_unclaimed(TaskErrorKind::PoolBroken {
                    reason: reason.clone(),
                });
            }
        }
    }

    fn cpu_main(&self) {
        let me = Arc::new(Sleeper {
            thread: thread::current(),
            woken: AtomicBool::new(false),
        });
        let lane = &self.cpu;
        loop {
            // Singles first: they were all submitted before whatever waits
            // on the locked queue (see `push`).
            if let Some(job) = self.take_single() {
                job.run();
                continue;
            }
            let (job, wake) = {
                let mut state = lock(&lane.state);
                let job = state.front_with_work(&lane.queued);
                // A push leaves as many tasks to spinning workers as there
                // are spinners, but two pushes can count the same spinner,
                // and a spinner takes only the front job: whatever waits
                // behind it goes to a sleeper now, not when this job is done
                // (which may be never, if this job waits for that one).
                let more = job.is_some() && state.jobs.iter().skip(1).any(|j| j.has_unclaimed());
                let wake = if more {
                    state.take_sleepers(1, &lane.sleeping)
                } else {
                    Vec::new()
                };
                (job, wake)
            };
            for sleeper in wake {
                sleeper.thread.unpark();
            }
            if let Some(job) = job {
                job.run();
                continue;
            }
            // A single pushed since the look above is found by the spin,
            // or by the sleeper's last look.
            if self.spin_for_work(lane) {
                continue;
            }
            if !self.sleep(lane, &me, None) {
                return;
            }
        }
    }

    /// Takes a single-task job; if more wait behind it and no thread spins,
    /// wakes a sleeper for them (a push counts spinners, and two pushes can
    /// count the same one).
    fn take_single(&self) -> Option<JobRef> {
        let lane = &self.cpu;
        let job = lane.singles.pop()?;
        if !lane.singles.is_empty() {
            lane.wake_one_unless_spinning();
        }
        Some(job)
    }

    fn blocking_main(&self) {
        let me = Arc::new(Sleeper {
            thread: thread::current(),
            woken: AtomicBool::new(false),
        });
        loop {
            let job = lock(&self.blocking.state).front_with_work(&self.blocking.queued);
            if let Some(job) = job {
                job.run();
                continue;
            }
            if !self.sleep(&self.blocking, &me, Some(self.config.blocking_idle_timeout)) {
                return;
            }
        }
    }

    /// Spins briefly; returns true as soon as the lane may have work.
    fn spin_for_work(&self, lane: &Lane) -> bool {
        lane.spinning.fetch_add(1, Ordering::SeqCst);
        let backoff = Backoff::new();
        let mut found = false;
        while !backoff.is_completed() {
            if lane.may_have_work() {
                found = true;
                break;
            }
            backoff.snooze();
        }
        lane.spinning.fetch_sub(1, Ordering::SeqCst);
        found
    }

    /// Parks until woken for work. Returns false when the thread should exit
    /// (the pool is shutting down, or a blocking thread idled out).
    fn sleep(&self, lane: &Lane, me: &Arc<Sleeper>, idle_timeout: Option<Duration>) -> bool {
        {
            let mut state = lock(&lane.state);
            if state.front_with_work(&lane.queued).is_some() {
                return true;
            }
            // Counted before the last look at `singles`: see `push_single`.
            // Also before exiting, a worker empties `singles`, even of jobs
            // already run by a waiter that helped: a queued job holds its
            // scope, which holds this registry.
            lane.sleeping.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if !lane.singles.is_empty() {
                lane.sleeping.fetch_sub(1, Ordering::SeqCst);
                return true;
            }
            if self.terminating.load(Ordering::SeqCst) {
                lane.sleeping.fetch_sub(1, Ordering::SeqCst);
                if idle_timeout.is_some() {
                    state.live -= 1;
                }
                return false;
            }
            // Not in the list (whoever woke it last removed it), so nobody
            // else writes `woken` until it is pushed below.
            me.woken.store(false, Ordering::Relaxed);
            state.sleepers.push(me.clone());
        }
        let deadline = idle_timeout.map(|timeout| Instant::now() + timeout);
        loop {
            if me.woken.load(Ordering::Acquire) {
                return true;
            }
            match deadline {
                None => thread::park(),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        let mut state = lock(&lane.state);
                        if me.woken.load(Ordering::Acquire) {
                            return true;
                        }
                        state.sleepers.retain(|s| !Arc::ptr_eq(s, me));
                        lane.sleeping.fetch_sub(1, Ordering::SeqCst);
                        state.live -= 1;
                        return false;
                    }
                    thread::park_timeout(deadline - now);
                }
            }
        }
    }

    /// A new user (a `Pool` handle or an open scope).
    pub(crate) fn add_user(&self) {
        self.users.fetch_add(1, Ordering::SeqCst);
    }

    /// A user went away; the last one shuts the threads down. Returns whether
    /// this call was the last.
    pub(crate) fn remove_user(&self) -> bool {
        if self.users.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.terminate_threads();
            true
        } else {
            false
        }
    }

    fn terminate_threads(&self) {
        self.terminating.store(true, Ordering::SeqCst);
        for lane in [&self.cpu, &self.blocking] {
            let sleepers = {
                let mut state = lock(&lane.state);
                let n = state.sleepers.len();
                state.take_sleepers(n, &lane.sleeping)
            };
            for sleeper in sleepers {
                sleeper.thread.unpark();
            }
        }
    }

    /// Waits for every thread of the pool to exit, unless called from one of
    /// them (which could never see itself exit).
    pub(crate) fn join_threads(&self) {
        if self.is_current_worker() {
            return;
        }
        loop {
            let handles: Vec<JoinHandle<()>> = lock(&self.join_handles).drain(..).collect();
            if handles.is_empty() {
                return;
            }
            for handle in handles {
                let _ = handle.join();
            }
        }
    }
}
