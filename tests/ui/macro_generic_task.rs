use poolscope::pool_task;

#[pool_task]
fn total<T: std::iter::Sum<T> + Copy>(xs: &[T]) -> T {
    xs.iter().copied().sum()
}

fn main() {
    let _ = total(&[1, 2, 3]);
}
