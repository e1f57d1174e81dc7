// A task handle cannot be smuggled out of its scope through a variable of
// the caller either.
fn main() {
    let mut smuggled = None;
    poolscope::scope(|s| {
        smuggled = Some(s.apply_async(|| 1));
    });
    let _ = smuggled.unwrap().get();
}
