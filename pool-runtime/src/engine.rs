//! The engine of a batch: claiming its tasks, running them, completing
//! them, and handing their results over.
//!
//! A batch is one allocation of slots (each holding a task's input, then its
//! result) next to the task closure, with an atomic cursor that workers
//! claim task indices from in adaptive chunks. There is no per-task
//! allocation and no per-task queue push: the batch is queued as a whole
//! (as many references as workers can share it, see
//! [`Registry::push_unit`](crate::registry::Registry::push_unit)), and
//! whoever takes a reference claims chunks until none is left.
//!
//! The public handles ([`crate::handle`]) reach a batch through the typed
//! [`BatchCore`] trait; the scheduler reaches it through its job vtable
//! ([`crate::job`]).
//!
//! ## Memory ordering
//!
//! - Inputs are written before the batch is queued (the queue publishes
//!   it), so claimers see them. The cursor is a plain claim counter: a
//!   successful compare-exchange (or the swap of a cancel) hands the thread
//!   exclusive ownership of the slots in its range.
//! - A task's result is written into its slot, then the slot's state is
//!   stored with `Release`; readers load it with `Acquire` before reading the
//!   result (this is what lets results stream out one at a time).
//! - `pending` counts tasks not yet finished. Finishing lowers it with
//!   `SeqCst` read-modify-writes, which form one release sequence, so a
//!   thread that loads zero with `Acquire` sees every slot written. The
//!   thread that brings it to zero notifies the batch's waiters and then
//!   reports to the scope, which is its last touch.
//! - Sleepers (`waiters` for the whole batch, `streamers` for one result,
//!   worker bits in the node's `sleeping` mask) register with `SeqCst` and
//!   then check, while finishers publish and then read the registrations
//!   after a `SeqCst` fence: of a sleeper and a finisher, at least one sees
//!   the other (the store-buffering pattern), and the mutex makes sure a
//!   registered condition-variable sleeper is asleep before it is notified.
//! - `handle_alive` and `pending` are both `SeqCst` where the handle's drop
//!   and the last finisher decide who releases the batch's contents: of the
//!   two, at least one sees the other's write, and `released` makes the
//!   release happen once.
//! - The completion log (for completion-order streaming) follows the same
//!   store-buffering pattern: a finisher stores its slot states, fences, and
//!   logs its indices if logging is on; a reader turns logging on, fences,
//!   and scans the slot states. Every completion is seen by one or both.

use std::borrow::Cow;
use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::Range;
use std::ptr::{self, NonNull};
use std::task::Waker;
use std::time::Duration;

use crate::error::{PanicLocation, TaskError, TaskErrorKind};
use crate::job::{JobHeader, JobRef, JobVTable, Lineage, Node, UnitOps, UnitRef};
use crate::lineage;
use crate::options::{CompletionCallback, Options};
use crate::primitive::{
    fence, lock, seq_cst_hand_shake, thread_local, wait, wait_timeout, Arc, AtomicBool, AtomicU8,
    AtomicUsize, Backoff, Condvar, Instant, Mutex, Ordering,
};
use crate::registry::LaneKind;
use crate::scope_data::{ScopeData, ScopeLink};
use crate::slots::{Inputs, Slots, View, BROKEN, CANCELLED, FAILED, INPUT, OK, PANICKED};
use crate::trace::BatchSpan;
use crate::unwind;
use crate::worker::{Awaited, WorkerThread};

/// How long a claimed chunk should take, at most, before chunks stop growing.
const CHUNK_TARGET: Duration = Duration::from_micros(20);

thread_local! {
    /// The cancel state of the batch whose task this thread is running.
    static CURRENT_CANCEL: Cell<*const CancelState> = const { Cell::new(ptr::null()) };
}

/// What tells a batch's running tasks to stop: a cancel (or terminate, or
/// fail-fast), or its deadline passing.
pub(crate) struct CancelState {
    pub(crate) cancelled: AtomicBool,
    pub(crate) deadline: Option<Instant>,
    /// One of the batch's tasks called `blocking` (or is a
    /// `#[pool_task(blocking)]` function): from now on its tasks are claimed
    /// one at a time, so that no blocking task waits in a chunk behind
    /// another.
    pub(crate) blocks: AtomicBool,
}

impl CancelState {
    #[inline]
    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed) || self.past_deadline()
    }

    #[inline]
    fn past_deadline(&self) -> bool {
        self.deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
    }
}

/// Whether the batch of the task calling this was cancelled (or its scope
/// terminated, or an earlier task failed a fail-fast batch, or the batch's
/// deadline passed): a cooperative check for long tasks, which may then stop
/// early. `false` outside a task.
///
/// ```
/// use std::sync::mpsc;
///
/// let pool = pool_runtime::Pool::new(1).unwrap();
/// let (started_tx, started) = mpsc::channel();
/// pool.scope(|s| {
///     let task = s.apply_async(move || {
///         started_tx.send(()).unwrap();
///         let mut rounds = 0u64;
///         while !pool_runtime::current_task_cancelled() {
///             rounds += 1;
///             std::thread::yield_now();
///         }
///         rounds
///     });
///     started.recv().unwrap();
///     task.cancel();
///     // The task saw the cancel and returned early; it had started, so it
///     // still has a result.
///     assert!(task.get().is_ok());
/// });
/// assert!(!pool_runtime::current_task_cancelled());
/// ```
pub fn current_task_cancelled() -> bool {
    CURRENT_CANCEL.with(|current| {
        let flag = current.get();
        // SAFETY: the pointer is set by `run_until` to the cancel state of
        // the batch it is running, whose header it keeps alive (through
        // `&self`) until it restores the previous pointer.
        !flag.is_null() && unsafe { (*flag).is_cancelled() }
    })
}

/// Marks the batch whose task the calling thread runs as one whose tasks
/// block (see `CancelState::blocks`).
pub(crate) fn mark_running_batch_blocking() {
    CURRENT_CANCEL.with(|current| {
        let flag = current.get();
        // SAFETY: as in `current_task_cancelled`.
        if let Some(state) = unsafe { flag.as_ref() } {
            state.blocks.store(true, Ordering::Relaxed);
        }
    })
}

