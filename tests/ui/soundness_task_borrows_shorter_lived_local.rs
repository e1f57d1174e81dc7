// A task may only borrow what outlives its scope: `local` dies at the end of
// the scope body, while the task may still be running.
fn main() {
    poolscope::scope(|s| {
        let local = vec![1, 2, 3];
        let _ = s.apply_async(|| local.len());
    });
}
