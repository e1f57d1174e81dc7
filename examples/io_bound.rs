//! Ten tasks that each sleep half a second (a stand-in for I/O: a download,
//! a database query), run three ways on a two-thread pool:
//!
//! 1. on the CPU lane, where two workers take them two at a time;
//! 2. marked `#[pool_task(blocking)]`: a CPU worker running one hands its
//!    slot to a spare worker (started on demand) while it sleeps, so all
//!    ten wait side by side;
//! 3. the same, with a CPU-heavy batch submitted at the same time, which
//!    still gets both CPU slots: it takes about as long as it does alone
//!    (run 4).
//!
//! Run it with `cargo run --release --example io_bound`.

use std::thread::sleep;
use std::time::{Duration, Instant};

use poolscope::{par_batch, pool_scope, pool_task, Pool};

const THREADS: usize = 2;
const TASKS: u32 = 10;
const ONE_TASK: Duration = Duration::from_millis(500);
/// The CPU batch: eight prime counts below this limit.
const LIMIT: u64 = 300_000;

/// The I/O-bound task: it only waits. Left on the CPU lane, it holds a
/// CPU worker while it waits.
#[pool_task]
fn task(identifier: u32) -> u32 {
    sleep(ONE_TASK);
    identifier
}

/// The same task, marked `blocking`: while it runs, its CPU worker's slot
/// goes to a spare.
#[pool_task(blocking)]
fn blocking_task(identifier: u32) -> u32 {
    sleep(ONE_TASK);
    identifier
}

/// A CPU-bound task: counts the primes below `limit` by trial division.
fn count_primes(limit: u64) -> usize {
    (2..limit)
        .filter(|&n| (2..).take_while(|d| d * d <= n).all(|d| n % d != 0))
        .count()
}

fn report(what: &str, took: Duration) {
    println!(
        "{what:<44} {:>6.2} s  (~{:.1} x one task)",
        took.as_secs_f64(),
        took.as_secs_f64() / ONE_TASK.as_secs_f64()
    );
}

fn main() {
    let pool = Pool::builder()
        .threads(THREADS)
        .thread_name("io-example")
        .build()
        .expect("a two-thread pool starts");
    println!("{TASKS} tasks of {ONE_TASK:?} each on a pool of {THREADS} CPU workers\n");

    // 1. CPU lane: the workers take the sleeping tasks two at a time.
    let start = Instant::now();
    pool_scope!(on = &pool, |s| par_batch!(s, task(i) for i in 0..TASKS)
        .wait());
    let cpu_lane = start.elapsed();
    report("CPU lane", cpu_lane);

    // 2. Blocking tasks: each hands its CPU slot to a spare (started on
    //    demand), so they wait side by side.
    let start = Instant::now();
    pool_scope!(on = &pool, |s| {
        par_batch!(s, blocking_task(i) for i in 0..TASKS).wait()
    });
    let blocking_lane = start.elapsed();
    report("#[pool_task(blocking)]", blocking_lane);

    // 3. Blocking tasks, with a CPU batch running alongside.
    let start = Instant::now();
    let (io_done, cpu_done, primes) = pool_scope!(on = &pool, |s| {
        let io = par_batch!(s, blocking_task(i) for i in 0..TASKS);
        let cpu = par_batch!(s, count_primes(limit) for limit in [LIMIT; 8]);
        let primes = cpu.get().expect("counting primes does not fail");
        let cpu_done = start.elapsed();
        io.wait();
        (start.elapsed(), cpu_done, primes)
    });
    report("blocking tasks, with a CPU batch alongside", io_done);
    report("  the CPU batch alongside them", cpu_done);

    // 4. The same CPU batch alone, for comparison.
    let start = Instant::now();
    pool_scope!(on = &pool, |s| {
        par_batch!(s, count_primes(limit) for limit in [LIMIT; 8]).wait()
    });
    report("the CPU batch alone", start.elapsed());
    println!(
        "\n{} primes below {LIMIT} (counted 8 times): the sleeping tasks kept \
         none of the {THREADS} CPU workers from that work.",
        primes[0]
    );
    println!(
        "Marked blocking, the waiting work ran {:.1}x faster than on the CPU lane.",
        cpu_lane.as_secs_f64() / blocking_lane.as_secs_f64()
    );
}
