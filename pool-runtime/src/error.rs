//! The errors a user of the runtime can see.

use std::borrow::Cow;
use std::fmt;

/// Why one task of a batch produced no result.
///
/// Returned (as the first failure in submission order) by
/// [`Batch::get`](crate::Batch::get) and listed by
/// [`Batch::failures`](crate::Batch::failures).
///
/// ```
/// let pool = pool_runtime::Pool::new(2).unwrap();
/// pool.scope(|s| {
///     let batch = s.map_async(|x: u32| if x == 2 { panic!("bad input {x}") } else { x }, 0..4);
///     let err = batch.get().unwrap_err();
///     assert_eq!(err.index(), 2);
///     assert_eq!(err.panic_message(), Some("bad input 2"));
///     // Where the task panicked, as the panic reported it.
///     let location = err.location().unwrap();
///     assert_eq!(err.to_string(), format!("task 2 panicked at {location}: bad input 2"));
/// });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    pub(crate) index: usize,
    pub(crate) name: Option<Cow<'static, str>>,
    pub(crate) kind: TaskErrorKind,
    pub(crate) location: Option<PanicLocation>,
}

/// Where a task panicked: the file, line and column the panic reported.
///
/// poolscope learns it from a panic hook that it adds in front of the one
/// already installed (which still runs, unchanged), when the first pool is
/// built. A hook installed later replaces poolscope's, and then panics carry
/// no location.
///
/// ```
/// pool_runtime::scope(|s| {
///     let error = s.apply_async(|| -> u8 { panic!("out of paper") }).get().unwrap_err();
///     let location = error.location().unwrap();
///     assert!(location.file().ends_with(".rs"));
///     assert_eq!(location.to_string(), format!("{}:{}:{}", location.file(), location.line(), location.column()));
/// });
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PanicLocation {
    pub(crate) file: String,
    pub(crate) line: u32,
    pub(crate) column: u32,
}

impl PanicLocation {
    /// The source file, as the compiler named it.
    ///
    /// ```
    /// let pool = pool_runtime::Pool::new(1).unwrap();
    /// let error = pool.apply(|| -> u8 { panic!("boom") }).unwrap_err();
    /// assert_eq!(error.location().unwrap().file(), file!());
    /// ```
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The line, from 1.
    ///
    /// ```
    /// let pool = pool_runtime::Pool::new(1).unwrap();
    /// let error = pool.apply(|| -> u8 { panic!("boom") }).unwrap_err();
    /// let here = line!() - 1;
    /// assert_eq!(error.location().unwrap().line(), here);
    /// ```
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The column, from 1.
    ///
    /// ```
    /// let pool = pool_runtime::Pool::new(1).unwrap();
    /// let error = pool.apply(|| -> u8 { panic!("boom") }).unwrap_err();
    /// // The column of `panic!` in the line above.
    /// assert_eq!(error.location().unwrap().column(), 35);
    /// ```
    pub fn column(&self) -> u32 {
        self.column
    }
}

impl fmt::Display for PanicLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// What went wrong with a task; see [`TaskError::kind`].
///
/// ```
/// use pool_runtime::TaskErrorKind;
///
/// pool_runtime::scope(|s| {
///     let error = s.apply_async(|| -> u8 { panic!("no space left") }).get().unwrap_err();
///     match error.kind() {
///         TaskErrorKind::Panicked { message } => assert_eq!(message, "no space left"),
///         TaskErrorKind::Cancelled => println!("it never started"),
///         other => println!("{other:?}"),
///     }
/// });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskErrorKind {
    /// The task panicked; the panic message is kept.
    Panicked {
        /// The panic message (`"Box<dyn Any>"`-like text when it was not a string).
        message: String,
    },
    /// The task never started: its batch was cancelled or its scope terminated.
    Cancelled,
    /// The task never started because the pool broke (a worker thread could
    /// not be started); the reason is kept.
    PoolBroken {
        /// Why the pool is broken.
        reason: String,
    },
    /// The task ran and returned a value its batch counts as a failure (an
    /// `Err`, in a batch with fail-fast), which cancelled the rest of the
    /// batch. The value itself is still the task's result:
    /// [`Batch::try_get`](crate::Batch::try_get) hands over the `Err`, and
    /// [`Batch::results`](crate::Batch::results) yields it.
    Failed,
}

