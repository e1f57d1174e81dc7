//! Submitting work and using the batch handle: Python's `apply_async`,
//! `map_async`, `starmap_async` and their blocking forms, then `wait`,
//! `ready`, `successful`, `get` and friends on what they return.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use poolscope::{GetTimeoutError, Pool, TaskError};

mod common;

use common::{eventually, watchdog, Gate};

fn area(width: u32, height: u32) -> u32 {
    width * height
}

fn is_error<E: std::error::Error>(_: &E) {}

#[test]
fn apply_async_gives_the_tasks_value_through_get() {
    let pool = Pool::new(2).unwrap();
    let name = String::from("poolscope");
    pool.scope(|s| {
        let task = s.apply_async(|| name.to_uppercase());
        assert_eq!(task.get().unwrap(), "POOLSCOPE");
        let task = s.apply_async(|| 6 * 7);
        task.wait();
        assert!(task.is_ready());
        assert_eq!(task.successful(), Some(true));
        assert!(task.wait_timeout(Duration::ZERO));
        assert_eq!(task.get_timeout(Duration::from_secs(60)).unwrap(), 42);
    });
}

#[test]
fn map_async_gives_one_result_per_item_in_submission_order() {
    let pool = Pool::new(2).unwrap();
    let words = ["pool", "scope", "", "batch"];
    pool.scope(|s| {
        let lens = s.map_async(|w: &&str| w.len(), &words);
        assert_eq!(lens.len(), 4);
        assert!(!lens.is_empty());
        assert_eq!(lens.get().unwrap(), [4, 5, 0, 5]);
        let squares = s.map_async(|x: u64| x * x, 0..1000);
        let expected: Vec<u64> = (0..1000).map(|x| x * x).collect();
        assert_eq!(squares.get().unwrap(), expected);
    });
}

#[test]
fn starmap_async_calls_a_two_argument_function_with_each_pair() {
    let pool = Pool::new(2).unwrap();
    let sizes = [(640, 480), (1920, 1080), (0, 5)];
    pool.scope(|s| {
        let areas = s.starmap_async(area, sizes);
        assert_eq!(areas.get().unwrap(), [307_200, 2_073_600, 0]);
        let joined = s.starmap_async(|a: &str, n: usize| a.repeat(n), [("ab", 2), ("c", 3)]);
        assert_eq!(joined.get().unwrap(), ["abab", "ccc"]);
    });
}

#[test]
fn apply_map_and_starmap_block_until_the_results_are_in() {
    let pool = Pool::new(2).unwrap();
    let data = vec![1, 2, 3];
    pool.scope(|s| {
        assert_eq!(s.apply(|| data.iter().sum::<i32>()).unwrap(), 6);
        assert_eq!(s.map(|x: &i32| x * 10, &data).unwrap(), [10, 20, 30]);
        assert_eq!(s.starmap(area, [(2, 3), (4, 5)]).unwrap(), [6, 20]);
    });
}

#[test]
fn an_empty_batch_is_ready_at_once_with_no_results() {
    let pool = Pool::new(1).unwrap();
    pool.scope(|s| {
        let batch = s.map_async(|x: u32| x, Vec::new());
        assert!(batch.is_ready());
        assert!(batch.is_empty());
        assert_eq!(batch.len(), 0);
        assert_eq!(batch.completed(), 0);
        assert_eq!(batch.successful(), Some(true));
        assert!(batch.failures().is_empty());
        assert!(batch.wait_timeout(Duration::ZERO));
        batch.wait();
        assert_eq!(batch.get(), Ok(vec![]));

        let empty = s.starmap_async(area, []);
        assert_eq!(
            empty.get_timeout(Duration::ZERO).unwrap(),
            Vec::<u32>::new()
        );
        assert_eq!(s.map(|x: u8| x, []), Ok(vec![]));
    });
}

