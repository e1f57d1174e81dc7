//! The checks that what moves between threads can: each a trait with a
//! blanket impl for `Send` (or `Sync`) types and a message in the user's
//! words, called through a trait-qualified path spanned at the user's
//! tokens, so that the error shows there, once, without a note naming a
//! helper of `__private`. The crate root re-exports them (hidden), which
//! lets the compiler's notes name them without the `__private::` path.

use pool_runtime::{Batch, BatchBuilder, Imap, NoCallback, OnComplete, TaskError};

use crate::sent::{Sent, Shared};

/// Checks that a receiver or argument `par_batch!` evaluated may move to a
/// worker: `SentToWorker::sent(value)`, spanned at the user's expression.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent to the worker thread that runs this call",
    label = "evaluated here, on the submitting thread, then moved to a worker thread: `{Self}` is not `Send`",
    note = "par_batch! evaluates each receiver and argument on the submitting thread and moves it to the worker that runs the call; pass a value that is `Send` (an `Arc` instead of an `Rc`, for example)"
)]
pub trait SentToWorker: Sized {
    /// The value, checked.
    fn sent(self) -> Sent<Self>;
}

impl<T: Send> SentToWorker for T {
    #[inline(always)]
    fn sent(self) -> Sent<T> {
        Sent::new(self)
    }
}

/// Checks that a comprehension's callee may be called from several workers
/// at once: `SharedWithWorkers::shared(&callee)`, spanned at the callee.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be called from several worker threads at once",
    label = "every task of the batch calls this, on a worker thread",
    note = "par_batch! shares the callee of `f(x) for x in xs` between the workers that run the calls, so it must be `Sync`"
)]
pub trait SharedWithWorkers: Sized {
    /// The callee, checked.
    fn shared(self) -> Shared<Self>;
}

impl<T: Send + Sync> SharedWithWorkers for T {
    #[inline(always)]
    fn shared(self) -> Shared<T> {
        Shared::new(self)
    }
}

/// `#[pool_task]` checks each argument type with
/// `<Type as TaskArgument>::check()`, spanned at the user's type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument of a #[pool_task] function: it cannot be sent between threads safely",
    label = "a pool task's arguments move to the worker thread that runs it",
    note = "a #[pool_task] function runs on a pool's worker threads; take a type that is `Send` (an `Arc` instead of an `Rc`, for example)"
)]
pub trait TaskArgument {
    /// Compiles only for a `Send` type.
    #[inline(always)]
    fn check() {}
}

impl<T: ?Sized + Send> TaskArgument for T {}

/// `#[pool_task]` checks its return type with
/// `<Type as TaskResult>::check()`, spanned at the user's type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the result of a #[pool_task] function: it cannot be sent between threads safely",
    label = "a pool task's result moves from the worker thread that made it to the thread that takes it",
    note = "a #[pool_task] function runs on a pool's worker threads; return a type that is `Send` (an `Arc` instead of an `Rc`, for example)"
)]
pub trait TaskResult {
    /// Compiles only for a `Send` type.
    #[inline(always)]
    fn check() {}
}

impl<T: ?Sized + Send> TaskResult for T {}

/// Submits a batch whose tasks return `Self`, as `SentBack::submit(..)`
/// (a trait-qualified call, spanned at the user's call), so that a result
/// type that is not `Send` is one error, at the call, in these words.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent back from the worker thread that runs this call",
    label = "this call runs on a worker thread, and its result, `{Self}`, is not `Send`",
    note = "par_batch! hands each call's result from the worker that made it to the thread that takes the results; return a type that is `Send` (an `Arc` instead of an `Rc`, for example)"
)]
pub trait SentBack: Sized {
    /// A block's result, made by `call` (a closure over the user's call,
    /// so that the error spans the call as a whole).
    fn sent_from(call: impl FnOnce() -> Self) -> Sent<Self>;

    /// One task per element of `calls`, each running `task(call)`.
    #[track_caller]
    fn submit<'scope, 'env, A, F>(
        builder: BatchBuilder<'scope, 'env>,
        calls: Vec<A>,
        task: F,
    ) -> Batch<'scope, Self>
    where
        F: Fn(A) -> Self + Send + Sync + 'scope,
        A: Send + 'scope,
        Self: 'scope;

    /// [`submit`](SentBack::submit) with `on_complete = callback`; the
    /// callback comes last so that its argument types are known from
    /// `task` when it is checked.
    #[track_caller]
    fn submit_with_callback<'scope, 'env, A, F, C>(
        builder: BatchBuilder<'scope, 'env>,
        calls: Vec<A>,
        task: F,
        callback: C,
    ) -> Batch<'scope, Self>
    where
        F: Fn(A) -> Self + Send + Sync + 'scope,
        A: Send + 'scope,
        Self: 'scope,
        C: Fn(usize, Result<&Self, &TaskError>) + Send + Sync + 'scope;

    /// [`submit`](SentBack::submit) for `fail_fast`: results for which
    /// `is_failure` holds cancel the rest of the batch, as a panic does.
    #[track_caller]
    fn submit_checked<'scope, 'env, A, F>(
        builder: BatchBuilder<'scope, 'env>,
        calls: Vec<A>,
        task: F,
        is_failure: fn(&Self) -> bool,
    ) -> Batch<'scope, Self>
    where
        F: Fn(A) -> Self + Send + Sync + 'scope,
        A: Send + 'scope,
        Self: 'scope;

