//! Loom models of the runtime's synchronization core: a real pool (one or
//! two worker threads plus the test's own thread), driven through the public
//! API, with every interleaving explored up to a preemption bound.
//!
//! Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 \
//!     cargo test -p pool-runtime --release --test loom
//! ```
//!
//! Under loom the clock is frozen, so timed waits are modelled as waits
//! whose timer never fires (see `src/primitive.rs`). Data the tasks write
//! lives in `loom::cell::UnsafeCell`, so loom reports any read that the
//! runtime does not order after the write (a wait or a scope end that
//! returns too early).
#![cfg(loom)]

use std::future::{Future, IntoFuture};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use loom::cell::UnsafeCell;
use pool_runtime::{Pool, SubmitError, TaskErrorKind};

/// Runs `f` under loom; returns how many interleavings were explored, and
/// fails if only one was (a model with a single interleaving proves nothing
/// about concurrency).
fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    model_bounded(name, 2, f)
}

/// [`model`] with its own default preemption bound (`LOOM_MAX_PREEMPTIONS`
/// still overrides it). For the models with two workers racing over
/// fork_join's stack jobs: at bound 1 the first explores 51 961
/// interleavings in about 10 s of CPU; at bound 2 each ran for over 30
/// minutes without finishing, past what CI can spend.
fn model_bounded(name: &str, bound: usize, f: impl Fn() + Sync + Send + 'static) {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let before = RUNS.load(SeqCst);
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(bound);
    }
    builder.check(move || {
        RUNS.fetch_add(1, SeqCst);
        f();
    });
    // Models run one after another within this test binary only if the
    // harness runs them on several threads; count per model is approximate
    // then, but never below this model's own runs.
    let explored = RUNS.load(SeqCst) - before;
    eprintln!("{name}: {explored} interleavings");
    assert!(explored > 1, "{name}: loom explored a single interleaving");
}

/// A cell a task writes and the test reads after a wait: loom checks that
/// the wait orders the read after the write.
struct Written(UnsafeCell<usize>);

// SAFETY: every access goes through loom's `UnsafeCell`, which reports any
// two accesses not ordered by happens-before; that report is the test.
unsafe impl Sync for Written {}

impl Written {
    fn new() -> Written {
        Written(UnsafeCell::new(0))
    }
    fn set(&self, value: usize) {
        // SAFETY: loom checks the access (see above).
        self.0.with_mut(|p| unsafe { *p = value });
    }
    fn get(&self) -> usize {
        // SAFETY: loom checks the access (see above).
        self.0.with(|p| unsafe { *p })
    }
}

#[test]
fn wait_racing_the_last_completion_sees_the_tasks_writes() {
    model("wait_racing_last_completion", || {
        let pool = Pool::new(1).unwrap();
        let written = Written::new();
        pool.scope(|s| {
            let task = s.apply_async(|| {
                written.set(7);
                1
            });
            // From outside the pool: blocks (spins once, then parks on the
            // batch's condition variable) while the worker finishes.
            task.wait();
            assert!(task.is_ready());
            assert_eq!(written.get(), 7);
            assert_eq!(task.get().unwrap(), 1);
        });
    });
}

#[test]
fn wait_timeout_racing_the_last_completion_returns_ready() {
    model("wait_timeout_racing_last_completion", || {
        let pool = Pool::new(1).unwrap();
        let written = Written::new();
        pool.scope(|s| {
            let batch = s.map_async(|i: usize| written.set(i + 1), [0]);
            // The frozen clock never lets this time out: it must return
            // true, and the write must be visible.
            assert!(batch.wait_timeout(std::time::Duration::from_secs(1)));
            assert_eq!(written.get(), 1);
            assert_eq!(batch.completed(), 1);
        });
    });
}

#[test]
fn the_scope_end_parks_while_the_last_task_completes() {
    model("scope_end_parks_while_last_task_completes", || {
        let pool = Pool::new(1).unwrap();
        let written = Written::new();
        pool.scope(|s| {
            // No handle kept: only the scope's own count orders the write
            // before the scope returns.
            std::mem::forget(s.apply_async(|| written.set(3)));
        });
        assert_eq!(written.get(), 3);
    });
}

