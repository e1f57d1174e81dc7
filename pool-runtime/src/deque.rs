//! Each worker's queue of jobs: the worker pushes and pops at the bottom
//! (newest first, so a `fork_join` finds its second half where it left it),
//! other threads steal at the top (oldest first: the biggest pieces of a
//! divide-and-conquer).
//!
//! A Chase–Lev deque over a fixed ring of slots. A slot holds a job pointer
//! and the bloom of the context it was pushed from (see
//! [`crate::lineage`]), so a thief that may only take certain work (a
//! waiting worker) can look at the oldest entry's bloom before it takes it.
//! A full deque refuses the push and the caller does without it (runs the
//! job at once, or puts it in the pool's shared queue).
//!
//! ## Memory ordering
//!
//! The owner writes a slot (`Relaxed`), then publishes it by storing
//! `bottom` (`Release`); a thief loads `top` (`Acquire`), fences, loads
//! `bottom` (`Acquire`), reads the slot, and claims it by a `SeqCst`
//! compare-exchange of `top`. A slot read while the owner overwrites it
//! (after wrapping round) belongs to an index some other thief already
//! claimed, so the thief's compare-exchange fails and the torn read is
//! dropped. The owner's pop lowers `bottom`, fences (`SeqCst`), then reads
//! `top`: of a pop and a steal racing for the last entry, at least one sees
//! the other, and the compare-exchange of `top` picks one winner.
//! `top` only grows, so the compare-exchange cannot be fooled by ABA.

use std::ptr::NonNull;

use crossbeam_utils::CachePadded;

use crate::job::{JobHeader, JobRef};
use crate::primitive::{fence, AtomicIsize, AtomicPtr, AtomicU64, Ordering};

/// How many jobs a worker's deque holds (a power of two). Deeper recursion
/// than this on one worker runs the extra halves in place; more queued
/// batches than this go to the pool's shared queue.
#[cfg(not(loom))]
const CAPACITY: usize = 4096;
#[cfg(loom)]
const CAPACITY: usize = 4;

struct Slot {
    job: AtomicPtr<JobHeader>,
    bloom: AtomicU64,
}

pub(crate) struct Deque {
    top: CachePadded<AtomicIsize>,
    bottom: CachePadded<AtomicIsize>,
    slots: Box<[Slot]>,
}

/// What a steal found.
pub(crate) enum Steal {
    /// Nothing to take.
    Empty,
    /// The oldest entry's bloom did not pass the filter.
    Skipped,
    /// Another thread took the entry first; try again.
    Retry,
    /// The job, now the thief's.
    Taken(JobRef),
}

impl Deque {
    pub(crate) fn new() -> Deque {
        Deque {
            top: CachePadded::new(AtomicIsize::new(0)),
            bottom: CachePadded::new(AtomicIsize::new(0)),
            slots: (0..CAPACITY)
                .map(|_| Slot {
                    job: AtomicPtr::new(std::ptr::null_mut()),
                    bloom: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    fn slot(&self, index: isize) -> &Slot {
        &self.slots[index as usize & (CAPACITY - 1)]
    }

    /// Pushes a job at the bottom. Owner only. Gives the job back if the
    /// deque is full.
    pub(crate) fn push(&self, job: JobRef, bloom: u64) -> Result<(), JobRef> {
        let bottom = self.bottom.load(Ordering::Relaxed);
        let top = self.top.load(Ordering::Acquire);
        if bottom - top >= CAPACITY as isize {
            return Err(job);
        }
        let slot = self.slot(bottom);
        slot.job.store(job.into_raw().as_ptr(), Ordering::Relaxed);
        slot.bloom.store(bloom, Ordering::Relaxed);
        self.bottom.store(bottom + 1, Ordering::Release);
        Ok(())
    }

    /// The index the next push will use. Owner only: entries at or above a
    /// position read here were pushed after it was read.
    pub(crate) fn bottom(&self) -> isize {
        self.bottom.load(Ordering::Relaxed)
    }

    /// The bloom of the bottom entry and its index, without taking it, if
    /// there is one. Owner only.
    pub(crate) fn peek_bottom(&self) -> Option<(isize, u64)> {
        let bottom = self.bottom.load(Ordering::Relaxed);
        let top = self.top.load(Ordering::Acquire);
        if top >= bottom {
            return None;
        }
        let index = bottom - 1;
        Some((index, self.slot(index).bloom.load(Ordering::Relaxed)))
    }

    /// Pops the newest job. Owner only.
    pub(crate) fn pop(&self) -> Option<JobRef> {
        let bottom = self.bottom.load(Ordering::Relaxed) - 1;
        self.bottom.store(bottom, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let top = self.top.load(Ordering::Relaxed);
        if top > bottom {
            // Empty: undo.
            self.bottom.store(bottom + 1, Ordering::Relaxed);
            return None;
        }
        let job = self.slot(bottom).job.load(Ordering::Relaxed);
        if top == bottom {
            // The last entry: a thief may be taking it right now.
            let won = self
                .top
                .compare_exchange(top, top + 1, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok();
            self.bottom.store(bottom + 1, Ordering::Relaxed);
            if !won {
                return None;
            }
        }
        // SAFETY: the slot held a job pushed by `push` (from a `JobRef`), and
        // this thread now owns it (no thief claimed its index).
        Some(unsafe { JobRef::from_raw(NonNull::new_unchecked(job)) })
    }

    /// The bloom of the oldest entry, if there seems to be one (a hint: the
    /// entry may be taken meanwhile).
    pub(crate) fn peek_top(&self) -> Option<u64> {
        let top = self.top.load(Ordering::Acquire);
        let bottom = self.bottom.load(Ordering::Acquire);
        (top < bottom).then(|| self.slot(top).bloom.load(Ordering::Relaxed))
    }

    /// Whether the deque looks empty (a hint for thieves and sleepers).
    pub(crate) fn is_empty(&self) -> bool {
        let top = self.top.load(Ordering::Acquire);
        let bottom = self.bottom.load(Ordering::Acquire);
        top >= bottom
    }

    /// Takes the oldest job, if `accept(bloom)` holds for it. Any thread.
    pub(crate) fn steal(&self, accept: impl Fn(u64) -> bool) -> Steal {
        let top = self.top.load(Ordering::Acquire);
        fence(Ordering::SeqCst);
        let bottom = self.bottom.load(Ordering::Acquire);
        if top >= bottom {
            return Steal::Empty;
        }
        let slot = self.slot(top);
        let job = slot.job.load(Ordering::Relaxed);
        let bloom = slot.bloom.load(Ordering::Relaxed);
        if !accept(bloom) {
            // The entry may have been taken meanwhile; either way it is not
            // ours to take now.
            return Steal::Skipped;
        }
        if self
            .top
            .compare_exchange(top, top + 1, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            return Steal::Retry;
        }
        // SAFETY: the claim on `top` made this thread the owner of the job
        // pushed at that index, which `job` was read from before the claim
        // (see "Memory ordering").
        Steal::Taken(unsafe { JobRef::from_raw(NonNull::new_unchecked(job)) })
    }
}

impl Drop for Deque {
    fn drop(&mut self) {
        // A worker empties its deque before it exits; what is left here was
        // never pushed by a live job.
        debug_assert!(
            self.is_empty(),
            "a worker's deque is dropped with jobs in it"
        );
    }
}
