//! Python's "wait for one batch" ThreadPool program in macro form: ten
//! tasks on the default pool, `wait()` on their batch, then one line.
//!
//! Run: `cargo run --example wait_batch`.

use poolscope::{par_batch, pool_scope, pool_task};
use std::{thread::sleep, time::Duration};

#[pool_task]
fn task(identifier: u32) {
    sleep(Duration::from_millis(500));
    println!("Task {identifier} done");
}

fn main() {
    pool_scope!(|pool| {
        let batch = par_batch!(pool, task(i) for i in 0..10);
        batch.wait();
        println!("All tasks are done");
    });
}
