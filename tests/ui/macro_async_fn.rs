use poolscope::pool_task;

#[pool_task]
async fn fetch(id: u32) -> u32 {
    id
}

fn main() {
    // The function is still emitted: using it raises no further error.
    let _future = fetch(1);
}
