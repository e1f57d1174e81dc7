use poolscope::{par_batch, pool_scope, pool_task};

#[pool_task(name)]
fn double(x: u32) -> u32 {
    x * 2
}

#[pool_task(crate = 1)]
fn triple(x: u32) -> u32 {
    x * 3
}

fn main() {
    let _ = triple(1);
    pool_scope!(threads, |pool| {
        let _ = par_batch!(pool, timeout, chunk, double(x) for x in 0..4);
    });
    pool_scope!(on, |_pool| {});
}
