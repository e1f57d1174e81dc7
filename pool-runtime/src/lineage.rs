//! Which work descends from which: the tree that lets a waiting worker run
//! the work it waits for, and the work that work submitted, and nothing
//! else.
//!
//! Every piece of work that another thread may wait for while it runs has a
//! [`Node`]: a batch, a single task, a scope, and a `fork_join` half that a
//! thread other than its caller took (that thread makes an [`Anchor`] for
//! it). Each node holds a counted reference to its parent: the node of the
//! work that was running on the submitting thread (its *context*) when the
//! work was submitted. So a chain of parents from a live node is always
//! alive, and "does this job descend from the work I wait for?" is a walk
//! up the chain, comparing nodes.
//!
//! A thread's context is a thread-local: the node of the batch whose task
//! it runs, of the scope whose body it runs, of the stolen `fork_join` half
//! it runs. A `fork_join` half run by its own caller changes nothing: only
//! its caller waits for it.
//!
//! Queue entries carry their context's bloom (see [`Node::bloom`]), so a
//! waiter can skip entries that cannot descend from what it waits for
//! without touching them; the chain decides for the entries it takes.

use std::cell::Cell;
use std::ptr::NonNull;

use crate::job::{JobHeader, JobVTable, Lineage, Node, UnitRef};
use crate::primitive::{thread_local, Arc, AtomicU64, Ordering};

thread_local! {
    /// The node of the work this thread runs right now (see the module
    /// docs), as the header of the heap job that holds it.
    static CONTEXT: Cell<Option<NonNull<JobHeader>>> = const { Cell::new(None) };
    /// The bloom of `CONTEXT`'s node (0 without one), kept beside it so that
    /// a `fork_join` split reads it without reaching the node.
    static CONTEXT_BLOOM: Cell<u64> = const { Cell::new(0) };
    /// A small random generator for node bits.
    static RANDOM: Cell<u64> = const { Cell::new(0) };
}

