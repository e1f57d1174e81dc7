//! Batches: the job that runs a batch's tasks, and the `Batch` handle.
//!
//! A batch is one allocation of slots (each holding a task's input, then its
//! result) next to the task closure, with an atomic cursor that workers claim
//! task indices from in adaptive chunks. There is no per-task allocation and
//! no per-task queue push.
//!
//! ## Memory ordering
//!
//! - Inputs are written before the job is published (through the lane mutex
//!   or by moving the handle), so claimers see them. The cursor is a plain
//!   claim counter: a successful compare-exchange (or the swap of a cancel)
//!   hands the thread exclusive ownership of the slots in its range.
//! - A task's result is written into its slot, then the slot's state is
//!   stored with `Release`; readers load it with `Acquire` before reading the
//!   result (this is what lets results stream out one at a time).
//! - `pending` counts tasks not yet finished. Finishing lowers it with
//!   `SeqCst` read-modify-writes, which form one release sequence, so a
//!   thread that loads zero with `Acquire` sees every slot written. The
//!   thread that brings it to zero notifies the batch's condition variable
//!   under its mutex and then reports to the scope, which is its last touch.
//! - Sleepers (`waiters` for the whole batch, `streamers` for one result)
//!   register with `SeqCst` and then check, while finishers publish and then
//!   read the registrations after a `SeqCst` fence: of a sleeper and a
//!   finisher, at least one sees the other (the store-buffering pattern), and
//!   the mutex makes sure a registered sleeper is asleep before it is
//!   notified.
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
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::Range;
use std::ptr;
use std::time::Duration;

use crate::error::{PanicLocation, TaskError, TaskErrorKind, TryGetError};
use crate::job::Job;
use crate::primitive::{
    fence, lock, seq_cst_hand_shake, thread_local, wait, wait_timeout, Arc, AtomicBool, AtomicU8,
    AtomicUsize, Backoff, Condvar, Instant, Mutex, Ordering,
};
use crate::registry::LaneKind;
use crate::scope::{RunningScope, ScopeData};
use crate::unwind;

const INPUT: u8 = 0;
const OK: u8 = 1;
const PANICKED: u8 = 2;
const CANCELLED: u8 = 3;
const BROKEN: u8 = 4;
const TAKEN: u8 = 5;
/// The task's result is written, and its batch counts it as a failure (an
/// `Err` under fail-fast): streams hand it out as a value, `get()` reports
/// it as the batch's failure.
const FAILED: u8 = 6;

/// How long a claimed chunk should take, at most, before chunks stop growing.
const CHUNK_TARGET: Duration = Duration::from_micros(20);

thread_local! {
    /// The cancel state of the batch whose task this thread is running.
    static CURRENT_CANCEL: Cell<*const CancelState> = const { Cell::new(ptr::null()) };
}

/// What tells a batch's running tasks to stop: a cancel (or terminate, or
/// fail-fast), or its deadline passing.
pub(crate) struct CancelState {
    cancelled: AtomicBool,
    deadline: Option<Instant>,
}

impl CancelState {
    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed) || self.past_deadline()
    }

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

/// A slot's payload: the task's input until it runs, then its result.
union SlotValue<I, T> {
    input: ManuallyDrop<I>,
    output: ManuallyDrop<T>,
}

/// The slots of a batch, dropped only by `release_contents`.
type Slots<I, T> = UnsafeCell<ManuallyDrop<SlotStore<I, T>>>;

/// Where a batch keeps its slots: a batch of one task (`apply_async`, the
/// commonest submission one at a time) keeps its slot inline, so the whole
/// batch is a single allocation.
enum SlotStore<I, T> {
    One(Slot<I, T>),
    Many(Box<[Slot<I, T>]>),
}

impl<I, T> SlotStore<I, T> {
    fn as_slice(&self) -> &[Slot<I, T>] {
        match self {
            SlotStore::One(slot) => std::slice::from_ref(slot),
            SlotStore::Many(slots) => slots,
        }
    }
}

/// The inputs of a new batch.
pub(crate) enum Inputs<I> {
    /// One task's input, stored without a separate allocation.
    One(I),
    /// One input per task, in submission order.
    Many(Vec<I>),
}

impl<I> Inputs<I> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Inputs::One(_) => 1,
            Inputs::Many(inputs) => inputs.len(),
        }
    }
}

struct Slot<I, T> {
    state: AtomicU8,
    value: UnsafeCell<SlotValue<I, T>>,
}

/// What runs when a task of a batch finishes; set with
/// [`BatchBuilder::on_complete`](crate::BatchBuilder::on_complete).
///
/// Implemented by [`NoCallback`] and by the [`OnComplete`] wrapper of a
/// closure `Fn(usize, Result<&T, &TaskError>)`.
pub trait CompletionCallback<T>: Send + Sync {
    /// Whether there is anything to call.
    const PRESENT: bool;
    /// Called with the task's index and outcome.
    fn call(&self, index: usize, outcome: Result<&T, &TaskError>);
}

/// No completion callback (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCallback;

impl<T> CompletionCallback<T> for NoCallback {
    const PRESENT: bool = false;
    fn call(&self, _: usize, _: Result<&T, &TaskError>) {}
}

/// A completion callback closure; see
/// [`BatchBuilder::on_complete`](crate::BatchBuilder::on_complete).
pub struct OnComplete<T, F> {
    callback: F,
    _result: PhantomData<fn(&T)>,
}

impl<T, F> OnComplete<T, F> {
    pub(crate) fn new(callback: F) -> Self {
        OnComplete {
            callback,
            _result: PhantomData,
        }
    }
}

