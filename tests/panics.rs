//! Panicking tasks: captured with their index, name and message; the worker
//! and the rest of the batch carry on; a panic nobody looked at is re-raised
//! when the scope ends, one somebody looked at is not.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread::{self, ThreadId};
use std::time::Duration;

use poolscope::{Pool, TaskErrorKind};

mod common;

use common::{panic_message, watchdog};

/// What `body` panicked with when run as a scope on `pool`, or `None` if
/// the scope ended normally.
fn scope_panic<F>(pool: &Pool, body: F) -> Option<String>
where
    F: for<'scope> FnOnce(&'scope poolscope::Scope<'scope, '_>),
{
    catch_unwind(AssertUnwindSafe(|| pool.scope(body)))
        .err()
        .map(|payload| panic_message(&*payload))
}

fn resize(size: u32) -> u32 {
    if size == 0 {
        panic!("cannot resize an empty image");
    }
    size / 2
}

#[test]
fn a_panicking_task_is_reported_with_its_index_name_and_message() {
    let pool = Pool::new(2).unwrap();
    let error = pool.scope(|s| {
        s.batch()
            .name("resize")
            .map_async(resize, [640, 480, 0, 320])
            .get()
            .unwrap_err()
    });
    assert_eq!(error.index(), 2);
    assert_eq!(error.task_name(), Some("resize"));
    assert_eq!(error.panic_message(), Some("cannot resize an empty image"));
    assert!(error.is_panic());
    assert_eq!(
        error.kind(),
        &TaskErrorKind::Panicked {
            message: "cannot resize an empty image".to_string()
        }
    );
    let location = error.location().expect("the panic's place is known");
    assert!(location.file().ends_with("panics.rs"), "{location}");
    assert_eq!(
        error.to_string(),
        format!("task 2 (`resize`) panicked at {location}: cannot resize an empty image")
    );

    // Unnamed batches and single tasks say which task too.
    let error = pool.scope(|s| s.apply_async(|| resize(0)).get().unwrap_err());
    assert_eq!(error.index(), 0);
    assert_eq!(error.task_name(), None);
    assert_eq!(error.panic_message(), Some("cannot resize an empty image"));
}

#[test]
fn a_panic_with_a_formatted_or_non_string_payload_is_reported_too() {
    let pool = Pool::new(1).unwrap();
    pool.scope(|s| {
        let formatted = s.apply_async(|| -> () { panic!("image {} of {}", 3, 7) });
        assert_eq!(
            formatted.get().unwrap_err().panic_message(),
            Some("image 3 of 7")
        );
        let odd = s.apply_async(|| std::panic::panic_any(42_u32));
        let error = odd.get().unwrap_err();
        assert!(error.is_panic());
        assert!(!error.panic_message().unwrap().is_empty());
    });
}

#[test]
fn the_rest_of_the_batch_runs_when_one_task_panics() {
    let pool = Pool::new(2).unwrap();
    let ran = AtomicUsize::new(0);
    pool.scope(|s| {
        let batch = s.map_async(
            |i: usize| {
                if i == 0 {
                    panic!("the first task fails");
                }
                ran.fetch_add(1, Ordering::SeqCst);
                i
            },
            0..50,
        );
        batch.wait();
        assert_eq!(batch.completed(), 50);
        let failures = batch.failures();
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].index(), 0);
    });
    assert_eq!(ran.load(Ordering::SeqCst), 49);
}

#[test]
fn the_worker_survives_a_panicking_task() {
    let pool = Pool::new(1).unwrap();
    let workers: Mutex<Vec<ThreadId>> = Mutex::new(Vec::new());
    let record = || workers.lock().unwrap().push(thread::current().id());
    pool.scope(|s| {
        let failing = s.map_async(
            |_| {
                record();
                panic!("every task fails");
            },
            0..5,
        );
        failing.wait();
        assert_eq!(failing.failures().len(), 5);
        // Later batches on the one-thread pool still run, on the same thread.
        let later = s.map_async(
            |x: u32| {
                record();
                x + 1
            },
            0..5,
        );
        assert_eq!(later.get().unwrap(), [1, 2, 3, 4, 5]);
    });
    assert_eq!(pool.scope(|s| s.apply(|| 1)).unwrap(), 1);
    let workers = workers.into_inner().unwrap();
    assert_eq!(workers.len(), 10);
    assert!(
        workers.iter().all(|id| *id == workers[0]),
        "the panic cost the pool its worker: {workers:?}"
    );
}

