//! The blocking lane: tasks marked `blocking` (sleeps, I/O) run on extra
//! threads that the pool starts on demand, up to a cap, and retires when
//! they idle, so that waiting tasks run side by side on any machine while
//! CPU tasks keep one worker per thread of the pool.
//!
//! Speed is the benchmark harness's business: these tests measure how many
//! tasks ran at once (with atomics), never how long anything took.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use poolscope::Pool;

mod common;

use common::{eventually, watchdog, Gate};

/// Counts the tasks running right now and the most that ever ran at once.
#[derive(Default)]
struct Concurrency {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Concurrency {
    /// Marks a task as running until the returned guard is dropped.
    fn enter(&self) -> Running<'_> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        Running(self)
    }

    fn now(&self) -> usize {
        self.now.load(Ordering::SeqCst)
    }

    fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

struct Running<'a>(&'a Concurrency);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The pool's index of the worker running this, from its name
/// `{prefix}-{index}`: CPU workers are `0..threads`, blocking-lane threads
/// come after.
fn worker_index() -> usize {
    let name = thread::current().name().unwrap_or_default().to_string();
    name.rsplit('-').next().unwrap().parse().unwrap()
}

#[test]
fn ten_sleeping_tasks_on_the_blocking_lane_of_a_two_thread_pool_run_side_by_side() {
    watchdog(|| {
        let pool = Pool::builder()
            .threads(2)
            .thread_name("sleepers")
            .build()
            .unwrap();
        let sleeping = Concurrency::default();
        let threads = Mutex::new(BTreeSet::new());
        let done = pool.scope(|s| {
            s.batch()
                .blocking(true)
                .map_async(
                    |identifier: u32| {
                        let _running = sleeping.enter();
                        threads.lock().unwrap().insert(worker_index());
                        thread::sleep(Duration::from_millis(300));
                        identifier
                    },
                    0..10,
                )
                .get()
                .unwrap()
        });
        assert_eq!(done, (0..10).collect::<Vec<u32>>());
        // On the CPU lane at most 2 of them could sleep at once.
        assert!(
            sleeping.max() > 2,
            "at most {} slept at once on a 2-thread pool",
            sleeping.max()
        );
        let threads = threads.into_inner().unwrap();
        assert!(
            threads.iter().all(|&index| index >= 2),
            "blocking tasks ran on the blocking lane, not the CPU workers: {threads:?}"
        );
    });
}

#[test]
fn a_cpu_batch_keeps_every_cpu_worker_while_blocking_tasks_wait() {
    watchdog(|| {
        const THREADS: usize = 2;
        let pool = Pool::builder()
            .threads(THREADS)
            .thread_name("mixed")
            .build()
            .unwrap();
        let waiting = Concurrency::default();
        let computing = Concurrency::default();
        let io_done = Gate::default();
        let cpu_workers = Mutex::new(BTreeSet::new());
        // The first round of CPU tasks only passes if every CPU worker is
        // free to run one at the same time.
        let every_worker = Barrier::new(THREADS);
        pool.scope(|s| {
            let io = s.batch().blocking(true).map_async(
                |_: u32| {
                    let _running = waiting.enter();
                    io_done.wait();
                },
                0..10,
            );
            eventually("all ten blocking tasks are waiting", || waiting.now() == 10);

            let sums = s.batch().chunk(1).map_async(
                |n: u64| {
                    let _running = computing.enter();
                    cpu_workers.lock().unwrap().insert(worker_index());
                    if n < THREADS as u64 {
                        every_worker.wait();
                    }
                    (0..n * 1000).fold(0u64, |acc, x| acc.wrapping_add(x * x))
                },
                0..40,
            );
            assert_eq!(sums.get().unwrap().len(), 40);
            assert_eq!(waiting.now(), 10, "the blocking tasks were still waiting");
            io_done.open();
            io.get().unwrap();
        });
        assert_eq!(computing.max(), THREADS, "CPU tasks ran one per worker");
        assert_eq!(waiting.max(), 10);
        let cpu_workers = cpu_workers.into_inner().unwrap();
        assert_eq!(
            cpu_workers,
            (0..THREADS).collect::<BTreeSet<_>>(),
            "CPU tasks ran on exactly the CPU workers"
        );
    });
}

