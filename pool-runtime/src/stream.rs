//! Lazily fed streams of results: `imap` and `imap_unordered` with a bound
//! on the inputs in flight (backpressure).
//!
//! A stream pulls a few inputs at a time from its iterator and submits them
//! as a small batch, keeping at most `in_flight` inputs pulled and not yet
//! handed back as results. Results are read from those batches as they
//! finish.

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::error::TaskError;
use crate::handle::{AsCompleted, Batch, Results};
use crate::options::NoCallback;
use crate::options::{CompletionCallback, Options};
use crate::primitive::{Arc, Instant};
use crate::scope::{BatchBuilder, Scope, Target};

/// How the window of a stream is cut into batches.
struct Window {
    /// Inputs pulled and not yet handed back.
    in_flight: usize,
    bound: usize,
    per_batch: usize,
    /// Index of the next input to pull.
    pulled: usize,
    exhausted: bool,
    /// The panic of the input iterator, resumed on the consumer's thread
    /// once every result before it was handed out (as Python raises the
    /// iterable's exception in its place).
    input_panic: Option<Box<dyn Any + Send>>,
}

impl Window {
    fn new(options: &Options, threads: usize) -> Window {
        let bound = options.in_flight.unwrap_or((4 * threads).max(16));
        Window {
            in_flight: 0,
            bound,
            per_batch: (bound / (2 * threads.max(1))).max(1),
            pulled: 0,
            exhausted: false,
            input_panic: None,
        }
    }

    /// Pulls the next group of inputs, if the bound allows; returns them with
    /// the index of the first.
    fn pull<It: Iterator>(&mut self, input: &mut It) -> Option<(usize, Vec<It::Item>)> {
        // Refill in runs: a whole group at a time once that much of the
        // window is free, not one input per result handed back (which
        // would submit one-task batches and wake a worker per item).
        let free = self.bound - self.in_flight;
        if self.exhausted || free == 0 || (free < self.per_batch && self.in_flight > 0) {
            return None;
        }
        let take = self.per_batch.min(free);
        let mut items: Vec<It::Item> = Vec::with_capacity(take);
        while items.len() < take {
            // The iterator is the user's code: a panic in it is kept for its
            // place in the stream, after the inputs pulled before it.
            match catch_unwind(AssertUnwindSafe(|| input.next())) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => {
                    self.exhausted = true;
                    break;
                }
                Err(payload) => {
                    self.exhausted = true;
                    self.input_panic = Some(payload);
                    break;
                }
            }
        }
        if items.is_empty() {
            return None;
        }
        let first = self.pulled;
        self.pulled += items.len();
        self.in_flight += items.len();
        Some((first, items))
    }
}

/// What both streams share: the input, the window over it, and what each
/// window batch is submitted with.
struct Feed<'scope, 'env, It, F, C> {
    target: Target<'scope>,
    env: PhantomData<&'env mut &'env ()>,
    options: Options,
    callback: C,
    task: Arc<F>,
    input: It,
    window: Window,
}