#[test]
fn close_racing_a_submission_from_a_task_either_refuses_or_runs_it() {
    model("close_racing_submit", || {
        let pool = Pool::new(1).unwrap();
        let inner_runs = AtomicUsize::new(0);
        let inner_runs = &inner_runs;
        let accepted = pool.scope(|s| {
            let outer = s.apply_async(move || {
                match s.try_apply_async(move || inner_runs.fetch_add(1, SeqCst)) {
                    Ok(task) => {
                        drop(task);
                        true
                    }
                    Err(SubmitError::Closed) => false,
                    Err(other) => panic!("unexpected refusal: {other}"),
                }
            });
            s.close();
            outer.get().unwrap()
        });
        // Accepted work runs exactly once, even though the scope was closed
        // concurrently; refused work never runs.
        assert_eq!(inner_runs.load(SeqCst), usize::from(accepted));
    });
}

#[test]
fn terminate_racing_a_claim_runs_or_cancels_each_task_exactly_once() {
    model("terminate_racing_claim", || {
        let pool = Pool::new(1).unwrap();
        let runs = [AtomicUsize::new(0), AtomicUsize::new(0)];
        let runs = &runs;
        pool.scope(|s| {
            let batch = s
                .batch()
                .chunk(1)
                .map_async(|i: usize| runs[i].fetch_add(1, SeqCst), 0..2);
            s.terminate();
            let outcomes: Vec<_> = batch.results().collect();
            for (i, outcome) in outcomes.iter().enumerate() {
                match outcome {
                    Ok(_) => assert_eq!(runs[i].load(SeqCst), 1, "task {i} ran once"),
                    Err(error) => {
                        assert_eq!(error.kind(), &TaskErrorKind::Cancelled);
                        assert_eq!(runs[i].load(SeqCst), 0, "cancelled task {i} never ran");
                    }
                }
            }
            assert_eq!(
                s.try_apply_async(|| ()).unwrap_err(),
                SubmitError::Terminated
            );
        });
    });
}

#[test]
fn cancel_racing_a_claim_counts_exactly_the_tasks_that_never_ran() {
    model("cancel_racing_claim", || {
        let pool = Pool::new(1).unwrap();
        let runs = AtomicUsize::new(0);
        let runs = &runs;
        pool.scope(|s| {
            let batch = s.batch().chunk(1).map_async(
                |_: usize| {
                    runs.fetch_add(1, SeqCst);
                },
                0..2,
            );
            let cancelled = batch.cancel();
            batch.wait();
            let failures = batch.failures();
            assert_eq!(failures.len(), cancelled);
            assert!(failures.iter().all(|e| e.is_cancelled()));
            assert_eq!(runs.load(SeqCst) + cancelled, 2);
        });
    });
}

#[test]
fn cancel_racing_the_claim_of_a_single_task_tells_the_truth() {
    model("cancel_racing_claim_single_task", || {
        let pool = Pool::new(1).unwrap();
        let runs = AtomicUsize::new(0);
        let runs = &runs;
        pool.scope(|s| {
            let task = s.apply_async(move || runs.fetch_add(1, SeqCst));
            if task.cancel() {
                // Kept from starting: never runs, reports cancelled.
                assert!(task.get().unwrap_err().is_cancelled());
                assert_eq!(runs.load(SeqCst), 0);
            } else {
                // Too late to cancel: it runs and gives its result.
                assert_eq!(task.get().unwrap(), 0);
                assert_eq!(runs.load(SeqCst), 1);
            }
        });
    });
}

#[test]
fn dropping_a_handle_racing_the_last_completion_drops_each_result_once() {
    struct Counted<'a>(&'a AtomicUsize);
    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    model("handle_drop_racing_last_completion", || {
        let pool = Pool::new(1).unwrap();
        let dropped = AtomicUsize::new(0);
        let dropped = &dropped;
        pool.scope(|s| {
            let batch = s.map_async(move |_: u8| Counted(dropped), [0u8]);
            drop(batch);
        });
        assert_eq!(dropped.load(SeqCst), 1);
    });
}