impl<T, F: Clone> Clone for OnComplete<T, F> {
    fn clone(&self) -> Self {
        OnComplete::new(self.callback.clone())
    }
}

impl<T, F> fmt::Debug for OnComplete<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnComplete(..)")
    }
}

impl<T, F> CompletionCallback<T> for OnComplete<T, F>
where
    F: Fn(usize, Result<&T, &TaskError>) + Send + Sync,
{
    const PRESENT: bool = true;
    fn call(&self, index: usize, outcome: Result<&T, &TaskError>) {
        (self.callback)(index, outcome)
    }
}

/// Per-batch options, set through [`BatchBuilder`](crate::BatchBuilder).
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub(crate) name: Option<Cow<'static, str>>,
    pub(crate) blocking: bool,
    pub(crate) chunk: Option<usize>,
    pub(crate) fail_fast: bool,
    pub(crate) in_flight: Option<usize>,
    /// When unstarted tasks are cancelled and running ones told to stop.
    pub(crate) deadline: Option<Instant>,
    /// The index of the batch's first task in what the user submitted: 0,
    /// except for the batches a stream cuts its input into.
    pub(crate) first_index: usize,
}

/// The part of a batch that does not depend on its types.
pub(crate) struct Header {
    len: usize,
    /// Added to slot indices wherever an index reaches the user (errors,
    /// callbacks); see `Options::first_index`.
    first_index: usize,
    /// `cursor` and `pending` share a cache line on purpose: workers touch
    /// them once per chunk, not per task, while a task submitted on its own
    /// pays for every line its batch's allocation spans (padding them apart
    /// made one-at-a-time submission ~10 % slower).
    cursor: AtomicUsize,
    pending: AtomicUsize,
    chunk: Option<usize>,
    threads: usize,
    lane: LaneKind,
    name: Option<Cow<'static, str>>,
    fail_fast: bool,
    cancel: CancelState,
    panics: Mutex<Vec<Panic>>,
    /// Set once `panics` is not empty, so that pruning settled batches
    /// need not take the lock.
    panicked: AtomicBool,
    broken_reason: Mutex<Option<String>>,
    failure_observed: AtomicBool,
    handle_alive: AtomicBool,
    released: AtomicBool,
    /// Threads blocked until the whole batch is complete; the last finisher
    /// skips the (system-call) notification when there are none.
    waiters: AtomicUsize,
    /// How many results the handle's stream has handed out (`results`,
    /// `as_completed`); written only by that reader.
    handed_out: AtomicUsize,
    /// Threads blocked until some task completes (streaming readers).
    streamers: AtomicUsize,
    /// Whether finishers log completed indices, for completion-order reads.
    log_on: AtomicBool,
    log: Mutex<Vec<usize>>,
    done_lock: Mutex<()>,
    done: Condvar,
    scope: Arc<ScopeData>,
}

/// A task's panic (or its callback's, or its failure check's), kept for the
/// handle.
struct Panic {
    index: usize,
    message: String,
    location: Option<PanicLocation>,
}

impl Header {
    fn is_complete(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
    }

    /// The deadline, if the batch has one, is not complete, and was not
    /// cancelled yet (which enforcing the deadline does).
    fn pending_deadline(&self) -> Option<Instant> {
        self.cancel
            .deadline
            .filter(|_| !self.is_complete() && !self.cancel.cancelled.load(Ordering::Acquire))
    }

    fn chunk_for(&self, wanted: usize, remaining: usize) -> usize {
        if self.lane == LaneKind::Blocking {
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

    /// Blocks the calling thread until every task finished, or the deadline.
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

    /// Blocks until `ready()` holds; finishers notify streamers on every
    /// chunk, and `ready` is checked after registering. At the batch's
    /// deadline, calls `enforce_deadline` (outside the lock: cancelling
    /// finishes tasks, which notifies under it) and goes on waiting.
    fn block_until(&self, ready: &dyn Fn() -> bool, enforce_deadline: &dyn Fn()) {
        if ready() {
            return;
        }
        let backoff = Backoff::new();
        while !backoff.is_completed() {
            if ready() {
                return;
            }
            backoff.snooze();
        }
        loop {
            let deadline = self.pending_deadline();
            {
                let mut guard = lock(&self.done_lock);
                self.streamers.fetch_add(1, Ordering::SeqCst);
                let _registered = DecrementOnDrop(&self.streamers);
                fence(Ordering::SeqCst);
                loop {
                    if ready() {
                        return;
                    }
                    match deadline {
                        None => guard = wait(&self.done, guard),
                        Some(deadline) => {
                            let now = Instant::now();
                            if now >= deadline {
                                break;
                            }
                            guard = wait_timeout(&self.done, guard, deadline - now);
                        }
                    }
                }
            }
            enforce_deadline();
        }
    }

    fn slot_state_done(state: u8) -> bool {
        state != INPUT
    }
}

/// Lowers a waiter count when dropped.
pub(crate) struct DecrementOnDrop<'a>(pub(crate) &'a AtomicUsize);

impl Drop for DecrementOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A batch: its header, its task closure, its completion callback, and its
/// slots.
pub(crate) struct BatchInner<I, T, F, C> {
    header: Header,
    func: UnsafeCell<ManuallyDrop<F>>,
    callback: UnsafeCell<ManuallyDrop<C>>,
    /// Which results count as failures for fail-fast (tasks returning
    /// `Result`).
    is_failure: Option<fn(&T) -> bool>,
    slots: Slots<I, T>,
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
        let slot = |input| Slot {
            state: AtomicU8::new(INPUT),
            value: UnsafeCell::new(SlotValue {
                input: ManuallyDrop::new(input),
            }),
        };
        let slots = match inputs {
            Inputs::One(input) => SlotStore::One(slot(input)),
            Inputs::Many(inputs) => SlotStore::Many(inputs.into_iter().map(slot).collect()),
        };
        BatchInner {
            header: Header {
                len,
                first_index: options.first_index,
                cursor: AtomicUsize::new(0),
                pending: AtomicUsize::new(len),
                chunk: options.chunk,
                threads: threads.max(1),
                lane: if options.blocking {
                    LaneKind::Blocking
                } else {
                    LaneKind::Cpu
                },
                name: options.name,
                fail_fast: options.fail_fast,
                cancel: CancelState {
                    cancelled: AtomicBool::new(false),
                    deadline: options.deadline,
                },
                panics: Mutex::new(Vec::new()),
                panicked: AtomicBool::new(false),
                broken_reason: Mutex::new(None),
                failure_observed: AtomicBool::new(false),
                handle_alive: AtomicBool::new(true),
                released: AtomicBool::new(false),
                waiters: AtomicUsize::new(0),
                handed_out: AtomicUsize::new(0),
                streamers: AtomicUsize::new(0),
                log_on: AtomicBool::new(false),
                log: Mutex::new(Vec::new()),
                done_lock: Mutex::new(()),
                done: Condvar::new(),
                scope,
            },
            func: UnsafeCell::new(ManuallyDrop::new(func)),
            callback: UnsafeCell::new(ManuallyDrop::new(callback)),
            is_failure,
            slots: UnsafeCell::new(ManuallyDrop::new(slots)),
        }
    }

