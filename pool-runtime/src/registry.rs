//! A pool's shared state: its threads, its queues, and who is asleep.
//!
//! A pool has two lanes. The **CPU lane** is a fixed set of `threads`
//! workers started with the pool. Each has its own deque
//! ([`crate::deque`]): work submitted on a worker (a `fork_join` half, a
//! batch, a single task) goes there, newest first for the worker itself and
//! oldest first for thieves. Work submitted from any other thread goes to
//! the pool's **injector**, a lock-free FIFO, so that one worker starts
//! outside work in the order it was submitted. A waiting worker that has to
//! look through the injector for work it may run (see [`crate::worker`])
//! moves what it may not run to the **deferred** queue, which every worker
//! empties before the injector, so that the order of outside work is kept.
//!
//! The **blocking lane** starts with no thread and grows on demand, up to a
//! cap, for batches marked `blocking`; its threads retire after an idle
//! timeout. Its queue and its sleepers sit behind one mutex, so a
//! submitter and a thread going to sleep cannot miss each other.
//!
//! This module holds the state and the thread management; the CPU
//! workers' loop, stealing and waiting live in [`crate::worker`], and how
//! workers sleep in [`crate::sleep`].
//!
//! ## Memory ordering
//!
//! Queuing CPU work publishes it (a deque push, an injector push), fences
//! (`SeqCst`), then reads the sleepers (see [`crate::sleep`]). The blocking
//! lane's queue and sleepers are only touched under its mutex. A blocking
//! sleeper's `woken` flag is set with `Release` by the thread that took it
//! off the sleeper list (under the lock) and read with `Acquire` after
//! `park` returns.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use crate::deque::Deque;
use crate::error::{BuildError, TaskErrorKind};
use crate::job::{JobRef, UnitRef};
use crate::lineage;
use crate::primitive::thread::{self, JoinHandle, Thread};
use crate::primitive::{
    fence, lock, mpsc, thread_local, Arc, AtomicBool, AtomicPtr, AtomicUsize, IdCounter, Injector,
    Instant, Mutex, Ordering,
};
use crate::sleep::{Parker, Sleep};
use crate::unwind;

/// A hook run on each worker thread, given the thread's index.
pub(crate) type ThreadHook = Arc<dyn Fn(usize) + Send + Sync>;

/// Settings fixed when a pool is built.
pub(crate) struct Config {
    /// CPU worker threads started.
    pub(crate) threads: usize,
    /// Tasks that may run at once: `threads`, plus a waiting caller when
    /// `caller_helps`.
    pub(crate) parallelism: usize,
    /// Whether a thread outside the pool runs the unclaimed tasks of the
    /// batch it waits for.
    pub(crate) caller_helps: bool,
    pub(crate) thread_name: Option<String>,
    pub(crate) stack_size: Option<usize>,
    pub(crate) on_start: Option<ThreadHook>,
    pub(crate) on_exit: Option<ThreadHook>,
    pub(crate) max_blocking_threads: usize,
    pub(crate) blocking_idle_timeout: Duration,
}

static NEXT_REGISTRY_ID: IdCounter = IdCounter::new(1);

thread_local! {
    /// The registry whose thread this is, on either lane (null: none). Set
    /// by the thread's main, which holds the registry, until it returns.
    static CURRENT_REGISTRY: Cell<*const Registry> = const { Cell::new(std::ptr::null()) };
}

/// Which lane a unit is queued on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LaneKind {
    Cpu,
    Blocking,
}

/// What other threads see of one CPU worker.
pub(crate) struct WorkerShared {
    pub(crate) deque: Deque,
    pub(crate) parker: Parker,
}

/// The CPU workers' slots: the first `threads` for the pool's own workers,
/// the rest for spare workers, made when a worker enters `blocking` (see
/// [`crate::blocking`]). A slot, once made, lives as long as the pool.
pub(crate) struct Workers {
    slots: Box<[AtomicPtr<WorkerShared>]>,
    /// Slots made so far (they are made in order).
    made: AtomicUsize,
}

impl Workers {
    fn new(capacity: usize) -> Workers {
        Workers {
            slots: (0..capacity)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            made: AtomicUsize::new(0),
        }
    }

