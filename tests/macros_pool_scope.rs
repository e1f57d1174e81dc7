//! `pool_scope!`: which pool the scope runs on, what it gives back, and
//! how `return` and `?` behave in its body.

use std::sync::Mutex;
use std::thread;

use poolscope::{par_batch, pool_scope, Pool};

fn square(x: u64) -> u64 {
    x * x
}

fn thread_name(_: u32) -> String {
    thread::current().name().unwrap_or_default().to_string()
}

#[test]
fn the_value_of_the_body_is_the_value_of_the_scope() {
    let total: u64 = pool_scope!(|pool| par_batch!(pool, square(x) for x in 1..=3)
        .get()
        .unwrap()
        .iter()
        .sum());
    assert_eq!(total, 14);
    let total: u64 = pool_scope!(threads = 2, |pool| {
        par_batch!(pool, square(x) for x in 1..=3)
            .get()
            .unwrap()
            .iter()
            .sum()
    });
    assert_eq!(total, 14);
}

#[test]
fn threads_and_name_give_the_scope_a_pool_of_its_own() {
    let (threads, names) = pool_scope!(threads = 3, name = "resize", |pool| {
        (
            pool.threads(),
            par_batch!(pool, thread_name(i) for i in 0..8)
                .get()
                .unwrap(),
        )
    });
    assert_eq!(threads, 3);
    assert!(
        names.iter().all(|name| name.starts_with("resize")),
        "{names:?}"
    );
}

#[test]
fn without_options_the_scope_runs_on_the_default_pool() {
    let threads = pool_scope!(|pool| pool.threads());
    assert_eq!(threads, Pool::global().threads());
    let names = pool_scope!(|pool| par_batch!(pool, thread_name(i) for i in 0..4)
        .get()
        .unwrap());
    assert!(
        names
            .iter()
            .all(|name| name.starts_with("poolscope-default")),
        "{names:?}"
    );
}

#[test]
fn on_runs_the_scope_on_an_existing_pool_which_outlives_it() {
    let pool = Pool::builder()
        .threads(2)
        .thread_name("mine")
        .build()
        .unwrap();
    for round in 0..3u64 {
        let names = pool_scope!(on = pool, |s| par_batch!(s, thread_name(i) for i in 0..4)
            .get()
            .unwrap());
        assert!(
            names.iter().all(|name| name.starts_with("mine")),
            "round {round}: {names:?}"
        );
    }
    // A reference works as well.
    let by_ref = &pool;
    assert_eq!(pool_scope!(on = by_ref, |s| s.threads()), 2);
}

#[test]
#[should_panic(expected = "pool_scope!: could not start the pool")]
fn a_pool_that_cannot_be_built_is_a_clear_panic() {
    let threads = "0".parse::<usize>().unwrap();
    pool_scope!(threads = threads, |_pool| ());
}

#[test]
fn return_and_question_mark_leave_the_body_like_a_closure_and_the_scope_still_waits() {
    let finished = Mutex::new(Vec::new());
    let record = |i: u32| finished.lock().unwrap().push(i);
    let parsed: Result<u32, std::num::ParseIntError> = pool_scope!(|pool| {
        let _ = par_batch!(pool, record(i) for i in 0..4);
        let n: u32 = "12".parse()?;
        let m: u32 = "x".parse()?;
        Ok(n + m)
    });
    assert!(parsed.is_err());
    let early = pool_scope!(|pool| {
        let _ = par_batch!(pool, record(i) for i in 4..8);
        if finished.lock().unwrap().len() < 100 {
            return "returned early";
        }
        "ran to the end"
    });
    assert_eq!(early, "returned early");
    // The scope waited for the tasks on both early exits.
    let mut finished = finished.into_inner().unwrap();
    finished.sort();
    assert_eq!(finished, (0..8).collect::<Vec<_>>());
}

#[test]
fn max_blocking_threads_caps_the_blocking_lane_of_the_scopes_pool() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    let inside = AtomicUsize::new(0);
    let most = AtomicUsize::new(0);
    let release = AtomicUsize::new(0);
    let wait = |_: u32| {
        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
        most.fetch_max(now, Ordering::SeqCst);
        while release.load(Ordering::SeqCst) == 0 {
            thread::sleep(Duration::from_millis(1));
        }
        inside.fetch_sub(1, Ordering::SeqCst);
    };
    pool_scope!(threads = 1, max_blocking_threads = 2, |pool| {
        let batch = par_batch!(pool, blocking, wait(i) for i in 0..6);
        let deadline = std::time::Instant::now() + Duration::from_secs(50);
        while inside.load(Ordering::SeqCst) < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "the lane never ran two tasks"
            );
            thread::sleep(Duration::from_millis(1));
        }
        // Give a third lane thread every chance to show up (the default
        // cap would allow six) before the tasks are let go.
        thread::sleep(Duration::from_millis(50));
        release.store(1, Ordering::SeqCst);
        batch.get().unwrap();
    });
    assert_eq!(
        most.load(Ordering::SeqCst),
        2,
        "never more than 2 blocking tasks at once"
    );
}
