use poolscope::{par_batch, pool_scope, pool_task};

#[pool_task(name = "a", name = "b")]
fn square(x: u32) -> u32 {
    x * x
}

fn main() {
    pool_scope!(threads = 2, threads = 3, |pool| {
        let _ = par_batch!(pool, blocking, blocking, square(x) for x in 0..4);
    });
}