    /// Makes the next slot; returns its index, or `None` at capacity.
    fn make(&self) -> Option<usize> {
        let index = self.made.load(Ordering::Acquire);
        if index >= self.slots.len() {
            return None;
        }
        let shared = Box::into_raw(Box::new(WorkerShared {
            deque: Deque::new(),
            parker: Parker::new(),
        }));
        self.slots[index].store(shared, Ordering::Release);
        self.made.store(index + 1, Ordering::Release);
        Some(index)
    }

    /// Slot `index`, if it was made.
    pub(crate) fn get(&self, index: usize) -> Option<&WorkerShared> {
        let shared = self.slots.get(index)?.load(Ordering::Acquire);
        // SAFETY: a made slot is a leaked box freed only when the registry
        // (which `self` is part of) is dropped.
        unsafe { shared.as_ref() }
    }

    /// Slot `index`, which the caller knows was made.
    pub(crate) fn at(&self, index: usize) -> &WorkerShared {
        self.get(index).expect("a worker's own slot was made")
    }

    /// How many slots were made.
    pub(crate) fn len(&self) -> usize {
        self.made.load(Ordering::Acquire)
    }

    /// Every slot made so far, with its index.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &WorkerShared)> {
        (0..self.len()).filter_map(|index| self.get(index).map(|shared| (index, shared)))
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // Slots are made in order: only the first `made` can be set.
        let made = self.made.load(Ordering::Acquire);
        for slot in &self.slots[..made] {
            let shared = slot.load(Ordering::Acquire);
            if !shared.is_null() {
                // SAFETY: made by `make` with `Box::into_raw`, freed once,
                // here, when no thread can reach the registry any more.
                drop(unsafe { Box::from_raw(shared) });
            }
        }
    }
}

/// Spare workers parked for lack of a blocked worker to stand in for, and
/// slots whose spare thread exited.
#[derive(Default)]
struct Spares {
    parked: Vec<usize>,
    free: Vec<usize>,
}

/// The main function of a CPU worker, given its registry and index
/// ([`crate::worker::main_loop`]; a pointer, so that this module does not
/// depend on the one above it).
pub(crate) type CpuMain = fn(Arc<Registry>, usize);

