//! Type-erased jobs and the one place where their lifetime is erased.
//!
//! A job is a whole batch: one allocation holding the task closure, every
//! input and every result slot, with an atomic cursor that workers claim task
//! indices from. The queues of a pool hold jobs as [`JobRef`]s, which are
//! `'static`; the typed [`Batch`](crate::Batch) handle keeps the job's real
//! type and lifetime.

use crate::error::TaskErrorKind;
use crate::primitive::Arc;

/// The operations the pool and the scope need from a batch without knowing
/// its types.
pub(crate) trait Job: Send + Sync {
    /// Whether some task index is still unclaimed.
    fn has_unclaimed(&self) -> bool;

    /// Claims and runs tasks until no index is left to claim.
    fn run(&self);

    /// Marks every unclaimed task as failed with `kind` (cancelled, pool
    /// broken) so that it never starts. Returns how many tasks it marked.
    fn fail_unclaimed(&self, kind: TaskErrorKind) -> usize;

    /// Drops the task closure, every input never run and every result never
    /// taken. Idempotent. Only called when no task of the batch can run any
    /// more and no handle can read a result any more.
    fn release(&self);

    /// A description of the first panic of this batch, if some task panicked
    /// and no handle ever reported a failure.
    fn unobserved_panic(&self) -> Option<String>;

    /// Whether the scope can forget this job early: released, and with no
    /// panic left to re-raise.
    fn is_settled(&self) -> bool;
}

/// A shared, type-erased reference to a queued job.
pub(crate) type JobRef = Arc<dyn Job>;

/// Forgets the lifetime of a job so that `'static` pool queues can hold it.
///
/// # Safety
///
/// The caller (always [`Scope`](crate::Scope) submission) guarantees that:
///
/// - the job belongs to a scope, and the scope function does not return
///   before every task of the job has finished (its pending count reached
///   zero); the scope waits for this on every exit path, panics included,
///   under an abort guard, and never relies on a destructor the user could
///   skip;
/// - a task's last touch of borrowed data (its closure, its input, its
///   result) happens before it lowers the job's pending count;
/// - the scope calls [`Job::release`] on its own thread before it returns,
///   so the closure, inputs and results (the only parts of the job that may
///   borrow from `'a`) are dropped while `'a` is alive. What outlives the
///   scope is the job's header and `ManuallyDrop` storage, whose drop glue
///   touches no borrowed data.
pub(crate) unsafe fn erase<'a>(job: Arc<dyn Job + 'a>) -> JobRef {
    // SAFETY: `Arc<dyn Job + 'a>` and `Arc<dyn Job + 'static>` have the same
    // layout (a pointer and the same vtable); only the lifetime bound differs,
    // and the caller guarantees, as documented above, that nothing borrowed
    // from 'a is touched after 'a ends.
    unsafe { std::mem::transmute::<Arc<dyn Job + 'a>, Arc<dyn Job + 'static>>(job) }
}
