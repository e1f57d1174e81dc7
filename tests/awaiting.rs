//! Awaitable handles, as a tokio user meets them: `.await` on a batch or a
//! task gives what `get()` gives, other async tasks keep running meanwhile,
//! and a handle can be returned, sent and awaited elsewhere. Also the
//! awkward cases: a future dropped before it is ready, one polled from two
//! executors in turn, a waker that panics.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use poolscope::{Batch, Pool, TaskErrorKind};

mod common;

use common::{eventually, watchdog, Gate};

/// A waker that counts its wakes.
#[derive(Default)]
struct CountingWaker {
    wakes: AtomicUsize,
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_waker() -> (Arc<CountingWaker>, Waker) {
    let counter = Arc::new(CountingWaker::default());
    (counter.clone(), Waker::from(counter))
}

fn poll_once<F: Future + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(waker))
}

#[test]
fn awaiting_a_batch_on_one_executor_thread_lets_other_tasks_run() {
    watchdog(|| {
        let pool = Arc::new(Pool::new(2).unwrap());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let ticks = Arc::new(AtomicUsize::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let ticker = {
                let (ticks, stop) = (ticks.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        ticks.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                })
            };
            // The batch cannot finish before the ticker has ticked, since
            // its tasks wait for it: if the await blocked the only
            // executor thread, this would never end.
            let seen = ticks.clone();
            let batch = pool.map_async(
                move |x: u64| {
                    while seen.load(Ordering::SeqCst) < 5 {
                        thread::sleep(Duration::from_millis(1));
                    }
                    x * 2
                },
                0..4,
            );
            assert_eq!(batch.await.unwrap(), [0, 2, 4, 6]);
            stop.store(true, Ordering::SeqCst);
            ticker.await.unwrap();
            assert!(ticks.load(Ordering::SeqCst) >= 5);
        });
    });
}

fn offload(pool: &Pool, n: u64) -> Batch<'static, u64> {
    pool.map_async(|x: u64| (0..=x).sum(), 0..n)
}

#[test]
fn a_handle_returned_from_a_function_is_sent_to_another_thread_and_awaited_there() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let batch = offload(&pool, 5);
        let task = pool.apply_async(|| "ok".to_string());
        let (sums, text) = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(async { (batch.await.unwrap(), task.await.unwrap()) })
        })
        .join()
        .unwrap();
        assert_eq!(sums, [0, 1, 3, 6, 10]);
        assert_eq!(text, "ok");
    });
}

#[test]
fn many_awaits_on_a_multi_thread_runtime_each_get_their_results() {
    watchdog(|| {
        let pool = Arc::new(Pool::new(2).unwrap());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let totals = runtime.block_on(async {
            let mut requests = Vec::new();
            for request in 0..16u64 {
                let pool = pool.clone();
                requests.push(tokio::spawn(async move {
                    let parts = pool.map_async(move |x: u64| x * request, 0..100);
                    parts.await.unwrap().iter().sum::<u64>()
                }));
            }
            let mut totals = Vec::new();
            for request in requests {
                totals.push(request.await.unwrap());
            }
            totals
        });
        let expected: Vec<u64> = (0..16).map(|r| r * 4950).collect();
        assert_eq!(totals, expected);
    });
}

#[test]
fn awaiting_gives_what_get_gives_failures_included() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let failing = pool
                .batch()
                .name("check")
                .map_async(|x: u32| assert!(x != 2, "two is odd here"), 0..4);
            let error = failing.await.unwrap_err();
            assert_eq!(error.index(), 2);
            assert_eq!(error.task_name(), Some("check"));
            assert_eq!(error.panic_message(), Some("two is odd here"));

            let task = pool.apply_async(|| -> u8 { panic!("single") });
            assert_eq!(task.await.unwrap_err().panic_message(), Some("single"));

            let cancelled = pool
                .batch()
                .chunk(1)
                .map_async(|_: u32| thread::sleep(Duration::from_millis(20)), 0..50);
            cancelled.cancel();
            let error = cancelled.await.unwrap_err();
            assert!(matches!(error.kind(), TaskErrorKind::Cancelled));

            let empty = pool.map_async(|x: u8| x, []);
            assert!(empty.await.unwrap().is_empty());
        });
    });
}

#[test]
fn a_scoped_batch_can_be_awaited_too() {
    watchdog(|| {
        let words = vec!["a", "bb", "ccc"];
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let lens = poolscope::scope(|s| {
            let batch = s.map_async(|w: &&str| w.len(), &words);
            runtime.block_on(batch.into_future())
        });
        assert_eq!(lens.unwrap(), [1, 2, 3]);
    });
}

