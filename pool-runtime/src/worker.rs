//! A CPU worker: its loop, how it steals, and how it waits.
//!
//! An idle worker runs anything: its own deque first (newest first), then
//! the oldest job of another worker's deque, then the deferred queue and
//! the injector (see [`crate::registry`]).
//!
//! A worker that waits (for a batch, a single task, a scope's end, or the
//! stolen half of a `fork_join`) runs only the awaited work and what
//! descends from it, found through [`crate::lineage`]:
//!
//! 1. the awaited work's own unclaimed part (a batch's unclaimed tasks, a
//!    `fork_join` half handed back unstarted);
//! 2. the newest jobs of its own deque pushed since the wait began (helped
//!    work's own submissions), and older ones that descend from the awaited
//!    work;
//! 3. the oldest job of another worker's deque, if its bloom says it may
//!    descend from the awaited work and its chain of parents says it does:
//!    leapfrogging, generalised from "steal back from the thief of my job"
//!    to "steal back from whoever runs any part of the work I wait for";
//! 4. descendants in the shared queues.
//!
//! A job taken in step 3 or 4 that turns out not to descend (the bloom
//! erred) is given back: a `fork_join` half to its caller, who runs it
//! itself, a batch to the deferred queue. It never runs on the waiter,
//! which may hold a lock that unrelated work would take again (a
//! descendant that takes such a lock deadlocks whoever runs it, so helping
//! it adds no risk). When there is nothing to run, the waiter sleeps on the
//! awaited work's node until that work finishes or new work is queued below
//! it, so recursive divide-and-conquer keeps every worker busy.

use std::cell::Cell;
use std::ptr::{self, NonNull};

use crate::deque::{Deque, Steal};
use crate::job::{JobRef, Node, UnitRef};
use crate::lineage;
use crate::primitive::{fence, thread, thread_local, Arc, Backoff, Instant, Ordering};
use crate::registry::{Registry, WorkerShared};

thread_local! {
    /// The CPU worker running on this thread, if any.
    static WORKER: Cell<*const WorkerThread> = const { Cell::new(ptr::null()) };
}

/// The worker running on this thread.
pub(crate) struct WorkerThread {
    pub(crate) registry: Arc<Registry>,
    pub(crate) index: usize,
    rng: Cell<u64>,
}

/// How many fruitless rounds a waiter spins (yielding) before it sleeps.
const WAIT_SPIN_ROUNDS: u32 = 64;

/// How long an idle worker keeps looking for work before it sleeps (see
/// `spin_for_work`). Under loom the clock is frozen, so the linger is none.
#[cfg(not(loom))]
const IDLE_LINGER: std::time::Duration = std::time::Duration::from_micros(200);
#[cfg(loom)]
const IDLE_LINGER: std::time::Duration = std::time::Duration::ZERO;

/// What a waiter waits for.
pub(crate) struct Awaited<'a> {
    /// The awaited work's node, once it has one (a `fork_join` half has one
    /// only once a thief took it).
    pub(crate) node: &'a dyn Fn() -> Option<NonNull<Node>>,
    /// Whether the awaited work is done.
    pub(crate) done: &'a dyn Fn() -> bool,
    /// Runs a piece of the awaited work's own unclaimed part; returns
    /// whether it ran anything.
    pub(crate) help_self: &'a dyn Fn() -> bool,
}

