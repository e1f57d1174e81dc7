//! close / join / terminate, as in Python's `pool.close(); pool.join()`:
//! close refuses new work but lets queued work run, join waits for all of
//! it, terminate drops what has not started. The end of a scope waits for
//! every task, and still admits what the scope's own running tasks submit
//! (only an explicit close refuses them).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use poolscope::{JoinError, Pool, SubmitError, TaskError};

mod common;

use common::{panic_message, watchdog, Gate};

/// The message `f` panicked with; fails the test if it did not panic.
fn panics_with<R>(f: impl FnOnce() -> R) -> String {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic"),
        Err(payload) => panic_message(&*payload),
    }
}

fn slow_increment(counter: &AtomicUsize) {
    thread::sleep(Duration::from_millis(20));
    counter.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn close_is_idempotent_and_refuses_later_batches() {
    let pool = Pool::new(2).unwrap();
    pool.scope(|s| {
        assert!(!s.is_closed());
        s.close();
        s.close();
        assert!(s.is_closed());
        let refused = s.try_map_async(|x: u32| x, 0..3).unwrap_err();
        assert_eq!(refused, SubmitError::Closed);
        assert!(refused.to_string().contains("closed"), "{refused}");
        assert_eq!(s.try_apply_async(|| 1).unwrap_err(), SubmitError::Closed);
        assert_eq!(
            s.batch()
                .name("late")
                .try_map_async(|x: u32| x, [])
                .unwrap_err(),
            SubmitError::Closed,
            "even an empty batch is refused"
        );
        let error: Box<dyn std::error::Error> = Box::new(refused);
        assert!(!error.to_string().is_empty());
    });
}

#[test]
fn submitting_to_a_closed_scope_panics_saying_the_scope_is_closed() {
    let pool = Pool::new(2).unwrap();
    pool.scope(|s| {
        s.close();
        let messages = [
            panics_with(|| s.map_async(|x: u32| x, 0..3)),
            panics_with(|| s.apply_async(|| 1)),
            panics_with(|| s.starmap_async(|a: u32, b: u32| a + b, [(1, 2)])),
            panics_with(|| s.map(|x: u32| x, 0..3)),
            panics_with(|| s.apply(|| 1)),
            panics_with(|| s.batch().name("late").map_async(|x: u32| x, 0..3)),
        ];
        for message in messages {
            assert!(message.contains("closed"), "{message}");
            assert!(message.contains("scope"), "{message}");
        }
    });
}

#[test]
fn tasks_queued_before_close_still_run() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let started = Gate::default();
        let release = Gate::default();
        pool.scope(|s| {
            let first = s.apply_async(|| {
                started.open();
                release.wait();
                "first"
            });
            started.wait();
            // Queued behind the blocked task on the one worker.
            let queued = s.map_async(|x: u32| x * 3, 0..4);
            s.close();
            release.open();
            s.join();
            assert!(queued.is_ready());
            assert_eq!(first.get().unwrap(), "first");
            assert_eq!(queued.get().unwrap(), [0, 3, 6, 9]);
        });
    });
}

#[test]
fn join_waits_for_every_task_whether_or_not_its_handle_was_kept() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let done = AtomicUsize::new(0);
        pool.scope(|s| {
            let _ = s.map_async(|_| slow_increment(&done), 0..5);
            let kept = s.map_async(|_| slow_increment(&done), 0..3);
            std::mem::forget(s.apply_async(|| slow_increment(&done)));
            let _ = s.apply_async(|| slow_increment(&done));
            s.close();
            s.join();
            assert_eq!(done.load(Ordering::SeqCst), 10);
            assert!(kept.is_ready());
            // Joining again is harmless.
            s.join();
            assert_eq!(s.try_join(), Ok(()));
        });
    });
}

#[test]
fn join_on_an_open_scope_says_to_call_close_first() {
    let pool = Pool::new(1).unwrap();
    pool.scope(|s| {
        let _ = s.apply_async(|| ());
        assert_eq!(s.try_join(), Err(JoinError::StillOpen));
        let message = panics_with(|| s.join());
        assert!(message.contains("close()"), "{message}");
        assert!(message.contains("first"), "{message}");
        assert!(!s.is_closed(), "a refused join leaves the scope open");
        // Still usable, and joinable once closed.
        assert_eq!(s.apply(|| 2).unwrap(), 2);
        s.close();
        assert_eq!(s.try_join(), Ok(()));
    });
}

#[test]
fn join_from_one_of_the_scopes_own_tasks_is_an_error_not_a_hang() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let closed = Gate::default();
        pool.scope(|s| {
            let try_join = s.apply_async(|| {
                closed.wait();
                s.try_join()
            });
            let join = s.apply_async(|| {
                closed.wait();
                s.join();
            });
            s.close();
            closed.open();
            assert_eq!(try_join.get().unwrap(), Err(JoinError::FromOwnTask));
            let error: TaskError = join.get().unwrap_err();
            let message = error.panic_message().unwrap_or_default();
            assert!(message.contains("own tasks"), "{message}");
        });
    });
}

#[test]
fn join_from_a_task_of_a_scope_nested_inside_one_of_the_scopes_tasks_is_an_error() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let closed = Gate::default();
        pool.scope(|outer| {
            let task = outer.apply_async(|| {
                closed.wait();
                pool.scope(|inner| inner.apply(|| outer.try_join()).unwrap())
            });
            outer.close();
            closed.open();
            assert_eq!(task.get().unwrap(), Err(JoinError::FromOwnTask));
        });
    });
}

