//! Nested waits (DESIGN point 5): a task that submits a batch and waits for
//! it never deadlocks the pool, however few threads it has and however deep
//! the nesting; a wait from outside the pool runs nothing on the caller; no
//! more tasks run at once than the pool has threads.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

use poolscope::{Pool, Scope};

mod common;

use common::watchdog;

/// A task that submits one task and waits for it, `depth` times over.
fn nest<'s>(s: &'s Scope<'s, '_>, depth: usize) -> usize {
    if depth == 0 {
        return 0;
    }
    s.apply_async(move || nest(s, depth - 1)).get().unwrap() + 1
}

fn fib<'s>(s: &'s Scope<'s, '_>, n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let parts = s.map_async(move |k| fib(s, k), [n - 1, n - 2]);
    parts.get().unwrap().iter().sum()
}

#[test]
fn tasks_that_wait_on_their_own_batches_nest_64_deep_on_one_thread() {
    let depth = watchdog(|| {
        let pool = Pool::new(1).unwrap();
        pool.scope(|s| s.apply_async(|| nest(s, 64)).get().unwrap())
    });
    assert_eq!(depth, 64);
}

#[test]
fn recursive_fork_join_finishes_on_one_and_on_two_threads() {
    let results = watchdog(|| {
        [1, 2].map(|threads| {
            let pool = Pool::new(threads).unwrap();
            pool.scope(|s| fib(s, 16))
        })
    });
    assert_eq!(results, [987, 987]);
}

#[test]
fn every_worker_waiting_at_once_does_not_deadlock() {
    let (sum, max_waiting) = watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let both_running = Barrier::new(2);
        let both_helping = &Barrier::new(2);
        let waiting = AtomicUsize::new(0);
        let max_waiting = AtomicUsize::new(0);
        let sum = pool.scope(|s| {
            s.batch()
                .chunk(1)
                .map_async(
                    |i: u64| {
                        // Both workers are inside an outer task here...
                        both_running.wait();
                        let now = waiting.fetch_add(1, Ordering::SeqCst) + 1;
                        max_waiting.fetch_max(now, Ordering::SeqCst);
                        // ...and each waits on a batch of its own, whose
                        // first task meets the other worker's: both are
                        // inside their waits at the same time.
                        let parts = s
                            .map_async(
                                move |k: u64| {
                                    if k == 0 {
                                        both_helping.wait();
                                    }
                                    i * 10 + k
                                },
                                0..8,
                            )
                            .get()
                            .unwrap();
                        waiting.fetch_sub(1, Ordering::SeqCst);
                        parts.iter().sum::<u64>()
                    },
                    0..32,
                )
                .get()
                .unwrap()
                .iter()
                .sum::<u64>()
        });
        (sum, max_waiting.load(Ordering::SeqCst))
    });
    let expected: u64 = (0..32u64)
        .map(|i| (0..8).map(|k| i * 10 + k).sum::<u64>())
        .sum();
    assert_eq!(sum, expected);
    assert_eq!(max_waiting, 2);
}

#[test]
fn a_scope_opened_inside_a_task_on_the_same_one_thread_pool_ends_without_deadlock() {
    let done = watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let done = AtomicUsize::new(0);
        pool.scope(|outer| {
            let task = outer.apply_async(|| {
                // The inner scope's end waits for these on the only worker.
                pool.scope(|inner| {
                    let _ = inner.map_async(|_| done.fetch_add(1, Ordering::SeqCst), 0..10);
                    let _ = inner.apply_async(|| done.fetch_add(1, Ordering::SeqCst));
                });
                done.load(Ordering::SeqCst)
            });
            assert_eq!(task.get().unwrap(), 11, "the inner scope ended early");
        });
        done.into_inner()
    });
    assert_eq!(done, 11);
}

fn nested_scopes(pool: &Pool, depth: usize, done: &AtomicUsize) {
    if depth == 0 {
        return;
    }
    pool.scope(|s| {
        let _ = s.map_async(|_| done.fetch_add(1, Ordering::SeqCst), 0..3);
        let _ = s.apply_async(|| nested_scopes(pool, depth - 1, done));
    });
}

#[test]
fn scopes_nested_in_tasks_16_deep_on_one_thread_end_in_turn() {
    let done = watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let done = AtomicUsize::new(0);
        nested_scopes(&pool, 16, &done);
        done.into_inner()
    });
    assert_eq!(done, 16 * 3);
}

