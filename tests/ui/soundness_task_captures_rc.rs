// A task runs on another thread, so what it captures must be `Send`; an
// `Rc` is not (its count is not atomic).
use std::rc::Rc;

fn main() {
    let shared = Rc::new(5);
    poolscope::scope(|s| {
        let mine = shared.clone();
        let _ = s.apply_async(move || *mine + 1);
    });
}
