use poolscope::{par_batch, pool_scope};

fn sum(xs: &[u64]) -> u64 {
    xs.iter().sum()
}

fn main() {
    pool_scope!(|pool| {
        let data: Vec<u64> = (0..10).collect();
        let _ = par_batch!(pool, sum(&data[..i]) for i in 0..10);
    });
}
