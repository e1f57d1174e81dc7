//! The macros of poolscope: `#[pool_task]`, `par_batch!` and
//! `pool_scope!`. Use them through the `poolscope` crate, which re-exports
//! them next to the runtime they expand to.
//!
//! ```
//! use poolscope::{par_batch, pool_scope, pool_task};
//!
//! #[pool_task]
//! fn word_count(text: &str) -> usize {
//!     text.split_whitespace().count()
//! }
//!
//! let pages = ["a b c", "d e"];
//! let counts = pool_scope!(|pool| par_batch!(pool, word_count(p) for p in pages).get());
//! assert_eq!(counts.unwrap(), [3, 2]);
//! ```

#![deny(missing_docs, missing_debug_implementations)]

use proc_macro::TokenStream;

mod batch;
mod options;
mod scope;
mod task;

/// Marks a function as a pool task: it stays a plain function, and
/// wherever it runs on a pool its name shows in panic reports and
/// `blocking` keeps it off the CPU workers' slots.
///
/// ```
/// use poolscope::{par_batch, pool_scope, pool_task};
///
/// /// Fetches a page (a sleep stands in for the network).
/// #[pool_task(blocking, name = "fetch")]
/// pub fn fetch(page: u32) -> String {
///     std::thread::sleep(std::time::Duration::from_millis(10));
///     format!("page {page}")
/// }
///
/// assert_eq!(fetch(1), "page 1"); // still a function
/// let as_value: fn(u32) -> String = fetch; // and a value like any fn
/// let pages = pool_scope!(|pool| {
///     let batch = par_batch!(pool, fetch(p) for p in 0..8); // the sleeps overlap
///     let more = pool.map_async(as_value, 8..10); // so do these
///     (batch.get().unwrap(), more.get().unwrap())
/// });
/// assert_eq!(pages.0[7], "page 7");
/// assert_eq!(pages.1, ["page 8", "page 9"]);
/// ```
///
/// # Options
///
/// - `name = "..."`: the name a panic of the task is reported with, when
///   its batch has no name of its own (default: the function's name).
/// - `blocking`: while the function runs on one of a pool's CPU workers,
///   that worker's CPU slot goes to a spare worker (as
///   [`poolscope::blocking`](../poolscope/fn.blocking.html) does), so such
///   tasks overlap even on a one-thread pool and CPU work beside them keeps
///   every core; the rest of the batch is then claimed one task at a time.
/// - `crate = path`: where poolscope is, when it is renamed or re-exported.
///
/// # What it expands to
///
/// The same function, with a guard at the top of its body that lives until
/// the body returns or unwinds, and a check that the argument and result
/// types are `Send`:
///
/// ```text
/// /// Fetches a page (a sleep stands in for the network).
/// pub fn fetch(page: u32) -> String {
///     <u32 as ::poolscope::__private::TaskArgument>::check();
///     <String as ::poolscope::__private::TaskResult>::check();
///     let __guard = ::poolscope::__private::enter_task("fetch", true);
///     std::thread::sleep(std::time::Duration::from_millis(10));
///     format!("page {page}")
/// }
/// ```
///
/// Because the name stays a real function, it goes wherever a function
/// goes: `par_batch!`, [`Scope::map`](../poolscope/struct.Scope.html#method.map)
/// and the other `Scope` methods (`pool.apply_async(|| fetch(1))`,
/// `pool.map_async(fetch, 0..8)`, `pool.starmap_async(area, pairs)`), `fn`
/// pointers, `Iterator::map`, rayon. Off a pool the guard does nothing
/// but note, should the function panic, its name for a report nobody reads.
///
/// This is why `#[pool_task]` uses a guard: the other mechanism the design
/// allows, turning the name into a constant that dereferences to the
/// function and carries its options for `par_batch!` to find, cannot make
/// the name a function, so `.map(task)` and `fn` pointers fail with it.
///
/// # What it refuses
///
/// Compile errors, at the offending tokens: `async fn`, `const fn`,
/// `unsafe fn`, a `self` receiver, `impl Trait` arguments or results (take
/// a type parameter instead), argument or return types that are not `Send`
/// (for a generic function: not `Send` under its bounds), unknown or
/// duplicate options. Generic functions, `where` clauses, lifetimes and
/// associated functions (no `self`) are fine:
/// `fn fib<'s>(pool: &'s Scope<'s, '_>, n: u64) -> u64` can be a task. On
/// error the function is still emitted unchanged, so its callers still
/// type-check.
#[proc_macro_attribute]
pub fn pool_task(args: TokenStream, item: TokenStream) -> TokenStream {
    task::expand(args.into(), item.into()).into()
}

