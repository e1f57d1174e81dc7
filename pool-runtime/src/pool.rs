//! Pools and how to build them.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use crate::error::BuildError;
use crate::join;
use crate::primitive::Arc;
use crate::registry::{Config, Registry, ThreadHook};
use crate::scope::{run_scope, Scope};
use crate::worker::{self, WorkerThread};

/// The default cap on blocking-lane threads of a pool.
pub const DEFAULT_MAX_BLOCKING_THREADS: usize = 512;

/// How long a blocking-lane thread stays idle before it retires, by default.
pub const DEFAULT_BLOCKING_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A pool of worker threads: a fixed set of CPU workers, one per core by
/// default, and an elastic blocking lane for tasks that wait on I/O.
///
/// Work reaches a pool through a [`Scope`]; open one with
/// [`scope`](Pool::scope). Threads are started when the pool is built and
/// reused by every scope; they exit when the pool is dropped (after the last
/// scope on it ended), and the drop waits for them.
///
/// ```
/// use pool_runtime::Pool;
///
/// let pool = Pool::builder().threads(2).thread_name("resize").build().unwrap();
/// let sizes = [(640, 480), (1920, 1080)];
/// let pixels = pool.scope(|s| s.map(|&(w, h)| w * h, &sizes)).unwrap();
/// assert_eq!(pixels, [307_200, 2_073_600]);
/// ```
pub struct Pool {
    registry: Arc<Registry>,
    owned: bool,
}

impl Pool {
    /// A pool of `threads` CPU workers with default settings.
    ///
    /// ```
    /// let error = pool_runtime::Pool::new(0).unwrap_err();
    /// assert!(error.to_string().contains("at least one thread"));
    /// ```
    pub fn new(threads: usize) -> Result<Pool, BuildError> {
        Pool::builder().threads(threads).build()
    }

    /// Starts building a pool.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// The process-wide default pool: one CPU worker per available core,
    /// started the first time it is used and reused by every later scope on
    /// it (opening a scope on it starts no thread).
    ///
    /// # Panics
    ///
    /// If its threads cannot be started the first time.
    ///
    /// ```
    /// let a = pool_runtime::Pool::global() as *const _;
    /// let b = pool_runtime::Pool::global() as *const _;
    /// assert_eq!(a, b);
    /// ```
    pub fn global() -> &'static Pool {
        static GLOBAL: OnceLock<Pool> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            let mut pool = Pool::builder()
                .thread_name("poolscope-default")
                .build()
                .unwrap_or_else(|error| {
                    panic!("poolscope: could not start the default pool: {error}")
                });
            pool.owned = false;
            pool
        })
    }

    /// Opens a scope on this pool, runs `body` with it, then closes the scope
    /// and waits for every task submitted to it: Python's
    /// `with ThreadPool() as pool:`, except that the scope waits for the
    /// work instead of killing it.
    ///
    /// The scope waits on every path, also when `body` panics (the panic is
    /// then resumed after the wait). A task panic that no handle reported is
    /// re-raised here, once every task finished.
    ///
    /// Called from inside one of this pool's own tasks, the wait at the end
    /// runs the scope's unclaimed tasks instead of sleeping, so nested scopes
    /// never deadlock, even on a one-thread pool.
    ///
    /// ```
    /// let pool = pool_runtime::Pool::new(2).unwrap();
    /// let mut counts = [0usize; 4];
    /// let text = "tasks may borrow from the caller's stack";
    /// pool.scope(|s| {
    ///     for (i, count) in counts.iter_mut().enumerate() {
    ///         let _ = s.apply_async(move || *count = text.len() + i);
    ///     }
    /// });
    /// assert_eq!(counts[3], text.len() + 3);
    /// ```
    pub fn scope<'env, F, R>(&self, body: F) -> R
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
    {
        run_scope(&self.registry, body)
    }

    /// The number of CPU worker threads.
    pub fn threads(&self) -> usize {
        self.registry.threads()
    }

    /// Why the pool is broken, if it is (a blocking-lane thread could not be
    /// started, or its start hook panicked). A broken pool refuses every
    /// submission and fails the tasks it had queued.
    pub fn broken_reason(&self) -> Option<String> {
        self.registry.broken_reason()
    }
}

// A pool keeps no state that a panic could leave half-updated: every lock it
// takes ignores poisoning because its critical sections run no user code.
impl std::panic::UnwindSafe for Pool {}
impl std::panic::RefUnwindSafe for Pool {}

impl Drop for Pool {
    fn drop(&mut self) {
        if self.owned && self.registry.remove_user() {
            self.registry.join_threads();
        }
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("threads", &self.threads())
            .field("broken", &self.broken_reason())
            .finish()
    }
}

/// Opens a scope on the default pool ([`Pool::global`]); see
/// [`Pool::scope`].
///
/// ```
/// let data = vec![3, 1, 4, 1, 5];
/// let doubled = pool_runtime::scope(|s| s.map(|x: &i32| x * 2, &data)).unwrap();
/// assert_eq!(doubled, [6, 2, 8, 2, 10]);
/// ```
pub fn scope<'env, F, R>(body: F) -> R
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
{
    Pool::global().scope(body)
}

