//! `fork_join`: run two closures, possibly in parallel, and return when
//! both are done.
//!
//! On a worker, the second closure becomes a *stack job* in the caller's
//! frame, pushed on the worker's deque; the caller runs the first closure,
//! then pops the second back and runs it itself, unless another worker
//! stole it meanwhile. A split that is not stolen costs a few stores, a
//! fence and a few loads: no allocation, no reference count.
//!
//! A thief that takes a stack job makes an [`Anchor`] for it (the job's
//! context while it runs there, see [`crate::lineage`]), runs it, stores
//! its result and sets its state to `DONE`, which is its last touch of the
//! job. The caller, finding the job gone from its deque, waits on the
//! anchor's node (see [`crate::worker`]), running the job's descendants
//! meanwhile.
//!
//! A thread outside the pool queues the whole `fork_join` as one stack job
//! in the injector and blocks until a worker has run it.
//!
//! ## Memory ordering
//!
//! The thief writes the result, then stores `DONE` (`SeqCst`) and, after a
//! fence, reads the anchor's sleepers; the caller registers on the anchor
//! (`SeqCst`), fences, then reads the state (see [`crate::sleep`]). The
//! result is read after the state is seen `DONE` with `Acquire`. The anchor
//! pointer is published with `Release` before the job runs.

use std::cell::{Cell, UnsafeCell};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};

use crate::job::{self, JobHeader, JobRef, JobVTable, Lineage, Node, UnitRef};
use crate::lineage::{self, Anchor};
use crate::primitive::{
    fence, lock, seq_cst_hand_shake, wait, Arc, AtomicPtr, AtomicU8, Condvar, Mutex, Ordering,
};
use crate::registry::Registry;
use crate::unwind::AbortOnUnwind;
use crate::worker::{Awaited, WorkerThread};

const QUEUED: u8 = 0;
/// A waiting worker took the job but may not run it: its caller will.
const RETURNED: u8 = 1;
const DONE: u8 = 2;

/// How a thread outside the pool waits for its job.
struct OutsideLatch {
    lock: Mutex<()>,
    done: Condvar,
}

#[repr(C)]
struct StackJob<F, R> {
    header: JobHeader,
    func: UnsafeCell<Option<F>>,
    result: UnsafeCell<Option<std::thread::Result<R>>>,
    /// The context that queued the job, alive while the job is pending (the
    /// caller's frame runs inside it).
    parent: Option<NonNull<JobHeader>>,
    state: AtomicU8,
    /// The anchor a thief made for it; the caller drops this reference.
    anchor: AtomicPtr<JobHeader>,
    /// Set for a job queued by a thread outside the pool.
    outside: Option<OutsideLatch>,
}