    /// The slots.
    ///
    /// # Safety
    ///
    /// The batch must not be released: the caller holds a claimed range, or
    /// is a live handle (which keeps the batch from being released).
    unsafe fn slots(&self) -> &[Slot<I, T>] {
        // SAFETY: not released (caller's promise), so the store is alive; it
        // is only taken by `release_contents`.
        unsafe { (*self.slots.get()).as_slice() }
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
    unsafe fn run_one(&self, func: &F, callback: &C, index: usize, first_of_claim: bool) {
        // SAFETY: the batch is not released while a claimed task is pending.
        let slot = unsafe { &self.slots()[index] };
        // SAFETY: the claim gives this thread sole ownership of the slot,
        // which still holds its input (state INPUT); reading it moves it out.
        let input = unsafe { ManuallyDrop::into_inner(ptr::read(&(*slot.value.get()).input)) };
        if !first_of_claim && self.header.cancel.is_cancelled() {
            // Claimed in a chunk before the cancel (or the deadline), behind
            // a task that ran: it has not started, so it never will.
            self.header.scope.drop_guarded(input);
            let error = self.task_error(index, TaskErrorKind::Cancelled);
            match self.call_back(callback, index, Err(&error)) {
                None => slot.state.store(CANCELLED, Ordering::Release),
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
        unsafe {
            ptr::write(
                slot.value.get(),
                SlotValue {
                    output: ManuallyDrop::new(output),
                },
            )
        };
        slot.state
            .store(if failed { FAILED } else { OK }, Ordering::Release);
        if failed {
            self.fail_unclaimed(TaskErrorKind::Cancelled);
        }
    }

    fn panic_error(&self, panic: &Panic) -> TaskError {
        TaskError {
            location: panic.location.clone(),
            ..self.task_error(
                panic.index,
                TaskErrorKind::Panicked {
                    message: panic.message.clone(),
                },
            )
        }
    }

    fn record_panic(&self, slot: &Slot<I, T>, panic: Panic) {
        lock(&self.header.panics).push(panic);
        self.header.panicked.store(true, Ordering::Release);
        slot.state.store(PANICKED, Ordering::Release);
        if self.header.fail_fast {
            self.fail_unclaimed(TaskErrorKind::Cancelled);
        }
    }

    /// Lowers `pending` by the finished tasks of `range`; the thread that
    /// finishes the last one wakes the waiters, releases the batch if its
    /// handle is gone, and reports to the scope, in that order.
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
            drop(lock(&self.header.done_lock));
            self.header.done.notify_all();
        }
        if !last {
            return;
        }
        if !self.header.handle_alive.load(Ordering::SeqCst) {
            self.release_contents();
        }
        self.header.scope.batch_finished();
    }

    /// Claims and runs tasks until none is left, the deadline passed, or
    /// `stop()` holds. With `one_at_a_time`, claims single tasks (helpers
    /// waiting for one result, or with a deadline).
    fn run_until(&self, deadline: Option<Instant>, one_at_a_time: bool, stop: &dyn Fn() -> bool) {
        let _running = RunningScope::enter(&self.header.scope);
        let _cancel = CurrentCancel::enter(&self.header.cancel);
        let mut wanted = 1usize;
        loop {
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) || stop() {
                return;
            }
            if self.header.cancel.past_deadline() {
                self.fail_unclaimed(TaskErrorKind::Cancelled);
                return;
            }
            let want = if one_at_a_time { 1 } else { wanted };
            let Some(range) = self.header.claim(want) else {
                return;
            };
            // The last chunk needs no timing: there is nothing left to adapt.
            let timed = range.end < self.header.len && !one_at_a_time;
            let started = timed.then(Instant::now);
            {
                // SAFETY: a claimed range keeps `pending` above zero, so the
                // batch is not released while the closures are borrowed; the
                // borrows end before `finish`.
                let (func, callback): (&F, &C) =
                    unsafe { (&*self.func.get(), &*self.callback.get()) };
                for index in range.clone() {
                    // SAFETY: `index` was claimed just now by this thread.
                    unsafe { self.run_one(func, callback, index, index == range.start) };
                }
            }
            self.finish(range);
            let Some(started) = started else {
                continue;
            };
            let took = started.elapsed();
            if took < CHUNK_TARGET {
                wanted = wanted.saturating_mul(2);
            } else if took > CHUNK_TARGET * 4 {
                wanted = (wanted / 2).max(1);
            }
        }
    }

