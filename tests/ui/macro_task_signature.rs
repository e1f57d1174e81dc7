use poolscope::pool_task;

#[pool_task]
const fn double(x: u32) -> u32 {
    x * 2
}

#[pool_task]
unsafe fn read(pointer: *const u8) -> u8 {
    *pointer
}

#[pool_task]
fn count(items: impl Iterator<Item = u32>) -> usize {
    items.count()
}

#[pool_task]
fn evens(limit: u32) -> impl Iterator<Item = u32> {
    (0..limit).filter(|x| x % 2 == 0)
}

fn main() {
    // Each function is still emitted: using them raises no further error.
    let _ = double(1);
    let _ = unsafe { read(&1) };
    let _ = count(0..3);
    let _ = evens(4).count();
}
