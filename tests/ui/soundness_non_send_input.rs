// Each input is moved to the worker that runs its task, so inputs must be
// `Send`.
use std::rc::Rc;

fn main() {
    poolscope::scope(|s| {
        let inputs = vec![Rc::new(1), Rc::new(2)];
        let _ = s.map_async(|n: Rc<i32>| *n * 2, inputs);
    });
}
