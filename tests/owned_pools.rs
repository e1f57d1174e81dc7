//! Owned work on a long-lived pool, as a Python user writes it without a
//! `with` block: `pool = ThreadPool(4)` at start-up, `apply_async` and
//! `map_async` from anywhere, handles kept in structs, returned from
//! functions and read on other threads, then `pool.close(); pool.join()`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use poolscope::{
    Batch, CloseError, Imap, JoinError, NoCallback, Pool, SubmitError, Task, TaskErrorKind,
};

mod common;

use common::{eventually, panic_message, watchdog, Gate};

/// The message `f` panicked with; fails the test if it did not panic.
fn panics_with<R>(f: impl FnOnce() -> R) -> String {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic"),
        Err(payload) => panic_message(&*payload),
    }
}

fn assert_send_static<T: Send + 'static>(_: &T) {}

/// A server-like holder of in-flight work, as a user would write one.
struct Jobs {
    pending: Vec<Batch<'static, u64>>,
}

fn start_squares(pool: &Pool, upto: u64) -> Batch<'static, u64> {
    pool.map_async(|x: u64| x * x, 0..upto)
}

#[test]
fn a_handle_returned_from_a_function_is_read_on_another_thread() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let batch = start_squares(&pool, 5);
        assert_send_static(&batch);
        let squares = thread::spawn(move || batch.get().unwrap()).join().unwrap();
        assert_eq!(squares, [0, 1, 4, 9, 16]);

        let task: Task<'static, String> = pool.apply_async(|| "from a task".to_string());
        assert_send_static(&task);
        let text = thread::spawn(move || task.get().unwrap()).join().unwrap();
        assert_eq!(text, "from a task");
    });
}

#[test]
fn handles_kept_in_a_struct_across_calls_are_read_later() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let mut jobs = Jobs {
            pending: Vec::new(),
        };
        for upto in 1..=4 {
            jobs.pending.push(start_squares(&pool, upto));
        }
        let totals: Vec<u64> = jobs
            .pending
            .drain(..)
            .map(|batch| batch.get().unwrap().iter().sum())
            .collect();
        assert_eq!(totals, [0, 1, 5, 14]);
    });
}

#[test]
fn close_then_join_waits_for_every_task_whose_handle_was_dropped() {
    watchdog(|| {
        // The second seed program: results are printed by the tasks, the
        // handles thrown away, and `close(); join()` is the only wait.
        let pool = Pool::new(2).unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        for i in 0..10u64 {
            let done = done.clone();
            let _ = pool.apply_async(move || {
                thread::sleep(Duration::from_millis(5 * (i % 3)));
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        let counted = done.clone();
        let _ = pool.map_async(move |_: u32| counted.fetch_add(1, Ordering::SeqCst), 0..10);
        pool.close();
        assert!(pool.is_closed());
        pool.join();
        assert_eq!(done.load(Ordering::SeqCst), 20);
    });
}

#[test]
fn every_python_method_works_on_owned_work() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        assert_eq!(pool.apply(|| 6 * 7).unwrap(), 42);
        assert_eq!(pool.map(|x: u32| x + 1, [1, 2, 3]).unwrap(), [2, 3, 4]);
        assert_eq!(
            pool.starmap(|a: u32, b: u32| a * b, [(2, 3), (4, 5)])
                .unwrap(),
            [6, 20]
        );
        assert_eq!(
            pool.starmap_async(|a: u32, b: u32| a + b, [(1, 1)])
                .get()
                .unwrap(),
            [2]
        );
        let ordered: Vec<u64> = pool
            .imap(|x: u64| x * 10, 0..50)
            .map(Result::unwrap)
            .collect();
        assert_eq!(ordered, (0..50).map(|x| x * 10).collect::<Vec<_>>());
        let mut unordered: Vec<(usize, u64)> = pool
            .imap_unordered(|x: u64| x + 1, 0..50)
            .map(|(index, result)| (index, result.unwrap()))
            .collect();
        unordered.sort();
        assert_eq!(unordered[49], (49, 50));
        let named = pool.batch().name("owned").map_async(|x: u8| x, [1]);
        assert_eq!(named.name(), Some("owned"));
        named.wait();
    });
}