#[test]
fn a_panic_whose_handle_was_dropped_is_reraised_when_the_scope_ends() {
    let pool = Pool::new(2).unwrap();
    let message = scope_panic(&pool, |s| {
        let _ = s.batch().name("resize").map_async(resize, [10, 0, 20]);
    })
    .expect("the unreported panic is re-raised");
    assert!(message.contains("never reported"), "{message}");
    assert!(message.contains("task 1"), "{message}");
    assert!(message.contains("resize"), "{message}");
    assert!(
        message.contains("cannot resize an empty image"),
        "{message}"
    );
}

#[test]
fn a_panic_that_was_only_waited_for_is_reraised_when_the_scope_ends() {
    let pool = Pool::new(2).unwrap();
    let message = scope_panic(&pool, |s| {
        let batch = s.batch().name("thumbnail").map_async(resize, [0, 8]);
        batch.wait();
        assert!(batch.is_ready());
        assert!(batch.wait_timeout(Duration::ZERO));
    })
    .expect("wait() does not report the panic");
    assert!(message.contains("thumbnail"), "{message}");
    assert!(
        message.contains("cannot resize an empty image"),
        "{message}"
    );
}

#[test]
fn every_unreported_panic_is_named_when_the_scope_ends() {
    let pool = Pool::new(2).unwrap();
    let message = scope_panic(&pool, |s| {
        let _ = s
            .batch()
            .name("decode")
            .apply_async(|| -> () { panic!("bad header") });
        let _ = s
            .batch()
            .name("encode")
            .apply_async(|| -> () { panic!("disk full") });
        let _ = s.batch().name("fine").apply_async(|| ());
    })
    .expect("the unreported panics are re-raised");
    assert!(message.contains("2 task panics"), "{message}");
    for part in ["decode", "bad header", "encode", "disk full"] {
        assert!(message.contains(part), "{part} missing from {message}");
    }
    assert!(!message.contains("fine"), "{message}");
}

#[test]
fn an_early_unreported_panic_is_not_lost_among_many_later_batches() {
    let pool = Pool::new(2).unwrap();
    let message = scope_panic(&pool, |s| {
        for i in 0..300u32 {
            let batch = s
                .batch()
                .name(if i == 5 { "early" } else { "later" })
                .map_async(
                    move |x: u32| if i == 5 && x == 1 { resize(0) } else { x },
                    0..3,
                );
            if i % 2 == 0 {
                // Finished and dropped: the scope may forget such batches,
                // but not the one whose panic nobody saw.
                batch.wait();
            }
        }
    })
    .expect("the early panic is re-raised");
    assert!(message.contains("early"), "{message}");
    assert!(message.contains("task 1"), "{message}");
    assert!(message.contains("1 task panic was"), "{message}");
}

#[test]
fn a_panic_reported_by_get_is_not_reraised() {
    let pool = Pool::new(2).unwrap();
    let outcome = scope_panic(&pool, |s| {
        let error = s.map_async(resize, [0, 1]).get().unwrap_err();
        assert_eq!(error.index(), 0);
        let error = s.apply_async(|| resize(0)).get().unwrap_err();
        assert_eq!(error.index(), 0);
        let error = s.map(resize, [4, 0]).unwrap_err();
        assert_eq!(error.index(), 1);
    });
    assert_eq!(outcome, None);
}

#[test]
fn a_panic_reported_by_successful_or_failures_is_not_reraised() {
    let pool = Pool::new(2).unwrap();
    let outcome = scope_panic(&pool, |s| {
        let batch = s.map_async(resize, [0, 1]);
        batch.wait();
        assert_eq!(batch.successful(), Some(false));
        let task = s.apply_async(|| resize(0));
        task.wait();
        assert_eq!(task.successful(), Some(false));
        let listed = s.map_async(resize, [3, 0]);
        listed.wait();
        assert_eq!(listed.failures().len(), 1);
    });
    assert_eq!(outcome, None);
}

#[test]
fn the_bodys_own_panic_is_the_one_that_comes_out() {
    let pool = Pool::new(2).unwrap();
    let message = scope_panic(&pool, |s| {
        let _ = s.apply_async(|| resize(0));
        panic!("the body failed");
    });
    assert_eq!(message.as_deref(), Some("the body failed"));
}

#[test]
fn a_panic_in_a_nested_scope_reaches_the_outer_handle() {
    let message = watchdog(|| {
        let pool = Pool::new(1).unwrap();
        pool.scope(|outer| {
            let error = outer
                .batch()
                .name("outer")
                .apply_async(|| {
                    pool.scope(|inner| {
                        let _ = inner.batch().name("inner").map_async(resize, [0]);
                    })
                })
                .get()
                .unwrap_err();
            assert_eq!(error.task_name(), Some("outer"));
            error.panic_message().unwrap_or_default().to_string()
        })
    });
    assert!(message.contains("inner"), "{message}");
    assert!(
        message.contains("cannot resize an empty image"),
        "{message}"
    );
}