#[test]
fn terminate_keeps_queued_tasks_from_starting_and_lets_running_ones_finish() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let started = Gate::default();
        let release = Gate::default();
        let queued_ran = AtomicUsize::new(0);
        let running_finished = AtomicBool::new(false);
        pool.scope(|s| {
            let running = s.apply_async(|| {
                started.open();
                release.wait();
                running_finished.store(true, Ordering::SeqCst);
                "finished"
            });
            started.wait();
            let queued = s.map_async(|_| queued_ran.fetch_add(1, Ordering::SeqCst), 0..5);
            let queued_one = s.apply_async(|| queued_ran.fetch_add(1, Ordering::SeqCst));

            s.terminate();
            assert!(s.is_closed());
            assert!(queued.is_ready(), "cancelled tasks count as finished");
            assert!(!running.is_ready(), "the running task is not interrupted");
            assert!(queued.is_cancelled());
            assert_eq!(queued.successful(), Some(false));
            let failures = queued.failures();
            assert_eq!(failures.len(), 5);
            assert!(failures.iter().all(TaskError::is_cancelled), "{failures:?}");

            release.open();
            assert_eq!(running.get().unwrap(), "finished");
            assert!(queued_one.get().unwrap_err().is_cancelled());
            let error = queued.get().unwrap_err();
            assert!(error.is_cancelled());
            assert_eq!(error.index(), 0);
        });
        assert!(running_finished.load(Ordering::SeqCst));
        assert_eq!(queued_ran.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn a_task_may_terminate_its_own_scope() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let ran = AtomicUsize::new(0);
        let queued_submitted = Gate::default();
        pool.scope(|s| {
            let batch = s.batch().chunk(1).map_async(
                |i: u32| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    if i == 2 {
                        queued_submitted.wait();
                        s.terminate();
                    }
                    i
                },
                0..10,
            );
            let queued = s.map_async(|_| ran.fetch_add(1, Ordering::SeqCst), 0..5);
            queued_submitted.open();
            batch.wait();
            let failures = batch.failures();
            let cancelled: Vec<usize> = failures.iter().map(TaskError::index).collect();
            assert_eq!(cancelled, (3..10).collect::<Vec<_>>());
            assert!(failures.iter().all(TaskError::is_cancelled));
            assert!(queued.get().unwrap_err().is_cancelled());
            assert_eq!(
                s.try_apply_async(|| 0).unwrap_err(),
                SubmitError::Terminated
            );
        });
        assert_eq!(ran.load(Ordering::SeqCst), 3);
    });
}

#[test]
fn terminate_refuses_new_submissions() {
    let pool = Pool::new(1).unwrap();
    pool.scope(|s| {
        let _ = s.map_async(|x: u32| x, 0..3);
        s.terminate();
        s.terminate();
        assert!(s.is_closed());
        assert_eq!(
            s.try_map_async(|x: u32| x, 0..3).unwrap_err(),
            SubmitError::Terminated
        );
        assert_eq!(
            s.try_apply_async(|| ()).unwrap_err(),
            SubmitError::Terminated
        );
        let message = panics_with(|| s.apply_async(|| ()));
        assert!(message.contains("terminated"), "{message}");
        // close() after terminate() does not turn it back into "closed".
        s.close();
        assert_eq!(
            s.try_apply_async(|| ()).unwrap_err(),
            SubmitError::Terminated
        );
        // join works after terminate.
        assert_eq!(s.try_join(), Ok(()));
    });
}

#[test]
fn after_the_body_returns_the_scopes_own_tasks_may_still_submit_and_the_scope_waits_for_it() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let body_returned = Gate::default();
        let late_ran = AtomicBool::new(false);
        let seen = Mutex::new(None);
        pool.scope(|s| {
            let _ = s.apply_async(|| {
                // Outlives the body, then submits: a task that spawns its
                // children into the scope and returns, as in
                // std::thread::scope and rayon::scope.
                body_returned.wait();
                thread::sleep(Duration::from_millis(20));
                let late = s.try_apply_async(|| {
                    thread::sleep(Duration::from_millis(20));
                    late_ran.store(true, Ordering::SeqCst);
                });
                *seen.lock().unwrap() = Some((s.is_closed(), late.is_ok()));
            });
            body_returned.open();
        });
        // The scope ended only after the late task had run.
        assert!(late_ran.load(Ordering::SeqCst), "the late task was lost");
        assert_eq!(seen.into_inner().unwrap(), Some((false, true)));
    });
}

#[test]
fn an_explicit_close_refuses_a_later_submission_from_a_task_too() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let closed = Gate::default();
        let refused = pool.scope(|s| {
            let task = s.apply_async(|| {
                closed.wait();
                s.try_apply_async(|| ()).err()
            });
            s.close();
            closed.open();
            task.get().unwrap()
        });
        assert_eq!(refused, Some(SubmitError::Closed));
    });
}

#[test]
fn a_task_may_close_its_own_scope() {
    let pool = Pool::new(1).unwrap();
    pool.scope(|s| {
        s.apply(|| s.close()).unwrap();
        assert!(s.is_closed());
        assert_eq!(s.try_apply_async(|| ()).unwrap_err(), SubmitError::Closed);
        s.join();
    });
}
