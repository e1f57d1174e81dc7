//! The handle of `par_batch!`'s block form: a fork-join of unlike tasks
//! whose results come back as a tuple.

use std::fmt;
use std::time::Duration;

use pool_runtime::{Batch, GetTimeoutError, TaskError};

use crate::sent::Sent;

/// The handle of a block of unlike calls, `par_batch!(pool, { f(x); g(y); })`:
/// one task per call, run as **one batch**, whose [`get`](TupleBatch::get)
/// returns a tuple of their results in statement order.
///
/// It has the methods of [`Batch`] that make sense for a tuple: waiting,
/// progress, cancelling, failures. `R` is the tuple of results, so the handle
/// can be named, for instance `TupleBatch<'scope, (usize, String)>`.
///
/// ```
/// use poolscope::{par_batch, pool_scope, TupleBatch};
///
/// fn count(words: &[&str]) -> usize {
///     words.len()
/// }
///
/// let words = ["fork", "join"];
/// let (n, joined, upper) = pool_scope!(|pool| {
///     let block: TupleBatch<'_, (usize, String, String)> =
///         par_batch!(pool, { count(&words); words.join("-"); str::to_uppercase(words[0]); });
///     block.get()
/// })
/// .unwrap();
/// assert_eq!((n, joined.as_str(), upper.as_str()), (2, "fork-join", "FORK"));
/// ```
///
/// # How the calls are stored
///
/// The calls of a block have different types, so the batch cannot hold
/// them as they are. `par_batch!` generates one enum per block with a
/// variant per call, holding that call's evaluated arguments, and the task
/// is a `match` on it; results come back as one variant each of an enum of
/// the block's arity. This keeps a block to one allocation for its calls,
/// like any batch, with no boxed closure per call.
#[must_use = "a batch runs whether or not its handle is kept; keep the handle to wait for it, take its results or see its failures"]
pub struct TupleBatch<'scope, R: TupleResults> {
    batch: Batch<'scope, R::Slots>,
}

impl<'scope, R: TupleResults> TupleBatch<'scope, R> {
    pub(crate) fn new(batch: Batch<'scope, R::Slots>) -> Self {
        TupleBatch { batch }
    }

    /// Waits until every call finished (ran, panicked or was cancelled).
    /// See [`Batch::wait`].
    ///
    /// ```
    /// use poolscope::{par_batch, pool_scope};
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let written = AtomicUsize::new(0);
    /// let write = |n: usize| written.fetch_add(n, Ordering::SeqCst);
    /// pool_scope!(|pool| {
    ///     let both = par_batch!(pool, { write(1); str::len("index") });
    ///     both.wait();
    ///     assert_eq!(written.load(Ordering::SeqCst), 1);
    /// });
    /// ```
    pub fn wait(&self) {
        self.batch.wait()
    }

