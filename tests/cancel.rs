//! Cancelling: `Batch::cancel` keeps tasks that have not started from ever
//! starting, a running task can see the cancel through
//! `current_task_cancelled()` and stop early, and a fail-fast batch cancels
//! itself at the first panic (or the first `Err` of a fallible batch).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

use poolscope::{current_task_cancelled, Pool, TaskErrorKind};

mod common;

use common::{eventually, watchdog, Gate};

#[test]
fn cancel_stops_every_task_that_has_not_started_and_they_report_cancelled() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let started = AtomicUsize::new(0);
        let finished = AtomicUsize::new(0);
        let release = Gate::default();
        pool.scope(|s| {
            let batch = s.batch().name("upload").chunk(1).map_async(
                |i: usize| {
                    started.fetch_add(1, Ordering::SeqCst);
                    release.wait();
                    finished.fetch_add(1, Ordering::SeqCst);
                    i
                },
                0..100,
            );
            // Both workers are held inside a task; nothing else can start.
            eventually("both workers to start a task", || {
                started.load(Ordering::SeqCst) == 2
            });
            assert_eq!(batch.cancel(), 98, "every task but the two running");
            assert!(batch.is_cancelled());
            release.open();
            batch.wait();
            assert_eq!(batch.completed(), 100, "cancelled tasks count as done");

            let failures = batch.failures();
            assert_eq!(failures.len(), 98);
            for failure in &failures {
                assert_eq!(*failure.kind(), TaskErrorKind::Cancelled);
                assert_eq!(failure.task_name(), Some("upload"));
            }
            let outcomes: Vec<_> = batch.results().collect();
            assert_eq!(outcomes.len(), 100);
            let ran: Vec<usize> = outcomes.iter().filter_map(|r| r.clone().ok()).collect();
            assert_eq!(ran.len(), 2, "only the running tasks have results");
            for (index, outcome) in outcomes.iter().enumerate() {
                if let Err(error) = outcome {
                    assert!(error.is_cancelled());
                    assert_eq!(error.index(), index);
                }
            }
        });
        assert_eq!(started.load(Ordering::SeqCst), 2, "no cancelled task ran");
        assert_eq!(finished.load(Ordering::SeqCst), 2, "running tasks finished");
    });
}

#[test]
fn a_cancelled_single_task_never_runs_and_its_handle_says_so() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let running = Gate::default();
        let release = Gate::default();
        let ran = AtomicBool::new(false);
        pool.scope(|s| {
            let blocker = s.apply_async(|| {
                running.open();
                release.wait();
            });
            running.wait();
            let queued = s.batch().name("report").apply_async(|| {
                ran.store(true, Ordering::SeqCst);
            });
            assert!(queued.cancel());
            assert!(!queued.cancel(), "a second cancel finds nothing to cancel");
            release.open();
            blocker.get().unwrap();
            let error = queued.get().unwrap_err();
            assert_eq!(*error.kind(), TaskErrorKind::Cancelled);
            assert_eq!(error.task_name(), Some("report"));
        });
        assert!(!ran.load(Ordering::SeqCst));
    });
}

#[test]
fn cancelling_a_finished_batch_changes_nothing() {
    let pool = Pool::new(2).unwrap();
    pool.scope(|s| {
        let batch = s.map_async(|x: u32| x + 1, 0..10);
        batch.wait();
        assert_eq!(batch.cancel(), 0);
        assert_eq!(batch.successful(), Some(true));
        assert_eq!(batch.get().unwrap(), (1..11).collect::<Vec<u32>>());
    });
}

#[test]
fn a_running_task_sees_current_task_cancelled_turn_true() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let started = Gate::default();
        let before = pool.scope(|s| {
            let task = s.apply_async(|| {
                let before = current_task_cancelled();
                started.open();
                while !current_task_cancelled() {
                    thread::yield_now();
                }
                before
            });
            // A task of another batch, running at the same time, is not
            // affected by this cancel.
            let other = s.apply_async(|| {
                started.wait();
                current_task_cancelled()
            });
            assert!(!other.get().unwrap(), "an uncancelled task sees false");
            assert!(
                !task.cancel(),
                "the task had started, so the cancel kept nothing from starting"
            );
            // It stops because it saw the cancel; had it not, the watchdog
            // would fail the test.
            task.get().unwrap()
        });
        assert!(!before, "false until the cancel");
        assert!(!current_task_cancelled(), "false outside any task");
    });
}

