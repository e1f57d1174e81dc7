//! `#[pool_task]`: the function stays a plain function, usable wherever a
//! function is, and wherever it runs on a pool its name shows in panic
//! reports and `blocking` hands its CPU worker's slot to a spare.

use std::sync::atomic::{AtomicUsize, Ordering};

use poolscope::{par_batch, pool_scope, pool_task, Pool, Scope};
use rayon::prelude::*;

mod geometry {
    use poolscope::pool_task;

    /// The area of a rectangle.
    #[pool_task]
    #[inline]
    #[must_use]
    pub(crate) fn area(width: u32, height: u32) -> u32 {
        width * height
    }

    #[pool_task(name = "perimeter of a rectangle")]
    pub(crate) fn perimeter(width: u32, height: u32) -> u32 {
        2 * (width + height)
    }

    #[cfg(not(any()))]
    #[pool_task]
    pub(crate) fn longest<'a>(words: &'a [&'a str]) -> Option<&'a str> {
        words.iter().copied().max_by_key(|word| word.len())
    }
}

use geometry::{area, longest, perimeter};

mod common;

use common::{eventually, watchdog};

#[pool_task]
fn square(x: u64) -> u64 {
    x * x
}

/// The kind of function users map over chunks of data.
#[pool_task]
fn chunk_stats(chunk: &[u64]) -> (u64, u64) {
    (
        chunk.iter().copied().min().unwrap_or(0),
        chunk.iter().copied().max().unwrap_or(0),
    )
}

#[test]
fn the_function_stays_callable_with_its_signature_and_visibility() {
    assert_eq!(area(3, 4), 12);
    assert_eq!(perimeter(3, 4), 14);
    let words = ["a", "ccc", "bb"];
    assert_eq!(longest(&words), Some("ccc"));
}

#[test]
fn it_is_a_value_wherever_a_plain_fn_is() {
    let f: fn(u32, u32) -> u32 = area;
    assert_eq!(f(2, 5), 10);
    let squares: Vec<u64> = (0..5).map(square).collect();
    assert_eq!(squares, [0, 1, 4, 9, 16]);
    let data: Vec<u64> = (1..=9).collect();
    let stats: Vec<(u64, u64)> = data.chunks(3).map(chunk_stats).collect();
    assert_eq!(stats, [(1, 3), (4, 6), (7, 9)]);
    // Two functions of one signature, in one array of fn pointers.
    let shapes: [fn(u32, u32) -> u32; 2] = [area, perimeter];
    assert_eq!(shapes.map(|shape| shape(1, 2)), [2, 6]);
}

#[test]
fn scope_map_and_map_async_take_it_as_the_task() {
    let data: Vec<u64> = (1..=9).collect();
    pool_scope!(|pool| {
        assert_eq!(pool.map(square, 0..4).unwrap(), [0, 1, 4, 9]);
        let stats = pool.map_async(chunk_stats, data.chunks(3));
        assert_eq!(stats.get().unwrap(), [(1, 3), (4, 6), (7, 9)]);
        let one = pool.apply_async(|| area(6, 7));
        let many = pool.starmap_async(perimeter, [(1, 1), (2, 3)]);
        assert_eq!(one.get().unwrap(), 42);
        assert_eq!(many.get().unwrap(), [4, 10]);
    });
}

#[test]
fn rayon_maps_it_too() {
    let data: Vec<u64> = (0..100).collect();
    let squares: Vec<u64> = data.par_iter().copied().map(square).collect();
    assert_eq!(squares[99], 99 * 99);
    let stats: Vec<(u64, u64)> = data.par_chunks(50).map(chunk_stats).collect();
    assert_eq!(stats, [(0, 49), (50, 99)]);
}

#[pool_task(name = "parser")]
fn parse(text: &str) -> u32 {
    text.parse().expect("not a number")
}

#[pool_task]
fn checked_half(x: u32) -> u32 {
    assert!(x % 2 == 0, "{x} is odd");
    x / 2
}

#[test]
fn a_panicking_task_is_reported_with_its_name_through_par_batch() {
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
    // Without `name = ...`, the function's own name.
    let error =
        pool_scope!(|pool| par_batch!(pool, checked_half(x) for x in [2, 4, 5]).get()).unwrap_err();
    assert_eq!(error.index(), 2);
    assert_eq!(error.task_name(), Some("checked_half"));
}

#[test]
fn a_panicking_task_is_reported_with_its_name_through_map_async() {
    let error = pool_scope!(|pool| pool.map_async(parse, ["7", "?"]).get()).unwrap_err();
    assert_eq!(error.index(), 1);
    assert_eq!(error.task_name(), Some("parser"));
    assert_eq!(
        error.panic_message().map(|m| m.starts_with("not a number")),
        Some(true)
    );
    let error = pool_scope!(|pool| pool.map(checked_half, [1])).unwrap_err();
    assert_eq!(error.task_name(), Some("checked_half"));
}

#[test]
fn the_batch_has_no_name_of_its_own_and_a_batch_name_wins() {
    pool_scope!(|pool| {
        let areas = par_batch!(pool, area(w, 2) for w in 0..4);
        assert_eq!(areas.name(), None);
        assert_eq!(areas.get().unwrap(), [0, 2, 4, 6]);
        let renamed = par_batch!(pool, name = "renamed", parse(t) for t in ["x"]);
        assert_eq!(renamed.name(), Some("renamed"));
        let error = renamed.get().unwrap_err();
        assert_eq!(error.task_name(), Some("renamed"));
    });
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

/// How many `wait_for_four` calls are inside at once.
static INSIDE: AtomicUsize = AtomicUsize::new(0);

/// Blocks until four calls are inside at once.
#[pool_task(blocking)]
fn wait_for_four(_id: u32) -> usize {
    let now = INSIDE.fetch_add(1, Ordering::SeqCst) + 1;
    eventually("four blocking tasks inside at once", || {
        INSIDE.load(Ordering::SeqCst) >= 4
    });
    now
}

#[test]
fn blocking_tasks_overlap_on_a_one_thread_pool_through_par_batch_and_scope_map() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        // One CPU worker, and no `blocking` option on the batch: the four
        // calls can only all be inside at once (instead of the first one
        // waiting forever) if each hands the worker's slot to a spare.
        INSIDE.store(0, Ordering::SeqCst);
        let entered = pool_scope!(on = pool, |s| {
            par_batch!(s, wait_for_four(i) for i in 0..4).get().unwrap()
        });
        assert_eq!(entered.iter().max(), Some(&4));
        INSIDE.store(0, Ordering::SeqCst);
        let entered = pool.scope(|s| s.map(wait_for_four, 0..4)).unwrap();
        assert_eq!(entered.iter().max(), Some(&4));
    });
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
    assert_eq!(
        pool_scope!(|s| s.apply_async(|| fib(s, 10)).get()).unwrap(),
        55
    );
}

