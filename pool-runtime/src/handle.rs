//! The handles users hold: [`Batch`] and [`Task`], and the streams of a
//! batch's results ([`Results`], [`AsCompleted`]).
//!
//! A handle is a typed, reference-counted view of its batch
//! ([`BatchCore`](crate::engine::BatchCore)); every wait goes through
//! [`engine::wait_on`](crate::engine::wait_on), which helps on the pool's
//! workers and blocks elsewhere.

use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::engine::{self, BatchCore, BatchHeader, Ready};
use crate::error::{TaskError, TryGetError};
use crate::primitive::{fence, lock, seq_cst_hand_shake, Arc, Instant, Ordering};

/// The handle of a batch of tasks submitted to a [`Scope`](crate::Scope):
/// wait for it, poll it, take its results, cancel it.
///
/// Python's `AsyncResult`: `wait`, `wait_timeout` (`wait(timeout)`),
/// `is_ready` (`ready()`), `successful`, `get`, `get_timeout` (`get(timeout)`).
///
/// A `Batch` cannot outlive its scope, and the scope waits for every task
/// whether or not its handle is kept, so dropping a handle neither cancels
/// nor detaches its tasks.
///
/// ```
/// use std::time::Duration;
///
/// let data = vec![1, 2, 3, 4];
/// pool_runtime::scope(|s| {
///     let batch = s.map_async(|x: &i32| x * 10, &data);
///     assert_eq!(batch.len(), 4);
///     assert!(batch.wait_timeout(Duration::from_secs(60)));
///     assert!(batch.is_ready());
///     assert_eq!(batch.successful(), Some(true));
///     assert_eq!(batch.get().unwrap(), [10, 20, 30, 40]);
/// });
/// ```
///
/// A handle cannot escape its scope:
///
/// ```compile_fail
/// let escaped = pool_runtime::scope(|s| s.map_async(|x: u32| x, 0..4));
/// ```
#[must_use = "a batch runs whether or not its handle is kept; keep the handle to wait for it, take its results or see its failures"]
pub struct Batch<'scope, T> {
    inner: Arc<dyn BatchCore<T> + 'scope>,
    _scope: PhantomData<&'scope ()>,
}

impl<'scope, T> Batch<'scope, T> {
    pub(crate) fn new(inner: Arc<dyn BatchCore<T> + 'scope>) -> Self {
        Batch {
            inner,
            _scope: PhantomData,
        }
    }

    fn header(&self) -> &BatchHeader {
        self.inner.header()
    }

    /// Waits until every task of the batch finished (ran, panicked or was
    /// cancelled).
    ///
    /// Called from one of the pool's own workers (inside a task), the wait
    /// runs this batch's tasks that no worker has claimed yet, and the work
    /// those tasks submitted, instead of sleeping, so tasks that wait on
    /// batches never deadlock the pool. It never runs unrelated work.
    /// Called from any other thread, it blocks and runs nothing.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let done = AtomicUsize::new(0);
    /// pool_runtime::scope(|s| {
    ///     let batch = s.map_async(|_: u32| done.fetch_add(1, Ordering::Relaxed), 0..8);
    ///     batch.wait();
    ///     assert!(batch.is_ready());
    ///     assert_eq!(done.load(Ordering::Relaxed), 8);
    /// });
    /// ```
    pub fn wait(&self) {
        engine::wait_on(&*self.inner, Ready::Complete, None);
    }

