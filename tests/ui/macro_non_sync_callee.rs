use std::cell::Cell;

use poolscope::{par_batch, pool_scope};

fn main() {
    let calls = Cell::new(0);
    // Every task calls `count`, on several workers at once: a closure over
    // a `Cell` cannot be shared that way.
    let count = |x: u32| {
        calls.set(calls.get() + 1);
        x
    };
    pool_scope!(|pool| {
        let _ = par_batch!(pool, count(x) for x in 0..4);
    });
}