impl<'scope, 'env, It, F, C> Feed<'scope, 'env, It, F, C>
where
    It: Iterator,
    It::Item: Send + 'scope,
{
    fn new(target: Target<'scope>, options: Options, callback: C, task: F, input: It) -> Self {
        let window = Window::new(&options, target.threads());
        Feed {
            target,
            env: PhantomData,
            options,
            callback,
            task: Arc::new(task),
            input,
            window,
        }
    }

    /// Pulls the next group of inputs, if the bound allows, and submits it
    /// as a batch; returns it with the index of its first input.
    fn submit_next<T>(&mut self) -> Option<(usize, Batch<'scope, T>)>
    where
        F: Fn(It::Item) -> T + Send + Sync + 'scope,
        T: Send + 'scope,
        C: CompletionCallback<T> + Clone + 'scope,
    {
        let (first, items) = self.window.pull(&mut self.input)?;
        let batch =
            self.target
                .submit_window(&self.options, &self.callback, &self.task, first, items);
        Some((first, batch))
    }

    /// At the end of the results: resumes the input iterator's panic, if it
    /// panicked; the stream is over either way.
    fn end(&mut self) {
        if let Some(payload) = self.window.input_panic.take() {
            resume_unwind(payload);
        }
    }

    /// Stops pulling input and cancels what has not started of `in_flight`;
    /// returns how many tasks that cancelled.
    fn stop<'b, T: 'b>(&mut self, in_flight: impl Iterator<Item = &'b Batch<'scope, T>>) -> usize
    where
        'scope: 'b,
    {
        self.window.exhausted = true;
        in_flight.map(Batch::cancel).sum()
    }

    /// With fail-fast, a failure cancels its own batch; the stream then
    /// stops as a whole rather than pull input for ever. Whether that is
    /// now due, given the batches in flight.
    fn failed_fast<'b, T: 'b>(
        &self,
        mut in_flight: impl Iterator<Item = &'b Batch<'scope, T>>,
    ) -> bool
    where
        'scope: 'b,
    {
        self.options.fail_fast && !self.window.exhausted && in_flight.any(Batch::is_cancelled)
    }
}

/// Results of `task(item)` in input order, from [`Scope::imap`] or
/// [`BatchBuilder::imap`](crate::BatchBuilder::imap).
///
/// ```
/// pool_runtime::scope(|s| {
///     // The first square over 50 of an endless input. The loop's `break`
///     // drops the stream, which cancels what it had started ahead.
///     for square in s.imap(|n: u64| n * n, 1..) {
///         let square = square.unwrap();
///         if square > 50 {
///             assert_eq!(square, 64);
///             break;
///         }
///     }
/// });
/// ```
pub struct Imap<'scope, 'env, It, F, T, C>
where
    It: Iterator,
{
    feed: Feed<'scope, 'env, It, F, C>,
    batches: VecDeque<Results<'scope, T>>,
}

impl<'scope, 'env, It, F, T, C> Imap<'scope, 'env, It, F, T, C>
where
    It: Iterator,
    It::Item: Send + 'scope,
    F: Fn(It::Item) -> T + Send + Sync + 'scope,
    T: Send + 'scope,
    C: CompletionCallback<T> + Clone + 'scope,
{
    pub(crate) fn new(
        target: Target<'scope>,
        options: Options,
        callback: C,
        task: F,
        input: It,
    ) -> Self {
        Imap {
            feed: Feed::new(target, options, callback, task, input),
            batches: VecDeque::new(),
        }
    }

    /// Stops the stream: no more input is pulled, and the tasks in flight
    /// that have not started never start. Results already in flight still
    /// come out in order (the cancelled ones as
    /// [`TaskErrorKind::Cancelled`](crate::TaskErrorKind::Cancelled)), then
    /// the stream ends. Returns how many tasks this call cancelled.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let mut squares = s.batch().in_flight(8).imap(|n: u64| n * n, 0..);
    ///     assert_eq!(squares.next().unwrap().unwrap(), 0);
    ///     squares.cancel();
    ///     // At most the eight inputs in flight come out; the endless input
    ///     // is not pulled any further.
    ///     assert!(squares.count() < 8);
    /// });
    /// ```
    pub fn cancel(&mut self) -> usize {
        self.feed.stop(self.batches.iter().map(Results::batch))
    }

    fn refill(&mut self) {
        if self
            .feed
            .failed_fast(self.batches.iter().map(Results::batch))
        {
            self.cancel();
        }
        while let Some((_, batch)) = self.feed.submit_next() {
            self.batches.push_back(batch.results());
        }
    }

    /// Counts a result out of the window; with fail-fast, a failure stops
    /// the stream right away (its own batch may not say it was cancelled
    /// yet when the consumer has already read it).
    fn handed_out(&mut self, result: Result<T, TaskError>) -> Result<T, TaskError> {
        self.feed.window.in_flight -= 1;
        if self.feed.options.fail_fast && result.is_err() {
            self.cancel();
        }
        result
    }

    /// The next result in input order if its task finished; otherwise
    /// `cx`'s waker is woken when a task in flight completes. `Ready(None)`
    /// at the end. The `poll_next` of an async stream, for adapters; most
    /// code calls [`next_async`](Imap::next_async).
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
    /// let mut lengths = pool.imap(|word: &'static str| word.len(), ["fork", "join"]);
    /// // What a `futures::Stream` adapter's `poll_next` forwards to:
    /// let first = block_on(std::future::poll_fn(|cx| lengths.poll_next(cx)));
    /// assert_eq!(first.unwrap().unwrap(), 4);
    /// ```
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, TaskError>>> {
        loop {
            self.refill();
            let Some(results) = self.batches.front_mut() else {
                self.feed.end();
                return Poll::Ready(None);
            };
            match results.poll_next(cx) {
                Poll::Ready(Some(result)) => return Poll::Ready(Some(self.handed_out(result))),
                Poll::Ready(None) => {
                    self.batches.pop_front();
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// The next result in input order, awaited: the async form of
    /// `next()`, which never blocks the executor's thread.
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
    /// let mut lengths = pool.imap(|line: &'static str| line.len(), ["a", "bb", "ccc"]);
    /// let all = block_on(async {
    ///     let mut all = Vec::new();
    ///     while let Some(length) = lengths.next_async().await {
    ///         all.push(length.unwrap());
    ///     }
    ///     all
    /// });
    /// assert_eq!(all, [1, 2, 3]);
    /// ```
    pub async fn next_async(&mut self) -> Option<Result<T, TaskError>> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }
}

impl<'scope, It, F, T, C> Iterator for Imap<'scope, '_, It, F, T, C>
where
    It: Iterator,
    It::Item: Send + 'scope,
    F: Fn(It::Item) -> T + Send + Sync + 'scope,
    T: Send + 'scope,
    C: CompletionCallback<T> + Clone + 'scope,
{
    type Item = Result<T, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.refill();
            let Some(results) = self.batches.front_mut() else {
                self.feed.end();
                return None;
            };
            match results.next() {
                Some(result) => return Some(self.handed_out(result)),
                None => {
                    self.batches.pop_front();
                }
            }
        }
    }
}

impl<It: Iterator, F, T, C> Drop for Imap<'_, '_, It, F, T, C> {
    fn drop(&mut self) {
        for results in &self.batches {
            results.batch().cancel();
        }
    }
}

impl<It: Iterator, F, T, C> fmt::Debug for Imap<'_, '_, It, F, T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imap")
            .field("in_flight", &self.feed.window.in_flight)
            .field("bound", &self.feed.window.bound)
            .field("pulled", &self.feed.window.pulled)
            .finish()
    }
}