/// Restores the previous cancel state when dropped.
struct CurrentCancel(*const CancelState);

impl CurrentCancel {
    fn enter(flag: &CancelState) -> CurrentCancel {
        CurrentCancel(CURRENT_CANCEL.with(|current| current.replace(flag)))
    }
}

impl Drop for CurrentCancel {
    fn drop(&mut self) {
        CURRENT_CANCEL.with(|current| current.set(self.0));
    }
}

/// A task's panic (or its callback's, or its failure check's), kept for the
/// handle.
struct Panic {
    index: usize,
    message: String,
    location: Option<PanicLocation>,
    /// The `#[pool_task]` function it came out of, when the batch itself
    /// has no name.
    task: Option<&'static str>,
}

/// The part of a batch that does not depend on its types.
pub(crate) struct BatchHeader {
    len: usize,
    /// Added to slot indices wherever an index reaches the user (errors,
    /// callbacks); see `Options::first_index`.
    pub(crate) first_index: usize,
    /// `cursor` and `pending` share a cache line on purpose: workers touch
    /// them once per chunk, not per task, while a task submitted on its own
    /// pays for every line its batch's allocation spans.
    cursor: AtomicUsize,
    pending: AtomicUsize,
    chunk: Option<usize>,
    /// The chunk size the last timed chunk asked for next (shared by every
    /// claimer, a hint).
    wanted: AtomicUsize,
    threads: usize,
    lane: LaneKind,
    pub(crate) name: Option<Cow<'static, str>>,
    /// The batch's `tracing` span (nothing without the feature).
    trace: BatchSpan,
    fail_fast: bool,
    pub(crate) cancel: CancelState,
    panics: Mutex<Vec<Panic>>,
    /// Set once `panics` is not empty, so that pruning settled batches
    /// need not take the lock.
    panicked: AtomicBool,
    /// Set before any task's slot gets a final state other than `OK`
    /// (panicked, cancelled, failed, broken): while it is clear, `get()`
    /// knows every task succeeded without reading a state per task.
    failed_any: AtomicBool,
    broken_reason: Mutex<Option<String>>,
    pub(crate) failure_observed: AtomicBool,
    pub(crate) handle_alive: AtomicBool,
    released: AtomicBool,
    /// Threads blocked until the whole batch is complete; the last finisher
    /// skips the (system-call) notification when there are none.
    waiters: AtomicUsize,
    /// How many results the handle's stream has handed out (`results`,
    /// `as_completed`); written only by that reader.
    pub(crate) handed_out: AtomicUsize,
    /// Threads blocked until some task completes (streaming readers).
    streamers: AtomicUsize,
    /// Whether finishers log completed indices, for completion-order reads.
    pub(crate) log_on: AtomicBool,
    pub(crate) log: Mutex<Vec<usize>>,
    /// Guards the condition variable's waits, and holds the task awaiting
    /// the batch (an awaited handle or an async stream read), if any.
    done_lock: Mutex<Option<AsyncWaiter>>,
    done: Condvar,
    pub(crate) node: Node,
    /// The batch as a job: the pointer its queue reference carries, made
    /// from the `Arc` in [`queue`], so it may reach the whole allocation
    /// (the `Arc`'s counts included, which `retain` and `drop_ref` touch).
    /// A pointer made from `&self` could reach only the batch's own bytes,
    /// and one from `&self.job` only the job header's (miri's Stacked
    /// Borrows reports either once a context made from it is retained).
    /// Set once, before the batch is shared: `queue` runs before the batch
    /// is pushed or handed out.
    me: std::sync::atomic::AtomicPtr<JobHeader>,
    scope_link: ScopeLink,
    pub(crate) scope: Arc<ScopeData>,
}

/// The task awaiting a batch: an awaited handle (woken when the batch
/// completes) or an async stream read (woken whenever a task completes).
/// A batch has one reader, so one slot is enough.
///
/// The slot is counted in `waiters` or `streamers` while it holds a waker,
/// which is what makes finishers look at it: the poller counts itself and
/// stores its waker under `done_lock`, then re-checks readiness after the
/// store-buffering hand-shake; a finisher lowers `pending`, does its half
/// of the hand-shake, and takes the waker (under the lock) if the count
/// says there is one. Either the poller sees the completion, or the
/// finisher sees the waker.
pub(crate) struct AsyncWaiter {
    waker: Waker,
    every_task: bool,
}

/// What a wait on a batch waits for.
#[derive(Clone, Copy)]
pub(crate) enum Ready {
    /// Every task finished.
    Complete,
    /// Task `index` finished.
    Task(usize),
    /// Some completion was logged (completion-order streaming).
    Logged,
}

