//! What a queued job is, to the scheduler: a thin pointer to a header that
//! names the job's operations, and the one place where a job's lifetime is
//! erased.
//!
//! Three kinds of job share this shape: the second half of a `fork_join`,
//! which lives on its caller's stack ([`crate::join`]); a batch or a single
//! task, which live in a reference-counted allocation ([`crate::engine`]);
//! and the lineage records that stand for work taken by another thread
//! ([`crate::lineage`]). Queues hold [`JobRef`]s, which are `'static`; each
//! job's own code keeps its real type and lifetime.

use std::ptr::NonNull;

use crate::error::TaskErrorKind;
use crate::primitive::AtomicU64;

/// The first field of every job (`#[repr(C)]`), so that a pointer to the job
/// is a pointer to its header.
#[repr(C)]
pub(crate) struct JobHeader {
    pub(crate) vtable: &'static JobVTable,
}

/// The operations of one kind of job. Functions a kind does not have are
/// `None` (a stack job has no reference count and no scope).
pub(crate) struct JobVTable {
    /// Runs the job on the calling worker (a stack job: all of it; a batch:
    /// one chunk), consuming the reference.
    pub(crate) execute: unsafe fn(NonNull<JobHeader>),
    /// Where the job stands in the tree of work: its own lineage node, if it
    /// has one, and the node of the work that submitted it.
    pub(crate) lineage: unsafe fn(NonNull<JobHeader>) -> Lineage,
    /// The job's own node (heap jobs only: every one has a node), found
    /// without looking at its parent.
    pub(crate) node: unsafe fn(NonNull<JobHeader>) -> NonNull<Node>,
    /// The thread that took the job will not run it (it is not work the
    /// thread may run while it waits); consumes the reference.
    pub(crate) reject: unsafe fn(NonNull<JobHeader>),
    /// Reference counting of heap jobs: take one more reference, drop one.
    pub(crate) retain: unsafe fn(NonNull<JobHeader>),
    pub(crate) drop_ref: unsafe fn(NonNull<JobHeader>),
    /// What a scope needs from the work submitted to it (heap jobs only).
    pub(crate) unit: Option<&'static UnitOps>,
}

/// What a scope does with its units (batches and single tasks) without
/// knowing their types.
pub(crate) struct UnitOps {
    /// Marks every unclaimed task as failed with `kind` (cancelled, pool
    /// broken) so that it never starts. Returns how many tasks it marked.
    pub(crate) fail_unclaimed: unsafe fn(NonNull<JobHeader>, TaskErrorKind) -> usize,
    /// Drops the task closure, every input never run and every result never
    /// taken. Idempotent. Only called when no task of the unit can run any
    /// more and no handle can read a result any more.
    pub(crate) release: unsafe fn(NonNull<JobHeader>),
    /// A description of the first panic of this unit, if some task panicked
    /// and no handle ever reported a failure.
    pub(crate) unobserved_panic: unsafe fn(NonNull<JobHeader>) -> Option<String>,
    /// Whether the unit's contents were released (every task finished and
    /// its handle is gone).
    pub(crate) is_released: unsafe fn(NonNull<JobHeader>) -> bool,
    /// Whether the scope can forget this unit early: released, and with no
    /// panic left to re-raise.
    pub(crate) is_settled: unsafe fn(NonNull<JobHeader>) -> bool,
    /// Whether some task is still unclaimed.
    pub(crate) has_unclaimed: unsafe fn(NonNull<JobHeader>) -> bool,
    /// Claims and runs tasks on the calling thread until none is left to
    /// claim (the blocking lane's way of running a unit).
    pub(crate) run_here: unsafe fn(NonNull<JobHeader>),
    /// The link the unit carries for its scope's list of units.
    pub(crate) scope_link:
        unsafe fn(NonNull<JobHeader>) -> *const crate::primitive::AtomicPtr<JobHeader>,
}

/// A job's place in the tree of work (see [`crate::lineage`]).
#[derive(Clone, Copy)]
pub(crate) struct Lineage {
    /// The job's own node: the work it stands for, for a waiter on it.
    pub(crate) node: Option<NonNull<Node>>,
    /// The node of the work that submitted it.
    pub(crate) parent: Option<NonNull<Node>>,
}

