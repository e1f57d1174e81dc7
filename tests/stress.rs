//! Randomized stress with a ledger: thousands of batches (some nested inside
//! tasks) with random sizes, chunking, lanes, panics, cancels, timeouts,
//! closes and terminates, tasks that run `fork_join` trees and tasks that
//! spawn chains of tasks into their scope and return, on scopes opened from
//! two threads at once on one pool. After every scope the ledger must
//! balance:
//!
//! - every submitted task ran exactly once, or was cancelled (and only if a
//!   cancel, terminate or fail-fast could have cancelled it); a refused
//!   submission never ran; every leaf of a `fork_join` tree ran exactly once;
//! - every result a handle took is the value its task returned;
//! - every batch with a task panic is reported exactly once: by its handle,
//!   or else by the panic the scope end re-raises (never both, never none);
//! - no wait hangs: a watchdog aborts the process, printing the seed, if a
//!   round makes no progress for a long time;
//! - no thread outlives its pool: after the pool is dropped, as many
//!   threads ran the exit hook as ran the start hook.
//!
//! Reproduce a run with `POOLSCOPE_STRESS_SEED=<seed>`; run longer with
//! `POOLSCOPE_STRESS_ITERS=<rounds>` (default 1500).

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use poolscope::{GetTimeoutError, Pool, Scope, SubmitError, TaskError, TaskErrorKind};

mod common;

use common::panic_message;

/// A round that makes no progress for this long is a hang.
const HANG_AFTER: Duration = Duration::from_secs(120);

/// Totals over the whole run, to show (and check) that every kind of event
/// happened.
#[derive(Debug, Default)]
struct Totals {
    batches: AtomicUsize,
    nested_batches: AtomicUsize,
    tasks_run: AtomicUsize,
    cancelled: AtomicUsize,
    refused: AtomicUsize,
    panics_reported_by_handles: AtomicUsize,
    panics_reraised_at_scope_end: AtomicUsize,
    timeouts: AtomicUsize,
    fork_leaves: AtomicUsize,
    spawned: AtomicUsize,
}

static TOTALS: Totals = Totals {
    batches: AtomicUsize::new(0),
    nested_batches: AtomicUsize::new(0),
    tasks_run: AtomicUsize::new(0),
    cancelled: AtomicUsize::new(0),
    refused: AtomicUsize::new(0),
    panics_reported_by_handles: AtomicUsize::new(0),
    panics_reraised_at_scope_end: AtomicUsize::new(0),
    timeouts: AtomicUsize::new(0),
    fork_leaves: AtomicUsize::new(0),
    spawned: AtomicUsize::new(0),
};

/// SplitMix64: tiny, seedable, good enough to pick test cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// What the test does with a batch handle after submitting it.
#[derive(Debug, Clone, Copy)]
enum Action {
    Get,
    WaitThenFailures,
    CancelThenFailures,
    TimeoutThenDrop,
    Forget,
    Results,
    AsCompleted,
    GetTimeout,
}

#[derive(Debug)]
struct TaskPlan {
    id: usize,
    batch: usize,
    index: usize,
    panics: bool,
    sleep_micros: u64,
    /// Leaf tasks this task submits to the same scope; with `true`, the
    /// task takes their results, otherwise it drops the handle.
    nested: Option<(Vec<TaskPlan>, bool)>,
    /// Leaves this task runs as a `fork_join` tree.
    forks: Vec<TaskPlan>,
    /// A chain of tasks this task spawns into its scope without waiting:
    /// each spawns the next, then returns.
    spawns: Vec<TaskPlan>,
}

