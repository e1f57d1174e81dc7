//! What a batch reports to `tracing`, with the `tracing` feature: a span per
//! batch (target `poolscope`, name `batch`, fields `name`, `tasks`, `lane`),
//! entered by a `chunk` span (fields `first`, `len`) around every run of
//! claimed tasks, and events inside the batch's span when a task panics
//! (`WARN`, fields `index`, `panic` (its message), `location`), when tasks are cancelled (`DEBUG`), and when the batch is done
//! (`DEBUG`, with how many tasks failed).
//!
//! Without the feature every function here is empty and every type a
//! zero-sized one, so the batch path compiles to what it was.

#[cfg(feature = "tracing")]
mod on {
    use crate::error::PanicLocation;

    /// The span of one batch, created at submission.
    pub(crate) struct BatchSpan(tracing::Span);

    /// The entered span of one chunk of claimed tasks.
    pub(crate) type ChunkGuard<'a> = tracing::span::Entered<'a>;

    /// The chunk's span, kept alive while it is entered.
    pub(crate) struct ChunkSpan(tracing::Span);

    impl BatchSpan {
        pub(crate) fn new(name: Option<&str>, tasks: usize, blocking: bool) -> BatchSpan {
            let span = tracing::debug_span!(
                target: "poolscope",
                "batch",
                name = name.unwrap_or(""),
                tasks,
                lane = if blocking { "blocking" } else { "cpu" },
            );
            tracing::debug!(target: "poolscope", parent: &span, tasks, "batch submitted");
            BatchSpan(span)
        }

        pub(crate) fn chunk(&self, first: usize, len: usize) -> ChunkSpan {
            ChunkSpan(tracing::trace_span!(
                target: "poolscope",
                parent: &self.0,
                "chunk",
                first,
                len
            ))
        }

        pub(crate) fn panicked(
            &self,
            index: usize,
            message: &str,
            location: Option<&PanicLocation>,
        ) {
            let location = location.map(ToString::to_string).unwrap_or_default();
            tracing::warn!(
                target: "poolscope",
                parent: &self.0,
                index,
                panic = message,
                location = location.as_str(),
                "task panicked"
            );
        }

        pub(crate) fn cancelled(&self, first: usize, count: usize) {
            tracing::debug!(
                target: "poolscope",
                parent: &self.0,
                first,
                count,
                "tasks cancelled before they started"
            );
        }

        pub(crate) fn done(&self, tasks: usize, panicked: bool) {
            tracing::debug!(target: "poolscope", parent: &self.0, tasks, panicked, "batch done");
        }
    }

    impl ChunkSpan {
        pub(crate) fn enter(&self) -> ChunkGuard<'_> {
            self.0.enter()
        }
    }
}

#[cfg(not(feature = "tracing"))]
mod off {
    use crate::error::PanicLocation;

    pub(crate) struct BatchSpan;
    pub(crate) struct ChunkSpan;
    pub(crate) struct ChunkGuard;

    impl BatchSpan {
        #[inline(always)]
        pub(crate) fn new(_: Option<&str>, _: usize, _: bool) -> BatchSpan {
            BatchSpan
        }
        #[inline(always)]
        pub(crate) fn chunk(&self, _: usize, _: usize) -> ChunkSpan {
            ChunkSpan
        }
        #[inline(always)]
        pub(crate) fn panicked(&self, _: usize, _: &str, _: Option<&PanicLocation>) {}
        #[inline(always)]
        pub(crate) fn cancelled(&self, _: usize, _: usize) {}
        #[inline(always)]
        pub(crate) fn done(&self, _: usize, _: bool) {}
    }

    impl ChunkSpan {
        #[inline(always)]
        pub(crate) fn enter(&self) -> ChunkGuard {
            ChunkGuard
        }
    }
}

#[cfg(not(feature = "tracing"))]
pub(crate) use off::BatchSpan;
#[cfg(feature = "tracing")]
pub(crate) use on::BatchSpan;
