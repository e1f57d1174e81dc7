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
pub trait CompletionCallback<T>: Send + Sync {
    /// Whether there is anything to call.
    const PRESENT: bool;
    /// Called with the task's index and outcome.
    fn call(&self, index: usize, outcome: Result<&T, &TaskError>);
}

/// No completion callback (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCallback;

impl<T> CompletionCallback<T> for NoCallback {
    const PRESENT: bool = false;
    fn call(&self, _: usize, _: Result<&T, &TaskError>) {}
}

/// A completion callback closure; see
/// [`BatchBuilder::on_complete`](crate::BatchBuilder::on_complete).
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
