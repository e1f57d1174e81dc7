//! Python's two ThreadPool programs on a long-lived pool of poolscope's
//! own, line for line, without a scope or a `with` block:
//!
//! ```python
//! pool = ThreadPool()
//! result = pool.map_async(task, range(10))
//! result.wait()
//! print('All tasks are done')
//!
//! _ = pool.map_async(task, range(5))
//! _ = pool.map_async(task, range(5, 10))
//! pool.close()
//! pool.join()
//! print('All tasks are done')
//! ```
//!
//! The pool owns its work: tasks and inputs are `'static`, and the handles
//! could be kept, returned or sent to other threads.
//!
//! Run: `cargo run --example owned_pool`.

use poolscope::Pool;
use std::{thread::sleep, time::Duration};

fn task(identifier: u32) {
    sleep(Duration::from_millis(500));
    println!("Task {identifier} done");
}

fn main() {
    // pool = ThreadPool(): one worker per core.
    let pool = Pool::builder().build().expect("start the pool");

    // The first program: wait for one batch.
    let result = pool.map_async(task, 0..10);
    result.wait();
    println!("All tasks are done");

    // The second: drop the handles, then close and join.
    let _ = pool.map_async(task, 0..5);
    let _ = pool.map_async(task, 5..10);
    pool.close();
    pool.join();
    println!("All tasks are done");
}
