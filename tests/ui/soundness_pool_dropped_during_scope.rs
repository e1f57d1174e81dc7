// A pool cannot be dropped while a scope on it runs (here, on another
// thread): the scope borrows the pool until it ends.
fn main() {
    let pool = poolscope::Pool::new(2).unwrap();
    let shared = &pool;
    std::thread::scope(|threads| {
        threads.spawn(move || shared.scope(|s| s.map(|x: u32| x + 1, 0..4)));
        drop(pool);
    });
}
