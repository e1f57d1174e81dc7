//! The one door to synchronization primitives.
//!
//! Every atomic, fence, lock, condition variable, thread, thread-local,
//! clock and spin loop of the runtime is reached through this module, so
//! that the same code can be model-checked under loom with
//! `RUSTFLAGS="--cfg loom"` (see `tests/loom.rs`).
//!
//! Under loom, three things differ from the real runtime, on purpose:
//!
//! - `Arc` is std's: loom's `Arc` cannot coerce to `Arc<dyn Job>`, and the
//!   runtime's correctness does not rest on `Arc`'s own orderings (every
//!   hand-over of a job goes through a modelled lock, atomic or fence).
//! - The clock is frozen: `Instant::now()` always returns the same instant.
//!   Timed waits then never time out, which makes each execution
//!   deterministic and matches loom's `Condvar::wait_timeout` (which never
//!   times out either); a model therefore checks every interleaving in which
//!   the timer does not fire. Adaptive chunks keep growing, which only
//!   changes claim sizes.
//! - `Backoff` completes after a single `snooze` (a loom yield), so spin
//!   loops cost one check before falling back to sleeping, instead of
//!   multiplying the state space.

#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{
        fence, AtomicBool, AtomicIsize, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering,
    },
    mpsc, Arc, Condvar, Mutex, MutexGuard,
};
#[cfg(not(loom))]
pub(crate) use std::{thread, thread_local, time::Instant};

#[cfg(not(loom))]
pub(crate) use crossbeam_utils::Backoff;

/// An unbounded lock-free FIFO that many threads push to and pop from.
#[cfg(not(loom))]
pub(crate) use crossbeam_queue::SegQueue as Injector;

/// Loom cannot see inside `SegQueue`; the model uses a locked queue with the
/// same three operations. `is_empty` reads a `Relaxed` count without the
/// lock, as weak as it can be, so that the lock orders nothing for it: the
/// hand-shakes that rely on seeing a push (a sleeper's last look before it
/// parks) are checked on their `SeqCst` fences alone. What the model does not
/// check is the queue itself, a well-tested crate.
#[cfg(loom)]
pub(crate) struct Injector<T> {
    queue: Mutex<std::collections::VecDeque<T>>,
    len: AtomicUsize,
}

#[cfg(loom)]
impl<T> Injector<T> {
    pub(crate) fn new() -> Injector<T> {
        Injector {
            queue: Mutex::new(std::collections::VecDeque::new()),
            len: AtomicUsize::new(0),
        }
    }

    pub(crate) fn push(&self, value: T) {
        let mut queue = lock(&self.queue);
        queue.push_back(value);
        self.len.store(queue.len(), Ordering::Relaxed);
    }

