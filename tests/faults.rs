//! Faults beyond a panicking task (see `panics.rs`) and a failing build
//! (see `pools.rs`): panicking completion callbacks, panic payloads and
//! destructors that panic, exit hooks that panic, handles dropped or
//! forgotten (every closure, input and result is still dropped exactly
//! once, the forgotten ones on the scope's own thread), and the last handle
//! of a shared pool dropped by whichever thread finishes last.
//!
//! A `Pool` cannot be dropped while a scope on it runs: `Pool::scope`
//! borrows the pool (`tests/ui/soundness_pool_dropped_during_scope.rs`
//! shows the compile error), and each open scope keeps the pool's threads
//! alive until it ends.

use std::panic::{catch_unwind, panic_any, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

use poolscope::{Pool, Scope, TaskError};

mod common;

use common::{panic_message, watchdog};

/// What `body` panicked with when run as a scope on `pool`, or `None`.
fn scope_panic<'env, F>(pool: &Pool, body: F) -> Option<String>
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>),
{
    catch_unwind(AssertUnwindSafe(|| pool.scope(body)))
        .err()
        .map(|payload| panic_message(&*payload))
}

/// Counts its drops and remembers the thread of each.
#[derive(Debug)]
struct Counted<'a> {
    drops: &'a Mutex<Vec<ThreadId>>,
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.drops.lock().unwrap().push(thread::current().id());
    }
}

fn counted(drops: &Mutex<Vec<ThreadId>>) -> Counted<'_> {
    Counted { drops }
}

#[test]
fn a_panicking_completion_callback_is_reported_as_that_tasks_panic_and_the_worker_survives() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        pool.scope(|s| {
            let worker = s.apply_async(|| thread::current().id()).get().unwrap();
            let batch = s
                .batch()
                .name("thumbnail")
                .on_complete(|index, _outcome: Result<&u32, &TaskError>| {
                    if index == 1 {
                        panic!("callback failed on {index}");
                    }
                })
                .map_async(|x: u32| x * 10, 0..4);
            batch.wait();
            let failures = batch.failures();
            assert_eq!(failures.len(), 1, "{failures:?}");
            assert_eq!(failures[0].index(), 1);
            assert_eq!(failures[0].task_name(), Some("thumbnail"));
            assert_eq!(
                failures[0].panic_message(),
                Some("its completion callback panicked: callback failed on 1")
            );
            let error = batch.get().unwrap_err();
            assert_eq!(error.index(), 1);
            // The same worker carries on with later work.
            let again = s.apply_async(|| thread::current().id()).get().unwrap();
            assert_eq!(again, worker);
        });
    });
}

#[test]
fn a_task_panic_and_its_callback_panic_are_reported_together() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        pool.scope(|s| {
            let task = s
                .batch()
                .on_complete(|_, outcome: Result<&(), &TaskError>| {
                    assert!(outcome.is_err());
                    panic!("callback saw the failure");
                })
                .apply_async(|| panic!("task failed"));
            let error = task.get().unwrap_err();
            assert_eq!(
                error.panic_message(),
                Some(
                    "task failed (and its completion callback panicked: callback saw the failure)"
                )
            );
        });
    });
}

#[test]
fn a_completion_callback_that_panics_for_a_cancelled_task_does_not_panic_cancel() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let (release, gate) = mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let gate = &gate;
        let callback_threads = Mutex::new(Vec::new());
        pool.scope(|s| {
            let (started_tx, started) = mpsc::channel();
            let batch = s
                .batch()
                .chunk(1)
                .on_complete(|index, outcome: Result<&usize, &TaskError>| {
                    callback_threads.lock().unwrap().push(thread::current().id());
                    if let Err(error) = outcome {
                        assert!(error.is_cancelled());
                        panic!("callback rejects cancelled task {index}");
                    }
                })
                .map_async(
                    move |i: usize| {
                        if i == 0 {
                            started_tx.send(()).unwrap();
                            gate.lock().unwrap().recv().unwrap();
                        }
                        i
                    },
                    0..4,
                );
            started.recv().unwrap();
            // The worker is inside task 0; tasks 1..4 are unclaimed. Their
            // callbacks run here, on the cancelling thread, and panic.
            assert_eq!(batch.cancel(), 3);
            release.send(()).unwrap();
            batch.wait();
            let failures = batch.failures();
            assert_eq!(failures.len(), 3);
            for (failure, index) in failures.iter().zip(1..) {
                assert_eq!(failure.index(), index);
                assert_eq!(
                    failure.panic_message(),
                    Some(
                        format!(
                            "its completion callback panicked: callback rejects cancelled task {index}"
                        )
                        .as_str()
                    )
                );
            }
        });
        let me = thread::current().id();
        let threads = callback_threads.into_inner().unwrap();
        assert_eq!(threads.iter().filter(|&&t| t == me).count(), 3);
    });
}

