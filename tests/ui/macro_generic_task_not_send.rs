use poolscope::pool_task;

// Generic tasks are fine, but their arguments and result must be `Send`
// under the function's own bounds: `&[T]` needs `T: Sync`, `T` needs `Send`.
#[pool_task]
fn total<T: std::iter::Sum<T> + Copy>(xs: &[T]) -> T {
    xs.iter().copied().sum()
}

fn main() {
    let _ = total(&[1, 2, 3]);
}