#[derive(Debug)]
struct BatchPlan {
    id: usize,
    tasks: Vec<TaskPlan>,
    chunk: Option<usize>,
    blocking: bool,
    fail_fast: bool,
    action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stop {
    None,
    Close,
    Terminate,
}

#[derive(Debug)]
struct ScopePlan {
    batches: Vec<BatchPlan>,
    /// Close or terminate the scope after this many batches.
    stop_after: usize,
    stop: Stop,
    body_panics: bool,
    tasks: usize,
}

fn plan_scope(rng: &mut Rng) -> ScopePlan {
    let mut next_id = 0;
    let leaf = |rng: &mut Rng, batch: usize, index: usize, next_id: &mut usize| {
        let id = *next_id;
        *next_id += 1;
        TaskPlan {
            id,
            batch,
            index,
            panics: false,
            sleep_micros: if rng.chance(5) { 20 } else { 0 },
            nested: None,
            forks: Vec::new(),
            spawns: Vec::new(),
        }
    };
    let batch_count = 1 + rng.below(6);
    let mut batches = Vec::new();
    for batch in 0..batch_count {
        let size = rng.below(9);
        let mut tasks = Vec::new();
        for index in 0..size {
            let mut task = leaf(rng, batch, index, &mut next_id);
            task.panics = rng.chance(8);
            if rng.chance(10) {
                let n = 1 + rng.below(4);
                let nested_batch = 1000 + task.id;
                let leaves = (0..n)
                    .map(|i| leaf(rng, nested_batch, i, &mut next_id))
                    .collect();
                task.nested = Some((leaves, rng.chance(50)));
            }
            if rng.chance(10) {
                let n = 1 + rng.below(6);
                task.forks = (0..n)
                    .map(|i| leaf(rng, 2000 + task.id, i, &mut next_id))
                    .collect();
            }
            if rng.chance(10) {
                let n = 1 + rng.below(4);
                task.spawns = (0..n)
                    .map(|i| leaf(rng, 3000 + task.id, i, &mut next_id))
                    .collect();
            }
            tasks.push(task);
        }
        let action = match rng.below(8) {
            0 => Action::Get,
            1 => Action::WaitThenFailures,
            2 => Action::CancelThenFailures,
            3 => Action::TimeoutThenDrop,
            4 => Action::Forget,
            5 => Action::Results,
            6 => Action::AsCompleted,
            _ => Action::GetTimeout,
        };
        batches.push(BatchPlan {
            id: batch,
            tasks,
            chunk: rng.chance(50).then(|| 1 + rng.below(4)),
            blocking: rng.chance(15),
            fail_fast: rng.chance(10),
            action,
        });
    }
    let stop = match rng.below(6) {
        0 => Stop::Close,
        1 => Stop::Terminate,
        _ => Stop::None,
    };
    ScopePlan {
        stop_after: rng.below(batch_count + 1),
        stop,
        body_panics: rng.chance(3),
        batches,
        tasks: next_id,
    }
}

/// What happened to every task and batch of one scope.
struct Ledger {
    runs: Vec<AtomicUsize>,
    /// Tasks whose submission was refused (closed scope).
    refused: Vec<AtomicBool>,
    /// Batches (by id, nested ones at 1000 + id of their parent task) whose
    /// handle reported a failure.
    observed: Vec<AtomicBool>,
    cancelled_batches: Vec<AtomicBool>,
    terminated: AtomicBool,
    seed: u64,
}

impl Ledger {
    fn new(plan: &ScopePlan, seed: u64) -> Ledger {
        Ledger {
            runs: (0..plan.tasks).map(|_| AtomicUsize::new(0)).collect(),
            refused: (0..plan.tasks).map(|_| AtomicBool::new(false)).collect(),
            observed: (0..plan.batches.len())
                .map(|_| AtomicBool::new(false))
                .collect(),
            cancelled_batches: (0..plan.batches.len())
                .map(|_| AtomicBool::new(false))
                .collect(),
            terminated: AtomicBool::new(false),
            seed,
        }
    }

    fn value(task: &TaskPlan) -> usize {
        task.id * 3 + 1
    }

