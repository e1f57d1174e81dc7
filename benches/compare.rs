//! poolscope side by side with what a user would pick instead: rayon,
//! the `threadpool` crate, `std::thread::scope` and Python's ThreadPool.
//!
//! Run: `cargo bench --bench compare` (full) or
//! `cargo bench --bench compare -- --quick` (tiny sizes, as CI does).
//! Every workload runs warm-ups, then reports the median of repetitions,
//! all in one process so the ratios compare like with like.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use poolscope::{fork_join, par_batch, pool_scope, pool_task, Pool, Scope};
use rayon::prelude::*;

/// Counts live and peak heap bytes for the memory row, and only while that
/// row runs: counting on every allocation puts two contended atomic updates
/// on every row's allocation path, which distorted the rows that allocate
/// per task (poolscope's and rayon's alike).
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            let size = layout.size() as isize;
            let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            // Frees of blocks allocated before counting started make LIVE
            // dip below zero, which is why it is signed.
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

struct Config {
    quick: bool,
    reps: usize,
    /// Workloads to run (`-- --only 8,9`); all when empty.
    only: Vec<u32>,
}

impl Config {
    fn wants(&self, workload: u32) -> bool {
        self.only.is_empty() || self.only.contains(&workload)
    }
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    samples[samples.len() / 2]
}

