// One closure serves every task of a batch, on several workers at once, so
// it must be `Sync`; a closure that touches a `Cell` is not.
use std::cell::Cell;

fn main() {
    let total = Cell::new(0);
    poolscope::scope(|s| {
        let _ = s.map_async(|x: u32| total.set(total.get() + x), 0..4);
    });
}
