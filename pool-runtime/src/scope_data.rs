//! What a scope shares with the work submitted to it: how many units
//! (batches and single tasks) are pending, whether it is closed, the list of
//! its units, and its node in the tree of work.
//!
//! Submission takes no lock: one `fetch_add` on the state word both counts
//! the unit and reads whether the scope was closed, and one compare-exchange
//! pushes the unit on a lock-free list. The list exists for the scope's own
//! thread at its end (to drop what forgotten handles left behind, and to
//! find the panics nobody reported) and for `terminate`; it is pruned of
//! settled units once the submissions since the last pruning outnumber the
//! units that survived it (and at least every [`PRUNE_EVERY`]), so a
//! long-lived scope holds only what is still pending or still has a handle,
//! and pruning costs O(1) per submission however many units stay pending.
//!
//! ## Memory ordering
//!
//! `state` is `pending << 3 | ORPHANED | TERMINATED | CLOSED`. A submission raises it
//! with `SeqCst` and is refused if the value it replaced had `CLOSED`;
//! `close` sets the bit with `SeqCst`: of the two, the later one sees the
//! other's write, so a submission either happens before the close or is
//! refused. The thread that finishes a unit lowers the count with `SeqCst`
//! after its last touch of the unit's borrowed data; the one that brings it
//! to zero then wakes the waiters: outside threads through `waiters` (the
//! store-buffering hand-shake of `crate::engine`) and the condition
//! variable, waiting workers through the node's sleeping bits.
//!
//! List pushes publish the unit with a `Release` compare-exchange; detaching
//! the list swaps the head with `Acquire`, so the detacher owns every node it
//! got, and splices the survivors back with another compare-exchange.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};

use crate::error::{SubmitError, TaskErrorKind};
use crate::job::{JobHeader, JobVTable, Lineage, Node, UnitRef};
use crate::primitive::{
    lock, seq_cst_hand_shake, wait, Arc, AtomicPtr, AtomicUsize, Condvar, Mutex, Ordering,
};
use crate::registry::Registry;
use crate::unwind;
use crate::worker::{Awaited, WorkerThread};

const CLOSED: usize = 1;
const TERMINATED: usize = 2;
/// A pool's owned work whose pool was dropped from inside one of its own
/// tasks, which could not wait: the last unit to finish settles it.
const ORPHANED: usize = 4;
const SHIFT: u32 = 3;
const ONE: usize = 1 << SHIFT;

/// The fewest submissions between two prunings of the unit list.
const PRUNE_EVERY: usize = 256;

/// The shared state of one scope, kept alive by its units.
#[repr(C)]
pub(crate) struct ScopeData {
    header: JobHeader,
    node: Node,
    registry: Arc<Registry>,
    state: AtomicUsize,
    /// The units submitted and not pruned, newest first, linked through
    /// each unit's own link (`UnitOps::scope_link`).
    units: AtomicPtr<JobHeader>,
    submitted: AtomicUsize,
    /// The submission count at which the list is pruned next (`usize::MAX`
    /// while a pruning runs).
    prune_at: AtomicUsize,
    /// Threads outside the pool blocked until `pending` is zero.
    waiters: AtomicUsize,
    wait_lock: Mutex<()>,
    changed: Condvar,
    drop_panics: Mutex<Vec<String>>,
}

/// How a unit links itself into its scope's list: the link it carries.
pub(crate) type ScopeLink = AtomicPtr<JobHeader>;

impl ScopeData {
    const VTABLE: JobVTable = JobVTable {
        execute: ScopeData::never_queued,
        lineage: ScopeData::lineage,
        node: ScopeData::node_of_header,
        reject: ScopeData::never_queued,
        retain: ScopeData::retain,
        drop_ref: ScopeData::drop_ref,
        unit: None,
    };

    /// A new scope on `registry`, below the calling thread's current work.
    pub(crate) fn new(registry: Arc<Registry>) -> Arc<ScopeData> {
        ScopeData::with_parent(registry, crate::lineage::current_ref())
    }

    /// The owned work of a pool: below nothing, whoever builds the pool,
    /// since it outlives any task that could be current.
    pub(crate) fn new_root(registry: Arc<Registry>) -> Arc<ScopeData> {
        ScopeData::with_parent(registry, None)
    }

