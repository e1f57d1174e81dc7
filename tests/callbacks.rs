//! Completion callbacks (`BatchBuilder::on_complete`): called once per task
//! with its result or its failure, on the worker that finished the task; a
//! callback that panics is reported like a task panic, and the worker and
//! every wait carry on.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

use poolscope::{Pool, TaskError, TaskErrorKind};

mod common;

use common::{panic_message, watchdog};

/// What a callback saw for one task.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Value(u32),
    Panic(String),
}

#[test]
fn the_callback_gets_each_tasks_result_or_panic() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let seen = Mutex::new(HashMap::new());
        pool.scope(|s| {
            let batch = s
                .batch()
                .name("square")
                .on_complete(|index, outcome: Result<&u32, &TaskError>| {
                    let what = match outcome {
                        Ok(value) => Seen::Value(*value),
                        Err(error) => {
                            assert_eq!(error.index(), index);
                            assert_eq!(error.task_name(), Some("square"));
                            Seen::Panic(error.panic_message().unwrap().to_string())
                        }
                    };
                    let before = seen.lock().unwrap().insert(index, what);
                    assert_eq!(before, None, "one call per task");
                })
                .map_async(
                    |x: u32| {
                        if x % 4 == 3 {
                            panic!("no square for {x}");
                        }
                        x * x
                    },
                    0..12,
                );
            batch.wait();
            // The callbacks ran before their tasks counted as finished.
            assert_eq!(seen.lock().unwrap().len(), 12);
            assert_eq!(batch.failures().len(), 3);
        });
        let seen = seen.into_inner().unwrap();
        for x in 0..12u32 {
            let expected = if x % 4 == 3 {
                Seen::Panic(format!("no square for {x}"))
            } else {
                Seen::Value(x * x)
            };
            assert_eq!(seen[&(x as usize)], expected, "task {x}");
        }
    });
}

#[test]
fn the_callback_runs_on_the_worker_that_finished_the_task() {
    watchdog(|| {
        let pool = Pool::new(3).unwrap();
        let ran_on: Mutex<HashMap<usize, ThreadId>> = Mutex::default();
        let called_on: Mutex<HashMap<usize, ThreadId>> = Mutex::default();
        let caller = thread::current().id();
        pool.scope(|s| {
            s.batch()
                .chunk(1)
                .on_complete(|index, _: Result<&usize, &TaskError>| {
                    called_on
                        .lock()
                        .unwrap()
                        .insert(index, thread::current().id());
                })
                .map_async(
                    |i: usize| {
                        ran_on.lock().unwrap().insert(i, thread::current().id());
                        // Spread the tasks over the workers.
                        thread::sleep(Duration::from_micros(200));
                        i
                    },
                    0..60,
                )
                .get()
                .unwrap();
            // The same on the blocking lane.
            s.batch()
                .blocking(true)
                .on_complete(|index, _: Result<&usize, &TaskError>| {
                    called_on
                        .lock()
                        .unwrap()
                        .insert(100 + index, thread::current().id());
                })
                .map_async(
                    |i: usize| {
                        ran_on
                            .lock()
                            .unwrap()
                            .insert(100 + i, thread::current().id());
                        i
                    },
                    0..10,
                )
                .get()
                .unwrap();
        });
        let ran_on = ran_on.into_inner().unwrap();
        let called_on = called_on.into_inner().unwrap();
        assert_eq!(ran_on.len(), 70);
        assert_eq!(called_on, ran_on, "every callback ran where its task ran");
        assert!(!called_on.values().any(|&id| id == caller));
    });
}

#[test]
fn a_panicking_callback_is_reported_like_a_task_panic() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let calls = AtomicUsize::new(0);
        pool.scope(|s| {
            let batch = s
                .batch()
                .name("notify")
                .chunk(1)
                .on_complete(|index, _: Result<&usize, &TaskError>| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    if index == 2 {
                        panic!("cannot notify about {index}");
                    }
                })
                .map_async(|i: usize| i * 10, 0..5);
            // The wait returns.
            batch.wait();
            assert_eq!(batch.successful(), Some(false));
            let failures = batch.failures();
            assert_eq!(failures.len(), 1);
            assert_eq!(failures[0].index(), 2);
            assert_eq!(failures[0].task_name(), Some("notify"));
            let message = failures[0].panic_message().unwrap();
            assert!(
                message.contains("completion callback")
                    && message.contains("cannot notify about 2"),
                "{message}"
            );
            let outcomes: Vec<_> = batch.results().collect();
            assert_eq!(*outcomes[1].as_ref().unwrap(), 10);
            assert!(outcomes[2].as_ref().unwrap_err().is_panic());
            assert_eq!(*outcomes[4].as_ref().unwrap(), 40);
        });
        assert_eq!(
            calls.load(Ordering::SeqCst),
            5,
            "the other tasks' callbacks ran"
        );
    });
}

