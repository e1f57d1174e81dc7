//! Backpressure: a stream over a huge or endless iterator (`imap`,
//! `imap_unordered`) with a bound on the tasks in flight pulls inputs only as
//! results are consumed, so memory stays bounded whatever the input's size.
//!
//! Inputs count themselves: each `Tracked` value adds one to `CREATED` when
//! made and one to `DROPPED` when dropped, so `CREATED - DROPPED` is the
//! number of inputs alive at any moment. Each test uses its own counters.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use poolscope::Pool;

mod common;

use common::watchdog;

/// Counts inputs made and dropped, and the most ever alive at once.
#[derive(Default)]
struct Census {
    created: AtomicUsize,
    dropped: AtomicUsize,
    peak: AtomicUsize,
}

impl Census {
    fn created(&self) -> usize {
        self.created.load(Ordering::SeqCst)
    }

    fn alive(&self) -> usize {
        self.created() - self.dropped.load(Ordering::SeqCst)
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// An input that reports its birth and death to a census.
struct Tracked {
    value: u64,
    census: Arc<Census>,
}

impl Tracked {
    fn new(value: u64, census: &Arc<Census>) -> Tracked {
        // Only the consumer's thread creates inputs, and the number alive
        // rises only here, so checking at each creation finds the true peak.
        let created = census.created.fetch_add(1, Ordering::SeqCst) + 1;
        let alive = created - census.dropped.load(Ordering::SeqCst);
        census.peak.fetch_max(alive, Ordering::SeqCst);
        Tracked {
            value,
            census: census.clone(),
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.census.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// How many inputs the huge stream runs through: ten million in optimized
/// builds (`cargo test --release`, about 7 s on two cores). Unoptimized, ten
/// million take about 25 s on two cores, too close to the one-minute hang
/// guard on a loaded machine, so plain `cargo test` goes through one million
/// (about 2 s), which still refills the 64-input window over 60 000 times.
/// `POOLSCOPE_BACKPRESSURE_INPUTS` overrides the size (`.ci/valgrind` sets it
/// low: under valgrind a million inputs outlast the hang guard).
fn huge() -> u64 {
    let default = if cfg!(debug_assertions) {
        1_000_000
    } else {
        10_000_000
    };
    std::env::var("POOLSCOPE_BACKPRESSURE_INPUTS")
        .ok()
        .and_then(|inputs| inputs.parse().ok())
        .unwrap_or(default)
}

#[test]
fn imap_over_millions_of_inputs_keeps_at_most_the_bound_alive() {
    watchdog(|| {
        const BOUND: usize = 64;
        let pool = Pool::new(2).unwrap();
        let threads = pool.threads();
        let census = Arc::new(Census::default());
        let inputs = {
            let census = census.clone();
            (0..huge()).map(move |i| Tracked::new(i, &census))
        };
        let mut consumed = 0u64;
        pool.scope(|s| {
            let stream = s
                .batch()
                .in_flight(BOUND)
                .imap(|input: Tracked| input.value * 2, inputs);
            for result in stream {
                assert_eq!(result.unwrap(), consumed * 2, "input order");
                consumed += 1;
                // Inputs are pulled as results are consumed, never far ahead.
                let created = census.created();
                assert!(
                    created <= consumed as usize + BOUND,
                    "{created} inputs pulled after {consumed} results"
                );
            }
        });
        assert_eq!(consumed, huge());
        assert_eq!(census.alive(), 0, "every input was dropped");
        assert!(
            census.peak() <= BOUND + threads,
            "peak of {} inputs alive at once, bound {BOUND}",
            census.peak()
        );
    });
}

#[test]
fn imap_unordered_over_a_huge_input_keeps_at_most_the_bound_alive() {
    watchdog(|| {
        const BOUND: usize = 64;
        let n = huge() / 10;
        let pool = Pool::new(2).unwrap();
        let threads = pool.threads();
        let census = Arc::new(Census::default());
        let inputs = {
            let census = census.clone();
            (0..n).map(move |i| Tracked::new(i, &census))
        };
        let mut consumed = 0usize;
        let mut sum = 0u64;
        pool.scope(|s| {
            let stream = s
                .batch()
                .in_flight(BOUND)
                .imap_unordered(|input: Tracked| input.value, inputs);
            for (index, result) in stream {
                let value = result.unwrap();
                assert_eq!(value, index as u64, "each result names its input");
                sum += value;
                consumed += 1;
                let created = census.created();
                assert!(
                    created <= consumed + BOUND,
                    "{created} inputs pulled after {consumed} results"
                );
            }
        });
        assert_eq!(consumed as u64, n);
        assert_eq!(sum, n * (n - 1) / 2, "every input exactly once");
        assert_eq!(census.alive(), 0);
        assert!(census.peak() <= BOUND + threads, "peak {}", census.peak());
    });
}

#[test]
fn an_endless_input_consumed_partially_then_dropped_does_not_hang() {
    watchdog(|| {
        const BOUND: usize = 16;
        let pool = Pool::new(2).unwrap();
        let census = Arc::new(Census::default());
        let endless = {
            let census = census.clone();
            (0..).map(move |i| Tracked::new(i, &census))
        };
        let firsts: Vec<u64> = pool.scope(|s| {
            s.batch()
                .in_flight(BOUND)
                .imap(|input: Tracked| input.value + 1, endless)
                .take(1000)
                .map(Result::unwrap)
                .collect()
        });
        assert_eq!(firsts, (1..=1000).collect::<Vec<u64>>());
        assert!(
            census.created() <= 1000 + BOUND,
            "pulled {} inputs to give 1000 results",
            census.created()
        );
        assert_eq!(census.alive(), 0, "inputs pulled and not run were dropped");
    });
}

#[test]
fn an_endless_unordered_stream_dropped_mid_way_does_not_hang() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let census = Arc::new(Census::default());
        let endless = {
            let census = census.clone();
            (0..).map(move |i| Tracked::new(i, &census))
        };
        pool.scope(|s| {
            let mut stream = s.batch().in_flight(32).imap_unordered(
                |input: Tracked| {
                    thread::sleep(Duration::from_micros(50));
                    input.value
                },
                endless,
            );
            let some: Vec<usize> = stream.by_ref().take(500).map(|(i, _)| i).collect();
            assert_eq!(some.len(), 500);
            drop(stream);
            // The scope still ends: the stream's queued tasks were cancelled
            // or run, and nothing waits for more input.
        });
        assert!(census.created() <= 500 + 32, "{}", census.created());
        assert_eq!(census.alive(), 0);
    });
}

#[test]
fn an_endless_stream_on_the_default_bound_does_not_hang_either() {
    watchdog(|| {
        let pool = Pool::new(3).unwrap();
        let tenth = pool.scope(|s| s.imap(|x: u64| x * x, 0..).nth(9).unwrap().unwrap());
        assert_eq!(tenth, 81);
    });
}