    /// Waits at most `timeout` for the batch; returns whether it is ready.
    ///
    /// From inside one of the pool's workers, the wait runs this batch's
    /// unclaimed tasks (and their descendants) one at a time while time
    /// remains, so it may overrun `timeout` by the duration of the task it
    /// is running.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// pool_runtime::scope(|s| {
    ///     let batch = s.map_async(|x: u64| x + 1, 0..4);
    ///     assert!(batch.wait_timeout(Duration::from_secs(60)));
    /// });
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let until = Instant::now().checked_add(timeout);
        engine::wait_on(&*self.inner, Ready::Complete, until)
    }

    /// Whether every task finished (Python's `ready()`).
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let batch = s.map_async(|x: u64| x * 2, 0..1000);
    ///     while !batch.is_ready() {
    ///         std::thread::yield_now(); // something useful meanwhile
    ///     }
    ///     assert_eq!(batch.completed(), 1000);
    /// });
    /// ```
    pub fn is_ready(&self) -> bool {
        if self.header().pending_deadline().is_some() {
            self.inner.enforce_deadline();
        }
        self.header().is_complete()
    }

    /// `None` while the batch is not ready; then `Some(true)` if every task
    /// succeeded, `Some(false)` if any panicked or was cancelled. Seeing
    /// `Some(false)` counts as having reported the failure, so its panic is
    /// not re-raised when the scope ends.
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// pool_runtime::scope(|s| {
    ///     let (go, wait) = mpsc::channel::<()>();
    ///     let upload = s.apply_async(move || wait.recv().unwrap()).into_batch();
    ///     assert_eq!(upload.successful(), None); // still running
    ///     go.send(()).unwrap();
    ///     upload.wait();
    ///     assert_eq!(upload.successful(), Some(true));
    ///
    ///     let checked = s.map_async(|x: i32| assert!(x >= 0, "negative input"), [1, -1]);
    ///     checked.wait();
    ///     assert_eq!(checked.successful(), Some(false));
    /// });
    /// ```
    pub fn successful(&self) -> Option<bool> {
        if !self.is_ready() {
            return None;
        }
        let failed = (0..self.len()).any(|i| self.inner.failed(i).is_some());
        if failed {
            self.header()
                .failure_observed
                .store(true, Ordering::Release);
        }
        Some(!failed)
    }

    /// Waits for the batch and returns its results in submission order, or
    /// the first failure in submission order.
    ///
    /// The failure is the first task that failed by itself: it panicked, or
    /// (with [`fail_fast`](crate::BatchBuilder::fail_fast)) returned a
    /// value counted as a failure, or its pool broke. A task cancelled
    /// because of that failure is never the one reported; a cancelled task
    /// is reported only when no task failed by itself (the batch was
    /// cancelled, its scope terminated, or its deadline passed).
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let sizes = s.map_async(|name: &str| name.len(), ["a", "bb", "ccc"]);
    ///     assert_eq!(sizes.get().unwrap(), [1, 2, 3]);
    ///
    ///     let checked = s.map_async(|x: u32| assert!(x != 1, "one is not allowed"), 0..3);
    ///     let error = checked.get().unwrap_err();
    ///     assert_eq!((error.index(), error.panic_message()), (1, Some("one is not allowed")));
    /// });
    /// ```
    pub fn get(self) -> Result<Vec<T>, TaskError> {
        self.wait();
        if let Some(index) = self.inner.first_failure() {
            self.header()
                .failure_observed
                .store(true, Ordering::Release);
            return Err(self
                .inner
                .failed(index)
                .expect("first_failure names a failed task"));
        }
        // SAFETY: this live handle is consumed by `get`, the batch is
        // complete, no task failed, and nothing was taken before (only a
        // stream takes results one by one, and a stream consumes the handle).
        Ok(unsafe { self.inner.take_all() })
    }

    /// Like [`get`](Batch::get), but gives up after `timeout` and hands the
    /// batch back in [`GetTimeoutError::Timeout`].
    ///
    /// Giving up stops nothing: the tasks go on running, and the scope still
    /// waits for them (they may borrow from its caller's stack). To stop
    /// what has not started, [`cancel`](Batch::cancel) the batch you got
    /// back; to stop at a point in time whether or not anyone waits, give
    /// the batch a [`deadline`](crate::BatchBuilder::deadline), which also
    /// tells running tasks to stop through
    /// [`current_task_cancelled`](crate::current_task_cancelled).
    ///
    /// ```
    /// use std::time::Duration;
    /// use pool_runtime::GetTimeoutError;
    ///
    /// let pool = pool_runtime::Pool::new(1).unwrap();
    /// pool.scope(|s| {
    ///     let (tx, rx) = std::sync::mpsc::channel::<()>();
    ///     let slow = s.apply_async(move || rx.recv().is_ok()).into_batch();
    ///     let slow = match slow.get_timeout(Duration::from_millis(10)) {
    ///         Err(GetTimeoutError::Timeout(batch)) => batch,
    ///         other => panic!("{other:?}"),
    ///     };
    ///     tx.send(()).unwrap();
    ///     assert_eq!(slow.get().unwrap(), [true]);
    /// });
    /// ```
    pub fn get_timeout(self, timeout: Duration) -> Result<Vec<T>, GetTimeoutError<'scope, T>> {
        if !self.wait_timeout(timeout) {
            return Err(GetTimeoutError::Timeout(self));
        }
        self.get().map_err(GetTimeoutError::Failed)
    }

    /// Every failed task, in submission order, once the batch is ready (empty
    /// before). Counts as having reported the failures.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let rows = ["1", "x", "3", "y"];
    ///     let imported = s.map_async(|row: &str| row.parse::<u32>().expect("not a number"), rows);
    ///     imported.wait();
    ///     let bad_rows: Vec<usize> = imported.failures().iter().map(|e| e.index()).collect();
    ///     assert_eq!(bad_rows, [1, 3]);
    /// });
    /// ```
    pub fn failures(&self) -> Vec<TaskError> {
        if !self.is_ready() {
            return Vec::new();
        }
        let failures: Vec<TaskError> = (0..self.len())
            .filter_map(|i| self.inner.failed(i))
            .collect();
        if !failures.is_empty() {
            self.header()
                .failure_observed
                .store(true, Ordering::Release);
        }
        failures
    }

    /// The number of tasks in the batch.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let batch = s.map_async(|page: u32| page + 1, 0..5);
    ///     assert_eq!(batch.len(), 5);
    /// });
    /// ```
    pub fn len(&self) -> usize {
        self.header().len()
    }

    /// Whether the batch has no task (it is then ready at once).
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let nothing_to_do = s.map_async(|x: u32| x, Vec::new());
    ///     assert!(nothing_to_do.is_empty());
    ///     assert!(nothing_to_do.is_ready());
    /// });
    /// ```
    pub fn is_empty(&self) -> bool {
        self.header().len() == 0
    }

    /// How many tasks have finished so far (progress: `completed() / len()`).
    ///
    /// Workers report in chunks, so on a batch of tiny tasks the count moves
    /// in steps. A result that [`results`](Self::results) or
    /// [`as_completed`](Self::as_completed) handed out is always counted,
    /// even before its chunk is reported: a progress bar read beside a
    /// stream never shows fewer tasks done than results read. The count
    /// reaches `len()` when the batch is ready, or once a stream handed out
    /// the last result.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// pool_runtime::scope(|s| {
    ///     let batch = s.map_async(|n: u64| (0..n).sum::<u64>(), 0..2000);
    ///     while !batch.wait_timeout(Duration::from_millis(10)) {
    ///         println!("{}/{} done", batch.completed(), batch.len());
    ///     }
    ///     assert_eq!(batch.completed(), batch.len());
    /// });
    /// ```
    pub fn completed(&self) -> usize {
        if self.header().pending_deadline().is_some() {
            self.inner.enforce_deadline();
        }
        let header = self.header();
        let reported = header.reported();
        reported.max(header.handed_out.load(Ordering::Relaxed))
    }

    /// Keeps every task that has not started from ever starting (they report
    /// [`TaskErrorKind::Cancelled`](crate::TaskErrorKind::Cancelled)); running tasks finish. Returns how many
    /// tasks this call cancelled: a task it does not count runs (or already
    /// ran). The one exception is a batch claimed in chunks of more than one
    /// task: a task a worker claimed behind one that was running is
    /// cancelled too, without being counted; once the batch is ready,
    /// [`failures`](Batch::failures) lists every cancelled task.
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// let pool = pool_runtime::Pool::new(1).unwrap();
    /// pool.scope(|s| {
    ///     let (go, wait) = mpsc::channel::<()>();
    ///     let busy = s.apply_async(move || wait.recv().unwrap()); // holds the only worker
    ///     let batch = s.map_async(|x: u32| x * 2, 0..10);
    ///     assert_eq!(batch.cancel(), 10); // none had started
    ///     go.send(()).unwrap();
    ///     assert!(busy.get().is_ok());
    ///     assert!(batch.get().unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn cancel(&self) -> usize {
        self.inner.cancel()
    }

    /// Whether [`cancel`](Batch::cancel) was called on this batch (or its
    /// scope was terminated).
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let batch = s.map_async(|x: u32| x, 0..4);
    ///     assert!(!batch.is_cancelled());
    ///     batch.cancel();
    ///     assert!(batch.is_cancelled());
    /// });
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.header().cancel.cancelled.load(Ordering::Acquire)
    }

    /// The name given to the batch's tasks, if any.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let named = s.batch().name("thumbnails").map_async(|x: u32| x, 0..2);
    ///     assert_eq!(named.name(), Some("thumbnails"));
    ///     assert_eq!(s.map_async(|x: u32| x, 0..2).name(), None);
    /// });
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.header().name.as_deref()
    }

    /// The results one by one in submission order, each as soon as it is
    /// ready (Python's `imap`): the first result is in hand while later
    /// tasks still run. Also what `for result in batch` does.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let batch = s.map_async(|x: u32| x * x, 1..=3);
    ///     let squares: Vec<u32> = batch.results().map(Result::unwrap).collect();
    ///     assert_eq!(squares, [1, 4, 9]);
    /// });
    /// ```
    pub fn results(self) -> Results<'scope, T> {
        Results {
            batch: self,
            next: 0,
        }
    }

    /// The results in the order the tasks finish, each with the index of
    /// its input (Python's `imap_unordered`, plus the index).
    ///
    /// ```
    /// use std::{thread, time::Duration};
    ///
    /// pool_runtime::scope(|s| {
    ///     let delays = [200u64, 0];
    ///     let batch = s.batch().blocking(true).map_async(
    ///         |ms: u64| thread::sleep(Duration::from_millis(ms)),
    ///         delays,
    ///     );
    ///     let order: Vec<usize> = batch.as_completed().map(|(index, _)| index).collect();
    ///     assert_eq!(order, [1, 0]);
    /// });
    /// ```
    pub fn as_completed(self) -> AsCompleted<'scope, T> {
        let header = self.header();
        header.log_on.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let len = header.len();
        let ready: VecDeque<usize> = (0..len).filter(|&i| self.inner.is_done(i)).collect();
        AsCompleted {
            seen: vec![false; len],
            ready,
            yielded: 0,
            batch: self,
        }
    }

    /// Waits until task `index` finished; on one of the pool's workers,
    /// runs this batch's unclaimed tasks meanwhile.
    fn wait_for(&self, index: usize) {
        engine::wait_on(&*self.inner, Ready::Task(index), None);
    }

    /// Whether `ready()` holds now; if not, `cx`'s waker is stored, to be
    /// woken when the batch completes (or, with `every_task`, whenever a
    /// task completes). Never blocks and never runs a task.
    fn poll_ready(&self, cx: &mut Context<'_>, every_task: bool, ready: impl Fn() -> bool) -> bool {
        let header = self.header();
        if header.pending_deadline().is_some() {
            self.inner.enforce_deadline();
        }
        if ready() {
            return true;
        }
        header.register_waker(cx.waker(), every_task);
        // After the hand-shake in `register_waker`: a completion this
        // misses found the waker.
        if ready() {
            header.clear_waker();
            return true;
        }
        false
    }

    fn poll_complete(&self, cx: &mut Context<'_>) -> bool {
        let header = self.header();
        self.poll_ready(cx, false, || header.is_complete_after_hand_shake())
    }
}