/// Submits a batch of calls to a scope and returns its handle.
///
/// ```
/// use poolscope::{par_batch, pool_scope};
///
/// fn sum(xs: &[u64]) -> u64 {
///     xs.iter().sum()
/// }
///
/// let data: Vec<u64> = (1..=10).collect();
/// let words = ["fork", "join"];
/// pool_scope!(|pool| {
///     // A comprehension: one task per item, `data` borrowed (no `move`).
///     let prefix = par_batch!(pool, sum(&data[..i]) for i in 0..=10);
///     // With a filter: only the items for which it holds are submitted.
///     let evens = par_batch!(pool, sum(&data[..i]) for i in 0..=10 if i % 2 == 0);
///     // A tuple pattern: Python's starmap.
///     let sums = par_batch!(pool, u64::wrapping_add(a, b) for (a, b) in [(1, 2), (3, 4)]);
///     // A method call whose receiver is a place: borrowed, not moved.
///     let got = par_batch!(pool, data.get(i) for i in [0, 99]);
///     // A list of calls of one result type.
///     let list = par_batch!(pool, [sum(&data), sum(&data[5..])]);
///     // A block of unlike calls: a tuple in statement order.
///     let (total, joined) = par_batch!(pool, { sum(&data); words.join("-"); }).get().unwrap();
///
///     assert_eq!(prefix.get().unwrap()[10], 55);
///     assert_eq!(evens.get().unwrap(), [0, 3, 10, 21, 36, 55]);
///     assert_eq!(sums.get().unwrap(), [3, 7]);
///     assert_eq!(got.get().unwrap(), [Some(&1), None]);
///     assert_eq!(list.get().unwrap(), [55, 40]);
///     assert_eq!((total, joined.as_str()), (55, "fork-join"));
/// });
/// ```
///
/// # Forms
///
/// - `par_batch!(pool, CALL for PAT in ITER)` gives a
///   [`Batch`](../poolscope/struct.Batch.html) with one task per item;
/// - `par_batch!(pool, CALL for PAT in ITER if COND)` submits only the items
///   for which `COND` holds (a Python comprehension's filter), evaluated on
///   the submitting thread, per item, before that item's receiver and
///   arguments; task indices count the submitted tasks;
/// - `par_batch!(pool, [CALL, CALL, ...])` gives a `Batch`, one task per call
///   (the calls return one type; their callees may differ);
/// - `par_batch!(pool, { CALL; CALL; ... })` gives a
///   [`TupleBatch`](../poolscope/struct.TupleBatch.html) whose `get()` is a
///   tuple of the results in statement order (at most 12 calls).
///
/// `pool` is a `&Scope`, from [`pool_scope!`] or `Pool::scope`. A CALL is
/// `path(args)` or `receiver.method(args)`.
///
/// # What runs where
///
/// Everything but the call itself runs on the submitting thread, in order,
/// before anything is submitted: for each item, the receiver, then the
/// arguments, left to right. Only the call runs on a worker. A callee that
/// is a place (a function's name, a variable holding a closure) is
/// borrowed, so it must outlive the scope like anything a task borrows;
/// another callee expression (`(|x| x + 1)(x)`) is evaluated once, by value.
/// A receiver that is a place is copied if its type is `Copy` and borrowed
/// otherwise, except that a receiver rooted in a variable of the `for`
/// pattern is moved into its task. Arguments are moved, as in any call.
///
/// # Options
///
/// Before the body, comma separated: `name = EXPR`, `blocking` (or
/// `blocking = EXPR`), `chunk = N`, `fail_fast` (the first panic, or the
/// first `Err` of calls that return a `Result`, cancels the tasks not yet
/// started; the `Err` stays that task's result; in a block only a panic
/// counts, and with `in_flight` the first panic ends the whole stream), `on_complete = |index,
/// outcome| ...` (not for a block), `in_flight = N` (a comprehension only:
/// the macro then gives an ordered streaming iterator that pulls at most `N`
/// items ahead, evaluating their arguments as it pulls them, so an endless
/// `ITER` works, with or without `if COND`), and `crate = path` (which may
/// also come first). A batch has a name only with `name`, and runs on the
/// blocking lane only with `blocking`; a
/// [`#[pool_task]`](macro@pool_task) function brings its name to panic
/// reports of batches without one, and `#[pool_task(blocking)]` hands its
/// CPU worker's slot on wherever it runs.
///
/// # What it expands to
///
/// For `par_batch!(pool, sum(&data[..i]) for i in 0..n if i % 2 == 0)`,
/// roughly (`__private::` left out):
///
/// ```text
/// {
///     let scope: &Scope<'_, '_> = pool;
///     let callee = SharedWithWorkers::shared(&sum); // borrowed, checked `Sync`
///     let builder = scope.batch() /* .name(..) .chunk(..) .blocking(..) */;
///     let items = IntoIterator::into_iter(0..n);
///     let mut calls = Vec::with_capacity(items.size_hint().0);
///     for i in items {
///         let keep: bool = i % 2 == 0;
///         if !keep {
///             continue;
///         }
///         let arg0 = SentToWorker::sent(&data[..i]); // checked `Send`
///         calls.push((arg0,));
///     }
///     // checks the result type is `Send`, then `builder.map_async(..)`
///     SentBack::submit(builder, calls, move |(arg0,)| (callee.get())(arg0.into_inner()))
/// }
/// ```
///
/// With `in_flight = N`, the loop becomes an iterator the stream pulls:
/// `SentBack::imap(builder.in_flight(N), task, items.filter_map(|i| ...))`.
///
/// A list or a block first defines an enum with one variant per call,
/// holding that call's evaluated callee or receiver and arguments; the
/// batch's task is a `match` on it.
///
/// # Panics
///
/// If the scope is closed (the message says so); `chunk = 0` or
/// `in_flight = 0` computed at run time.
#[proc_macro]
pub fn par_batch(input: TokenStream) -> TokenStream {
    batch::expand(input.into()).into()
}

