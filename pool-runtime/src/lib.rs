//! The runtime behind [poolscope](https://docs.rs/poolscope): pools of worker
//! threads, scopes whose tasks may borrow from the caller's stack, and batch
//! handles to wait for them.
//!
//! ```
//! use pool_runtime::Pool;
//!
//! let pool = Pool::new(4).unwrap();
//! let words = vec!["a".to_string(), "bb".into(), "ccc".into()];
//! let lens = pool.scope(|s| {
//!     let batch = s.map_async(|w: &String| w.len(), &words);
//!     batch.get()
//! });
//! assert_eq!(lens.unwrap(), [1, 2, 3]);
//! ```
//!
//! Most users reach this crate through the `poolscope` facade and its
//! macros; it is usable alone.

#![deny(missing_docs, missing_debug_implementations)]

mod blocking;
mod deque;
mod engine;
mod error;
mod handle;
mod job;
mod join;
mod lineage;
mod options;
mod pool;
mod primitive;
mod registry;
mod scope;
mod scope_data;
mod sleep;
mod slots;
mod stream;
mod trace;
mod unwind;
mod worker;

pub use blocking::blocking;
#[doc(hidden)]
pub use blocking::{__enter_task, TaskGuard};
pub use engine::current_task_cancelled;
pub use error::{
    BuildError, CloseError, JoinError, PanicLocation, SubmitError, TaskError, TaskErrorKind,
    TryGetError,
};
pub use handle::{AsCompleted, Batch, BatchFuture, GetTimeoutError, Results, Task, TaskFuture};
pub use options::{CompletionCallback, NoCallback, OnComplete};
pub use pool::{
    fork_join, scope, Pool, PoolBuilder, DEFAULT_BLOCKING_IDLE_TIMEOUT,
    DEFAULT_MAX_BLOCKING_THREADS,
};
pub use scope::{BatchBuilder, Scope, StarCall};
pub use stream::{Imap, ImapUnordered};