fn percentile(mut samples: Vec<f64>, p: f64) -> f64 {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

/// Median seconds of `reps` runs of `f`, after two warm-ups.
fn time(config: &Config, mut f: impl FnMut()) -> f64 {
    for _ in 0..2 {
        f();
    }
    let samples = (0..config.reps)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    median(samples)
}

/// Median seconds of each contender, run round-robin (one repetition of
/// each in turn) after two warm-up rounds, so that all of them see the same
/// moments of the machine. Each contender returns the seconds it measured
/// itself (so that it can leave its own set-up out).
fn time_interleaved(config: &Config, contenders: &mut [&mut dyn FnMut() -> f64]) -> Vec<f64> {
    for _ in 0..2 {
        for contender in contenders.iter_mut() {
            contender();
        }
    }
    let mut samples = vec![Vec::new(); contenders.len()];
    for _ in 0..config.reps {
        for (contender, samples) in contenders.iter_mut().zip(&mut samples) {
            samples.push(contender());
        }
    }
    samples.into_iter().map(median).collect()
}

/// Seconds `f` takes.
fn seconds(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

fn row(name: &str, value: f64, unit: &str, note: &str) {
    println!("| {name:<58} | {value:>12.2} {unit:<8} | {note} |");
}

fn header(title: &str) {
    println!();
    println!("### {title}");
    println!();
    println!("| {:<58} | {:>21} | ratio / note |", "variant", "median");
    println!("|{}|{}|---|", "-".repeat(60), "-".repeat(23));
}

/// Spins for about `ns` nanoseconds of CPU work.
fn work(iterations: u64) -> u64 {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..iterations {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    black_box(x)
}

fn calibrate(target: Duration) -> u64 {
    let mut iterations = 1_000u64;
    loop {
        let start = Instant::now();
        work(iterations);
        let took = start.elapsed();
        if took >= Duration::from_millis(20) {
            return (iterations as f64 * target.as_secs_f64() / took.as_secs_f64()) as u64;
        }
        iterations *= 2;
    }
}

fn python_threadpool(n: usize, chunksize: Option<usize>) -> Option<f64> {
    let chunk = chunksize.map_or(String::new(), |c| format!(", chunksize={c}"));
    let script = format!(
        "import time\nfrom multiprocessing.pool import ThreadPool\n\
         def f(x):\n    return None\n\
         with ThreadPool({threads}) as p:\n    p.map(f, range(1000){chunk})\n    best = []\n    \
         for _ in range(3):\n        t = time.perf_counter(); p.map(f, range({n}){chunk}); best.append(time.perf_counter() - t)\n    \
         best.sort(); print(best[1])\n",
        threads = thread::available_parallelism().map_or(2, |n| n.get()),
    );
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8(output.stdout).ok()?.trim().parse().ok()
}

/// The empty task of workload 1, as a user would mark it.
#[pool_task]
fn empty(_: usize) {}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|list| list.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default();
    let config = Config {
        quick,
        reps: if quick { 3 } else { 11 },
        only,
    };
    // `-- --split-cost MODE`: one fib(32) with cutoff 10 and nothing else,
    // for counting instructions per split under callgrind (BENCHMARKS.md).
    if let Some(mode) = args
        .iter()
        .position(|a| a == "--split-cost")
        .and_then(|i| args.get(i + 1))
    {
        split_cost(mode);
        return;
    }
    let threads = thread::available_parallelism().map_or(2, |n| n.get());
    let pool = Pool::new(threads).unwrap();
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let classic = threadpool::ThreadPool::new(threads);
    println!(
        "# poolscope benchmark: {threads} threads{}",
        if quick { " (quick)" } else { "" }
    );

    if config.wants(1) || config.wants(2) {
        // 1. One batch of empty tasks.
        let n = if config.quick { 10_000 } else { 100_000 };
        header(&format!("1. {n} empty tasks as one batch (ns/task)"));
        let ours = time(&config, || {
            pool_scope!(on = &pool, |s| par_batch!(s, empty(i) for i in 0..n).wait())
        }) * 1e9
            / n as f64;
        let ours_api = time(&config, || {
            pool.scope(|s| s.map_async(|_: usize| {}, 0..n).wait())
        }) * 1e9
            / n as f64;
        let rayon_spawn = time(&config, || {
            rayon_pool.scope(|s| {
                for _ in 0..n {
                    s.spawn(|_| {});
                }
            })
        }) * 1e9
            / n as f64;
        let rayon_par_iter = time(&config, || {
            rayon_pool.install(|| (0..n).into_par_iter().for_each(|_| {}))
        }) * 1e9
            / n as f64;
        let threadpool_execute = time(&config, || {
            for _ in 0..n {
                classic.execute(|| {});
            }
            classic.join();
        }) * 1e9
            / n as f64;
        row(
            "poolscope par_batch! + wait",
            ours,
            "ns/task",
            "1.00 (target <= 10 ns, >= 20x rayon scope + spawn)",
        );
        row(
            "poolscope map_async + wait (runtime API)",
            ours_api,
            "ns/task",
            &format!("{:.2}", ours_api / ours),
        );
        row(
            "rayon scope + spawn per task",
            rayon_spawn,
            "ns/task",
            &format!("poolscope is {:.1}x faster", rayon_spawn / ours),
        );
        row(
            "rayon par_iter().for_each (reference)",
            rayon_par_iter,
            "ns/task",
            &format!("{:.2}x poolscope", rayon_par_iter / ours),
        );
        row(
            "threadpool execute + join",
            threadpool_execute,
            "ns/task",
            &format!("poolscope is {:.1}x faster", threadpool_execute / ours),
        );
        for (label, chunk) in [
            ("Python ThreadPool.map chunksize=1", Some(1)),
            ("Python ThreadPool.map default chunksize", None),
        ] {
            match python_threadpool(n, chunk) {
                Some(seconds) => {
                    let per = seconds * 1e9 / n as f64;
                    row(
                        label,
                        per,
                        "ns/task",
                        &format!("poolscope is {:.0}x faster", per / ours),
                    );
                }
                None => println!("| {label:<58} | {:>21} | python3 not available |", "-"),
            }
        }

        // 2. Empty tasks submitted one at a time.
        header(&format!(
            "2. {n} empty tasks submitted one at a time (ns/task)"
        ));
        let ours_one = time(&config, || {
            pool.scope(|s| {
                for _ in 0..n {
                    let _ = s.apply_async(|| {});
                }
            })
        }) * 1e9
            / n as f64;
        row(
            "poolscope apply_async per task",
            ours_one,
            "ns/task",
            &format!("{:.2}x rayon (target <= 0.5)", ours_one / rayon_spawn),
        );
        row(
            "rayon scope + spawn per task",
            rayon_spawn,
            "ns/task",
            "1.00",
        );
        row(
            "threadpool execute per task (reference, no handle)",
            threadpool_execute,
            "ns/task",
            &format!("{:.2}x rayon", threadpool_execute / rayon_spawn),
        );
    }
    if config.wants(3) {
        // 3. Calibrated 10 µs tasks.
        let tasks = 1_000usize;
        let iterations = calibrate(Duration::from_micros(10));
        let serial = time(&config, || {
            for _ in 0..tasks {
                work(iterations);
            }
        });
        header(&format!(
            "3. {tasks} tasks of ~10 us CPU work: efficiency = (serial / threads) / wall"
        ));
        let ours_cpu = time(&config, || {
            pool.scope(|s| s.map_async(|_: usize| work(iterations), 0..tasks).wait())
        });
        let rayon_cpu = time(&config, || {
            rayon_pool.scope(|s| {
                for _ in 0..tasks {
                    s.spawn(|_| {
                        work(iterations);
                    });
                }
            })
        });
        // The ceiling the machine allows: `threads` plain threads, lined up
        // before the clock starts, each running an equal share back to back,
        // with no pool at all. Wall time is the slowest thread's. The threads
        // live across the repetitions, like a pool's: freshly spawned ones start
        // on their parent's core and wait for the scheduler to spread them,
        // which on runs this short measured ~55 % instead of a ceiling. (On
        // vCPUs that are hyper-thread siblings this is below 100 %.)
        let raw_cpu = {
            let rounds = config.reps + 2;
            let start_line = Barrier::new(threads);
            let times = Mutex::new(vec![0.0f64; rounds]);
            thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| {
                        for round in 0..rounds {
                            start_line.wait();
                            let start = Instant::now();
                            for _ in 0..tasks / threads {
                                work(iterations);
                            }
                            let took = start.elapsed().as_secs_f64();
                            let mut times = times.lock().unwrap();
                            times[round] = times[round].max(took);
                        }
                    });
                }
            });
            median(times.into_inner().unwrap().into_iter().skip(2).collect())
        };
        let efficiency = |wall: f64| serial / threads as f64 / wall * 100.0;
        row("serial (one thread)", serial * 1e3, "ms", "");
        row(
            "poolscope map_async",
            ours_cpu * 1e3,
            "ms",
            &format!("{:.1}% efficiency (target >= 99%)", efficiency(ours_cpu)),
        );
        row(
            "rayon scope + spawn",
            rayon_cpu * 1e3,
            "ms",
            &format!("{:.1}% efficiency", efficiency(rayon_cpu)),
        );
        row(
            "plain threads, an equal share each (machine ceiling)",
            raw_cpu * 1e3,
            "ms",
            &format!("{:.1}% efficiency", efficiency(raw_cpu)),
        );
    }
    if config.wants(4) {
        // 4. Round trip of one task on an idle pool.
        header("4. round trip of one empty task on an idle pool (us; first interleaved trials of the three, then poolscope's and the ping-pong's alone)");
        let trials = if config.quick { 50 } else { 400 };
        let idle = Duration::from_millis(2);
        let mut ours_rt = Vec::new();
        let mut rayon_rt = Vec::new();
        let mut ping_pong = Vec::new();
        let mut raw = PingPong::new();
        // One poolscope round trip after an idle pause, in microseconds.
        let ours_trip = || {
            thread::sleep(idle);
            let start = Instant::now();
            pool.scope(|s| s.apply_async(|| black_box(1)).get().unwrap());
            start.elapsed().as_secs_f64() * 1e6
        };
        // Interleaved, so that all three see the same moments of the machine.
        for _ in 0..trials {
            ours_rt.push(ours_trip());
            thread::sleep(idle);
            let start = Instant::now();
            rayon_pool.install(|| black_box(1));
            rayon_rt.push(start.elapsed().as_secs_f64() * 1e6);
            thread::sleep(idle);
            ping_pong.push(raw.round_trip());
        }
        // Then poolscope and the ping-pong alone, one after the other, with
        // nothing else waking between their trials.
        let ours_alone: Vec<f64> = (0..trials).map(|_| ours_trip()).collect();
        let mut ping_pong_alone = Vec::new();
        for _ in 0..trials {
            thread::sleep(idle);
            ping_pong_alone.push(raw.round_trip());
        }
        drop(raw);
        let (p99_ping, med_ping) = (percentile(ping_pong.clone(), 0.99), median(ping_pong));
        let (med_ours, p99_ours) = (median(ours_rt.clone()), percentile(ours_rt, 0.99));
        let (med_rayon, p99_rayon) = (median(rayon_rt.clone()), percentile(rayon_rt, 0.99));
        let p99_ours_alone = percentile(ours_alone, 0.99);
        let p99_ping_alone = percentile(ping_pong_alone, 0.99);
        row(
            "poolscope scope + apply_async + get, median",
            med_ours,
            "us",
            &format!("{:.2}x rayon (target <= 1)", med_ours / med_rayon),
        );
        row(
            "poolscope p99",
            p99_ours,
            "us",
            &format!("{:.2}x ping-pong p99 (target <= 2)", p99_ours / p99_ping),
        );
        row("rayon install, median", med_rayon, "us", "");
        row("rayon install, p99", p99_rayon, "us", "");
        row("raw park/unpark ping-pong, median", med_ping, "us", "");
        row("raw park/unpark ping-pong, p99", p99_ping, "us", "");
        row(
            "poolscope p99, trials alone",
            p99_ours_alone,
            "us",
            &format!(
                "{:.2}x ping-pong p99 alone (target <= 2)",
                p99_ours_alone / p99_ping_alone
            ),
        );
        row(
            "raw park/unpark ping-pong p99, trials alone",
            p99_ping_alone,
            "us",
            "",
        );
    }
    if config.wants(5) {
        // 5. Empty scope on the default pool.
        header("5. open and close an empty scope (us)");
        let reps = if config.quick { 1_000 } else { 100_000 };
        Pool::global();
        let ours_scope = time(&config, || {
            for _ in 0..reps {
                pool_scope!(|s| {
                    black_box(s);
                });
            }
        }) * 1e6
            / reps as f64;
        let std_reps = reps / 10;
        let std_scope = time(&config, || {
            for _ in 0..std_reps {
                thread::scope(|s| {
                    s.spawn(|| black_box(1));
                });
            }
        }) * 1e6
            / std_reps as f64;
        row(
            "pool_scope! on the default pool",
            ours_scope,
            "us",
            &format!(
                "{:.0}x faster than std (target >= 10, <= 2 us)",
                std_scope / ours_scope
            ),
        );
        row(
            "std::thread::scope with one spawned thread",
            std_scope,
            "us",
            "",
        );
    }
    if config.wants(6) {
        // 6. Sleeping tasks.
        header("6. ten 50 ms sleeping tasks (ms)");
        let sleep = || thread::sleep(Duration::from_millis(50));
        let one_cfg = Config {
            quick: config.quick,
            reps: 3,
            only: Vec::new(),
        };
        let cpu_lane = time(&one_cfg, || {
            pool.scope(|s| s.map_async(|_: u32| sleep(), 0..10).wait())
        }) * 1e3;
        let blocking_lane = time(&one_cfg, || {
            pool.scope(|s| {
                s.batch()
                    .blocking(true)
                    .map_async(|_: u32| sleep(), 0..10)
                    .wait()
            })
        }) * 1e3;
        let rayon_sleep = time(&one_cfg, || {
            rayon_pool.scope(|s| {
                for _ in 0..10 {
                    s.spawn(|_| sleep());
                }
            })
        }) * 1e3;
        row("poolscope CPU lane", cpu_lane, "ms", "");
        row(
            "poolscope blocking lane",
            blocking_lane,
            "ms",
            &format!("{:.2}x one task (target <= 1.2)", blocking_lane / 50.0),
        );
        row(
            "rayon scope + spawn, default threads",
            rayon_sleep,
            "ms",
            "",
        );
    }
    if config.wants(7) {
        // 7. Memory per queued task.
        let m = if config.quick { 10_000 } else { 1_000_000 };
        header(&format!("7. peak heap bytes per queued task, {m} tasks"));
        let gate = Barrier::new(threads + 1);
        let ours_bytes = peak_bytes(|| {
            pool.scope(|s| {
                // Hold every worker so the batch stays queued while measured.
                let blockers = s.batch().chunk(1).map_async(
                    |_: usize| {
                        gate.wait();
                    },
                    0..threads,
                );
                let batch = s.map_async(|_: usize| {}, 0..m);
                gate.wait();
                blockers.wait();
                batch.wait();
            })
        }) / m as f64;
        let rayon_bytes = peak_bytes(|| {
            // rayon runs the scope body on one of its workers, so the body is
            // one of the parties holding the workers.
            let gate = Arc::new(Barrier::new(threads));
            rayon_pool.scope(|s| {
                for _ in 0..threads - 1 {
                    let gate = gate.clone();
                    s.spawn(move |_| {
                        gate.wait();
                    });
                }
                for _ in 0..m {
                    s.spawn(|_| {});
                }
                gate.wait();
            })
        }) / m as f64;
        row(
            "poolscope map_async",
            ours_bytes,
            "B/task",
            &format!("{:.2}x rayon (target <= 1)", ours_bytes / rayon_bytes),
        );
        row("rayon scope + spawn", rayon_bytes, "B/task", "");
    }
    recursion(&config, &pool, &rayon_pool);
    caller_side(&config, &pool, &rayon_pool, threads);
    async_round_trip(&config, &pool, &rayon_pool);
    blocking_cap(&config, threads);
}