/// `.await` on a [`Batch`] gives what [`get`](Batch::get) gives, without
/// blocking the executor's thread: the pool's worker that finishes the
/// batch wakes the awaiting task. Works on any executor (std's `Waker`
/// only); the future is `Send` and can be polled from one executor, then
/// another.
///
/// ```
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     // A minimal executor: poolscope needs none of its own.
/// #     use std::sync::Arc;
/// #     use std::task::{Context, Poll, Wake, Waker};
/// #     struct Unpark(std::thread::Thread);
/// #     impl Wake for Unpark {
/// #         fn wake(self: Arc<Self>) { self.0.unpark() }
/// #     }
/// #     let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
/// #     let mut f = std::pin::pin!(f);
/// #     loop {
/// #         match f.as_mut().poll(&mut Context::from_waker(&waker)) {
/// #             Poll::Ready(out) => return out,
/// #             Poll::Pending => std::thread::park(),
/// #         }
/// #     }
/// # }
/// let pool = pool_runtime::Pool::new(2).unwrap();
/// let squares = pool.map_async(|x: u64| x * x, 0..4);
/// let got = block_on(async { squares.await });
/// assert_eq!(got.unwrap(), [0, 1, 4, 9]);
/// ```
///
/// Awaiting never runs tasks on the executor's thread, and a batch with a
/// [`deadline`](crate::BatchBuilder::deadline) is cancelled when a worker
/// or a poll next looks at it after the deadline (no timer is involved).
impl<'scope, T> IntoFuture for Batch<'scope, T> {
    type Output = Result<Vec<T>, TaskError>;
    type IntoFuture = BatchFuture<'scope, T>;

