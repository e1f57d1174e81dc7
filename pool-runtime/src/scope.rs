//! Scopes: where tasks are submitted, and what waits for them.
//!
//! The state a scope shares with its work is in [`crate::scope_data`]; this
//! module is the user's side: [`Scope`], [`BatchBuilder`], and
//! [`run_scope`], which opens a scope and waits for it on every path.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::engine::{self, BatchInner};
use crate::error::{JoinError, SubmitError, TaskError, TaskErrorKind};
use crate::handle::{Batch, Task};
use crate::join;
use crate::lineage;
use crate::options::{CompletionCallback, NoCallback, OnComplete, Options};
use crate::primitive::{instant_from_std, Arc};
use crate::registry::Registry;
use crate::scope_data::ScopeData;
use crate::slots::Inputs;
use crate::unwind::AbortOnUnwind;
use crate::worker::WorkerThread;

/// The submitted handle, or a panic with why the submission was refused,
/// reported at the user's call.
#[track_caller]
fn accepted<T>(submitted: Result<T, SubmitError>) -> T {
    match submitted {
        Ok(handle) => handle,
        Err(error) => panic!("{error}"),
    }
}

/// Opens a scope on `registry`, runs `body`, then closes the scope and waits
/// for every task, on every path.
pub(crate) fn run_scope<'env, F, R>(registry: &Arc<Registry>, body: F) -> R
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
{
    registry.add_user();
    let scope = Scope {
        data: ScopeData::new(registry.clone()),
        threads: registry.parallelism(),
        scope: PhantomData,
        env: PhantomData,
    };
    let result = {
        // The body's submissions descend from the scope (see
        // `crate::lineage`).
        // SAFETY: `scope.data` is alive for the whole body.
        let _context = unsafe { lineage::enter(ScopeData::header(&scope.data)) };
        catch_unwind(AssertUnwindSafe(|| body(&scope)))
    };
    // Nothing below may unwind before every task finished: a task could
    // otherwise still be using data borrowed from the caller's stack.
    let guard = AbortOnUnwind("waiting for the tasks of a poolscope scope");
    // No close here: the scope's own running tasks may still submit (a task
    // that spawns its children and returns); nobody else can reach the
    // scope any more. It ends when its last task finished.
    scope.data.wait_all();
    let unreported = scope.data.settle();
    guard.disarm();

    if registry.remove_user() {
        registry.join_threads();
    }
    match result {
        Err(payload) => resume_unwind(payload),
        Ok(value) => {
            if let Some(message) = unreported {
                panic!("{message}");
            }
            value
        }
    }
}

