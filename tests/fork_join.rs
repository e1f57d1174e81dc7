//! `fork_join` (DESIGN point 10), as a rayon user writes `rayon::join`:
//! recursion that borrows, `&mut` halves of one slice, panics in either
//! half, calls from outside the pool and from inside a task, and a waiting
//! worker that runs only what descends from the half it waits for.

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::Duration;

use poolscope::{fork_join, Pool};

mod common;

use common::{panic_message, watchdog, Gate};

fn fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = fork_join(|| fib(n - 1), || fib(n - 2));
    a + b
}

#[test]
fn recursive_fib_gives_the_right_answer_on_one_two_and_four_threads() {
    let results = watchdog(|| {
        [1, 2, 4].map(|threads| {
            let pool = Pool::new(threads).unwrap();
            // Under miri, which interprets every split some thousand times
            // slower, a smaller tree.
            pool.scope(|s| s.apply(|| fib(if cfg!(miri) { 12 } else { 22 })).unwrap())
        })
    });
    assert_eq!(results, [if cfg!(miri) { 144 } else { 17711 }; 3]);
    // From outside any pool: the default pool.
    assert_eq!(watchdog(|| fib(20)), 6765);
}

fn merge_sort(values: &mut [u32], scratch: &mut [u32]) {
    if values.len() <= 32 {
        values.sort_unstable();
        return;
    }
    let mid = values.len() / 2;
    {
        let (left, right) = values.split_at_mut(mid);
        let (scratch_left, scratch_right) = scratch.split_at_mut(mid);
        fork_join(
            || merge_sort(left, scratch_left),
            || merge_sort(right, scratch_right),
        );
    }
    let (left, right) = values.split_at(mid);
    let (mut i, mut j) = (0, 0);
    for slot in scratch.iter_mut() {
        if j >= right.len() || (i < left.len() && left[i] <= right[j]) {
            *slot = left[i];
            i += 1;
        } else {
            *slot = right[j];
            j += 1;
        }
    }
    values.copy_from_slice(scratch);
}

#[test]
fn a_merge_sort_over_mut_halves_of_one_slice_sorts() {
    let len = if cfg!(miri) { 2_000 } else { 50_000u32 };
    let mut values: Vec<u32> = (0..len)
        .map(|i| i.wrapping_mul(2_654_435_761) % 100_003)
        .collect();
    let mut expected = values.clone();
    expected.sort_unstable();
    let mut scratch = vec![0; values.len()];
    let pool = Pool::new(2).unwrap();
    let values = watchdog(move || {
        pool.scope(|s| s.fork_join(|| merge_sort(&mut values, &mut scratch), || ()));
        values
    });
    assert_eq!(values, expected);
}

fn quicksort(values: &mut [u64]) {
    if values.len() <= 64 {
        values.sort_unstable();
        return;
    }
    let pivot = values[values.len() / 2];
    let mut store = 0;
    values.swap(values.len() / 2, values.len() - 1);
    for i in 0..values.len() - 1 {
        if values[i] < pivot {
            values.swap(i, store);
            store += 1;
        }
    }
    let last = values.len() - 1;
    values.swap(store, last);
    let (left, right) = values.split_at_mut(store);
    fork_join(|| quicksort(left), || quicksort(&mut right[1..]));
}

#[test]
fn a_quicksort_sorts_on_every_pool_size() {
    for threads in [1, 2, 3] {
        let len = if cfg!(miri) { 2_000 } else { 20_000u64 };
        let mut values: Vec<u64> = (0..len)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40)
            .collect();
        let mut expected = values.clone();
        expected.sort_unstable();
        let pool = Pool::new(threads).unwrap();
        let values = watchdog(move || {
            pool.scope(|s| s.apply(|| quicksort(&mut values)).unwrap());
            values
        });
        assert_eq!(values, expected, "{threads} threads");
    }
}

/// What `f` panicked with.
fn panic_of(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    panic_message(&*payload)
}

#[test]
fn a_panic_in_either_half_lets_the_other_finish_then_resumes() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        pool.scope(|s| {
            s.apply(|| {
                let b_ran = AtomicBool::new(false);
                let message = panic_of(|| {
                    fork_join(
                        || panic!("a failed"),
                        || {
                            thread::sleep(Duration::from_millis(5));
                            b_ran.store(true, Ordering::SeqCst);
                        },
                    );
                });
                assert_eq!(message, "a failed");
                assert!(
                    b_ran.load(Ordering::SeqCst),
                    "b finished before the panic resumed"
                );

                let a_ran = AtomicBool::new(false);
                let message = panic_of(|| {
                    fork_join(
                        || {
                            thread::sleep(Duration::from_millis(5));
                            a_ran.store(true, Ordering::SeqCst);
                        },
                        || panic!("b failed"),
                    );
                });
                assert_eq!(message, "b failed");
                assert!(a_ran.load(Ordering::SeqCst));

                let message = panic_of(|| {
                    fork_join(|| panic!("a first"), || panic!("b second"));
                });
                assert_eq!(message, "a first", "a's panic wins when both panic");
            })
            .unwrap();
        });
        // The same from outside the pool.
        let message = panic_of(|| {
            pool.scope(|s| s.fork_join(|| (), || panic!("b outside")));
        });
        assert_eq!(message, "b outside");
    });
}