    fn with_parent(registry: Arc<Registry>, parent: Option<UnitRef>) -> Arc<ScopeData> {
        Arc::new(ScopeData {
            header: JobHeader {
                vtable: &ScopeData::VTABLE,
            },
            node: Node::with_parent(parent),
            registry,
            state: AtomicUsize::new(0),
            units: AtomicPtr::new(ptr::null_mut()),
            submitted: AtomicUsize::new(0),
            prune_at: AtomicUsize::new(PRUNE_EVERY),
            waiters: AtomicUsize::new(0),
            wait_lock: Mutex::new(()),
            changed: Condvar::new(),
            drop_panics: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub(crate) fn node(&self) -> &Node {
        &self.node
    }

    /// The scope as a lineage context.
    ///
    /// Made from the `Arc`, not from `&self.header`: the vtable functions
    /// cast the pointer back to the scope and read its other fields, and
    /// `retain` / `drop_ref` reach the `Arc`'s counts before it, which a
    /// pointer made from a reference to one field may not (miri's Stacked
    /// Borrows reports exactly that). `#[repr(C)]` with the header first
    /// makes the cast point at it.
    pub(crate) fn header(this: &Arc<ScopeData>) -> NonNull<JobHeader> {
        // SAFETY: `Arc::as_ptr` is never null.
        unsafe { NonNull::new_unchecked(Arc::as_ptr(this) as *mut JobHeader) }
    }

    /// A counted reference to the scope, as the parent of a unit submitted
    /// from outside any work (a thread of the user's own, or the owner of
    /// a pool's owned work).
    pub(crate) fn unit_ref(this: &Arc<ScopeData>) -> UnitRef {
        // SAFETY: the scope lives in this `Arc`, alive for the call.
        unsafe { UnitRef::retain(ScopeData::header(this)) }
    }

    unsafe fn never_queued(_: NonNull<JobHeader>) {
        unreachable!("a scope is never queued");
    }

    unsafe fn lineage(header: NonNull<JobHeader>) -> Lineage {
        // SAFETY: the header is the first field of a live scope.
        let scope = unsafe { &*(header.as_ptr() as *const ScopeData) };
        Lineage {
            node: Some(NonNull::from(&scope.node)),
            parent: scope.node.parent.as_ref().map(|p| NonNull::from(p.node())),
        }
    }

    unsafe fn node_of_header(header: NonNull<JobHeader>) -> NonNull<Node> {
        // SAFETY: the header is the first field of a live scope.
        NonNull::from(unsafe { &(*(header.as_ptr() as *const ScopeData)).node })
    }

    unsafe fn retain(header: NonNull<JobHeader>) {
        // SAFETY: scopes live in an `Arc` (see `new`), alive while counted.
        unsafe { Arc::increment_strong_count(header.as_ptr() as *const ScopeData) };
    }

    unsafe fn drop_ref(header: NonNull<JobHeader>) {
        // SAFETY: as in `retain`; the caller gives up one count.
        unsafe { drop(Arc::from_raw(header.as_ptr() as *const ScopeData)) };
    }

    /// Drops `value`, keeping a panic in its destructor for the scope end.
    pub(crate) fn drop_guarded<V>(&self, value: V) {
        if !std::mem::needs_drop::<V>() {
            return;
        }
        if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(value))) {
            let message = unwind::message(&*payload);
            unwind::drop_payload(payload);
            lock(&self.drop_panics).push(format!(
                "a destructor panicked while dropping a task's closure, input or result: {message}"
            ));
        }
    }

    /// Counts a new unit in, or refuses it if the scope is closed.
    pub(crate) fn count_in(&self) -> Result<(), SubmitError> {
        let before = self.state.fetch_add(ONE, Ordering::SeqCst);
        if before & CLOSED == 0 {
            return Ok(());
        }
        self.unit_finished();
        Err(Self::refusal(before))
    }

    /// Whether a unit would be refused now (for an empty batch, which is not
    /// counted).
    pub(crate) fn check_open(&self) -> Result<(), SubmitError> {
        let state = self.state.load(Ordering::SeqCst);
        if state & CLOSED == 0 {
            Ok(())
        } else {
            Err(Self::refusal(state))
        }
    }

    fn refusal(state: usize) -> SubmitError {
        if state & TERMINATED != 0 {
            SubmitError::Terminated
        } else {
            SubmitError::Closed
        }
    }

    /// A unit finished its last task (after its last touch of borrowed
    /// data); the last one wakes whoever waits for the scope.
    pub(crate) fn unit_finished(&self) {
        let before = self.state.fetch_sub(ONE, Ordering::SeqCst);
        if before >> SHIFT != 1 {
            return;
        }

        // A waiter counts itself before its last look at the count: either
        // it sees zero, or this read sees it counted (see the module docs).
        seq_cst_hand_shake();
        if self.waiters.load(Ordering::SeqCst) > 0 {
            drop(lock(&self.wait_lock));
            self.changed.notify_all();
        }
        self.node
            .wake_sleepers(&|bit| self.registry.wake_worker_bit(bit));
        if before & ORPHANED != 0 {
            self.settle_orphan();
        }
    }

    pub(crate) fn pending(&self) -> usize {
        self.state.load(Ordering::SeqCst) >> SHIFT
    }

    pub(crate) fn close(&self) {
        self.state.fetch_or(CLOSED, Ordering::SeqCst);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.load(Ordering::SeqCst) & CLOSED != 0
    }

    pub(crate) fn is_terminated(&self) -> bool {
        self.state.load(Ordering::Acquire) & TERMINATED != 0
    }

    /// Puts a unit on the list (see the module docs).
    pub(crate) fn register(&self, unit: &UnitRef, link: &ScopeLink) {
        let raw = unit.clone().into_raw();
        let mut head = self.units.load(Ordering::Relaxed);
        loop {
            link.store(head, Ordering::Relaxed);
            match self.units.compare_exchange_weak(
                head,
                raw.as_ptr(),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => head = actual,
            }
        }
        let submitted = self.submitted.fetch_add(1, Ordering::Relaxed) + 1;
        let due = self.prune_at.load(Ordering::Relaxed);
        if submitted >= due
            && self
                .prune_at
                .compare_exchange(due, usize::MAX, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let survivors = self.retain_units(|unit| !unit.is_settled());
            // Next time once as many new units came as survived: each
            // pruning walks at most twice the submissions it follows.
            self.prune_at
                .store(submitted + survivors.max(PRUNE_EVERY), Ordering::Relaxed);
        }
    }

    /// Detaches the whole list.
    fn take_units(&self) -> Vec<UnitRef> {
        let mut next = self.units.swap(ptr::null_mut(), Ordering::Acquire);
        let mut units = Vec::new();
        while let Some(header) = NonNull::new(next) {
            // SAFETY: the list owns one count of each unit on it (taken in
            // `register`), and detaching gave this thread the whole list.
            let unit = unsafe { UnitRef::from_owned(header) };
            next = unit_link(&unit).load(Ordering::Relaxed);
            units.push(unit);
        }
        units
    }

    /// Keeps on the list only the units for which `keep` holds (calling it
    /// on every unit); drops the rest of the list's references. Returns how
    /// many were kept.
    fn retain_units(&self, mut keep: impl FnMut(&UnitRef) -> bool) -> usize {
        let mut next = self.units.swap(ptr::null_mut(), Ordering::Acquire);
        // The survivors, relinked in their order as they are walked.
        let mut first: *mut JobHeader = ptr::null_mut();
        let mut last: *const ScopeLink = ptr::null();
        let mut kept = 0;
        while let Some(header) = NonNull::new(next) {
            // SAFETY: the list owns one count of each unit on it (taken in
            // `register`), and detaching gave this thread the whole list.
            let unit = unsafe { UnitRef::from_owned(header) };
            let link = unit_link(&unit) as *const ScopeLink;
            // SAFETY: `unit` keeps the link alive.
            next = unsafe { &*link }.load(Ordering::Relaxed);
            if !keep(&unit) {
                // Drops the list's count; `next` was read before.
                continue;
            }
            match NonNull::new(last as *mut ScopeLink) {
                None => first = header.as_ptr(),
                Some(previous) => {
                    // SAFETY: the previous survivor's link, kept alive by the
                    // count the list owns again.
                    let previous = unsafe { previous.as_ref() };
                    previous.store(header.as_ptr(), Ordering::Relaxed);
                }
            }
            last = link;
            kept += 1;
            // The list owns this count again.
            let _ = unit.into_raw();
        }
        let Some(last) = NonNull::new(last as *mut ScopeLink) else {
            return 0;
        };
        // SAFETY: the last survivor, kept alive by the list's count.
        let last_link = unsafe { last.as_ref() };
        // Splice the survivors in front of whatever was pushed meanwhile.
        let mut head = self.units.load(Ordering::Relaxed);
        loop {
            last_link.store(head, Ordering::Relaxed);
            match self.units.compare_exchange_weak(
                head,
                first,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => head = actual,
            }
        }
        kept
    }

    /// Closes the scope and cancels every task that has not started.
    pub(crate) fn terminate(&self) {
        self.state.fetch_or(CLOSED | TERMINATED, Ordering::SeqCst);
        self.retain_units(|unit| {
            unit.fail_unclaimed(TaskErrorKind::Cancelled);
            true
        });
    }

    /// Waits until every unit submitted to the scope finished. On one of
    /// the pool's workers, runs the scope's work meanwhile (see
    /// `crate::worker`).
    pub(crate) fn wait_all(&self) {
        if self.pending() == 0 {
            return;
        }
        if let Some(worker) = WorkerThread::current_of(&self.registry) {
            let node = NonNull::from(&self.node);
            worker.wait_until(
                &Awaited {
                    node: &|| Some(node),
                    done: &|| self.pending() == 0,
                    help_self: &|| self.help_units(),
                },
                None,
            );
            return;
        }
        let mut guard = lock(&self.wait_lock);
        loop {
            self.waiters.fetch_add(1, Ordering::SeqCst);
            seq_cst_hand_shake();
            if self.pending() == 0 {
                self.waiters.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            guard = wait(&self.changed, guard);
            self.waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Runs the unclaimed tasks of the scope's own units, for a wait on one
    /// of the pool's workers: a unit submitted from outside any work (a
    /// pool's owned work from its owner's thread) descends from the scope
    /// only through the list, not through a queue the waiter would search.
    /// Returns whether there was any.
    fn help_units(&self) -> bool {
        let mut unclaimed = Vec::new();
        self.retain_units(|unit| {
            if unit.has_unclaimed() {
                unclaimed.push(unit.clone());
            }
            true
        });
        for unit in &unclaimed {
            unit.run_here();
        }
        !unclaimed.is_empty()
    }

    /// After the last task finished: releases every unit on this thread and
    /// returns what must be re-raised (panics no handle reported, panicking
    /// destructors).
    pub(crate) fn settle(&self) -> Option<String> {
        let units = self.take_units();
        let mut unreported: Vec<String> =
            units.iter().filter_map(UnitRef::unobserved_panic).collect();
        for unit in &units {
            unit.release();
        }
        drop(units);
        unreported.append(&mut lock(&self.drop_panics));
        report(unreported)
    }

    /// For a pool's owned work, whose handles may outlive a `join`: drops
    /// from the list every unit whose handle is gone (released) and returns
    /// what must be re-raised of those; a unit whose handle is alive stays,
    /// its failures left to its holder.
    pub(crate) fn settle_released(&self) -> Option<String> {
        let mut unreported = Vec::new();
        self.retain_units(|unit| {
            if !unit.is_released() {
                return true;
            }
            unreported.extend(unit.unobserved_panic());
            false
        });
        unreported.append(&mut lock(&self.drop_panics));
        report(unreported)
    }

    /// Drops the list's references to the units still on it (whose handles
    /// are alive: each releases its batch when it goes), so that the list
    /// keeps nothing alive once its owner is gone.
    pub(crate) fn detach_units(&self) {
        drop(self.take_units());
    }

    /// The pool of this owned work was dropped from inside one of its own
    /// tasks, which cannot wait for the rest: marks the work so that its
    /// last unit settles it. Returns whether nothing was pending (the
    /// caller settles it then).
    pub(crate) fn orphan(&self) -> bool {
        self.state.fetch_or(ORPHANED | CLOSED, Ordering::SeqCst) >> SHIFT == 0
    }

    /// The last unit of orphaned owned work finished, on this thread: what
    /// nobody reported goes to standard error (nobody is left to re-raise
    /// it), and the pool's threads are let go.
    pub(crate) fn settle_orphan(&self) {
        if let Some(message) = self.settle_released() {
            eprintln!(
                "{message} (the pool was dropped inside one of its own tasks, so nothing could re-raise this)"
            );
        }
        self.detach_units();
        self.registry.remove_user();
    }
}

/// The message that re-raises `unreported` panics, if there are any.
fn report(unreported: Vec<String>) -> Option<String> {
    if unreported.is_empty() {
        return None;
    }
    let mut message = format!(
        "poolscope: {} task panic{} never reported by a batch handle (call get(), successful() or failures() on the handle to handle them): ",
        unreported.len(),
        if unreported.len() == 1 { " was" } else { "s were" }
    );
    message.push_str(&unreported.join("; "));
    Some(message)
}

/// The link a unit carries for its scope's list.
fn unit_link(unit: &UnitRef) -> &ScopeLink {
    // SAFETY: the reference keeps the unit alive for the borrow; every unit
    // has a link.
    unsafe { &*(unit.unit().scope_link)(unit.header()) }
}
