use poolscope::pool_task;

#[pool_task]
struct Job {
    id: u32,
}

fn main() {
    // The struct is still emitted.
    let _ = Job { id: 1 }.id;
}