/// `(index, result)` pairs in completion order, from
/// [`Scope::imap_unordered`] or
/// [`BatchBuilder::imap_unordered`](crate::BatchBuilder::imap_unordered).
///
/// ```
/// pool_runtime::scope(|s| {
///     let files = ["a.log", "bb.log", "ccc.log"];
///     let mut sizes = vec![0; files.len()];
///     // Each result as soon as its task finished, with its input's index.
///     for (index, size) in s.imap_unordered(|name: &str| name.len(), files) {
///         sizes[index] = size.unwrap();
///     }
///     assert_eq!(sizes, [5, 6, 7]);
/// });
/// ```
pub struct ImapUnordered<'scope, 'env, It, F, T, C>
where
    It: Iterator,
{
    feed: Feed<'scope, 'env, It, F, C>,
    batches: Vec<(usize, AsCompleted<'scope, T>)>,
}

impl<'scope, 'env, It, F, T, C> ImapUnordered<'scope, 'env, It, F, T, C>
where
    It: Iterator,
    It::Item: Send + 'scope,
    F: Fn(It::Item) -> T + Send + Sync + 'scope,
    T: Send + 'scope,
    C: CompletionCallback<T> + Clone + 'scope,
{
    pub(crate) fn new(
        target: Target<'scope>,
        options: Options,
        callback: C,
        task: F,
        input: It,
    ) -> Self {
        ImapUnordered {
            feed: Feed::new(target, options, callback, task, input),
            batches: Vec::new(),
        }
    }

    /// Stops the stream: no more input is pulled, and the tasks in flight
    /// that have not started never start. Results already in flight still
    /// come out (the cancelled ones as
    /// [`TaskErrorKind::Cancelled`](crate::TaskErrorKind::Cancelled)), then
    /// the stream ends. Returns how many tasks this call cancelled.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let mut checks = s.batch().in_flight(8).imap_unordered(|n: u64| n % 7 == 0, 1..);
    ///     let (_index, _first) = checks.next().unwrap();
    ///     checks.cancel();
    ///     // At most the eight inputs in flight come out; the endless input is
    ///     // not pulled any further.
    ///     assert!(checks.count() < 8);
    /// });
    /// ```
    pub fn cancel(&mut self) -> usize {
        self.feed
            .stop(self.batches.iter().map(|(_, stream)| stream.batch()))
    }

    fn refill(&mut self) {
        if self
            .feed
            .failed_fast(self.batches.iter().map(|(_, stream)| stream.batch()))
        {
            self.cancel();
        }
        while let Some((first, batch)) = self.feed.submit_next() {
            self.batches.push((first, batch.as_completed()));
        }
    }

    /// Counts a result out of the window; with fail-fast, a failure stops
    /// the stream (see [`Imap`]'s).
    fn handed_out(
        &mut self,
        index: usize,
        result: Result<T, TaskError>,
    ) -> (usize, Result<T, TaskError>) {
        self.feed.window.in_flight -= 1;
        if self.feed.options.fail_fast && result.is_err() {
            self.cancel();
        }
        (index, result)
    }

    /// The next finished result, with its input's index; otherwise `cx`'s
    /// waker is woken when a task in flight completes. `Ready(None)` at the
    /// end. See [`Imap::poll_next`].
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
    /// let mut sizes = pool.imap_unordered(|word: &'static str| word.len(), ["fork"]);
    /// let next = block_on(std::future::poll_fn(|cx| sizes.poll_next(cx)));
    /// assert_eq!(next.map(|(index, size)| (index, size.unwrap())), Some((0, 4)));
    /// ```
    pub fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(usize, Result<T, TaskError>)>> {
        loop {
            self.refill();
            self.batches.retain(|(_, stream)| stream.len_left() > 0);
            if self.batches.is_empty() {
                self.feed.end();
                return Poll::Ready(None);
            }
            // Every batch in flight gets the waker: whichever completes a
            // task first wakes the reader.
            let mut ended = false;
            for (base, stream) in &mut self.batches {
                match stream.poll_next(cx) {
                    Poll::Ready(Some((index, result))) => {
                        let index = *base + index;
                        return Poll::Ready(Some(self.handed_out(index, result)));
                    }
                    Poll::Ready(None) => ended = true,
                    Poll::Pending => {}
                }
            }
            if !ended {
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
    /// let mut squares = pool.imap_unordered(|x: u64| x * x, 0..4);
    /// let total = block_on(async {
    ///     let mut total = 0;
    ///     while let Some((_index, square)) = squares.next_async().await {
    ///         total += square.unwrap();
    ///     }
    ///     total
    /// });
    /// assert_eq!(total, 14);
    /// ```
    pub async fn next_async(&mut self) -> Option<(usize, Result<T, TaskError>)> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }
}

impl<'scope, It, F, T, C> Iterator for ImapUnordered<'scope, '_, It, F, T, C>
where
    It: Iterator,
    It::Item: Send + 'scope,
    F: Fn(It::Item) -> T + Send + Sync + 'scope,
    T: Send + 'scope,
    C: CompletionCallback<T> + Clone + 'scope,
{
    type Item = (usize, Result<T, TaskError>);

    fn next(&mut self) -> Option<Self::Item> {
        let mut idle_rounds = 0u32;
        loop {
            self.refill();
            self.batches.retain(|(_, stream)| stream.len_left() > 0);
            if self.batches.is_empty() {
                self.feed.end();
                return None;
            }
            for (base, stream) in &mut self.batches {
                if let Some((index, result)) = stream.try_next() {
                    let index = *base + index;
                    return Some(self.handed_out(index, result));
                }
            }
            if self.batches.len() == 1 {
                // Only one batch left: its blocking read is the right wait.
                let (base, stream) = &mut self.batches[0];
                let (index, result) = stream.next()?;
                let index = *base + index;
                return Some(self.handed_out(index, result));
            }
            // Several batches, none ready: wait on the oldest for a moment
            // (helping with it on a worker), then poll them all again.
            idle_rounds = (idle_rounds + 1).min(10);
            let until = Instant::now() + Duration::from_micros(10 << idle_rounds);
            self.batches[0].1.wait_logged(Some(until));
        }
    }
}

impl<It: Iterator, F, T, C> Drop for ImapUnordered<'_, '_, It, F, T, C> {
    fn drop(&mut self) {
        for (_, stream) in &self.batches {
            stream.batch().cancel();
        }
    }
}

impl<It: Iterator, F, T, C> fmt::Debug for ImapUnordered<'_, '_, It, F, T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapUnordered")
            .field("in_flight", &self.feed.window.in_flight)
            .field("bound", &self.feed.window.bound)
            .field("pulled", &self.feed.window.pulled)
            .finish()
    }
}

impl<'scope, 'env, C> BatchBuilder<'scope, 'env, C> {
    /// Streams `task(item)` for each item, in input order (Python's `imap`),
    /// pulling items lazily so that at most
    /// [`in_flight`](BatchBuilder::in_flight) of them are pulled and not yet
    /// handed back: an endless iterator works, in bounded memory.
    ///
    /// Dropping the iterator early cancels the tasks it had started and not
    /// yet handed back.
    ///
    /// ```
    /// use std::io::BufRead;
    ///
    /// // A large log, read line by line: at most 16 lines are in memory at once.
    /// let log = std::io::Cursor::new("GET /\nPOST /login\nGET /about\n");
    /// let lines = log.lines().map(Result::unwrap);
    /// pool_runtime::scope(|s| {
    ///     let method = |line: String| line.split(' ').next().unwrap().to_string();
    ///     let methods = s.batch().name("parse").in_flight(16).imap(method, lines);
    ///     let methods: Vec<String> = methods.map(Result::unwrap).collect();
    ///     assert_eq!(methods, ["GET", "POST", "GET"]);
    /// });
    /// ```
    pub fn imap<F, I, T>(self, task: F, items: I) -> Imap<'scope, 'env, I::IntoIter, F, T, C>
    where
        F: Fn(I::Item) -> T + Send + Sync + 'scope,
        I: IntoIterator,
        I::Item: Send + 'scope,
        T: Send + 'scope,
        C: CompletionCallback<T> + Clone + 'scope,
    {
        Imap::new(
            self.target,
            self.options,
            self.callback,
            task,
            items.into_iter(),
        )
    }

    /// Streams `(index, task(item))` in the order tasks finish (Python's
    /// `imap_unordered`, plus the index of the input), pulling items lazily
    /// like [`imap`](BatchBuilder::imap).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// pool_runtime::scope(|s| {
    ///     // Slow "downloads" on the blocking lane, handled as each one lands.
    ///     let downloads = s.batch().blocking(true).imap_unordered(
    ///         |page: u64| {
    ///             std::thread::sleep(Duration::from_millis(10 * (3 - page)));
    ///             page
    ///         },
    ///         0..3,
    ///     );
    ///     let mut landed: Vec<u64> = downloads.map(|(_index, page)| page.unwrap()).collect();
    ///     landed.sort();
    ///     assert_eq!(landed, [0, 1, 2]);
    /// });
    /// ```
    pub fn imap_unordered<F, I, T>(
        self,
        task: F,
        items: I,
    ) -> ImapUnordered<'scope, 'env, I::IntoIter, F, T, C>
    where
        F: Fn(I::Item) -> T + Send + Sync + 'scope,
        I: IntoIterator,
        I::Item: Send + 'scope,
        T: Send + 'scope,
        C: CompletionCallback<T> + Clone + 'scope,
    {
        ImapUnordered::new(
            self.target,
            self.options,
            self.callback,
            task,
            items.into_iter(),
        )
    }
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Streams `task(item)` in input order with bounded look-ahead (Python's
    /// `imap`); see [`BatchBuilder::imap`].
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     // An endless input: only what is consumed is computed.
    ///     let mut squares = s.imap(|x: u64| x * x, 0..);
    ///     assert_eq!(squares.next().unwrap().unwrap(), 0);
    ///     assert_eq!(squares.nth(9).unwrap().unwrap(), 100);
    /// });
    /// ```
    pub fn imap<F, I, T>(
        &'scope self,
        task: F,
        items: I,
    ) -> Imap<'scope, 'env, I::IntoIter, F, T, NoCallback>
    where
        F: Fn(I::Item) -> T + Send + Sync + 'scope,
        I: IntoIterator,
        I::Item: Send + 'scope,
        T: Send + 'scope,
    {
        self.batch().imap(task, items)
    }

    /// Streams `(index, task(item))` in completion order (Python's
    /// `imap_unordered`); see [`BatchBuilder::imap_unordered`].
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let mut longest = (0, 0);
    ///     for (index, length) in s.imap_unordered(|w: &str| w.len(), ["fork", "join", "scope"]) {
    ///         longest = longest.max((length.unwrap(), index));
    ///     }
    ///     assert_eq!(longest, (5, 2));
    /// });
    /// ```
    pub fn imap_unordered<F, I, T>(
        &'scope self,
        task: F,
        items: I,
    ) -> ImapUnordered<'scope, 'env, I::IntoIter, F, T, NoCallback>
    where
        F: Fn(I::Item) -> T + Send + Sync + 'scope,
        I: IntoIterator,
        I::Item: Send + 'scope,
        T: Send + 'scope,
    {
        self.batch().imap_unordered(task, items)
    }
}