#[test]
fn an_owned_stream_over_an_endless_input_is_storable_and_sendable() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let stream: Imap<'static, 'static, _, _, u64, NoCallback> =
            pool.batch().in_flight(4).imap(|x: u64| x * 2, 0..);
        assert_send_static(&stream);
        let firsts: Vec<u64> = thread::spawn(move || stream.take(5).map(Result::unwrap).collect())
            .join()
            .unwrap();
        assert_eq!(firsts, [0, 2, 4, 6, 8]);
    });
}

#[test]
fn join_before_close_is_an_error_that_says_what_to_do() {
    let pool = Pool::new(1).unwrap();
    assert_eq!(pool.try_join(), Err(JoinError::StillOpen));
    let message = panics_with(|| pool.join());
    assert!(message.contains("call close()"), "{message}");
}

#[test]
fn join_from_an_owned_task_is_refused_instead_of_waiting_for_itself() {
    watchdog(|| {
        let pool = Arc::new(Pool::new(2).unwrap());
        let inner = pool.clone();
        let outcome = pool.apply_async(move || {
            inner.close();
            inner.try_join()
        });
        assert_eq!(outcome.get().unwrap(), Err(JoinError::FromOwnTask));
        // The same from a task that an owned task submitted to a scope.
        let pool = Arc::new(Pool::new(2).unwrap());
        let inner = pool.clone();
        let outcome = pool.apply_async(move || {
            inner.close();
            inner.scope(|s| s.apply_async(|| inner.try_join()).get().unwrap())
        });
        assert_eq!(outcome.get().unwrap(), Err(JoinError::FromOwnTask));
    });
}

#[test]
fn closed_owned_work_refuses_submissions_with_a_clear_error() {
    let pool = Pool::new(1).unwrap();
    pool.close();
    pool.close();
    assert_eq!(
        pool.try_map_async(|x: u8| x, [1]).unwrap_err(),
        SubmitError::Closed
    );
    let message = panics_with(|| pool.apply_async(|| 1));
    assert!(message.contains("closed"), "{message}");
}

#[test]
fn terminate_cancels_the_queued_owned_tasks_and_lets_the_running_one_finish() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let gate = Arc::new(Gate::default());
        let (started_tx, started) = mpsc::channel();
        let blocker_gate = gate.clone();
        let running = pool.apply_async(move || {
            started_tx.send(()).unwrap();
            blocker_gate.wait_then(7)
        });
        started.recv().unwrap();
        let queued = pool.batch().chunk(1).map_async(|x: u32| x, 0..5);
        pool.terminate();
        gate.open();
        assert_eq!(running.get().unwrap(), 7);
        let failures = queued.failures_after_wait();
        assert_eq!(failures.len(), 5);
        assert!(failures
            .iter()
            .all(|error| matches!(error.kind(), TaskErrorKind::Cancelled)));
        assert_eq!(
            pool.try_apply_async(|| 0).unwrap_err(),
            SubmitError::Terminated
        );
        pool.join();
    });
}

/// `failures()` once the batch is ready.
trait FailuresAfterWait {
    fn failures_after_wait(&self) -> Vec<poolscope::TaskError>;
}

impl<T> FailuresAfterWait for Batch<'_, T> {
    fn failures_after_wait(&self) -> Vec<poolscope::TaskError> {
        self.wait();
        self.failures()
    }
}

#[test]
fn dropping_a_pool_waits_for_its_owned_tasks() {
    watchdog(|| {
        let done = Arc::new(AtomicUsize::new(0));
        {
            let pool = Pool::new(2).unwrap();
            for _ in 0..8 {
                let done = done.clone();
                let _ = pool.apply_async(move || {
                    thread::sleep(Duration::from_millis(10));
                    done.fetch_add(1, Ordering::SeqCst);
                });
            }
            // No close, no join: the drop does both.
        }
        assert_eq!(done.load(Ordering::SeqCst), 8);
    });
}

#[test]
fn the_default_pool_refuses_close_and_terminate_and_says_why() {
    let pool = Pool::global();
    assert_eq!(pool.try_close(), Err(CloseError::DefaultPool));
    assert_eq!(pool.try_terminate(), Err(CloseError::DefaultPool));
    assert_eq!(pool.try_join(), Err(JoinError::DefaultPool));
    let message = panics_with(|| pool.close());
    assert!(message.contains("default pool"), "{message}");
    assert!(message.contains("Pool::new"), "{message}");
    let message = panics_with(|| pool.terminate());
    assert!(message.contains("default pool"), "{message}");
    assert!(!pool.is_closed());
    // And its owned work runs like any pool's.
    let batch: Batch<'static, u32> = pool.map_async(|x: u32| x + 1, 0..3);
    assert_eq!(batch.get().unwrap(), [1, 2, 3]);
}

