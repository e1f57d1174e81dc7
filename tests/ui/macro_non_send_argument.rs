use std::rc::Rc;

use poolscope::{par_batch, pool_scope, pool_task};

#[pool_task]
fn count(shared: Rc<u32>) -> u32 {
    *shared
}

fn plain(shared: Rc<u32>) -> u32 {
    *shared
}

fn main() {
    let shared = Rc::new(1);
    pool_scope!(|pool| {
        let _ = par_batch!(pool, plain(shared.clone()) for _ in 0..2);
        // A receiver moves to the worker too.
        let _ = par_batch!(pool, shared.clone().to_string() for _ in 0..2);
    });
}
