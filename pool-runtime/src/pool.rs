//! Pools and how to build them.

use std::fmt;
use std::ptr::NonNull;
use std::sync::OnceLock;
use std::time::Duration;

use crate::error::{BuildError, CloseError, JoinError, SubmitError, TaskError};
use crate::handle::{Batch, Task};
use crate::join;
use crate::lineage;
use crate::options::NoCallback;
use crate::primitive::Arc;
use crate::registry::{Config, Registry, ThreadHook};
use crate::scope::{run_scope, BatchBuilder, Scope, StarCall, Target};
use crate::scope_data::ScopeData;
use crate::stream::{Imap, ImapUnordered};
use crate::worker::{self, WorkerThread};

/// The default cap on blocking-lane threads of a pool (and on the spares
/// that stand in for workers inside [`blocking`](crate::blocking)).
///
/// Chosen from the harness (`cargo bench --bench compare -- --only 17`,
/// BENCHMARKS.md): at 128, hashing 20 000 page-cached files on the lane is
/// as fast as on the CPU lane (at 512 it was 13% slower, from the threads
/// it starts), and 256 sleeps of 50 ms take 107 ms (65 ms at 512). Python's
/// `ThreadPoolExecutor` uses `min(32, cpu + 4)`, tokio 512. Raise it with
/// [`PoolBuilder::max_blocking_threads`] for work that mostly waits.
///
/// ```
/// assert_eq!(pool_runtime::DEFAULT_MAX_BLOCKING_THREADS, 128);
/// ```
pub const DEFAULT_MAX_BLOCKING_THREADS: usize = 128;

/// How long a blocking-lane thread stays idle before it retires, by default.
///
/// ```
/// use pool_runtime::{Pool, DEFAULT_BLOCKING_IDLE_TIMEOUT};
///
/// // Bursty I/O: keep idle blocking threads around six times longer.
/// let pool = Pool::builder().blocking_idle_timeout(DEFAULT_BLOCKING_IDLE_TIMEOUT * 6).build().unwrap();
/// ```
pub const DEFAULT_BLOCKING_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A pool of worker threads: a fixed set of CPU workers, one per core by
/// default, and an elastic blocking lane for tasks that wait on I/O.
///
/// Work reaches a pool in two ways:
///
/// - through a [`Scope`], opened with [`scope`](Pool::scope): tasks may
///   borrow from the caller's stack, and the scope waits for them;
/// - as the pool's **owned work**, submitted on the pool itself
///   ([`apply_async`](Pool::apply_async), [`map_async`](Pool::map_async),
///   [`imap`](Pool::imap), ...): Python's `pool = ThreadPool(4)` without a
///   `with` block. Tasks and inputs are `'static`, and the handles
///   (`Batch<'static, T>`, `Task<'static, T>`) can be kept, returned from
///   functions, sent to other threads and awaited. [`close`](Pool::close),
///   [`join`](Pool::join) and [`terminate`](Pool::terminate) concern this
///   owned work only, never the scopes opened on the pool.
///
/// Threads are started when the pool is built and reused by all of its
/// work. Dropping the pool closes its owned work and waits for it (nothing
/// submitted is lost), then stops the threads (after the last scope on the
/// pool ended) and waits for them.
///
/// ```
/// use pool_runtime::Pool;
///
/// let pool = Pool::builder().threads(2).thread_name("resize").build().unwrap();
/// let sizes = [(640, 480), (1920, 1080)];
/// let pixels = pool.scope(|s| s.map(|&(w, h)| w * h, &sizes)).unwrap();
/// assert_eq!(pixels, [307_200, 2_073_600]);
///
/// // Owned work: the handle outlives the call that submitted it.
/// fn start(pool: &Pool) -> pool_runtime::Batch<'static, u64> {
///     pool.map_async(|x: u64| x * x, 0..4)
/// }
/// let squares = start(&pool);
/// pool.close();
/// pool.join();
/// assert_eq!(squares.get().unwrap(), [0, 1, 4, 9]);
/// ```
pub struct Pool {
    registry: Arc<Registry>,
    /// The pool's owned work, as a scope that never ends before the pool.
    owned: Arc<ScopeData>,
    /// The process-wide default pool, which refuses `close` and
    /// `terminate` and is never dropped.
    is_default: bool,
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
    ///
    /// ```
    /// let pool = pool_runtime::Pool::builder().threads(2).thread_name("thumbnails").build().unwrap();
    /// assert_eq!(pool.threads(), 2);
    /// ```
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
            pool.is_default = true;
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