impl<F, R> StackJob<F, R>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    const VTABLE: JobVTable = JobVTable {
        execute: Self::execute,
        lineage: Self::lineage,
        node: Self::no_node,
        reject: Self::reject,
        retain: Self::not_counted,
        drop_ref: Self::not_counted,
        unit: None,
    };

    fn new(func: F, outside: bool) -> Self {
        StackJob {
            header: JobHeader {
                vtable: &Self::VTABLE,
            },
            func: UnsafeCell::new(Some(func)),
            result: UnsafeCell::new(None),
            parent: lineage::current(),
            state: AtomicU8::new(QUEUED),
            anchor: AtomicPtr::new(ptr::null_mut()),
            outside: outside.then(|| OutsideLatch {
                lock: Mutex::new(()),
                done: Condvar::new(),
            }),
        }
    }

    /// # Safety
    ///
    /// `header` is a stack job of this type.
    unsafe fn from_header<'a>(header: NonNull<JobHeader>) -> &'a Self {
        // SAFETY: the header is the first field of a `#[repr(C)]` job of
        // this type (caller's promise); the job is alive while queued.
        unsafe { &*(header.as_ptr() as *const Self) }
    }

    /// Run by the thread that took the job from a queue (not its caller).
    unsafe fn execute(header: NonNull<JobHeader>) {
        // SAFETY: queued jobs of this vtable are of this type.
        let job = unsafe { Self::from_header(header) };
        // SAFETY: the job is pending, so the context that queued it, which
        // its caller's frame runs in, is alive.
        let parent = job.parent.map(|parent| unsafe { UnitRef::retain(parent) });
        let anchor = Anchor::new_ref(parent);
        job.anchor
            .store(anchor.clone().into_raw().as_ptr(), Ordering::Release);
        // SAFETY: only the thread that took the job from its queue runs it,
        // once; the caller reads nothing of it before `DONE`.
        let func = unsafe { (*job.func.get()).take() }.expect("a stack job runs once");
        let result = {
            // SAFETY: this thread holds the anchor until the guard is gone.
            let _context = unsafe { lineage::enter(anchor.header()) };
            catch_unwind(AssertUnwindSafe(func))
        };
        // SAFETY: as for `func`.
        unsafe { *job.result.get() = Some(result) };
        job.complete(&anchor);
    }

    /// Marks the job done and wakes its caller: the last touch of the job.
    fn complete(&self, anchor: &UnitRef) {
        match &self.outside {
            Some(latch) => {
                // Under the lock the caller checks `state` with, so it cannot
                // return (and free the latch) before the notification.
                let _locked = lock(&latch.lock);
                self.state.store(DONE, Ordering::SeqCst);
                latch.done.notify_all();
            }
            None => {
                let registry: &Registry = &WorkerThread::current()
                    .expect("a stack job runs on a worker")
                    .registry;
                self.state.store(DONE, Ordering::SeqCst);
                // `self` may be gone from here on; the anchor is ours.
                seq_cst_hand_shake();
                anchor
                    .node()
                    .wake_sleepers(&|bit| registry.wake_worker_bit(bit));
            }
        }
    }

    unsafe fn lineage(header: NonNull<JobHeader>) -> Lineage {
        // SAFETY: as in `execute`.
        let job = unsafe { Self::from_header(header) };
        Lineage {
            node: None,
            // SAFETY: the context is alive while the job is pending.
            parent: job.parent.map(|parent| unsafe { lineage::node_of(parent) }),
        }
    }

    unsafe fn reject(header: NonNull<JobHeader>) {
        // SAFETY: as in `execute`.
        let job = unsafe { Self::from_header(header) };
        if job.outside.is_some() {
            // Its caller does not run it: it waits for a worker that may.
            let registry = &WorkerThread::current()
                .expect("only workers take jobs from queues")
                .registry;
            // SAFETY: the reference came out of a queue.
            registry.defer(unsafe { JobRef::from_raw(header) });
            fence(Ordering::SeqCst);
            registry.wake_idle(1);
        } else {
            job.state.store(RETURNED, Ordering::Release);
        }
    }

    unsafe fn not_counted(_: NonNull<JobHeader>) {}

    unsafe fn no_node(_: NonNull<JobHeader>) -> NonNull<Node> {
        unreachable!("a stack job has no node of its own (its thief's anchor has)");
    }

    /// Runs the job on its caller's thread.
    fn run_inline(&self) -> std::thread::Result<R> {
        // SAFETY: the caller owns the job again (popped back, or returned),
        // so nobody else touches it.
        let func = unsafe { (*self.func.get()).take() }.expect("a stack job runs once");
        catch_unwind(AssertUnwindSafe(func))
    }

    /// The anchor's node, once a thief made one.
    fn anchor_node(&self) -> Option<NonNull<Node>> {
        let anchor = NonNull::new(self.anchor.load(Ordering::Acquire))?;
        // SAFETY: the reference stored in `anchor` is the caller's, dropped
        // only by `take_result`.
        Some(unsafe { lineage::node_of(anchor) })
    }

    /// Gets the job back on its caller's worker: pops it if it is still
    /// there, else waits for whoever took it.
    fn join(&self, worker: &WorkerThread, header: NonNull<JobHeader>) -> std::thread::Result<R> {
        loop {
            match worker.deque().pop() {
                Some(job) if job.header() == header => return self.run_inline(),
                // Something the first closure queued and left: not this
                // wait's to run (it is not the second closure's work).
                Some(other) => other.reject(),
                None => break,
            }
        }
        let ran_inline = Cell::new(false);
        let inline = Cell::new(None);
        worker.wait_until(
            &Awaited {
                node: &|| self.anchor_node(),
                done: &|| ran_inline.get() || self.state.load(Ordering::Acquire) == DONE,
                help_self: &|| {
                    if self.state.load(Ordering::Acquire) != RETURNED {
                        return false;
                    }
                    inline.set(Some(self.run_inline()));
                    ran_inline.set(true);
                    true
                },
            },
            None,
        );
        match inline.into_inner() {
            Some(result) => result,
            None => self.take_result(),
        }
    }

    /// The result of a job that another thread ran, once it is `DONE`.
    fn take_result(&self) -> std::thread::Result<R> {
        if let Some(anchor) = NonNull::new(self.anchor.swap(ptr::null_mut(), Ordering::Acquire)) {
            // SAFETY: the thief stored this reference for the caller.
            drop(unsafe { UnitRef::from_owned(anchor) });
        }
        // SAFETY: `DONE` was seen with `Acquire`: the thief wrote the result
        // before, and touches the job no more.
        unsafe { (*self.result.get()).take() }.expect("a finished stack job has a result")
    }

    /// Blocks a thread outside the pool until a worker ran the job.
    fn wait_outside(&self) -> std::thread::Result<R> {
        let latch = self.outside.as_ref().expect("an outside job has a latch");
        let mut locked = lock(&latch.lock);
        while self.state.load(Ordering::Acquire) != DONE {
            locked = wait(&latch.done, locked);
        }
        drop(locked);
        self.take_result()
    }
}