#[test]
fn a_default_pool_scope_opened_inside_a_default_pool_task_ends() {
    let total = watchdog(|| {
        poolscope::scope(|outer| {
            outer
                .map(
                    |i: u64| {
                        poolscope::scope(|inner| inner.map(move |k: u64| i + k, 0..10))
                            .unwrap()
                            .iter()
                            .sum::<u64>()
                    },
                    0..20,
                )
                .unwrap()
                .iter()
                .sum::<u64>()
        })
    });
    let expected: u64 = (0..20u64)
        .map(|i| (0..10).map(|k| i + k).sum::<u64>())
        .sum();
    assert_eq!(total, expected);
}

#[test]
fn waits_with_a_timeout_inside_a_worker_run_the_batch_themselves() {
    let (ready, values) = watchdog(|| {
        let pool = Pool::new(1).unwrap();
        pool.scope(|s| {
            s.apply_async(|| {
                // Only this worker can run the sub-batches: the waits must
                // run them, not sleep through their timeouts.
                let batch = s.map_async(|x: u32| x + 1, 0..4);
                let ready = batch.wait_timeout(Duration::from_secs(30));
                let values = s
                    .map_async(|x: u32| x * 2, 0..4)
                    .get_timeout(Duration::from_secs(30))
                    .unwrap();
                (ready, values)
            })
            .get()
            .unwrap()
        })
    });
    assert!(ready, "wait_timeout inside the only worker timed out");
    assert_eq!(values, [0, 2, 4, 6]);
}

#[test]
fn a_waiting_worker_runs_only_the_batch_it_waits_for() {
    let order = watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let order = Mutex::new(Vec::new());
        let config = Mutex::new("config");
        pool.scope(|s| {
            let waiter = s.apply_async(|| {
                // Holds a lock while it waits: running the unrelated batch
                // (which takes the same lock) here would deadlock.
                let _held = config.lock().unwrap();
                let awaited =
                    s.map_async(|i: u32| order.lock().unwrap().push(("awaited", i)), 0..3);
                awaited.wait();
            });
            // Queued behind `waiter` on the only worker, before `awaited`.
            let unrelated = s.map_async(
                |i: u32| {
                    let _config = config.lock().unwrap();
                    order.lock().unwrap().push(("unrelated", i));
                },
                0..3,
            );
            waiter.get().unwrap();
            unrelated.get().unwrap();
        });
        order.into_inner().unwrap()
    });
    let kinds: Vec<&str> = order.iter().map(|(kind, _)| *kind).collect();
    assert_eq!(
        kinds,
        [
            "awaited",
            "awaited",
            "awaited",
            "unrelated",
            "unrelated",
            "unrelated"
        ]
    );
}

#[test]
fn a_wait_from_outside_the_pool_runs_no_task_on_the_caller() {
    let (caller, ran_on) = watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let ran_on = Mutex::new(HashSet::new());
        let record = || {
            ran_on.lock().unwrap().insert(thread::current().id());
        };
        pool.scope(|s| {
            let waited = s.map_async(|_| record(), 0..200);
            waited.wait();
            let timed = s.map_async(|_| record(), 0..200);
            assert!(timed.wait_timeout(Duration::from_secs(50)));
            let got = s.map_async(|_| record(), 0..200);
            got.get().unwrap();
            let task = s.apply_async(record);
            task.get_timeout(Duration::from_secs(50)).unwrap();
            // Left to the scope end's wait.
            let _ = s.map_async(|_| record(), 0..200);
        });
        (thread::current().id(), ran_on.into_inner().unwrap())
    });
    assert!(
        !ran_on.contains(&caller),
        "a task ran on the thread that waited"
    );
    assert!(ran_on.len() <= 2, "tasks ran on {} threads", ran_on.len());
}

#[test]
fn no_more_tasks_run_at_once_than_the_pool_has_threads() {
    let (max, caller, ran_on) = watchdog(|| {
        let pool = Pool::new(3).unwrap();
        let running = AtomicUsize::new(0);
        let max = AtomicUsize::new(0);
        let ran_on: Mutex<HashSet<ThreadId>> = Mutex::new(HashSet::new());
        let task = |_| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            max.fetch_max(now, Ordering::SeqCst);
            ran_on.lock().unwrap().insert(thread::current().id());
            thread::sleep(Duration::from_micros(200));
            running.fetch_sub(1, Ordering::SeqCst);
        };
        pool.scope(|s| {
            let batches: Vec<_> = (0..4).map(|_| s.map_async(task, 0..60)).collect();
            let _ = s.map_async(task, 0..60);
            for batch in &batches {
                batch.wait();
            }
        });
        (
            max.into_inner(),
            thread::current().id(),
            ran_on.into_inner().unwrap(),
        )
    });
    assert!(max <= 3, "{max} tasks ran at once on a 3-thread pool");
    assert!(max >= 1);
    assert!(!ran_on.contains(&caller));
}