    /// Waits at most `timeout`; returns whether every call finished. See
    /// [`Batch::wait_timeout`] (inside a worker, the wait may overrun by the
    /// call it is running).
    ///
    /// ```
    /// use poolscope::{par_batch, pool_scope};
    /// use std::time::Duration;
    ///
    /// pool_scope!(|pool| {
    ///     let both = par_batch!(pool, { u64::pow(2, 10); str::to_uppercase("done") });
    ///     assert!(both.wait_timeout(Duration::from_secs(60)));
    /// });
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.batch.wait_timeout(timeout)
    }

    /// Whether every call finished.
    ///
    /// ```
    /// use poolscope::{par_batch, pool_scope};
    ///
    /// pool_scope!(|pool| {
    ///     let both = par_batch!(pool, { u64::pow(3, 4); str::len("abc") });
    ///     while !both.is_ready() {
    ///         std::thread::yield_now();
    ///     }
    ///     assert_eq!(both.get().unwrap(), (81, 3));
    /// });
    /// ```
    pub fn is_ready(&self) -> bool {
        self.batch.is_ready()
    }

    /// `None` while not ready; then whether every call succeeded. See
    /// [`Batch::successful`].
    ///
    /// ```
    /// use poolscope::{par_batch, pool_scope};
    ///
    /// fn check(x: i32) -> i32 {
    ///     assert!(x >= 0, "negative input");
    ///     x
    /// }
    ///
    /// pool_scope!(|pool| {
    ///     let block = par_batch!(pool, { check(1); str::len("ok") });
    ///     block.wait();
    ///     assert_eq!(block.successful(), Some(true));
    ///     let failing = par_batch!(pool, { check(-1); str::len("ok") });
    ///     failing.wait();
    ///     assert_eq!(failing.successful(), Some(false));
    /// });
    /// ```
    pub fn successful(&self) -> Option<bool> {
        self.batch.successful()
    }

    /// Waits and returns the tuple of results in statement order, or the
    /// first failure in statement order (its [`TaskError::index`] is the
    /// statement's position, from 0).
    ///
    /// ```
    /// use poolscope::{par_batch, pool_scope};
    ///
    /// fn load_user(id: u32) -> String {
    ///     format!("user {id}")
    /// }
    /// fn count_orders(id: u32) -> usize {
    ///     id as usize * 2
    /// }
    ///
    /// let both = pool_scope!(|pool| par_batch!(pool, { load_user(7); count_orders(7) }).get());
    /// let (user, orders) = both.unwrap();
    /// assert_eq!((user.as_str(), orders), ("user 7", 14));
    /// ```
    pub fn get(self) -> Result<R, TaskError> {
        self.batch.get().map(R::from_slots)
    }

    /// Like [`get`](TupleBatch::get), giving up after `timeout` and handing
    /// the handle back in [`TupleTimeoutError::Timeout`].
    ///
    /// ```
    /// use poolscope::{par_batch, pool_scope};
    /// use std::time::Duration;
    ///
    /// pool_scope!(|pool| {
    ///     let both = par_batch!(pool, { u8::checked_add(200, 100); str::len("ab") });
    ///     assert_eq!(both.get_timeout(Duration::from_secs(60)).unwrap(), (None, 2));
    /// });
    /// ```
    pub fn get_timeout(self, timeout: Duration) -> Result<R, TupleTimeoutError<'scope, R>> {
        match self.batch.get_timeout(timeout) {
            Ok(slots) => Ok(R::from_slots(slots)),
            Err(GetTimeoutError::Timeout(batch)) => {
                Err(TupleTimeoutError::Timeout(TupleBatch { batch }))
            }
            Err(GetTimeoutError::Failed(error)) => Err(TupleTimeoutError::Failed(error)),
        }
    }

    /// Every failed call, in statement order, once ready. See
    /// [`Batch::failures`].
    ///
    /// ```
    /// use poolscope::{par_batch, pool_scope};
    ///
    /// fn parse(text: &str) -> u32 {
    ///     text.parse().expect("not a number")
    /// }
    ///
    /// pool_scope!(|pool| {
    ///     let block = par_batch!(pool, { parse("1"); parse("x"); str::len("y") });
    ///     block.wait();
    ///     let failed: Vec<usize> = block.failures().iter().map(|e| e.index()).collect();
    ///     assert_eq!(failed, [1]); // the second statement
    /// });
    /// ```
    pub fn failures(&self) -> Vec<TaskError> {
        self.batch.failures()
    }

    /// The number of calls in the block.
    ///
    /// ```
    /// use poolscope::{par_batch, pool_scope};
    ///
    /// pool_scope!(|pool| {
    ///     let block = par_batch!(pool, { u32::pow(2, 2); str::len("a"); char::is_numeric('b') });
    ///     assert_eq!(block.len(), 3);
    /// });
    /// ```
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    /// Always `false`: a block holds at least one call.
    ///
    /// ```
    /// use poolscope::{par_batch, pool_scope};
    ///
    /// pool_scope!(|pool| {
    ///     let block = par_batch!(pool, { u32::pow(2, 2); str::len("a") });
    ///     assert!(!block.is_empty());
    /// });
    /// ```
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// How many calls have finished so far.
    ///
    /// ```
    /// use poolscope::{par_batch, pool_scope};
    ///
    /// pool_scope!(|pool| {
    ///     let block = par_batch!(pool, { u32::pow(2, 2); str::len("a") });
    ///     block.wait();
    ///     assert_eq!(block.completed(), block.len());
    /// });
    /// ```
    pub fn completed(&self) -> usize {
        self.batch.completed()
    }

    /// Keeps every call that has not started from starting; returns how many
    /// were cancelled. See [`Batch::cancel`].
    ///
    /// ```
    /// use poolscope::{par_batch, pool_scope};
    /// use std::sync::mpsc;
    ///
    /// let (go, wait) = mpsc::channel::<()>();
    /// pool_scope!(threads = 1, |pool| {
    ///     let busy = pool.apply_async(move || wait.recv().unwrap()); // holds the only worker
    ///     let block = par_batch!(pool, { u32::pow(2, 2); str::len("a") });
    ///     assert_eq!(block.cancel(), 2); // neither had started
    ///     go.send(()).unwrap();
    ///     assert!(busy.get().is_ok());
    ///     assert!(block.get().unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn cancel(&self) -> usize {
        self.batch.cancel()
    }

    /// Whether [`cancel`](TupleBatch::cancel) was called (or the scope was
    /// terminated).
    ///
    /// ```
    /// use poolscope::{par_batch, pool_scope};
    ///
    /// pool_scope!(|pool| {
    ///     let block = par_batch!(pool, { u32::pow(2, 2); str::len("a") });
    ///     assert!(!block.is_cancelled());
    ///     block.cancel();
    ///     assert!(block.is_cancelled());
    /// });
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.batch.is_cancelled()
    }

    /// The name the block's tasks carry in errors, if any.
    ///
    /// ```
    /// use poolscope::{par_batch, pool_scope};
    ///
    /// pool_scope!(|pool| {
    ///     let block = par_batch!(pool, name = "load page", { u32::pow(2, 2); str::len("a") });
    ///     assert_eq!(block.name(), Some("load page"));
    /// });
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.batch.name()
    }
}

