use poolscope::{par_batch, pool_scope, pool_task};

#[pool_task(threads = 4)]
fn square(x: u32) -> u32 {
    x * x
}

fn main() {
    let _ = square(2);
    pool_scope!(workers = 4, |pool| {
        let _ = par_batch!(pool, chunks = 4, square(x) for x in 0..4);
    });
}