    /// Checks one outcome a handle reported for `task`.
    fn check_outcome(&self, task: &TaskPlan, outcome: Result<&usize, &TaskError>) {
        let seed = self.seed;
        match outcome {
            Ok(value) => {
                assert_eq!(
                    *value,
                    Ledger::value(task),
                    "seed {seed}: wrong result for {task:?}"
                );
                assert!(!task.panics, "seed {seed}: a panicking task gave a result");
            }
            Err(error) => {
                assert_eq!(error.index(), task.index, "seed {seed}: wrong index");
                match error.kind() {
                    TaskErrorKind::Panicked { message } => {
                        TOTALS.panics_reported_by_handles.fetch_add(1, SeqCst);
                        assert!(task.panics, "seed {seed}: {task:?} reported {message}");
                        assert_eq!(
                            message,
                            &format!("stress-panic b{} t{}", task.batch, task.index)
                        );
                    }
                    TaskErrorKind::Cancelled => {}
                    other => panic!("seed {seed}: unexpected failure {other:?}"),
                }
            }
        }
    }
}

/// The body of every top-level task.
fn run_task<'s>(s: &'s Scope<'s, '_>, ledger: &'s Ledger, task: &'s TaskPlan) -> usize {
    ledger.runs[task.id].fetch_add(1, SeqCst);
    if task.sleep_micros > 0 {
        thread::sleep(Duration::from_micros(task.sleep_micros));
    }
    if let Some((leaves, take)) = &task.nested {
        let nested = s.try_map_async(|leaf: &TaskPlan| run_leaf(ledger, leaf), leaves);
        if nested.is_ok() {
            TOTALS.nested_batches.fetch_add(1, SeqCst);
        }
        match nested {
            Ok(batch) if *take => match batch.get() {
                Ok(values) => {
                    for (leaf, value) in leaves.iter().zip(values) {
                        ledger.check_outcome(leaf, Ok(&value));
                    }
                }
                Err(error) => {
                    assert!(
                        error.is_cancelled(),
                        "seed {}: nested leaves never panic: {error}",
                        ledger.seed
                    );
                    assert!(ledger.terminated.load(SeqCst), "seed {}", ledger.seed);
                }
            },
            Ok(batch) => drop(batch),
            Err(SubmitError::Closed | SubmitError::Terminated) => {
                for leaf in leaves {
                    ledger.refused[leaf.id].store(true, SeqCst);
                }
            }
            Err(other) => panic!("seed {}: unexpected refusal {other}", ledger.seed),
        }
    }
    if !task.forks.is_empty() {
        fork_tree(ledger, &task.forks);
    }
    spawn_chain(s, ledger, &task.spawns);
    if task.panics {
        panic!("stress-panic b{} t{}", task.batch, task.index);
    }
    Ledger::value(task)
}

/// Runs `leaves` as a balanced `fork_join` tree.
fn fork_tree(ledger: &Ledger, leaves: &[TaskPlan]) {
    match leaves {
        [] => {}
        [leaf] => {
            run_leaf(ledger, leaf);
        }
        _ => {
            let (left, right) = leaves.split_at(leaves.len() / 2);
            poolscope::fork_join(|| fork_tree(ledger, left), || fork_tree(ledger, right));
        }
    }
}

/// Spawns the first of `chain` (handle dropped), which runs and spawns the
/// rest the same way.
fn spawn_chain<'s>(s: &'s Scope<'s, '_>, ledger: &'s Ledger, chain: &'s [TaskPlan]) {
    let Some((first, rest)) = chain.split_first() else {
        return;
    };
    match s.try_apply_async(move || {
        run_leaf(ledger, first);
        spawn_chain(s, ledger, rest);
    }) {
        Ok(task) => {
            TOTALS.spawned.fetch_add(1, SeqCst);
            drop(task);
        }
        Err(SubmitError::Closed | SubmitError::Terminated) => {
            for leaf in chain {
                ledger.refused[leaf.id].store(true, SeqCst);
            }
        }
        Err(other) => panic!("seed {}: unexpected refusal {other}", ledger.seed),
    }
}

fn run_leaf(ledger: &Ledger, leaf: &TaskPlan) -> usize {
    ledger.runs[leaf.id].fetch_add(1, SeqCst);
    Ledger::value(leaf)
}