/// A lineage node: one piece of work that other threads may wait for while
/// it runs (a batch, a single task, a scope, a `fork_join` half taken by
/// another thread).
///
/// Nodes live inside heap jobs and are immutable once published, except
/// for `sleeping`. A node keeps its parent alive (a counted reference), so a
/// chain of parents from a live node is always readable.
pub(crate) struct Node {
    /// The work that submitted this one.
    pub(crate) parent: Option<UnitRef>,
    /// A 64-bit summary of this node and its ancestors: one bit per node,
    /// chosen at random. A descendant of node `n` has every bit of `n.bit`
    /// in its bloom; the converse may fail (a false positive), so a bloom
    /// only filters, and the chain of parents decides.
    pub(crate) bloom: u64,
    /// This node's own bit.
    pub(crate) bit: u64,
    /// For a unit (a batch or a single task), the address of its scope's
    /// node, compared and never dereferenced (the unit keeps its scope
    /// alive, so the address is not reused meanwhile); 0 for other nodes.
    pub(crate) scope: usize,
    /// Workers asleep while they wait for this work, one bit per worker
    /// (bit 63 for every worker of index 63 and above): whoever adds work
    /// below this node, or finishes it, wakes them.
    pub(crate) sleeping: AtomicU64,
}

/// An owned, counted reference to a heap job (a batch, a single task, a
/// scope, a lineage record). Dropping it drops the reference.
pub(crate) struct UnitRef(NonNull<JobHeader>);

// SAFETY: heap jobs are `Send + Sync` (every kind is built from `Send +
// Sync` parts and shared only through its own synchronization); the
// reference count is atomic.
unsafe impl Send for UnitRef {}
// SAFETY: as above.
unsafe impl Sync for UnitRef {}

impl UnitRef {
    /// Takes over one reference that `header` already owns.
    ///
    /// # Safety
    ///
    /// `header` points to a live heap job and the caller gives up one
    /// counted reference to it.
    pub(crate) unsafe fn from_owned(header: NonNull<JobHeader>) -> UnitRef {
        UnitRef(header)
    }

    /// A new counted reference to the live heap job at `header`.
    ///
    /// # Safety
    ///
    /// `header` points to a heap job that stays alive for the call (someone
    /// holds a reference).
    pub(crate) unsafe fn retain(header: NonNull<JobHeader>) -> UnitRef {
        // SAFETY: alive (caller's promise); retain is this kind's own count.
        unsafe { ((*header.as_ptr()).vtable.retain)(header) };
        UnitRef(header)
    }

    pub(crate) fn header(&self) -> NonNull<JobHeader> {
        self.0
    }

    /// Gives up ownership of the reference without dropping it.
    pub(crate) fn into_raw(self) -> NonNull<JobHeader> {
        let header = self.0;
        std::mem::forget(self);
        header
    }

    pub(crate) fn vtable(&self) -> &'static JobVTable {
        // SAFETY: the reference keeps the job alive.
        unsafe { (*self.0.as_ptr()).vtable }
    }

    /// The unit's lineage node.
    pub(crate) fn node(&self) -> &Node {
        // SAFETY: the reference keeps the job, and so its node, alive; every
        // heap job has a node.
        unsafe { &*(self.vtable().node)(self.0).as_ptr() }
    }

    pub(crate) fn unit(&self) -> &'static UnitOps {
        self.vtable()
            .unit
            .expect("only units (batches, single tasks) are registered with scopes")
    }

    pub(crate) fn fail_unclaimed(&self, kind: TaskErrorKind) -> usize {
        // SAFETY: a live reference; the unit's own operation.
        unsafe { (self.unit().fail_unclaimed)(self.0, kind) }
    }

    pub(crate) fn release(&self) {
        // SAFETY: a live reference; callers only release when the contract
        // of `UnitOps::release` holds.
        unsafe { (self.unit().release)(self.0) }
    }

    pub(crate) fn unobserved_panic(&self) -> Option<String> {
        // SAFETY: a live reference.
        unsafe { (self.unit().unobserved_panic)(self.0) }
    }

    pub(crate) fn is_released(&self) -> bool {
        // SAFETY: a live reference.
        unsafe { (self.unit().is_released)(self.0) }
    }

    pub(crate) fn is_settled(&self) -> bool {
        // SAFETY: a live reference.
        unsafe { (self.unit().is_settled)(self.0) }
    }

    pub(crate) fn has_unclaimed(&self) -> bool {
        // SAFETY: a live reference.
        unsafe { (self.unit().has_unclaimed)(self.0) }
    }

    pub(crate) fn run_here(&self) {
        // SAFETY: a live reference.
        unsafe { (self.unit().run_here)(self.0) }
    }
}

