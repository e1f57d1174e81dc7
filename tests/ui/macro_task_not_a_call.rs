use poolscope::{par_batch, pool_scope};

fn main() {
    let data = [1, 2, 3];
    pool_scope!(|pool| {
        let _ = par_batch!(pool, data[i] + 1 for i in 0..3);
    });
}