    fn release_contents(&self) {
        if self.header.released.swap(true, Ordering::AcqRel) {
            return;
        }
        // SAFETY: `release` is only reached when no task can run (every task
        // finished) and no handle can read a slot (the handle is gone, or the
        // scope has ended its body), and `released` makes this the only call
        // that takes the box.
        let slots = unsafe { ManuallyDrop::take(&mut *self.slots.get()) };
        for slot in slots.as_slice() {
            match slot.state.load(Ordering::Acquire) {
                INPUT => {
                    // SAFETY: the task never ran, so the input is still there.
                    let input =
                        unsafe { ManuallyDrop::into_inner(ptr::read(&(*slot.value.get()).input)) };
                    self.header.scope.drop_guarded(input);
                }
                OK | FAILED => {
                    // SAFETY: the result was written and never taken.
                    let output =
                        unsafe { ManuallyDrop::into_inner(ptr::read(&(*slot.value.get()).output)) };
                    self.header.scope.drop_guarded(output);
                }
                _ => {}
            }
        }
        drop(slots);
        // SAFETY: as above, nobody can call the closures any more, and this
        // is the only release.
        let (func, callback) = unsafe {
            (
                ManuallyDrop::take(&mut *self.func.get()),
                ManuallyDrop::take(&mut *self.callback.get()),
            )
        };
        self.header.scope.drop_guarded(func);
        self.header.scope.drop_guarded(callback);
    }

    /// Takes the outcome of task `index`.
    ///
    /// # Safety
    ///
    /// The caller is the live handle, the task finished, and its outcome was
    /// not taken before.
    unsafe fn take_outcome(&self, index: usize) -> Result<T, TaskError> {
        // SAFETY: a live handle keeps the batch from being released.
        let slot = unsafe { &self.slots()[index] };
        match slot.state.load(Ordering::Acquire) {
            OK | FAILED => {
                slot.state.store(TAKEN, Ordering::Relaxed);
                // SAFETY: state OK or FAILED (loaded with Acquire) means the
                // result was written and published; TAKEN keeps anyone from
                // reading it again.
                Ok(unsafe { ManuallyDrop::into_inner(ptr::read(&(*slot.value.get()).output)) })
            }
            _ => {
                self.header.failure_observed.store(true, Ordering::Release);
                Err(self.error_of(index))
            }
        }
    }

    fn error_of(&self, index: usize) -> TaskError {
        // SAFETY: callers hold a live handle.
        let state = unsafe { self.slots()[index].state.load(Ordering::Acquire) };
        let kind = match state {
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
        // SAFETY: only called through a live handle.
        unsafe { self.slots()[index].state.load(Ordering::Acquire) }
    }
}

impl<I, T, F, C> Job for BatchInner<I, T, F, C>
where
    I: Send,
    T: Send,
    F: Fn(I) -> T + Send + Sync,
    C: CompletionCallback<T>,
{
    fn has_unclaimed(&self) -> bool {
        self.header.cursor.load(Ordering::Relaxed) < self.header.len
    }

    fn run(&self) {
        self.run_until(None, false, &|| false);
    }

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
        {
            // Callbacks and destructors of the cancelled tasks run here, on
            // the cancelling thread: to them it is one of the scope's tasks,
            // so a join from them is refused instead of waiting for itself.
            let _running = RunningScope::enter(&self.header.scope);
            // SAFETY: the swap made this thread the owner of every index from
            // `first` on, none of which started; the batch is not released
            // while they are pending.
            let slots = unsafe { self.slots() };
            // SAFETY: as above; the callback lives until release.
            let callback: &C = unsafe { &*self.callback.get() };
            for (index, slot) in slots.iter().enumerate().skip(first) {
                // SAFETY: as above, the input is still in the slot.
                let input =
                    unsafe { ManuallyDrop::into_inner(ptr::read(&(*slot.value.get()).input)) };
                self.header.scope.drop_guarded(input);
                let error = self.task_error(index, kind.clone());
                match self.call_back(callback, index, Err(&error)) {
                    None => slot.state.store(state, Ordering::Release),
                    Some(panic) => {
                        lock(&self.header.panics).push(panic);
                        self.header.panicked.store(true, Ordering::Release);
                        slot.state.store(PANICKED, Ordering::Release);
                    }
                }
            }
        }
        let failed = self.header.len - first;
        self.finish(first..self.header.len);
        failed
    }