/// Opens a scope on a pool for the closure's body and gives the body's
/// value; every task submitted in the scope has finished when it returns.
///
/// ```
/// use poolscope::{par_batch, pool_scope};
///
/// let words = vec!["a".to_string(), "bb".into(), "ccc".into()];
/// let lens: Vec<usize> = pool_scope!(threads = 4, |pool| {
///     par_batch!(pool, str::len(w) for w in &words).get()
/// })
/// .unwrap();
/// assert_eq!(lens, [1, 2, 3]);
/// ```
///
/// # Forms
///
/// - `pool_scope!(|pool| BODY)`: on the process-wide default pool
///   (`Pool::global()`: one worker per core, started once, reused);
/// - `pool_scope!(threads = N, name = "io", max_blocking_threads = M, |pool| BODY)`:
///   on a pool of its own (any of the options alone works; `name` names its
///   threads, `max_blocking_threads` caps its blocking lane and the spares
///   that stand in for blocked workers), whose threads are joined at the end;
/// - `pool_scope!(on = my_pool, |pool| BODY)`: on an existing `Pool` (or a
///   reference to one), which outlives the scope;
/// - `crate = path` may be added to any of them.
///
/// `pool` is a `&'scope Scope<'scope, 'env>`; nothing submitted to it can
/// outlive the scope (a handle returned from the body is a compile error).
///
/// # Value
///
/// Every form gives BODY's value, `R`. A pool of its own can fail to start
/// (`threads = 0` computed at run time, the system refusing threads): then
/// `pool_scope!` panics with the build error. To handle that error instead,
/// build the pool yourself and use `on`:
///
/// ```
/// use poolscope::{pool_scope, Pool};
///
/// let threads = 0;
/// match Pool::new(threads) {
///     Ok(pool) => pool_scope!(on = pool, |s| println!("{} threads", s.threads())),
///     Err(error) => assert!(error.to_string().contains("at least one thread")),
/// }
/// ```
///
/// # `return` and `?`
///
/// BODY is the body of a closure, as with `std::thread::scope`: `return`
/// leaves the body (its value becomes the scope's value), and `?` returns
/// the error from the body, so the body's type is then a `Result`; neither
/// leaves the function around the macro. Either way, the scope still waits
/// for every task before it gives the value.
///
/// ```
/// use poolscope::pool_scope;
///
/// fn parse_all(texts: &[&str]) -> Result<Vec<u32>, std::num::ParseIntError> {
///     let parsed = pool_scope!(|pool| {
///         let mut numbers = Vec::new();
///         for text in texts {
///             numbers.push(text.parse::<u32>()?);
///         }
///         Ok(numbers)
///     })?;
///     Ok(parsed)
/// }
/// assert!(parse_all(&["1", "x"]).is_err());
/// ```
///
/// # What it expands to
///
/// ```text
/// pool_scope!(|pool| BODY)              => __private::scope(|pool| BODY)
/// pool_scope!(on = p, |pool| BODY)      => __private::scope_on(&(p), |pool| BODY)
/// pool_scope!(threads = 4, |pool| BODY) => __private::scope_on_new(Pool::builder().threads(4), |pool| BODY)
/// pool_scope!(threads = 2, max_blocking_threads = 8, |pool| BODY)
///     => __private::scope_on_new(Pool::builder().threads(2).max_blocking_threads(8), |pool| BODY)
/// ```
///
/// `on` cannot be combined with `threads`, `name` or `max_blocking_threads`
/// (those build a pool; `on` uses one). A body whose value is a handle of
/// its own scope, `pool_scope!(|pool| par_batch!(pool, ...))`, is a compile
/// error saying so: the handle cannot outlive the scope.
#[proc_macro]
pub fn pool_scope(input: TokenStream) -> TokenStream {
    scope::expand(input.into()).into()
}
