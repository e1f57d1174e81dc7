// A result is made on a worker and taken on the caller's thread, so it must
// be `Send`.
use std::rc::Rc;

fn main() {
    poolscope::scope(|s| {
        let _ = s.apply_async(|| Rc::new(1));
    });
}