impl TaskError {
    /// The task's position in its batch, counted from 0 in submission order.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let rows = ["7", "8", "nine"];
    ///     let parsed = s.map_async(|row: &str| row.parse::<u32>().expect("a number"), rows);
    ///     let error = parsed.get().unwrap_err();
    ///     assert_eq!(rows[error.index()], "nine");
    /// });
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }

    /// The task's name, when the batch was given one.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let check = |width: u32| assert!(width > 0, "empty image");
    ///     let resize = s.batch().name("resize").map_async(check, [0]);
    ///     assert_eq!(resize.get().unwrap_err().task_name(), Some("resize"));
    /// });
    /// ```
    pub fn task_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// What went wrong.
    ///
    /// ```
    /// use pool_runtime::TaskErrorKind;
    ///
    /// pool_runtime::scope(|s| {
    ///     let batch = s.map_async(|x: u32| x, 0..3);
    ///     batch.cancel();
    ///     if let Err(error) = batch.get() {
    ///         assert_eq!(error.kind(), &TaskErrorKind::Cancelled);
    ///     }
    /// });
    /// ```
    pub fn kind(&self) -> &TaskErrorKind {
        &self.kind
    }

    /// The panic message, when the task panicked.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let task = s.apply_async(|| -> u8 { panic!("disk {} is full", 2) });
    ///     let error = task.get().unwrap_err();
    ///     assert_eq!(error.panic_message(), Some("disk 2 is full"));
    /// });
    /// ```
    pub fn panic_message(&self) -> Option<&str> {
        match &self.kind {
            TaskErrorKind::Panicked { message } => Some(message),
            _ => None,
        }
    }

    /// Whether the task panicked.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let error = s.apply_async(|| -> u8 { panic!("bug") }).get().unwrap_err();
    ///     assert!(error.is_panic() && !error.is_cancelled());
    /// });
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self.kind, TaskErrorKind::Panicked { .. })
    }

    /// Whether the task was cancelled before it started.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let batch = s.map_async(|x: u32| x, 0..3);
    ///     batch.cancel();
    ///     // Either every task had already run, or the first one that had not
    ///     // started is reported as cancelled.
    ///     if let Err(error) = batch.get() {
    ///         assert!(error.is_cancelled() && !error.is_panic());
    ///     }
    /// });
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self.kind, TaskErrorKind::Cancelled)
    }

    /// Where the task panicked, when it panicked and the runtime could see
    /// it (see [`PanicLocation`]).
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let error = s.apply_async(|| -> u8 { panic!("bug") }).get().unwrap_err();
    ///     let location = error.location().expect("poolscope's panic hook saw it");
    ///     println!("the task panicked at {location}"); // file:line:column
    /// });
    /// ```
    pub fn location(&self) -> Option<&PanicLocation> {
        self.location.as_ref()
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task {}", self.index)?;
        if let Some(name) = &self.name {
            write!(f, " (`{name}`)")?;
        }
        match &self.kind {
            TaskErrorKind::Panicked { message } => match &self.location {
                Some(location) => write!(f, " panicked at {location}: {message}"),
                None => write!(f, " panicked: {message}"),
            },
            TaskErrorKind::Cancelled => write!(f, " was cancelled before it started"),
            TaskErrorKind::PoolBroken { reason } => {
                write!(f, " never ran because the pool is broken: {reason}")
            }
            TaskErrorKind::Failed => f.write_str(
                " returned an error, and fail_fast cancelled the rest of its batch (try_get() gives the error itself)",
            ),
        }
    }
}

/// The first failure of a batch of `Result`s, from
/// [`Batch::try_get`](crate::Batch::try_get): either a task returned
/// `Err(error)`, or a task produced no value at all (it panicked, was
/// cancelled, or its pool broke).
///
/// ```
/// use pool_runtime::TryGetError;
///
/// pool_runtime::scope(|s| {
///     let parsed = s.batch().name("parse").map_async(|t: &str| t.parse::<u8>(), ["1", "x", "3"]);
///     match parsed.try_get() {
///         Err(TryGetError::Returned { index, error, .. }) => {
///             assert_eq!(index, 1);
///             assert_eq!(error.to_string(), "invalid digit found in string");
///         }
///         other => panic!("unexpected {other:?}"),
///     }
/// });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryGetError<E> {
    /// Task `index` returned `Err(error)`.
    Returned {
        /// The task's position in its batch.
        index: usize,
        /// The task's name, when the batch has one.
        name: Option<Cow<'static, str>>,
        /// What the task returned.
        error: E,
    },
    /// A task produced no value: why, and which.
    Task(TaskError),
}

