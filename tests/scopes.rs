//! Scopes: tasks borrow from the caller's stack, and the scope does not
//! return before every one of them finished, whatever the body did.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use poolscope::{Pool, Scope};

mod common;

use common::{panic_message, watchdog};

/// A task slow enough that a scope which did not wait would return first.
fn slow_increment(counter: &AtomicUsize) {
    thread::sleep(Duration::from_millis(20));
    counter.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn tasks_borrow_from_the_callers_stack() {
    let words = vec!["a".to_string(), "bb".into(), "ccc".into()];
    let numbers: Vec<u64> = (1..=100).collect();
    let pool = Pool::new(2).unwrap();
    let (lens, total) = pool.scope(|s| {
        let lens = s.map_async(|w: &String| w.len(), &words);
        let total = s.apply_async(|| numbers.iter().sum::<u64>());
        (lens.get().unwrap(), total.get().unwrap())
    });
    assert_eq!(lens, [1, 2, 3]);
    assert_eq!(total, 5050);
    // Still ours after the scope.
    assert_eq!(words.len(), 3);
}

#[test]
fn tasks_write_to_disjoint_parts_of_a_borrowed_vec() {
    let mut pixels: Vec<u32> = (0..1000).collect();
    let mut counts = [0usize; 4];
    let pool = Pool::new(2).unwrap();
    pool.scope(|s| {
        for chunk in pixels.chunks_mut(64) {
            let _ = s.apply_async(move || chunk.iter_mut().for_each(|p| *p *= 2));
        }
        let _ = s.map_async(|(i, count): (usize, &mut usize)| *count = i * 10, {
            counts.iter_mut().enumerate()
        });
    });
    assert_eq!(pixels, (0..1000).map(|p| p * 2).collect::<Vec<u32>>());
    assert_eq!(counts, [0, 10, 20, 30]);

    let mut values = vec![1u64; 50];
    pool.scope(|s| s.map(|v: &mut u64| *v += 41, values.iter_mut()))
        .unwrap();
    assert!(values.iter().all(|&v| v == 42), "{values:?}");
}

#[test]
fn the_scope_gives_back_the_bodys_value() {
    let pool = Pool::new(1).unwrap();
    let value = pool.scope(|s| {
        let _ = s.apply_async(|| ());
        "the body's value"
    });
    assert_eq!(value, "the body's value");
    assert_eq!(poolscope::scope(|_| 7), 7);
}

#[test]
fn the_scope_returns_only_after_every_task_finished() {
    let done = AtomicUsize::new(0);
    let pool = Pool::new(2).unwrap();
    pool.scope(|s| {
        // Handles dropped at once: the scope still waits.
        let _ = s.map_async(|_| slow_increment(&done), 0..8);
        let _ = s.apply_async(|| slow_increment(&done));
    });
    assert_eq!(done.load(Ordering::SeqCst), 9);
}

#[test]
fn the_scope_waits_for_tasks_whose_handles_were_forgotten() {
    let done = AtomicUsize::new(0);
    let mut results = [0u64; 16];
    let pool = Pool::new(2).unwrap();
    pool.scope(|s| {
        let batch = s.map_async(|_| slow_increment(&done), 0..6);
        std::mem::forget(batch);
        let task = s.apply_async(|| {
            thread::sleep(Duration::from_millis(20));
            for (i, r) in results.iter_mut().enumerate() {
                *r = i as u64 * 3;
            }
        });
        std::mem::forget(task);
    });
    assert_eq!(done.load(Ordering::SeqCst), 6);
    assert_eq!(results[15], 45, "the forgotten task had not finished");
}

#[test]
fn a_panicking_body_waits_for_every_task_then_resumes_its_panic() {
    let done = AtomicUsize::new(0);
    let pool = Pool::new(2).unwrap();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            let _ = s.map_async(|_| slow_increment(&done), 0..8);
            panic!("the body failed");
        })
    }));
    // Read before anything else can happen: the scope must already have
    // waited for the tasks when the panic reached us.
    let finished = done.load(Ordering::SeqCst);
    let payload = outcome.expect_err("the body's panic is resumed");
    assert_eq!(panic_message(&*payload), "the body failed");
    assert_eq!(finished, 8, "the panic escaped before every task finished");

    // The pool is fine afterwards.
    assert_eq!(pool.scope(|s| s.map(|x: u8| x, 0..3)).unwrap(), [0, 1, 2]);
}