#[test]
fn results_come_in_submission_order_even_when_later_tasks_finish_first() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let others_done = Gate::default();
        let finished = AtomicUsize::new(0);
        let finish_order = Mutex::new(Vec::new());
        let results = pool.scope(|s| {
            // One task at a time per claim, so task 0 is never stuck in a
            // chunk ahead of the tasks it waits for.
            s.batch()
                .chunk(1)
                .map_async(
                    |i: usize| {
                        if i == 0 {
                            others_done.wait();
                        }
                        finish_order.lock().unwrap().push(i);
                        if finished.fetch_add(1, Ordering::SeqCst) + 1 == 7 {
                            others_done.open();
                        }
                        i * 100
                    },
                    0..8,
                )
                .get()
                .unwrap()
        });
        let finish_order = finish_order.into_inner().unwrap();
        assert_eq!(*finish_order.last().unwrap(), 0, "task 0 finished last");
        assert_eq!(results, [0, 100, 200, 300, 400, 500, 600, 700]);
    });
}

#[test]
fn wait_timeout_is_false_while_a_task_is_blocked_and_true_after() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let gate = Gate::default();
        pool.scope(|s| {
            let batch = s.batch().chunk(1).map_async(
                |i: u32| {
                    if i == 2 {
                        gate.wait()
                    }
                },
                0..4,
            );
            assert!(!batch.wait_timeout(Duration::from_millis(20)));
            assert!(!batch.is_ready());
            assert_eq!(batch.successful(), None, "not ready is not a failure");
            assert!(batch.failures().is_empty());
            assert!(batch.completed() < 4);

            gate.open();
            assert!(batch.wait_timeout(Duration::from_secs(50)));
            assert!(batch.is_ready());
            assert_eq!(batch.completed(), 4);
            assert_eq!(batch.successful(), Some(true));
        });
    });
}

#[test]
fn successful_is_none_until_ready_then_says_whether_every_task_succeeded() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let gate = Gate::default();
        pool.scope(|s| {
            let good = s.map_async(|x: u32| x + 1, 0..10);
            let bad = s.map_async(
                |x: u32| {
                    gate.wait();
                    if x == 3 {
                        panic!("bad input {x}");
                    }
                    x
                },
                0..5,
            );
            assert_eq!(bad.successful(), None);
            good.wait();
            assert_eq!(good.successful(), Some(true));
            gate.open();
            bad.wait();
            assert_eq!(bad.successful(), Some(false));
            assert!(bad.is_ready());
        });
    });
}

#[test]
fn get_gives_the_first_failure_in_submission_order() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let task_3_failed = Gate::default();
        let error: TaskError = pool.scope(|s| {
            s.batch()
                .chunk(1)
                .map_async(
                    |i: usize| match i {
                        // Task 1 fails only after task 3 did.
                        1 => {
                            task_3_failed.wait();
                            panic!("task one failed");
                        }
                        3 => {
                            task_3_failed.open();
                            panic!("task three failed");
                        }
                        _ => i,
                    },
                    0..6,
                )
                .get()
                .unwrap_err()
        });
        is_error(&error);
        assert_eq!(error.index(), 1);
        assert_eq!(error.panic_message(), Some("task one failed"));
        assert!(error.is_panic());
        assert!(!error.is_cancelled());
        let location = error.location().unwrap();
        assert!(location.file().ends_with("batches.rs"), "{location}");
        assert_eq!(
            error.to_string(),
            format!("task 1 panicked at {location}: task one failed")
        );
        let as_dyn: Box<dyn std::error::Error + Send + Sync> = Box::new(error);
        assert!(as_dyn.to_string().contains("task one failed"));
    });
}

#[test]
fn failures_lists_every_failed_task_in_submission_order() {
    let pool = Pool::new(2).unwrap();
    pool.scope(|s| {
        let batch = s.map_async(
            |i: usize| {
                if i % 3 == 0 {
                    panic!("multiple of three: {i}");
                }
                i
            },
            0..10,
        );
        batch.wait();
        let failures = batch.failures();
        let indices: Vec<usize> = failures.iter().map(|f| f.index()).collect();
        assert_eq!(indices, [0, 3, 6, 9]);
        assert_eq!(failures[2].panic_message(), Some("multiple of three: 6"));
        // Asking again gives the same answer.
        assert_eq!(batch.failures(), failures);
    });
}