/// Submits one batch and does its action; returns nothing, records in the
/// ledger.
fn drive_batch<'s>(s: &'s Scope<'s, '_>, ledger: &'s Ledger, plan: &'s BatchPlan, rng: &mut Rng) {
    let seed = ledger.seed;
    let submitted = s.batch().blocking(plan.blocking).fail_fast(plan.fail_fast);
    let submitted = match plan.chunk {
        Some(chunk) => submitted.chunk(chunk),
        None => submitted,
    };
    let batch =
        match submitted.try_map_async(move |t: &TaskPlan| run_task(s, ledger, t), &plan.tasks) {
            Ok(batch) => batch,
            Err(SubmitError::Closed | SubmitError::Terminated) => {
                for task in &plan.tasks {
                    ledger.refused[task.id].store(true, SeqCst);
                }
                return;
            }
            Err(other) => panic!("seed {seed}: unexpected refusal {other}"),
        };
    assert_eq!(batch.len(), plan.tasks.len());
    TOTALS.batches.fetch_add(1, SeqCst);
    let observed = &ledger.observed[plan.id];
    let check_all = |outcomes: Vec<Result<usize, TaskError>>| {
        assert_eq!(outcomes.len(), plan.tasks.len(), "seed {seed}");
        for (task, outcome) in plan.tasks.iter().zip(&outcomes) {
            if outcome.is_err() {
                observed.store(true, SeqCst);
            }
            ledger.check_outcome(task, outcome.as_ref());
        }
    };
    let check_failures = |failures: Vec<TaskError>| {
        if !failures.is_empty() {
            observed.store(true, SeqCst);
        }
        for failure in &failures {
            ledger.check_outcome(&plan.tasks[failure.index()], Err(failure));
        }
    };
    match plan.action {
        Action::Get => match batch.get() {
            Ok(values) => check_all(values.into_iter().map(Ok).collect()),
            Err(error) => {
                observed.store(true, SeqCst);
                ledger.check_outcome(&plan.tasks[error.index()], Err(&error));
            }
        },
        Action::WaitThenFailures => {
            batch.wait();
            assert!(batch.is_ready());
            assert_eq!(batch.completed(), batch.len());
            let successful = batch.successful().expect("ready");
            let failures = batch.failures();
            assert_eq!(successful, failures.is_empty(), "seed {seed}");
            check_failures(failures);
        }
        Action::CancelThenFailures => {
            ledger.cancelled_batches[plan.id].store(true, SeqCst);
            let cancelled = batch.cancel();
            batch.wait();
            let failures = batch.failures();
            let cancelled_failures = failures.iter().filter(|f| f.is_cancelled()).count();
            assert!(
                cancelled_failures >= cancelled,
                "seed {seed}: cancel() said {cancelled}, failures list {cancelled_failures}"
            );
            check_failures(failures);
        }
        Action::TimeoutThenDrop => {
            let ready = batch.wait_timeout(Duration::from_micros(rng.below(200) as u64));
            if ready {
                assert!(batch.is_ready());
            } else {
                TOTALS.timeouts.fetch_add(1, SeqCst);
            }
            drop(batch);
        }
        Action::Forget => std::mem::forget(batch),
        Action::Results => check_all(batch.results().collect()),
        Action::AsCompleted => {
            let mut seen = BTreeSet::new();
            let mut outcomes: Vec<Option<Result<usize, TaskError>>> =
                (0..plan.tasks.len()).map(|_| None).collect();
            for (index, outcome) in batch.as_completed() {
                assert!(seen.insert(index), "seed {seed}: index {index} twice");
                outcomes[index] = Some(outcome);
            }
            check_all(
                outcomes
                    .into_iter()
                    .map(|o| o.expect("every index"))
                    .collect(),
            );
        }
        Action::GetTimeout => {
            match batch.get_timeout(Duration::from_micros(rng.below(200) as u64)) {
                Ok(values) => check_all(values.into_iter().map(Ok).collect()),
                Err(GetTimeoutError::Failed(error)) => {
                    observed.store(true, SeqCst);
                    ledger.check_outcome(&plan.tasks[error.index()], Err(&error));
                }
                Err(GetTimeoutError::Timeout(batch)) => {
                    TOTALS.timeouts.fetch_add(1, SeqCst);
                    match batch.get() {
                        Ok(values) => check_all(values.into_iter().map(Ok).collect()),
                        Err(error) => {
                            observed.store(true, SeqCst);
                            ledger.check_outcome(&plan.tasks[error.index()], Err(&error));
                        }
                    }
                }
            }
        }
    }
}

