//! Failures reach the user, correctly attributed (DESIGN point 11): the
//! first real failure of a batch, never a task cancelled because of it; a
//! task's own `Err` through `try_get`; the panic's location; user functions
//! the runtime calls (failure checks, callbacks) that panic or join, on any
//! thread; an input iterator that panics inside a stream; batch deadlines.

use std::panic::{catch_unwind, panic_any, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::Duration;

use poolscope::{
    current_task_cancelled, par_batch, pool_scope, JoinError, Pool, TaskError, TaskErrorKind,
    TryGetError,
};

mod common;

use common::{panic_message, watchdog, Gate};

#[derive(Debug, PartialEq)]
struct ImportError(u32);

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "record {} is malformed", self.0)
    }
}

impl std::error::Error for ImportError {}

fn import(id: u32) -> Result<u32, ImportError> {
    if id == 6173 {
        Err(ImportError(id))
    } else {
        Ok(id * 2)
    }
}

#[test]
fn fail_fast_get_reports_the_task_that_returned_err_not_one_cancelled_because_of_it() {
    let ids: Vec<u32> = (0..10_000).collect();
    let pool = Pool::new(2).unwrap();
    let error = pool_scope!(on = pool, |pool| {
        par_batch!(pool, name = "import", fail_fast, import(id) for id in ids.iter().copied())
            .get()
            .unwrap_err()
    });
    assert_eq!(error.index(), 6173, "{error}");
    assert_eq!(error.task_name(), Some("import"));
    assert_eq!(error.kind(), &TaskErrorKind::Failed);
    assert!(!error.is_cancelled());
    assert!(error.to_string().contains("task 6173"), "{error}");
}

#[test]
fn try_get_gives_the_tasks_own_err_with_its_index_and_name() {
    let ids: Vec<u32> = (0..10_000).collect();
    let pool = Pool::new(2).unwrap();
    pool_scope!(on = pool, |pool| {
        // With fail_fast: the Err stops the batch, and try_get hands it over.
        let failure =
            par_batch!(pool, name = "import", fail_fast, import(id) for id in ids.iter().copied())
                .try_get()
                .unwrap_err();
        assert_eq!(failure.index(), 6173);
        assert_eq!(failure.task_name(), Some("import"));
        assert_eq!(failure.error(), Some(&ImportError(6173)));
        assert_eq!(
            failure.to_string(),
            "task 6173 (`import`) returned an error: record 6173 is malformed"
        );
        let source = std::error::Error::source(&failure).expect("the task's error is the source");
        assert_eq!(source.to_string(), "record 6173 is malformed");
        assert!(matches!(failure.into_error(), Ok(ImportError(6173))));

        // Without fail_fast every task runs, and try_get still flattens.
        let all = par_batch!(pool, import(id) for id in 0..10)
            .try_get()
            .unwrap();
        assert_eq!(all, (0..10).map(|id| id * 2).collect::<Vec<_>>());
        let failure = pool
            .map_async(import, [1, 6173, 2, 6173])
            .try_get()
            .unwrap_err();
        assert_eq!(failure.index(), 1, "the first Err in submission order");

        // A panic comes through try_get as the task's TaskError.
        let failure = pool
            .map_async(
                |id: u32| -> Result<u32, ImportError> {
                    assert!(id != 3, "record {id} crashed the parser");
                    Ok(id)
                },
                0..6,
            )
            .try_get()
            .unwrap_err();
        assert_eq!(failure.index(), 3);
        assert!(failure.error().is_none());
        let TryGetError::Task(error) = failure else {
            panic!("expected the task's panic");
        };
        assert_eq!(error.panic_message(), Some("record 3 crashed the parser"));
    });
}

#[test]
fn get_reports_a_panic_not_the_tasks_claimed_behind_it_and_cancelled_because_of_it() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        pool.scope(|s| {
            // Each worker claims a chunk of four. The one holding task 0
            // waits until task 4's panic has cancelled the batch, so tasks
            // 1 to 3 of its chunk are cancelled behind it.
            let batch = s.batch().fail_fast(true).chunk(4).map_async(
                |i: u32| {
                    if i == 0 {
                        while !current_task_cancelled() {
                            thread::yield_now();
                        }
                    }
                    if i == 4 {
                        panic!("task {i} failed");
                    }
                    i
                },
                0..8,
            );
            batch.wait();
            let failures = batch.failures();
            assert!(failures[0].is_cancelled(), "{failures:?}");
            let error = batch.get().unwrap_err();
            assert_eq!(error.index(), 4, "{error}");
            assert_eq!(error.panic_message(), Some("task 4 failed"));
        });
    });
}

