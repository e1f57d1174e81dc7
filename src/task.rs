//! What a `#[pool_task]` function's name stands for: the function, with
//! the options it carries to every batch of its calls.

use std::fmt;
use std::ops::Deref;

use pool_runtime::{Batch, Scope, StarCall, Task};

use crate::__private::{self, TaskOptions};

/// A `#[pool_task]` function together with its options (`name`,
/// `blocking`). The name of a `#[pool_task]` function dereferences to one,
/// which dereferences to the function itself, so `task(args)` still calls
/// it directly; these methods submit it to a scope without `par_batch!`,
/// honouring its options.
///
/// ```
/// use poolscope::{pool_scope, pool_task};
///
/// #[pool_task(name = "area")]
/// fn area(width: u32, height: u32) -> u32 {
///     width * height
/// }
///
/// assert_eq!(area(2, 3), 6);
/// pool_scope!(|pool| {
///     let one = area.spawn(pool, (4, 5));
///     let many = area.starmap(pool, [(1, 1), (2, 2), (3, 3)]);
///     assert_eq!(one.get().unwrap(), 20);
///     assert_eq!(many.name(), Some("area"));
///     assert_eq!(many.get().unwrap(), [1, 4, 9]);
/// });
/// ```
#[derive(Clone, Copy)]
pub struct TaskFn<F> {
    function: F,
    options: TaskOptions,
}

impl<F> TaskFn<F> {
    #[doc(hidden)]
    pub const fn __new(function: F, options: TaskOptions) -> Self {
        TaskFn { function, options }
    }

    /// The name the task's batches carry in errors and panic reports: the
    /// function's name, or the attribute's `name = "..."`.
    pub fn name(&self) -> Option<&'static str> {
        self.options.name
    }

    /// Whether the task's batches run on the pool's blocking lane
    /// (`#[pool_task(blocking)]`).
    pub fn is_blocking(&self) -> bool {
        self.options.blocking
    }

    /// Submits one call, with the arguments as a tuple (Python's
    /// `apply_async(func, args)`): `task.spawn(pool, (a, b))`; a task of one
    /// argument takes a one-element tuple, `task.spawn(pool, (a,))`.
    #[track_caller]
    pub fn spawn<'scope, 'env, A>(
        &self,
        pool: &'scope Scope<'scope, 'env>,
        args: A,
    ) -> Task<'scope, F::Output>
    where
        F: StarCall<A> + Copy + Send + Sync + 'scope,
        A: Send + 'scope,
        F::Output: Send + 'scope,
    {
        let function = self.function;
        __private::builder(pool, &[self.options]).apply_async(move || function.star_call(args))
    }

    /// Submits one call per item, the item being the task's one argument
    /// (Python's `map_async`).
    #[track_caller]
    pub fn map<'scope, 'env, I>(
        &self,
        pool: &'scope Scope<'scope, 'env>,
        items: I,
    ) -> Batch<'scope, F::Output>
    where
        F: StarCall<(I::Item,)> + Copy + Send + Sync + 'scope,
        I: IntoIterator,
        I::Item: Send + 'scope,
        F::Output: Send + 'scope,
    {
        let function = self.function;
        __private::builder(pool, &[self.options])
            .map_async(move |item| function.star_call((item,)), items)
    }

    /// Submits one call per tuple of arguments (Python's `starmap_async`).
    #[track_caller]
    pub fn starmap<'scope, 'env, I>(
        &self,
        pool: &'scope Scope<'scope, 'env>,
        items: I,
    ) -> Batch<'scope, F::Output>
    where
        F: StarCall<I::Item> + Copy + Send + Sync + 'scope,
        I: IntoIterator,
        I::Item: Send + 'scope,
        F::Output: Send + 'scope,
    {
        __private::builder(pool, &[self.options]).starmap_async(self.function, items)
    }
}

impl<F> Deref for TaskFn<F> {
    type Target = F;

    fn deref(&self) -> &F {
        &self.function
    }
}

impl<F> fmt::Debug for TaskFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskFn")
            .field("name", &self.options.name)
            .field("blocking", &self.options.blocking)
            .finish_non_exhaustive()
    }
}