    fn release(&self) {
        self.release_contents();
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

    fn is_settled(&self) -> bool {
        self.header.released.load(Ordering::Acquire)
            && (self.header.failure_observed.load(Ordering::Acquire)
                || !self.header.panicked.load(Ordering::Acquire))
    }
}

/// The typed view of a batch that its handle uses.
pub(crate) trait BatchCore<T>: Job {
    fn header(&self) -> &Header;
    /// Runs unclaimed tasks until none is left, the deadline passed, or
    /// `stop()` holds.
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
    /// Past the batch's deadline, cancels every task that has not started.
    fn enforce_deadline(&self);
}

impl<I, T, F, C> BatchCore<T> for BatchInner<I, T, F, C>
where
    I: Send,
    T: Send,
    F: Fn(I) -> T + Send + Sync,
    C: CompletionCallback<T>,
{
    fn header(&self) -> &Header {
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
        // SAFETY: only called through a live handle.
        let state = unsafe { self.slots()[index].state.load(Ordering::Acquire) };
        Self::is_failed_state(state).then(|| self.error_of(index))
    }

    fn is_done(&self, index: usize) -> bool {
        Header::slot_state_done(self.state(index))
    }

    fn first_failure(&self) -> Option<usize> {
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
        unsafe {
            let slot = &self.slots()[index];
            matches!(slot.state.load(Ordering::Acquire), OK | FAILED)
                .then(|| &*(*slot.value.get()).output)
        }
    }

    fn enforce_deadline(&self) {
        if self.header.cancel.past_deadline() {
            self.fail_unclaimed(TaskErrorKind::Cancelled);
        }
    }
}

/// The handle of a batch of tasks submitted to a [`Scope`](crate::Scope):
/// wait for it, poll it, take its results, cancel it.
///
/// Python's `AsyncResult`: `wait`, `wait_timeout` (`wait(timeout)`),
/// `is_ready` (`ready()`), `successful`, `get`, `get_timeout` (`get(timeout)`).
///
/// A `Batch` cannot outlive its scope, and the scope waits for every task
/// whether or not its handle is kept, so dropping a handle neither cancels
/// nor detaches its tasks.
///
/// ```
/// use std::time::Duration;
///
/// let data = vec![1, 2, 3, 4];
/// pool_runtime::scope(|s| {
///     let batch = s.map_async(|x: &i32| x * 10, &data);
///     assert_eq!(batch.len(), 4);
///     assert!(batch.wait_timeout(Duration::from_secs(60)));
///     assert!(batch.is_ready());
///     assert_eq!(batch.successful(), Some(true));
///     assert_eq!(batch.get().unwrap(), [10, 20, 30, 40]);
/// });
/// ```
///
/// A handle cannot escape its scope:
///
/// ```compile_fail
/// let escaped = pool_runtime::scope(|s| s.map_async(|x: u32| x, 0..4));
/// ```
#[must_use = "a batch runs whether or not its handle is kept; keep the handle to wait for it, take its results or see its failures"]
pub struct Batch<'scope, T> {
    inner: Arc<dyn BatchCore<T> + 'scope>,
    _scope: PhantomData<&'scope ()>,
}

impl<'scope, T> Batch<'scope, T> {
    pub(crate) fn new(inner: Arc<dyn BatchCore<T> + 'scope>) -> Self {
        Batch {
            inner,
            _scope: PhantomData,
        }
    }

    fn header(&self) -> &Header {
        self.inner.header()
    }

    /// Waits until every task of the batch finished (ran, panicked or was
    /// cancelled).
    ///
    /// Called from one of the pool's own workers (inside a task), the wait
    /// runs this batch's tasks that no worker has claimed yet, instead of
    /// sleeping, so tasks that wait on batches never deadlock the pool.
    /// Called from any other thread, it blocks and runs nothing.
    pub fn wait(&self) {
        if self.header().is_complete() {
            return;
        }
        if self.header().scope.registry().is_current_worker() {
            self.inner.help(None, false, &|| false);
        }
        if let Some(deadline) = self.header().pending_deadline() {
            if self.header().block_until_complete(Some(deadline)) {
                return;
            }
            self.inner.enforce_deadline();
        }
        self.header().block_until_complete(None);
    }