#[test]
fn a_task_panic_reports_where_it_happened() {
    let pool = Pool::new(1).unwrap();
    let (error, line) = pool.scope(|s| {
        let line = line!() + 1;
        let task = s.apply_async(|| -> u32 { panic!("disk full") });
        (task.get().unwrap_err(), line)
    });
    let location = error.location().expect("the panic's location is known");
    assert!(location.file().ends_with("failures.rs"), "{location}");
    assert_eq!(location.line(), line);
    assert_eq!(
        error.to_string(),
        format!("task 0 panicked at {location}: disk full")
    );
}

#[test]
fn a_failure_check_that_panics_is_reported_as_that_tasks_panic_and_the_scope_ends() {
    let outcome = watchdog(|| {
        let pool = Pool::new(2).unwrap();
        pool.scope(|s| {
            let batch = s.batch().fail_fast(true).chunk(1).map_async_with_failure(
                |x: u32| x,
                0..4,
                |x| {
                    assert!(*x != 2, "the check cannot judge {x}");
                    false
                },
            );
            batch.wait();
            let failures = batch.failures();
            let later = s.apply_async(|| "the workers survived").get().unwrap();
            (failures, later)
        })
    });
    let (failures, later) = outcome;
    let panicked: Vec<&TaskError> = failures.iter().filter(|f| f.is_panic()).collect();
    assert_eq!(panicked.len(), 1, "{failures:?}");
    assert_eq!(panicked[0].index(), 2);
    assert_eq!(
        panicked[0].panic_message(),
        Some("its failure check panicked: the check cannot judge 2")
    );
    assert_eq!(later, "the workers survived");
}

#[test]
fn a_callback_of_a_cancelled_task_that_joins_its_scope_is_refused_not_hung() {
    let seen = watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let started = Gate::default();
        let release = Gate::default();
        let seen = Mutex::new(Vec::new());
        pool.scope(|s| {
            let batch = s
                .batch()
                .chunk(1)
                .on_complete(|_, outcome: Result<&u32, &TaskError>| {
                    if outcome.is_err() {
                        // Runs on the thread that cancelled, inside the
                        // cancel: a join here would wait for itself.
                        s.close();
                        seen.lock().unwrap().push(s.try_join());
                    }
                })
                .map_async(
                    |i: u32| {
                        if i == 0 {
                            started.open();
                            release.wait();
                        }
                        i
                    },
                    0..3,
                );
            started.wait();
            assert_eq!(batch.cancel(), 2);
            release.open();
        });
        seen.into_inner().unwrap()
    });
    assert_eq!(seen, [Err(JoinError::FromOwnTask); 2]);
}

#[test]
fn a_join_from_a_nested_scopes_task_on_another_worker_is_refused_not_hung() {
    let outcome = watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let pool = &pool;
        pool.scope(|outer| {
            outer
                .apply_async(move || {
                    let (ran_on, there) = mpsc::channel();
                    pool.scope(|inner| {
                        let task = inner.apply_async(move || {
                            ran_on.send(thread::current().id()).unwrap();
                            outer.close();
                            outer.try_join()
                        });
                        // Blocks this worker without helping, so the inner
                        // task runs on the other one.
                        let other = there.recv().unwrap();
                        (other != thread::current().id(), task.get().unwrap())
                    })
                })
                .get()
                .unwrap()
        })
    });
    let (elsewhere, joined) = outcome;
    assert!(elsewhere, "the nested task ran on the other worker");
    assert_eq!(joined, Err(JoinError::FromOwnTask));
}

/// An input that panics when asked for item `fails_at`.
fn failing_input(fails_at: u32) -> impl Iterator<Item = u32> {
    (0..20).inspect(move |&i| {
        if i == fails_at {
            panic!("input {i} could not be read");
        }
    })
}

#[test]
fn imap_yields_every_result_before_a_failing_input_then_its_panic() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        pool.scope(|s| {
            let mut stream = s
                .batch()
                .in_flight(16)
                .imap(|x: u32| x * 10, failing_input(5));
            let mut got = Vec::new();
            let payload = loop {
                match catch_unwind(AssertUnwindSafe(|| stream.next())) {
                    Ok(Some(result)) => got.push(result.unwrap()),
                    Ok(None) => panic!("the stream ended without the input's panic"),
                    Err(payload) => break payload,
                }
            };
            assert_eq!(got, [0, 10, 20, 30, 40]);
            assert_eq!(panic_message(&*payload), "input 5 could not be read");
            assert!(stream.next().is_none(), "the stream ends after the panic");
        });
    });
}

