//! With the `tracing` feature, a batch is a span, each run of its tasks a
//! child span, and panics, cancellations and the batch's end are events in
//! it: what a service that runs batches sees in its traces. Checked with a
//! subscriber that records everything.
//!
//! Run: `cargo test -p pool-runtime --features tracing --test tracing`
//! (`cargo test --workspace --all-features` includes it). Without the
//! feature the file is empty.

#![cfg(feature = "tracing")]

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use pool_runtime::{Pool, TaskErrorKind};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A recorded span or event: its name (an event's message), its fields,
/// and its parent span.
#[derive(Clone, Debug, Default)]
struct Recorded {
    name: String,
    fields: HashMap<String, String>,
    parent: Option<u64>,
    entered: usize,
}

#[derive(Default)]
struct Recorder {
    next: AtomicU64,
    spans: Mutex<HashMap<u64, Recorded>>,
    events: Mutex<Vec<Recorded>>,
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

/// The subscriber: a shared handle on the recorder.
#[derive(Clone)]
struct Recording(Arc<Recorder>);

impl std::ops::Deref for Recording {
    type Target = Recorder;
    fn deref(&self) -> &Recorder {
        &self.0
    }
}

impl Subscriber for Recording {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == "poolscope"
    }
    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let mut span = Recorded {
            name: attributes.metadata().name().to_string(),
            parent: attributes.parent().map(Id::into_u64),
            ..Recorded::default()
        };
        attributes.record(&mut Fields(&mut span.fields));
        self.spans.lock().unwrap().insert(id, span);
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some(span) = self.spans.lock().unwrap().get_mut(&span.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut recorded = Recorded {
            parent: event.parent().map(Id::into_u64),
            ..Recorded::default()
        };
        event.record(&mut Fields(&mut recorded.fields));
        recorded.name = recorded.fields.remove("message").unwrap_or_default();
        self.events.lock().unwrap().push(recorded);
    }
    fn enter(&self, span: &Id) {
        if let Some(span) = self.spans.lock().unwrap().get_mut(&span.into_u64()) {
            span.entered += 1;
        }
    }
    fn exit(&self, _: &Id) {}
}

/// The recorder, installed once as the global subscriber (the pool's
/// workers are other threads, so a thread-local one would miss them).
fn recorder() -> Arc<Recorder> {
    static RECORDER: OnceLock<Arc<Recorder>> = OnceLock::new();
    RECORDER
        .get_or_init(|| {
            let recorder = Arc::new(Recorder::default());
            tracing::subscriber::set_global_default(Recording(recorder.clone()))
                .expect("no other subscriber in this test binary");
            recorder
        })
        .clone()
}

/// The batch span named `name`, with its id.
fn batch_span(recorder: &Recorder, name: &str) -> (u64, Recorded) {
    let spans = recorder.spans.lock().unwrap();
    let found: Vec<_> = spans
        .iter()
        .filter(|(_, span)| {
            span.name == "batch" && span.fields.get("name").map(String::as_str) == Some(name)
        })
        .map(|(id, span)| (*id, span.clone()))
        .collect();
    assert_eq!(found.len(), 1, "one batch span named {name}: {spans:?}");
    found.into_iter().next().unwrap()
}

fn events_in(recorder: &Recorder, span: u64, message: &str) -> Vec<Recorded> {
    recorder
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|event| event.parent == Some(span) && event.name == message)
        .cloned()
        .collect()
}

#[test]
fn a_batch_is_a_span_its_chunks_are_child_spans_and_its_panic_an_event() {
    let recorder = recorder();
    let pool = Pool::new(2).unwrap();
    let failure = pool.scope(|s| {
        s.batch()
            .name("resize")
            .chunk(2)
            .map_async(|x: u32| assert!(x != 3, "image 3 is corrupt"), 0..10)
            .get()
            .unwrap_err()
    });
    assert_eq!(failure.index(), 3);

    let (id, batch) = batch_span(&recorder, "resize");
    assert_eq!(batch.fields["tasks"], "10");
    assert_eq!(batch.fields["lane"], "cpu");
    let chunks: Vec<Recorded> = recorder
        .spans
        .lock()
        .unwrap()
        .values()
        .filter(|span| span.name == "chunk" && span.parent == Some(id))
        .cloned()
        .collect();
    assert_eq!(chunks.len(), 5, "ten tasks in chunks of two: {chunks:?}");
    assert!(chunks
        .iter()
        .all(|chunk| chunk.entered == 1 && chunk.fields["len"] == "2"));
    let mut firsts: Vec<u32> = chunks
        .iter()
        .map(|chunk| chunk.fields["first"].parse().unwrap())
        .collect();
    firsts.sort_unstable();
    assert_eq!(firsts, [0, 2, 4, 6, 8]);

    let panics = events_in(&recorder, id, "task panicked");
    assert_eq!(panics.len(), 1);
    assert_eq!(panics[0].fields["index"], "3");
    assert_eq!(panics[0].fields["panic"], "image 3 is corrupt");
    assert!(panics[0].fields["location"].contains("tracing.rs"));
    assert_eq!(events_in(&recorder, id, "batch submitted").len(), 1);
    let done = events_in(&recorder, id, "batch done");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].fields["panicked"], "true");
}

#[test]
fn cancelled_tasks_are_an_event_in_their_batchs_span() {
    let recorder = recorder();
    // One worker, held by task 0: tasks 1 to 3 wait unclaimed.
    let pool = Pool::new(1).unwrap();
    let (started_tx, started) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = Mutex::new(released);
    let batch = pool.batch().name("uploads").chunk(1).map_async(
        move |i: u32| {
            if i == 0 {
                started_tx.send(()).unwrap();
                released.lock().unwrap().recv().unwrap();
            }
        },
        0..4,
    );
    started.recv().unwrap();
    assert_eq!(batch.cancel(), 3);
    release.send(()).unwrap();
    batch.wait();
    assert!(batch.failures()[1..]
        .iter()
        .all(|error| matches!(error.kind(), TaskErrorKind::Cancelled)));

    let (id, _) = batch_span(&recorder, "uploads");
    let events = events_in(&recorder, id, "tasks cancelled before they started");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].fields["first"], "1");
    assert_eq!(events[0].fields["count"], "3");
    let done = events_in(&recorder, id, "batch done");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].fields["panicked"], "false");
}