    /// Waits at most `timeout` for the batch; returns whether it is ready.
    ///
    /// From inside one of the pool's workers, the wait runs this batch's
    /// unclaimed tasks one at a time while time remains, so it may overrun
    /// `timeout` by the duration of the task it is running.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        if self.header().is_complete() {
            return true;
        }
        let deadline = Instant::now().checked_add(timeout);
        if self.header().scope.registry().is_current_worker() {
            self.inner.help(deadline, true, &|| false);
        }
        if let Some(batch_deadline) = self.header().pending_deadline() {
            if deadline.map_or(true, |deadline| batch_deadline < deadline) {
                if self.header().block_until_complete(Some(batch_deadline)) {
                    return true;
                }
                self.inner.enforce_deadline();
            }
        }
        match deadline {
            Some(deadline) => self.header().block_until_complete(Some(deadline)),
            None => self.header().block_until_complete(None),
        }
    }

    /// Whether every task finished (Python's `ready()`).
    pub fn is_ready(&self) -> bool {
        if self.header().pending_deadline().is_some() {
            self.inner.enforce_deadline();
        }
        self.header().is_complete()
    }

    /// `None` while the batch is not ready; then `Some(true)` if every task
    /// succeeded, `Some(false)` if any panicked or was cancelled. Seeing
    /// `Some(false)` counts as having reported the failure, so its panic is
    /// not re-raised when the scope ends.
    pub fn successful(&self) -> Option<bool> {
        if !self.is_ready() {
            return None;
        }
        let failed = (0..self.len()).any(|i| self.inner.failed(i).is_some());
        if failed {
            self.header()
                .failure_observed
                .store(true, Ordering::Release);
        }
        Some(!failed)
    }

    /// Waits for the batch and returns its results in submission order, or
    /// the first failure in submission order.
    ///
    /// The failure is the first task that failed by itself: it panicked, or
    /// (with [`fail_fast`](crate::BatchBuilder::fail_fast)) returned a
    /// value counted as a failure, or its pool broke. A task cancelled
    /// because of that failure is never the one reported; a cancelled task
    /// is reported only when no task failed by itself (the batch was
    /// cancelled, its scope terminated, or its deadline passed).
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let sizes = s.map_async(|name: &str| name.len(), ["a", "bb", "ccc"]);
    ///     assert_eq!(sizes.get().unwrap(), [1, 2, 3]);
    ///
    ///     let checked = s.map_async(|x: u32| assert!(x != 1, "one is not allowed"), 0..3);
    ///     let error = checked.get().unwrap_err();
    ///     assert_eq!((error.index(), error.panic_message()), (1, Some("one is not allowed")));
    /// });
    /// ```
    pub fn get(self) -> Result<Vec<T>, TaskError> {
        self.wait();
        if let Some(index) = self.inner.first_failure() {
            self.header()
                .failure_observed
                .store(true, Ordering::Release);
            return Err(self
                .inner
                .failed(index)
                .expect("first_failure names a failed task"));
        }
        let mut results = Vec::with_capacity(self.len());
        for index in 0..self.len() {
            // SAFETY: this live handle is consumed by `get`, so each index is
            // taken at most once, after the batch completed.
            match unsafe { self.inner.take(index) } {
                Ok(value) => results.push(value),
                Err(error) => return Err(error),
            }
        }
        Ok(results)
    }

    /// Like [`get`](Batch::get), but gives up after `timeout` and hands the
    /// batch back in [`GetTimeoutError::Timeout`].
    ///
    /// Giving up stops nothing: the tasks go on running, and the scope still
    /// waits for them (they may borrow from its caller's stack). To stop
    /// what has not started, [`cancel`](Batch::cancel) the batch you got
    /// back; to stop at a point in time whether or not anyone waits, give
    /// the batch a [`deadline`](crate::BatchBuilder::deadline), which also
    /// tells running tasks to stop through
    /// [`current_task_cancelled`](crate::current_task_cancelled).
    ///
    /// ```
    /// use std::time::Duration;
    /// use pool_runtime::GetTimeoutError;
    ///
    /// let pool = pool_runtime::Pool::new(1).unwrap();
    /// pool.scope(|s| {
    ///     let (tx, rx) = std::sync::mpsc::channel::<()>();
    ///     let slow = s.apply_async(move || rx.recv().is_ok()).into_batch();
    ///     let slow = match slow.get_timeout(Duration::from_millis(10)) {
    ///         Err(GetTimeoutError::Timeout(batch)) => batch,
    ///         other => panic!("{other:?}"),
    ///     };
    ///     tx.send(()).unwrap();
    ///     assert_eq!(slow.get().unwrap(), [true]);
    /// });
    /// ```
    pub fn get_timeout(self, timeout: Duration) -> Result<Vec<T>, GetTimeoutError<'scope, T>> {
        if !self.wait_timeout(timeout) {
            return Err(GetTimeoutError::Timeout(self));
        }
        self.get().map_err(GetTimeoutError::Failed)
    }

    /// Every failed task, in submission order, once the batch is ready (empty
    /// before). Counts as having reported the failures.
    pub fn failures(&self) -> Vec<TaskError> {
        if !self.is_ready() {
            return Vec::new();
        }
        let failures: Vec<TaskError> = (0..self.len())
            .filter_map(|i| self.inner.failed(i))
            .collect();
        if !failures.is_empty() {
            self.header()
                .failure_observed
                .store(true, Ordering::Release);
        }
        failures
    }

    /// The number of tasks in the batch.
    pub fn len(&self) -> usize {
        self.header().len
    }

    /// Whether the batch has no task (it is then ready at once).
    pub fn is_empty(&self) -> bool {
        self.header().len == 0
    }

    /// How many tasks have finished so far (progress: `completed() / len()`).
    ///
    /// Workers report in chunks, so on a batch of tiny tasks the count moves
    /// in steps. A result that [`results`](Self::results) or
    /// [`as_completed`](Self::as_completed) handed out is always counted,
    /// even before its chunk is reported: a progress bar read beside a
    /// stream never shows fewer tasks done than results read. The count
    /// reaches `len()` when the batch is ready, or once a stream handed out
    /// the last result.
    pub fn completed(&self) -> usize {
        if self.header().pending_deadline().is_some() {
            self.inner.enforce_deadline();
        }
        let header = self.header();
        let reported = header.len - header.pending.load(Ordering::Acquire);
        reported.max(header.handed_out.load(Ordering::Relaxed))
    }

    /// Keeps every task that has not started from ever starting (they report
    /// [`TaskErrorKind::Cancelled`]); running tasks finish. Returns how many
    /// tasks this call cancelled: a task it does not count runs (or already
    /// ran). The one exception is a batch claimed in chunks of more than one
    /// task: a task a worker claimed behind one that was running is
    /// cancelled too, without being counted; once the batch is ready,
    /// [`failures`](Batch::failures) lists every cancelled task.
    pub fn cancel(&self) -> usize {
        self.inner.fail_unclaimed(TaskErrorKind::Cancelled)
    }

    /// Whether [`cancel`](Batch::cancel) was called on this batch (or its
    /// scope was terminated).
    pub fn is_cancelled(&self) -> bool {
        self.header().cancel.cancelled.load(Ordering::Acquire)
    }

    /// The name given to the batch's tasks, if any.
    pub fn name(&self) -> Option<&str> {
        self.header().name.as_deref()
    }

    /// The results one by one in submission order, each as soon as it is
    /// ready (Python's `imap`): the first result is in hand while later
    /// tasks still run. Also what `for result in batch` does.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let batch = s.map_async(|x: u32| x * x, 1..=3);
    ///     let squares: Vec<u32> = batch.results().map(Result::unwrap).collect();
    ///     assert_eq!(squares, [1, 4, 9]);
    /// });
    /// ```
    pub fn results(self) -> Results<'scope, T> {
        Results {
            batch: self,
            next: 0,
        }
    }

    /// The results in the order the tasks finish, each with the index of
    /// its input (Python's `imap_unordered`, plus the index).
    ///
    /// ```
    /// use std::{thread, time::Duration};
    ///
    /// pool_runtime::scope(|s| {
    ///     let delays = [200u64, 0];
    ///     let batch = s.batch().blocking(true).map_async(
    ///         |ms: u64| thread::sleep(Duration::from_millis(ms)),
    ///         delays,
    ///     );
    ///     let order: Vec<usize> = batch.as_completed().map(|(index, _)| index).collect();
    ///     assert_eq!(order, [1, 0]);
    /// });
    /// ```
    pub fn as_completed(self) -> AsCompleted<'scope, T> {
        let header = self.header();
        header.log_on.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let len = header.len;
        let ready: VecDeque<usize> = (0..len).filter(|&i| self.inner.is_done(i)).collect();
        AsCompleted {
            seen: vec![false; len],
            ready,
            yielded: 0,
            batch: self,
        }
    }

    /// Waits until task `index` finished; on one of the pool's workers,
    /// runs this batch's unclaimed tasks meanwhile.
    fn wait_for(&self, index: usize) {
        if self.inner.is_done(index) {
            return;
        }
        if self.header().scope.registry().is_current_worker() {
            self.inner.help(None, true, &|| self.inner.is_done(index));
        }
        self.header()
            .block_until(&|| self.inner.is_done(index), &|| {
                self.inner.enforce_deadline()
            });
    }
}