impl Clone for UnitRef {
    fn clone(&self) -> UnitRef {
        // SAFETY: this reference keeps the job alive during the call.
        unsafe { UnitRef::retain(self.0) }
    }
}

impl Drop for UnitRef {
    fn drop(&mut self) {
        // SAFETY: this reference owns one count, given up here.
        unsafe { (self.vtable().drop_ref)(self.0) }
    }
}

/// A job in a queue: a pointer to its header. For a heap job it owns one
/// counted reference; for a stack job it borrows the job, which its owner
/// keeps alive until the job has run (see [`crate::join`]).
pub(crate) struct JobRef(NonNull<JobHeader>);

// SAFETY: a job reference is handed from thread to thread by the queues;
// every kind of job is built to be run by any thread (its parts are `Send`)
// and synchronizes its own state.
unsafe impl Send for JobRef {}

impl JobRef {
    /// # Safety
    ///
    /// As for [`erase`]: the pointer came from it, or from a `JobRef` given
    /// up with [`JobRef::into_raw`].
    pub(crate) unsafe fn from_raw(header: NonNull<JobHeader>) -> JobRef {
        JobRef(header)
    }

    pub(crate) fn into_raw(self) -> NonNull<JobHeader> {
        self.0
    }

    pub(crate) fn header(&self) -> NonNull<JobHeader> {
        self.0
    }

    fn vtable(&self) -> &'static JobVTable {
        // SAFETY: a queued job is alive until it has been run or rejected.
        unsafe { (*self.0.as_ptr()).vtable }
    }

    /// Runs the job on the calling worker.
    pub(crate) fn execute(self) {
        // SAFETY: the job is alive until run, and this consumes the reference.
        unsafe { (self.vtable().execute)(self.0) }
    }

    /// Gives the job back without running it (see [`JobVTable::reject`]).
    pub(crate) fn reject(self) {
        // SAFETY: as for `execute`.
        unsafe { (self.vtable().reject)(self.0) }
    }

    /// The job's lineage.
    pub(crate) fn lineage(&self) -> Lineage {
        // SAFETY: alive while queued or held.
        unsafe { (self.vtable().lineage)(self.0) }
    }
}

/// Forgets the lifetime of a job so that `'static` queues can hold it.
///
/// This is the only place where poolscope erases a lifetime. Two callers
/// turn their jobs into queue entries through it, each with its own
/// guarantee that nothing borrowed is touched after it ends:
///
/// - **Scopes** ([`crate::scope`] submission, for batches and single tasks
///   of lifetime `'scope`): the scope function does not return before every
///   task of the job has finished (the scope's pending count reached zero);
///   it waits for this on every exit path, panics included, under an abort
///   guard, and never relies on a destructor the user could skip. A task's
///   last touch of borrowed data (its closure, its input, its result)
///   happens before it lowers the pending count, and the job's borrowed
///   contents (closure, inputs, results) are dropped before the scope
///   returns, by the last task or by the scope's own thread. What may
///   outlive the scope is the job's header and `ManuallyDrop` storage,
///   whose drop glue touches no borrowed data.
/// - **`fork_join`** ([`crate::join`], for the stack job of its second
///   closure): the caller's stack frame, which holds the job, does not
///   return (nor unwind, under an abort guard) before the job's latch is
///   set, and the thread that runs the job touches it for the last time
///   when it sets the latch.
///
/// # Safety
///
/// `job` points to a live job whose first field is its [`JobHeader`], and
/// the caller upholds one of the two guarantees above.
pub(crate) unsafe fn erase<J>(job: *const J) -> NonNull<JobHeader> {
    // SAFETY: `job` is non-null (the caller's live job) and starts with its
    // header (`#[repr(C)]` with the header first), so the cast points at the
    // header. The cast drops whatever lifetimes `J` carries; the caller
    // guarantees, as documented above, that nothing borrowed is touched
    // after they end.
    unsafe { NonNull::new_unchecked(job as *mut JobHeader) }
}
