use poolscope::{par_batch, pool_scope};

fn main() {
    pool_scope!(|pool| {
        let _ = par_batch!(pool, []);
    });
}