#[test]
fn a_worker_waiting_on_a_nested_batch_runs_it_while_another_worker_claims() {
    model("nested_wait_two_workers", || {
        let pool = Pool::new(2).unwrap();
        let written = [Written::new(), Written::new()];
        let written = &written;
        let sum = pool.scope(|s| {
            let outer = s.apply_async(move || {
                let inner = s
                    .batch()
                    .chunk(1)
                    .map_async(move |i: usize| written[i].set(i + 1), 0..2);
                inner.wait();
                written[0].get() + written[1].get()
            });
            outer.get().unwrap()
        });
        assert_eq!(sum, 3);
    });
}

#[test]
fn a_blocking_task_gets_a_thread_and_the_pool_drop_retires_it() {
    model("blocking_lane_spawn_and_retire", || {
        let pool = Pool::new(1).unwrap();
        let written = Written::new();
        pool.scope(|s| {
            let task = s.batch().blocking(true).apply_async(|| written.set(9));
            task.get().unwrap();
        });
        assert_eq!(written.get(), 9);
        drop(pool);
    });
}

#[test]
fn dropping_an_idle_pool_wakes_and_joins_its_worker() {
    model("idle_pool_drop", || {
        drop(Pool::new(1).unwrap());
    });
}

#[test]
fn two_single_tasks_on_two_workers_each_run_once_and_are_seen() {
    // Single tasks skip the lane's lock: a push counts sleepers and
    // spinners without it, and a worker going to sleep takes a last look
    // at the queue. Two of them against two workers exercise a push that
    // leaves its task to a spinner, and a worker that wakes another for
    // the task behind the one it took.
    model("two_singles_two_workers", || {
        let pool = Pool::new(2).unwrap();
        let written = [Written::new(), Written::new()];
        let written = &written;
        pool.scope(|s| {
            let first = s.apply_async(move || written[0].set(1));
            let second = s.apply_async(move || written[1].set(2));
            first.get().unwrap();
            second.get().unwrap();
        });
        assert_eq!(written[0].get() + written[1].get(), 3);
    });
}

#[test]
fn fork_join_from_outside_runs_both_halves_once_and_sees_their_writes() {
    // The cold path: a thread outside the pool queues the whole fork_join
    // in the injector and blocks on its latch; the worker pushes the second
    // half on its deque, runs the first, and pops the second back.
    model("fork_join_cold_path", || {
        let pool = Pool::new(1).unwrap();
        let written = [Written::new(), Written::new()];
        let (a, b) = pool.scope(|s| {
            s.fork_join(
                || {
                    written[0].set(1);
                    10
                },
                || {
                    written[1].set(2);
                    20
                },
            )
        });
        assert_eq!((a, b), (10, 20));
        assert_eq!(written[0].get() + written[1].get(), 3);
    });
}

#[test]
fn a_steal_racing_the_callers_pop_runs_the_second_half_exactly_once() {
    // Two workers: the caller pops its second half back while the other
    // worker may steal it; whoever gets it runs it, and the caller sees its
    // write either way (inline, or through the half's DONE state).
    model_bounded("fork_join_steal_vs_pop", 1, || {
        let pool = Pool::new(2).unwrap();
        let runs = AtomicUsize::new(0);
        let written = Written::new();
        let seen = pool.scope(|s| {
            s.apply(|| {
                pool_runtime::fork_join(
                    || (),
                    || {
                        runs.fetch_add(1, SeqCst);
                        written.set(5);
                    },
                );
                written.get()
            })
            .unwrap()
        });
        assert_eq!(seen, 5);
        assert_eq!(runs.load(SeqCst), 1);
    });
}

#[test]
fn a_task_spawned_after_the_body_returned_is_waited_for() {
    // The body returns at once; its task submits a child (handle dropped)
    // whenever it runs, racing the scope's end. The scope must not end
    // before the child ran, and must not refuse it.
    model("spawn_after_body_vs_scope_end", || {
        let pool = Pool::new(1).unwrap();
        let written = Written::new();
        pool.scope(|s| {
            let written = &written;
            std::mem::forget(s.apply_async(move || {
                let child = s.try_apply_async(move || written.set(8));
                assert!(child.is_ok(), "a task's own submission is never refused");
            }));
        });
        assert_eq!(written.get(), 8);
    });
}

