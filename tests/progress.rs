//! Progress: `Batch::completed()` counts finished tasks, never goes back,
//! never lags the results a stream handed out, and reaches `len()` when the
//! batch is ready, so `completed() / len()` can drive a progress bar.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use poolscope::Pool;

mod common;

use common::{eventually, watchdog, Gate};

/// Checks a run of `completed()` readings: never down, never past `len`.
fn assert_monotonic(readings: &[usize], len: usize) {
    for pair in readings.windows(2) {
        assert!(pair[0] <= pair[1], "progress went back: {pair:?}");
    }
    assert!(readings.iter().all(|&done| done <= len), "past {len}");
}

#[test]
fn completed_rises_monotonically_to_len() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let held = Gate::default();
        let len = 400;
        pool.scope(|s| {
            // Task 200 waits until the caller has seen every other task done,
            // so progress is visibly partway before it is complete.
            let batch = s.batch().chunk(1).map_async(
                |i: u64| {
                    if i == 200 {
                        held.wait();
                    }
                    (0..i * 50).fold(0u64, |acc, x| acc ^ x.wrapping_mul(31))
                },
                0..len,
            );
            assert_eq!(batch.len(), 400);
            let mut readings = vec![batch.completed()];
            loop {
                let ready = batch.is_ready();
                let done = batch.completed();
                readings.push(done);
                if ready {
                    assert_eq!(done, batch.len(), "ready means every task counted");
                    break;
                }
                if done == batch.len() - 1 {
                    assert!(!batch.is_ready(), "one task is still held");
                    held.open();
                }
                thread::yield_now();
            }
            assert_monotonic(&readings, batch.len());
            assert!(readings.contains(&(batch.len() - 1)), "seen partway");
            assert_eq!(*readings.last().unwrap(), 400);
            assert_eq!(batch.completed(), 400, "and it stays there");
        });
    });
}

#[test]
fn completed_is_monotonic_for_every_observer_while_tasks_finish() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let len = 20_000;
        pool.scope(|s| {
            // Tiny tasks, claimed in adaptive chunks: the count moves in
            // steps, and still only upward.
            let batch = s.map_async(|x: u64| x.count_ones(), 0..len);
            let stop = AtomicBool::new(false);
            let readings: Vec<Vec<usize>> = thread::scope(|t| {
                let observers: Vec<_> = (0..3)
                    .map(|_| {
                        t.spawn(|| {
                            let mut readings = Vec::new();
                            while !stop.load(Ordering::SeqCst) {
                                readings.push(batch.completed());
                            }
                            readings.push(batch.completed());
                            readings
                        })
                    })
                    .collect();
                batch.wait();
                stop.store(true, Ordering::SeqCst);
                observers.into_iter().map(|o| o.join().unwrap()).collect()
            });
            for readings in &readings {
                assert_monotonic(readings, batch.len());
                assert_eq!(*readings.last().unwrap(), batch.len());
            }
        });
    });
}

#[test]
fn completed_counts_failed_and_cancelled_tasks_too() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let running = Gate::default();
        let release = Gate::default();
        pool.scope(|s| {
            let batch = s.batch().chunk(1).map_async(
                |i: u32| match i {
                    0 => {
                        running.open();
                        release.wait();
                    }
                    1 => panic!("task one fails"),
                    _ => {}
                },
                0..10,
            );
            running.wait();
            assert_eq!(batch.completed(), 0);
            release.open();
            eventually("three tasks to complete", || batch.completed() >= 3);
            let cancelled = batch.cancel();
            batch.wait();
            assert_eq!(batch.completed(), 10, "{cancelled} cancelled count as done");
            assert_eq!(batch.failures().len(), 1 + cancelled);
        });
    });
}

#[test]
fn a_stream_shows_progress_while_its_results_are_read() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        // Many rounds of tiny tasks: workers claim them in chunks and count
        // a chunk only after publishing its results, the window in which a
        // reader could get ahead of `completed()`.
        for _ in 0..200 {
            pool.scope(|s| {
                let batch = s.map_async(|x: u32| x * 3, 0..500);
                let mut results = batch.results();
                let mut last = 0;
                let mut read = 0;
                while let Some(result) = results.next() {
                    read += 1;
                    let done = results.batch().completed();
                    assert!(done >= last, "progress went back");
                    assert!(done >= read, "{read} results read, {done} completed");
                    last = done;
                    assert_eq!(result.unwrap() as usize, (read - 1) * 3);
                }
                assert_eq!(results.batch().completed(), results.batch().len());
            });
        }
    });
}

#[test]
fn results_in_completion_order_never_outrun_completed() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        for _ in 0..200 {
            pool.scope(|s| {
                let batch = s.map_async(|x: u32| x * 3, 0..500);
                let mut results = batch.as_completed();
                let mut read = 0;
                let mut seen = vec![false; 500];
                while let Some((index, result)) = results.next() {
                    read += 1;
                    let done = results.batch().completed();
                    assert!(done >= read, "{read} results read, {done} completed");
                    assert!(!std::mem::replace(&mut seen[index], true), "{index} twice");
                    assert_eq!(result.unwrap() as usize, index * 3);
                }
                assert_eq!(read, 500);
            });
        }
    });
}
