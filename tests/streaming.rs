//! Streaming results: in submission order as each is ready (Python's `imap`,
//! `Batch::results`), and in completion order with the index of the input
//! each belongs to (Python's `imap_unordered`, `Batch::as_completed`).
//!
//! Every test holds one task at a gate that the test opens only after it has
//! a result in hand: a stream that waited for the whole batch would never
//! hand that result over, and the watchdog would fail the test.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use poolscope::Pool;

mod common;

use common::{watchdog, Gate};

#[test]
fn batch_results_hands_over_the_first_result_while_the_last_task_still_runs() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let first_received = Gate::default();
        let last_finished = AtomicUsize::new(0);
        let received: Vec<(u32, bool)> = pool.scope(|s| {
            let batch = s.batch().chunk(1).map_async(
                |x: u32| {
                    if x == 7 {
                        // The last task cannot finish before the caller has
                        // the first result.
                        first_received.wait();
                        last_finished.store(1, Ordering::SeqCst);
                    }
                    x * 10
                },
                0..8,
            );
            let mut received = Vec::new();
            for result in batch.results() {
                let value = result.unwrap();
                received.push((value, last_finished.load(Ordering::SeqCst) == 1));
                first_received.open();
            }
            received
        });
        let values: Vec<u32> = received.iter().map(|&(value, _)| value).collect();
        assert_eq!(values, [0, 10, 20, 30, 40, 50, 60, 70], "submission order");
        assert!(
            !received[0].1,
            "the first result was in hand before the last task finished"
        );
        assert!(received[7].1, "the last result came after the last task");
    });
}

#[test]
fn a_for_loop_over_a_batch_streams_in_submission_order() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let first_received = Gate::default();
        let finished_before_zero = AtomicUsize::new(0);
        pool.scope(|s| {
            // Task 0 is the slow one here: later tasks finish first, and the
            // loop still yields task 0's result first.
            let batch = s.batch().chunk(1).map_async(
                |x: usize| {
                    if x == 0 {
                        while finished_before_zero.load(Ordering::SeqCst) < 3 {
                            thread::yield_now();
                        }
                    } else {
                        finished_before_zero.fetch_add(1, Ordering::SeqCst);
                        if x == 5 {
                            first_received.wait();
                        }
                    }
                    x
                },
                0..6,
            );
            let mut seen = Vec::new();
            for result in batch {
                seen.push(result.unwrap());
                first_received.open();
            }
            assert_eq!(seen, [0, 1, 2, 3, 4, 5]);
        });
    });
}

#[test]
fn imap_hands_over_the_first_result_while_the_last_task_still_runs() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let first_received = Gate::default();
        let words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"];
        pool.scope(|s| {
            let mut lens = s.imap(
                |word: &&str| {
                    if *word == "zeta" {
                        first_received.wait();
                    }
                    word.len()
                },
                &words,
            );
            assert_eq!(lens.next().unwrap().unwrap(), 5);
            assert!(!first_received.is_open());
            first_received.open();
            let rest: Vec<usize> = lens.map(Result::unwrap).collect();
            assert_eq!(rest, [4, 5, 5, 7, 4]);
        });
    });
}

#[test]
fn as_completed_gives_a_fast_tasks_result_before_a_slow_ones_with_its_index() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let fast_received = Gate::default();
        let inputs = ["slow", "fast-1", "fast-2", "fast-3"];
        let order: Vec<(usize, String)> = pool.scope(|s| {
            let batch = s.batch().chunk(1).map_async(
                |name: &str| {
                    if name == "slow" {
                        fast_received.wait();
                    }
                    name.to_uppercase()
                },
                inputs,
            );
            let mut order = Vec::new();
            for (index, result) in batch.as_completed() {
                order.push((index, result.unwrap()));
                if order.len() == 3 {
                    // Only now may the slow task finish.
                    fast_received.open();
                }
            }
            order
        });
        assert_eq!(order.len(), 4);
        assert_eq!(order[3], (0, "SLOW".to_string()), "the slow task came last");
        for (index, result) in &order {
            assert_eq!(
                *result,
                inputs[*index].to_uppercase(),
                "each result names its input"
            );
        }
        let mut indices: Vec<usize> = order.iter().map(|&(i, _)| i).collect();
        indices.sort_unstable();
        assert_eq!(indices, [0, 1, 2, 3], "every task exactly once");
    });
}

#[test]
fn as_completed_reports_a_failed_task_at_its_index() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        pool.scope(|s| {
            let batch = s.map_async(
                |x: u32| {
                    if x == 2 {
                        panic!("cannot do {x}");
                    }
                    x
                },
                0..5,
            );
            let mut outcomes: Vec<_> = batch.as_completed().collect();
            outcomes.sort_by_key(|&(index, _)| index);
            for (index, outcome) in outcomes {
                match outcome {
                    Ok(value) => assert_eq!(value as usize, index),
                    Err(error) => {
                        assert_eq!(index, 2);
                        assert_eq!(error.index(), 2);
                        assert_eq!(error.panic_message(), Some("cannot do 2"));
                    }
                }
            }
        });
    });
}

