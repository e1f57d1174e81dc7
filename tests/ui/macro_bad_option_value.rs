use poolscope::{par_batch, pool_scope, pool_task};

#[pool_task(name = 42, blocking = "yes")]
fn square(x: u32) -> u32 {
    x * x
}

fn main() {
    let _ = square(2);
    pool_scope!(threads = 0, |pool| {
        let _ = par_batch!(pool, chunk = 0, square(x) for x in 0..4);
        let _ = par_batch!(pool, chunk = "big", square(x) for x in 0..4);
    });
}