impl<E> TryGetError<E> {
    /// The position of the failed task in its batch.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let ports = s.map_async(|t: &str| t.parse::<u16>(), ["80", "http", "443"]);
    ///     assert_eq!(ports.try_get().unwrap_err().index(), 1);
    /// });
    /// ```
    pub fn index(&self) -> usize {
        match self {
            TryGetError::Returned { index, .. } => *index,
            TryGetError::Task(error) => error.index(),
        }
    }

    /// The failed task's name, when its batch has one.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let ports = s.batch().name("port").map_async(|t: &str| t.parse::<u16>(), ["http"]);
    ///     assert_eq!(ports.try_get().unwrap_err().task_name(), Some("port"));
    /// });
    /// ```
    pub fn task_name(&self) -> Option<&str> {
        match self {
            TryGetError::Returned { name, .. } => name.as_deref(),
            TryGetError::Task(error) => error.task_name(),
        }
    }

    /// The task's own error, when it returned one.
    ///
    /// ```
    /// pool_runtime::scope(|s| {
    ///     let ports = s.map_async(|t: &str| t.parse::<u16>(), ["99999"]);
    ///     let failure = ports.try_get().unwrap_err();
    ///     let error = failure.error().unwrap();
    ///     assert_eq!(error.to_string(), "number too large to fit in target type");
    /// });
    /// ```
    pub fn error(&self) -> Option<&E> {
        match self {
            TryGetError::Returned { error, .. } => Some(error),
            TryGetError::Task(_) => None,
        }
    }

    /// The task's own error, or why the task produced no value.
    ///
    /// ```
    /// use std::num::ParseIntError;
    ///
    /// fn ports(texts: &[&str]) -> Result<Vec<u16>, ParseIntError> {
    ///     pool_runtime::scope(|s| {
    ///         let parsed = s.map_async(|t: &&str| t.parse::<u16>(), texts);
    ///         // The task's own error goes to the caller; a panic is re-raised.
    ///         parsed
    ///             .try_get()
    ///             .map_err(|failure| failure.into_error().unwrap_or_else(|e| panic!("{e}")))
    ///     })
    /// }
    /// assert!(ports(&["80", "eighty"]).is_err());
    /// assert_eq!(ports(&["80", "8080"]).unwrap(), [80, 8080]);
    /// ```
    pub fn into_error(self) -> Result<E, TaskError> {
        match self {
            TryGetError::Returned { error, .. } => Ok(error),
            TryGetError::Task(error) => Err(error),
        }
    }
}

impl<E: fmt::Display> fmt::Display for TryGetError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryGetError::Returned { index, name, error } => {
                write!(f, "task {index}")?;
                if let Some(name) = name {
                    write!(f, " (`{name}`)")?;
                }
                write!(f, " returned an error: {error}")
            }
            TryGetError::Task(error) => error.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for TryGetError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TryGetError::Returned { error, .. } => Some(error),
            TryGetError::Task(_) => None,
        }
    }
}

impl std::error::Error for TaskError {}

/// A batch could not be submitted; returned by the `try_` forms such as
/// [`Scope::try_map_async`](crate::Scope::try_map_async).
///
/// ```
/// use pool_runtime::SubmitError;
///
/// pool_runtime::scope(|s| {
///     s.close();
///     match s.try_apply_async(|| "late work") {
///         Ok(_) => unreachable!("the scope is closed"),
///         Err(SubmitError::Closed) => println!("closed: submit before close()"),
///         Err(other) => panic!("{other}"),
///     }
/// });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmitError {
    /// The scope was closed with [`Scope::close`](crate::Scope::close) (or is
    /// ending); it accepts no more work.
    Closed,
    /// The scope was terminated with [`Scope::terminate`](crate::Scope::terminate).
    Terminated,
    /// The pool is broken and runs no more work.
    PoolBroken {
        /// Why the pool is broken.
        reason: String,
    },
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Closed => f.write_str(
                "cannot submit to a closed poolscope scope: close() was called; submit before closing, or open a new scope",
            ),
            SubmitError::Terminated => f.write_str(
                "cannot submit to a terminated poolscope scope: terminate() was called; open a new scope",
            ),
            SubmitError::PoolBroken { reason } => {
                write!(f, "cannot submit to a broken poolscope pool ({reason}); build a new pool")
            }
        }
    }
}

