use poolscope::{pool_scope, Pool};

fn main() {
    let pool = Pool::new(2).unwrap();
    pool_scope!();
    pool_scope!(threads = 2);
    let _ = pool_scope!(|a, b| 1);
    let _ = pool_scope!(async |pool| 1);
    let _ = pool_scope!(on = pool, threads = 2, |s| s.threads());
    let _ = pool_scope!(on = pool, max_blocking_threads = 4, |s| s.threads());
    let _ = pool_scope!(max_blocking_threads = 0, |s| s.threads());
    let _ = pool_scope!(|s| s.threads(), 4);
}
