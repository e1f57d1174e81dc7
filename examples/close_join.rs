//! Python's "close, then join" ThreadPool program in macro form: two
//! batches whose handles are dropped, then `close()` and `join()` wait for
//! every task the scope ever ran.
//!
//! Run: `cargo run --example close_join`.

use poolscope::{par_batch, pool_scope, pool_task};
use std::{thread::sleep, time::Duration};

#[pool_task]
fn task(identifier: u32) {
    sleep(Duration::from_millis(500));
    println!("Task {identifier} done");
}

fn main() {
    pool_scope!(|pool| {
        let _ = par_batch!(pool, task(i) for i in 0..5);
        let _ = par_batch!(pool, task(i) for i in 5..10);
        pool.close();
        pool.join();
        println!("All tasks are done");
    });
}