impl std::error::Error for SubmitError {}

/// [`Scope::join`](crate::Scope::join) or [`Pool::join`](crate::Pool::join)
/// was called where it cannot work; returned by
/// [`Scope::try_join`](crate::Scope::try_join) and
/// [`Pool::try_join`](crate::Pool::try_join).
///
/// ```
/// use pool_runtime::JoinError;
///
/// pool_runtime::scope(|s| {
///     assert_eq!(s.try_join(), Err(JoinError::StillOpen));
///     // A task that closes its own scope and joins it would wait for itself.
///     let inside = s.apply_async(move || {
///         s.close();
///         s.try_join()
///     });
///     assert_eq!(inside.get().unwrap(), Err(JoinError::FromOwnTask));
///     assert_eq!(s.try_join(), Ok(()));
/// });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JoinError {
    /// The scope (or the pool's owned work) is still open: more tasks could
    /// arrive, so join would not know when to stop waiting.
    StillOpen,
    /// join() was called from inside one of the scope's (or the pool's
    /// owned) tasks, which would wait for itself.
    FromOwnTask,
    /// join() was called on the default pool ([`Pool::global`](crate::Pool::global)),
    /// which is never closed: every part of the program shares it.
    DefaultPool,
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::StillOpen => f.write_str(
                "join() called on a poolscope scope or pool that is still open: call close() (or terminate()) first",
            ),
            JoinError::FromOwnTask => f.write_str(
                "join() called from inside one of its own tasks (the scope's, or the pool's owned work's), which would wait for itself: join from the code that opened the scope or owns the pool",
            ),
            JoinError::DefaultPool => f.write_str(
                "join() called on poolscope's default pool, which is never closed because every part of the program shares it: wait on your handles, or build a Pool of your own (Pool::new) to close and join",
            ),
        }
    }
}

/// [`Pool::close`](crate::Pool::close) or
/// [`Pool::terminate`](crate::Pool::terminate) was refused; returned by
/// [`Pool::try_close`](crate::Pool::try_close) and
/// [`Pool::try_terminate`](crate::Pool::try_terminate).
///
/// ```
/// use pool_runtime::{CloseError, Pool};
///
/// let refused = Pool::global().try_close().unwrap_err();
/// assert_eq!(refused, CloseError::DefaultPool);
/// println!("{refused}"); // says to build a Pool of your own
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseError {
    /// The pool is the default pool ([`Pool::global`](crate::Pool::global)),
    /// which every part of the program shares: closing it would refuse
    /// everyone else's work.
    DefaultPool,
}

impl fmt::Display for CloseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseError::DefaultPool => f.write_str(
                "poolscope's default pool cannot be closed or terminated, because every part of the program shares it: build a Pool of your own (Pool::new) to close, join or terminate, or wait on your handles",
            ),
        }
    }
}

impl std::error::Error for CloseError {}

impl std::error::Error for JoinError {}

/// A pool could not be built; returned by
/// [`PoolBuilder::build`](crate::PoolBuilder::build).
///
/// ```
/// use pool_runtime::{BuildError, Pool};
///
/// fn start(threads: usize) -> Result<Pool, String> {
///     Pool::new(threads).map_err(|error| match error {
///         BuildError::ZeroThreads => "set POOL_THREADS to 1 or more".to_string(),
///         other => other.to_string(),
///     })
/// }
/// assert_eq!(start(0).unwrap_err(), "set POOL_THREADS to 1 or more");
/// assert!(start(2).is_ok());
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// `threads(0)` was asked for; a pool needs at least one thread.
    ZeroThreads,
    /// The operating system refused to start a worker thread.
    Spawn {
        /// Which worker (0-based).
        thread: usize,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A thread start hook panicked, so the pool's threads are not in the
    /// state the hook promised.
    StartHookPanicked {
        /// Which worker (0-based).
        thread: usize,
        /// The panic message.
        message: String,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroThreads => f.write_str(
                "a poolscope pool needs at least one thread, but threads = 0 was given; pass 1 or more (or omit it for one per core)",
            ),
            BuildError::Spawn { thread, source } => {
                write!(f, "could not start poolscope worker thread {thread}: {source}")
            }
            BuildError::StartHookPanicked { thread, message } => write!(
                f,
                "the thread start hook panicked on poolscope worker thread {thread}: {message}"
            ),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Spawn { source, .. } => Some(source),
            _ => None,
        }
    }
}