/// `.await` on a [`TupleBatch`] gives what [`get`](TupleBatch::get) gives,
/// without blocking the executor's thread (see [`Batch`]'s `IntoFuture`).
///
/// ```
/// use poolscope::{par_batch, pool_scope};
///
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let (len, doubled) = pool_scope!(|pool| {
///     let both = par_batch!(pool, { str::len("four"); u32::wrapping_mul(21, 2) });
///     runtime.block_on(async { both.await })
/// })
/// .unwrap();
/// assert_eq!((len, doubled), (4, 42));
/// ```
impl<'scope, R: TupleResults> std::future::IntoFuture for TupleBatch<'scope, R> {
    type Output = Result<R, TaskError>;
    type IntoFuture = TupleFuture<'scope, R>;

    fn into_future(self) -> TupleFuture<'scope, R> {
        TupleFuture {
            batch: self.batch.into_future(),
        }
    }
}

/// The future of an awaited [`TupleBatch`].
///
/// ```
/// use poolscope::{par_batch, pool_scope, TupleFuture};
/// use std::future::IntoFuture;
///
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let (pages, total) = pool_scope!(|pool| {
///     let future: TupleFuture<'_, (usize, u64)> =
///         par_batch!(pool, { str::len("three pages"); u64::pow(2, 5) }).into_future();
///     runtime.block_on(future)
/// })
/// .unwrap();
/// assert_eq!((pages, total), (11, 32));
/// ```
#[must_use = "futures do nothing unless awaited; the calls run either way"]
pub struct TupleFuture<'scope, R: TupleResults> {
    batch: pool_runtime::BatchFuture<'scope, R::Slots>,
}

impl<R: TupleResults> std::future::Future for TupleFuture<'_, R> {
    type Output = Result<R, TaskError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.batch)
            .poll(cx)
            .map(|slots| slots.map(R::from_slots))
    }
}

impl<R: TupleResults> fmt::Debug for TupleFuture<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TupleFuture").finish_non_exhaustive()
    }
}

impl<R: TupleResults> fmt::Debug for TupleBatch<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TupleBatch")
            .field("name", &self.name())
            .field("len", &self.len())
            .field("completed", &self.completed())
            .field("ready", &self.is_ready())
            .finish()
    }
}

/// [`TupleBatch::get_timeout`] did not return results.
///
/// ```
/// use poolscope::{par_batch, pool_scope, TupleTimeoutError};
/// use std::time::Duration;
///
/// fn check(x: i32) -> i32 {
///     assert!(x >= 0, "negative input");
///     x
/// }
///
/// pool_scope!(|pool| {
///     let block = par_batch!(pool, { check(-1); str::len("ok") });
///     match block.get_timeout(Duration::from_secs(60)) {
///         Ok(_) => unreachable!("the first call panicked"),
///         Err(TupleTimeoutError::Timeout(_still_running)) => panic!("not done after a minute"),
///         Err(TupleTimeoutError::Failed(error)) => assert_eq!(error.index(), 0),
///     }
/// });
/// ```
pub enum TupleTimeoutError<'scope, R: TupleResults> {
    /// The block was not ready in time; here is its handle back.
    Timeout(TupleBatch<'scope, R>),
    /// The block finished, and this call failed (the first in statement
    /// order).
    Failed(TaskError),
}