    /// The number of CPU threads: its workers, plus the waiting caller
    /// with [`caller_helps`](PoolBuilder::caller_helps).
    ///
    /// ```
    /// let pool = pool_runtime::Pool::new(3).unwrap();
    /// assert_eq!(pool.threads(), 3);
    /// // The default pool has one per core.
    /// let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    /// assert_eq!(pool_runtime::Pool::global().threads(), cores);
    /// ```
    pub fn threads(&self) -> usize {
        self.registry.parallelism()
    }

    /// Why the pool is broken, if it is (a blocking-lane thread could not be
    /// started, or its start hook panicked). A broken pool refuses every
    /// submission and fails the tasks it had queued.
    ///
    /// ```
    /// use pool_runtime::Pool;
    ///
    /// // The start hook fails on every thread after the first CPU worker, so the
    /// // first blocking-lane thread breaks the pool.
    /// let pool = Pool::builder()
    ///     .threads(1)
    ///     .on_thread_start(|i| assert!(i == 0, "no database connection for thread {i}"))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(pool.broken_reason(), None);
    /// let downloads = pool.batch().blocking(true).map_async(|page: u32| page, 0..3);
    /// assert!(downloads.get().is_err());
    /// assert!(pool.broken_reason().unwrap().contains("no database connection"));
    /// ```
    pub fn broken_reason(&self) -> Option<String> {
        self.registry.broken_reason()
    }
}

/// Owned work: Python's `ThreadPool` methods, on the pool itself.
impl Pool {
    /// Starts a batch of owned work with options (name, blocking lane,
    /// chunk size, deadline, callback); see [`BatchBuilder`].
    ///
    /// ```
    /// let pool = pool_runtime::Pool::new(2).unwrap();
    /// let batch = pool.batch().name("square").map_async(|x: u64| x * x, 0..8);
    /// assert_eq!(batch.name(), Some("square"));
    /// assert_eq!(batch.get().unwrap()[7], 49);
    /// ```
    pub fn batch(&self) -> BatchBuilder<'static, 'static> {
        BatchBuilder::new(Target::owned(self.owned.clone(), self.threads()))
    }

