//! A runtime function that panics on misuse reports the user's line, not a
//! line inside poolscope (`#[track_caller]` all the way down).
//!
//! This file installs a panic hook of its own to read panic locations, so
//! it holds a single test: hooks are process-wide.

use std::panic::{self, catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use poolscope::{par_batch, Pool};

static LOCATIONS: Mutex<Vec<(String, u32)>> = Mutex::new(Vec::new());

/// The file and line `f` panicked at.
fn panic_location(f: impl FnOnce()) -> (String, u32) {
    LOCATIONS.lock().unwrap().clear();
    let outcome = catch_unwind(AssertUnwindSafe(f));
    assert!(outcome.is_err(), "expected a panic");
    LOCATIONS
        .lock()
        .unwrap()
        .pop()
        .expect("the hook saw the panic")
}

#[track_caller]
fn assert_here(location: (String, u32), line: u32) {
    assert!(
        location.0.ends_with("misuse_locations.rs"),
        "the panic points into {}:{} instead of the caller's line {line}",
        location.0,
        location.1
    );
    assert_eq!(location.1, line);
}

#[test]
fn misuse_panics_name_the_users_line() {
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if let Some(location) = info.location() {
            LOCATIONS
                .lock()
                .unwrap()
                .push((location.file().to_string(), location.line()));
        }
        // Still say what panicked, so a failing assertion shows.
        eprintln!("{info}");
        let _ = &previous;
    }));

    // `misuse!(expr)` expects `expr` to panic at the line the macro is on.
    macro_rules! misuse {
        ($misuse:expr) => {
            assert_here(
                panic_location(|| {
                    let _ = $misuse;
                }),
                line!(),
            )
        };
    }
    let pool = Pool::new(1).unwrap();
    pool.scope(|s| {
        misuse!(s.join());
        s.close();
        misuse!(s.apply_async(|| 1));
        misuse!(s.map_async(|x: u32| x, 0..3));
        misuse!(s.map(|x: u32| x, 0..3));
        misuse!(s.starmap_async(|a: u32, b: u32| a + b, [(1, 2)]));
        misuse!(par_batch!(s, u32::pow(2, i) for i in 0..3));
    });
    pool.scope(|s| {
        let chunk = std::hint::black_box(0);
        misuse!(s.batch().chunk(chunk));
        misuse!(s.batch().in_flight(chunk));
        misuse!(par_batch!(s, chunk = chunk, u32::pow(2, i) for i in 0..3));
    });
    drop(panic::take_hook());
}
