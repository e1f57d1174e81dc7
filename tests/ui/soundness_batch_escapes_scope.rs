// A batch handle cannot outlive its scope: after the scope its tasks and
// the data they borrowed are gone.
fn main() {
    let escaped = poolscope::scope(|s| s.map_async(|x: u32| x * 2, 0..4));
    let _ = escaped.get();
}