    /// Submits one task of owned work (Python's `apply_async`). The handle
    /// can be kept, returned, sent to another thread and awaited.
    ///
    /// ```
    /// use pool_runtime::{Pool, Task};
    ///
    /// fn checksum(pool: &Pool, data: Vec<u8>) -> Task<'static, u32> {
    ///     pool.apply_async(move || data.iter().map(|&b| u32::from(b)).sum())
    /// }
    ///
    /// let pool = Pool::new(2).unwrap();
    /// let task = checksum(&pool, vec![1, 2, 3]);
    /// let total = std::thread::spawn(move || task.get().unwrap()).join().unwrap();
    /// assert_eq!(total, 6);
    /// ```
    ///
    /// Owned work outlives the caller, so it cannot borrow from its stack
    /// (open a [`scope`](Pool::scope) for that):
    ///
    /// ```compile_fail
    /// let pool = pool_runtime::Pool::new(1).unwrap();
    /// let local = vec![1, 2, 3];
    /// let task = pool.apply_async(|| local.len());
    /// ```
    ///
    /// # Panics
    ///
    /// If the pool's owned work is closed or terminated, or the pool is
    /// broken; see [`try_apply_async`](Pool::try_apply_async).
    #[track_caller]
    pub fn apply_async<F, T>(&self, task: F) -> Task<'static, T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.batch().apply_async(task)
    }

    /// Submits one task of owned work, or says why it cannot.
    ///
    /// ```
    /// use pool_runtime::{Pool, SubmitError};
    ///
    /// let pool = Pool::new(1).unwrap();
    /// pool.close();
    /// assert_eq!(pool.try_apply_async(|| 1).unwrap_err(), SubmitError::Closed);
    /// ```
    pub fn try_apply_async<F, T>(&self, task: F) -> Result<Task<'static, T>, SubmitError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.batch().try_apply_async(task)
    }

    /// Submits one task of owned work per item (Python's `map_async`).
    ///
    /// ```
    /// let pool = pool_runtime::Pool::new(2).unwrap();
    /// let urls = vec!["a.example/x".to_string(), "b.example/y".to_string()];
    /// let hosts = pool.map_async(|url: String| url.split('/').next().unwrap().to_string(), urls);
    /// assert_eq!(hosts.get().unwrap(), ["a.example", "b.example"]);
    /// ```
    ///
    /// # Panics
    ///
    /// As [`apply_async`](Pool::apply_async); see
    /// [`try_map_async`](Pool::try_map_async).
    #[track_caller]
    pub fn map_async<F, I, T>(&self, task: F, items: I) -> Batch<'static, T>
    where
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        I: IntoIterator,
        I::Item: Send + 'static,
        T: Send + 'static,
    {
        self.batch().map_async(task, items)
    }

    /// Submits one task of owned work per item, or says why it cannot.
    ///
    /// ```
    /// use pool_runtime::{Pool, SubmitError};
    ///
    /// let pool = Pool::new(1).unwrap();
    /// pool.close();
    /// let refused = pool.try_map_async(|x: u32| x * 2, 0..4).unwrap_err();
    /// assert_eq!(refused, SubmitError::Closed);
    /// ```
    pub fn try_map_async<F, I, T>(
        &self,
        task: F,
        items: I,
    ) -> Result<Batch<'static, T>, SubmitError>
    where
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        I: IntoIterator,
        I::Item: Send + 'static,
        T: Send + 'static,
    {
        self.batch().try_map_async(task, items)
    }

    /// Submits one task of owned work per tuple of arguments (Python's
    /// `starmap_async`).
    ///
    /// ```
    /// let pool = pool_runtime::Pool::new(2).unwrap();
    /// let powers = pool.starmap_async(u64::pow, [(2, 10), (3, 4)]);
    /// assert_eq!(powers.get().unwrap(), [1024, 81]);
    /// ```
    #[track_caller]
    pub fn starmap_async<F, I, T>(&self, task: F, items: I) -> Batch<'static, T>
    where
        F: StarCall<I::Item, Output = T> + Send + Sync + 'static,
        I: IntoIterator,
        I::Item: Send + 'static,
        T: Send + 'static,
    {
        self.batch().starmap_async(task, items)
    }

    /// Streams `task(item)` in input order with bounded look-ahead
    /// (Python's `imap`), as owned work; see [`BatchBuilder::imap`].
    ///
    /// ```
    /// let pool = pool_runtime::Pool::new(2).unwrap();
    /// let mut cubes = pool.imap(|x: u64| x * x * x, 1..);
    /// assert_eq!(cubes.next().unwrap().unwrap(), 1);
    /// assert_eq!(cubes.next().unwrap().unwrap(), 8);
    /// ```
    pub fn imap<F, I, T>(
        &self,
        task: F,
        items: I,
    ) -> Imap<'static, 'static, I::IntoIter, F, T, NoCallback>
    where
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        I: IntoIterator,
        I::Item: Send + 'static,
        T: Send + 'static,
    {
        self.batch().imap(task, items)
    }

    /// Streams `(index, task(item))` in completion order (Python's
    /// `imap_unordered`), as owned work; see
    /// [`BatchBuilder::imap_unordered`].
    ///
    /// ```
    /// let pool = pool_runtime::Pool::new(2).unwrap();
    /// let mut sizes: Vec<(usize, usize)> = pool
    ///     .imap_unordered(|name: &'static str| name.len(), ["a.txt", "bb.txt"])
    ///     .map(|(index, size)| (index, size.unwrap()))
    ///     .collect();
    /// sizes.sort();
    /// assert_eq!(sizes, [(0, 5), (1, 6)]);
    /// ```
    pub fn imap_unordered<F, I, T>(
        &self,
        task: F,
        items: I,
    ) -> ImapUnordered<'static, 'static, I::IntoIter, F, T, NoCallback>
    where
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        I: IntoIterator,
        I::Item: Send + 'static,
        T: Send + 'static,
    {
        self.batch().imap_unordered(task, items)
    }

    /// Runs one task of owned work and waits for it (Python's `apply`).
    ///
    /// ```
    /// let pool = pool_runtime::Pool::new(1).unwrap();
    /// let answer = pool.apply(|| 6 * 7).unwrap();
    /// assert_eq!(answer, 42);
    /// ```
    #[track_caller]
    pub fn apply<F, T>(&self, task: F) -> Result<T, TaskError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.apply_async(task).get()
    }

    /// Runs one task of owned work per item and waits for the results, in
    /// order (Python's `map`).
    ///
    /// ```
    /// let pool = pool_runtime::Pool::new(2).unwrap();
    /// let lens = pool.map(|w: &str| w.len(), ["a", "bb", "ccc"]).unwrap();
    /// assert_eq!(lens, [1, 2, 3]);
    /// ```
    #[track_caller]
    pub fn map<F, I, T>(&self, task: F, items: I) -> Result<Vec<T>, TaskError>
    where
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        I: IntoIterator,
        I::Item: Send + 'static,
        T: Send + 'static,
    {
        self.map_async(task, items).get()
    }

    /// Runs one task of owned work per tuple of arguments and waits
    /// (Python's `starmap`).
    ///
    /// ```
    /// fn area(width: u32, height: u32) -> u32 {
    ///     width * height
    /// }
    ///
    /// let pool = pool_runtime::Pool::new(2).unwrap();
    /// assert_eq!(pool.starmap(area, [(2, 3), (4, 5)]).unwrap(), [6, 20]);
    /// ```
    #[track_caller]
    pub fn starmap<F, I, T>(&self, task: F, items: I) -> Result<Vec<T>, TaskError>
    where
        F: StarCall<I::Item, Output = T> + Send + Sync + 'static,
        I: IntoIterator,
        I::Item: Send + 'static,
        T: Send + 'static,
    {
        self.starmap_async(task, items).get()
    }

    /// Refuses every later submission of owned work; what was submitted
    /// still runs. Idempotent. Scopes opened on the pool are not affected:
    /// they keep accepting work until they end.
    ///
    /// ```
    /// let pool = pool_runtime::Pool::new(2).unwrap();
    /// let queued = pool.map_async(|x: u32| x + 1, 0..4);
    /// pool.close();
    /// // What was submitted still runs; new work is refused.
    /// assert_eq!(queued.get().unwrap(), [1, 2, 3, 4]);
    /// assert!(pool.try_apply_async(|| 0).is_err());
    /// ```
    ///
    /// # Panics
    ///
    /// On the default pool ([`Pool::global`]), which every part of the
    /// program shares; see [`try_close`](Pool::try_close).
    #[track_caller]
    pub fn close(&self) {
        if let Err(error) = self.try_close() {
            panic!("{error}");
        }
    }

    /// [`close`](Pool::close), returning the default pool's refusal as an
    /// error instead of panicking.
    ///
    /// ```
    /// use pool_runtime::{CloseError, Pool};
    ///
    /// assert_eq!(Pool::global().try_close(), Err(CloseError::DefaultPool));
    /// let pool = Pool::new(1).unwrap();
    /// assert_eq!(pool.try_close(), Ok(()));
    /// assert!(pool.is_closed());
    /// ```
    pub fn try_close(&self) -> Result<(), CloseError> {
        if self.is_default {
            return Err(CloseError::DefaultPool);
        }
        self.owned.close();
        Ok(())
    }

    /// Whether [`close`](Pool::close) or [`terminate`](Pool::terminate) was
    /// called.
    ///
    /// ```
    /// let pool = pool_runtime::Pool::new(1).unwrap();
    /// assert!(!pool.is_closed());
    /// pool.close();
    /// assert!(pool.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.owned.is_closed()
    }

    /// Waits for every task of owned work ever submitted, whether or not
    /// its handle was kept (Python's `pool.join()` after `pool.close()`).
    /// Then re-raises, once, the task panics whose handles were dropped
    /// without reporting them; a handle still held keeps its failure for
    /// its holder (`get()` reports it).
    ///
    /// From one of the pool's own workers (inside a task of a scope on this
    /// pool) the wait runs the owned work's unclaimed tasks instead of
    /// sleeping.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let pool = pool_runtime::Pool::new(2).unwrap();
    /// let done = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..10 {
    ///     let done = done.clone();
    ///     let _ = pool.apply_async(move || done.fetch_add(1, Ordering::SeqCst));
    /// }
    /// pool.close();
    /// pool.join();
    /// assert_eq!(done.load(Ordering::SeqCst), 10);
    /// ```
    ///
    /// # Panics
    ///
    /// If the owned work is still open (call [`close`](Pool::close)
    /// first), on the default pool, or when called from inside one of the
    /// owned tasks (it would wait for itself); [`try_join`](Pool::try_join)
    /// returns these as errors. And, after waiting, with the unreported
    /// panics above.
    #[track_caller]
    pub fn join(&self) {
        if let Err(error) = self.try_join() {
            panic!("{error}");
        }
    }

    /// [`join`](Pool::join), returning misuse as an error instead of
    /// panicking. Unreported task panics are still re-raised, as by `join`:
    /// they are failures of the work, not of the call.
    ///
    /// ```
    /// use pool_runtime::{JoinError, Pool};
    ///
    /// let pool = Pool::new(1).unwrap();
    /// assert_eq!(pool.try_join(), Err(JoinError::StillOpen));
    /// pool.close();
    /// assert_eq!(pool.try_join(), Ok(()));
    /// assert_eq!(Pool::global().try_join(), Err(JoinError::DefaultPool));
    /// ```
    #[track_caller]
    pub fn try_join(&self) -> Result<(), JoinError> {
        if self.is_default {
            return Err(JoinError::DefaultPool);
        }
        if !self.owned.is_closed() {
            return Err(JoinError::StillOpen);
        }
        if lineage::in_task_of(NonNull::from(self.owned.node())) {
            return Err(JoinError::FromOwnTask);
        }
        self.owned.wait_all();
        if let Some(message) = self.owned.settle_released() {
            panic!("{message}");
        }
        Ok(())
    }

    /// Closes the owned work and keeps every queued owned task from
    /// starting (their handles report
    /// [`TaskErrorKind::Cancelled`](crate::TaskErrorKind::Cancelled));
    /// running tasks finish. Scopes opened on the pool are not affected.
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// let pool = pool_runtime::Pool::new(1).unwrap();
    /// let (started, has_started) = mpsc::channel();
    /// let (release, wait) = mpsc::channel::<()>();
    /// let running = pool.apply_async(move || {
    ///     started.send(()).unwrap();
    ///     wait.recv().unwrap();
    ///     "finished"
    /// });
    /// has_started.recv().unwrap();
    /// let queued = pool.map_async(|x: u32| x, 0..3); // behind the running task
    /// pool.terminate();
    /// release.send(()).unwrap();
    /// assert_eq!(running.get().unwrap(), "finished");
    /// assert!(queued.get().unwrap_err().is_cancelled());
    /// ```
    ///
    /// # Panics
    ///
    /// On the default pool; see [`try_terminate`](Pool::try_terminate).
    #[track_caller]
    pub fn terminate(&self) {
        if let Err(error) = self.try_terminate() {
            panic!("{error}");
        }
    }

    /// [`terminate`](Pool::terminate), returning the default pool's refusal
    /// as an error instead of panicking.
    ///
    /// ```
    /// use pool_runtime::{CloseError, Pool};
    ///
    /// assert_eq!(Pool::global().try_terminate(), Err(CloseError::DefaultPool));
    /// assert_eq!(Pool::new(1).unwrap().try_terminate(), Ok(()));
    /// ```
    pub fn try_terminate(&self) -> Result<(), CloseError> {
        if self.is_default {
            return Err(CloseError::DefaultPool);
        }
        self.owned.terminate();
        Ok(())
    }
}