#[test]
fn get_timeout_gives_the_batch_back_on_timeout_and_results_after() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let gate = Gate::default();
        pool.scope(|s| {
            let batch = s.map_async(
                |x: u32| {
                    gate.wait();
                    x * 2
                },
                0..3,
            );
            let batch = match batch.get_timeout(Duration::from_millis(20)) {
                Err(GetTimeoutError::Timeout(batch)) => batch,
                other => panic!("expected a timeout, got {other:?}"),
            };
            assert_eq!(batch.len(), 3);
            gate.open();
            assert_eq!(
                batch.get_timeout(Duration::from_secs(50)).unwrap(),
                [0, 2, 4]
            );

            let failing = s.map_async(|_: u32| -> u32 { panic!("no result") }, 0..1);
            match failing.get_timeout(Duration::from_secs(50)) {
                Err(GetTimeoutError::Failed(error)) => {
                    assert_eq!(error.panic_message(), Some("no result"))
                }
                other => panic!("expected the task's failure, got {other:?}"),
            }
        });
    });
}

#[test]
fn completed_counts_tasks_as_they_finish() {
    watchdog(|| {
        let pool = Pool::new(3).unwrap();
        let gates: Vec<Gate> = (0..3).map(|_| Gate::default()).collect();
        pool.scope(|s| {
            let batch = s
                .batch()
                .chunk(1)
                .map_async(|gate: &Gate| gate.wait(), &gates);
            assert_eq!(batch.completed(), 0);
            for (i, gate) in gates.iter().enumerate() {
                gate.open();
                eventually("the task to be counted as completed", || {
                    batch.completed() == i + 1
                });
                // The others are still held at their gates.
                assert_eq!(batch.completed(), i + 1);
                assert_eq!(batch.is_ready(), i == 2);
            }
            assert_eq!(batch.successful(), Some(true));
        });
    });
}

#[test]
fn cancel_keeps_tasks_that_have_not_started_from_starting() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let started = Gate::default();
        let release = Gate::default();
        let ran = AtomicUsize::new(0);
        pool.scope(|s| {
            let batch = s.batch().chunk(1).map_async(
                |i: usize| {
                    if i == 0 {
                        started.open();
                        release.wait();
                    }
                    ran.fetch_add(1, Ordering::SeqCst);
                    i
                },
                0..5,
            );
            started.wait();
            assert!(!batch.is_cancelled());
            assert_eq!(batch.cancel(), 4, "tasks 1 to 4 had not started");
            assert!(batch.is_cancelled());
            release.open();
            batch.wait();
            assert_eq!(batch.completed(), 5);
            assert_eq!(batch.successful(), Some(false));
            let failures = batch.failures();
            assert_eq!(failures.len(), 4);
            assert!(failures.iter().all(TaskError::is_cancelled), "{failures:?}");
            assert_eq!(failures[0].index(), 1);
            assert!(
                failures[0].to_string().contains("cancelled"),
                "{}",
                failures[0]
            );
            assert_eq!(batch.cancel(), 0, "nothing left to cancel");
            let error = batch.get().unwrap_err();
            assert!(error.is_cancelled());
            assert_eq!(error.index(), 1);
        });
        assert_eq!(ran.load(Ordering::SeqCst), 1, "only the running task ran");
    });
}

#[test]
fn a_single_task_can_be_cancelled_before_it_starts() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let started = Gate::default();
        let release = Gate::default();
        pool.scope(|s| {
            let blocker = s.apply_async(|| {
                started.open();
                release.wait();
            });
            started.wait();
            let queued = s.apply_async(|| "never");
            assert!(queued.cancel());
            release.open();
            blocker.get().unwrap();
            assert!(queued.get().unwrap_err().is_cancelled());
        });
    });
}

