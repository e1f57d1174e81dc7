//! `poolscope::blocking` (DESIGN point 12): a blocking call deep inside an
//! ordinary task hands its CPU worker's slot to a spare while it blocks, so
//! that blocking tasks overlap and CPU work beside them still runs; the
//! spares retire when they are no longer needed; outside a pool it just
//! runs the call.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use poolscope::{blocking, Pool};

mod common;

use common::{eventually, watchdog};

/// How many threads of this process have a name starting with `prefix`.
fn threads_named(prefix: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end().starts_with(prefix))
        .count()
}

#[test]
fn four_blocking_calls_on_a_one_thread_pool_overlap_and_a_cpu_task_still_runs() {
    let overlapping = watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let inside = AtomicUsize::new(0);
        let most_inside = AtomicUsize::new(0);
        let cpu_done = AtomicBool::new(false);
        pool.scope(|s| {
            // Four CPU tasks, each blocking until all four block at once
            // and the CPU task below has run: with one CPU thread, that
            // happens only if each one hands its slot on.
            let sleepers = s.batch().chunk(1).map_async(
                |_: u32| {
                    blocking(|| {
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most_inside.fetch_max(now, Ordering::SeqCst);
                        eventually("all four blocking calls overlap", || {
                            inside.load(Ordering::SeqCst) == 4
                        });
                        eventually("the CPU task ran beside them", || {
                            cpu_done.load(Ordering::SeqCst)
                        });
                        thread::sleep(Duration::from_millis(20));
                    })
                },
                0..4,
            );
            // Submitted after them, so it starts after the first of them
            // (on one worker, tasks start in submission order); the spare
            // that takes it may get there before that call is inside its
            // `blocking`, hence the wait. The blocking calls wait for it:
            // without a hand-off it never runs and they time out.
            let cpu = s.apply_async(|| {
                eventually("a blocking call is under way", || {
                    inside.load(Ordering::SeqCst) > 0
                });
                cpu_done.store(true, Ordering::SeqCst);
            });
            sleepers.get().unwrap();
            cpu.get().unwrap();
        });
        most_inside.load(Ordering::SeqCst)
    });
    assert_eq!(overlapping, 4);
}

#[test]
fn spares_retire_once_the_blocking_calls_are_over() {
    watchdog(|| {
        let pool = Pool::builder()
            .threads(1)
            .thread_name("spare-check")
            .blocking_idle_timeout(Duration::from_millis(20))
            .build()
            .unwrap();
        let inside = AtomicUsize::new(0);
        pool.scope(|s| {
            s.batch()
                .chunk(1)
                .map_async(
                    |_: u32| {
                        blocking(|| {
                            inside.fetch_add(1, Ordering::SeqCst);
                            eventually("three blocking calls overlap", || {
                                inside.load(Ordering::SeqCst) == 3
                            });
                        })
                    },
                    0..3,
                )
                .get()
                .unwrap();
        });
        assert!(threads_named("spare-check") >= 3, "spares stood in");
        eventually("the spares retired, leaving the one worker", || {
            threads_named("spare-check") == 1
        });
        // The pool still works, spares and all, afterwards.
        let again = pool
            .scope(|s| s.map(|x: u32| blocking(|| x * 2), 0..4))
            .unwrap();
        assert_eq!(again, [0, 2, 4, 6]);
        drop(pool);
        eventually("no thread outlives the pool", || {
            threads_named("spare-check") == 0
        });
    });
}

#[test]
fn outside_a_pool_blocking_just_runs_the_call() {
    let here = thread::current().id();
    let ran_on = blocking(|| thread::current().id());
    assert_eq!(ran_on, here);
    assert_eq!(blocking(|| 7), 7);
}

#[test]
fn a_panic_inside_blocking_is_the_tasks_panic_and_the_slot_comes_back() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        pool.scope(|s| {
            let error = s
                .apply_async(|| blocking(|| -> u32 { panic!("the disk went away") }))
                .get()
                .unwrap_err();
            assert_eq!(error.panic_message(), Some("the disk went away"));
            // The worker is a CPU worker again: work still runs.
            assert_eq!(s.map(|x: u32| x + 1, 0..100).unwrap().len(), 100);
        });
    });
}