/// Runs `a` and `b`, possibly in parallel, and returns both results when
/// both are done: `rayon::join`, with poolscope's waits.
///
/// Both closures may borrow anything the caller can, `&mut` halves of one
/// slice included, since `fork_join` returns only when both have finished.
/// Inside a task it runs on that task's pool; anywhere else, on the default
/// pool ([`Pool::global`]). On a worker, `b` is offered to other workers
/// while the caller runs `a`; if nobody took it, the caller runs it too, so
/// a split costs a few dozen instructions and no allocation. While `b` runs
/// elsewhere, the caller runs `b`'s own sub-splits and nothing unrelated.
///
/// If either closure panics, the other still runs to completion, then the
/// panic resumes (`a`'s if both panicked).
///
/// ```
/// fn sum(values: &[u64]) -> u64 {
///     if values.len() <= 1024 {
///         return values.iter().sum();
///     }
///     let (left, right) = values.split_at(values.len() / 2);
///     let (a, b) = pool_runtime::fork_join(|| sum(left), || sum(right));
///     a + b
/// }
///
/// let values: Vec<u64> = (0..100_000).collect();
/// assert_eq!(sum(&values), 4_999_950_000);
///
/// // `&mut` halves of one slice.
/// let mut data = vec![3, 1, 2, 9, 7, 8];
/// let (left, right) = data.split_at_mut(3);
/// pool_runtime::fork_join(|| left.sort(), || right.sort());
/// assert_eq!(data, [1, 2, 3, 7, 8, 9]);
/// ```
pub fn fork_join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    if let Some(worker) = WorkerThread::current() {
        return join::join_on(worker, a, b);
    }
    match Registry::of_current_thread() {
        // A blocking-lane thread: that pool.
        Some(registry) => join::fork_join_in(&registry, a, b),
        None => join::fork_join_in(&Pool::global().registry, a, b),
    }
}

/// Settings for a new [`Pool`], from [`Pool::builder`].
#[must_use = "a builder does nothing until build() is called"]
pub struct PoolBuilder {
    threads: Option<usize>,
    thread_name: Option<String>,
    stack_size: Option<usize>,
    on_start: Option<ThreadHook>,
    on_exit: Option<ThreadHook>,
    max_blocking_threads: usize,
    blocking_idle_timeout: Duration,
}

impl Default for PoolBuilder {
    fn default() -> Self {
        PoolBuilder {
            threads: None,
            thread_name: None,
            stack_size: None,
            on_start: None,
            on_exit: None,
            max_blocking_threads: DEFAULT_MAX_BLOCKING_THREADS,
            blocking_idle_timeout: DEFAULT_BLOCKING_IDLE_TIMEOUT,
        }
    }
}

impl PoolBuilder {
    /// The number of CPU worker threads (default: available parallelism).
    /// Zero is an error at [`build`](PoolBuilder::build).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// Names threads `{prefix}-{index}` (default prefix: `poolscope`).
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.thread_name = Some(prefix.into());
        self
    }

    /// The stack size of every worker thread, in bytes.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Runs `hook(thread_index)` on each worker thread before it takes any
    /// task (Python's `initializer`). If it panics on a CPU worker,
    /// [`build`](PoolBuilder::build) fails; on a blocking-lane thread started
    /// later, the pool becomes broken.
    ///
    /// ```
    /// use pool_runtime::{BuildError, Pool};
    ///
    /// let error = Pool::builder()
    ///     .threads(2)
    ///     .on_thread_start(|i| if i == 1 { panic!("no database on worker {i}") })
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(error, BuildError::StartHookPanicked { thread: 1, .. }));
    /// ```
    pub fn on_thread_start(mut self, hook: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.on_start = Some(Arc::new(hook));
        self
    }

    /// Runs `hook(thread_index)` on each worker thread as it exits.
    pub fn on_thread_exit(mut self, hook: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.on_exit = Some(Arc::new(hook));
        self
    }

    /// The most threads the blocking lane may run at once (default
    /// [`DEFAULT_MAX_BLOCKING_THREADS`]); further blocking tasks queue.
    pub fn max_blocking_threads(mut self, max: usize) -> Self {
        self.max_blocking_threads = max.max(1);
        self
    }

    /// How long an idle blocking-lane thread waits for work before it exits
    /// (default [`DEFAULT_BLOCKING_IDLE_TIMEOUT`]).
    pub fn blocking_idle_timeout(mut self, timeout: Duration) -> Self {
        self.blocking_idle_timeout = timeout;
        self
    }

    /// Starts the CPU workers, runs their start hooks, and returns the pool.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroThreads`] for `threads(0)`, [`BuildError::Spawn`]
    /// when the operating system refuses a thread (an absurd stack size, for
    /// instance), [`BuildError::StartHookPanicked`] when a start hook panics.
    /// Threads already started are stopped and joined first.
    pub fn build(self) -> Result<Pool, BuildError> {
        let threads = match self.threads {
            Some(threads) => threads,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let registry = Registry::start(
            Config {
                threads,
                thread_name: self.thread_name,
                stack_size: self.stack_size,
                on_start: self.on_start,
                on_exit: self.on_exit,
                max_blocking_threads: self.max_blocking_threads,
                blocking_idle_timeout: self.blocking_idle_timeout,
            },
            worker::main_loop,
        )?;
        Ok(Pool {
            registry,
            owned: true,
        })
    }
}

impl fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("threads", &self.threads)
            .field("thread_name", &self.thread_name)
            .field("stack_size", &self.stack_size)
            .field("max_blocking_threads", &self.max_blocking_threads)
            .field("blocking_idle_timeout", &self.blocking_idle_timeout)
            .finish_non_exhaustive()
    }
}