impl BatchHeader {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
    }

    /// Whether every task finished, read as the second half of a
    /// store-buffering hand-shake (`SeqCst`): the handle's drop against the
    /// last finisher, over who releases the contents.
    pub(crate) fn is_complete_after_hand_shake(&self) -> bool {
        self.pending.load(Ordering::SeqCst) == 0
    }

    pub(crate) fn reported(&self) -> usize {
        self.len - self.pending.load(Ordering::Acquire)
    }

    /// The deadline, if the batch has one, is not complete, and was not
    /// cancelled yet (which enforcing the deadline does).
    pub(crate) fn pending_deadline(&self) -> Option<Instant> {
        self.cancel
            .deadline
            .filter(|_| !self.is_complete() && !self.cancel.cancelled.load(Ordering::Acquire))
    }

    fn has_unclaimed(&self) -> bool {
        self.cursor.load(Ordering::Relaxed) < self.len
    }

    fn chunk_for(&self, wanted: usize, remaining: usize) -> usize {
        if self.lane == LaneKind::Blocking || self.cancel.blocks.load(Ordering::Relaxed) {
            return 1;
        }
        if let Some(chunk) = self.chunk {
            return chunk.max(1);
        }
        // Leave work for every other thread at the tail of the batch.
        let fair = remaining / (2 * self.threads);
        wanted.min(fair).max(1)
    }

    fn claim(&self, wanted: usize) -> Option<Range<usize>> {
        let mut current = self.cursor.load(Ordering::Relaxed);
        loop {
            if current >= self.len {
                return None;
            }
            let size = self.chunk_for(wanted, self.len - current);
            let end = (current + size).min(self.len);
            match self.cursor.compare_exchange_weak(
                current,
                end,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(current..end),
                Err(actual) => current = actual,
            }
        }
    }

    /// Blocks the calling thread (outside the pool's CPU workers) until every
    /// task finished, or the deadline.
    fn block_until_complete(&self, deadline: Option<Instant>) -> bool {
        let backoff = Backoff::new();
        while !backoff.is_completed() {
            if self.is_complete() {
                return true;
            }
            backoff.snooze();
        }
        let mut guard = lock(&self.done_lock);
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let _registered = DecrementOnDrop(&self.waiters);
        seq_cst_hand_shake();
        loop {
            if self.pending.load(Ordering::SeqCst) == 0 {
                return true;
            }
            match deadline {
                None => guard = wait(&self.done, guard),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    guard = wait_timeout(&self.done, guard, deadline - now);
                }
            }
        }
    }

    fn async_count(&self, every_task: bool) -> &AtomicUsize {
        if every_task {
            &self.streamers
        } else {
            &self.waiters
        }
    }

    /// Stores `waker`, to be woken when the batch completes (or, with
    /// `every_task`, when any task completes). The caller re-checks
    /// readiness after this returns (see [`AsyncWaiter`]).
    pub(crate) fn register_waker(&self, waker: &Waker, every_task: bool) {
        let mut slot = lock(&self.done_lock);
        match slot.as_mut() {
            Some(waiter) if waiter.every_task == every_task => {
                if !waiter.waker.will_wake(waker) {
                    waiter.waker = waker.clone();
                }
            }
            _ => {
                if let Some(old) = slot.take() {
                    self.async_count(old.every_task)
                        .fetch_sub(1, Ordering::SeqCst);
                }
                self.async_count(every_task).fetch_add(1, Ordering::SeqCst);
                *slot = Some(AsyncWaiter {
                    waker: waker.clone(),
                    every_task,
                });
            }
        }
        drop(slot);
        // A real fence, not `seq_cst_hand_shake`: for a stream the re-check
        // that follows reads a task's state with `Acquire`, not `SeqCst`, so
        // the count's increment above and that read need a fence between
        // them for the store-buffering hand-shake with `finish` (state
        // stored, `SeqCst` fence, `streamers` read) to rule out both sides
        // missing each other. Without it miri's weak memory found the lost
        // wake-up (an `next_async` that slept forever).
        fence(Ordering::SeqCst);
    }

    /// Forgets the stored waker, if any (its reader is done or gone).
    #[inline]
    pub(crate) fn clear_waker(&self) {
        if self.waiters.load(Ordering::SeqCst) != 0 || self.streamers.load(Ordering::SeqCst) != 0 {
            self.clear_waker_slow();
        }
    }

    #[cold]
    fn clear_waker_slow(&self) {
        let mut slot = lock(&self.done_lock);
        if let Some(old) = slot.take() {
            self.async_count(old.every_task)
                .fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// For a finisher: the stored waker, if it waits for what just
    /// happened (any completion, or, when `last`, the batch's).
    fn take_waker(&self, last: bool) -> Option<Waker> {
        let mut slot = lock(&self.done_lock);
        if !slot
            .as_ref()
            .is_some_and(|waiter| waiter.every_task || last)
        {
            return None;
        }
        let waiter = slot.take()?;
        self.async_count(waiter.every_task)
            .fetch_sub(1, Ordering::SeqCst);
        Some(waiter.waker)
    }

    /// Blocks until `ready()` holds, or the deadline; finishers notify
    /// streamers on every chunk, and `ready` is checked after registering.
    fn block_until(&self, ready: &dyn Fn() -> bool, deadline: Option<Instant>) -> bool {
        if ready() {
            return true;
        }
        let backoff = Backoff::new();
        while !backoff.is_completed() {
            if ready() {
                return true;
            }
            backoff.snooze();
        }
        let mut guard = lock(&self.done_lock);
        self.streamers.fetch_add(1, Ordering::SeqCst);
        let _registered = DecrementOnDrop(&self.streamers);
        fence(Ordering::SeqCst);
        loop {
            if ready() {
                return true;
            }
            match deadline {
                None => guard = wait(&self.done, guard),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    guard = wait_timeout(&self.done, guard, deadline - now);
                }
            }
        }
    }
}

/// Lowers a waiter count when dropped.
pub(crate) struct DecrementOnDrop<'a>(pub(crate) &'a AtomicUsize);

impl Drop for DecrementOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A batch: its job header, its type-independent state, its task closure,
/// its completion callback, and its slots.
#[repr(C)]
pub(crate) struct BatchInner<I, T, F, C> {
    job: JobHeader,
    header: BatchHeader,
    func: UnsafeCell<ManuallyDrop<F>>,
    callback: UnsafeCell<ManuallyDrop<C>>,
    /// Which results count as failures for fail-fast (tasks returning
    /// `Result`).
    is_failure: Option<fn(&T) -> bool>,
    slots: Slots<I, T>,
    _types: PhantomData<fn(I) -> T>,
}

// SAFETY: the closure and the callback are shared by the workers that run
// tasks (`Sync`) and dropped by whichever thread releases the batch (`Send`).
// Each input and result is owned by one thread at a time, handed over through
// the claim cursor, the slot states and `pending` (see "Memory ordering"
// above), so inputs and results only need `Send`.
unsafe impl<I: Send, T: Send, F: Send + Sync, C: Send + Sync> Sync for BatchInner<I, T, F, C> {}
// SAFETY: as for `Sync`: every part is moved or shared only as allowed above.
unsafe impl<I: Send, T: Send, F: Send + Sync, C: Send + Sync> Send for BatchInner<I, T, F, C> {}