/// Runs one planned scope on `pool` and checks its ledger.
fn run_scope(pool: &Pool, plan: &ScopePlan, seed: u64, mut rng: Rng) {
    let ledger = Ledger::new(plan, seed);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            for (i, batch) in plan.batches.iter().enumerate() {
                if i == plan.stop_after {
                    stop(s, plan.stop, &ledger);
                }
                drive_batch(s, &ledger, batch, &mut rng);
            }
            if plan.stop_after == plan.batches.len() {
                stop(s, plan.stop, &ledger);
            }
            if plan.body_panics {
                panic!("stress-body-panic");
            }
        })
    }));

    let terminated = ledger.terminated.load(SeqCst);
    // Nested batches, fork trees and spawn chains are submitted only by a
    // parent that ran; a fork tree always runs to the end.
    for task in plan.batches.iter().flat_map(|b| &b.tasks) {
        if ledger.runs[task.id].load(SeqCst) == 1 {
            for leaf in &task.forks {
                let runs = ledger.runs[leaf.id].load(SeqCst);
                assert_eq!(runs, 1, "seed {seed}: fork leaf {leaf:?} ran {runs} times");
                TOTALS.fork_leaves.fetch_add(1, SeqCst);
            }
        }
    }
    let all_tasks = plan.batches.iter().flat_map(|b| {
        b.tasks.iter().flat_map(|t| {
            let parent_ran = ledger.runs[t.id].load(SeqCst) == 1;
            let leaves = t.nested.iter().filter(move |_| parent_ran);
            let spawns = t.spawns.iter().filter(move |_| parent_ran);
            std::iter::once(t)
                .chain(leaves.flat_map(|(leaves, _)| leaves.iter()))
                .chain(spawns)
        })
    });
    for task in all_tasks {
        let runs = ledger.runs[task.id].load(SeqCst);
        let refused = ledger.refused[task.id].load(SeqCst);
        let top = task.batch < 1000;
        let cancellable = terminated
            || (top && ledger.cancelled_batches[task.batch].load(SeqCst))
            || (top && plan.batches[task.batch].fail_fast);
        assert!(runs <= 1, "seed {seed}: {task:?} ran {runs} times");
        TOTALS.tasks_run.fetch_add(runs, SeqCst);
        if refused {
            TOTALS.refused.fetch_add(1, SeqCst);
            assert_eq!(runs, 0, "seed {seed}: refused {task:?} ran");
        } else if runs == 0 {
            TOTALS.cancelled.fetch_add(1, SeqCst);
            assert!(
                cancellable,
                "seed {seed}: {task:?} neither ran nor was cancelled"
            );
        }
    }

    // Which batches had a panic that actually happened, and which of those
    // no handle reported.
    let unreported: BTreeSet<usize> = plan
        .batches
        .iter()
        .filter(|b| {
            b.tasks
                .iter()
                .any(|t| t.panics && ledger.runs[t.id].load(SeqCst) == 1)
        })
        .filter(|b| !ledger.observed[b.id].load(SeqCst))
        .map(|b| b.id)
        .collect();
    match outcome {
        Ok(()) => assert!(
            unreported.is_empty(),
            "seed {seed}: panics of batches {unreported:?} were never reported"
        ),
        Err(payload) => {
            let message = panic_message(&*payload);
            if plan.body_panics {
                assert_eq!(message, "stress-body-panic", "seed {seed}");
            } else {
                let reraised: BTreeSet<usize> = plan
                    .batches
                    .iter()
                    .filter(|b| message.contains(&format!("stress-panic b{} t", b.id)))
                    .map(|b| b.id)
                    .collect();
                assert_eq!(
                    reraised, unreported,
                    "seed {seed}: the scope end re-raised {reraised:?}, unreported were {unreported:?}: {message}"
                );
                assert!(!unreported.is_empty(), "seed {seed}: {message}");
                TOTALS
                    .panics_reraised_at_scope_end
                    .fetch_add(reraised.len(), SeqCst);
            }
        }
    }
}

fn stop<'s>(s: &'s Scope<'s, '_>, stop: Stop, ledger: &Ledger) {
    match stop {
        Stop::None => {}
        Stop::Close => {
            s.close();
            assert_eq!(s.try_apply_async(|| ()).unwrap_err(), SubmitError::Closed);
        }
        Stop::Terminate => {
            ledger.terminated.store(true, SeqCst);
            s.terminate();
            assert_eq!(
                s.try_apply_async(|| ()).unwrap_err(),
                SubmitError::Terminated
            );
        }
    }
}

