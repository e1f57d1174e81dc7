// Two tasks that may run at once cannot both borrow the same data mutably.
fn main() {
    let mut counter = 0;
    poolscope::scope(|s| {
        let _ = s.apply_async(|| counter += 1);
        let _ = s.apply_async(|| counter += 1);
    });
}