#[test]
fn max_blocking_threads_caps_how_many_blocking_tasks_run_at_once() {
    watchdog(|| {
        let started_blocking = Arc::new(AtomicUsize::new(0));
        let pool = Pool::builder()
            .threads(1)
            .max_blocking_threads(3)
            .on_thread_start({
                let started_blocking = started_blocking.clone();
                move |index| {
                    if index >= 1 {
                        started_blocking.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
            .build()
            .unwrap();
        let waiting = Concurrency::default();
        let release = Gate::default();
        pool.scope(|s| {
            let first = s.batch().blocking(true).map_async(
                |_: u32| {
                    let _running = waiting.enter();
                    release.wait();
                },
                0..12,
            );
            // A second blocking batch does not get threads past the cap
            // either.
            let second = s.batch().blocking(true).map_async(
                |_: u32| {
                    let _running = waiting.enter();
                    release.wait();
                },
                0..4,
            );
            eventually("the cap is reached", || waiting.now() == 3);
            // Give a fourth thread every chance to show up before the tasks
            // are let go.
            thread::sleep(Duration::from_millis(50));
            assert_eq!(waiting.now(), 3);
            release.open();
            first.get().unwrap();
            second.get().unwrap();
        });
        assert_eq!(waiting.max(), 3, "never more than 3 blocking tasks at once");
        assert_eq!(
            started_blocking.load(Ordering::SeqCst),
            3,
            "never more than 3 blocking-lane threads"
        );
    });
}

#[test]
fn idle_blocking_threads_retire_after_the_idle_timeout() {
    watchdog(|| {
        const THREADS: usize = 2;
        let started = Arc::new(Mutex::new(Vec::new()));
        let exited = Arc::new(Mutex::new(Vec::new()));
        let pool = Pool::builder()
            .threads(THREADS)
            .blocking_idle_timeout(Duration::from_millis(20))
            .on_thread_start({
                let started = started.clone();
                move |index| started.lock().unwrap().push(index)
            })
            .on_thread_exit({
                let exited = exited.clone();
                move |index| exited.lock().unwrap().push(index)
            })
            .build()
            .unwrap();
        let blocking_started = || {
            let started = started.lock().unwrap();
            started.iter().filter(|&&index| index >= THREADS).count()
        };
        let blocking_exited = || {
            let exited = exited.lock().unwrap();
            exited.iter().filter(|&&index| index >= THREADS).count()
        };

        let waiting = Concurrency::default();
        let release = Gate::default();
        pool.scope(|s| {
            let batch = s.batch().blocking(true).map_async(
                |_: u32| {
                    let _running = waiting.enter();
                    release.wait();
                },
                0..4,
            );
            eventually("four blocking tasks run at once", || waiting.now() == 4);
            release.open();
            batch.get().unwrap();
        });
        assert_eq!(blocking_started(), 4);
        // The pool is still alive; only idleness makes these threads exit.
        eventually("every blocking-lane thread retired", || {
            blocking_exited() == 4
        });
        assert!(
            exited.lock().unwrap().iter().all(|&index| index >= THREADS),
            "CPU workers never retire: {:?}",
            exited.lock().unwrap()
        );

        // The lane grows again on demand after retiring.
        let names = pool.scope(|s| {
            s.batch()
                .blocking(true)
                .map_async(|_: u32| worker_index(), 0..2)
                .get()
                .unwrap()
        });
        assert!(names.iter().all(|&index| index >= THREADS + 4), "{names:?}");
        assert!(blocking_started() > 4, "new blocking threads were started");

        drop(pool);
        let started = started.lock().unwrap().len();
        assert_eq!(
            exited.lock().unwrap().len(),
            started,
            "every thread is gone once the pool is dropped"
        );
    });
}
