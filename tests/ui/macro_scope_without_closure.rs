use poolscope::pool_scope;

fn work() -> u32 {
    1
}

fn main() {
    let _ = pool_scope!(threads = 2, work());
}