/// A random bit for a new node (xorshift; seeded from the thread's stack
/// address and a counter, which is plenty for a filter).
fn random_bit() -> u64 {
    RANDOM.with(|state| {
        let mut x = state.get();
        if x == 0 {
            let seed = &x as *const u64 as u64;
            x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        1 << (x >> 58)
    })
}

impl Node {
    /// The node of a unit of the scope whose node is `scope`, under
    /// `parent`: the calling thread's current context, or the scope itself
    /// when the submission comes from outside any work.
    pub(crate) fn unit_in(scope: &Node, parent: UnitRef) -> Node {
        Node {
            scope: scope as *const Node as usize,
            ..Node::with_parent(Some(parent))
        }
    }

    /// A node under `parent`.
    pub(crate) fn with_parent(parent: Option<UnitRef>) -> Node {
        let bit = random_bit();
        let bloom = parent.as_ref().map_or(0, |parent| parent.node().bloom) | bit;
        Node {
            parent,
            bloom,
            bit,
            scope: 0,
            sleeping: AtomicU64::new(0),
        }
    }

    /// Whether `bloom` (an entry's, or a node's) may describe work below
    /// this node: a filter with false positives, never false negatives.
    pub(crate) fn may_contain(&self, bloom: u64) -> bool {
        bloom & self.bit == self.bit
    }

    /// Wakes the workers asleep waiting for this node's work.
    pub(crate) fn wake_sleepers(&self, wake: &dyn Fn(u32)) {
        let mut sleeping = self.sleeping.load(Ordering::SeqCst);
        while sleeping != 0 {
            let bit = sleeping.trailing_zeros();
            sleeping &= sleeping - 1;
            wake(bit);
        }
    }
}

/// The bit of worker `index` in [`Node::sleeping`].
pub(crate) fn worker_bit(index: usize) -> u64 {
    1 << index.min(63)
}

/// The header of the heap job holding the current context's node.
pub(crate) fn current() -> Option<NonNull<JobHeader>> {
    CONTEXT.with(Cell::get)
}

/// A counted reference to the current context, for a child's parent link.
pub(crate) fn current_ref() -> Option<UnitRef> {
    // SAFETY: the context is alive while it is current: whoever entered it
    // (see `enter`) keeps it alive until the guard is dropped.
    current().map(|header| unsafe { UnitRef::retain(header) })
}

/// The bloom of the current context (0 outside any work).
pub(crate) fn current_bloom() -> u64 {
    CONTEXT_BLOOM.with(Cell::get)
}

/// The node of a heap job.
///
/// # Safety
///
/// `header` is a live heap job.
pub(crate) unsafe fn node_of(header: NonNull<JobHeader>) -> NonNull<Node> {
    // SAFETY: live (caller's promise); every heap job has a node.
    unsafe { ((*header.as_ptr()).vtable.node)(header) }
}

/// Makes `header` the calling thread's context until the guard drops.
///
/// # Safety
///
/// `header` is a live heap job that the caller keeps alive until the guard
/// is dropped.
pub(crate) unsafe fn enter(header: NonNull<JobHeader>) -> Entered {
    // SAFETY: alive (caller's promise).
    let bloom = unsafe { node_of(header).as_ref().bloom };
    Entered(
        CONTEXT.with(|context| context.replace(Some(header))),
        CONTEXT_BLOOM.with(|context| context.replace(bloom)),
    )
}

/// Restores the previous context when dropped.
pub(crate) struct Entered(Option<NonNull<JobHeader>>, u64);

impl Drop for Entered {
    fn drop(&mut self) {
        CONTEXT.with(|context| context.set(self.0));
        CONTEXT_BLOOM.with(|context| context.set(self.1));
    }
}

/// Whether the work with `lineage` is `target`'s own work or descends from
/// it.
///
/// # Safety
///
/// The job `lineage` describes is alive and not finished (so its node and
/// parent, and their chains, are alive).
pub(crate) unsafe fn descends(lineage: Lineage, target: NonNull<Node>) -> bool {
    if lineage.node == Some(target) {
        return true;
    }
    let mut next = lineage.parent;
    while let Some(node) = next {
        if node == target {
            return true;
        }
        // SAFETY: each node in the chain is kept alive by its child's
        // counted reference, and the first by the live job.
        next = unsafe { node.as_ref() }
            .parent
            .as_ref()
            .map(|parent| NonNull::from(parent.node()));
    }
    false
}

/// Whether the calling code runs inside one of the tasks of the scope whose
/// node is `scope`, on whatever thread: in a task of it, in work such a task
/// submitted (a nested scope, a `fork_join` half, a batch of another scope),
/// or in a callback the scope's thread runs for a task it cancelled. The
/// scope's own body, and what the body opened or forked, is not inside a
/// task of it.
pub(crate) fn in_task_of(scope: NonNull<Node>) -> bool {
    let scope_address = scope.as_ptr() as usize;
    let Some(header) = current() else {
        return false;
    };
    // SAFETY: the context is alive while current (see `current_ref`), and a
    // live node's chain is alive.
    let mut node = unsafe { node_of(header).as_ref() };
    loop {
        if node.scope == scope_address {
            return true;
        }
        match &node.parent {
            Some(parent) => node = parent.node(),
            None => return false,
        }
    }
}

/// The node a thread makes for a `fork_join` half it took from another
/// thread's queue: the half's context while it runs there, and what the
/// half's caller waits on (and registers its sleep with).
#[repr(C)]
pub(crate) struct Anchor {
    header: JobHeader,
    node: Node,
}

impl Anchor {
    const VTABLE: JobVTable = JobVTable {
        execute: Anchor::never_queued,
        lineage: Anchor::lineage,
        node: Anchor::node,
        reject: Anchor::never_queued,
        retain: Anchor::retain,
        drop_ref: Anchor::drop_ref,
        unit: None,
    };

    /// A new anchor below `parent` (the half's submitting context), as an
    /// owned reference.
    pub(crate) fn new_ref(parent: Option<UnitRef>) -> UnitRef {
        let anchor = Arc::new(Anchor {
            header: JobHeader {
                vtable: &Anchor::VTABLE,
            },
            node: Node::with_parent(parent),
        });
        let raw = Arc::into_raw(anchor);
        // SAFETY: `Arc::into_raw` gives a live pointer owning one count, and
        // the header is the first field of a `#[repr(C)]` struct.
        unsafe { UnitRef::from_owned(NonNull::new_unchecked(raw as *mut JobHeader)) }
    }

    unsafe fn never_queued(_: NonNull<JobHeader>) {
        unreachable!("an anchor is never queued");
    }

    unsafe fn lineage(header: NonNull<JobHeader>) -> Lineage {
        // SAFETY: the header is the first field of a live anchor.
        let anchor = unsafe { &*(header.as_ptr() as *const Anchor) };
        Lineage {
            node: Some(NonNull::from(&anchor.node)),
            parent: anchor.node.parent.as_ref().map(|p| NonNull::from(p.node())),
        }
    }

    unsafe fn node(header: NonNull<JobHeader>) -> NonNull<Node> {
        // SAFETY: the header is the first field of a live anchor.
        NonNull::from(unsafe { &(*(header.as_ptr() as *const Anchor)).node })
    }

    unsafe fn retain(header: NonNull<JobHeader>) {
        // SAFETY: the header is the first field of an anchor made by
        // `Arc::into_raw`, alive (the caller holds a count).
        unsafe { Arc::increment_strong_count(header.as_ptr() as *const Anchor) };
    }

    unsafe fn drop_ref(header: NonNull<JobHeader>) {
        // SAFETY: as in `retain`; the caller gives up one count.
        unsafe { drop(Arc::from_raw(header.as_ptr() as *const Anchor)) };
    }
}
