//! Pools: the default pool, pools a user builds, and the threads behind them.
//!
//! Several tests here count the process's threads through `/proc`, so every
//! test of this file takes the `serial()` lock: no other test of this binary
//! starts or stops pool threads while one is counting. Threads are told apart
//! by name (`/proc` shows the first 15 bytes): the test harness names its
//! threads after the tests, and none of them starts like a pool thread.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use poolscope::{BuildError, Pool, SubmitError, TaskErrorKind};

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `body` on a thread of its own (named `name`) and fails the test if
/// it has not finished within a minute, instead of hanging the test run.
fn watchdog<T: Send + 'static>(name: &str, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, finished) = mpsc::channel();
    let handle = thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = done.send(body());
        })
        .unwrap();
    match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hung: {name} did not finish in 60 s"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the body neither sent a value nor panicked"),
        },
    }
}

/// The names of the process's live threads, as `/proc` shows them.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("this test reads /proc/self/task (Linux)")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_string())
        .collect()
}

fn threads_named(prefix: &str) -> usize {
    thread_names()
        .iter()
        .filter(|name| name.starts_with(prefix))
        .count()
}

fn my_thread_name() -> String {
    std::fs::read_to_string("/proc/thread-self/comm")
        .unwrap()
        .trim_end()
        .to_string()
}

/// Polls `condition` until it holds; a thread that was joined can linger in
/// `/proc` for a moment after `join` returned.
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

fn cores() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

#[test]
fn the_default_pool_has_one_thread_per_core_and_is_created_once() {
    let _serial = serial();
    let first: *const Pool = Pool::global();
    let second: *const Pool = Pool::global();
    assert_eq!(first, second, "Pool::global() built a second pool");
    assert_eq!(Pool::global().threads(), cores());
    assert_eq!(poolscope::scope(|s| s.threads()), cores());

    // Its threads are started once, named after the default pool.
    poolscope::scope(|s| s.map(|x: u32| x + 1, 0..100)).unwrap();
    assert_eq!(threads_named("poolscope-defau"), cores());
}

#[test]
fn scopes_on_the_default_pool_start_no_thread() {
    let _serial = serial();
    watchdog("counting-scopes", || {
        // Warm the pool up, so its workers exist before counting.
        poolscope::scope(|s| s.map(|x: u64| x * 2, 0..1000)).unwrap();
        // Pool threads, and unnamed threads started from this one (they
        // would inherit its name).
        let me = my_thread_name();
        let relevant = || {
            thread_names()
                .iter()
                .filter(|name| name.starts_with("poolscope") || **name == me)
                .count()
        };
        let before = relevant();

        let data: Vec<u64> = (0..64).collect();
        for round in 0..300u64 {
            let total = poolscope::scope(|s| {
                let _ = s.apply_async(|| round);
                let sums = s.map_async(|x: &u64| x + round, &data);
                let nested = s.apply_async(|| s.map(|x: u64| x, 0..4).unwrap().len());
                assert_eq!(nested.get().unwrap(), 4);
                // A scope opened inside a task, on the same default pool.
                let inner = s.apply_async(|| poolscope::scope(|inner| inner.apply(|| 3)));
                assert_eq!(inner.get().unwrap(), Ok(3));
                sums.get().unwrap().iter().sum::<u64>()
            });
            assert_eq!(total, data.iter().sum::<u64>() + 64 * round);
        }

        assert_eq!(
            relevant(),
            before,
            "threads before and after 300 scopes on the default pool differ: {:?}",
            thread_names()
        );
        assert_eq!(threads_named("poolscope-defau"), cores());
    });
}

#[test]
fn a_built_pool_has_the_threads_and_names_asked_for() {
    let _serial = serial();
    let pool = Pool::builder()
        .threads(3)
        .thread_name("resize")
        .build()
        .unwrap();
    assert_eq!(pool.threads(), 3);
    assert_eq!(threads_named("resize-"), 3);

    let names: BTreeSet<String> = pool.scope(|s| {
        s.map(
            |_| {
                thread::sleep(Duration::from_millis(1));
                thread::current().name().unwrap_or("<unnamed>").to_string()
            },
            0..64,
        )
        .unwrap()
        .into_iter()
        .collect()
    });
    let expected: BTreeSet<String> = (0..3).map(|i| format!("resize-{i}")).collect();
    assert!(
        names.is_subset(&expected),
        "tasks ran on threads named {names:?}, expected some of {expected:?}"
    );
    assert_eq!(pool.scope(|s| s.threads()), 3);
    assert!(format!("{pool:?}").contains("threads: 3"), "{pool:?}");
}