    pub(crate) fn pop(&self) -> Option<T> {
        let mut queue = lock(&self.queue);
        let value = queue.pop_front();
        self.len.store(queue.len(), Ordering::Relaxed);
        value
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len.load(Ordering::Relaxed) == 0
    }
}

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{
        fence, AtomicBool, AtomicIsize, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering,
    },
    mpsc, Condvar, Mutex, MutexGuard,
};
/// Loom's `thread_local!`, which cannot parse `const { .. }` initializers:
/// each modelled thread gets its own value (std's would be shared, since
/// loom runs every modelled thread on one OS thread).
#[cfg(loom)]
macro_rules! loom_thread_local {
    ($($(#[$attr:meta])* static $name:ident: $t:ty = const { $init:expr };)*) => {
        $(loom::thread_local! { $(#[$attr])* static $name: $t = $init; })*
    };
}
#[cfg(loom)]
pub(crate) use loom_thread_local as thread_local;
#[cfg(loom)]
pub(crate) use std::sync::Arc;

/// A counter for process-wide ids (pools, scopes): a real atomic even under
/// loom, because a `static` cannot hold a loom atomic and ids order nothing.
pub(crate) type IdCounter = std::sync::atomic::AtomicUsize;

/// Loom's threads, plus `park_timeout`, which loom lacks.
#[cfg(loom)]
pub(crate) mod thread {
    pub(crate) use loom::thread::{current, park, yield_now, Builder, JoinHandle, Thread};

    /// Parks without a timeout: with the frozen clock a timeout never
    /// expires, so the only way out is an `unpark` (or a spurious wake-up,
    /// which every caller tolerates).
    pub(crate) fn park_timeout(_timeout: std::time::Duration) {
        park();
    }
}

/// An instant the user gave (a deadline) on the runtime's clock.
#[cfg(not(loom))]
pub(crate) fn instant_from_std(instant: std::time::Instant) -> Instant {
    instant
}

/// An instant the user gave (a deadline) on the frozen clock, where it
/// never passes (see the module docs).
#[cfg(loom)]
pub(crate) fn instant_from_std(instant: std::time::Instant) -> Instant {
    Instant(instant)
}

/// A frozen clock: every `now()` is the same instant.
#[cfg(loom)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Instant(std::time::Instant);

#[cfg(loom)]
impl Instant {
    pub(crate) fn now() -> Instant {
        static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        Instant(*EPOCH.get_or_init(std::time::Instant::now))
    }

    pub(crate) fn checked_add(self, duration: std::time::Duration) -> Option<Instant> {
        self.0.checked_add(duration).map(Instant)
    }

    pub(crate) fn elapsed(self) -> std::time::Duration {
        Instant::now().0.saturating_duration_since(self.0)
    }
}

#[cfg(loom)]
impl std::ops::Add<std::time::Duration> for Instant {
    type Output = Instant;
    fn add(self, duration: std::time::Duration) -> Instant {
        Instant(self.0 + duration)
    }
}

#[cfg(loom)]
impl std::ops::Sub for Instant {
    type Output = std::time::Duration;
    fn sub(self, earlier: Instant) -> std::time::Duration {
        self.0.saturating_duration_since(earlier.0)
    }
}

/// A spin loop that gives up after one loom yield.
#[cfg(loom)]
#[derive(Debug, Default)]
pub(crate) struct Backoff(std::cell::Cell<bool>);

#[cfg(loom)]
impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff::default()
    }

    pub(crate) fn snooze(&self) {
        self.0.set(true);
        loom::thread::yield_now();
    }

    pub(crate) fn is_completed(&self) -> bool {
        self.0.get()
    }
}

/// Orders the `SeqCst` access before it with the `SeqCst` access after it,
/// for loom's sake: a no-op in the real runtime.
///
/// Loom treats `SeqCst` accesses as `AcqRel` (only `SeqCst` fences get
/// their full meaning), so it would report store-buffering hand-shakes built
/// from `SeqCst` read-modify-writes and loads (a sleeper registers then
/// checks, a finisher publishes then checks for sleepers) as lost wake-ups
/// that the real memory model rules out. Placed between two `SeqCst`
/// accesses of one thread, a `SeqCst` fence adds nothing those accesses do
/// not already guarantee, so the model checks the same protocol. Only ever
/// place it between two `SeqCst` accesses.
#[inline(always)]
pub(crate) fn seq_cst_hand_shake() {
    #[cfg(loom)]
    fence(Ordering::SeqCst);
}

/// Locks `mutex`, ignoring poisoning.
///
/// Every critical section in the runtime leaves its data consistent before
/// any user code can run, so a poisoned lock carries no broken invariant.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Waits on `condvar`, ignoring poisoning (see [`lock`]).
pub(crate) fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    match condvar.wait(guard) {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Waits on `condvar` for at most `timeout`, ignoring poisoning. (Under
/// loom, an untimed wait: see the module docs.)
pub(crate) fn wait_timeout<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: std::time::Duration,
) -> MutexGuard<'a, T> {
    match condvar.wait_timeout(guard, timeout) {
        Ok((guard, _)) => guard,
        Err(poisoned) => poisoned.into_inner().0,
    }
}