#[test]
fn the_debug_output_shows_name_size_progress_and_readiness() {
    let pool = Pool::new(1).unwrap();
    pool.scope(|s| {
        let batch = s.batch().name("thumbnail").map_async(|x: u8| x, 0..3);
        batch.wait();
        let debug = format!("{batch:?}");
        for part in [
            "Batch",
            "\"thumbnail\"",
            "len: 3",
            "completed: 3",
            "ready: true",
        ] {
            assert!(debug.contains(part), "{part} missing from {debug}");
        }
        assert_eq!(batch.name(), Some("thumbnail"));
        let task = s.apply_async(|| ());
        task.wait();
        assert!(format!("{task:?}").contains("Task"), "{task:?}");
    });
}

#[test]
fn several_threads_may_wait_on_the_same_batch() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let gate = Gate::default();
        pool.scope(|s| {
            let batch = s.map_async(|x: u32| gate.wait_then(x), 0..4);
            thread::scope(|t| {
                let waiters: Vec<_> = (0..3).map(|_| t.spawn(|| batch.wait())).collect();
                gate.open();
                for waiter in waiters {
                    waiter.join().unwrap();
                }
            });
            assert!(batch.is_ready());
            assert_eq!(batch.get().unwrap(), [0, 1, 2, 3]);
        });
    });
}

#[test]
fn a_task_handle_turns_into_a_batch_of_one() {
    let pool = Pool::new(1).unwrap();
    pool.scope(|s| {
        let batch = s.batch().name("single").apply_async(|| 9).into_batch();
        assert_eq!(batch.len(), 1);
        assert_eq!(batch.name(), Some("single"));
        assert_eq!(batch.get().unwrap(), [9]);
    });
}

#[test]
fn a_batch_over_an_integer_range_gets_every_input_of_the_range() {
    // Ranges of integers are not collected on the submitting thread: each
    // task computes its input from its index. Every type and sign, empty
    // and backwards ranges, and the ends of the types' values.
    poolscope::scope(|s| {
        let got = s.map_async(|x: usize| x, 3..10).get().unwrap();
        assert_eq!(got, (3..10).collect::<Vec<_>>());
        let got = s.map_async(|x: i32| x * 2, -5..5).get().unwrap();
        assert_eq!(got, (-5..5).map(|x| x * 2).collect::<Vec<_>>());
        let got = s
            .map_async(|x: i64| x, i64::MIN..i64::MIN + 3)
            .get()
            .unwrap();
        assert_eq!(got, [i64::MIN, i64::MIN + 1, i64::MIN + 2]);
        let got = s
            .map_async(|x: u64| x, u64::MAX - 2..u64::MAX)
            .get()
            .unwrap();
        assert_eq!(got, [u64::MAX - 2, u64::MAX - 1]);
        let got = s.map_async(|x: u32| x, 7..7).get().unwrap();
        assert!(got.is_empty());
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = s.map_async(|x: i32| x, 5..-5);
        assert!(backwards.is_empty());
        // A million under the native test run; miri interprets each task
        // some thousand times slower.
        let n: usize = if cfg!(miri) { 1_000 } else { 1_000_000 };
        let sum: usize = s.map_async(|x: usize| x, 0..n).get().unwrap().iter().sum();
        assert_eq!(sum, n * (n - 1) / 2);
        // Other iterators are collected as before.
        let got = s.map_async(|x: u8| x, (1..=3u8).rev()).get().unwrap();
        assert_eq!(got, [3, 2, 1]);
    });
}

#[test]
fn cancelled_tasks_of_a_range_batch_are_reported_at_their_inputs() {
    let pool = poolscope::Pool::new(1).unwrap();
    let gate = std::sync::Barrier::new(2);
    pool.scope(|s| {
        let batch = s.batch().chunk(1).map_async(
            |x: i64| {
                if x == 100 {
                    gate.wait();
                    gate.wait();
                }
                x
            },
            100..110,
        );
        gate.wait();
        assert_eq!(batch.cancel(), 9);
        gate.wait();
        let outcomes: Vec<_> = batch.results().collect();
        assert_eq!(*outcomes[0].as_ref().unwrap(), 100);
        assert!(outcomes[1..]
            .iter()
            .all(|outcome| outcome.as_ref().unwrap_err().is_cancelled()));
    });
}