impl<U, E> Batch<'_, Result<U, E>> {
    /// For a batch of tasks that return `Result`: waits and returns every
    /// `Ok` value in submission order, or the first failure in submission
    /// order with the task's own `Err` (or why the task produced no value:
    /// its panic, a cancel, a broken pool). As with [`get`](Batch::get), a
    /// task cancelled because another failed is never the one reported.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let ports = s.map_async(|text: &str| text.parse::<u16>(), ["80", "443"]);
    ///     assert_eq!(ports.try_get().unwrap(), [80, 443]);
    ///
    ///     let bad = s.batch().name("parse").map_async(|t: &str| t.parse::<u16>(), ["80", "http"]);
    ///     let failure = bad.try_get().unwrap_err();
    ///     assert_eq!((failure.index(), failure.task_name()), (1, Some("parse")));
    ///     assert!(failure.error().is_some(), "the task's own ParseIntError");
    /// });
    /// ```
    pub fn try_get(self) -> Result<Vec<U>, TryGetError<E>> {
        self.wait();
        let mut first_cancelled = None;
        let mut first_failure = None;
        for index in 0..self.len() {
            // SAFETY: a live handle, and the batch is complete (waited above).
            match unsafe { self.inner.peek(index) } {
                Some(Ok(_)) => {}
                Some(Err(_)) => {
                    first_failure = Some(index);
                    break;
                }
                None => match self.inner.failed(index) {
                    Some(error) if error.is_cancelled() => {
                        first_cancelled.get_or_insert(index);
                    }
                    Some(_) => {
                        first_failure = Some(index);
                        break;
                    }
                    None => {}
                },
            }
        }
        if let Some(index) = first_failure.or(first_cancelled) {
            self.header()
                .failure_observed
                .store(true, Ordering::Release);
            // SAFETY: consumed handle, complete batch, the index taken once.
            return Err(match unsafe { self.inner.take(index) } {
                Ok(Err(error)) => TryGetError::Returned {
                    index: self.header().first_index + index,
                    name: self.header().name.clone(),
                    error,
                },
                Ok(Ok(_)) => unreachable!("the failure found above holds an Err"),
                Err(error) => TryGetError::Task(error),
            });
        }
        let mut values = Vec::with_capacity(self.len());
        for index in 0..self.len() {
            // SAFETY: as above; each index taken once.
            match unsafe { self.inner.take(index) } {
                Ok(Ok(value)) => values.push(value),
                Ok(Err(_)) | Err(_) => unreachable!("no failure was found above"),
            }
        }
        Ok(values)
    }
}

impl<'scope, T> IntoIterator for Batch<'scope, T> {
    type Item = Result<T, TaskError>;
    type IntoIter = Results<'scope, T>;

    fn into_iter(self) -> Results<'scope, T> {
        self.results()
    }
}

/// The results of a batch in submission order, from [`Batch::results`].
pub struct Results<'scope, T> {
    batch: Batch<'scope, T>,
    next: usize,
}

impl<'scope, T> Results<'scope, T> {
    /// The batch being read (for progress or cancel).
    pub fn batch(&self) -> &Batch<'scope, T> {
        &self.batch
    }
}

impl<T> Iterator for Results<'_, T> {
    type Item = Result<T, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.batch.len() {
            return None;
        }
        let index = self.next;
        self.batch.wait_for(index);
        self.next += 1;
        // Counted before the caller sees the result (see `completed`).
        let header = self.batch.header();
        header.handed_out.store(self.next, Ordering::Relaxed);
        // SAFETY: the iterator owns the live handle and visits each index
        // once, after the task finished.
        Some(unsafe { self.batch.inner.take(index) })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.batch.len() - self.next;
        (left, Some(left))
    }
}

impl<T> ExactSizeIterator for Results<'_, T> {}

impl<T> fmt::Debug for Results<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Results")
            .field("batch", &self.batch)
            .field("next", &self.next)
            .finish()
    }
}

/// The results of a batch in completion order, with their indices, from
/// [`Batch::as_completed`].
pub struct AsCompleted<'scope, T> {
    batch: Batch<'scope, T>,
    seen: Vec<bool>,
    ready: VecDeque<usize>,
    yielded: usize,
}

