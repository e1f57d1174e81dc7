//! The three programs of "What a user writes", as tests: the two
//! ThreadPool programs (also in `examples/`) with their output collected
//! instead of printed, and the borrowing one exactly as written (it only
//! type-checks because `pool_scope!` gives the body's value, here the
//! `Result` of `get()`).

use std::sync::Mutex;
use std::{thread::sleep, time::Duration};

use poolscope::{par_batch, pool_scope, pool_task};

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Both ThreadPool programs write here; they run one after the other.
static PROGRAM: Mutex<()> = Mutex::new(());

fn say(line: String) {
    LINES.lock().unwrap().push(line);
}

#[pool_task]
fn task(identifier: u32) {
    sleep(Duration::from_millis(20));
    say(format!("Task {identifier} done"));
}

/// Ten `Task i done` lines, each once, then `All tasks are done`.
fn assert_ten_tasks_then_done() {
    let lines = std::mem::take(&mut *LINES.lock().unwrap());
    assert_eq!(lines.len(), 11, "{lines:?}");
    assert_eq!(lines[10], "All tasks are done");
    let mut tasks = lines[..10].to_vec();
    tasks.sort_by_key(|line| line.split(' ').nth(1).unwrap().parse::<u32>().unwrap());
    let expected: Vec<String> = (0..10).map(|i| format!("Task {i} done")).collect();
    assert_eq!(tasks, expected);
}

#[test]
fn wait_for_one_batch() {
    let _program = PROGRAM.lock().unwrap();
    pool_scope!(|pool| {
        let batch = par_batch!(pool, task(i) for i in 0..10);
        batch.wait();
        say("All tasks are done".into());
    });
    assert_ten_tasks_then_done();
}

#[test]
fn wait_for_everything_after_shutdown_with_the_handles_dropped() {
    let _program = PROGRAM.lock().unwrap();
    pool_scope!(|pool| {
        let _ = par_batch!(pool, task(i) for i in 0..5);
        let _ = par_batch!(pool, task(i) for i in 5..10);
        pool.close();
        pool.join();
        say("All tasks are done".into());
    });
    assert_ten_tasks_then_done();
}

#[test]
fn borrow_get_results_in_order_and_rely_on_the_scope_end_join() {
    let words = vec!["a".to_string(), "bb".into(), "ccc".into()];
    let lens: Vec<usize> = pool_scope!(threads = 4, |pool| {
        par_batch!(pool, str::len(w) for w in &words).get()
    })
    .unwrap();
    assert_eq!(lens, [1, 2, 3]);
    // `words` was only borrowed.
    assert_eq!(words.concat(), "abbccc");
}
