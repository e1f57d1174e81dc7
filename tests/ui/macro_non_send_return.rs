use std::rc::Rc;

use poolscope::{par_batch, pool_scope, pool_task};

#[pool_task]
fn make(x: u32) -> Rc<u32> {
    Rc::new(x)
}

fn plain(x: u32) -> Rc<u32> {
    Rc::new(x)
}

fn main() {
    pool_scope!(|pool| {
        let _ = par_batch!(pool, plain(x) for x in 0..2);
        let _ = par_batch!(pool, [plain(1), plain(2)]);
        let _ = par_batch!(pool, {
            plain(1);
            x_plus_one(2);
        });
    });
}

fn x_plus_one(x: u32) -> u32 {
    x + 1
}
