//! Blocking calls inside tasks: [`blocking`] hands the calling CPU worker's
//! slot to a spare worker while the call blocks, so CPU parallelism stays at
//! the pool's thread count; and the guard `#[pool_task]` puts at the top of
//! a task function (its name for panic reports, and the same hand-off for
//! `#[pool_task(blocking)]`).

use crate::engine;
use crate::unwind::TaskName;
use crate::worker::WorkerThread;

/// Runs `f` and returns its value. On one of a pool's CPU workers, first
/// hands the worker's CPU slot to a spare worker (woken, or started while
/// the pool's blocking cap allows), so that the pool keeps running as many
/// CPU tasks as it has threads while `f` blocks; anywhere else it just runs
/// `f`. Java's `ForkJoinPool.managedBlock`, tokio's `block_in_place`.
///
/// Use it around a call that waits without using the CPU (a file read, a
/// lock, a sleep between retries) deep inside an ordinary task. When the
/// call returns, the worker goes on as a CPU worker, and a spare that has
/// become surplus retires at its next job boundary (so for a moment one
/// more CPU task may run than the pool has threads).
///
/// ```
/// use std::time::Duration;
///
/// let pool = pool_runtime::Pool::new(1).unwrap();
/// let slept = pool.scope(|s| {
///     // Four tasks on one thread, each blocking for a moment: the sleeps
///     // overlap, since each hands the CPU slot on while it sleeps.
///     s.map(
///         |i: u64| {
///             pool_runtime::blocking(|| std::thread::sleep(Duration::from_millis(50)));
///             i
///         },
///         0..4,
///     )
/// });
/// assert_eq!(slept.unwrap(), [0, 1, 2, 3]);
/// ```
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    let _hand_off = HandOff::begin();
    f()
}

/// While alive, the calling CPU worker's slot is lent to a spare.
struct HandOff(Option<&'static WorkerThread>);

impl HandOff {
    fn begin() -> HandOff {
        let worker = WorkerThread::current();
        if let Some(worker) = worker {
            engine::mark_running_batch_blocking();
            worker.registry.begin_blocking();
            worker.republish_current_unit();
        }
        HandOff(worker)
    }
}

impl Drop for HandOff {
    fn drop(&mut self) {
        if let Some(worker) = self.0 {
            worker.registry.end_blocking();
        }
    }
}

/// What `#[pool_task]` puts at the top of a task function's body. Not a
/// public API: it may change without notice.
///
/// While alive it names the running task (a panic that unwinds out of the
/// function is reported with this name when its batch has none) and, for
/// `#[pool_task(blocking)]`, lends the CPU worker's slot to a spare as
/// [`blocking`] does.
#[doc(hidden)]
#[must_use]
pub struct TaskGuard {
    _name: TaskName,
    _hand_off: Option<HandOff>,
}

impl std::fmt::Debug for TaskGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskGuard")
            .field("name", &self._name.0)
            .field("blocking", &self._hand_off.is_some())
            .finish()
    }
}

/// The guard for a `#[pool_task]` function named `name`. Not a public API.
#[doc(hidden)]
#[inline]
pub fn __enter_task(name: &'static str, blocking: bool) -> TaskGuard {
    TaskGuard {
        _name: TaskName(name),
        _hand_off: blocking.then(HandOff::begin),
    }
}