/// The results of two closures that both ran, or the panic to resume: the
/// first closure's if both panicked.
fn both<RA, RB>(a: std::thread::Result<RA>, b: std::thread::Result<RB>) -> (RA, RB) {
    match (a, b) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(panic), _) | (Ok(_), Err(panic)) => resume_unwind(panic),
    }
}

/// `fork_join` on the calling worker.
pub(crate) fn join_on<A, B, RA, RB>(worker: &WorkerThread, a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    let job_b = StackJob::new(b, false);
    // SAFETY: `job::erase`, the fork_join case: this frame holds the job
    // and does not return before the job is popped back and run here, or
    // its state is `DONE`; the abort guard below keeps it from unwinding
    // meanwhile. Whoever runs the job touches it last when it sets `DONE`.
    let header = unsafe { job::erase(&job_b) };
    // SAFETY: a fresh reference to the live job.
    let queued = unsafe { JobRef::from_raw(header) };
    if worker
        .deque()
        .push(queued, lineage::current_bloom())
        .is_err()
    {
        // A full deque: this recursion is deep enough; run both here.
        let a = catch_unwind(AssertUnwindSafe(a));
        return both(a, job_b.run_inline());
    }
    worker.registry.notify_new_fork();
    let guard = AbortOnUnwind("fork_join, while its second closure may run on another thread,");
    let a = catch_unwind(AssertUnwindSafe(a));
    let b = job_b.join(worker, header);
    guard.disarm();
    both(a, b)
}

/// Runs `f` on a worker of `registry` from a thread that is not one of its
/// workers, blocking until it is done.
pub(crate) fn in_worker_cold<F, R>(registry: &Arc<Registry>, f: F) -> R
where
    F: FnOnce(&WorkerThread) -> R + Send,
    R: Send,
{
    let job = StackJob::new(
        move || f(WorkerThread::current().expect("a queued job runs on a worker")),
        true,
    );
    // SAFETY: `job::erase`, the fork_join case: this frame holds the job and
    // blocks below, under an abort guard, until a worker set `DONE` (under
    // the latch's lock, its last touch of the job).
    let header = unsafe { job::erase(&job) };
    let guard = AbortOnUnwind("fork_join, while a worker runs it for a thread outside the pool,");
    // SAFETY: a fresh reference to the live job.
    registry.inject(unsafe { JobRef::from_raw(header) });
    let result = job.wait_outside();
    guard.disarm();
    match result {
        Ok(value) => value,
        Err(panic) => resume_unwind(panic),
    }
}

/// `fork_join` on `registry`: in place on one of its workers, else through
/// its injector.
pub(crate) fn fork_join_in<A, B, RA, RB>(registry: &Arc<Registry>, a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    match WorkerThread::current_of(registry) {
        Some(worker) => join_on(worker, a, b),
        None => in_worker_cold(registry, move |worker| join_on(worker, a, b)),
    }
}