// A pool keeps no state that a panic could leave half-updated: every lock it
// takes ignores poisoning because its critical sections run no user code.
impl std::panic::UnwindSafe for Pool {}
impl std::panic::RefUnwindSafe for Pool {}

impl Drop for Pool {
    /// Closes the owned work and waits for it, then stops the threads once
    /// no scope is open on the pool and waits for them. A task panic of the
    /// owned work that no handle reported is re-raised here (written to
    /// standard error instead if the thread is already panicking).
    ///
    /// Dropped inside one of its own owned tasks (the last `Arc<Pool>` was
    /// moved into a task), the pool cannot wait, since it would wait for
    /// itself: it closes, its remaining tasks still run, and the last of
    /// them lets the threads go; a panic nobody reported is then written to
    /// standard error.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let written = Arc::new(AtomicUsize::new(0));
    /// {
    ///     let pool = pool_runtime::Pool::new(2).unwrap();
    ///     let counter = written.clone();
    ///     let _ = pool.map_async(move |_: u32| counter.fetch_add(1, Ordering::SeqCst), 0..10);
    ///     // The handle is dropped, and then the pool: the drop waits for the work.
    /// }
    /// assert_eq!(written.load(Ordering::SeqCst), 10);
    /// ```
    fn drop(&mut self) {
        if self.is_default {
            return;
        }
        self.owned.close();
        if lineage::in_task_of(NonNull::from(self.owned.node())) {
            if self.owned.orphan() {
                self.owned.settle_orphan();
            }
            return;
        }
        self.owned.wait_all();
        let unreported = self.owned.settle_released();
        self.owned.detach_units();
        if self.registry.remove_user() {
            self.registry.join_threads();
        }
        if let Some(message) = unreported {
            if std::thread::panicking() {
                eprintln!("{message}");
            } else {
                panic!("{message}");
            }
        }
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("threads", &self.threads())
            .field("default", &self.is_default)
            .field("closed", &self.is_closed())
            .field("pending_owned", &self.owned.pending())
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
///
/// ```
/// use std::time::Duration;
///
/// let pool = pool_runtime::Pool::builder()
///     .threads(2)
///     .thread_name("encoder")
///     .max_blocking_threads(16)
///     .blocking_idle_timeout(Duration::from_secs(1))
///     .build()
///     .unwrap();
/// assert_eq!(pool.threads(), 2);
/// ```
#[must_use = "a builder does nothing until build() is called"]
pub struct PoolBuilder {
    threads: Option<usize>,
    thread_name: Option<String>,
    stack_size: Option<usize>,
    on_start: Option<ThreadHook>,
    on_exit: Option<ThreadHook>,
    max_blocking_threads: usize,
    blocking_idle_timeout: Duration,
    caller_helps: bool,
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
            caller_helps: false,
        }
    }
}