/// The shared state of one pool.
pub(crate) struct Registry {
    id: usize,
    config: Config,
    pub(crate) workers: Workers,
    pub(crate) injector: Injector<JobRef>,
    cpu_main: CpuMain,
    /// CPU-lane threads (workers and active spares) not inside `blocking`:
    /// kept at `threads` while spares last.
    cpu_running: AtomicUsize,
    spares: Mutex<Spares>,
    deferred: Mutex<VecDeque<JobRef>>,
    deferred_len: AtomicUsize,
    pub(crate) sleep: Sleep,
    blocking: BlockingLane,
    /// `Pool` handles plus scopes currently open; at zero the threads exit.
    users: AtomicUsize,
    pub(crate) terminating: AtomicBool,
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
    pub(crate) fn start(config: Config, cpu_main: CpuMain) -> Result<Arc<Registry>, BuildError> {
        if config.threads == 0 {
            return Err(BuildError::ZeroThreads);
        }
        unwind::install_location_hook();
        let threads = config.threads;
        let workers = Workers::new(threads + config.max_blocking_threads);
        for _ in 0..threads {
            workers.make();
        }
        let registry = Arc::new(Registry {
            id: NEXT_REGISTRY_ID.fetch_add(1, Ordering::Relaxed),
            config,
            workers,
            injector: Injector::new(),
            cpu_main,
            cpu_running: AtomicUsize::new(threads),
            spares: Mutex::new(Spares::default()),
            deferred: Mutex::new(VecDeque::new()),
            deferred_len: AtomicUsize::new(0),
            sleep: Sleep::new(),
            blocking: BlockingLane::new(),
            users: AtomicUsize::new(1),
            terminating: AtomicBool::new(false),
            broken: Mutex::new(None),
            is_broken: AtomicBool::new(false),
            join_handles: Mutex::new(Vec::new()),
            next_thread_index: AtomicUsize::new(threads),
        });
        let (started_tx, started) = mpsc::channel::<Result<(), BuildError>>();
        for index in 0..threads {
            let started_tx = started_tx.clone();
            let worker_registry = registry.clone();
            let spawned = spawn_thread(&registry.config, index, move || {
                let _marked = worker_registry.mark_current_thread();
                let hook = worker_registry.run_start_hook(index);
                let ok = hook.is_ok();
                let _ = started_tx.send(hook);
                if ok {
                    cpu_main(worker_registry, index);
                }
            });
            match spawned {
                Ok(handle) => lock(&registry.join_handles).push(handle),
                Err(error) => {
                    registry.shut_down_after_failed_start();
                    return Err(error);
                }
            }
        }
        drop(started_tx);
        let mut failure = None;
        for _ in 0..threads {
            match started.recv() {
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

    pub(crate) fn id(&self) -> usize {
        self.id
    }

    pub(crate) fn threads(&self) -> usize {
        self.config.threads
    }

    /// How many tasks may run at once (what batches size their chunks for).
    pub(crate) fn parallelism(&self) -> usize {
        self.config.parallelism
    }

    pub(crate) fn caller_helps(&self) -> bool {
        self.config.caller_helps
    }

    /// Whether the calling thread is one of this pool's threads (either lane).
    pub(crate) fn is_current_thread(&self) -> bool {
        CURRENT_REGISTRY.with(|current| std::ptr::eq(current.get(), self))
    }

    /// The pool whose thread (on either lane) the calling thread is.
    pub(crate) fn of_current_thread() -> Option<Arc<Registry>> {
        let registry = CURRENT_REGISTRY.with(Cell::get);
        if registry.is_null() {
            return None;
        }
        // SAFETY: set by the thread's main from the `Arc` it holds until it
        // returns (see `mark_current_thread`), so the registry is alive and
        // the pointer came from `Arc::as_ptr` of that `Arc`.
        Some(unsafe {
            Arc::increment_strong_count(registry);
            Arc::from_raw(registry)
        })
    }

    pub(crate) fn broken_reason(&self) -> Option<String> {
        if !self.is_broken.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.broken).clone()
    }

    #[inline]
    pub(crate) fn is_broken(&self) -> bool {
        self.is_broken.load(Ordering::Acquire)
    }

    /// Queues a unit of `tasks` tasks: CPU units `min(tasks, threads)`
    /// times, so that as many workers can take a share at once, on the
    /// calling worker's deque (`own`) or else in the injector.
    pub(crate) fn push_unit(
        self: &Arc<Self>,
        unit: &UnitRef,
        tasks: usize,
        lane: LaneKind,
        own: Option<usize>,
    ) {
        if lane == LaneKind::Blocking {
            self.push_blocking(unit.clone(), tasks);
            return;
        }
        // From a worker, one reference fewer: the submitter claims tasks
        // directly whenever it waits for the unit.
        let copies = match own {
            Some(_) => tasks.min(self.threads()).saturating_sub(1).max(1),
            None => tasks.min(self.threads()).max(1),
        };
        let bloom = unit.node().bloom;
        for _ in 0..copies {
            // SAFETY: the clone is an owned reference, given to the queue.
            let job = unsafe { JobRef::from_raw(unit.clone().into_raw()) };
            match own {
                Some(index) => {
                    if let Err(job) = self.workers.at(index).deque.push(job, bloom) {
                        self.injector.push(job);
                    }
                }
                None => self.injector.push(job),
            }
        }
        fence(Ordering::SeqCst);
        self.wake_idle(copies);
        self.wake_waiters_above_current();
    }

    /// Puts a job in the injector (a `fork_join` run for a thread outside
    /// the pool) and wakes a worker for it.
    pub(crate) fn inject(&self, job: JobRef) {
        self.injector.push(job);
        fence(Ordering::SeqCst);
        self.wake_idle(1);
        self.wake_waiters_above_current();
    }

    /// After a `fork_join` half was pushed: wakes an idle worker to steal it,
    /// and waiting workers that may run it. Reads the sleepers without a
    /// fence (see [`crate::sleep`]): a missed wake costs parallelism only,
    /// since the half's caller runs it if nobody takes it.
    pub(crate) fn notify_new_fork(&self) {
        let sleep = &self.sleep;
        if sleep.idle.load(Ordering::Relaxed) > 0 && sleep.spinning.load(Ordering::Relaxed) == 0 {
            self.wake_idle(1);
        }
        if sleep.waiting.load(Ordering::Relaxed) > 0 {
            self.wake_waiters_above_current();
        }
    }

    /// Wakes up to `n` idle sleepers, less the workers spinning for work.
    /// The caller has fenced after publishing the work.
    pub(crate) fn wake_idle(&self, n: usize) {
        if self.sleep.idle.load(Ordering::SeqCst) == 0 {
            return;
        }
        let n = n.saturating_sub(self.sleep.spinning.load(Ordering::SeqCst));
        self.sleep
            .wake_idle(n, |index| self.workers.at(index).parker.wake());
    }

    /// Wakes the workers asleep inside a wait for work that the calling
    /// thread's current work descends from: they may run what it just
    /// queued. The caller has published the work (and fenced, for units).
    pub(crate) fn wake_waiters_above_current(&self) {
        if self.sleep.waiting.load(Ordering::SeqCst) == 0
            || lineage::current_bloom() & self.sleep.waited_mask.load(Ordering::SeqCst) == 0
        {
            return;
        }
        let Some(mut header) = lineage::current() else {
            return;
        };
        loop {
            // SAFETY: the current context is alive while current, and a live
            // node's chain is alive (see `crate::lineage`).
            let node = unsafe { lineage::node_of(header).as_ref() };
            node.wake_sleepers(&|bit| self.wake_worker_bit(bit));
            match &node.parent {
                Some(parent) => header = parent.header(),
                None => return,
            }
        }
    }

    /// Wakes the worker(s) of bit `bit` of a node's `sleeping` mask.
    pub(crate) fn wake_worker_bit(&self, bit: u32) {
        let bit = bit as usize;
        if bit < 63 {
            if let Some(worker) = self.workers.get(bit) {
                worker.parker.wake();
            }
        } else {
            for (_, worker) in self.workers.iter().skip(63) {
                worker.parker.wake();
            }
        }
    }

    /// Whether any queue may hold CPU work (a hint: a stale answer costs a
    /// look or a nap, never a lost job, see [`crate::sleep`]).
    pub(crate) fn may_have_work(&self) -> bool {
        !self.injector.is_empty()
            || self.deferred_len.load(Ordering::Relaxed) > 0
            || self
                .workers
                .iter()
                .any(|(_, worker)| !worker.deque.is_empty())
    }

    /// Takes the oldest deferred job, if any.
    pub(crate) fn pop_deferred(&self) -> Option<JobRef> {
        if self.deferred_len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut deferred = lock(&self.deferred);
        let job = deferred.pop_front();
        self.deferred_len.store(deferred.len(), Ordering::Release);
        job
    }

    /// Takes the oldest deferred job for which `accept` holds.
    pub(crate) fn take_deferred(&self, accept: &dyn Fn(&JobRef) -> bool) -> Option<JobRef> {
        if self.deferred_len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut deferred = lock(&self.deferred);
        let position = deferred.iter().position(accept)?;
        let job = deferred.remove(position);
        self.deferred_len.store(deferred.len(), Ordering::Release);
        job
    }

    /// Keeps an injector job that a waiting worker may not run for the
    /// workers that may, ahead of the rest of the injector.
    pub(crate) fn defer(&self, job: JobRef) {
        let mut deferred = lock(&self.deferred);
        deferred.push_back(job);
        self.deferred_len.store(deferred.len(), Ordering::Release);
    }

    /// Marks the pool broken and fails every unit still queued outside a
    /// worker, so that every wait returns and every later submission is
    /// refused (units in workers' deques fail when a worker takes them).
    pub(crate) fn break_pool(&self, reason: String) {
        {
            let mut broken = lock(&self.broken);
            if broken.is_none() {
                *broken = Some(reason.clone());
            }
        }
        self.is_broken.store(true, Ordering::Release);
        let kind = TaskErrorKind::PoolBroken { reason };
        for unit in self.blocking.drain() {
            unit.fail_unclaimed(kind.clone());
        }
        // CPU work in the shared queues: units fail; a `fork_join` run for an
        // outside thread goes back to the workers, which still run.
        let mut keep = Vec::new();
        let mut jobs: Vec<JobRef> = lock(&self.deferred).drain(..).collect();
        self.deferred_len.store(0, Ordering::Release);
        while let Some(job) = self.injector.pop() {
            jobs.push(job);
        }
        for job in jobs {
            if is_unit(&job) {
                // SAFETY: a queued unit reference owns one count.
                let unit = unsafe { UnitRef::from_owned(job.into_raw()) };
                unit.fail_unclaimed(kind.clone());
            } else {
                keep.push(job);
            }
        }
        for job in keep {
            self.injector.push(job);
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
        for index in self.sleep.take_all_idle() {
            self.workers.at(index).parker.wake();
        }
        for (_, worker) in self.workers.iter() {
            // A worker between looking for work and sleeping: the token makes
            // its park return (parked spares too).
            worker.parker.wake();
        }
        self.blocking.wake_all();
    }

    /// Waits for every thread of the pool to exit, unless called from one of
    /// them (which could never see itself exit).
    pub(crate) fn join_threads(&self) {
        if self.is_current_thread() {
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

    // ----- spare workers, for `blocking` -----

    /// A CPU-lane thread enters `blocking`: if that leaves fewer than
    /// `threads` running, a spare takes its slot (a parked one, or a new
    /// one while the cap allows).
    pub(crate) fn begin_blocking(self: &Arc<Self>) {
        let running = self.cpu_running.fetch_sub(1, Ordering::SeqCst) - 1;
        if running < self.threads() {
            self.activate_spare();
        }
    }

    /// The thread is back from `blocking`. A spare it made surplus retires
    /// at its next job boundary (see `retire_if_surplus`).
    pub(crate) fn end_blocking(&self) {
        self.cpu_running.fetch_add(1, Ordering::SeqCst);
    }

    fn activate_spare(self: &Arc<Self>) {
        self.cpu_running.fetch_add(1, Ordering::SeqCst);
        let slot = {
            let mut spares = lock(&self.spares);
            if let Some(index) = spares.parked.pop() {
                // Woken under the lock: it looks for itself in `parked`.
                self.workers.at(index).parker.wake();
                return;
            }
            spares.free.pop().or_else(|| self.workers.make())
        };
        let Some(index) = slot else {
            // At the cap: the pool runs with one CPU thread fewer meanwhile.
            self.cpu_running.fetch_sub(1, Ordering::SeqCst);
            return;
        };
        let thread_index = self.next_thread_index.fetch_add(1, Ordering::Relaxed);
        let registry = self.clone();
        let cpu_main = self.cpu_main;
        let spawned = spawn_thread(&self.config, thread_index, move || {
            let _marked = registry.mark_current_thread();
            match registry.run_start_hook(thread_index) {
                Ok(()) => cpu_main(registry, index),
                Err(err) => {
                    registry.cpu_running.fetch_sub(1, Ordering::SeqCst);
                    lock(&registry.spares).free.push(index);
                    registry.break_pool(err.to_string());
                }
            }
        });
        match spawned {
            Ok(handle) => lock(&self.join_handles).push(handle),
            Err(_) => {
                self.cpu_running.fetch_sub(1, Ordering::SeqCst);
                lock(&self.spares).free.push(index);
            }
        }
    }

    pub(crate) fn blocking_idle_timeout(&self) -> Duration {
        self.config.blocking_idle_timeout
    }

    /// Whether `index` is a spare's slot.
    pub(crate) fn is_spare(&self, index: usize) -> bool {
        index >= self.threads()
    }

    /// Called by a spare between jobs, with its deque empty: if more CPU
    /// threads run than `threads` (the worker it stood in for is back), it
    /// parks until another worker blocks. Returns false when the spare
    /// should exit (it stayed parked for the blocking idle timeout, or the
    /// pool shuts down).
    pub(crate) fn retire_if_surplus(&self, index: usize) -> bool {
        loop {
            let running = self.cpu_running.load(Ordering::SeqCst);
            if running <= self.threads() {
                return true;
            }
            if self
                .cpu_running
                .compare_exchange(running, running - 1, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                break;
            }
        }
        let parker = &self.workers.at(index).parker;
        let deadline = Instant::now() + self.config.blocking_idle_timeout;
        loop {
            {
                let mut spares = lock(&self.spares);
                parker.reset();
                if !spares.parked.contains(&index) {
                    if self.terminating.load(Ordering::SeqCst) {
                        return false;
                    }
                    spares.parked.push(index);
                }
            }
            parker.park_until(deadline);
            let mut spares = lock(&self.spares);
            let Some(position) = spares.parked.iter().position(|&i| i == index) else {
                // Activated (taken off the list, counted in again).
                return true;
            };
            if self.terminating.load(Ordering::SeqCst) || Instant::now() >= deadline {
                spares.parked.swap_remove(position);
                spares.free.push(index);
                return false;
            }
        }
    }

    // ----- the blocking lane -----

    fn push_blocking(self: &Arc<Self>, unit: UnitRef, tasks: usize) {
        let spawn = self
            .blocking
            .push(unit, tasks, self.config.max_blocking_threads);
        for _ in 0..spawn {
            self.spawn_blocking_thread();
        }
    }

    fn spawn_blocking_thread(self: &Arc<Self>) {
        let index = self.next_thread_index.fetch_add(1, Ordering::Relaxed);
        let registry = self.clone();
        let spawned = spawn_thread(&self.config, index, move || {
            let _marked = registry.mark_current_thread();
            match registry.run_start_hook(index) {
                Ok(()) => registry.blocking_main(),
                Err(err) => {
                    registry.blocking.thread_gone();
                    registry.break_pool(err.to_string());
                }
            }
        });
        match spawned {
            Ok(handle) => lock(&self.join_handles).push(handle),
            Err(err) => {
                if self.blocking.thread_gone() == 0 {
                    // Nobody is left to run blocking tasks: fail them rather
                    // than let their waits hang.
                    self.break_pool(format!("no blocking-lane thread could be started: {err}"));
                }
            }
        }
    }

    fn blocking_main(&self) {
        let me = Arc::new(BlockingSleeper {
            thread: thread::current(),
            woken: AtomicBool::new(false),
        });
        loop {
            if let Some(unit) = self.blocking.front_with_work() {
                unit.run_here();
                continue;
            }
            if !self
                .blocking
                .sleep(&me, &self.terminating, self.config.blocking_idle_timeout)
            {
                return;
            }
        }
    }

    /// Marks the calling thread as one of this pool's until the guard drops
    /// (called first thing by each pool thread).
    fn mark_current_thread(self: &Arc<Self>) -> Marked {
        CURRENT_REGISTRY.with(|current| current.set(Arc::as_ptr(self)));
        Marked
    }
}

/// Unmarks a pool thread when its main returns.
struct Marked;

impl Drop for Marked {
    fn drop(&mut self) {
        CURRENT_REGISTRY.with(|current| current.set(std::ptr::null()));
    }
}

/// Whether a queued job is a unit (a batch or a single task) rather than a
/// `fork_join` half.
fn is_unit(job: &JobRef) -> bool {
    // SAFETY: a queued job is alive.
    unsafe { (*job.header().as_ptr()).vtable.unit.is_some() }
}

/// Spawns a pool thread that runs `main`, then the exit hook.
fn spawn_thread(
    config: &Config,
    index: usize,
    main: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, BuildError> {
    let mut builder = thread::Builder::new();
    if let Some(prefix) = &config.thread_name {
        builder = builder.name(format!("{prefix}-{index}"));
    } else {
        builder = builder.name(format!("poolscope-{index}"));
    }
    if let Some(size) = config.stack_size {
        builder = builder.stack_size(size);
    }
    let exit_hook = config.on_exit.clone();
    builder
        .spawn(move || {
            main();
            if let Some(hook) = exit_hook {
                // An exit hook that panics must not take the pool down with
                // it; the thread is leaving anyway.
                if let Err(payload) =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(index)))
                {
                    eprintln!(
                        "poolscope: the thread exit hook panicked on worker {index}: {}",
                        unwind::message(&*payload)
                    );
                }
            }
        })
        .map_err(|source| BuildError::Spawn {
            thread: index,
            source,
        })
}

// ----- the blocking lane's queue and sleepers -----

struct BlockingSleeper {
    thread: Thread,
    woken: AtomicBool,
}

#[derive(Default)]
struct BlockingState {
    units: VecDeque<UnitRef>,
    sleepers: Vec<Arc<BlockingSleeper>>,
    /// Threads alive (running or sleeping).
    live: usize,
}

struct BlockingLane {
    state: Mutex<BlockingState>,
}

impl BlockingLane {
    fn new() -> BlockingLane {
        BlockingLane {
            state: Mutex::new(BlockingState::default()),
        }
    }

    /// Queues a unit; wakes sleepers for its tasks and returns how many
    /// threads to start (counted as live already).
    fn push(&self, unit: UnitRef, tasks: usize, max_threads: usize) -> usize {
        let (woken, spawn) = {
            let mut state = lock(&self.state);
            state.units.push_back(unit);
            let keep = state.sleepers.len().saturating_sub(tasks);
            let woken = state.sleepers.split_off(keep);
            for sleeper in &woken {
                sleeper.woken.store(true, Ordering::Release);
            }
            let missing = tasks.saturating_sub(woken.len());
            let room = max_threads.saturating_sub(state.live);
            let spawn = missing.min(room);
            state.live += spawn;
            (woken, spawn)
        };
        for sleeper in woken {
            sleeper.thread.unpark();
        }
        spawn
    }

    /// Drops exhausted units from the front; returns the first with work.
    fn front_with_work(&self) -> Option<UnitRef> {
        let mut state = lock(&self.state);
        while let Some(unit) = state.units.front() {
            if unit.has_unclaimed() {
                return Some(unit.clone());
            }
            state.units.pop_front();
        }
        None
    }

    fn drain(&self) -> Vec<UnitRef> {
        lock(&self.state).units.drain(..).collect()
    }

    /// A thread is gone (it failed to start); returns how many are left.
    fn thread_gone(&self) -> usize {
        let mut state = lock(&self.state);
        state.live -= 1;
        state.live
    }

    fn wake_all(&self) {
        let sleepers: Vec<Arc<BlockingSleeper>> = {
            let mut state = lock(&self.state);
            let sleepers: Vec<_> = state.sleepers.drain(..).collect();
            for sleeper in &sleepers {
                sleeper.woken.store(true, Ordering::Release);
            }
            sleepers
        };
        for sleeper in sleepers {
            sleeper.thread.unpark();
        }
    }

    /// Parks until woken for work. Returns false when the thread should exit
    /// (the pool is shutting down, or the thread idled out).
    fn sleep(
        &self,
        me: &Arc<BlockingSleeper>,
        terminating: &AtomicBool,
        idle_timeout: Duration,
    ) -> bool {
        {
            let mut state = lock(&self.state);
            if state.units.iter().any(|unit| unit.has_unclaimed()) {
                return true;
            }
            // Read under the lock: `terminate_threads` sets it before it
            // takes the lock to wake every sleeper.
            if terminating.load(Ordering::SeqCst) {
                state.live -= 1;
                return false;
            }
            // Not in the list (whoever woke it last removed it), so nobody
            // else writes `woken` until it is pushed below.
            me.woken.store(false, Ordering::Relaxed);
            state.sleepers.push(me.clone());
        }
        let deadline = Instant::now() + idle_timeout;
        loop {
            if me.woken.load(Ordering::Acquire) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                let mut state = lock(&self.state);
                if me.woken.load(Ordering::Acquire) {
                    return true;
                }
                state.sleepers.retain(|s| !Arc::ptr_eq(s, me));
                state.live -= 1;
                return false;
            }
            thread::park_timeout(deadline - now);
        }
    }
}