impl<I, T, F, C> BatchInner<I, T, F, C>
where
    I: Send,
    T: Send,
    F: Fn(I) -> T + Send + Sync,
    C: CompletionCallback<T>,
{
    const VTABLE: JobVTable = JobVTable {
        execute: Self::execute,
        lineage: Self::lineage,
        node: Self::node,
        reject: Self::reject,
        retain: Self::retain,
        drop_ref: Self::drop_ref,
        unit: Some(&Self::UNIT),
    };

    const UNIT: UnitOps = UnitOps {
        fail_unclaimed: Self::unit_fail_unclaimed,
        release: Self::unit_release,
        unobserved_panic: Self::unit_unobserved_panic,
        is_released: Self::unit_is_released,
        is_settled: Self::unit_is_settled,
        has_unclaimed: Self::unit_has_unclaimed,
        run_here: Self::unit_run_here,
        scope_link: Self::unit_scope_link,
    };

    pub(crate) fn new(
        options: Options,
        func: F,
        callback: C,
        is_failure: Option<fn(&T) -> bool>,
        inputs: Inputs<I>,
        scope: Arc<ScopeData>,
        threads: usize,
    ) -> Self {
        let len = inputs.len();
        BatchInner {
            job: JobHeader {
                vtable: &Self::VTABLE,
            },
            header: BatchHeader {
                len,
                first_index: options.first_index,
                cursor: AtomicUsize::new(0),
                pending: AtomicUsize::new(len),
                chunk: options.chunk,
                wanted: AtomicUsize::new(1),
                threads: threads.max(1),
                lane: if options.blocking {
                    LaneKind::Blocking
                } else {
                    LaneKind::Cpu
                },
                trace: BatchSpan::new(options.name.as_deref(), len, options.blocking),
                name: options.name,
                fail_fast: options.fail_fast,
                cancel: CancelState {
                    cancelled: AtomicBool::new(false),
                    deadline: options.deadline,
                    blocks: AtomicBool::new(false),
                },
                panics: Mutex::new(Vec::new()),
                panicked: AtomicBool::new(false),
                failed_any: AtomicBool::new(false),
                broken_reason: Mutex::new(None),
                failure_observed: AtomicBool::new(false),
                handle_alive: AtomicBool::new(true),
                released: AtomicBool::new(false),
                waiters: AtomicUsize::new(0),
                handed_out: AtomicUsize::new(0),
                streamers: AtomicUsize::new(0),
                log_on: AtomicBool::new(false),
                log: Mutex::new(Vec::new()),
                done_lock: Mutex::new(None),
                done: Condvar::new(),
                node: Node::unit_in(
                    scope.node(),
                    lineage::current_ref().unwrap_or_else(|| ScopeData::unit_ref(&scope)),
                ),
                me: std::sync::atomic::AtomicPtr::new(ptr::null_mut()),
                scope_link: ScopeLink::new(ptr::null_mut()),
                scope,
            },
            func: UnsafeCell::new(ManuallyDrop::new(func)),
            callback: UnsafeCell::new(ManuallyDrop::new(callback)),
            is_failure,
            slots: Slots::new(inputs),
            _types: PhantomData,
        }
    }

    /// The link for the scope's list of units.
    pub(crate) fn scope_link(&self) -> &ScopeLink {
        &self.header.scope_link
    }

    pub(crate) fn lane(&self) -> LaneKind {
        self.header.lane
    }

    fn task_error(&self, index: usize, kind: TaskErrorKind) -> TaskError {
        TaskError {
            index: self.header.first_index + index,
            name: self.header.name.clone(),
            kind,
            location: None,
        }
    }

    /// Calls the completion callback; a panic in it becomes the task's panic
    /// (returned, with the words that say whose panic it was).
    fn call_back(
        &self,
        callback: &C,
        index: usize,
        outcome: Result<&T, &TaskError>,
    ) -> Option<Panic> {
        if !C::PRESENT {
            return None;
        }
        let caught =
            unwind::catch(|| callback.call(self.header.first_index + index, outcome)).err()?;
        Some(self.panic_of(index, "its completion callback panicked: ", caught))
    }

    /// A caught panic as the task's, its message prefixed with whose it was;
    /// drops the payload.
    fn panic_of(&self, index: usize, whose: &str, caught: unwind::Caught) -> Panic {
        let message = format!("{whose}{}", unwind::message(&*caught.payload));
        self.header.scope.drop_guarded(caught.payload);
        Panic {
            index,
            message,
            location: caught.location,
            task: caught.task,
        }
    }

    /// Runs task `index`, which the calling thread claimed.
    ///
    /// # Safety
    ///
    /// `index` is in a range this thread claimed and has not run yet.
    /// `first_of_claim` says it is the first of that range: it starts as
    /// soon as it is claimed, so a cancel that did not get to claim it first
    /// is too late for it (and did not count it).
    unsafe fn run_one(
        &self,
        slots: &View<'_, I, T>,
        func: &F,
        callback: &C,
        index: usize,
        first_of_claim: bool,
    ) {
        let slot = slots.state(index);
        // SAFETY: the claim gives this thread sole ownership of the slot,
        // which still holds its input (state INPUT); the batch is not
        // released while a claimed task is pending.
        let input = unsafe { slots.take_input(index) };
        if !first_of_claim && self.header.cancel.is_cancelled() {
            // Claimed in a chunk before the cancel (or the deadline), behind
            // a task that ran: it has not started, so it never will.
            self.header.scope.drop_guarded(input);
            let error = self.task_error(index, TaskErrorKind::Cancelled);
            match self.call_back(callback, index, Err(&error)) {
                None => {
                    self.header.failed_any.store(true, Ordering::Relaxed);
                    slot.store(CANCELLED, Ordering::Release);
                }
                Some(panic) => self.record_panic(slot, panic),
            }
            return;
        }
        let output = match unwind::catch(|| func(input)) {
            Ok(output) => output,
            Err(caught) => {
                let mut panic = self.panic_of(index, "", caught);
                let error = self.panic_error(&panic);
                if let Some(also) = self.call_back(callback, index, Err(&error)) {
                    panic.message = format!("{} (and {})", panic.message, also.message);
                }
                self.record_panic(slot, panic);
                return;
            }
        };
        // The failure check is the user's code too: a panic in it is the
        // task's panic, never a dead worker.
        let failed = match self.is_failure.filter(|_| self.header.fail_fast) {
            None => false,
            Some(is_failure) => match unwind::catch(|| is_failure(&output)) {
                Ok(failed) => failed,
                Err(caught) => {
                    self.header.scope.drop_guarded(output);
                    let mut panic = self.panic_of(index, "its failure check panicked: ", caught);
                    let error = self.panic_error(&panic);
                    if let Some(also) = self.call_back(callback, index, Err(&error)) {
                        panic.message = format!("{} (and {})", panic.message, also.message);
                    }
                    self.record_panic(slot, panic);
                    return;
                }
            },
        };
        if let Some(panic) = self.call_back(callback, index, Ok(&output)) {
            self.header.scope.drop_guarded(output);
            self.record_panic(slot, panic);
            return;
        }
        // SAFETY: sole owner of the slot, whose input was moved out.
        unsafe { slots.write_output(index, output) };
        if failed {
            self.header.failed_any.store(true, Ordering::Relaxed);
        }
        slot.store(if failed { FAILED } else { OK }, Ordering::Release);
        if failed {
            self.fail_unclaimed(TaskErrorKind::Cancelled);
        }
    }

    fn panic_error(&self, panic: &Panic) -> TaskError {
        let error = self.task_error(
            panic.index,
            TaskErrorKind::Panicked {
                message: panic.message.clone(),
            },
        );
        TaskError {
            location: panic.location.clone(),
            name: error.name.or(panic.task.map(Cow::Borrowed)),
            ..error
        }
    }

    fn record_panic(&self, slot: &AtomicU8, panic: Panic) {
        self.header.trace.panicked(
            self.header.first_index + panic.index,
            &panic.message,
            panic.location.as_ref(),
        );
        lock(&self.header.panics).push(panic);
        self.header.panicked.store(true, Ordering::Release);
        self.header.failed_any.store(true, Ordering::Relaxed);
        slot.store(PANICKED, Ordering::Release);
        if self.header.fail_fast {
            self.fail_unclaimed(TaskErrorKind::Cancelled);
        }
    }

    /// Lowers `pending` by the finished tasks of `range`; wakes the sleepers
    /// that may be waiting for them; the thread that finishes the last one
    /// releases the batch if its handle is gone, and reports to the scope, in
    /// that order.
    fn finish(&self, range: Range<usize>) {
        let n = range.len();
        if n == 0 {
            return;
        }
        fence(Ordering::SeqCst);
        if self.header.log_on.load(Ordering::SeqCst) {
            lock(&self.header.log).extend(range);
        }
        let last = self.header.pending.fetch_sub(n, Ordering::SeqCst) == n;
        seq_cst_hand_shake();
        let sleepers = self.header.streamers.load(Ordering::SeqCst) > 0
            || (last && self.header.waiters.load(Ordering::SeqCst) > 0);
        if sleepers {
            let waker = self.header.take_waker(last);
            self.header.done.notify_all();
            if let Some(waker) = waker {
                // A `Waker` is the executor's code: a panic in it must not
                // kill this worker (the default panic hook has reported it).
                if let Err(payload) =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waker.wake()))
                {
                    unwind::drop_payload(payload);
                }
            }
        }
        let scope = &self.header.scope;
        self.header
            .node
            .wake_sleepers(&|bit| scope.registry().wake_worker_bit(bit));
        if !last {
            return;
        }
        self.header.trace.done(
            self.header.len,
            self.header.panicked.load(Ordering::Acquire),
        );
        if !self.header.handle_alive.load(Ordering::SeqCst) {
            self.release_contents();
        }
        // The batch may be gone after this (if the scope is all that held
        // it), so the scope is reached through a clone.
        let scope = scope.clone();
        scope.unit_finished();
    }

    /// Claims and runs tasks until none is left, the deadline passed, or
    /// `stop()` holds. With `one_at_a_time`, claims single tasks (helpers
    /// waiting for one result, or with a deadline).
    fn run_until(&self, deadline: Option<Instant>, one_at_a_time: bool, stop: &dyn Fn() -> bool) {
        // SAFETY: `&self` keeps the batch alive while it is the context.
        let _context = unsafe { lineage::enter(self.job_header()) };
        let _cancel = CurrentCancel::enter(&self.header.cancel);
        loop {
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) || stop() {
                return;
            }
            if self.header.cancel.past_deadline() || self.header.scope.is_terminated() {
                self.fail_unclaimed(TaskErrorKind::Cancelled);
                return;
            }
            let wanted = if one_at_a_time {
                1
            } else {
                self.header.wanted.load(Ordering::Relaxed)
            };
            let Some(range) = self.header.claim(wanted) else {
                return;
            };
            // Chunks of one that could not grow, and the last chunk, need no
            // timing: there is nothing to adapt.
            let timed = !one_at_a_time
                && self.header.chunk.is_none()
                && range.end < self.header.len
                && (self.header.len - range.start) >= 4 * self.header.threads;
            let started = timed.then(Instant::now);
            {
                let chunk = self
                    .header
                    .trace
                    .chunk(self.header.first_index + range.start, range.len());
                let _chunk = chunk.enter();
                // SAFETY: a claimed range keeps `pending` above zero, so the
                // batch is not released while the closures are borrowed; the
                // borrows end before `finish`.
                let (func, callback): (&F, &C) =
                    unsafe { (&*self.func.get(), &*self.callback.get()) };
                let slots = self.slots.view();
                for index in range.clone() {
                    // SAFETY: `index` was claimed just now by this thread.
                    unsafe { self.run_one(&slots, func, callback, index, index == range.start) };
                }
            }
            let asked = range.len();
            self.finish(range);
            let Some(started) = started else {
                continue;
            };
            let took = started.elapsed();
            if took < CHUNK_TARGET {
                self.header
                    .wanted
                    .store(asked.saturating_mul(2), Ordering::Relaxed);
            } else if took > CHUNK_TARGET * 4 {
                self.header
                    .wanted
                    .store((asked / 2).max(1), Ordering::Relaxed);
            }
        }
    }

    fn release_contents(&self) {
        if self.header.released.swap(true, Ordering::AcqRel) {
            return;
        }
        let scope = &self.header.scope;
        // SAFETY: `release` is only reached when no task can run (every task
        // finished) and no handle can read a slot (the handle is gone, or the
        // scope has ended its body), and `released` makes this the only call.
        unsafe {
            self.slots.release(
                |input| scope.drop_guarded(input),
                |output| scope.drop_guarded(output),
            );
        }
        // SAFETY: as above, nobody can call the closures any more, and this
        // is the only release.
        let (func, callback) = unsafe {
            (
                ManuallyDrop::take(&mut *self.func.get()),
                ManuallyDrop::take(&mut *self.callback.get()),
            )
        };
        scope.drop_guarded(func);
        scope.drop_guarded(callback);
    }

    /// Takes the outcome of task `index`.
    ///
    /// # Safety
    ///
    /// The caller is the live handle, the task finished, and its outcome was
    /// not taken before.
    unsafe fn take_outcome(&self, index: usize) -> Result<T, TaskError> {
        match self.slots.state(index).load(Ordering::Acquire) {
            OK | FAILED => {
                // SAFETY: state OK or FAILED (loaded with Acquire) means the
                // result was written and published; a live handle keeps the
                // batch from being released; `take_output` marks it TAKEN so
                // nobody reads it again.
                Ok(unsafe { self.slots.take_output(index) })
            }
            _ => {
                self.header.failure_observed.store(true, Ordering::Release);
                Err(self.error_of(index))
            }
        }
    }

    fn error_of(&self, index: usize) -> TaskError {
        let kind = match self.state(index) {
            PANICKED => {
                let panics = lock(&self.header.panics);
                if let Some(panic) = panics.iter().find(|panic| panic.index == index) {
                    return self.panic_error(panic);
                }
                TaskErrorKind::Panicked {
                    message: String::new(),
                }
            }
            BROKEN => TaskErrorKind::PoolBroken {
                reason: lock(&self.header.broken_reason).clone().unwrap_or_default(),
            },
            FAILED => TaskErrorKind::Failed,
            _ => TaskErrorKind::Cancelled,
        };
        self.task_error(index, kind)
    }

    fn is_failed_state(state: u8) -> bool {
        matches!(state, PANICKED | CANCELLED | BROKEN | FAILED)
    }

    /// The state of task `index`.
    fn state(&self, index: usize) -> u8 {
        self.slots.state(index).load(Ordering::Acquire)
    }

    /// Marks every unclaimed task as failed with `kind`; returns how many.
    fn fail_unclaimed(&self, kind: TaskErrorKind) -> usize {
        let state = match &kind {
            TaskErrorKind::PoolBroken { reason } => {
                lock(&self.header.broken_reason).get_or_insert_with(|| reason.clone());
                BROKEN
            }
            _ => {
                self.header.cancel.cancelled.store(true, Ordering::Release);
                CANCELLED
            }
        };
        let first = self.header.cursor.swap(self.header.len, Ordering::AcqRel);
        if first >= self.header.len {
            return 0;
        }
        self.header.failed_any.store(true, Ordering::Relaxed);
        {
            // Callbacks and destructors of the cancelled tasks run here, on
            // the cancelling thread: to them it is one of the scope's tasks,
            // so a join from them is refused instead of waiting for itself.
            // SAFETY: `&self` keeps the batch alive while it is the context.
            let _context = unsafe { lineage::enter(self.job_header()) };
            // SAFETY: the callback lives until release, which cannot happen
            // while the tasks below are pending.
            let callback: &C = unsafe { &*self.callback.get() };
            for index in first..self.header.len {
                // SAFETY: the swap made this thread the owner of every index
                // from `first` on, none of which started, so each input is
                // still in place; the batch is not released while they are
                // pending.
                let input = unsafe { self.slots.take_input(index) };
                self.header.scope.drop_guarded(input);
                let error = self.task_error(index, kind.clone());
                let slot = self.slots.state(index);
                match self.call_back(callback, index, Err(&error)) {
                    None => slot.store(state, Ordering::Release),
                    Some(panic) => {
                        lock(&self.header.panics).push(panic);
                        self.header.panicked.store(true, Ordering::Release);
                        slot.store(PANICKED, Ordering::Release);
                    }
                }
            }
        }
        let failed = self.header.len - first;
        self.header
            .trace
            .cancelled(self.header.first_index + first, failed);
        self.finish(first..self.header.len);
        failed
    }

    fn unobserved_panic(&self) -> Option<String> {
        if self.header.failure_observed.load(Ordering::Acquire) {
            return None;
        }
        let panics = lock(&self.header.panics);
        let first = panics.iter().min_by_key(|panic| panic.index)?;
        let error = self.panic_error(first);
        Some(if panics.len() > 1 {
            format!("{error} (and {} more in the same batch)", panics.len() - 1)
        } else {
            error.to_string()
        })
    }

    /// The batch as a job and lineage context (see `BatchHeader::me`).
    fn job_header(&self) -> NonNull<JobHeader> {
        let me = self.header.me.load(Ordering::Relaxed);
        debug_assert!(!me.is_null(), "a batch runs only once queued");
        // SAFETY: set by `queue` from a live `Arc` before the batch could
        // run or be handed out, so never null here.
        unsafe { NonNull::new_unchecked(me) }
    }

    /// # Safety
    ///
    /// `header` is the job header of a live batch of this type.
    unsafe fn from_header<'a>(header: NonNull<JobHeader>) -> &'a Self {
        // SAFETY: the header is the first field of a `#[repr(C)]` batch of
        // this type (caller's promise).
        unsafe { &*(header.as_ptr() as *const Self) }
    }

    /// Run by a CPU worker that took a reference from a queue: claims and
    /// runs chunks until none is left, then drops the reference.
    unsafe fn execute(header: NonNull<JobHeader>) {
        // SAFETY: the queue's reference (an `Arc` count) comes back here.
        let batch = unsafe { Arc::from_raw(header.as_ptr() as *const Self) };
        let registry = batch.header.scope.registry();
        if registry.is_broken() {
            batch.fail_unclaimed(TaskErrorKind::PoolBroken {
                reason: registry.broken_reason().unwrap_or_default(),
            });
            return;
        }
        batch.run_until(None, false, &|| false);
    }

    unsafe fn lineage(header: NonNull<JobHeader>) -> Lineage {
        // SAFETY: a live batch (every caller holds a reference).
        let batch = unsafe { Self::from_header(header) };
        Lineage {
            node: Some(NonNull::from(&batch.header.node)),
            parent: batch
                .header
                .node
                .parent
                .as_ref()
                .map(|parent| NonNull::from(parent.node())),
        }
    }

    unsafe fn node(header: NonNull<JobHeader>) -> NonNull<Node> {
        // SAFETY: a live batch (every caller holds a reference).
        NonNull::from(&unsafe { Self::from_header(header) }.header.node)
    }

    unsafe fn reject(header: NonNull<JobHeader>) {
        let registry = WorkerThread::current()
            .expect("only workers take jobs from queues")
            .registry
            .clone();
        // SAFETY: the reference came out of a queue, and goes back to one.
        registry.defer(unsafe { JobRef::from_raw(header) });
        fence(Ordering::SeqCst);
        registry.wake_idle(1);
    }

    unsafe fn retain(header: NonNull<JobHeader>) {
        // SAFETY: batches live in an `Arc` (see `Scope::submit`), alive while
        // the caller holds a count.
        unsafe { Arc::increment_strong_count(header.as_ptr() as *const Self) };
    }

    unsafe fn drop_ref(header: NonNull<JobHeader>) {
        // SAFETY: as in `retain`; the caller gives up one count.
        unsafe { drop(Arc::from_raw(header.as_ptr() as *const Self)) };
    }

    unsafe fn unit_fail_unclaimed(header: NonNull<JobHeader>, kind: TaskErrorKind) -> usize {
        // SAFETY: the caller holds a reference.
        unsafe { Self::from_header(header) }.fail_unclaimed(kind)
    }

    unsafe fn unit_release(header: NonNull<JobHeader>) {
        // SAFETY: the caller holds a reference.
        unsafe { Self::from_header(header) }.release_contents();
    }

    unsafe fn unit_unobserved_panic(header: NonNull<JobHeader>) -> Option<String> {
        // SAFETY: the caller holds a reference.
        unsafe { Self::from_header(header) }.unobserved_panic()
    }

    unsafe fn unit_is_released(header: NonNull<JobHeader>) -> bool {
        // SAFETY: the caller holds a reference.
        unsafe { Self::from_header(header) }
            .header
            .released
            .load(Ordering::Acquire)
    }

    unsafe fn unit_is_settled(header: NonNull<JobHeader>) -> bool {
        // SAFETY: the caller holds a reference.
        let header = &unsafe { Self::from_header(header) }.header;
        header.released.load(Ordering::Acquire)
            && (header.failure_observed.load(Ordering::Acquire)
                || !header.panicked.load(Ordering::Acquire))
    }

    unsafe fn unit_has_unclaimed(header: NonNull<JobHeader>) -> bool {
        // SAFETY: the caller holds a reference.
        unsafe { Self::from_header(header) }.header.has_unclaimed()
    }

    unsafe fn unit_run_here(header: NonNull<JobHeader>) {
        // SAFETY: the caller holds a reference.
        unsafe { Self::from_header(header) }.run_until(None, false, &|| false);
    }

    unsafe fn unit_scope_link(header: NonNull<JobHeader>) -> *const ScopeLink {
        // SAFETY: the caller holds a reference.
        unsafe { Self::from_header(header) }.scope_link()
    }
}