impl PoolBuilder {
    /// The number of CPU worker threads (default: available parallelism).
    /// Zero is an error at [`build`](PoolBuilder::build).
    ///
    /// ```
    /// let pool = pool_runtime::Pool::builder().threads(4).build().unwrap();
    /// assert_eq!(pool.threads(), 4);
    /// ```
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// Names threads `{prefix}-{index}` (default prefix: `poolscope`).
    ///
    /// ```
    /// let pool = pool_runtime::Pool::builder().threads(1).thread_name("resize").build().unwrap();
    /// let name = pool.apply(|| std::thread::current().name().map(str::to_string)).unwrap();
    /// assert_eq!(name.as_deref(), Some("resize-0"));
    /// ```
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.thread_name = Some(prefix.into());
        self
    }

    /// The stack size of every worker thread, in bytes.
    ///
    /// ```
    /// // Deeply recursive tasks (a parser, a tree walk) want a bigger stack.
    /// let pool = pool_runtime::Pool::builder().stack_size(16 << 20).build().unwrap();
    /// fn depth(n: u32) -> u32 {
    ///     if n == 0 { 0 } else { 1 + depth(n - 1) }
    /// }
    /// assert_eq!(pool.apply(|| depth(10_000)).unwrap(), 10_000);
    /// ```
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
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let exited = Arc::new(AtomicUsize::new(0));
    /// let counter = exited.clone();
    /// let pool = pool_runtime::Pool::builder()
    ///     .threads(2)
    ///     .on_thread_exit(move |_index| {
    ///         counter.fetch_add(1, Ordering::SeqCst);
    ///     })
    ///     .build()
    ///     .unwrap();
    /// drop(pool); // stops the threads and waits for them
    /// assert_eq!(exited.load(Ordering::SeqCst), 2);
    /// ```
    pub fn on_thread_exit(mut self, hook: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.on_exit = Some(Arc::new(hook));
        self
    }

    /// The most threads the blocking lane may run at once (default
    /// [`DEFAULT_MAX_BLOCKING_THREADS`]); further blocking tasks queue.
    ///
    /// ```
    /// // At most four downloads at once, however many are queued.
    /// let pool = pool_runtime::Pool::builder().threads(1).max_blocking_threads(4).build().unwrap();
    /// let pages = pool.batch().blocking(true).map_async(|page: u32| page * 10, 0..8);
    /// assert_eq!(pages.get().unwrap()[7], 70);
    /// ```
    pub fn max_blocking_threads(mut self, max: usize) -> Self {
        self.max_blocking_threads = max.max(1);
        self
    }

    /// How long an idle blocking-lane thread waits for work before it exits
    /// (default [`DEFAULT_BLOCKING_IDLE_TIMEOUT`]).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// // Let idle I/O threads go after half a second instead of ten.
    /// let pool = pool_runtime::Pool::builder()
    ///     .blocking_idle_timeout(Duration::from_millis(500))
    ///     .build()
    ///     .unwrap();
    /// ```
    pub fn blocking_idle_timeout(mut self, timeout: Duration) -> Self {
        self.blocking_idle_timeout = timeout;
        self
    }

    /// Lets a thread outside the pool that waits on a batch (`wait`, `get`,
    /// reading its results) run that batch's unclaimed tasks meanwhile, as
    /// the main thread of a game engine does, and starts one CPU worker
    /// fewer, so that at most `threads` tasks still run at once (a pool of
    /// one thread keeps its worker). Off by default: then a wait from
    /// outside runs nothing and only the pool's workers run tasks.
    ///
    /// For a loop that submits a small batch and waits for it, again and
    /// again (a frame loop), this saves waking a worker for the caller's
    /// share and keeps the caller from competing with the workers for the
    /// CPU while it waits. Work submitted and not waited for runs on one
    /// worker fewer.
    ///
    /// ```
    /// let pool = pool_runtime::Pool::builder().threads(2).caller_helps(true).build().unwrap();
    /// assert_eq!(pool.threads(), 2);
    /// for frame in 0..100u64 {
    ///     let parts = pool.scope(|s| s.map(|i: u64| i * frame, 0..8)).unwrap();
    ///     assert_eq!(parts[7], 7 * frame);
    /// }
    /// ```
    pub fn caller_helps(mut self, helps: bool) -> Self {
        self.caller_helps = helps;
        self
    }

    /// Starts the CPU workers, runs their start hooks, and returns the pool.
    ///
    /// ```
    /// use pool_runtime::{BuildError, Pool};
    ///
    /// let pool = Pool::builder().threads(2).build().unwrap();
    /// assert_eq!(pool.threads(), 2);
    /// assert!(matches!(Pool::builder().threads(0).build(), Err(BuildError::ZeroThreads)));
    /// ```
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
        // A waiting caller counts as one of the threads (see `caller_helps`).
        let workers = if self.caller_helps && threads > 1 {
            threads - 1
        } else {
            threads
        };
        let registry = Registry::start(
            Config {
                threads: workers,
                parallelism: threads,
                caller_helps: self.caller_helps,
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
            owned: ScopeData::new_root(registry.clone()),
            registry,
            is_default: false,
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
            .field("caller_helps", &self.caller_helps)
            .finish_non_exhaustive()
    }
}
