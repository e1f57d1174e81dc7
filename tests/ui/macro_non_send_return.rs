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
    });
}