impl WorkerThread {
    /// The worker running on the calling thread, if it is one.
    pub(crate) fn current() -> Option<&'static WorkerThread> {
        let worker = WORKER.with(Cell::get);
        // SAFETY: the pointer is set by `main_loop` to its own local, which
        // lives until `main_loop` clears the pointer again; only code running
        // inside `main_loop` on this thread can read it meanwhile.
        unsafe { worker.as_ref() }
    }

    /// The worker running on the calling thread, if it is one of
    /// `registry`'s.
    pub(crate) fn current_of(registry: &Registry) -> Option<&'static WorkerThread> {
        WorkerThread::current().filter(|worker| worker.registry.id() == registry.id())
    }

    fn shared(&self) -> &WorkerShared {
        self.registry.workers.at(self.index)
    }

    pub(crate) fn deque(&self) -> &Deque {
        &self.shared().deque
    }

    fn next_random(&self) -> usize {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        x as usize
    }

    /// The other workers, from a random one on.
    fn victims(&self) -> impl Iterator<Item = &WorkerShared> + '_ {
        let n = self.registry.workers.len();
        let start = self.next_random() % n;
        (0..n)
            .map(move |offset| (start + offset) % n)
            .filter(move |&victim| victim != self.index)
            .filter_map(move |victim| self.registry.workers.get(victim))
    }

    /// Anything to run: own deque, then steals, then the shared queues.
    fn find_work(&self) -> Option<JobRef> {
        if let Some(job) = self.deque().pop() {
            return Some(job);
        }
        let job = self.take_from_others()?;
        // A queuer leaves its job to a spinning worker instead of waking a
        // sleeper, but two queuers can count on the same spinner, which
        // takes only one job: what is still queued behind this one gets a
        // sleeper now, not when this job is done (which may be never, if
        // this job waits for that one).
        if self.registry.may_have_work() {
            fence(Ordering::SeqCst);
            self.registry.wake_idle(1);
        }
        Some(job)
    }

    fn take_from_others(&self) -> Option<JobRef> {
        for victim in self.victims() {
            let deque = &victim.deque;
            loop {
                match deque.steal(|_| true) {
                    Steal::Taken(job) => return Some(job),
                    Steal::Retry => continue,
                    Steal::Empty | Steal::Skipped => break,
                }
            }
        }
        self.registry
            .pop_deferred()
            .or_else(|| self.registry.injector.pop())
    }

    /// Keeps looking for work for a while before the worker sleeps;
    /// returns true as soon as some queue may have work.
    ///
    /// First a short spin, then, up to [`IDLE_LINGER`] after the last job,
    /// yielding between looks: a program that submits work in bursts (a
    /// frame loop) finds the workers awake, without a system call to wake
    /// them, while a waiting caller still gets the CPU. A pool left idle
    /// for longer sleeps, and then costs nothing.
    fn spin_for_work(&self) -> bool {
        let sleep = &self.registry.sleep;
        sleep.spinning.fetch_add(1, Ordering::SeqCst);
        let found = self.look_for_work_a_while();
        sleep.spinning.fetch_sub(1, Ordering::SeqCst);
        found
    }

    fn look_for_work_a_while(&self) -> bool {
        let backoff = Backoff::new();
        while !backoff.is_completed() {
            if self.registry.may_have_work() {
                return true;
            }
            backoff.snooze();
        }
        let until = Instant::now() + IDLE_LINGER;
        loop {
            if self.registry.may_have_work() {
                return true;
            }
            if self.registry.terminating.load(Ordering::Relaxed) || Instant::now() >= until {
                return false;
            }
            thread::yield_now();
        }
    }

    /// Sleeps until woken for work. Returns false when the worker should
    /// exit (the pool is shutting down and nothing is queued).
    fn sleep_idle(&self) -> bool {
        let registry = &self.registry;
        let parker = &self.shared().parker;
        parker.reset();
        registry.sleep.enter_idle(self.index);
        // Published before the last look (see `crate::sleep`).
        fence(Ordering::SeqCst);
        let terminating = registry.terminating.load(Ordering::SeqCst);
        if registry.may_have_work() || terminating {
            registry.sleep.leave_idle(self.index);
            return !terminating || registry.may_have_work();
        }
        if registry.is_spare(self.index) {
            // A spare does not sleep for ever: it goes back to see whether
            // it is still needed, and retires if not.
            parker.park_until(Instant::now() + registry.blocking_idle_timeout());
        } else {
            parker.park();
        }
        registry.sleep.leave_idle(self.index);
        true
    }

    /// Before this worker blocks (see [`crate::blocking`]): if it runs a task
    /// of a unit that has unclaimed tasks left, puts a reference to the unit
    /// on its deque, so that the spare standing in for it (or any worker)
    /// can take the rest; the blocked worker may hold the unit's only queue
    /// reference.
    pub(crate) fn republish_current_unit(&self) {
        let Some(header) = lineage::current() else {
            return;
        };
        // SAFETY: the current context is alive while current.
        let unit = unsafe { UnitRef::retain(header) };
        if unit.vtable().unit.is_none() || !unit.has_unclaimed() {
            return;
        }
        let bloom = unit.node().bloom;
        // SAFETY: an owned reference, given to the queue.
        let job = unsafe { JobRef::from_raw(unit.into_raw()) };
        if let Err(job) = self.deque().push(job, bloom) {
            self.registry.injector.push(job);
        }
        fence(Ordering::SeqCst);
        self.registry.wake_idle(1);
    }

    /// Waits until `awaited` is done, running only the awaited work and its
    /// descendants meanwhile (see the module docs). With a deadline, gives
    /// up at it (returning false); it may overrun by the job it is running.
    pub(crate) fn wait_until(&self, awaited: &Awaited<'_>, deadline: Option<Instant>) -> bool {
        let wait_start = self.deque().bottom();
        let mut idle_rounds = 0;
        loop {
            if (awaited.done)() {
                return true;
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return false;
            }
            if (awaited.help_self)() {
                idle_rounds = 0;
                continue;
            }
            let node = (awaited.node)();
            if let Some(job) = self.take_descendant(wait_start, node) {
                job.execute();
                idle_rounds = 0;
                continue;
            }
            idle_rounds += 1;
            if idle_rounds < WAIT_SPIN_ROUNDS {
                thread::yield_now();
                continue;
            }
            self.sleep_waiting(awaited, node, deadline, wait_start);
            idle_rounds = 0;
        }
    }

    /// A job that the awaited work (node `node`) may run, from any queue.
    fn take_descendant(&self, wait_start: isize, node: Option<NonNull<Node>>) -> Option<JobRef> {
        if let Some(job) = self.pop_own_descendant(wait_start, node) {
            return Some(job);
        }
        let node = node?;
        // SAFETY: the awaited work's node is alive while it is awaited.
        let filter = unsafe { node.as_ref() };
        for victim in self.victims() {
            let deque = &victim.deque;
            loop {
                match deque.steal(|bloom| filter.may_contain(bloom)) {
                    Steal::Taken(job) => {
                        if descends(&job, node) {
                            return Some(job);
                        }
                        // The bloom erred: not ours. Give it back and look at
                        // the next one.
                        job.reject();
                    }
                    Steal::Retry => {}
                    Steal::Empty | Steal::Skipped => break,
                }
            }
        }
        if let Some(job) = self.registry.take_deferred(&|job| descends(job, node)) {
            return Some(job);
        }
        // Outside work: run what descends, keep the rest in order for the
        // workers that may run it.
        let mut deferred = false;
        let mut found = None;
        while let Some(job) = self.registry.injector.pop() {
            if descends(&job, node) {
                found = Some(job);
                break;
            }
            self.registry.defer(job);
            deferred = true;
        }
        if deferred {
            // The deferred queue is looked at by every worker that looks at
            // the injector, so nothing needs waking that was not woken for
            // the job when it was queued; a nudge covers a worker that had
            // just looked at both.
            fence(Ordering::SeqCst);
            self.registry.wake_idle(1);
        }
        found
    }

    /// The newest job of the own deque, if it was pushed since the wait
    /// began (work helped meanwhile) or descends from the awaited work.
    fn pop_own_descendant(&self, wait_start: isize, node: Option<NonNull<Node>>) -> Option<JobRef> {
        let (index, bloom) = self.deque().peek_bottom()?;
        if index >= wait_start {
            return self.deque().pop();
        }
        let node = node?;
        // SAFETY: the awaited work's node is alive while it is awaited.
        if !unsafe { node.as_ref() }.may_contain(bloom) {
            return None;
        }
        let job = self.deque().pop()?;
        if descends(&job, node) {
            return Some(job);
        }
        // Ours to put back: the deque had room for it a moment ago.
        if let Err(job) = self.deque().push(job, bloom) {
            job.reject();
        }
        None
    }

    /// Whether something the waiter may run is in sight (its last look
    /// before it sleeps).
    fn descendant_in_sight(&self, wait_start: isize, node: NonNull<Node>) -> bool {
        // SAFETY: the awaited work's node is alive while it is awaited.
        let filter = unsafe { node.as_ref() };
        if let Some((index, bloom)) = self.deque().peek_bottom() {
            if index >= wait_start || filter.may_contain(bloom) {
                return true;
            }
        }
        let others = self
            .registry
            .workers
            .iter()
            .filter(|&(index, _)| index != self.index)
            .any(|(_, worker)| {
                worker
                    .deque
                    .peek_top()
                    .is_some_and(|bloom| filter.may_contain(bloom))
            });
        others || !self.registry.injector.is_empty()
    }

    /// Sleeps on the awaited work's node until it finishes, new work is
    /// queued below it, or the deadline.
    fn sleep_waiting(
        &self,
        awaited: &Awaited<'_>,
        node: Option<NonNull<Node>>,
        deadline: Option<Instant>,
        wait_start: isize,
    ) {
        let Some(node) = node else {
            // No node to sleep on yet (a thief is about to make one).
            thread::yield_now();
            return;
        };
        let registry = &self.registry;
        let parker = &self.shared().parker;
        let bit = lineage::worker_bit(self.index);
        // SAFETY: the awaited work's node is alive while it is awaited.
        let node = unsafe { node.as_ref() };
        parker.reset();
        node.sleeping.fetch_or(bit, Ordering::SeqCst);
        registry.sleep.enter_waiting(node.bit);
        // Published before the last look (see `crate::sleep`).
        fence(Ordering::SeqCst);
        let ready = (awaited.done)() || self.descendant_in_sight(wait_start, NonNull::from(node));
        if !ready {
            match deadline {
                None => parker.park(),
                Some(deadline) => parker.park_until(deadline),
            }
        }
        registry.sleep.leave_waiting(node.bit);
        if self.index < 63 {
            // Bit 63 is shared by every worker from 63 on: left set, it only
            // costs them a spurious wake.
            node.sleeping.fetch_and(!bit, Ordering::SeqCst);
        }
    }
}

/// Whether `job` is, or descends from, the work of `node`.
fn descends(job: &JobRef, node: NonNull<Node>) -> bool {
    // SAFETY: a queued or held job is alive and not finished.
    unsafe { lineage::descends(job.lineage(), node) }
}

/// A CPU worker's main: run, steal, spin, sleep, until the pool shuts down.
pub(crate) fn main_loop(registry: Arc<Registry>, index: usize) {
    let worker = WorkerThread {
        registry,
        index,
        rng: Cell::new((index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
    };
    WORKER.with(|current| current.set(&worker));
    let spare = worker.registry.is_spare(index);
    loop {
        if spare && worker.deque().is_empty() && !worker.registry.retire_if_surplus(index) {
            break;
        }
        if let Some(job) = worker.find_work() {
            job.execute();
            continue;
        }
        if worker.spin_for_work() {
            continue;
        }
        if !worker.sleep_idle() {
            break;
        }
    }
    WORKER.with(|current| current.set(ptr::null()));
}