#[test]
fn a_future_dropped_before_it_is_ready_leaves_nothing_behind() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let gate = Arc::new(Gate::default());
        let dropped = Arc::new(AtomicUsize::new(0));
        struct CountDrop(Arc<AtomicUsize>);
        impl Drop for CountDrop {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let task_gate = gate.clone();
        let counter = dropped.clone();
        let batch = pool.map_async(
            move |_: u32| {
                task_gate.wait();
                CountDrop(counter.clone())
            },
            0..3,
        );
        let (wakes, waker) = counting_waker();
        let mut future = batch.into_future();
        assert!(poll_once(&mut future, &waker).is_pending());
        drop(future);
        gate.open();
        // Every result is dropped (by the worker that finished last, since
        // the handle is gone), and the stale waker is not woken.
        eventually("the results are dropped", || {
            dropped.load(Ordering::SeqCst) == 3
        });
        assert_eq!(wakes.wakes.load(Ordering::SeqCst), 0);
        pool.close();
        pool.join();
    });
}

#[test]
fn a_future_polled_from_two_executors_in_turn_wakes_the_last_one() {
    watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let gate = Arc::new(Gate::default());
        let task_gate = gate.clone();
        let task = pool.apply_async(move || task_gate.wait_then(5));
        let mut future = task.into_future();
        let (first, first_waker) = counting_waker();
        assert!(poll_once(&mut future, &first_waker).is_pending());
        // Moved to another thread and polled there with another waker.
        let (second, second_waker) = counting_waker();
        let future = thread::spawn(move || {
            assert!(poll_once(&mut future, &second_waker).is_pending());
            future
        })
        .join()
        .unwrap();
        gate.open();
        eventually("the second waker is woken", || {
            second.wakes.load(Ordering::SeqCst) == 1
        });
        assert_eq!(first.wakes.load(Ordering::SeqCst), 0);
        let mut future = future;
        let (_, third_waker) = counting_waker();
        assert_eq!(poll_once(&mut future, &third_waker), Poll::Ready(Ok(5)));
    });
}

#[test]
fn a_waker_that_panics_does_not_kill_the_worker() {
    watchdog(|| {
        struct Exploding;
        impl Wake for Exploding {
            fn wake(self: Arc<Self>) {
                panic!("this executor's waker is broken");
            }
        }
        let pool = Pool::new(1).unwrap();
        let gate = Arc::new(Gate::default());
        let task_gate = gate.clone();
        let mut future = pool
            .apply_async(move || task_gate.wait_then(1))
            .into_future();
        let waker = Waker::from(Arc::new(Exploding));
        assert!(poll_once(&mut future, &waker).is_pending());
        gate.open();
        // The one worker survived the waker's panic and runs more work.
        assert_eq!(pool.apply(|| 2).unwrap(), 2);
        let (_, waker) = counting_waker();
        assert!(matches!(poll_once(&mut future, &waker), Poll::Ready(Ok(1))));
    });
}

#[test]
fn streams_are_read_with_next_async() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut ordered = pool.map_async(|x: u32| x * x, 0..20).results();
            let mut squares = Vec::new();
            while let Some(result) = ordered.next_async().await {
                squares.push(result.unwrap());
            }
            assert_eq!(squares, (0..20).map(|x| x * x).collect::<Vec<_>>());

            let mut completed = pool
                .batch()
                .blocking(true)
                .map_async(|ms: u64| thread::sleep(Duration::from_millis(ms)), [150, 0])
                .as_completed();
            let mut order = Vec::new();
            while let Some((index, result)) = completed.next_async().await {
                result.unwrap();
                order.push(index);
            }
            assert_eq!(order, [1, 0]);

            let mut endless = pool.batch().in_flight(8).imap(|x: u64| x + 1, 0..);
            let mut firsts = Vec::new();
            for _ in 0..100 {
                firsts.push(endless.next_async().await.unwrap().unwrap());
            }
            assert_eq!(firsts, (1..=100).collect::<Vec<_>>());

            let mut unordered = pool.imap_unordered(|x: u64| x * 3, 0..100);
            let mut seen = Vec::new();
            while let Some((index, result)) = unordered.next_async().await {
                assert_eq!(result.unwrap(), index as u64 * 3);
                seen.push(index);
            }
            seen.sort_unstable();
            assert_eq!(seen, (0..100).collect::<Vec<_>>());
        });
    });
}

#[test]
fn an_async_stream_read_while_tasks_finish_is_woken_for_each() {
    watchdog(|| {
        // One worker, tasks released one by one: every `next_async` must
        // be woken by the task it waits for, or the read hangs.
        let pool = Pool::new(1).unwrap();
        let released = Arc::new(Mutex::new(0usize));
        let gate = released.clone();
        let mut results = pool
            .batch()
            .chunk(1)
            .map_async(
                move |i: usize| {
                    while *gate.lock().unwrap() <= i {
                        thread::sleep(Duration::from_millis(1));
                    }
                    i
                },
                0..5,
            )
            .results();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            for expected in 0..5 {
                *released.lock().unwrap() += 1;
                assert_eq!(results.next_async().await.unwrap().unwrap(), expected);
            }
            assert!(results.next_async().await.is_none());
        });
    });
}