    fn into_future(self) -> BatchFuture<'scope, T> {
        BatchFuture { batch: Some(self) }
    }
}

/// The future of an awaited [`Batch`]; see its `IntoFuture`.
///
/// ```
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     // A minimal executor: poolscope needs none of its own.
/// #     use std::task::{Context, Poll, Wake, Waker};
/// #     struct Unpark(std::thread::Thread);
/// #     impl Wake for Unpark {
/// #         fn wake(self: std::sync::Arc<Self>) { self.0.unpark() }
/// #     }
/// #     let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
/// #     let mut f = std::pin::pin!(f);
/// #     loop {
/// #         match f.as_mut().poll(&mut Context::from_waker(&waker)) {
/// #             Poll::Ready(out) => return out,
/// #             Poll::Pending => std::thread::park(),
/// #         }
/// #     }
/// # }
/// use std::future::IntoFuture;
/// use pool_runtime::{BatchFuture, Pool};
///
/// fn checksums(pool: &Pool, files: Vec<Vec<u8>>) -> BatchFuture<'static, u32> {
///     pool.map_async(|f: Vec<u8>| f.iter().map(|&b| u32::from(b)).sum(), files).into_future()
/// }
///
/// let pool = Pool::new(2).unwrap();
/// let sums = block_on(checksums(&pool, vec![vec![1, 2], vec![3]]));
/// assert_eq!(sums.unwrap(), [3, 3]);
/// ```
#[must_use = "futures do nothing unless awaited; the batch runs either way"]
pub struct BatchFuture<'scope, T> {
    batch: Option<Batch<'scope, T>>,
}

impl<T> Future for BatchFuture<'_, T> {
    type Output = Result<Vec<T>, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let batch = self
            .batch
            .as_ref()
            .expect("poolscope: a BatchFuture was polled again after it returned Ready");
        if !batch.poll_complete(cx) {
            return Poll::Pending;
        }
        let batch = self.batch.take().expect("checked above");
        Poll::Ready(batch.get())
    }
}

impl<T> fmt::Debug for BatchFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchFuture")
            .field("batch", &self.batch)
            .finish()
    }
}

impl<U, E> Batch<'_, Result<U, E>> {
    /// For a batch of tasks that return `Result`: waits and returns every
    /// `Ok` value in submission order, or the first failure in submission
    /// order with the task's own `Err` (or why the task produced no value:
    /// its panic, a cancel, a broken pool). As with [`get`](Batch::get), a
    /// task cancelled because another failed is never the one reported.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let ports = s.map_async(|text: &str| text.parse::<u16>(), ["80", "443"]);
    ///     assert_eq!(ports.try_get().unwrap(), [80, 443]);
    ///
    ///     let bad = s.batch().name("parse").map_async(|t: &str| t.parse::<u16>(), ["80", "http"]);
    ///     let failure = bad.try_get().unwrap_err();
    ///     assert_eq!((failure.index(), failure.task_name()), (1, Some("parse")));
    ///     assert!(failure.error().is_some(), "the task's own ParseIntError");
    /// });
    /// ```
    pub fn try_get(self) -> Result<Vec<U>, TryGetError<E>> {
        self.wait();
        let mut first_cancelled = None;
        let mut first_failure = None;
        for index in 0..self.len() {
            // SAFETY: a live handle, and the batch is complete (waited above).
            match unsafe { self.inner.peek(index) } {
                Some(Ok(_)) => {}
                Some(Err(_)) => {
                    first_failure = Some(index);
                    break;
                }
                None => match self.inner.failed(index) {
                    Some(error) if error.is_cancelled() => {
                        first_cancelled.get_or_insert(index);
                    }
                    Some(_) => {
                        first_failure = Some(index);
                        break;
                    }
                    None => {}
                },
            }
        }
        if let Some(index) = first_failure.or(first_cancelled) {
            self.header()
                .failure_observed
                .store(true, Ordering::Release);
            // SAFETY: consumed handle, complete batch, the index taken once.
            return Err(match unsafe { self.inner.take(index) } {
                Ok(Err(error)) => TryGetError::Returned {
                    index: self.header().first_index + index,
                    name: self.header().name.clone(),
                    error,
                },
                Ok(Ok(_)) => unreachable!("the failure found above holds an Err"),
                Err(error) => TryGetError::Task(error),
            });
        }
        let mut values = Vec::with_capacity(self.len());
        for index in 0..self.len() {
            // SAFETY: as above; each index taken once.
            match unsafe { self.inner.take(index) } {
                Ok(Ok(value)) => values.push(value),
                Ok(Err(_)) | Err(_) => unreachable!("no failure was found above"),
            }
        }
        Ok(values)
    }
}