impl<R: TupleResults> fmt::Debug for TupleTimeoutError<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TupleTimeoutError::Timeout(block) => f.debug_tuple("Timeout").field(block).finish(),
            TupleTimeoutError::Failed(error) => f.debug_tuple("Failed").field(error).finish(),
        }
    }
}

impl<R: TupleResults> fmt::Display for TupleTimeoutError<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TupleTimeoutError::Timeout(block) => write!(
                f,
                "timed out waiting for a block of calls: {} of {} finished",
                block.completed(),
                block.len()
            ),
            TupleTimeoutError::Failed(error) => error.fmt(f),
        }
    }
}

impl<R: TupleResults> std::error::Error for TupleTimeoutError<'_, R> {}

mod sealed {
    pub trait Sealed {}
}

/// A tuple that [`TupleBatch::get`] can return: implemented for tuples of 1
/// to 12 elements, the most calls a block may hold.
///
/// ```
/// use poolscope::{par_batch, pool_scope, Scope, TupleBatch, TupleResults};
///
/// // A helper that hands back any block's handle, whatever its tuple.
/// fn started<'scope, R: TupleResults>(block: TupleBatch<'scope, R>) -> TupleBatch<'scope, R> {
///     println!("{} calls started", block.len());
///     block
/// }
///
/// fn user_name(id: u32) -> String {
///     format!("user {id}")
/// }
///
/// fn profile<'s>(pool: &'s Scope<'s, '_>, id: u32) -> (String, u32) {
///     started(par_batch!(pool, { user_name(id); u32::pow(id, 2) })).get().unwrap()
/// }
///
/// let got = pool_scope!(|pool| profile(pool, 7));
/// assert_eq!(got, ("user 7".to_string(), 49));
/// ```
pub trait TupleResults: sealed::Sealed + Sized {
    /// What one task of the batch returns: one of the tuple's elements,
    /// tagged with its position.
    type Slots: Send;

    /// Puts the tasks' results, in statement order, back into a tuple.
    #[doc(hidden)]
    fn from_slots(slots: Vec<Self::Slots>) -> Self;
}

/// The result of one call of a block, tagged with its position; the other
/// direction of [`TupleResults`].
#[doc(hidden)]
pub trait Slot: Sized {
    type Tuple: TupleResults<Slots = Self>;
}

macro_rules! tuple_slots {
    ($slots:ident: $($ty:ident $variant:ident),+) => {
        /// Each result was checked to be `Send` where the call was written
        /// (`SentBack::sent_from`), so the slots are `Send` whatever the types.
        #[doc(hidden)]
        #[derive(Debug)]
        pub enum $slots<$($ty),+> {
            $($variant(Sent<$ty>)),+
        }

        impl<$($ty),+> sealed::Sealed for ($($ty,)+) {}

        impl<$($ty),+> TupleResults for ($($ty,)+) {
            type Slots = $slots<$($ty),+>;

            fn from_slots(slots: Vec<Self::Slots>) -> Self {
                let mut slots = slots.into_iter();
                ($(
                    match slots.next() {
                        Some($slots::$variant(value)) => value.into_inner(),
                        _ => unreachable!("a block's results come back one per call, in order"),
                    },
                )+)
            }
        }

        impl<$($ty),+> Slot for $slots<$($ty),+> {
            type Tuple = ($($ty,)+);
        }
    };
}

tuple_slots!(Slots1: A V0);
tuple_slots!(Slots2: A V0, B V1);
tuple_slots!(Slots3: A V0, B V1, C V2);
tuple_slots!(Slots4: A V0, B V1, C V2, D V3);
tuple_slots!(Slots5: A V0, B V1, C V2, D V3, E V4);
tuple_slots!(Slots6: A V0, B V1, C V2, D V3, E V4, F V5);
tuple_slots!(Slots7: A V0, B V1, C V2, D V3, E V4, F V5, G V6);
tuple_slots!(Slots8: A V0, B V1, C V2, D V3, E V4, F V5, G V6, H V7);
tuple_slots!(Slots9: A V0, B V1, C V2, D V3, E V4, F V5, G V6, H V7, I V8);
tuple_slots!(Slots10: A V0, B V1, C V2, D V3, E V4, F V5, G V6, H V7, I V8, J V9);
tuple_slots!(Slots11: A V0, B V1, C V2, D V3, E V4, F V5, G V6, H V7, I V8, J V9, K V10);
tuple_slots!(Slots12: A V0, B V1, C V2, D V3, E V4, F V5, G V6, H V7, I V8, J V9, K V10, L V11);