/// A scope of tasks on a pool: tasks submitted here may borrow anything that
/// outlives the scope, and the scope does not end before every one of them
/// finished.
///
/// Opened with [`Pool::scope`](crate::Pool::scope) or [`scope`](crate::scope)
/// (the default pool). The two lifetimes work as in `std::thread::Scope`:
/// `'env` is what tasks may borrow, `'scope` the scope itself.
///
/// `Scope` is `Sync`, so a task may take the scope and submit batches of its
/// own. Write such helpers with `&'s Scope<'s, '_>` (the same lifetime twice)
/// so that the scope can be moved into the tasks they submit:
///
/// ```
/// use pool_runtime::Scope;
///
/// fn fib<'s>(pool: &'s Scope<'s, '_>, n: u64) -> u64 {
///     if n < 2 {
///         return n;
///     }
///     let parts = pool.map_async(move |k| fib(pool, k), [n - 1, n - 2]);
///     parts.get().unwrap().iter().sum()
/// }
///
/// let pool = pool_runtime::Pool::new(1).unwrap();
/// assert_eq!(pool.scope(|s| fib(s, 15)), 610);
/// ```
///
/// Tasks may only borrow what outlives the scope:
///
/// ```compile_fail
/// pool_runtime::scope(|s| {
///     let local = vec![1, 2, 3];
///     s.apply_async(|| local.len());
/// });
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    data: Arc<ScopeData>,
    threads: usize,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Starts a batch with options (name, blocking lane, chunk size).
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let batch = s.batch().name("square").chunk(4).map_async(|x: u64| x * x, 0..16);
    ///     assert_eq!(batch.name(), Some("square"));
    ///     assert_eq!(batch.get().unwrap()[15], 225);
    /// });
    /// ```
    pub fn batch(&'scope self) -> BatchBuilder<'scope, 'env> {
        BatchBuilder::new(Target {
            data: TargetData::Scope(&self.data),
            threads: self.threads,
            scope: PhantomData,
        })
    }

    /// Submits one task (Python's `apply_async`).
    ///
    /// ```
    /// let config = String::from("threads = 4");
    /// let parsed = pool_runtime::scope(|s| {
    ///     let task = s.apply_async(|| config.split(" = ").count()); // borrows `config`
    ///     task.get()
    /// });
    /// assert_eq!(parsed.unwrap(), 2);
    /// ```
    ///
    /// A task may submit more tasks and return without waiting for them (a
    /// spawn tree, as with `rayon::scope` and `spawn`); the scope ends when the
    /// last one has finished:
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use pool_runtime::Scope;
    ///
    /// fn visit<'s>(s: &'s Scope<'s, '_>, depth: u32, visited: &'s AtomicUsize) {
    ///     visited.fetch_add(1, Ordering::Relaxed);
    ///     if depth > 0 {
    ///         let _ = s.apply_async(move || visit(s, depth - 1, visited));
    ///         let _ = s.apply_async(move || visit(s, depth - 1, visited));
    ///     }
    /// }
    ///
    /// let visited = AtomicUsize::new(0);
    /// pool_runtime::scope(|s| visit(s, 4, &visited));
    /// assert_eq!(visited.load(Ordering::Relaxed), 31);
    /// ```
    ///
    /// # Panics
    ///
    /// If the scope is closed or terminated, or the pool is broken; see
    /// [`try_apply_async`](Scope::try_apply_async).
    #[track_caller]
    pub fn apply_async<F, T>(&'scope self, task: F) -> Task<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.batch().apply_async(task)
    }

    /// Submits one task, or says why it cannot.
    ///
    /// ```
    /// use pool_runtime::SubmitError;
    ///
    /// pool_runtime::scope(|s| {
    ///     assert_eq!(s.try_apply_async(|| 1 + 1).unwrap().get().unwrap(), 2);
    ///     s.close();
    ///     assert_eq!(s.try_apply_async(|| 1 + 1).unwrap_err(), SubmitError::Closed);
    /// });
    /// ```
    pub fn try_apply_async<F, T>(&'scope self, task: F) -> Result<Task<'scope, T>, SubmitError>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.batch().try_apply_async(task)
    }

    /// Submits one task per item, `task(item)` (Python's `map_async`). The
    /// items are collected on the calling thread before anything runs,
    /// except a range of integers (`0..n` of `usize`, `u64`, `u32`, `i64`
    /// or `i32`), whose tasks compute their inputs themselves: a batch of
    /// ten million tasks over `0..10_000_000` allocates no input vector.
    ///
    /// ```
    /// fn word_count(text: &str) -> usize {
    ///     text.split_whitespace().count()
    /// }
    ///
    /// let documents = vec!["one two".to_string(), "three".to_string()];
    /// pool_runtime::scope(|s| {
    ///     let counts = s.map_async(|doc: &String| word_count(doc), &documents);
    ///     assert_eq!(counts.get().unwrap(), [2, 1]);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// If the scope is closed or terminated, or the pool is broken; see
    /// [`try_map_async`](Scope::try_map_async).
    #[track_caller]
    pub fn map_async<F, I, T>(&'scope self, task: F, items: I) -> Batch<'scope, T>
    where
        F: Fn(I::Item) -> T + Send + Sync + 'scope,
        I: IntoIterator,
        I::Item: Send + 'scope,
        T: Send + 'scope,
    {
        self.batch().map_async(task, items)
    }

    /// Submits one task per item, or says why it cannot.
    ///
    /// ```
    /// use pool_runtime::SubmitError;
    ///
    /// pool_runtime::scope(|s| {
    ///     s.close();
    ///     let refused = s.try_map_async(|x: u8| x, [1, 2]).unwrap_err();
    ///     assert_eq!(refused, SubmitError::Closed);
    /// });
    /// ```
    pub fn try_map_async<F, I, T>(
        &'scope self,
        task: F,
        items: I,
    ) -> Result<Batch<'scope, T>, SubmitError>
    where
        F: Fn(I::Item) -> T + Send + Sync + 'scope,
        I: IntoIterator,
        I::Item: Send + 'scope,
        T: Send + 'scope,
    {
        self.batch().try_map_async(task, items)
    }

    /// Submits one task per tuple of arguments, `task(a, b, ...)` (Python's
    /// `starmap_async`).
    ///
    /// ```
    /// fn add(a: i32, b: i32) -> i32 {
    ///     a + b
    /// }
    /// pool_runtime::scope(|s| {
    ///     let sums = s.starmap_async(add, [(1, 2), (3, 4)]);
    ///     assert_eq!(sums.get().unwrap(), [3, 7]);
    /// });
    /// ```
    #[track_caller]
    pub fn starmap_async<F, I, T>(&'scope self, task: F, items: I) -> Batch<'scope, T>
    where
        F: StarCall<I::Item, Output = T> + Send + Sync + 'scope,
        I: IntoIterator,
        I::Item: Send + 'scope,
        T: Send + 'scope,
    {
        self.batch().starmap_async(task, items)
    }

    /// Runs one task on the pool and waits for it (Python's `apply`).
    ///
    /// ```
    /// let numbers = [4, 8, 15, 16, 23, 42];
    /// let total = pool_runtime::scope(|s| s.apply(|| numbers.iter().sum::<i32>())).unwrap();
    /// assert_eq!(total, 108);
    /// ```
    #[track_caller]
    pub fn apply<F, T>(&'scope self, task: F) -> Result<T, TaskError>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.apply_async(task).get()
    }

    /// Runs one task per item and waits for their results, in order
    /// (Python's `map`).
    ///
    /// ```
    /// let words = ["a", "bb", "ccc"];
    /// let lens = pool_runtime::scope(|s| s.map(|w: &&str| w.len(), &words)).unwrap();
    /// assert_eq!(lens, [1, 2, 3]);
    /// ```
    #[track_caller]
    pub fn map<F, I, T>(&'scope self, task: F, items: I) -> Result<Vec<T>, TaskError>
    where
        F: Fn(I::Item) -> T + Send + Sync + 'scope,
        I: IntoIterator,
        I::Item: Send + 'scope,
        T: Send + 'scope,
    {
        self.map_async(task, items).get()
    }

    /// Runs one task per tuple of arguments and waits (Python's `starmap`).
    ///
    /// ```
    /// let greetings = pool_runtime::scope(|s| {
    ///     s.starmap(|name: &str, times: usize| name.repeat(times), [("ab", 2), ("c", 3)])
    /// });
    /// assert_eq!(greetings.unwrap(), ["abab", "ccc"]);
    /// ```
    #[track_caller]
    pub fn starmap<F, I, T>(&'scope self, task: F, items: I) -> Result<Vec<T>, TaskError>
    where
        F: StarCall<I::Item, Output = T> + Send + Sync + 'scope,
        I: IntoIterator,
        I::Item: Send + 'scope,
        T: Send + 'scope,
    {
        self.starmap_async(task, items).get()
    }

    /// Refuses every later submission; tasks already submitted still run.
    /// Idempotent.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let queued = s.map_async(|x: u32| x * 2, 0..4);
    ///     s.close();
    ///     s.close(); // idempotent
    ///     // Submitted work still runs; new work is refused.
    ///     assert_eq!(queued.get().unwrap(), [0, 2, 4, 6]);
    ///     assert!(s.try_apply_async(|| ()).is_err());
    /// });
    /// ```
    pub fn close(&self) {
        self.data.close();
    }

    /// Whether [`close`](Scope::close) or [`terminate`](Scope::terminate)
    /// was called.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     assert!(!s.is_closed());
    ///     s.close();
    ///     assert!(s.is_closed());
    /// });
    /// ```
    pub fn is_closed(&self) -> bool {
        self.data.is_closed()
    }

    /// Waits for every task ever submitted to this scope, whether or not its
    /// handle was kept.
    ///
    /// # Panics
    ///
    /// If the scope is still open (call [`close`](Scope::close) first), or
    /// when called from inside one of the scope's own tasks (it would wait
    /// for itself). [`try_join`](Scope::try_join) returns these as errors.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let done = AtomicUsize::new(0);
    /// pool_runtime::scope(|s| {
    ///     let _ = s.map_async(|_| done.fetch_add(1, Ordering::SeqCst), 0..5);
    ///     let _ = s.map_async(|_| done.fetch_add(1, Ordering::SeqCst), 5..10);
    ///     s.close();
    ///     s.join();
    ///     assert_eq!(done.load(Ordering::SeqCst), 10);
    /// });
    /// ```
    #[track_caller]
    pub fn join(&self) {
        if let Err(error) = self.try_join() {
            panic!("{error}");
        }
    }

    /// [`join`](Scope::join), returning misuse as an error instead of
    /// panicking.
    ///
    /// ```
    /// use pool_runtime::JoinError;
    ///
    /// pool_runtime::scope(|s| {
    ///     assert_eq!(s.try_join(), Err(JoinError::StillOpen));
    ///     s.close();
    ///     assert_eq!(s.try_join(), Ok(()));
    /// });
    /// ```
    pub fn try_join(&self) -> Result<(), JoinError> {
        if !self.data.is_closed() {
            return Err(JoinError::StillOpen);
        }
        if lineage::in_task_of(std::ptr::NonNull::from(self.data.node())) {
            return Err(JoinError::FromOwnTask);
        }
        self.data.wait_all();
        Ok(())
    }

    /// Closes the scope and keeps every queued task from starting (their
    /// handles report [`TaskErrorKind::Cancelled`]); running tasks finish.
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// let pool = pool_runtime::Pool::new(1).unwrap();
    /// pool.scope(|s| {
    ///     let (started, has_started) = mpsc::channel();
    ///     let (release, wait) = mpsc::channel::<()>();
    ///     let running = s.apply_async(move || {
    ///         started.send(()).unwrap();
    ///         wait.recv().unwrap();
    ///     });
    ///     has_started.recv().unwrap();
    ///     let queued = s.map_async(|x: u32| x, 0..3); // behind the running task
    ///     s.terminate();
    ///     release.send(()).unwrap();
    ///     assert!(running.get().is_ok());
    ///     assert!(queued.get().unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn terminate(&self) {
        self.data.terminate();
    }

    /// The number of CPU worker threads of the scope's pool.
    ///
    /// ```
    /// let pool = pool_runtime::Pool::new(3).unwrap();
    /// let data: Vec<u64> = (0..300).collect();
    /// pool.scope(|s| {
    ///     // One chunk of the input per worker.
    ///     let chunk = data.len().div_ceil(s.threads());
    ///     let sums = s.map(|part: &[u64]| part.iter().sum::<u64>(), data.chunks(chunk)).unwrap();
    ///     assert_eq!(sums.len(), 3);
    /// });
    /// ```
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `a` and `b`, possibly in parallel, on this scope's pool, and
    /// returns both results when both are done (see
    /// [`fork_join`](crate::fork_join)). The closures may borrow anything
    /// the caller can, `&mut` halves of one slice included.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let mut data = [5, 3, 8, 1];
    ///     let (left, right) = data.split_at_mut(2);
    ///     s.fork_join(|| left.sort(), || right.sort());
    ///     assert_eq!(data, [3, 5, 1, 8]);
    /// });
    /// ```
    pub fn fork_join<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send,
    {
        join::fork_join_in(self.data.registry(), a, b)
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("threads", &self.threads)
            .field("closed", &self.is_closed())
            .field("pending_batches", &self.data.pending())
            .finish()
    }
}

/// Options for one batch, started with [`Scope::batch`].
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// let finished = AtomicUsize::new(0);
/// pool_runtime::scope(|s| {
///     let batch = s
///         .batch()
///         .name("checksum")
///         .chunk(8)
///         .on_complete(|_index, outcome: Result<&u64, &pool_runtime::TaskError>| {
///             if outcome.is_ok() {
///                 finished.fetch_add(1, Ordering::Relaxed);
///             }
///         })
///         .map_async(|x: u64| x.wrapping_mul(0x9E37_79B9), 0..100);
///     assert_eq!(batch.get().unwrap().len(), 100);
/// });
/// assert_eq!(finished.load(Ordering::Relaxed), 100);
/// ```
///
/// A builder's `'scope` cannot shrink: a task that borrows less than the
/// scope waits for is refused, however the builder is passed around.
///
/// ```compile_fail
/// use pool_runtime::BatchBuilder;
///
/// fn shorten<'short, 'long: 'short, 'env>(
///     builder: BatchBuilder<'long, 'env>,
/// ) -> BatchBuilder<'short, 'env> {
///     builder
/// }
/// ```
///
/// (The same function with one lifetime compiles:)
///
/// ```
/// use pool_runtime::BatchBuilder;
///
/// fn pass<'scope, 'env>(builder: BatchBuilder<'scope, 'env>) -> BatchBuilder<'scope, 'env> {
///     builder
/// }
/// ```
#[must_use = "a batch builder submits nothing until map_async, apply_async or starmap_async is called"]
pub struct BatchBuilder<'scope, 'env, C = NoCallback> {
    pub(crate) target: Target<'scope>,
    pub(crate) options: Options,
    pub(crate) callback: C,
    pub(crate) env: PhantomData<&'env mut &'env ()>,
}

impl<'scope, 'env> BatchBuilder<'scope, 'env> {
    pub(crate) fn new(target: Target<'scope>) -> Self {
        BatchBuilder {
            target,
            options: Options::default(),
            callback: NoCallback,
            env: PhantomData,
        }
    }
}

impl<'scope, 'env, C> BatchBuilder<'scope, 'env, C> {
    /// Names the batch's tasks; the name shows in their errors and in panic
    /// reports.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let batch = s.batch().name("resize").map_async(|x: u32| assert!(x < 2, "image {x} is corrupt"), 0..3);
    ///     let error = batch.get().unwrap_err();
    ///     assert_eq!(error.task_name(), Some("resize"));
    ///     assert!(error.to_string().starts_with("task 2 (`resize`) panicked"));
    /// });
    /// ```
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.options.name = Some(name.into());
        self
    }

    /// Routes the batch to the pool's blocking lane (for I/O and sleeps):
    /// extra threads, started on demand up to a cap and retired when idle,
    /// so that CPU tasks keep one worker per core. Blocking tasks are
    /// claimed one at a time, never in chunks.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = pool_runtime::Pool::new(1).unwrap();
    /// pool.scope(|s| {
    ///     // Four "downloads" on a one-thread pool: the sleeps overlap on the
    ///     // blocking lane, and the CPU worker stays free.
    ///     let pages = s.batch().blocking(true).map_async(
    ///         |page: u32| {
    ///             std::thread::sleep(Duration::from_millis(20));
    ///             page
    ///         },
    ///         0..4,
    ///     );
    ///     assert_eq!(pages.get().unwrap(), [0, 1, 2, 3]);
    /// });
    /// ```
    pub fn blocking(mut self, blocking: bool) -> Self {
        self.options.blocking = blocking;
        self
    }

    /// Makes workers claim `chunk` tasks at a time instead of the adaptive
    /// default (which starts at one and grows while tasks are short).
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     // Tiny tasks: claim them 256 at a time.
    ///     let squares = s.batch().chunk(256).map_async(|x: u64| x * x, 0..10_000);
    ///     assert_eq!(squares.get().unwrap()[9_999], 99_980_001);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// If `chunk` is 0.
    #[track_caller]
    pub fn chunk(mut self, chunk: usize) -> Self {
        assert!(
            chunk > 0,
            "poolscope: chunk = 0 is not a chunk size; pass 1 or more, or leave it out for adaptive chunks"
        );
        self.options.chunk = Some(chunk);
        self
    }

    /// Cancels the rest of the batch at the first task that panics (and, for
    /// batches submitted with
    /// [`map_async_fallible`](BatchBuilder::map_async_fallible), at the
    /// first task that returns `Err`). On a stream
    /// ([`imap`](BatchBuilder::imap),
    /// [`imap_unordered`](BatchBuilder::imap_unordered)) the first panic
    /// stops the whole stream, as [`Imap::cancel`](crate::Imap::cancel) does.
    ///
    /// ```
    /// let pool = pool_runtime::Pool::new(1).unwrap();
    /// pool.scope(|s| {
    ///     let records = s
    ///         .batch()
    ///         .fail_fast(true)
    ///         .chunk(1)
    ///         .map_async(|r: u32| assert!(r != 0, "record {r} is corrupt"), 0..100);
    ///     records.wait();
    ///     let failures = records.failures();
    ///     assert_eq!(failures[0].panic_message(), Some("record 0 is corrupt"));
    ///     // The records behind it were never imported.
    ///     assert!(failures.len() > 1 && failures[1..].iter().all(|e| e.is_cancelled()));
    /// });
    /// ```
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.options.fail_fast = fail_fast;
        self
    }

    /// Gives the batch a deadline: once `deadline` passes, its tasks that
    /// have not started never start (they report
    /// [`TaskErrorKind::Cancelled`]), and its running tasks see
    /// [`current_task_cancelled`](crate::current_task_cancelled) turn true,
    /// so that cooperative ones stop early.
    ///
    /// A running task that does not look is not interrupted: the scope still
    /// waits for it, since it may borrow from the caller's stack.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// pool_runtime::scope(|s| {
    ///     let batch = s
    ///         .batch()
    ///         .deadline(Instant::now() + Duration::from_millis(50))
    ///         .map_async(
    ///             |_: u32| {
    ///                 while !pool_runtime::current_task_cancelled() {
    ///                     std::thread::sleep(Duration::from_millis(1));
    ///                 }
    ///             },
    ///             0..100,
    ///         );
    ///     batch.wait();
    ///     assert!(batch.is_cancelled());
    /// });
    /// ```
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.options.deadline = Some(instant_from_std(deadline));
        self
    }

    /// A [`deadline`](BatchBuilder::deadline) `timeout` after the batch is
    /// submitted.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// pool_runtime::scope(|s| {
    ///     // A search that gives up after 20 ms and returns what it has.
    ///     let best = s.batch().timeout(Duration::from_millis(20)).apply_async(|| {
    ///         let mut tried = 0u64;
    ///         while !pool_runtime::current_task_cancelled() {
    ///             tried += 1;
    ///             std::thread::yield_now();
    ///         }
    ///         tried
    ///     });
    ///     // It ran and stopped when told to, or the deadline passed first.
    ///     match best.get() {
    ///         Ok(tried) => println!("gave up after {tried} tries"),
    ///         Err(error) => assert!(error.is_cancelled()),
    ///     }
    /// });
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.deadline = Instant::now().checked_add(timeout).map(instant_from_std);
        self
    }

    /// For [`imap`](BatchBuilder::imap) and
    /// [`imap_unordered`](BatchBuilder::imap_unordered): at most `tasks`
    /// inputs are pulled from the iterator and not yet handed back as
    /// results (default: 4 per thread, at least 16).
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     // An endless input, read in bounded memory: at most eight lines are
    ///     // pulled ahead of the consumer.
    ///     let lines = (0..).map(|n| format!("line {n}"));
    ///     let lengths = s.batch().in_flight(8).imap(|line: String| line.len(), lines);
    ///     let first: Vec<usize> = lengths.take(3).map(Result::unwrap).collect();
    ///     assert_eq!(first, [6, 6, 6]);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// If `tasks` is 0.
    #[track_caller]
    pub fn in_flight(mut self, tasks: usize) -> Self {
        assert!(
            tasks > 0,
            "poolscope: in_flight = 0 would never start a task; pass 1 or more"
        );
        self.options.in_flight = Some(tasks);
        self
    }

    /// Calls `callback(index, outcome)` on the worker that finished each
    /// task (`index` is the task's input position, in the whole input for
    /// [`imap`](BatchBuilder::imap) and
    /// [`imap_unordered`](BatchBuilder::imap_unordered)), right after it finished (for a task cancelled before it
    /// started: on the thread that cancelled it). A panic in the callback is
    /// reported as that task's panic; it never kills a worker or leaves a
    /// wait hanging.
    ///
    /// ```
    /// use std::sync::Mutex;
    ///
    /// let log = Mutex::new(Vec::new());
    /// pool_runtime::scope(|s| {
    ///     let batch = s
    ///         .batch()
    ///         .on_complete(|index, outcome: Result<&u32, _>| {
    ///             log.lock().unwrap().push((index, outcome.is_ok()));
    ///         })
    ///         .map_async(|x: u32| x + 1, 0..3);
    ///     batch.wait();
    /// });
    /// let mut log = log.into_inner().unwrap();
    /// log.sort();
    /// assert_eq!(log, [(0, true), (1, true), (2, true)]);
    /// ```
    pub fn on_complete<T, F>(self, callback: F) -> BatchBuilder<'scope, 'env, OnComplete<T, F>>
    where
        F: Fn(usize, Result<&T, &TaskError>) + Send + Sync + 'scope,
    {
        BatchBuilder {
            target: self.target,
            options: self.options,
            callback: OnComplete::new(callback),
            env: PhantomData,
        }
    }

    /// Submits one task per item; see [`Scope::map_async`].
    ///
    /// ```
    /// let prices_in_cents = [1250, 300, 725];
    /// pool_runtime::scope(|s| {
    ///     let with_tax = s.batch().name("tax").map_async(|p: &u32| p * 120 / 100, &prices_in_cents);
    ///     assert_eq!(with_tax.get().unwrap(), [1500, 360, 870]);
    /// });
    /// ```
    #[track_caller]
    pub fn map_async<F, I, T>(self, task: F, items: I) -> Batch<'scope, T>
    where
        F: Fn(I::Item) -> T + Send + Sync + 'scope,
        I: IntoIterator,
        I::Item: Send + 'scope,
        T: Send + 'scope,
        C: CompletionCallback<T> + 'scope,
    {
        accepted(self.try_map_async(task, items))
    }

    /// Submits one task per item, or says why it cannot.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let batch = s.batch().chunk(2).try_map_async(|x: u8| x * 2, [1, 2, 3]).unwrap();
    ///     assert_eq!(batch.get().unwrap(), [2, 4, 6]);
    ///     s.close();
    ///     assert!(s.batch().try_map_async(|x: u8| x, [1]).is_err());
    /// });
    /// ```
    pub fn try_map_async<F, I, T>(self, task: F, items: I) -> Result<Batch<'scope, T>, SubmitError>
    where
        F: Fn(I::Item) -> T + Send + Sync + 'scope,
        I: IntoIterator,
        I::Item: Send + 'scope,
        T: Send + 'scope,
        C: CompletionCallback<T> + 'scope,
    {
        // Refuse before evaluating a possibly long iterator.
        if let Some(refusal) = self.target.refusal() {
            return Err(refusal);
        }
        self.target.submit(
            self.options,
            task,
            self.callback,
            None,
            Inputs::of(items.into_iter()),
        )
    }

    /// Submits one task per item, for tasks that return `Result`: with
    /// [`fail_fast`](BatchBuilder::fail_fast), the first `Err` cancels the
    /// rest of the batch. Otherwise the same as
    /// [`map_async`](BatchBuilder::map_async).
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let parsed = s
    ///         .batch()
    ///         .fail_fast(true)
    ///         .chunk(1)
    ///         .map_async_fallible(|text: &str| text.parse::<u8>(), ["1", "x", "3"]);
    ///     let outcomes: Vec<_> = parsed.results().collect();
    ///     assert!(outcomes[1].as_ref().unwrap().is_err());
    /// });
    /// ```
    #[track_caller]
    pub fn map_async_fallible<F, I, U, E>(self, task: F, items: I) -> Batch<'scope, Result<U, E>>
    where
        F: Fn(I::Item) -> Result<U, E> + Send + Sync + 'scope,
        I: IntoIterator,
        I::Item: Send + 'scope,
        U: Send + 'scope,
        E: Send + 'scope,
        C: CompletionCallback<Result<U, E>> + 'scope,
    {
        self.map_async_with_failure(task, items, Result::is_err)
    }

    /// Submits one task per item, counting a result for which `is_failure`
    /// returns true as a failure for [`fail_fast`](BatchBuilder::fail_fast):
    /// the first such result cancels the rest of the batch. The result is
    /// still the task's result (it is not turned into an error). Without
    /// fail-fast, the same as [`map_async`](BatchBuilder::map_async).
    ///
    /// [`map_async_fallible`](BatchBuilder::map_async_fallible) is this with
    /// `Result::is_err`; `par_batch!` with `fail_fast` uses it for calls that
    /// return a `Result`.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let found = s
    ///         .batch()
    ///         .fail_fast(true)
    ///         .chunk(1)
    ///         .map_async_with_failure(|n: u32| (n != 2).then_some(n), 0..4, Option::is_none);
    ///     let outcomes: Vec<_> = found.results().collect();
    ///     assert_eq!(*outcomes[2].as_ref().unwrap(), None);
    /// });
    /// ```
    #[track_caller]
    pub fn map_async_with_failure<F, I, T>(
        self,
        task: F,
        items: I,
        is_failure: fn(&T) -> bool,
    ) -> Batch<'scope, T>
    where
        F: Fn(I::Item) -> T + Send + Sync + 'scope,
        I: IntoIterator,
        I::Item: Send + 'scope,
        T: Send + 'scope,
        C: CompletionCallback<T> + 'scope,
    {
        if let Some(refusal) = self.target.refusal() {
            panic!("{refusal}");
        }
        accepted(self.target.submit(
            self.options,
            task,
            self.callback,
            Some(is_failure),
            Inputs::of(items.into_iter()),
        ))
    }

    /// Submits one task per tuple of arguments; see [`Scope::starmap_async`].
    ///
    /// ```
    /// fn clamp(value: i32, low: i32, high: i32) -> i32 {
    ///     value.max(low).min(high)
    /// }
    ///
    /// pool_runtime::scope(|s| {
    ///     let clamped = s.batch().name("clamp").starmap_async(clamp, [(-5, 0, 10), (50, 0, 10)]);
    ///     assert_eq!(clamped.get().unwrap(), [0, 10]);
    /// });
    /// ```
    #[track_caller]
    pub fn starmap_async<F, I, T>(self, task: F, items: I) -> Batch<'scope, T>
    where
        F: StarCall<I::Item, Output = T> + Send + Sync + 'scope,
        I: IntoIterator,
        I::Item: Send + 'scope,
        T: Send + 'scope,
        C: CompletionCallback<T> + 'scope,
    {
        self.map_async(move |args| task.star_call(args), items)
    }

    /// Submits one task; see [`Scope::apply_async`].
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// pool_runtime::scope(|s| {
    ///     let report = s.batch().name("report").blocking(true).apply_async(|| {
    ///         std::thread::sleep(Duration::from_millis(5)); // stands in for a slow query
    ///         "report ready"
    ///     });
    ///     assert_eq!(report.get().unwrap(), "report ready");
    /// });
    /// ```
    #[track_caller]
    pub fn apply_async<F, T>(self, task: F) -> Task<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
        C: CompletionCallback<T> + 'scope,
    {
        accepted(self.try_apply_async(task))
    }

    /// Submits one task, or says why it cannot.
    ///
    /// ```
    /// use pool_runtime::SubmitError;
    ///
    /// pool_runtime::scope(|s| {
    ///     s.terminate();
    ///     let refused = s.batch().name("late").try_apply_async(|| 1).unwrap_err();
    ///     assert_eq!(refused, SubmitError::Terminated);
    /// });
    /// ```
    pub fn try_apply_async<F, T>(self, task: F) -> Result<Task<'scope, T>, SubmitError>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
        C: CompletionCallback<T> + 'scope,
    {
        let batch = self.target.submit(
            self.options,
            |task: F| task(),
            self.callback,
            None,
            Inputs::One(task),
        )?;
        Ok(Task::new(batch))
    }
}