fn seed_from_env() -> u64 {
    match std::env::var("POOLSCOPE_STRESS_SEED") {
        Ok(text) => text.parse().expect("POOLSCOPE_STRESS_SEED is a u64"),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    }
}

#[test]
fn the_ledger_balances_under_random_batches_panics_cancels_and_closes() {
    let seed = seed_from_env();
    let rounds: u64 = std::env::var("POOLSCOPE_STRESS_ITERS")
        .map(|text| text.parse().expect("POOLSCOPE_STRESS_ITERS is a number"))
        .unwrap_or(1500);
    eprintln!("stress: seed {seed}, {rounds} rounds (POOLSCOPE_STRESS_SEED={seed} to reproduce)");

    // Task panics are expected by the thousand; keep the log readable.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = panic_message(info.payload());
        if !message.starts_with("stress-") && !message.contains("stress-panic") {
            default_hook(info);
        }
    }));

    let progress = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let progress = progress.clone();
        let finished = finished.clone();
        thread::spawn(move || {
            let mut last = (0, Instant::now());
            while !finished.load(SeqCst) {
                thread::sleep(Duration::from_millis(50));
                let now = progress.load(SeqCst);
                if now != last.0 {
                    last = (now, Instant::now());
                } else if last.1.elapsed() > HANG_AFTER {
                    eprintln!(
                        "stress: HUNG in round {now} with no progress for {HANG_AFTER:?}; \
                         reproduce with POOLSCOPE_STRESS_SEED={seed}"
                    );
                    std::process::abort();
                }
            }
        })
    };

    let mut rng = Rng(seed);
    for round in 0..rounds {
        let round_seed = rng.next();
        let mut round_rng = Rng(round_seed);
        let started = Arc::new(AtomicUsize::new(0));
        let exited = Arc::new(AtomicUsize::new(0));
        let threads = 1 + round_rng.below(3);
        let pool = Pool::builder()
            .threads(threads)
            .max_blocking_threads(1 + round_rng.below(3))
            .blocking_idle_timeout(Duration::from_millis(round_rng.below(3) as u64))
            .on_thread_start({
                let started = started.clone();
                move |_| {
                    started.fetch_add(1, SeqCst);
                }
            })
            .on_thread_exit({
                let exited = exited.clone();
                move |_| {
                    exited.fetch_add(1, SeqCst);
                }
            })
            .build()
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let plans = [plan_scope(&mut round_rng), plan_scope(&mut round_rng)];
        let rngs = [Rng(round_rng.next()), Rng(round_rng.next())];
        thread::scope(|threads_scope| {
            for (plan, scope_rng) in plans.iter().zip(rngs) {
                let pool = &pool;
                threads_scope.spawn(move || run_scope(pool, plan, seed, scope_rng));
            }
        });
        drop(pool);
        assert_eq!(
            started.load(SeqCst),
            exited.load(SeqCst),
            "seed {seed}, round {round}: a thread outlived its pool"
        );
        assert!(started.load(SeqCst) >= threads, "seed {seed}");
        progress.store(round + 1, SeqCst);
    }
    finished.store(true, SeqCst);
    watchdog.join().unwrap();
    eprintln!("stress: {TOTALS:#?}");
    if rounds >= 100 {
        // Enough rounds that every kind of event must have happened; if not,
        // the plan generator no longer exercises what this test claims.
        for (what, count) in [
            ("nested batches", &TOTALS.nested_batches),
            ("cancelled tasks", &TOTALS.cancelled),
            ("refused tasks", &TOTALS.refused),
            (
                "panics reported by handles",
                &TOTALS.panics_reported_by_handles,
            ),
            (
                "panics re-raised at scope end",
                &TOTALS.panics_reraised_at_scope_end,
            ),
            ("timeouts", &TOTALS.timeouts),
            ("fork_join leaves", &TOTALS.fork_leaves),
            ("spawned tasks", &TOTALS.spawned),
        ] {
            assert!(
                count.load(SeqCst) > 0,
                "seed {seed}: no {what} in {rounds} rounds"
            );
        }
    }
}