#[test]
fn pool_threads_are_named_poolscope_by_default() {
    let _serial = serial();
    let pool = Pool::new(2).unwrap();
    let name = pool
        .scope(|s| s.apply(|| thread::current().name().map(str::to_string)))
        .unwrap();
    let name = name.expect("a pool thread has a name");
    assert!(
        name == "poolscope-0" || name == "poolscope-1",
        "task ran on {name:?}"
    );
}

#[test]
fn the_stack_size_asked_for_is_what_tasks_get() {
    let _serial = serial();
    // 6 MiB of locals: more than the 2 MiB a thread gets by default, so this
    // overflows (and aborts the test binary) unless the size is honoured.
    let pool = Pool::builder()
        .threads(1)
        .thread_name("bigstack")
        .stack_size(32 << 20)
        .build()
        .unwrap();
    let sum = pool
        .scope(|s| {
            s.apply(|| {
                let big = [1u8; 6 << 20];
                std::hint::black_box(&big)
                    .iter()
                    .map(|&b| b as usize)
                    .sum::<usize>()
            })
        })
        .unwrap();
    assert_eq!(sum, 6 << 20);
}

thread_local! {
    static WORKER_INDEX: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

#[test]
fn start_and_exit_hooks_run_once_per_thread() {
    let _serial = serial();
    let started = Arc::new(Mutex::new(Vec::new()));
    let exited = Arc::new(Mutex::new(Vec::new()));
    let pool = Pool::builder()
        .threads(3)
        .thread_name("hooks")
        .on_thread_start({
            let started = started.clone();
            move |index| {
                WORKER_INDEX.with(|cell| cell.set(Some(index)));
                started.lock().unwrap().push(index);
            }
        })
        .on_thread_exit({
            let exited = exited.clone();
            move |index| {
                let name = thread::current().name().map(str::to_string);
                exited.lock().unwrap().push((index, name));
            }
        })
        .build()
        .unwrap();

    // build() returns once every thread ran its start hook.
    let mut seen = started.lock().unwrap().clone();
    seen.sort_unstable();
    assert_eq!(seen, [0, 1, 2]);

    // Tasks see what the start hook set up on their thread (Python's
    // `initializer`).
    for _ in 0..3 {
        let indices = pool
            .scope(|s| s.map(|_| WORKER_INDEX.with(|cell| cell.get()), 0..32))
            .unwrap();
        assert!(
            indices.iter().all(|index| matches!(index, Some(0..=2))),
            "{indices:?}"
        );
    }
    assert_eq!(
        started.lock().unwrap().len(),
        3,
        "scopes re-ran start hooks"
    );
    assert!(exited.lock().unwrap().is_empty(), "threads exited early");

    drop(pool);
    let mut exits = exited.lock().unwrap().clone();
    exits.sort();
    let expected: Vec<(usize, Option<String>)> =
        (0..3).map(|i| (i, Some(format!("hooks-{i}")))).collect();
    assert_eq!(exits, expected, "exit hooks, run on each worker at drop");
    assert_eq!(started.lock().unwrap().len(), 3);
}

#[test]
fn dropping_a_pool_joins_its_threads() {
    let _serial = serial();
    let pool = Pool::builder()
        .threads(3)
        .thread_name("dropjoin")
        .build()
        .unwrap();
    assert_eq!(threads_named("dropjoin-"), 3);
    let squares = pool.scope(|s| s.map(|x: u32| x * x, 0..10)).unwrap();
    assert_eq!(squares[9], 81);
    assert_eq!(
        threads_named("dropjoin-"),
        3,
        "a scope changed the thread count"
    );
    drop(pool);
    eventually("the dropped pool's threads are gone", || {
        threads_named("dropjoin-") == 0
    });

    let exits = Arc::new(AtomicUsize::new(0));
    let pool = Pool::builder()
        .threads(2)
        .thread_name("dropjoin2")
        .on_thread_exit({
            let exits = exits.clone();
            move |_| {
                // A slow exit: drop must still wait for it.
                thread::sleep(Duration::from_millis(50));
                exits.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build()
        .unwrap();
    drop(pool);
    assert_eq!(
        exits.load(Ordering::SeqCst),
        2,
        "drop returned before its threads finished"
    );

    eventually("the dropped pool's threads are gone", || {
        threads_named("dropjoin2-") == 0
    });
}

#[test]
fn zero_threads_is_a_clear_error() {
    let _serial = serial();
    let error = Pool::new(0).unwrap_err();
    assert!(matches!(error, BuildError::ZeroThreads), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("at least one thread"), "{message}");
    assert!(message.contains("threads = 0"), "{message}");

    let error = Pool::builder().threads(0).build().unwrap_err();
    assert!(matches!(error, BuildError::ZeroThreads), "{error:?}");
}

#[test]
fn a_thread_that_cannot_be_spawned_is_an_error_not_a_hang() {
    let _serial = serial();
    let error = watchdog("spawn-fails", || {
        Pool::builder()
            .threads(2)
            .thread_name("nostack")
            .stack_size(usize::MAX / 2)
            .build()
            .unwrap_err()
    });
    match &error {
        BuildError::Spawn { thread, .. } => assert_eq!(*thread, 0),
        other => panic!("expected BuildError::Spawn, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("could not start poolscope worker thread 0"),
        "{message}"
    );
    let source = std::error::Error::source(&error).expect("the OS error is the source");
    assert!(!source.to_string().is_empty());
    eventually("no thread of the failed pool is left", || {
        threads_named("nostack") == 0
    });
}

#[test]
fn a_panicking_start_hook_fails_the_build() {
    let _serial = serial();
    let error = watchdog("hook-panics", || {
        Pool::builder()
            .threads(3)
            .thread_name("hookfail")
            .on_thread_start(|index| {
                if index == 1 {
                    panic!("no database on worker {index}");
                }
            })
            .build()
            .unwrap_err()
    });
    match &error {
        BuildError::StartHookPanicked { thread, message } => {
            assert_eq!(*thread, 1);
            assert_eq!(message, "no database on worker 1");
        }
        other => panic!("expected BuildError::StartHookPanicked, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains("start hook panicked"), "{message}");
    assert!(message.contains("no database on worker 1"), "{message}");
    // The threads that did start are stopped, not leaked.
    eventually("the failed pool's threads are gone", || {
        threads_named("hookfail") == 0
    });
}

#[test]
fn a_pool_is_reused_by_scope_after_scope() {
    let _serial = serial();
    let pool = Pool::builder()
        .threads(2)
        .thread_name("reuse")
        .build()
        .unwrap();
    let text = String::from("borrowed by every scope");
    for round in 0..50 {
        let lens = pool
            .scope(|s| s.map(|i: usize| text.len() + i, 0..round))
            .unwrap();
        assert_eq!(lens, (0..round).map(|i| text.len() + i).collect::<Vec<_>>());
    }
    assert_eq!(threads_named("reuse-"), 2);
}

#[test]
fn a_start_hook_that_panics_on_a_later_thread_breaks_the_pool_without_hanging() {
    let _serial = serial();
    // The CPU worker (index 0) starts fine; a blocking-lane thread, started
    // on demand with a later index, fails its hook.
    let pool = Pool::builder()
        .threads(1)
        .thread_name("brokenlane")
        .on_thread_start(|index| {
            if index >= 1 {
                panic!("no database on thread {index}");
            }
        })
        .build()
        .unwrap();
    assert_eq!(pool.broken_reason(), None);
    let pool = watchdog("broken-lane", move || {
        pool.scope(|s| {
            let batch = s.batch().blocking(true).map_async(|x: u32| x, 0..3);
            let error = batch.get().unwrap_err();
            assert!(
                matches!(error.kind(), TaskErrorKind::PoolBroken { .. }),
                "{error:?}"
            );
            assert!(error.to_string().contains("broken"), "{error}");
            // Every later submission is refused, CPU work included.
            match s.try_map_async(|x: u32| x, 0..3) {
                Err(SubmitError::PoolBroken { reason }) => {
                    assert!(reason.contains("no database"), "{reason}")
                }
                other => panic!("expected PoolBroken, got {other:?}"),
            }
        });
        pool
    });
    let reason = pool
        .broken_reason()
        .expect("the pool reports itself broken");
    assert!(reason.contains("no database on thread"), "{reason}");
    assert!(format!("{pool:?}").contains("no database"), "{pool:?}");
    drop(pool);
    eventually("the broken pool's threads are gone", || {
        threads_named("brokenlane") == 0
    });
}

#[test]
fn with_caller_helps_a_waiting_caller_runs_its_batch_and_the_pool_starts_one_worker_fewer() {
    let _serial = serial();
    watchdog("caller-helps", || {
        let started = Arc::new(AtomicUsize::new(0));
        let counter = started.clone();
        let pool = Pool::builder()
            .threads(2)
            .caller_helps(true)
            .on_thread_start(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();
        // Two tasks at once: one worker, plus the caller while it waits.
        assert_eq!(pool.threads(), 2);
        assert_eq!(started.load(Ordering::SeqCst), 1);
        let me = thread::current().id();
        pool.scope(|s| {
            // The only worker is held until the caller has run the batch
            // below itself: without caller_helps, this would never end.
            let (release, held) = mpsc::channel::<()>();
            let (holding, worker_busy) = mpsc::channel();
            let hold = s.apply_async(move || {
                holding.send(()).unwrap();
                held.recv().unwrap();
            });
            worker_busy.recv().unwrap();
            let ran_on = s.map_async(|_: u32| thread::current().id(), 0..4);
            assert!(ran_on.get().unwrap().iter().all(|&id| id == me));
            release.send(()).unwrap();
            hold.get().unwrap();
        });
    });
}