#[test]
fn a_panicking_callback_never_kills_the_worker() {
    watchdog(|| {
        // One worker: if the panic had killed it, nothing below would run.
        let pool = Pool::new(1).unwrap();
        let worker = Mutex::new(None);
        pool.scope(|s| {
            let batch = s
                .batch()
                .on_complete(|_, _: Result<&(), &TaskError>| panic!("every callback fails"))
                .map_async(
                    |_: u32| {
                        worker.lock().unwrap().get_or_insert(thread::current().id());
                    },
                    0..20,
                );
            batch.wait();
            assert_eq!(batch.failures().len(), 20);
            let after = s.apply_async(|| thread::current().id()).get().unwrap();
            assert_eq!(Some(after), *worker.lock().unwrap(), "the same worker");

            // A panicking callback after a panicking task: both are reported.
            let both = s
                .batch()
                .on_complete(|_, _: Result<&(), &TaskError>| panic!("and the callback"))
                .apply_async(|| panic!("the task"));
            let error = both.get().unwrap_err();
            let message = error.panic_message().unwrap();
            assert!(
                message.contains("the task") && message.contains("and the callback"),
                "{message}"
            );
        });
    });
}

#[test]
fn a_cancelled_task_reaches_the_callback_as_cancelled() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let (started_tx, started) = mpsc::channel();
        let (release_tx, release) = mpsc::channel::<()>();
        let outcomes = Mutex::new(Vec::new());
        let release = Mutex::new(release);
        let started_tx = Mutex::new(started_tx);
        pool.scope(|s| {
            let batch = s
                .batch()
                .chunk(1)
                .on_complete(|index, outcome: Result<&usize, &TaskError>| {
                    let kind = outcome.map_err(|e| e.kind().clone()).copied();
                    outcomes.lock().unwrap().push((index, kind));
                    if index == 3 {
                        panic!("a callback panicking on a cancel does not stop cancel()");
                    }
                })
                .map_async(
                    |i: usize| {
                        if i == 0 {
                            started_tx.lock().unwrap().send(()).unwrap();
                            release.lock().unwrap().recv().unwrap();
                        }
                        i
                    },
                    0..5,
                );
            started.recv().unwrap();
            assert_eq!(batch.cancel(), 4);
            release_tx.send(()).unwrap();
            batch.wait();
            let failures = batch.failures();
            assert_eq!(failures.len(), 4);
            assert!(failures[2].is_panic(), "{:?}", failures[2]);
        });
        let mut outcomes = outcomes.into_inner().unwrap();
        outcomes.sort_by_key(|&(index, _)| index);
        assert_eq!(outcomes[0], (0, Ok(0)));
        for (index, outcome) in &outcomes[1..] {
            assert_eq!(*outcome, Err(TaskErrorKind::Cancelled), "task {index}");
        }
        assert_eq!(outcomes.len(), 5);
    });
}

#[test]
fn an_unreported_callback_panic_is_reraised_when_the_scope_ends() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let result = catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                let _ = s
                    .batch()
                    .name("log")
                    .on_complete(|index, _: Result<&usize, &TaskError>| {
                        if index == 1 {
                            panic!("log file is full");
                        }
                    })
                    .map_async(|i: usize| i, 0..3);
            })
        }));
        let message = panic_message(&*result.unwrap_err());
        assert!(message.contains("log file is full"), "{message}");
        // The pool still works.
        assert_eq!(pool.scope(|s| s.apply(|| 5)).unwrap(), 5);
    });
}

#[test]
fn a_streams_callback_gets_the_index_of_the_input_in_the_whole_stream() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let seen = Mutex::new(Vec::new());
        pool.scope(|s| {
            let doubled: Vec<u32> = s
                .batch()
                .in_flight(4)
                .on_complete(|index, outcome: Result<&u32, &TaskError>| {
                    let value = match outcome {
                        Ok(value) => *value,
                        Err(error) => {
                            assert_eq!(error.index(), index, "the error agrees");
                            u32::MAX
                        }
                    };
                    seen.lock().unwrap().push((index, value));
                })
                .imap(
                    |x: u32| {
                        if x == 13 {
                            panic!("thirteen");
                        }
                        x * 2
                    },
                    0..20,
                )
                .filter_map(Result::ok)
                .collect();
            assert_eq!(doubled.len(), 19);
        });
        let mut seen = seen.into_inner().unwrap();
        seen.sort_unstable();
        let expected: Vec<(usize, u32)> = (0..20)
            .map(|x| (x as usize, if x == 13 { u32::MAX } else { x * 2 }))
            .collect();
        assert_eq!(seen, expected);
    });
}
