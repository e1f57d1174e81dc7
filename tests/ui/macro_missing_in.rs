use poolscope::{par_batch, pool_scope};

fn double(x: u32) -> u32 {
    x * 2
}

fn main() {
    pool_scope!(|pool| {
        let _ = par_batch!(pool, double(x) for x of 0..3);
    });
}