#[test]
fn imap_unordered_gives_fast_results_first_each_with_its_input_index() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let fast_received = Gate::default();
        let inputs: Vec<u64> = (0..40).collect();
        pool.scope(|s| {
            let stream = s.batch().chunk(1).in_flight(8).imap_unordered(
                |x: &u64| {
                    if *x == 0 {
                        fast_received.wait();
                    }
                    x * x
                },
                &inputs,
            );
            let mut seen = Vec::new();
            for (index, result) in stream {
                assert_eq!(result.unwrap(), inputs[index] * inputs[index]);
                seen.push(index);
                if seen.len() == 5 {
                    fast_received.open();
                }
            }
            assert_ne!(seen[0], 0, "input 0 was held back, others came first");
            assert!(
                seen.iter().position(|&i| i == 0).unwrap() >= 5,
                "input 0 finished only after five others were received: {seen:?}"
            );
            seen.sort_unstable();
            assert_eq!(seen, (0..40).collect::<Vec<usize>>());
        });
    });
}

#[test]
fn a_failure_in_imap_names_the_input_it_belongs_to() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        pool.scope(|s| {
            // Inputs are submitted in small batches; the index is still the
            // position in the whole input.
            let results: Vec<_> = s
                .batch()
                .in_flight(4)
                .imap(
                    |x: u32| {
                        if x == 13 {
                            panic!("thirteen");
                        }
                        x
                    },
                    0..20,
                )
                .collect();
            assert_eq!(results.len(), 20);
            for (i, result) in results.into_iter().enumerate() {
                match result {
                    Ok(x) => assert_eq!(x as usize, i),
                    Err(error) => {
                        assert_eq!(i, 13);
                        assert_eq!(error.index(), 13);
                    }
                }
            }
        });
    });
}

#[test]
fn cancelling_a_stream_over_an_endless_input_ends_it() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let pulled = AtomicUsize::new(0);
        let input = (0u64..).inspect(|_| {
            pulled.fetch_add(1, Ordering::Relaxed);
        });
        pool.scope(|s| {
            let mut ordered = s.batch().in_flight(8).imap(|n: u64| n * 2, input);
            assert_eq!(ordered.next().unwrap().unwrap(), 0);
            ordered.cancel();
            // What was in flight comes out (finished or cancelled), in order,
            // and then the stream ends although its input never does.
            let rest: Vec<_> = ordered.collect();
            assert!(rest.len() < 8, "{}", rest.len());
            for (i, result) in rest.iter().enumerate() {
                match result {
                    Ok(n) => assert_eq!(*n, 2 * (i as u64 + 1)),
                    Err(error) => assert!(error.is_cancelled(), "{error}"),
                }
            }
        });
        assert!(pulled.load(Ordering::Relaxed) <= 8 + 1);

        pool.scope(|s| {
            let mut unordered = s
                .batch()
                .in_flight(8)
                .imap_unordered(|n: u64| n * 2, 0u64..);
            assert!(unordered.next().unwrap().1.is_ok());
            unordered.cancel();
            assert!(unordered.count() < 8);
        });
    });
}

#[test]
fn fail_fast_stops_a_stream_over_an_endless_input_at_the_first_panic() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let task = |n: u64| {
            assert!(n != 5, "task 5 fails");
            n
        };
        pool.scope(|s| {
            // Without fail-fast this stream would never end.
            let ordered: Vec<_> = s
                .batch()
                .fail_fast(true)
                .in_flight(4)
                .imap(task, 0u64..)
                .collect();
            let failed = ordered.iter().position(Result::is_err).unwrap();
            assert_eq!(failed, 5, "the panic is the first failure, at its input");
            assert!(ordered[5].as_ref().unwrap_err().is_panic());
            assert!(ordered.len() < 5 + 2 * 4, "{} results", ordered.len());

            let unordered: Vec<_> = s
                .batch()
                .fail_fast(true)
                .in_flight(4)
                .imap_unordered(task, 0u64..)
                .collect();
            assert!(
                unordered
                    .iter()
                    .any(|(index, result)| *index == 5
                        && result.as_ref().is_err_and(|e| e.is_panic()))
            );
            assert!(unordered.len() < 5 + 2 * 4, "{} results", unordered.len());
        });
    });
}

#[test]
fn a_task_can_stream_the_results_of_earlier_tasks_of_its_own_batch() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let handed_over = Gate::default();
        let seen = std::sync::Mutex::new(Vec::new());
        pool.scope(|s| {
            let cell = std::sync::Arc::new(std::sync::Mutex::new(None));
            let task_cell = cell.clone();
            let (handed_over, seen) = (&handed_over, &seen);
            // One worker, one chunk of four: task 3 runs while tasks 0..3,
            // which finished on the same worker, are not yet reported as a
            // chunk. Reading their results must not wait for that report.
            let batch = s.batch().chunk(4).map_async(
                move |i: u32| {
                    if i == 0 {
                        handed_over.wait();
                    }
                    if i == 3 {
                        let batch: poolscope::Batch<'_, u32> =
                            task_cell.lock().unwrap().take().unwrap();
                        let mut results = batch.results();
                        for _ in 0..3 {
                            let value = results.next().unwrap().unwrap();
                            let done = results.batch().completed();
                            seen.lock().unwrap().push((value, done));
                        }
                    }
                    i * 10
                },
                0..4,
            );
            *cell.lock().unwrap() = Some(batch);
            handed_over.open();
        });
        let seen = seen.into_inner().unwrap();
        let values: Vec<u32> = seen.iter().map(|&(value, _)| value).collect();
        assert_eq!(values, [0, 10, 20]);
        for (read, &(_, done)) in seen.iter().enumerate() {
            assert!(
                done > read,
                "{} results read, completed() said {done}",
                read + 1
            );
        }
    });
}