impl<'scope, T> IntoIterator for Batch<'scope, T> {
    type Item = Result<T, TaskError>;
    type IntoIter = Results<'scope, T>;

    fn into_iter(self) -> Results<'scope, T> {
        self.results()
    }
}

/// The results of a batch in submission order, from [`Batch::results`].
///
/// ```
/// pool_runtime::scope(|s| {
///     let mut results = s.map_async(|x: u32| 10 / x, [5, 0, 2]).results();
///     assert_eq!(results.next().unwrap().unwrap(), 2);
///     assert!(results.next().unwrap().is_err()); // the division by zero panicked
///     assert_eq!(results.next().unwrap().unwrap(), 5);
///     assert!(results.next().is_none());
/// });
/// ```
pub struct Results<'scope, T> {
    batch: Batch<'scope, T>,
    next: usize,
}

impl<'scope, T> Results<'scope, T> {
    /// The batch being read (for progress or cancel).
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let mut results = s.map_async(|x: u64| x * x, 0..100).results();
    ///     assert_eq!(results.next().unwrap().unwrap(), 0);
    ///     let progress = results.batch();
    ///     assert!(progress.completed() >= 1 && progress.len() == 100);
    /// });
    /// ```
    pub fn batch(&self) -> &Batch<'scope, T> {
        &self.batch
    }
}

impl<T> Results<'_, T> {
    /// Hands out the next result, whose task finished.
    fn take_next(&mut self) -> Result<T, TaskError> {
        let index = self.next;
        self.next += 1;
        // Counted before the caller sees the result (see `completed`).
        let header = self.batch.header();
        header.handed_out.store(self.next, Ordering::Relaxed);
        // SAFETY: the iterator owns the live handle and visits each index
        // once, after the task finished (the callers waited for it).
        unsafe { self.batch.inner.take(index) }
    }

    /// The next result if its task finished; otherwise `cx`'s waker is
    /// woken when a task of the batch completes. `Ready(None)` at the end.
    /// This is the `poll_next` of an async stream, for adapters (a
    /// `futures::Stream` wrapper is a few lines); most code calls
    /// [`next_async`](Results::next_async).
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     // A minimal executor: poolscope needs none of its own.
    /// #     use std::task::{Context, Poll, Wake, Waker};
    /// #     struct Unpark(std::thread::Thread);
    /// #     impl Wake for Unpark {
    /// #         fn wake(self: std::sync::Arc<Self>) { self.0.unpark() }
    /// #     }
    /// #     let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         match f.as_mut().poll(&mut Context::from_waker(&waker)) {
    /// #             Poll::Ready(out) => return out,
    /// #             Poll::Pending => std::thread::park(),
    /// #         }
    /// #     }
    /// # }
    /// let pool = pool_runtime::Pool::new(2).unwrap();
    /// let mut results = pool.map_async(|x: u32| x + 1, 0..3).results();
    /// // What a `futures::Stream` adapter's `poll_next` forwards to:
    /// let first = block_on(std::future::poll_fn(|cx| results.poll_next(cx)));
    /// assert_eq!(first.unwrap().unwrap(), 1);
    /// ```
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, TaskError>>> {
        if self.next >= self.batch.len() {
            return Poll::Ready(None);
        }
        let (inner, index) = (&self.batch.inner, self.next);
        if !self.batch.poll_ready(cx, true, || inner.is_done(index)) {
            return Poll::Pending;
        }
        Poll::Ready(Some(self.take_next()))
    }

    /// The next result in submission order, awaited (the async form of
    /// `next()`: the executor's thread is never blocked).
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     // A minimal executor: poolscope needs none of its own.
    /// #     use std::task::{Context, Poll, Wake, Waker};
    /// #     struct Unpark(std::thread::Thread);
    /// #     impl Wake for Unpark {
    /// #         fn wake(self: std::sync::Arc<Self>) { self.0.unpark() }
    /// #     }
    /// #     let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         match f.as_mut().poll(&mut Context::from_waker(&waker)) {
    /// #             Poll::Ready(out) => return out,
    /// #             Poll::Pending => std::thread::park(),
    /// #         }
    /// #     }
    /// # }
    /// let pool = pool_runtime::Pool::new(2).unwrap();
    /// let mut results = pool.map_async(|x: u32| x * 3, 0..3).results();
    /// let tripled = block_on(async {
    ///     let mut all = Vec::new();
    ///     while let Some(result) = results.next_async().await {
    ///         all.push(result.unwrap());
    ///     }
    ///     all
    /// });
    /// assert_eq!(tripled, [0, 3, 6]);
    /// ```
    pub async fn next_async(&mut self) -> Option<Result<T, TaskError>> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }
}