fn peak_bytes(f: impl FnOnce()) -> f64 {
    LIVE.store(0, Ordering::SeqCst);
    PEAK.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    f();
    COUNTING.store(false, Ordering::SeqCst);
    PEAK.load(Ordering::SeqCst) as f64
}

/// One thread wakes a parked thread, which wakes it back: the floor for any
/// pool's idle round trip.
/// Two threads handing a turn back and forth with `park`/`unpark`: the
/// floor for a round trip that wakes an idle thread and is woken back.
struct PingPong {
    flag: Arc<AtomicUsize>,
    round: usize,
    peer: Option<thread::JoinHandle<()>>,
}

impl PingPong {
    fn new() -> PingPong {
        let flag = Arc::new(AtomicUsize::new(0));
        let main = thread::current();
        let peer_flag = flag.clone();
        let peer = thread::spawn(move || loop {
            let seen = peer_flag.load(Ordering::Acquire);
            if seen == usize::MAX {
                return;
            }
            if seen % 2 == 1 {
                peer_flag.store(seen + 1, Ordering::Release);
                main.unpark();
            } else {
                thread::park();
            }
        });
        PingPong {
            flag,
            round: 0,
            peer: Some(peer),
        }
    }

    /// One round trip, in microseconds.
    fn round_trip(&mut self) -> f64 {
        self.round += 1;
        let peer = self.peer.as_ref().unwrap().thread();
        let start = Instant::now();
        self.flag.store(2 * self.round - 1, Ordering::Release);
        peer.unpark();
        while self.flag.load(Ordering::Acquire) != 2 * self.round {
            thread::park();
        }
        start.elapsed().as_secs_f64() * 1e6
    }
}