    /// [`submit_checked`](SentBack::submit_checked) with
    /// `on_complete = callback`.
    #[track_caller]
    fn submit_checked_with_callback<'scope, 'env, A, F, C>(
        builder: BatchBuilder<'scope, 'env>,
        calls: Vec<A>,
        task: F,
        is_failure: fn(&Self) -> bool,
        callback: C,
    ) -> Batch<'scope, Self>
    where
        F: Fn(A) -> Self + Send + Sync + 'scope,
        A: Send + 'scope,
        Self: 'scope,
        C: Fn(usize, Result<&Self, &TaskError>) + Send + Sync + 'scope;

    /// `par_batch!(pool, in_flight = n, f(x) for x in xs)`: streams results
    /// in order, evaluating the calls' arguments as the stream pulls items.
    fn imap<'scope, 'env, A, F, I>(
        builder: BatchBuilder<'scope, 'env>,
        task: F,
        calls: I,
    ) -> Imap<'scope, 'env, I::IntoIter, F, Self, NoCallback>
    where
        F: Fn(A) -> Self + Send + Sync + 'scope,
        I: IntoIterator<Item = A>,
        A: Send + 'scope,
        Self: 'scope;

    /// [`imap`](SentBack::imap) with `on_complete = callback`.
    fn imap_with_callback<'scope, 'env, A, F, I, C>(
        builder: BatchBuilder<'scope, 'env>,
        task: F,
        calls: I,
        callback: C,
    ) -> Imap<'scope, 'env, I::IntoIter, F, Self, OnComplete<Self, C>>
    where
        F: Fn(A) -> Self + Send + Sync + 'scope,
        I: IntoIterator<Item = A>,
        A: Send + 'scope,
        Self: 'scope,
        C: Fn(usize, Result<&Self, &TaskError>) + Clone + Send + Sync + 'scope;
}

impl<T: Send> SentBack for T {
    #[inline(always)]
    fn sent_from(call: impl FnOnce() -> T) -> Sent<T> {
        Sent::new(call())
    }

    #[track_caller]
    fn submit<'scope, 'env, A, F>(
        builder: BatchBuilder<'scope, 'env>,
        calls: Vec<A>,
        task: F,
    ) -> Batch<'scope, T>
    where
        F: Fn(A) -> T + Send + Sync + 'scope,
        A: Send + 'scope,
        T: 'scope,
    {
        builder.map_async(task, calls)
    }

    #[track_caller]
    fn submit_with_callback<'scope, 'env, A, F, C>(
        builder: BatchBuilder<'scope, 'env>,
        calls: Vec<A>,
        task: F,
        callback: C,
    ) -> Batch<'scope, T>
    where
        F: Fn(A) -> T + Send + Sync + 'scope,
        A: Send + 'scope,
        T: 'scope,
        C: Fn(usize, Result<&T, &TaskError>) + Send + Sync + 'scope,
    {
        builder.on_complete(callback).map_async(task, calls)
    }

    #[track_caller]
    fn submit_checked<'scope, 'env, A, F>(
        builder: BatchBuilder<'scope, 'env>,
        calls: Vec<A>,
        task: F,
        is_failure: fn(&T) -> bool,
    ) -> Batch<'scope, T>
    where
        F: Fn(A) -> T + Send + Sync + 'scope,
        A: Send + 'scope,
        T: 'scope,
    {
        builder.map_async_with_failure(task, calls, is_failure)
    }

    #[track_caller]
    fn submit_checked_with_callback<'scope, 'env, A, F, C>(
        builder: BatchBuilder<'scope, 'env>,
        calls: Vec<A>,
        task: F,
        is_failure: fn(&T) -> bool,
        callback: C,
    ) -> Batch<'scope, T>
    where
        F: Fn(A) -> T + Send + Sync + 'scope,
        A: Send + 'scope,
        T: 'scope,
        C: Fn(usize, Result<&T, &TaskError>) + Send + Sync + 'scope,
    {
        builder
            .on_complete(callback)
            .map_async_with_failure(task, calls, is_failure)
    }

    fn imap<'scope, 'env, A, F, I>(
        builder: BatchBuilder<'scope, 'env>,
        task: F,
        calls: I,
    ) -> Imap<'scope, 'env, I::IntoIter, F, T, NoCallback>
    where
        F: Fn(A) -> T + Send + Sync + 'scope,
        I: IntoIterator<Item = A>,
        A: Send + 'scope,
        T: 'scope,
    {
        builder.imap(task, calls)
    }

    fn imap_with_callback<'scope, 'env, A, F, I, C>(
        builder: BatchBuilder<'scope, 'env>,
        task: F,
        calls: I,
        callback: C,
    ) -> Imap<'scope, 'env, I::IntoIter, F, T, OnComplete<T, C>>
    where
        F: Fn(A) -> T + Send + Sync + 'scope,
        I: IntoIterator<Item = A>,
        A: Send + 'scope,
        T: 'scope,
        C: Fn(usize, Result<&T, &TaskError>) + Clone + Send + Sync + 'scope,
    {
        builder.on_complete(callback).imap(task, calls)
    }
}