#[test]
fn terminating_the_scope_is_seen_by_a_running_task_too() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let running = Gate::default();
        let saw_cancel = pool.scope(|s| {
            let task = s.apply_async(|| {
                running.open();
                while !current_task_cancelled() {
                    thread::yield_now();
                }
                true
            });
            let queued = s.apply_async(|| false);
            running.wait();
            s.terminate();
            assert!(queued.get().unwrap_err().is_cancelled());
            task.get().unwrap()
        });
        assert!(saw_cancel);
    });
}

#[test]
fn fail_fast_cancels_the_rest_at_the_first_panic() {
    watchdog(|| {
        // One worker runs the tasks in order, so "the rest" is exact.
        let pool = Pool::new(1).unwrap();
        let ran = AtomicUsize::new(0);
        pool.scope(|s| {
            let batch = s.batch().fail_fast(true).chunk(1).map_async(
                |i: usize| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    if i == 3 {
                        panic!("bad record {i}");
                    }
                    i
                },
                0..20,
            );
            batch.wait();
            assert!(batch.is_cancelled());
            let failures = batch.failures();
            assert_eq!(failures.len(), 17, "{failures:?}");
            assert_eq!(failures[0].index(), 3);
            assert_eq!(failures[0].panic_message(), Some("bad record 3"));
            for (offset, failure) in failures[1..].iter().enumerate() {
                assert_eq!(failure.index(), 4 + offset);
                assert_eq!(*failure.kind(), TaskErrorKind::Cancelled);
            }
            let error = batch.get().unwrap_err();
            assert_eq!(error.index(), 3, "get reports the panic, not a cancel");
        });
        assert_eq!(ran.load(Ordering::SeqCst), 4, "tasks 0 to 3 ran, no more");
    });
}

#[test]
fn fail_fast_lets_running_tasks_finish_and_tells_them_to_stop() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let first_running = Gate::default();
        let ran = AtomicUsize::new(0);
        pool.scope(|s| {
            let batch = s.batch().fail_fast(true).chunk(1).map_async(
                |i: usize| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    match i {
                        0 => {
                            first_running.open();
                            // Runs until the batch is cancelled under it.
                            while !current_task_cancelled() {
                                thread::yield_now();
                            }
                            "stopped early"
                        }
                        1 => {
                            first_running.wait();
                            panic!("task one failed");
                        }
                        _ => "ran",
                    }
                },
                0..10,
            );
            batch.wait();
            let outcomes: Vec<_> = batch.results().collect();
            assert_eq!(*outcomes[0].as_ref().unwrap(), "stopped early");
            assert_eq!(
                outcomes[1].as_ref().unwrap_err().panic_message(),
                Some("task one failed")
            );
            for outcome in &outcomes[2..] {
                assert!(outcome.as_ref().unwrap_err().is_cancelled(), "{outcome:?}");
            }
        });
        assert_eq!(ran.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn fail_fast_cancels_the_rest_at_the_first_err_of_a_fallible_batch() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let ran = AtomicUsize::new(0);
        let lines = ["1", "2", "3", "four", "5", "6", "7"];
        pool.scope(|s| {
            let parsed = s.batch().fail_fast(true).chunk(1).map_async_fallible(
                |line: &str| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    line.parse::<u32>()
                },
                lines,
            );
            let outcomes: Vec<_> = parsed.results().collect();
            assert_eq!(outcomes.len(), 7);
            for (i, outcome) in outcomes[..3].iter().enumerate() {
                assert_eq!(*outcome.as_ref().unwrap(), Ok(i as u32 + 1));
            }
            assert!(
                outcomes[3].as_ref().unwrap().is_err(),
                "the task's own Err is its result"
            );
            for (offset, outcome) in outcomes[4..].iter().enumerate() {
                let error = outcome.as_ref().unwrap_err();
                assert_eq!(*error.kind(), TaskErrorKind::Cancelled);
                assert_eq!(error.index(), 4 + offset);
            }
        });
        assert_eq!(ran.load(Ordering::SeqCst), 4, "nothing ran after the Err");
    });
}

#[test]
fn without_fail_fast_an_err_or_a_panic_cancels_nothing() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let ran = AtomicUsize::new(0);
        pool.scope(|s| {
            let parsed = s.batch().chunk(1).map_async_fallible(
                |line: &str| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    line.parse::<u32>()
                },
                ["1", "x", "3"],
            );
            let outcomes = parsed.get().unwrap();
            assert!(outcomes[1].is_err());
            assert_eq!(outcomes[2], Ok(3));

            let panicky = s.batch().chunk(1).map_async(
                |i: usize| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    assert_ne!(i, 0, "task zero fails");
                },
                0..3,
            );
            panicky.wait();
            assert!(!panicky.is_cancelled());
            assert_eq!(panicky.failures().len(), 1);
        });
        assert_eq!(ran.load(Ordering::SeqCst), 6);
    });
}