/// Where a submission goes: a scope, borrowed for `'scope`, or a pool's
/// owned work, which only exists as `Target<'static>`.
pub(crate) struct Target<'scope> {
    data: TargetData<'scope>,
    threads: usize,
    /// Invariant in `'scope`, as `&'scope Scope<'scope, '_>` is: a builder
    /// whose `'scope` could shrink would accept tasks that borrow less than
    /// the scope waits for.
    scope: PhantomData<&'scope mut &'scope ()>,
}

enum TargetData<'scope> {
    Scope(&'scope Arc<ScopeData>),
    Owned(Arc<ScopeData>),
}

impl Target<'static> {
    /// A pool's owned work, `data`, on a pool of `threads` CPU workers.
    pub(crate) fn owned(data: Arc<ScopeData>, threads: usize) -> Target<'static> {
        Target {
            data: TargetData::Owned(data),
            threads,
            scope: PhantomData,
        }
    }
}

impl<'scope> Target<'scope> {
    fn data(&self) -> &Arc<ScopeData> {
        match &self.data {
            TargetData::Scope(data) => data,
            TargetData::Owned(data) => data,
        }
    }

    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    fn refusal(&self) -> Option<SubmitError> {
        self.data().check_open().err()
    }

    fn submit<I, T, F, C>(
        &self,
        options: Options,
        func: F,
        callback: C,
        is_failure: Option<fn(&T) -> bool>,
        inputs: Inputs<I>,
    ) -> Result<Batch<'scope, T>, SubmitError>
    where
        I: Send + 'scope,
        T: Send + 'scope,
        F: Fn(I) -> T + Send + Sync + 'scope,
        C: CompletionCallback<T> + 'scope,
    {
        let data = self.data();
        let registry = data.registry();
        if registry.is_broken() {
            let reason = registry.broken_reason().unwrap_or_default();
            return Err(SubmitError::PoolBroken { reason });
        }
        let len = inputs.len();
        // Counted before it can run; an empty batch is not counted (it is
        // ready at once) but is refused by a closed scope all the same.
        if len > 0 {
            data.count_in()?;
        } else {
            data.check_open()?;
        }
        let inner = Arc::new(BatchInner::new(
            options,
            func,
            callback,
            is_failure,
            inputs,
            data.clone(),
            self.threads,
        ));
        // SAFETY: `job::erase`, the scope case. A target is either a scope
        // borrowed for `'scope`, which does not return before its pending
        // count is zero and releases what the batch leaves before it
        // returns (`run_scope`: `wait_all`, then `settle`, which finds the
        // batch on the scope's list, where it goes right below); or a
        // pool's owned work, which is only ever a `Target<'static>`: then
        // the batch's closure, inputs and results are `'static` and borrow
        // nothing that could end.
        let unit = unsafe { engine::queue(&inner) };
        data.register(&unit, inner.scope_link());
        if len > 0 {
            let own = WorkerThread::current_of(registry).map(|worker| worker.index);
            registry.push_unit(&unit, len, inner.lane(), own);
            if registry.is_broken() {
                let reason = registry.broken_reason().unwrap_or_default();
                unit.fail_unclaimed(TaskErrorKind::PoolBroken { reason });
            }
        }
        Ok(Batch::new(inner))
    }

