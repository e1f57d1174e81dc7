//! The wrappers `par_batch!` moves values to and from workers in: each is
//! made only where a value was checked to be `Send` (or `Sync`), so that a
//! value that is not is reported once, at the user's expression, and not
//! again by every bound the batch passes through on its way to the runtime.

use std::fmt;

/// A value on its way to a worker (an argument, a receiver) or back from
/// one (a block's result), checked to be `Send` where the user wrote it
/// (see `SentToWorker` and `SentBack`).
pub struct Sent<T>(T);

impl<T> Sent<T> {
    /// Only for the impls of `SentToWorker` and `SentBack`, which exist for
    /// `T: Send` only.
    #[inline(always)]
    pub(crate) fn new(value: T) -> Self {
        Sent(value)
    }

    /// The value, on the thread it was sent to.
    #[inline(always)]
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Sent<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sent")
    }
}

// SAFETY: a `Sent<T>` is made only by `Sent::new` (its field is private),
// which only the impls of `SentToWorker` and `SentBack` call, and both
// impls exist only for `T: Send`; so every `Sent<T>` holds a `Send` value.
unsafe impl<T> Send for Sent<T> {}

/// The callee of a comprehension, called by every task of the batch, on
/// any worker, at once (see `SharedWithWorkers`).
pub struct Shared<T>(T);

impl<T> Shared<T> {
    /// Only for the impl of `SharedWithWorkers`, which exists for
    /// `T: Send + Sync` only.
    #[inline(always)]
    pub(crate) fn new(value: T) -> Self {
        Shared(value)
    }

    /// The callee.
    #[inline(always)]
    pub fn get(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Shared")
    }
}

// SAFETY: a `Shared<T>` is made only by `Shared::new` (private field),
// which only the impl of `SharedWithWorkers` calls, and that impl exists
// only for `T: Send + Sync`.
unsafe impl<T> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Shared<T> {}