impl<T> Iterator for Results<'_, T> {
    type Item = Result<T, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.batch.len() {
            return None;
        }
        self.batch.wait_for(self.next);
        Some(self.take_next())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.batch.len() - self.next;
        (left, Some(left))
    }
}

impl<T> ExactSizeIterator for Results<'_, T> {}

impl<T> fmt::Debug for Results<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Results")
            .field("batch", &self.batch)
            .field("next", &self.next)
            .finish()
    }
}

/// The results of a batch in completion order, with their indices, from
/// [`Batch::as_completed`].
///
/// ```
/// pool_runtime::scope(|s| {
///     let mut finished: Vec<(usize, u32)> = s
///         .map_async(|x: u32| x * 2, 0..4)
///         .as_completed()
///         .map(|(index, result)| (index, result.unwrap()))
///         .collect();
///     finished.sort();
///     assert_eq!(finished, [(0, 0), (1, 2), (2, 4), (3, 6)]);
/// });
/// ```
pub struct AsCompleted<'scope, T> {
    batch: Batch<'scope, T>,
    seen: Vec<bool>,
    ready: VecDeque<usize>,
    yielded: usize,
}

impl<'scope, T> AsCompleted<'scope, T> {
    /// The batch being read (for progress or cancel).
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     // Ask eight mirrors; the first answer is enough.
    ///     let mut answers = s.map_async(|mirror: u32| mirror * 100, 0..8).as_completed();
    ///     let (mirror, answer) = answers.next().unwrap();
    ///     answers.batch().cancel();
    ///     assert_eq!(answer.unwrap(), mirror as u32 * 100);
    /// });
    /// ```
    pub fn batch(&self) -> &Batch<'scope, T> {
        &self.batch
    }

    /// Results not handed out yet.
    pub(crate) fn len_left(&self) -> usize {
        self.batch.len() - self.yielded
    }

    /// The next finished result, without blocking.
    pub(crate) fn try_next(&mut self) -> Option<(usize, Result<T, TaskError>)> {
        loop {
            while let Some(index) = self.ready.pop_front() {
                if std::mem::replace(&mut self.seen[index], true) {
                    continue;
                }
                self.yielded += 1;
                // Counted before the caller sees the result (see `completed`).
                let header = self.batch.header();
                header.handed_out.store(self.yielded, Ordering::Relaxed);
                // SAFETY: the iterator owns the live handle, the index was
                // logged or seen finished, and `seen` makes it taken once.
                return Some((index, unsafe { self.batch.inner.take(index) }));
            }
            if !self.refill() {
                return None;
            }
        }
    }

    /// Waits until a completion is logged or `until`; returns whether one
    /// was (helping on the pool's workers, as every wait does).
    pub(crate) fn wait_logged(&self, until: Option<Instant>) -> bool {
        engine::wait_on(&*self.batch.inner, Ready::Logged, until)
    }

    /// The next finished result, with its index; otherwise `cx`'s waker is
    /// woken when a task of the batch completes. `Ready(None)` at the end.
    /// See [`Results::poll_next`].
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     // A minimal executor: poolscope needs none of its own.
    /// #     use std::task::{Context, Poll, Wake, Waker};
    /// #     struct Unpark(std::thread::Thread);
    /// #     impl Wake for Unpark {
    /// #         fn wake(self: std::sync::Arc<Self>) { self.0.unpark() }
    /// #     }
    /// #     let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         match f.as_mut().poll(&mut Context::from_waker(&waker)) {
    /// #             Poll::Ready(out) => return out,
    /// #             Poll::Pending => std::thread::park(),
    /// #         }
    /// #     }
    /// # }
    /// let pool = pool_runtime::Pool::new(2).unwrap();
    /// let mut finished = pool.map_async(|x: u32| x + 1, [7]).as_completed();
    /// let next = block_on(std::future::poll_fn(|cx| finished.poll_next(cx)));
    /// assert_eq!(next.map(|(index, result)| (index, result.unwrap())), Some((0, 8)));
    /// ```
    pub fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(usize, Result<T, TaskError>)>> {
        loop {
            if self.yielded >= self.batch.len() {
                return Poll::Ready(None);
            }
            if let Some(next) = self.try_next() {
                return Poll::Ready(Some(next));
            }
            let header = self.batch.header();
            if !self
                .batch
                .poll_ready(cx, true, || !lock(&header.log).is_empty())
            {
                return Poll::Pending;
            }
        }
    }

    /// The next result in completion order, awaited.
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     // A minimal executor: poolscope needs none of its own.
    /// #     use std::task::{Context, Poll, Wake, Waker};
    /// #     struct Unpark(std::thread::Thread);
    /// #     impl Wake for Unpark {
    /// #         fn wake(self: std::sync::Arc<Self>) { self.0.unpark() }
    /// #     }
    /// #     let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         match f.as_mut().poll(&mut Context::from_waker(&waker)) {
    /// #             Poll::Ready(out) => return out,
    /// #             Poll::Pending => std::thread::park(),
    /// #         }
    /// #     }
    /// # }
    /// let pool = pool_runtime::Pool::new(2).unwrap();
    /// let mut finished = pool.map_async(|x: u32| x * 2, 0..3).as_completed();
    /// let total = block_on(async {
    ///     let mut total = 0;
    ///     while let Some((_index, result)) = finished.next_async().await {
    ///         total += result.unwrap();
    ///     }
    ///     total
    /// });
    /// assert_eq!(total, 6);
    /// ```
    pub async fn next_async(&mut self) -> Option<(usize, Result<T, TaskError>)> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    fn refill(&mut self) -> bool {
        let mut log = lock(&self.batch.header().log);
        if log.is_empty() {
            return false;
        }
        self.ready.extend(log.drain(..));
        true
    }
}

