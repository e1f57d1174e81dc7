//! What a batch is submitted with: its options and its completion
//! callback.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use crate::error::TaskError;
use crate::primitive::Instant;

/// What runs when a task of a batch finishes; set with
/// [`BatchBuilder::on_complete`](crate::BatchBuilder::on_complete).
///
/// Implemented by [`NoCallback`] and by the [`OnComplete`] wrapper of a
/// closure `Fn(usize, Result<&T, &TaskError>)`.
///
/// A bound for helpers that take a [`BatchBuilder`](crate::BatchBuilder)
/// with or without a callback:
///
/// ```
/// use pool_runtime::{Batch, BatchBuilder, CompletionCallback};
///
/// fn checksums<'scope, C>(
///     builder: BatchBuilder<'scope, '_, C>,
///     files: &'scope [Vec<u8>],
/// ) -> Batch<'scope, u32>
/// where
///     C: CompletionCallback<u32> + 'scope,
/// {
///     builder.map_async(|f: &Vec<u8>| f.iter().map(|&b| u32::from(b)).sum(), files)
/// }
///
/// let files = vec![vec![1, 2], vec![3]];
/// pool_runtime::scope(|s| {
///     assert_eq!(checksums(s.batch(), &files).get().unwrap(), [3, 3]);
///     let logged = s.batch().on_complete(|i, _: Result<&u32, _>| println!("file {i} done"));
///     assert_eq!(checksums(logged, &files).get().unwrap(), [3, 3]);
/// });
/// ```
pub trait CompletionCallback<T>: Send + Sync {
    /// Whether there is anything to call.
    ///
    /// ```
    /// use pool_runtime::{CompletionCallback, NoCallback};
    ///
    /// assert!(!<NoCallback as CompletionCallback<u32>>::PRESENT);
    /// ```
    const PRESENT: bool;
    /// Called with the task's index and outcome.
    ///
    /// ```
    /// use pool_runtime::{CompletionCallback, NoCallback};
    ///
    /// fn report<C: CompletionCallback<u32>>(callback: &C, index: usize, value: u32) {
    ///     callback.call(index, Ok(&value));
    /// }
    /// report(&NoCallback, 0, 42); // does nothing
    /// ```
    fn call(&self, index: usize, outcome: Result<&T, &TaskError>);
}

/// No completion callback (the default).
///
/// ```
/// use pool_runtime::{BatchBuilder, NoCallback};
///
/// pool_runtime::scope(|s| {
///     // A builder without a callback; what `s.batch()` gives.
///     let builder: BatchBuilder<'_, '_, NoCallback> = s.batch().name("plain");
///     assert_eq!(builder.map_async(|x: u8| x, [1]).get().unwrap(), [1]);
/// });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCallback;

impl<T> CompletionCallback<T> for NoCallback {
    const PRESENT: bool = false;
    fn call(&self, _: usize, _: Result<&T, &TaskError>) {}
}

/// A completion callback closure; see
/// [`BatchBuilder::on_complete`](crate::BatchBuilder::on_complete).
///
/// ```
/// use pool_runtime::{BatchBuilder, OnComplete};
///
/// pool_runtime::scope(|s| {
///     let builder: BatchBuilder<'_, '_, OnComplete<u8, _>> =
///         s.batch().on_complete(|index, _outcome| println!("task {index} finished"));
///     assert_eq!(builder.map_async(|x: u8| x + 1, [1, 2]).get().unwrap(), [2, 3]);
/// });
/// ```
pub struct OnComplete<T, F> {
    callback: F,
    _result: PhantomData<fn(&T)>,
}

impl<T, F> OnComplete<T, F> {
    pub(crate) fn new(callback: F) -> Self {
        OnComplete {
            callback,
            _result: PhantomData,
        }
    }
}

impl<T, F: Clone> Clone for OnComplete<T, F> {
    fn clone(&self) -> Self {
        OnComplete::new(self.callback.clone())
    }
}

impl<T, F> fmt::Debug for OnComplete<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnComplete(..)")
    }
}

impl<T, F> CompletionCallback<T> for OnComplete<T, F>
where
    F: Fn(usize, Result<&T, &TaskError>) + Send + Sync,
{
    const PRESENT: bool = true;
    fn call(&self, index: usize, outcome: Result<&T, &TaskError>) {
        (self.callback)(index, outcome)
    }
}

/// Per-batch options, set through [`BatchBuilder`](crate::BatchBuilder).
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub(crate) name: Option<Cow<'static, str>>,
    pub(crate) blocking: bool,
    pub(crate) chunk: Option<usize>,
    pub(crate) fail_fast: bool,
    pub(crate) in_flight: Option<usize>,
    /// When unstarted tasks are cancelled and running ones told to stop.
    pub(crate) deadline: Option<Instant>,
    /// The index of the batch's first task in what the user submitted: 0,
    /// except for the batches a stream cuts its input into.
    pub(crate) first_index: usize,
}