impl Drop for PingPong {
    fn drop(&mut self) {
        self.flag.store(usize::MAX, Ordering::Release);
        let peer = self.peer.take().unwrap();
        peer.thread().unpark();
        peer.join().unwrap();
    }
}

fn fib_seq(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        fib_seq(n - 1) + fib_seq(n - 2)
    }
}

fn fib_fork_join(n: u64, cutoff: u64) -> u64 {
    if n <= cutoff {
        return fib_seq(n);
    }
    let (a, b) = fork_join(
        || fib_fork_join(n - 1, cutoff),
        || fib_fork_join(n - 2, cutoff),
    );
    a + b
}

fn fib_rayon(n: u64, cutoff: u64) -> u64 {
    if n <= cutoff {
        return fib_seq(n);
    }
    let (a, b) = rayon::join(|| fib_rayon(n - 1, cutoff), || fib_rayon(n - 2, cutoff));
    a + b
}

fn fib_block<'s>(pool: &'s Scope<'s, '_>, n: u64, cutoff: u64) -> u64 {
    if n <= cutoff {
        return fib_seq(n);
    }
    let (a, b) = par_batch!(pool, {
        fib_block(pool, n - 1, cutoff);
        fib_block(pool, n - 2, cutoff);
    })
    .get()
    .unwrap();
    a + b
}

/// Lomuto partition around the middle element; returns the pivot's index.
fn partition(values: &mut [u64]) -> usize {
    let last = values.len() - 1;
    values.swap(values.len() / 2, last);
    let pivot = values[last];
    let mut store = 0;
    for i in 0..last {
        if values[i] < pivot {
            values.swap(i, store);
            store += 1;
        }
    }
    values.swap(store, last);
    store
}

const SORT_CUTOFF: usize = 4096;

fn quicksort_seq(values: &mut [u64]) {
    if values.len() <= SORT_CUTOFF {
        values.sort_unstable();
        return;
    }
    let mid = partition(values);
    let (left, right) = values.split_at_mut(mid);
    quicksort_seq(left);
    quicksort_seq(&mut right[1..]);
}

fn quicksort_fork_join(values: &mut [u64]) {
    if values.len() <= SORT_CUTOFF {
        values.sort_unstable();
        return;
    }
    let mid = partition(values);
    let (left, right) = values.split_at_mut(mid);
    fork_join(
        || quicksort_fork_join(left),
        || quicksort_fork_join(&mut right[1..]),
    );
}

fn quicksort_rayon(values: &mut [u64]) {
    if values.len() <= SORT_CUTOFF {
        values.sort_unstable();
        return;
    }
    let mid = partition(values);
    let (left, right) = values.split_at_mut(mid);
    rayon::join(
        || quicksort_rayon(left),
        || quicksort_rayon(&mut right[1..]),
    );
}

fn quicksort_block<'s>(pool: &'s Scope<'s, '_>, values: &'s mut [u64]) {
    if values.len() <= SORT_CUTOFF {
        values.sort_unstable();
        return;
    }
    let mid = partition(values);
    let (left, right) = values.split_at_mut(mid);
    let right = &mut right[1..];
    par_batch!(pool, {
        quicksort_block(pool, left);
        quicksort_block(pool, right);
    })
    .wait();
}