/// A user's recursive helper, written as DESIGN says: `&'s Scope<'s, '_>`.
fn parallel_sum<'s>(s: &'s Scope<'s, '_>, data: &'s [u64]) -> u64 {
    if data.len() <= 8 {
        return data.iter().sum();
    }
    let (left, right) = data.split_at(data.len() / 2);
    let halves = s.map_async(move |half: &'s [u64]| parallel_sum(s, half), [left, right]);
    halves.get().unwrap().iter().sum()
}

fn assert_sync<T: Sync + ?Sized>(_: &T) {}

#[test]
fn a_task_may_take_the_scope_and_submit_batches_of_its_own() {
    let data: Vec<u64> = (0..1000).collect();
    let pool = Pool::new(2).unwrap();
    let total = watchdog(move || {
        pool.scope(|s| {
            assert_sync(s);
            let task = s.apply_async(|| parallel_sum(s, &data));
            task.get().unwrap()
        })
    });
    assert_eq!(total, 999 * 1000 / 2);
}

#[test]
fn batches_submitted_by_tasks_are_waited_for_at_scope_end() {
    let done = AtomicUsize::new(0);
    let pool = Pool::new(2).unwrap();
    let done_ref = &done;
    pool.scope(|s| {
        let submitters = s.map_async(
            move |_| {
                // Submitted from a worker, handle dropped at once.
                let _ = s.map_async(move |_| slow_increment(done_ref), 0..3);
            },
            0..4,
        );
        // Waiting here is not needed: after the body, the scope's own tasks
        // may still submit, and the scope waits for what they submitted.
        drop(submitters);
    });
    assert_eq!(done.load(Ordering::SeqCst), 12);
}

#[test]
fn scopes_on_the_default_pool_borrow_and_wait_too() {
    let data = vec![3, 1, 4, 1, 5, 9, 2, 6];
    let done = AtomicUsize::new(0);
    let doubled = poolscope::scope(|s| {
        let _ = s.map_async(|_| slow_increment(&done), 0..4);
        s.map(|x: &i32| x * 2, &data)
    })
    .unwrap();
    assert_eq!(doubled, [6, 2, 8, 2, 10, 18, 4, 12]);
    assert_eq!(done.load(Ordering::SeqCst), 4);
}

#[test]
fn each_scope_is_open_until_its_own_end() {
    let pool = Pool::new(1).unwrap();
    pool.scope(|s| s.close());
    // Closing one scope does not close the next one on the same pool.
    let value = pool.scope(|s| {
        assert!(!s.is_closed());
        s.apply(|| 5)
    });
    assert_eq!(value.unwrap(), 5);
    let debug = pool.scope(|s| format!("{s:?}"));
    assert!(debug.contains("Scope"), "{debug}");
    assert!(debug.contains("closed: false"), "{debug}");
}

#[test]
fn on_one_worker_tasks_start_in_the_order_they_were_submitted() {
    watchdog(|| {
        // Single tasks and batches take different queues while the pool is
        // idle; whichever queue each went to, one worker starts them in
        // submission order.
        let pool = Pool::new(1).unwrap();
        let order = std::sync::Mutex::new(Vec::new());
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = std::sync::Mutex::new(rx);
        pool.scope(|s| {
            let order = &order;
            let rx = &rx;
            // Holds the only worker until everything below is queued.
            let _ = s.apply_async(move || {
                rx.lock().unwrap().recv().unwrap();
                order.lock().unwrap().push("first");
            });
            let _ = s.apply_async(move || order.lock().unwrap().push("single a"));
            let _ = s.map_async(move |_: u32| order.lock().unwrap().push("batch b"), 0..2);
            let _ = s.apply_async(move || order.lock().unwrap().push("single c"));
            let _ = s.map_async(move |_: u32| order.lock().unwrap().push("batch d"), 0..2);
            let _ = s.apply_async(move || order.lock().unwrap().push("single e"));
            tx.send(()).unwrap();
        });
        assert_eq!(
            order.into_inner().unwrap(),
            [
                "first", "single a", "batch b", "batch b", "single c", "batch d", "batch d",
                "single e"
            ]
        );
    });
}
