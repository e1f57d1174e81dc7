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
    pub fn wait(&self) {
        self.batch.wait()
    }

    /// Waits at most `timeout`; returns whether every call finished. See
    /// [`Batch::wait_timeout`] (inside a worker, the wait may overrun by the
    /// call it is running).
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.batch.wait_timeout(timeout)
    }

    /// Whether every call finished.
    pub fn is_ready(&self) -> bool {
        self.batch.is_ready()
    }

    /// `None` while not ready; then whether every call succeeded. See
    /// [`Batch::successful`].
    pub fn successful(&self) -> Option<bool> {
        self.batch.successful()
    }

    /// Waits and returns the tuple of results in statement order, or the
    /// first failure in statement order (its [`TaskError::index`] is the
    /// statement's position, from 0).
    pub fn get(self) -> Result<R, TaskError> {
        self.batch.get().map(R::from_slots)
    }

    /// Like [`get`](TupleBatch::get), giving up after `timeout` and handing
    /// the handle back in [`TupleTimeoutError::Timeout`].
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
    pub fn failures(&self) -> Vec<TaskError> {
        self.batch.failures()
    }

    /// The number of calls in the block.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    /// Always `false`: a block holds at least one call.
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// How many calls have finished so far.
    pub fn completed(&self) -> usize {
        self.batch.completed()
    }

    /// Keeps every call that has not started from starting; returns how many
    /// were cancelled. See [`Batch::cancel`].
    pub fn cancel(&self) -> usize {
        self.batch.cancel()
    }

    /// Whether [`cancel`](TupleBatch::cancel) was called (or the scope was
    /// terminated).
    pub fn is_cancelled(&self) -> bool {
        self.batch.is_cancelled()
    }

    /// The name the block's tasks carry in errors, if any.
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
