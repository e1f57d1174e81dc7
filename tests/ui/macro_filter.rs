use poolscope::{par_batch, pool_scope};

fn double(x: u32) -> u32 {
    x * 2
}

fn main() {
    pool_scope!(|pool| {
        // The condition must be a `bool`.
        let _ = par_batch!(pool, double(x) for x in 0..4 if x);
        // `if` needs a condition.
        let _ = par_batch!(pool, double(x) for x in 0..4 if);
    });
}
