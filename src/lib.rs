//! poolscope: run batches of work on a pool of worker threads and wait for
//! them, Python's `ThreadPool` done the Rust way.
//!
//! ```
//! let words = vec!["a".to_string(), "bb".into(), "ccc".into()];
//! let lens = poolscope::scope(|pool| pool.map_async(|w: &String| w.len(), &words).get());
//! assert_eq!(lens.unwrap(), [1, 2, 3]);
//! ```
//!
//! The same with the macros: [`pool_scope!`] opens the scope,
//! [`par_batch!`] submits the calls, [`#[pool_task]`](pool_task) marks a
//! function (it stays a plain function) whose name shows in panic reports
//! and which, with `blocking`, hands its CPU worker's slot to a spare
//! while it runs.
//!
//! ```
//! use poolscope::{par_batch, pool_scope};
//!
//! let words = vec!["a".to_string(), "bb".into(), "ccc".into()];
//! let lens = pool_scope!(|pool| par_batch!(pool, str::len(w) for w in &words).get());
//! assert_eq!(lens.unwrap(), [1, 2, 3]);
//! ```
//!
//! # Cargo features
//!
//! - `macros` (on by default): the three macros. Turn it off
//!   (`poolscope = { version = "0.1", default-features = false }`) to use
//!   the runtime alone, as in the first example, without building `syn`,
//!   `quote` and `proc-macro2`.

#![deny(missing_docs, missing_debug_implementations)]
// Without the macros, the links to them in these docs have nothing to name.
#![cfg_attr(not(feature = "macros"), allow(rustdoc::broken_intra_doc_links))]

mod block;
mod checks;
mod sent;

pub use block::{TupleBatch, TupleFuture, TupleResults, TupleTimeoutError};
// Not API: re-exported here so that compiler notes about the macros' checks
// name them as `SentToWorker`, not `poolscope::__private::SentToWorker`.
#[doc(hidden)]
pub use checks::{SentBack, SentToWorker, SharedWithWorkers, TaskArgument, TaskResult};
#[cfg(feature = "macros")]
pub use pool_macros::{par_batch, pool_scope, pool_task};
pub use pool_runtime::*;

#[doc(hidden)]
pub mod __private;

/// README's code blocks, compiled and run as doc tests so the README cannot
/// drift from the library.
#[cfg(all(doctest, feature = "macros"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