/// Workloads 8 to 10: recursive divide-and-conquer, the work rayon is
/// built for.
fn recursion(config: &Config, pool: &Pool, rayon_pool: &rayon::ThreadPool) {
    let n = if config.quick { 22 } else { 32 };
    if config.wants(8) {
        header(&format!(
            "8. fork_join: fib({n}) with cutoffs 10 and 20 (ms; contenders interleaved)"
        ));
        for cutoff in [10, 20] {
            let times = time_interleaved(
                config,
                &mut [
                    &mut || {
                        seconds(|| {
                            assert_ne!(
                                pool.scope(|s| s.apply(|| fib_fork_join(n, cutoff)).unwrap()),
                                0
                            )
                        })
                    },
                    &mut || seconds(|| assert_ne!(rayon_pool.install(|| fib_rayon(n, cutoff)), 0)),
                    &mut || seconds(|| assert_ne!(black_box(fib_seq(black_box(n))), 0)),
                ],
            );
            let target = if cutoff == 10 { "1.0" } else { "1.05" };
            row(
                &format!("poolscope fork_join, cutoff {cutoff}"),
                times[0] * 1e3,
                "ms",
                &format!(
                    "{:.2}x rayon::join (target <= {target})",
                    times[0] / times[1]
                ),
            );
            row(
                &format!("rayon::join, cutoff {cutoff}"),
                times[1] * 1e3,
                "ms",
                "1.00",
            );
            row(
                "sequential",
                times[2] * 1e3,
                "ms",
                &format!("{:.2}x rayon::join", times[2] / times[1]),
            );
        }
    }
    let len = if config.quick { 200_000 } else { 10_000_000 };
    let master: Vec<u64> = (0..len as u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17))
        .collect();
    let mut data = master.clone();
    if config.wants(9) {
        header(&format!(
            "9. quicksort of {len} random u64, cutoff {SORT_CUTOFF} (ms; the copy of the input is not timed)"
        ));
        let mut sort_with = |sort: &dyn Fn(&mut Vec<u64>)| {
            data.copy_from_slice(&master);
            let took = seconds(|| sort(&mut data));
            debug_assert!(data.windows(2).all(|w| w[0] <= w[1]));
            took
        };
        let cell = std::cell::RefCell::new(&mut sort_with);
        let times = time_interleaved(
            config,
            &mut [
                &mut || {
                    (cell.borrow_mut())(&|d: &mut Vec<u64>| {
                        pool.scope(|s| s.apply(|| quicksort_fork_join(d)).unwrap())
                    })
                },
                &mut || {
                    (cell.borrow_mut())(&|d: &mut Vec<u64>| {
                        pool.scope(|s| s.apply(|| quicksort_block(s, d)).unwrap())
                    })
                },
                &mut || {
                    (cell.borrow_mut())(&|d: &mut Vec<u64>| {
                        rayon_pool.install(|| quicksort_rayon(d))
                    })
                },
                &mut || (cell.borrow_mut())(&|d: &mut Vec<u64>| quicksort_seq(d)),
            ],
        );
        row(
            "poolscope fork_join",
            times[0] * 1e3,
            "ms",
            &format!("{:.2}x rayon::join (target <= 1.05)", times[0] / times[2]),
        );
        row(
            "poolscope par_batch! block form",
            times[1] * 1e3,
            "ms",
            &format!("{:.2}x rayon::join (target <= 1.1)", times[1] / times[2]),
        );
        row("rayon::join", times[2] * 1e3, "ms", "1.00");
        row(
            "sequential",
            times[3] * 1e3,
            "ms",
            &format!("{:.2}x rayon::join", times[3] / times[2]),
        );
    }
    if config.wants(10) {
        header(&format!(
            "10. par_batch! block-form recursion: fib({n}), cutoff 10 (ms)"
        ));
        let times = time_interleaved(
            config,
            &mut [
                &mut || {
                    seconds(|| {
                        assert_ne!(pool.scope(|s| s.apply(|| fib_block(s, n, 10)).unwrap()), 0)
                    })
                },
                &mut || seconds(|| assert_ne!(rayon_pool.install(|| fib_rayon(n, 10)), 0)),
            ],
        );
        row(
            "poolscope par_batch! { fib(n - 1); fib(n - 2) }",
            times[0] * 1e3,
            "ms",
            &format!("{:.2}x rayon::join (target <= 1.5)", times[0] / times[1]),
        );
        row("rayon::join", times[1] * 1e3, "ms", "1.00");
    }
}

/// One fib(32), cutoff 10, in the way `mode` says: `seq`, `fork_join`,
/// `rayon`, or `block` (par_batch! block form).
fn split_cost(mode: &str) {
    let threads = thread::available_parallelism().map_or(2, |n| n.get());
    let result = match mode {
        "seq" => fib_seq(32),
        "fork_join" => {
            let pool = Pool::new(threads).unwrap();
            pool.scope(|s| s.apply(|| fib_fork_join(32, 10)).unwrap())
        }
        "rayon" => rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| fib_rayon(32, 10)),
        "block" => {
            let pool = Pool::new(threads).unwrap();
            pool.scope(|s| s.apply(|| fib_block(s, 32, 10)).unwrap())
        }
        // 100 000 empty tasks submitted one at a time from outside, and
        // the same pool doing nothing (subtract to get the cost per task).
        "single" => {
            let pool = Pool::new(threads).unwrap();
            pool.scope(|s| {
                for _ in 0..100_000 {
                    let _ = s.apply_async(|| {});
                }
            });
            0
        }
        // One batch of 1 000 000 empty tasks (workload 1's shape), for the
        // instructions per task of the batch path.
        "batch" => {
            let pool = Pool::new(threads).unwrap();
            pool.scope(|s| s.map_async(|_: usize| {}, 0..1_000_000).wait());
            0
        }
        // Workload 1 as the harness runs it: ten batches of 100 000 empty
        // `#[pool_task]` calls through `par_batch!`.
        "par_batch" => {
            let pool = Pool::new(threads).unwrap();
            for _ in 0..10 {
                pool_scope!(on = &pool, |s| par_batch!(s, empty(i) for i in 0..100_000).wait());
            }
            0
        }
        // Workload 11's map + collect, 1 000 000 items of a ~50 ns function.
        "collect" => {
            let pool = Pool::new(threads).unwrap();
            let inputs: Vec<u64> = (0..1_000_000).collect();
            let out = pool.scope(|s| s.map_async(|x: &u64| work_50ns(*x), &inputs).get().unwrap());
            out.len() as u64
        }
        "collect_rayon" => {
            let rayon_pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let inputs: Vec<u64> = (0..1_000_000).collect();
            let out: Vec<u64> = rayon_pool.install(|| inputs.par_iter().map(|x| work_50ns(*x)).collect());
            out.len() as u64
        }
        // Workload 13's ordered stream, with empty tasks: the cost per item
        // of `imap` itself (window 64).
        "imap" => {
            let pool = Pool::new(threads).unwrap();
            pool.scope(|s| {
                s.batch()
                    .in_flight(64)
                    .imap(|x: u64| x, 0..200_000u64)
                    .map(Result::unwrap)
                    .sum::<u64>()
            })
        }
        "idle" => {
            let pool = Pool::new(threads).unwrap();
            pool.scope(|_| {});
            0
        }
        other => panic!(
            "unknown --split-cost mode {other}: seq, fork_join, rayon, block, single, batch, par_batch, collect, collect_rayon, imap or idle"
        ),
    };
    println!("fib(32) = {result}");
}

/// About 50 ns of work on `x`.
#[inline(never)]
fn work_50ns(x: u64) -> u64 {
    let mut v = x | 1;
    for _ in 0..40 {
        v ^= v << 13;
        v ^= v >> 7;
        v ^= v << 17;
    }
    black_box(v)
}