impl<T> Iterator for AsCompleted<'_, T> {
    type Item = (usize, Result<T, TaskError>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.yielded >= self.batch.len() {
                return None;
            }
            if let Some(next) = self.try_next() {
                return Some(next);
            }
            self.wait_logged(None);
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.batch.len() - self.yielded;
        (left, Some(left))
    }
}

impl<T> fmt::Debug for AsCompleted<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("batch", &self.batch)
            .field("yielded", &self.yielded)
            .finish()
    }
}

impl<T> Drop for Batch<'_, T> {
    fn drop(&mut self) {
        // An awaited handle dropped before it was ready leaves no waker.
        self.header().clear_waker();
        self.header().handle_alive.store(false, Ordering::SeqCst);
        seq_cst_hand_shake();
        if self.header().is_complete_after_hand_shake() {
            self.inner.release();
        }
    }
}

impl<T> fmt::Debug for Batch<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("name", &self.name())
            .field("len", &self.len())
            .field("completed", &self.completed())
            .field("ready", &self.is_ready())
            .finish()
    }
}

/// [`Batch::get_timeout`] did not return results.
///
/// ```
/// use std::time::Duration;
/// use pool_runtime::GetTimeoutError;
///
/// pool_runtime::scope(|s| {
///     let batch = s.map_async(|x: u32| assert!(x != 1, "bad input"), 0..2);
///     match batch.get_timeout(Duration::from_secs(60)) {
///         Ok(_) => unreachable!("task 1 panicked"),
///         Err(GetTimeoutError::Timeout(_still_running)) => panic!("not done after a minute"),
///         Err(GetTimeoutError::Failed(error)) => assert_eq!(error.index(), 1),
///     }
/// });
/// ```
pub enum GetTimeoutError<'scope, T> {
    /// The batch was not ready in time; here it is back, to wait again,
    /// cancel, or drop.
    Timeout(Batch<'scope, T>),
    /// The batch finished, and this task failed (the first in submission order).
    Failed(TaskError),
}

impl<T> fmt::Debug for GetTimeoutError<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetTimeoutError::Timeout(batch) => f.debug_tuple("Timeout").field(batch).finish(),
            GetTimeoutError::Failed(error) => f.debug_tuple("Failed").field(error).finish(),
        }
    }
}

impl<T> fmt::Display for GetTimeoutError<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetTimeoutError::Timeout(batch) => write!(
                f,
                "timed out waiting for a batch: {} of {} tasks finished",
                batch.completed(),
                batch.len()
            ),
            GetTimeoutError::Failed(error) => error.fmt(f),
        }
    }
}

impl<T> std::error::Error for GetTimeoutError<'_, T> {}

/// The handle of a single task (Python's `apply_async`): a [`Batch`] of one
/// whose [`get`](Task::get) returns the one result.
///
/// ```
/// let name = String::from("poolscope");
/// pool_runtime::scope(|s| {
///     let task = s.apply_async(|| name.len());
///     assert_eq!(task.get().unwrap(), 9);
/// });
/// ```
#[must_use = "a task runs whether or not its handle is kept; keep the handle to wait for it or take its result"]
pub struct Task<'scope, T> {
    batch: Batch<'scope, T>,
}

impl<'scope, T> Task<'scope, T> {
    pub(crate) fn new(batch: Batch<'scope, T>) -> Self {
        Task { batch }
    }

    /// Waits until the task finished. See [`Batch::wait`].
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// let saved = AtomicBool::new(false);
    /// pool_runtime::scope(|s| {
    ///     let task = s.apply_async(|| saved.store(true, Ordering::SeqCst));
    ///     task.wait();
    ///     assert!(saved.load(Ordering::SeqCst));
    /// });
    /// ```
    pub fn wait(&self) {
        self.batch.wait()
    }