/// The typed view of a batch that its handles use.
pub(crate) trait BatchCore<T>: Send + Sync {
    fn header(&self) -> &BatchHeader;
    /// Runs unclaimed tasks until none is left, the deadline passed, or
    /// `stop()` holds; one at a time with `one_at_a_time`.
    fn help(&self, deadline: Option<Instant>, one_at_a_time: bool, stop: &dyn Fn() -> bool);
    /// # Safety
    /// See [`BatchInner::take_outcome`].
    unsafe fn take(&self, index: usize) -> Result<T, TaskError>;
    fn failed(&self, index: usize) -> Option<TaskError>;
    fn is_done(&self, index: usize) -> bool;
    /// The first task in submission order that failed by itself
    /// (panicked, failed under fail-fast, lost to a broken pool), or else
    /// the first cancelled one: a task cancelled *because* another failed
    /// is never the batch's failure.
    fn first_failure(&self) -> Option<usize>;
    /// The result of task `index`, if it has one that was not taken.
    ///
    /// # Safety
    /// The caller is the live handle and the batch is complete.
    unsafe fn peek(&self, index: usize) -> Option<&T>;
    /// Every result, in submission order, in one move.
    ///
    /// # Safety
    /// The caller is the live handle, consumed; the batch is complete and
    /// every task succeeded (`first_failure` is `None`); no result was
    /// taken.
    unsafe fn take_all(&self) -> Vec<T>;
    /// Past the batch's deadline, cancels every task that has not started.
    fn enforce_deadline(&self);
    fn has_unclaimed(&self) -> bool;
    /// Cancels every task that has not started; returns how many.
    fn cancel(&self) -> usize;
    /// Releases the batch's contents (the handle is gone and the batch is
    /// complete).
    fn release(&self);
}

