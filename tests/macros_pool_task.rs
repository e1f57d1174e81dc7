//! `#[pool_task]`: the function stays a function, and its options follow
//! it into every batch of its calls.

use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use poolscope::{par_batch, pool_scope, pool_task, Pool, Scope};

mod geometry {
    use poolscope::pool_task;

    /// The area of a rectangle.
    #[pool_task]
    #[inline]
    #[must_use]
    pub fn area(width: u32, height: u32) -> u32 {
        width * height
    }

    #[pool_task(name = "perimeter of a rectangle")]
    pub(crate) fn perimeter(width: u32, height: u32) -> u32 {
        2 * (width + height)
    }

    #[cfg(not(any()))]
    #[pool_task]
    pub fn longest<'a>(words: &'a [&'a str]) -> Option<&'a str> {
        words.iter().copied().max_by_key(|word| word.len())
    }
}

use geometry::{area, longest, perimeter};

mod common;

use common::watchdog;

#[test]
fn the_function_stays_callable_with_its_signature_and_visibility() {
    assert_eq!(area(3, 4), 12);
    assert_eq!(perimeter(3, 4), 14);
    let words = ["a", "ccc", "bb"];
    assert_eq!(longest(&words), Some("ccc"));
    // As a value, too: it can be passed where a function is expected.
    let pairs = [(1, 2), (3, 4)];
    let areas: Vec<u32> = pairs.iter().map(|&(w, h)| area(w, h)).collect();
    assert_eq!(areas, [2, 12]);
    assert_eq!(area.name(), Some("area"));
    assert!(!area.is_blocking());
    assert_eq!(
        format!("{area:?}"),
        "#[pool_task] fn area(width: u32, height: u32) -> u32"
    );
}

#[test]
fn par_batch_names_the_batch_after_the_task_or_its_name_option() {
    pool_scope!(|pool| {
        let areas = par_batch!(pool, area(w, 2) for w in 0..4);
        assert_eq!(areas.name(), Some("area"));
        assert_eq!(areas.get().unwrap(), [0, 2, 4, 6]);
        let perimeters = par_batch!(pool, perimeter(w, 1) for w in 0..2);
        assert_eq!(perimeters.name(), Some("perimeter of a rectangle"));
        // The macro's own option wins.
        let renamed = par_batch!(pool, name = "renamed", area(w, 1) for w in 0..2);
        assert_eq!(renamed.name(), Some("renamed"));
        // A list of two tasks carries both names.
        let both = par_batch!(pool, [area(1, 1), perimeter(1, 1)]);
        assert_eq!(both.name(), Some("area, perimeter of a rectangle"));
    });
}

#[pool_task(name = "parser")]
fn parse(text: &str) -> u32 {
    text.parse().expect("not a number")
}

#[test]
fn a_panicking_task_is_reported_with_its_name() {
    let error =
        pool_scope!(|pool| par_batch!(pool, parse(t) for t in ["1", "x", "3"]).get()).unwrap_err();
    assert_eq!(error.index(), 1);
    assert_eq!(error.task_name(), Some("parser"));
    let location = error.location().expect("the panic's place is known");
    assert!(
        location.file().ends_with("macros_pool_task.rs"),
        "{location}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "task 1 (`parser`) panicked at {location}: not a number: ParseIntError {{ kind: InvalidDigit }}"
        )
    );
}

#[test]
fn an_unreported_panic_names_the_task_when_the_scope_ends() {
    let payload = std::panic::catch_unwind(|| {
        pool_scope!(|pool| {
            let _ = par_batch!(pool, parse(t) for t in ["x"]);
        })
    })
    .unwrap_err();
    let message = payload.downcast_ref::<String>().unwrap();
    assert!(message.contains("parser"), "{message}");
}

/// How many blocking tasks are inside `meet` at once.
static MET: Mutex<usize> = Mutex::new(0);
static ALL_MET: Condvar = Condvar::new();

/// Sleeps like a slow request, then waits (at most 30 s) until ten calls
/// are inside at once; says whether they were.
#[pool_task(blocking)]
fn slow_request(_id: u32) -> bool {
    thread::sleep(Duration::from_millis(300));
    let mut met = MET.lock().unwrap();
    *met += 1;
    ALL_MET.notify_all();
    let (met, _) = ALL_MET
        .wait_timeout_while(met, Duration::from_secs(30), |met| *met < 10)
        .unwrap();
    *met >= 10
}

#[test]
fn blocking_tasks_run_on_the_blocking_lane_all_at_once() {
    assert!(slow_request.is_blocking());
    let (all_met, elapsed) = watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let start = Instant::now();
        let all_met = pool_scope!(on = pool, |s| {
            par_batch!(s, slow_request(i) for i in 0..10).get().unwrap()
        });
        (all_met, start.elapsed())
    });
    // Ten tasks on two CPU workers: they can only all be inside at once
    // (instead of timing out) if the blocking lane runs them.
    assert_eq!(all_met, [true; 10]);
    println!("ten 0.3 s blocking tasks on 2 threads took {elapsed:?}");
}

#[pool_task]
fn fib<'s>(pool: &'s Scope<'s, '_>, n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    par_batch!(pool, fib(pool, k) for k in [n - 1, n - 2])
        .get()
        .unwrap()
        .iter()
        .sum()
}

#[test]
fn a_task_that_takes_the_scope_submits_nested_batches_of_itself() {
    let pool = Pool::new(1).unwrap();
    assert_eq!(pool_scope!(on = pool, |s| fib(s, 16)), 987);
    assert_eq!(pool_scope!(|s| fib.spawn(s, (s, 10)).get()).unwrap(), 55);
}

#[test]
fn spawn_map_and_starmap_submit_without_par_batch() {
    let words = ["a", "ccc", "bb"];
    pool_scope!(|pool| {
        let one = area.spawn(pool, (6, 7));
        let many = perimeter.starmap(pool, [(1, 1), (2, 3)]);
        let parsed = parse.map(pool, ["4", "5"]);
        let longest_word = longest.spawn(pool, (&words[..],));
        assert_eq!(many.name(), Some("perimeter of a rectangle"));
        assert_eq!(one.get().unwrap(), 42);
        assert_eq!(many.get().unwrap(), [4, 10]);
        assert_eq!(parsed.get().unwrap(), [4, 5]);
        assert_eq!(longest_word.get().unwrap(), Some("ccc"));
    });
}