impl<'scope, T> AsCompleted<'scope, T> {
    /// The batch being read (for progress or cancel).
    pub fn batch(&self) -> &Batch<'scope, T> {
        &self.batch
    }

    /// Results not handed out yet.
    pub(crate) fn len_left(&self) -> usize {
        self.batch.len() - self.yielded
    }

    /// The next finished result, without blocking.
    pub(crate) fn try_next(&mut self) -> Option<(usize, Result<T, TaskError>)> {
        loop {
            while let Some(index) = self.ready.pop_front() {
                if std::mem::replace(&mut self.seen[index], true) {
                    continue;
                }
                self.yielded += 1;
                // Counted before the caller sees the result (see `completed`).
                let header = self.batch.header();
                header.handed_out.store(self.yielded, Ordering::Relaxed);
                // SAFETY: the iterator owns the live handle, the index was
                // logged or seen finished, and `seen` makes it taken once.
                return Some((index, unsafe { self.batch.inner.take(index) }));
            }
            if !self.refill() {
                return None;
            }
        }
    }

    /// On one of the pool's workers, runs one unclaimed task of the batch;
    /// returns whether it ran one.
    pub(crate) fn help_one(&self) -> bool {
        if !self.batch.header().scope.registry().is_current_worker()
            || !self.batch.inner.has_unclaimed()
        {
            return false;
        }
        let ran = std::cell::Cell::new(false);
        self.batch.inner.help(None, true, &|| ran.replace(true));
        true
    }

    fn refill(&mut self) -> bool {
        let mut log = lock(&self.batch.header().log);
        if log.is_empty() {
            return false;
        }
        self.ready.extend(log.drain(..));
        true
    }
}

impl<T> Iterator for AsCompleted<'_, T> {
    type Item = (usize, Result<T, TaskError>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.yielded >= self.batch.len() {
                return None;
            }
            if let Some(next) = self.try_next() {
                return Some(next);
            }
            if self.help_one() {
                continue;
            }
            let header = self.batch.header();
            header.block_until(&|| !lock(&header.log).is_empty(), &|| {
                self.batch.inner.enforce_deadline()
            });
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.batch.len() - self.yielded;
        (left, Some(left))
    }
}

impl<T> fmt::Debug for AsCompleted<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("batch", &self.batch)
            .field("yielded", &self.yielded)
            .finish()
    }
}

impl<T> Drop for Batch<'_, T> {
    fn drop(&mut self) {
        self.header().handle_alive.store(false, Ordering::SeqCst);
        seq_cst_hand_shake();
        if self.header().pending.load(Ordering::SeqCst) == 0 {
            self.inner.release();
        }
    }
}

impl<T> fmt::Debug for Batch<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("name", &self.name())
            .field("len", &self.len())
            .field("completed", &self.completed())
            .field("ready", &self.is_ready())
            .finish()
    }
}

/// [`Batch::get_timeout`] did not return results.
pub enum GetTimeoutError<'scope, T> {
    /// The batch was not ready in time; here it is back, to wait again,
    /// cancel, or drop.
    Timeout(Batch<'scope, T>),
    /// The batch finished, and this task failed (the first in submission order).
    Failed(TaskError),
}

impl<T> fmt::Debug for GetTimeoutError<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetTimeoutError::Timeout(batch) => f.debug_tuple("Timeout").field(batch).finish(),
            GetTimeoutError::Failed(error) => f.debug_tuple("Failed").field(error).finish(),
        }
    }
}

impl<T> fmt::Display for GetTimeoutError<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetTimeoutError::Timeout(batch) => write!(
                f,
                "timed out waiting for a batch: {} of {} tasks finished",
                batch.completed(),
                batch.len()
            ),
            GetTimeoutError::Failed(error) => error.fmt(f),
        }
    }
}

impl<T> std::error::Error for GetTimeoutError<'_, T> {}

/// The handle of a single task (Python's `apply_async`): a [`Batch`] of one
/// whose [`get`](Task::get) returns the one result.
///
/// ```
/// let name = String::from("poolscope");
/// pool_runtime::scope(|s| {
///     let task = s.apply_async(|| name.len());
///     assert_eq!(task.get().unwrap(), 9);
/// });
/// ```
#[must_use = "a task runs whether or not its handle is kept; keep the handle to wait for it or take its result"]
pub struct Task<'scope, T> {
    batch: Batch<'scope, T>,
}

impl<'scope, T> Task<'scope, T> {
    pub(crate) fn new(batch: Batch<'scope, T>) -> Self {
        Task { batch }
    }

    /// Waits until the task finished. See [`Batch::wait`].
    pub fn wait(&self) {
        self.batch.wait()
    }

    /// Waits at most `timeout`; returns whether the task finished. See
    /// [`Batch::wait_timeout`].
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.batch.wait_timeout(timeout)
    }

    /// Whether the task finished.
    pub fn is_ready(&self) -> bool {
        self.batch.is_ready()
    }

    /// `None` while running; then whether the task succeeded.
    pub fn successful(&self) -> Option<bool> {
        self.batch.successful()
    }

    /// Waits and returns the task's result, or why it has none.
    pub fn get(self) -> Result<T, TaskError> {
        let mut results = self.batch.get()?;
        Ok(results.pop().expect("a task handle holds exactly one task"))
    }

    /// Like [`get`](Task::get), giving up after `timeout`.
    pub fn get_timeout(self, timeout: Duration) -> Result<T, GetTimeoutError<'scope, T>> {
        let mut results = self.batch.get_timeout(timeout)?;
        Ok(results.pop().expect("a task handle holds exactly one task"))
    }

    /// Keeps the task from starting if it has not; returns whether it did.
    pub fn cancel(&self) -> bool {
        self.batch.cancel() == 1
    }

    /// The underlying one-task batch.
    pub fn into_batch(self) -> Batch<'scope, T> {
        self.batch
    }
}

impl<T> fmt::Debug for Task<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.batch.name())
            .field("ready", &self.is_ready())
            .finish()
    }
}