impl<I, T, F, C> BatchCore<T> for BatchInner<I, T, F, C>
where
    I: Send,
    T: Send,
    F: Fn(I) -> T + Send + Sync,
    C: CompletionCallback<T>,
{
    fn header(&self) -> &BatchHeader {
        &self.header
    }

    fn help(&self, deadline: Option<Instant>, one_at_a_time: bool, stop: &dyn Fn() -> bool) {
        self.run_until(deadline, one_at_a_time, stop);
    }

    unsafe fn take(&self, index: usize) -> Result<T, TaskError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.take_outcome(index) }
    }

    fn failed(&self, index: usize) -> Option<TaskError> {
        Self::is_failed_state(self.state(index)).then(|| self.error_of(index))
    }

    fn is_done(&self, index: usize) -> bool {
        self.state(index) != INPUT
    }

    fn first_failure(&self) -> Option<usize> {
        // Written before the finisher's `pending` decrement that the
        // caller's wait saw (the batch is complete).
        if !self.header.failed_any.load(Ordering::Relaxed) {
            return None;
        }
        let mut first_cancelled = None;
        for index in 0..self.header.len {
            match self.state(index) {
                PANICKED | BROKEN | FAILED => return Some(index),
                CANCELLED => {
                    first_cancelled.get_or_insert(index);
                }
                _ => {}
            }
        }
        first_cancelled
    }

    unsafe fn peek(&self, index: usize) -> Option<&T> {
        // SAFETY: a live handle keeps the slots alive; the batch is complete,
        // so nobody writes the slot, and OK / FAILED mean it holds a result.
        matches!(self.state(index), OK | FAILED).then(|| unsafe { self.slots.output(index) })
    }

    unsafe fn take_all(&self) -> Vec<T> {
        // SAFETY: forwarded from the caller (every task OK, taken once).
        unsafe { self.slots.take_all_outputs() }
    }

    fn enforce_deadline(&self) {
        if self.header.cancel.past_deadline() {
            self.fail_unclaimed(TaskErrorKind::Cancelled);
        }
    }

    fn has_unclaimed(&self) -> bool {
        self.header.has_unclaimed()
    }

    fn cancel(&self) -> usize {
        self.fail_unclaimed(TaskErrorKind::Cancelled)
    }

    fn release(&self) {
        self.release_contents();
    }
}