#[test]
fn scopes_on_a_closed_pool_are_not_affected() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let data = vec![1, 2, 3];
        pool.scope(|s| {
            pool.close();
            // A scope that was open, and one opened after the close, both
            // accept work.
            assert_eq!(s.map(|x: &i32| x * 2, &data).unwrap(), [2, 4, 6]);
        });
        pool.terminate();
        let sum: i32 = pool.scope(|s| s.map(|x: &i32| *x, &data).unwrap().iter().sum());
        assert_eq!(sum, 6);
    });
}

#[test]
fn a_panic_whose_handle_was_dropped_is_raised_by_join() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let _ = pool
            .batch()
            .name("parse")
            .map_async(|x: u32| assert!(x != 3, "three is not a port"), 0..5);
        pool.close();
        let message = panics_with(|| pool.join());
        assert!(message.contains("three is not a port"), "{message}");
        assert!(message.contains("never reported"), "{message}");
        // Raised once: the next join and the drop are quiet.
        pool.join();
    });
}

#[test]
fn a_panic_whose_handle_was_dropped_is_raised_when_the_pool_is_dropped() {
    watchdog(|| {
        let message = panics_with(|| {
            let pool = Pool::new(1).unwrap();
            let _ = pool.apply_async(|| panic!("lost in the pool"));
        });
        assert!(message.contains("lost in the pool"), "{message}");
    });
}

#[test]
fn a_kept_handle_keeps_its_failure_past_join() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let failing = pool.apply_async(|| -> u32 { panic!("reported later") });
        pool.close();
        pool.join();
        let error = failing.get().unwrap_err();
        assert_eq!(error.panic_message(), Some("reported later"));
    });
}

#[test]
fn an_owned_task_may_submit_and_wait_for_owned_work_on_one_thread() {
    watchdog(|| {
        let pool = Arc::new(Pool::new(1).unwrap());
        let inner = pool.clone();
        let total = pool.apply_async(move || {
            let parts = inner.map_async(|x: u64| x * 3, 0..10);
            parts.get().unwrap().iter().sum::<u64>()
        });
        assert_eq!(total.get().unwrap(), 135);
    });
}

#[test]
fn join_from_a_scoped_task_on_a_one_thread_pool_runs_the_owned_work() {
    watchdog(|| {
        // The owned work is submitted from inside a scoped task, so it is
        // not below the owned work's own node: the join on the only worker
        // must still find and run it.
        let pool = Pool::new(1).unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        pool.scope(|s| {
            let joined = s.apply_async(|| {
                for _ in 0..4 {
                    let done = done.clone();
                    let _ = pool.apply_async(move || done.fetch_add(1, Ordering::SeqCst));
                }
                pool.close();
                pool.join();
                done.load(Ordering::SeqCst)
            });
            assert_eq!(joined.get().unwrap(), 4);
        });
    });
}

#[test]
fn a_pool_dropped_inside_its_own_task_runs_the_rest_and_lets_its_threads_go() {
    watchdog(|| {
        let exited = Arc::new(AtomicUsize::new(0));
        let counter = exited.clone();
        let pool = Arc::new(
            Pool::builder()
                .threads(1)
                .on_thread_exit(move |_| {
                    counter.fetch_add(1, Ordering::SeqCst);
                })
                .build()
                .unwrap(),
        );
        let gate = Arc::new(Gate::default());
        let last_ref = pool.clone();
        let task_gate = gate.clone();
        let dropper = pool.apply_async(move || {
            task_gate.wait();
            // The last `Arc<Pool>`: the pool is dropped here, inside its
            // own task, and must not wait for itself.
            drop(last_ref);
            "dropped"
        });
        let after = pool.map_async(|x: u32| x + 1, 0..3);
        drop(pool);
        gate.open();
        assert_eq!(dropper.get().unwrap(), "dropped");
        // The tasks queued behind the one that dropped the pool still ran.
        assert_eq!(after.get().unwrap(), [1, 2, 3]);
        eventually("the pool's thread exits", || {
            exited.load(Ordering::SeqCst) == 1
        });
    });
}

#[test]
fn pools_and_their_owned_handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Pool>();
    assert_send_sync::<Batch<'static, Vec<u8>>>();
    assert_send_sync::<Task<'static, String>>();
}
