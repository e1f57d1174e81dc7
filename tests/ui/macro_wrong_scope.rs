use poolscope::{par_batch, Pool};

fn double(x: u32) -> u32 {
    x * 2
}

fn main() {
    // A batch goes to a scope (`pool` in `pool_scope!(|pool| ...)`), not to
    // a `Pool` itself.
    let pool = Pool::new(2).unwrap();
    let _ = par_batch!(pool, double(x) for x in 0..4);
}