    #[track_caller]
    pub(crate) fn submit_window<F, T, C, X>(
        &self,
        options: &Options,
        callback: &C,
        task: &Arc<F>,
        first_index: usize,
        inputs: Vec<X>,
    ) -> Batch<'scope, T>
    where
        F: Fn(X) -> T + Send + Sync + 'scope,
        X: Send + 'scope,
        T: Send + 'scope,
        C: CompletionCallback<T> + Clone + 'scope,
    {
        let task = task.clone();
        let options = Options {
            first_index,
            ..options.clone()
        };
        accepted(self.submit(
            options,
            move |x| task(x),
            callback.clone(),
            None,
            Inputs::Many(inputs),
        ))
    }
}

impl<C> fmt::Debug for BatchBuilder<'_, '_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchBuilder")
            .field("options", &self.options)
            .finish()
    }
}

/// A function called with its arguments packed in a tuple, for
/// [`Scope::starmap_async`]. Implemented for every `Fn` of up to eight
/// arguments.
///
/// ```
/// use pool_runtime::StarCall;
///
/// fn volume(w: u32, h: u32, d: u32) -> u32 {
///     w * h * d
/// }
/// assert_eq!(volume.star_call((2, 3, 4)), 24);
/// ```
pub trait StarCall<Args> {
    /// What the function returns.
    type Output;
    /// Calls the function with the tuple's fields as arguments.
    ///
    /// ```
    /// use pool_runtime::StarCall;
    ///
    /// let join = |a: &str, b: &str| format!("{a}/{b}");
    /// assert_eq!(join.star_call(("usr", "lib")), "usr/lib");
    /// ```
    fn star_call(&self, args: Args) -> Self::Output;
}

macro_rules! star_call {
    ($($arg:ident)*) => {
        impl<Func, Out, $($arg,)*> StarCall<($($arg,)*)> for Func
        where
            Func: Fn($($arg),*) -> Out,
        {
            type Output = Out;
            #[allow(non_snake_case)]
            fn star_call(&self, ($($arg,)*): ($($arg,)*)) -> Out {
                self($($arg),*)
            }
        }
    };
}

star_call!(A);
star_call!(A B);
star_call!(A B C);
star_call!(A B C D);
star_call!(A B C D E);
star_call!(A B C D E G);
star_call!(A B C D E G H);
star_call!(A B C D E G H J);