#[test]
fn an_unreported_callback_panic_is_reraised_when_the_scope_ends() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let message = scope_panic(&pool, |s| {
            let _ = s
                .batch()
                .name("upload")
                .on_complete(|_, _: Result<&(), &TaskError>| panic!("hook down"))
                .map_async(|_: u8| (), [0]);
        })
        .expect("the scope end re-raises the callback's panic");
        assert!(
            message.contains("task 0 (`upload`) panicked at ")
                && message.contains("faults.rs:")
                && message.contains(": its completion callback panicked: hook down"),
            "{message}"
        );
    });
}

/// A panic payload whose own destructor panics.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("the payload's destructor exploded");
    }
}

#[test]
fn a_panic_payload_whose_destructor_panics_is_contained() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let message = scope_panic(&pool, |s| {
            let task = s.apply_async(|| panic_any(Bomb));
            let error = task.get().unwrap_err();
            assert!(error.is_panic());
            // The worker is still there.
            assert_eq!(s.apply_async(|| 5).get().unwrap(), 5);
        })
        .expect("the destructor's panic is reported when the scope ends");
        assert!(message.contains("destructor panicked"), "{message}");
        assert!(
            message.contains("the payload's destructor exploded"),
            "{message}"
        );
        // The pool still works after the scope.
        assert_eq!(pool.scope(|s| s.apply_async(|| 6).get().unwrap()), 6);
    });
}

/// A result whose destructor panics.
struct Grenade;

impl Drop for Grenade {
    fn drop(&mut self) {
        panic!("a result's destructor exploded");
    }
}

#[test]
fn a_result_whose_destructor_panics_is_reraised_when_the_scope_ends() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let done = AtomicUsize::new(0);
        let message = scope_panic(&pool, |s| {
            std::mem::forget(s.map_async(|_: u8| Grenade, [0, 1]));
            let _ = s.apply_async(|| done.fetch_add(1, SeqCst));
        })
        .expect("the destructor's panic comes out of the scope");
        assert!(
            message.contains("destructor panicked")
                && message.contains("a result's destructor exploded"),
            "{message}"
        );
        assert_eq!(done.load(SeqCst), 1, "the other tasks still ran");
    });
}

#[test]
fn forgotten_handles_have_their_closures_inputs_and_results_dropped_once_on_the_scopes_thread() {
    watchdog(|| {
        // One worker: while it is inside the blocked task, nothing else of
        // the batch can be claimed, so exactly three tasks are cancelled.
        let pool = Pool::new(1).unwrap();
        let closure_drops = Mutex::new(Vec::new());
        let input_drops = Mutex::new(Vec::new());
        let result_drops = Mutex::new(Vec::new());
        let (release, gate) = mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let gate = &gate;
        let drops_of_results = &result_drops;
        pool.scope(|s| {
            // Results never taken.
            let owned = counted(&closure_drops);
            std::mem::forget(s.map_async(
                move |_: u8| {
                    let _keep = &owned;
                    counted(drops_of_results)
                },
                0..5,
            ));
            // Inputs of tasks that never start: a blocked first task, then
            // a cancel, then the handle forgotten.
            let (started_tx, started) = mpsc::channel();
            let batch = s.batch().chunk(1).map_async(
                move |(i, input): (usize, Counted<'_>)| {
                    if i == 0 {
                        started_tx.send(()).unwrap();
                        gate.lock().unwrap().recv().unwrap();
                    }
                    drop(input);
                },
                (0..4).map(|i| (i, counted(&input_drops))),
            );
            started.recv().unwrap();
            assert_eq!(batch.cancel(), 3);
            std::mem::forget(batch);
            release.send(()).unwrap();
        });
        let me = thread::current().id();
        let closures = closure_drops.into_inner().unwrap();
        let inputs = input_drops.into_inner().unwrap();
        let results = result_drops.into_inner().unwrap();
        assert_eq!(closures, [me], "the closure is dropped once, by the scope");
        assert_eq!(results.len(), 5, "every result dropped exactly once");
        assert!(results.iter().all(|&t| t == me), "on the scope's thread");
        assert_eq!(inputs.len(), 4, "every input dropped exactly once");
        // The three cancelled inputs were dropped by the thread that
        // cancelled them; the one that ran, by its task.
        assert_eq!(inputs.iter().filter(|&&t| t == me).count(), 3);
    });
}

