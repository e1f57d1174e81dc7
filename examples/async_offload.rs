//! A tokio program that offloads CPU-heavy batches to a poolscope pool and
//! awaits them, while its other async tasks keep running: the await never
//! blocks an executor thread (the worker that finishes a batch wakes the
//! task waiting for it).
//!
//! Sixteen "requests" each count the primes in a range of their own on the
//! pool; a heartbeat task ticks every millisecond meanwhile, on the same
//! single executor thread, and reports how often it ran.
//!
//! Run: `cargo run --release --example async_offload`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use poolscope::Pool;

fn is_prime(n: u64) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

/// One request's work: submitted as a batch of owned work, whose handle is
/// awaited by the caller.
async fn count_primes(pool: &Pool, request: u64) -> usize {
    let start = request * 200_000;
    let chunks: Vec<(u64, u64)> = (0..20)
        .map(|i| (start + i * 10_000, start + (i + 1) * 10_000))
        .collect();
    let counts = pool
        .map_async(
            |(from, to): (u64, u64)| (from..to).filter(|&n| is_prime(n)).count(),
            chunks,
        )
        .await
        .expect("no task panics");
    counts.iter().sum()
}

fn main() {
    let pool = Arc::new(Pool::builder().build().expect("start the pool"));
    // One executor thread: if an await blocked it, the heartbeat would stop.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("start tokio");

    runtime.block_on(async {
        let beats = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let heartbeat = tokio::spawn({
            let (beats, done) = (beats.clone(), done.clone());
            async move {
                while !done.load(Ordering::Relaxed) {
                    beats.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        });

        let started = Instant::now();
        let requests: Vec<_> = (0..16)
            .map(|request| {
                let pool = pool.clone();
                tokio::spawn(async move { (request, count_primes(&pool, request).await) })
            })
            .collect();
        let mut total = 0;
        for request in requests {
            let (request, primes) = request.await.expect("the request task ran");
            println!("request {request:2}: {primes} primes");
            total += primes;
        }
        let elapsed = started.elapsed();
        done.store(true, Ordering::Relaxed);
        heartbeat.await.expect("the heartbeat ran");
        println!(
            "16 requests, {total} primes in {:.1} ms on {} pool threads; the heartbeat beat {} times meanwhile",
            elapsed.as_secs_f64() * 1e3,
            pool.threads(),
            beats.load(Ordering::Relaxed),
        );
    });
}
