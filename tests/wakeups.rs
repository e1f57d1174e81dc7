//! Waking workers: work queued while a worker sleeps never waits for a busy
//! worker to come back. Two batches submitted back to back, while one worker
//! is still looking for work and the other sleeps, must both start at once:
//! if the looking worker took the first and the second waited for it, a
//! first task that waits on the second would hang the scope.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use poolscope::Pool;

mod common;

use common::watchdog;

#[test]
fn two_single_task_batches_submitted_back_to_back_run_on_both_workers() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        for _ in 0..500 {
            let flag = AtomicBool::new(false);
            pool.scope(|s| {
                // Both workers fall asleep; one is woken for a small task and
                // is still looking for more work when the next two arrive.
                thread::sleep(Duration::from_millis(2));
                s.apply(|| ()).unwrap();
                // The first task runs until the second one has run: both
                // need a worker at once, and the pool has two.
                let waiter = s.apply_async(|| {
                    while !flag.load(Ordering::SeqCst) {
                        thread::yield_now();
                    }
                });
                let setter = s.apply_async(|| flag.store(true, Ordering::SeqCst));
                setter.get().unwrap();
                waiter.get().unwrap();
            });
        }
    });
}