/// Workloads 11 to 15: everything around the workers (issue "the caller's
/// side and the submission path").
fn caller_side(config: &Config, pool: &Pool, rayon_pool: &rayon::ThreadPool, threads: usize) {
    if config.wants(11) {
        let n = if config.quick { 100_000 } else { 1_000_000 };
        header(&format!(
            "11. map + collect: {n} calls of a ~50 ns function, results in order (ms)"
        ));
        let inputs: Vec<u64> = (0..n as u64).collect();
        let times = time_interleaved(
            config,
            &mut [
                &mut || {
                    seconds(|| {
                        let out = pool.scope(|s| {
                            s.map_async(|x: &u64| work_50ns(*x), &inputs).get().unwrap()
                        });
                        black_box(out);
                    })
                },
                &mut || {
                    seconds(|| {
                        let out: Vec<u64> = rayon_pool
                            .install(|| inputs.par_iter().map(|x| work_50ns(*x)).collect());
                        black_box(out);
                    })
                },
                &mut || {
                    seconds(|| {
                        let out: Vec<u64> = inputs.iter().map(|x| work_50ns(*x)).collect();
                        black_box(out);
                    })
                },
            ],
        );
        row(
            "poolscope map_async(..).get()",
            times[0] * 1e3,
            "ms",
            &format!("{:.2}x rayon (target <= 1.05)", times[0] / times[1]),
        );
        row(
            "rayon par_iter().map().collect()",
            times[1] * 1e3,
            "ms",
            "1.00",
        );
        row(
            "sequential",
            times[2] * 1e3,
            "ms",
            &format!("{:.2}x rayon", times[2] / times[1]),
        );
    }
    if config.wants(12) {
        let frames = if config.quick { 500 } else { 10_000 };
        header(&format!(
            "12. frame loop: {frames} iterations of 8 tasks x ~2 us on one long-lived scope (us per iteration)"
        ));
        let iterations = calibrate(Duration::from_micros(2));
        let helping = Pool::builder()
            .threads(threads)
            .caller_helps(true)
            .build()
            .unwrap();
        let times = time_interleaved(
            config,
            &mut [
                &mut || {
                    seconds(|| {
                        pool.scope(|s| {
                            for _ in 0..frames {
                                s.map_async(|_: u32| work(iterations), 0..8).wait();
                            }
                        })
                    })
                },
                &mut || {
                    seconds(|| {
                        helping.scope(|s| {
                            for _ in 0..frames {
                                s.map_async(|_: u32| work(iterations), 0..8).wait();
                            }
                        })
                    })
                },
                &mut || {
                    seconds(|| {
                        for _ in 0..frames {
                            rayon_pool.scope(|s| {
                                for _ in 0..8 {
                                    s.spawn(|_| {
                                        work(iterations);
                                    });
                                }
                            });
                        }
                    })
                },
                &mut || {
                    seconds(|| {
                        for _ in 0..frames {
                            for _ in 0..8 {
                                work(iterations);
                            }
                        }
                    })
                },
            ],
        );
        let per = |t: f64| t * 1e6 / frames as f64;
        row(
            "poolscope map_async(..).wait() per frame",
            per(times[0]),
            "us",
            &format!(
                "{:.2}x rayon (target <= 1.0), {:.2}x sequential (target <= 0.75)",
                times[0] / times[2],
                times[0] / times[3]
            ),
        );
        row(
            &format!(
                "poolscope, caller_helps pool ({} worker + the caller)",
                threads - 1
            ),
            per(times[1]),
            "us",
            &format!(
                "{:.2}x rayon, {:.2}x sequential",
                times[1] / times[2],
                times[1] / times[3]
            ),
        );
        row(
            "rayon scope + 8 spawns per frame",
            per(times[2]),
            "us",
            "1.00",
        );
        row(
            "sequential",
            per(times[3]),
            "us",
            &format!("{:.2}x rayon", times[3] / times[2]),
        );
        idle_cost(config, pool, rayon_pool, iterations);
    }
    if config.wants(13) {
        let n = if config.quick { 100_000 } else { 1_000_000 };
        header(&format!(
            "13. ordered imap over {n} tasks of ~1 us, window 64 (items/s)"
        ));
        let iterations = calibrate(Duration::from_micros(1));
        let times = time_interleaved(
            config,
            &mut [
                &mut || {
                    seconds(|| {
                        pool.scope(|s| {
                            let mut sum = 0u64;
                            for r in s
                                .batch()
                                .in_flight(64)
                                .imap(|_: u64| work(iterations), 0..n as u64)
                            {
                                sum = sum.wrapping_add(r.unwrap());
                            }
                            black_box(sum);
                        })
                    })
                },
                &mut || seconds(|| channel_pool_imap(threads, n, iterations)),
            ],
        );
        let rate = |t: f64| n as f64 / t;
        row(
            "poolscope imap",
            rate(times[0]),
            "items/s",
            &format!(
                "{:.2}x the channel pool (target >= 1.5; >= 1.4 M/s on 2 workers)",
                times[1] / times[0]
            ),
        );
        row(
            "hand-made std::sync::mpsc pool with a reorder buffer",
            rate(times[1]),
            "items/s",
            "1.00",
        );
    }
    if config.wants(14) {
        let n = if config.quick { 10_000 } else { 100_000 };
        header(&format!(
            "14. two threads each submitting {n} single tasks into one scope (ns/task)"
        ));
        let times = time_interleaved(
            config,
            &mut [
                &mut || {
                    seconds(|| {
                        pool.scope(|s| {
                            thread::scope(|both| {
                                for _ in 0..2 {
                                    both.spawn(|| {
                                        for _ in 0..n {
                                            let _ = s.apply_async(|| {});
                                        }
                                    });
                                }
                            })
                        })
                    })
                },
                &mut || {
                    seconds(|| {
                        rayon_pool.scope(|s| {
                            thread::scope(|both| {
                                for _ in 0..2 {
                                    both.spawn(|| {
                                        for _ in 0..n {
                                            s.spawn(|_| {});
                                        }
                                    });
                                }
                            })
                        })
                    })
                },
                &mut || {
                    seconds(|| {
                        pool.scope(|s| {
                            for _ in 0..n {
                                let _ = s.apply_async(|| {});
                            }
                        })
                    })
                },
                &mut || {
                    seconds(|| {
                        rayon_pool.scope(|s| {
                            for _ in 0..n {
                                s.spawn(|_| {});
                            }
                        })
                    })
                },
            ],
        );
        let per2 = |t: f64| t * 1e9 / (2 * n) as f64;
        let per1 = |t: f64| t * 1e9 / n as f64;
        row(
            "poolscope, two submitters",
            per2(times[0]),
            "ns/task",
            &format!("{:.2}x rayon (target <= 1.0)", times[0] / times[1]),
        );
        row(
            "rayon scope + spawn, two submitters",
            per2(times[1]),
            "ns/task",
            "1.00",
        );
        row(
            "poolscope apply_async one at a time, one submitter",
            per1(times[2]),
            "ns/task",
            &format!("{:.2}x rayon (target <= 0.5)", times[2] / times[3]),
        );
        row(
            "rayon scope + spawn, one submitter",
            per1(times[3]),
            "ns/task",
            "1.00",
        );
    }
    if config.wants(15) {
        header("15. one batch of empty tasks: 1 M against 10 M (ns/task)");
        let small = if config.quick { 100_000 } else { 1_000_000 };
        let big = small * 10;
        let times = time_interleaved(
            config,
            &mut [
                &mut || seconds(|| pool.scope(|s| s.map_async(|_: usize| {}, 0..small).wait())),
                &mut || seconds(|| pool.scope(|s| s.map_async(|_: usize| {}, 0..big).wait())),
            ],
        );
        let (a, b) = (times[0] * 1e9 / small as f64, times[1] * 1e9 / big as f64);
        row(&format!("poolscope, {small} tasks"), a, "ns/task", "1.00");
        row(
            &format!("poolscope, {big} tasks"),
            b,
            "ns/task",
            &format!("{:.2}x (target <= 1.5)", b / a),
        );
    }
}

