use poolscope::{par_batch, pool_scope};

fn double(x: u32) -> u32 {
    x * 2
}

fn main() {
    let batch = pool_scope!(|pool| par_batch!(pool, double(x) for x in 0..3));
    let _ = batch.get();
}