#[test]
fn inside_a_task_fork_join_runs_on_that_tasks_pool() {
    let (outer, inner) = watchdog(|| {
        let pool = Pool::builder()
            .threads(2)
            .thread_name("forks")
            .build()
            .unwrap();
        let names = Mutex::new(HashSet::new());
        let record = || {
            let name = thread::current().name().unwrap_or("?").to_string();
            names.lock().unwrap().insert(name);
        };
        let inner = pool.scope(|s| {
            s.apply(|| {
                for _ in 0..100 {
                    fork_join(record, record);
                }
            })
            .unwrap();
            names.lock().unwrap().clone()
        });
        // Outside any task: the default pool's threads.
        let outer = {
            names.lock().unwrap().clear();
            fork_join(record, record);
            names.into_inner().unwrap()
        };
        (outer, inner)
    });
    assert!(
        inner.iter().all(|name| name.starts_with("forks-")),
        "{inner:?}"
    );
    assert!(
        outer
            .iter()
            .all(|name| name.starts_with("poolscope-default-")),
        "{outer:?}"
    );
}

#[test]
fn fork_join_nests_deep_on_a_one_thread_pool() {
    fn depth(n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        let (a, b) = fork_join(|| depth(n - 1), || depth(n - 1));
        a.max(b) + 1
    }
    let pool = Pool::new(1).unwrap();
    let got = watchdog(move || pool.scope(|s| s.apply(|| depth(12)).unwrap()));
    assert_eq!(got, 12);
}

#[test]
fn a_worker_waiting_for_its_stolen_half_runs_no_unrelated_work() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let config = Mutex::new("config");
        let b_started = Gate::default();
        let release_b = Gate::default();
        let fork_returned = AtomicBool::new(false);
        let unrelated_saw_fork_returned = Mutex::new(Vec::new());
        let (queued_tx, queued) = mpsc::channel::<()>();
        let queued = Mutex::new(queued);
        pool.scope(|s| {
            let holder = s.apply_async(|| {
                // Holds a lock while it waits for its second half: running
                // the unrelated batch (which takes the same lock) here would
                // deadlock.
                let _held = config.lock().unwrap();
                fork_join(
                    || {
                        // Returns once the other worker runs b.
                        b_started.wait();
                        queued.lock().unwrap().recv().unwrap();
                    },
                    || {
                        b_started.open();
                        release_b.wait();
                    },
                );
                fork_returned.store(true, Ordering::SeqCst);
            });
            b_started.wait();
            // Queued from outside while the holder's worker is about to wait.
            let unrelated = s.map_async(
                |_: u32| {
                    let _config = config.lock().unwrap();
                    unrelated_saw_fork_returned
                        .lock()
                        .unwrap()
                        .push(fork_returned.load(Ordering::SeqCst));
                },
                0..4,
            );
            queued_tx.send(()).unwrap();
            thread::sleep(Duration::from_millis(30));
            release_b.open();
            holder.get().unwrap();
            unrelated.get().unwrap();
        });
        let saw = unrelated_saw_fork_returned.into_inner().unwrap();
        assert_eq!(saw, [true; 4], "unrelated work ran inside the wait");
    });
}

#[test]
fn a_waiting_worker_runs_the_sub_splits_of_its_stolen_half() {
    // With two workers, the caller whose second half was stolen must help
    // with that half's own splits rather than sit idle: count how many
    // leaves each thread ran while the stolen half's subtree was large.
    let leaves_on = watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let counts = Mutex::new(std::collections::HashMap::<thread::ThreadId, usize>::new());
        fn tree(depth: u32, counts: &Mutex<std::collections::HashMap<thread::ThreadId, usize>>) {
            if depth == 0 {
                // A little work, so the tree takes a while.
                let mut x = 0u64;
                for i in 0..2_000u64 {
                    x = x.wrapping_add(std::hint::black_box(i));
                }
                std::hint::black_box(x);
                *counts
                    .lock()
                    .unwrap()
                    .entry(thread::current().id())
                    .or_default() += 1;
                return;
            }
            fork_join(|| tree(depth - 1, counts), || tree(depth - 1, counts));
        }
        let b_started = Gate::default();
        pool.scope(|s| {
            s.apply(|| {
                // The first half returns once the other worker has taken the
                // big second half; the caller then waits for it, and must
                // run that half's own splits meanwhile.
                fork_join(
                    || b_started.wait(),
                    || {
                        b_started.open();
                        tree(12, &counts)
                    },
                );
            })
            .unwrap()
        });
        counts.into_inner().unwrap()
    });
    let total: usize = leaves_on.values().sum();
    assert_eq!(total, 1 << 12);
    assert_eq!(leaves_on.len(), 2, "both workers ran leaves: {leaves_on:?}");
}

#[test]
fn many_fork_joins_from_many_outside_threads_at_once() {
    const ROUNDS: usize = if cfg!(miri) { 5 } else { 50 };
    let done = AtomicUsize::new(0);
    watchdog(move || {
        let pool = Pool::new(2).unwrap();
        thread::scope(|outside| {
            for _ in 0..4 {
                outside.spawn(|| {
                    for _ in 0..ROUNDS {
                        let (a, b) = pool.scope(|s| s.fork_join(|| fib(10), || fib(11)));
                        assert_eq!((a, b), (55, 89));
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(done.load(Ordering::SeqCst), 4 * ROUNDS);
    });
}