/// FNV-1a over a file's bytes: a short read and a little CPU work.
/// CPU time so far (ns) of every thread of this process but the calling
/// one (whose reading of /proc is not the pools' cost), from the
/// scheduler's own accounting in `/proc/self/task/*/schedstat`; `None`
/// where there is no such file (not Linux).
fn process_cpu_ns() -> Option<u64> {
    let me = std::fs::read_link("/proc/thread-self").ok()?;
    let me = me.file_name()?.to_owned();
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let task = task.ok()?;
        if task.file_name() == me {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// Workload 12's idle policy in CPU time: what the pools burn in the
/// 50 ms after a frame's burst of work (poolscope's workers stay awake a
/// little while for the next frame), and over a second with no work.
fn idle_cost(config: &Config, pool: &Pool, rayon_pool: &rayon::ThreadPool, iterations: u64) {
    let bursts = if config.quick { 3 } else { 20 };
    header("12b. idle CPU: after one frame's burst (50 ms window), and over 1 s with no work (us of CPU, every thread but the measuring one)");
    let Some(_) = process_cpu_ns() else {
        row(
            "(no /proc/self/task/*/schedstat here)",
            0.0,
            "us",
            "skipped",
        );
        return;
    };
    let after_burst = |burst: &dyn Fn()| {
        let samples: Vec<f64> = (0..bursts)
            .map(|_| {
                burst();
                let before = process_cpu_ns().unwrap();
                thread::sleep(Duration::from_millis(50));
                (process_cpu_ns().unwrap() - before) as f64 / 1e3
            })
            .collect();
        median(samples)
    };
    let quiet = || {
        let before = process_cpu_ns().unwrap();
        thread::sleep(Duration::from_secs(if config.quick { 0 } else { 1 }));
        (process_cpu_ns().unwrap() - before) as f64 / 1e3
    };
    let ours = after_burst(&|| {
        pool.scope(|s| s.map_async(|_: u32| work(iterations), 0..8).wait());
    });
    let ours_quiet = quiet();
    let theirs = after_burst(&|| {
        rayon_pool.scope(|s| {
            for _ in 0..8 {
                s.spawn(|_| {
                    work(iterations);
                });
            }
        });
    });
    let theirs_quiet = quiet();
    row(
        "poolscope, the 50 ms after a burst",
        ours,
        "us",
        "median of bursts; the workers linger 200 us each",
    );
    row("poolscope, 1 s with no work", ours_quiet, "us", "");
    row("rayon, the 50 ms after a burst", theirs, "us", "");
    row("rayon, 1 s with no work", theirs_quiet, "us", "");
}

fn hash_file(path: &std::path::Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Workload 17: what cap the blocking lane should have by default. Many
/// short file reads (page-cached, so mostly CPU: extra threads only cost)
/// against many 50 ms sleeps (pure waiting: every extra thread helps),
/// each on a fresh pool per repetition (threads started cold, as in a
/// program's first burst), at several caps.
fn blocking_cap(config: &Config, threads: usize) {
    if !config.wants(17) {
        return;
    }
    let caps = [8usize, 32, 128, 512];
    let files = if config.quick { 1_000 } else { 20_000 };
    let dir = std::env::temp_dir().join(format!("poolscope-bench-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let paths: Vec<std::path::PathBuf> = (0..files)
        .map(|i| {
            let path = dir.join(format!("{i}.bin"));
            let bytes: Vec<u8> = (0..4096u32)
                .map(|b| (b.wrapping_mul(i as u32 + 7) >> 3) as u8)
                .collect();
            std::fs::write(&path, bytes).unwrap();
            path
        })
        .collect();
    header(&format!(
        "17a. hash {files} files of 4 KiB (page-cached) on the blocking lane, by cap (ms)"
    ));
    let run = |cap: Option<usize>| {
        let pool = Pool::builder()
            .threads(threads)
            .max_blocking_threads(cap.unwrap_or(1))
            .build()
            .unwrap();
        let took = seconds(|| {
            let sums = pool.scope(|s| {
                s.batch()
                    .blocking(cap.is_some())
                    .map_async(|path: &std::path::PathBuf| hash_file(path), &paths)
                    .get()
                    .unwrap()
            });
            black_box(sums);
        });
        drop(pool);
        took
    };
    let mut contenders: Vec<Box<dyn FnMut() -> f64>> = vec![Box::new(|| run(None))];
    for cap in caps {
        contenders.push(Box::new(move || run(Some(cap))));
    }
    let mut refs: Vec<&mut dyn FnMut() -> f64> =
        contenders.iter_mut().map(|c| &mut **c as _).collect();
    let times = time_interleaved(config, &mut refs);
    drop(refs);
    drop(contenders);
    row("CPU lane", times[0] * 1e3, "ms", "1.00");
    for (cap, time) in caps.iter().zip(&times[1..]) {
        row(
            &format!("blocking lane, max_blocking_threads = {cap}"),
            time * 1e3,
            "ms",
            &format!("{:.2}x the CPU lane", time / times[0]),
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();

    let sleeps = if config.quick { 64 } else { 256 };
    header(&format!(
        "17b. {sleeps} sleeps of 50 ms on the blocking lane, by cap (ms; 3 repetitions)"
    ));
    let few = Config {
        quick: config.quick,
        reps: 3,
        only: Vec::new(),
    };
    let sleep_run = |cap: usize| {
        let pool = Pool::builder()
            .threads(threads)
            .max_blocking_threads(cap)
            .build()
            .unwrap();
        let took = seconds(|| {
            pool.scope(|s| {
                s.batch()
                    .blocking(true)
                    .map_async(
                        |_: usize| thread::sleep(Duration::from_millis(50)),
                        0..sleeps,
                    )
                    .wait()
            })
        });
        drop(pool);
        took
    };
    let mut contenders: Vec<Box<dyn FnMut() -> f64>> = Vec::new();
    for cap in caps {
        contenders.push(Box::new(move || sleep_run(cap)));
    }
    let mut refs: Vec<&mut dyn FnMut() -> f64> =
        contenders.iter_mut().map(|c| &mut **c as _).collect();
    let times = time_interleaved(&few, &mut refs);
    for (cap, time) in caps.iter().zip(&times) {
        let ideal = sleeps.div_ceil(*cap) as f64 * 0.05;
        row(
            &format!("max_blocking_threads = {cap}"),
            time * 1e3,
            "ms",
            &format!(
                "{:.2}x the ideal {:.0} ms for this cap",
                time / ideal,
                ideal * 1e3
            ),
        );
    }
}

/// Workload 16: one task offloaded from async code and awaited, again and
/// again: poolscope's awaitable handle against what a tokio user reaches
/// for (`spawn_blocking`, or `rayon::spawn` and a oneshot channel).
fn async_round_trip(config: &Config, pool: &Pool, rayon_pool: &rayon::ThreadPool) {
    if !config.wants(16) {
        return;
    }
    let n: u64 = if config.quick { 1_000 } else { 20_000 };
    header(&format!(
        "16. await one offloaded task from a tokio runtime, {n} times in a row (us/round trip)"
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let times = time_interleaved(
        config,
        &mut [
            &mut || {
                runtime.block_on(async {
                    let start = Instant::now();
                    let mut x = 0u64;
                    for _ in 0..n {
                        x = pool.apply_async(move || x + 1).await.unwrap();
                    }
                    black_box(x);
                    start.elapsed().as_secs_f64()
                })
            },
            &mut || {
                runtime.block_on(async {
                    let start = Instant::now();
                    let mut x = 0u64;
                    for _ in 0..n {
                        x = tokio::task::spawn_blocking(move || x + 1).await.unwrap();
                    }
                    black_box(x);
                    start.elapsed().as_secs_f64()
                })
            },
            &mut || {
                runtime.block_on(async {
                    let start = Instant::now();
                    let mut x = 0u64;
                    for _ in 0..n {
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        rayon_pool.spawn(move || {
                            let _ = tx.send(x + 1);
                        });
                        x = rx.await.unwrap();
                    }
                    black_box(x);
                    start.elapsed().as_secs_f64()
                })
            },
        ],
    );
    let per = |t: f64| t * 1e6 / n as f64;
    row(
        "poolscope pool.apply_async(..).await",
        per(times[0]),
        "us",
        &format!(
            "1.00 ({:.2}x spawn_blocking, {:.2}x rayon::spawn + oneshot)",
            times[0] / times[1],
            times[0] / times[2]
        ),
    );
    row(
        "tokio::task::spawn_blocking(..).await",
        per(times[1]),
        "us",
        "",
    );
    row(
        "rayon::spawn + tokio oneshot, awaited",
        per(times[2]),
        "us",
        "",
    );
}

/// What a user without poolscope writes for an ordered parallel map over a
/// stream: worker threads fed through a channel, results through another,
/// and a reorder buffer; at most 64 inputs in flight.
fn channel_pool_imap(threads: usize, n: usize, iterations: u64) {
    use std::collections::BTreeMap;
    use std::sync::mpsc;
    let (job_tx, job_rx) = mpsc::channel::<u64>();
    let job_rx = Mutex::new(job_rx);
    let (result_tx, result_rx) = mpsc::channel::<(u64, u64)>();
    thread::scope(|s| {
        for _ in 0..threads {
            let result_tx = result_tx.clone();
            let job_rx = &job_rx;
            s.spawn(move || loop {
                let job = job_rx.lock().unwrap().recv();
                let Ok(i) = job else { return };
                let _ = result_tx.send((i, work(iterations)));
            });
        }
        drop(result_tx);
        let mut sent = 0u64;
        let mut next = 0u64;
        let mut pending = BTreeMap::new();
        let mut sum = 0u64;
        while next < n as u64 {
            while sent < n as u64 && sent < next + 64 {
                job_tx.send(sent).unwrap();
                sent += 1;
            }
            let (i, v) = result_rx.recv().unwrap();
            pending.insert(i, v);
            while let Some(v) = pending.remove(&next) {
                sum = sum.wrapping_add(v);
                next += 1;
            }
        }
        drop(job_tx);
        black_box(sum);
    });
}
