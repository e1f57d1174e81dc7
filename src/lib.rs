//! poolscope: run batches of work on a pool of worker threads and wait for
//! them, Python's `ThreadPool` done the Rust way.
//!
//! ```
//! let words = vec!["a".to_string(), "bb".into(), "ccc".into()];
//! let lens = poolscope::scope(|pool| pool.map_async(|w: &String| w.len(), &words).get());
//! assert_eq!(lens.unwrap(), [1, 2, 3]);
//! ```

#![deny(missing_docs, missing_debug_implementations)]

pub use pool_runtime::*;

#[doc(hidden)]
pub mod __private {
    pub use pool_runtime;
}