    /// Waits at most `timeout`; returns whether the task finished. See
    /// [`Batch::wait_timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// pool_runtime::scope(|s| {
    ///     let task = s.apply_async(|| "ab".repeat(2));
    ///     assert!(task.wait_timeout(Duration::from_secs(60)));
    ///     assert_eq!(task.get().unwrap(), "abab");
    /// });
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.batch.wait_timeout(timeout)
    }

    /// Whether the task finished.
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// pool_runtime::scope(|s| {
    ///     let (go, wait) = mpsc::channel::<()>();
    ///     let task = s.apply_async(move || wait.recv().unwrap());
    ///     assert!(!task.is_ready());
    ///     go.send(()).unwrap();
    ///     task.wait();
    ///     assert!(task.is_ready());
    /// });
    /// ```
    pub fn is_ready(&self) -> bool {
        self.batch.is_ready()
    }

    /// `None` while running; then whether the task succeeded.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let task = s.apply_async(|| -> u8 { panic!("disk full") });
    ///     task.wait();
    ///     assert_eq!(task.successful(), Some(false));
    /// });
    /// ```
    pub fn successful(&self) -> Option<bool> {
        self.batch.successful()
    }

    /// Waits and returns the task's result, or why it has none.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let parsed = s.apply_async(|| "42".parse::<u32>());
    ///     assert_eq!(parsed.get().unwrap(), Ok(42));
    ///
    ///     let crashed = s.apply_async(|| -> u32 { panic!("out of memory") });
    ///     assert_eq!(crashed.get().unwrap_err().panic_message(), Some("out of memory"));
    /// });
    /// ```
    pub fn get(self) -> Result<T, TaskError> {
        let mut results = self.batch.get()?;
        Ok(results.pop().expect("a task handle holds exactly one task"))
    }

    /// Like [`get`](Task::get), giving up after `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// pool_runtime::scope(|s| {
    ///     let task = s.apply_async(|| 2 + 2);
    ///     assert_eq!(task.get_timeout(Duration::from_secs(60)).unwrap(), 4);
    /// });
    /// ```
    pub fn get_timeout(self, timeout: Duration) -> Result<T, GetTimeoutError<'scope, T>> {
        let mut results = self.batch.get_timeout(timeout)?;
        Ok(results.pop().expect("a task handle holds exactly one task"))
    }

    /// Keeps the task from starting if it has not; returns whether it did.
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// let pool = pool_runtime::Pool::new(1).unwrap();
    /// pool.scope(|s| {
    ///     let (go, wait) = mpsc::channel::<()>();
    ///     let busy = s.apply_async(move || wait.recv().unwrap()); // holds the only worker
    ///     let later = s.apply_async(|| "never runs");
    ///     assert!(later.cancel());
    ///     go.send(()).unwrap();
    ///     assert!(busy.get().is_ok());
    ///     assert!(later.get().unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn cancel(&self) -> bool {
        self.batch.cancel() == 1
    }

    /// The underlying one-task batch.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let batch = s.apply_async(|| 5).into_batch();
    ///     assert_eq!(batch.len(), 1);
    ///     assert_eq!(batch.get().unwrap(), [5]);
    /// });
    /// ```
    pub fn into_batch(self) -> Batch<'scope, T> {
        self.batch
    }
}

/// `.await` on a [`Task`] gives what [`get`](Task::get) gives; see
/// [`Batch`]'s `IntoFuture`.
///
/// ```
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     use std::sync::Arc;
/// #     use std::task::{Context, Poll, Wake, Waker};
/// #     struct Unpark(std::thread::Thread);
/// #     impl Wake for Unpark {
/// #         fn wake(self: Arc<Self>) { self.0.unpark() }
/// #     }
/// #     let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
/// #     let mut f = std::pin::pin!(f);
/// #     loop {
/// #         match f.as_mut().poll(&mut Context::from_waker(&waker)) {
/// #             Poll::Ready(out) => return out,
/// #             Poll::Pending => std::thread::park(),
/// #         }
/// #     }
/// # }
/// let pool = pool_runtime::Pool::new(1).unwrap();
/// let task = pool.apply_async(|| "done".to_string());
/// assert_eq!(block_on(async { task.await }).unwrap(), "done");
/// ```
impl<'scope, T> IntoFuture for Task<'scope, T> {
    type Output = Result<T, TaskError>;
    type IntoFuture = TaskFuture<'scope, T>;

    fn into_future(self) -> TaskFuture<'scope, T> {
        TaskFuture {
            batch: self.batch.into_future(),
        }
    }
}

/// The future of an awaited [`Task`]; see its `IntoFuture`.
///
/// ```
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     // A minimal executor: poolscope needs none of its own.
/// #     use std::task::{Context, Poll, Wake, Waker};
/// #     struct Unpark(std::thread::Thread);
/// #     impl Wake for Unpark {
/// #         fn wake(self: std::sync::Arc<Self>) { self.0.unpark() }
/// #     }
/// #     let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
/// #     let mut f = std::pin::pin!(f);
/// #     loop {
/// #         match f.as_mut().poll(&mut Context::from_waker(&waker)) {
/// #             Poll::Ready(out) => return out,
/// #             Poll::Pending => std::thread::park(),
/// #         }
/// #     }
/// # }
/// use std::future::IntoFuture;
/// use pool_runtime::{Pool, TaskFuture};
///
/// fn word_count(pool: &Pool, text: String) -> TaskFuture<'static, usize> {
///     pool.apply_async(move || text.split_whitespace().count()).into_future()
/// }
///
/// let pool = Pool::new(1).unwrap();
/// assert_eq!(block_on(word_count(&pool, "to be or not".into())).unwrap(), 4);
/// ```
#[must_use = "futures do nothing unless awaited; the task runs either way"]
pub struct TaskFuture<'scope, T> {
    batch: BatchFuture<'scope, T>,
}

impl<T> Future for TaskFuture<'_, T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.batch).poll(cx).map(|results| {
            Ok(results?
                .pop()
                .expect("a task handle holds exactly one task"))
        })
    }
}

impl<T> fmt::Debug for TaskFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskFuture")
            .field("batch", &self.batch)
            .finish()
    }
}

impl<T> fmt::Debug for Task<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.batch.name())
            .field("ready", &self.is_ready())
            .finish()
    }
}