#[test]
fn a_waiter_stealing_its_halfs_own_split_races_the_thief_popping_it() {
    // The caller's second half may be stolen; it splits again, and the
    // caller, waiting for it, may steal that split (a descendant) while the
    // thief pops it back. Each piece runs exactly once, and the caller sees
    // every write.
    model_bounded("waiter_helps_descendant_vs_owner_pop", 1, || {
        let pool = Pool::new(2).unwrap();
        let runs = [AtomicUsize::new(0), AtomicUsize::new(0)];
        let written = [Written::new(), Written::new()];
        let sum = pool.scope(|s| {
            s.apply(|| {
                pool_runtime::fork_join(
                    || (),
                    || {
                        pool_runtime::fork_join(
                            || {
                                runs[0].fetch_add(1, SeqCst);
                                written[0].set(1);
                            },
                            || {
                                runs[1].fetch_add(1, SeqCst);
                                written[1].set(2);
                            },
                        )
                    },
                );
                written[0].get() + written[1].get()
            })
            .unwrap()
        });
        assert_eq!(sum, 3);
        assert_eq!(runs[0].load(SeqCst), 1);
        assert_eq!(runs[1].load(SeqCst), 1);
    });
}

/// A waker that does nothing: an executor that polls once and moves on.
fn noop_waker() -> std::task::Waker {
    use std::task::{RawWaker, RawWakerVTable, Waker};
    fn clone(_: *const ()) -> RawWaker {
        RawWaker::new(std::ptr::null(), &VTABLE)
    }
    fn noop(_: *const ()) {}
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
    // SAFETY: every function of the vtable ignores the (null) data pointer.
    unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) }
}

#[test]
fn awaiting_a_task_racing_its_completion_is_woken_or_sees_it() {
    // loom's `block_on` parks until its waker is woken: a wake the
    // finisher misses (the poller registered too late to be seen, and
    // checked too early to see the completion) is a deadlock loom reports.
    model("await_vs_complete", || {
        let pool = Pool::new(1).unwrap();
        let written = std::sync::Arc::new(Written::new());
        let task = {
            let written = written.clone();
            pool.apply_async(move || {
                written.set(4);
                2
            })
        };
        assert_eq!(loom::future::block_on(task.into_future()).unwrap(), 2);
        assert_eq!(written.get(), 4);
    });
}

#[test]
fn a_future_polled_by_a_second_executor_wakes_the_second_one() {
    // Polled once with a waker that does nothing, then driven by another
    // executor: the second poll's waker must replace the first, whichever
    // side of the completion it lands on.
    model("await_twice_vs_complete", || {
        let pool = Pool::new(1).unwrap();
        let batch = pool.map_async(|x: usize| x + 1, [1]);
        let mut future = batch.into_future();
        let waker = noop_waker();
        let first =
            std::pin::Pin::new(&mut future).poll(&mut std::task::Context::from_waker(&waker));
        let result = match first {
            std::task::Poll::Ready(result) => result,
            std::task::Poll::Pending => loom::future::block_on(future),
        };
        assert_eq!(result.unwrap(), [2]);
    });
}

#[test]
fn dropping_an_awaited_handle_racing_the_last_completion_drops_the_result_once() {
    // The future registered its waker, then is dropped while the worker
    // finishes: whoever releases the batch (the worker or the drop) drops
    // the result exactly once, and the stale waker is harmless.
    model("drop_awaited_vs_complete", || {
        let pool = Pool::new(1).unwrap();
        let drops = std::sync::Arc::new(AtomicUsize::new(0));
        struct Counted(std::sync::Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_add(1, SeqCst);
            }
        }
        let task = {
            let drops = drops.clone();
            pool.apply_async(move || Counted(drops))
        };
        let mut future = task.into_future();
        let waker = noop_waker();
        let polled =
            std::pin::Pin::new(&mut future).poll(&mut std::task::Context::from_waker(&waker));
        drop(polled);
        drop(future);
        drop(pool);
        assert_eq!(drops.load(SeqCst), 1);
    });
}
