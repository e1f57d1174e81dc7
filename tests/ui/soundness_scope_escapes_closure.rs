// The scope itself cannot leave the scope closure: submitting to it after
// the scope ended would run tasks nobody waits for.
fn main() {
    let mut leaked = None;
    poolscope::scope(|s| {
        leaked = Some(s);
    });
    let _ = leaked.unwrap().apply_async(|| 1);
}