/// A generic task: the `Send` checks hold under its bounds.
#[pool_task]
fn total<T: Copy + Send + Sync + std::iter::Sum<T>>(xs: &[T]) -> T {
    xs.iter().copied().sum()
}

#[pool_task(name = "first items")]
fn first<const N: usize, T>(xs: &[T]) -> Vec<T>
where
    T: Clone + Send + Sync,
{
    xs.iter().take(N).cloned().collect()
}

#[pool_task]
fn must_be_short<T: AsRef<str> + Send>(text: T) -> usize {
    let text = text.as_ref();
    assert!(text.len() < 4, "`{text}` is too long");
    text.len()
}

#[test]
fn generic_tasks_run_in_batches_and_keep_their_name() {
    let data: Vec<u64> = (1..=10).collect();
    let floats = [0.5f64, 1.5];
    pool_scope!(|pool| {
        let sums = par_batch!(pool, total(&data[..i]) for i in [0, 4, 10]);
        assert_eq!(sums.get().unwrap(), [0, 10, 55]);
        assert_eq!(par_batch!(pool, [total(&floats[..])]).get().unwrap(), [2.0]);
        let firsts = par_batch!(pool, first::<2, u64>(&data[i..]) for i in [0, 8]);
        assert_eq!(firsts.get().unwrap(), [vec![1, 2], vec![9, 10]]);
        let as_pointer: fn(&[u64]) -> u64 = total::<u64>;
        assert_eq!(pool.map(as_pointer, [&data[..2]]).unwrap(), [3]);
        let error = par_batch!(pool, must_be_short(w) for w in ["ok", "too long"])
            .get()
            .unwrap_err();
        assert_eq!(error.index(), 1);
        assert_eq!(error.task_name(), Some("must_be_short"));
    });
}

struct Rect {
    width: u32,
    height: u32,
}

impl Rect {
    /// An associated function (no `self`) can be a task too.
    #[pool_task]
    fn area_of(rect: &Rect) -> u32 {
        rect.width * rect.height
    }
}

#[test]
fn an_associated_function_can_be_a_task() {
    let rects = [
        Rect {
            width: 2,
            height: 3,
        },
        Rect {
            width: 4,
            height: 5,
        },
    ];
    let areas = pool_scope!(|pool| par_batch!(pool, Rect::area_of(r) for r in &rects).get());
    assert_eq!(areas.unwrap(), [6, 20]);
}