/// Waits until `ready` holds for `batch`, or the instant `until`, on any
/// thread; returns whether it holds. Enforces the batch's deadline on the
/// way (cancelling what has not started when it passes, then waiting for
/// what runs).
///
/// On one of the pool's CPU workers the wait runs the batch's unclaimed
/// tasks and their descendants (see [`crate::worker`]); on a blocking-lane
/// thread, the batch's unclaimed tasks; anywhere else it blocks and runs
/// nothing. Helping runs one task at a time when there is an instant to
/// stop at, so a wait overruns it by at most the task it runs.
pub(crate) fn wait_on<T>(batch: &dyn BatchCore<T>, ready: Ready, until: Option<Instant>) -> bool {
    let header = batch.header();
    let is_ready = || match ready {
        Ready::Complete => header.is_complete(),
        Ready::Task(index) => batch.is_done(index),
        Ready::Logged => !lock(&header.log).is_empty(),
    };
    loop {
        if is_ready() {
            return true;
        }
        let batch_deadline = header.pending_deadline();
        let deadline = match (until, batch_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if wait_once(batch, &is_ready, ready, deadline) {
            return true;
        }
        if until.is_some_and(|until| Instant::now() >= until) {
            return is_ready();
        }
        batch.enforce_deadline();
    }
}

fn wait_once<T>(
    batch: &dyn BatchCore<T>,
    is_ready: &dyn Fn() -> bool,
    ready: Ready,
    deadline: Option<Instant>,
) -> bool {
    let header = batch.header();
    let registry = header.scope.registry();
    let one_at_a_time = deadline.is_some() || !matches!(ready, Ready::Complete);
    if let Some(worker) = WorkerThread::current_of(registry) {
        let node = NonNull::from(&header.node);
        return worker.wait_until(
            &Awaited {
                node: &|| Some(node),
                done: is_ready,
                help_self: &|| {
                    if !batch.has_unclaimed() {
                        return false;
                    }
                    batch.help(deadline, one_at_a_time, is_ready);
                    true
                },
            },
            deadline,
        );
    }
    if registry.is_current_thread() || registry.caller_helps() {
        // A blocking-lane thread: no deque to help descendants from, but
        // the batch's own tasks it can run. The same for a caller outside
        // the pool when the pool asked for it (`PoolBuilder::caller_helps`).
        batch.help(deadline, one_at_a_time, is_ready);
    }
    match ready {
        Ready::Complete => header.block_until_complete(deadline),
        _ => header.block_until(is_ready, deadline),
    }
}

/// Queues a new batch on its pool and registers it with its scope: the
/// last step of a submission. Returns the batch as a unit reference.
///
/// # Safety
///
/// The caller is the scope the batch belongs to, and upholds the scope's
/// guarantee of [`crate::job::erase`] for it.
pub(crate) unsafe fn queue<'a, I, T, F, C>(batch: &Arc<BatchInner<I, T, F, C>>) -> UnitRef
where
    I: Send + 'a,
    T: Send + 'a,
    F: Fn(I) -> T + Send + Sync + 'a,
    C: CompletionCallback<T> + 'a,
{
    let raw = Arc::into_raw(batch.clone());
    // SAFETY: the caller upholds the scope's guarantee; `raw` is a live
    // batch whose first field is its job header, owning one count.
    let unit = unsafe { UnitRef::from_owned(crate::job::erase(raw)) };
    // Published to other threads by whatever shares the batch next (the
    // queue push, or the handle given to the submitter).
    batch
        .header
        .me
        .store(unit.header().as_ptr(), Ordering::Relaxed);
    unit
}