#[test]
fn imap_unordered_yields_the_results_before_a_failing_input_then_its_panic() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        pool.scope(|s| {
            let mut stream = s
                .batch()
                .in_flight(16)
                .imap_unordered(|x: u32| x * 10, failing_input(5));
            let mut got = Vec::new();
            let payload = loop {
                match catch_unwind(AssertUnwindSafe(|| stream.next())) {
                    Ok(Some((index, result))) => got.push((index, result.unwrap())),
                    Ok(None) => panic!("the stream ended without the input's panic"),
                    Err(payload) => break payload,
                }
            };
            got.sort_unstable();
            assert_eq!(got, [(0, 0), (1, 10), (2, 20), (3, 30), (4, 40)]);
            assert_eq!(panic_message(&*payload), "input 5 could not be read");
            assert!(stream.next().is_none());
        });
    });
}

/// A panic payload that counts its drops.
struct Payload(&'static AtomicUsize);

impl Drop for Payload {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A result whose destructor panics with a counted payload.
struct Exploding(&'static AtomicUsize);

impl Drop for Exploding {
    fn drop(&mut self) {
        panic_any(Payload(self.0));
    }
}

#[test]
fn the_payload_of_a_panicking_destructor_is_dropped_not_leaked() {
    static PAYLOAD_DROPS: AtomicUsize = AtomicUsize::new(0);
    let pool = Pool::new(1).unwrap();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            std::mem::forget(s.apply_async(|| Exploding(&PAYLOAD_DROPS)));
        })
    }));
    let message = panic_message(&*outcome.expect_err("the destructor's panic is re-raised"));
    assert!(message.contains("destructor panicked"), "{message}");
    assert_eq!(
        PAYLOAD_DROPS.load(Ordering::SeqCst),
        1,
        "the caught payload was leaked"
    );
}

#[test]
fn a_deadline_cancels_what_has_not_started_and_tells_running_tasks_to_stop() {
    let (outcomes, ran) = watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let ran = AtomicUsize::new(0);
        let outcomes = pool.scope(|s| {
            // Cooperative tasks that would run for ever without the
            // deadline; two threads run two of them, the rest never start.
            let batch = s
                .batch()
                .name("fetch")
                .blocking(false)
                .chunk(1)
                .timeout(Duration::from_millis(200))
                .map_async(
                    |_: u32| {
                        ran.fetch_add(1, Ordering::SeqCst);
                        let mut polls = 0u64;
                        while !current_task_cancelled() {
                            polls += 1;
                            thread::sleep(Duration::from_millis(1));
                        }
                        polls
                    },
                    0..40,
                );
            batch.results().collect::<Vec<_>>()
        });
        (outcomes, ran.into_inner())
    });
    assert_eq!(outcomes.len(), 40);
    let finished = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(finished, ran, "every task that started finished by itself");
    assert!(ran <= 2 + 1, "{ran} tasks started on two threads");
    for outcome in outcomes.iter().filter(|o| o.is_err()) {
        let error = outcome.as_ref().unwrap_err();
        assert!(error.is_cancelled(), "{error}");
        assert_eq!(error.task_name(), Some("fetch"));
    }
}

#[test]
fn a_par_batch_deadline_works_the_same() {
    static STARTED: AtomicUsize = AtomicUsize::new(0);
    fn poll_until_cancelled(_: u32) -> bool {
        STARTED.fetch_add(1, Ordering::SeqCst);
        while !current_task_cancelled() {
            thread::sleep(Duration::from_millis(1));
        }
        true
    }
    let pool = Pool::new(1).unwrap();
    let outcomes = watchdog(move || {
        pool_scope!(on = pool, |pool| {
            par_batch!(pool, chunk = 1, timeout = Duration::from_millis(100), poll_until_cancelled(i) for i in 0..5)
                .results()
                .collect::<Vec<_>>()
        })
    });
    // One thread: at most the first task started (none, if the deadline
    // passed before the worker got to it, as on a loaded machine or under
    // miri); it stopped by itself, and the rest were cancelled.
    let started = STARTED.load(Ordering::SeqCst);
    assert!(started <= 1, "{started} tasks started on one thread");
    assert_eq!(outcomes.len(), 5);
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), started);
    assert!(outcomes[started..]
        .iter()
        .all(|o| o.as_ref().unwrap_err().is_cancelled()));
}