#[test]
fn a_handle_dropped_before_its_tasks_finish_still_drops_every_result_once() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let result_drops = Mutex::new(Vec::new());
        let closure_drops = Mutex::new(Vec::new());
        let (release, gate) = mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let drops_of_results = &result_drops;
        pool.scope(|s| {
            let owned = counted(&closure_drops);
            let batch = s.batch().chunk(1).map_async(
                move |i: usize| {
                    let _keep = &owned;
                    if i == 0 {
                        gate.lock().unwrap().recv().unwrap();
                    }
                    counted(drops_of_results)
                },
                0..6,
            );
            drop(batch);
            release.send(()).unwrap();
            // The scope still waits for the tasks of the dropped handle.
        });
        assert_eq!(result_drops.into_inner().unwrap().len(), 6);
        // The closure goes as soon as nothing can call it: here, with the
        // handle gone first, on the worker that finished the last task
        // (README's Guarantees say so), not at the scope's end.
        let closure_drops = closure_drops.into_inner().unwrap();
        assert_eq!(closure_drops.len(), 1);
        assert_ne!(closure_drops[0], thread::current().id());
    });
}

#[test]
fn the_last_handle_of_a_shared_pool_may_be_dropped_by_whichever_thread_finishes_last() {
    for round in 0..20 {
        let started = Arc::new(AtomicUsize::new(0));
        let exited = Arc::new(AtomicUsize::new(0));
        let pool = Arc::new(
            Pool::builder()
                .threads(2)
                .on_thread_start({
                    let started = started.clone();
                    move |_| {
                        started.fetch_add(1, SeqCst);
                    }
                })
                .on_thread_exit({
                    let exited = exited.clone();
                    move |_| {
                        exited.fetch_add(1, SeqCst);
                    }
                })
                .build()
                .unwrap(),
        );
        let users: Vec<_> = (0..3)
            .map(|user| {
                let pool = pool.clone();
                thread::spawn(move || {
                    for _ in 0..(round + user) % 4 {
                        let sum: usize = pool
                            .scope(|s| s.map(|x: usize| x + user, 0..16))
                            .unwrap()
                            .iter()
                            .sum();
                        assert_eq!(sum, 120 + 16 * user);
                    }
                    // Often the last handle; dropping it joins the threads.
                    drop(pool);
                })
            })
            .collect();
        drop(pool);
        watchdog(move || {
            for user in users {
                user.join().unwrap();
            }
        });
        assert_eq!(started.load(SeqCst), 2);
        assert_eq!(
            exited.load(SeqCst),
            2,
            "round {round}: a thread outlived its pool"
        );
    }
}

#[test]
fn an_exit_hook_that_panics_does_not_hang_or_fail_the_pool_drop() {
    let exited = Arc::new(AtomicUsize::new(0));
    let pool = Pool::builder()
        .threads(2)
        .on_thread_exit({
            let exited = exited.clone();
            move |index| {
                exited.fetch_add(1, SeqCst);
                panic!("exit hook failed on {index}");
            }
        })
        .build()
        .unwrap();
    assert_eq!(
        pool.scope(|s| s.map(|x: u8| x, 0..4)).unwrap(),
        [0, 1, 2, 3]
    );
    watchdog(move || drop(pool));
    assert_eq!(exited.load(SeqCst), 2);
}

#[test]
fn a_body_panic_while_tasks_submit_more_work_still_waits_for_all_of_it() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let done = AtomicUsize::new(0);
        let (started_tx, started) = mpsc::channel();
        let (done, started_tx) = (&done, &started_tx);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                let _ = s.apply_async(move || {
                    started_tx.send(()).unwrap();
                    // Submitted by a task while the body is panicking; the
                    // scope may or may not still be open.
                    if let Ok(more) = s.try_map_async(
                        |_: u8| {
                            thread::sleep(Duration::from_millis(5));
                            done.fetch_add(1, SeqCst);
                        },
                        0..4,
                    ) {
                        drop(more);
                    } else {
                        done.fetch_add(4, SeqCst);
                    }
                });
                started.recv().unwrap();
                panic!("the body gave up");
            })
        }));
        let payload = outcome.expect_err("the body's panic comes out");
        assert_eq!(panic_message(&*payload), "the body gave up");
        assert_eq!(
            done.load(SeqCst),
            4,
            "every accepted nested task finished first"
        );
    });
}
