//! A live progress bar for a long batch, driven by `Batch::completed()` and
//! `Batch::len()`: the caller waits in short slices with `wait_timeout` and
//! moves the bar between them, while the pool's workers do the work.
//!
//! Run it with `cargo run --release --example progress`.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use poolscope::Pool;

/// One unit of work: a few milliseconds of hashing.
fn checksum(block: u64) -> u64 {
    let mut hash = block ^ 0xcbf2_9ce4_8422_2325;
    for round in 0..2_000_000u64 {
        hash = (hash ^ round).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn main() {
    let pool = Pool::builder()
        .thread_name("progress-example")
        .build()
        .expect("the pool starts");
    let blocks = 0..2_000u64;

    let combined = pool.scope(|s| {
        let batch = s.batch().name("checksum").map_async(checksum, blocks);

        let bar = ProgressBar::new(batch.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] [{bar:40}] {pos}/{len} blocks ({per_sec}, eta {eta})",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        // Each slice of waiting is at most 50 ms; the bar moves between them.
        while !batch.wait_timeout(Duration::from_millis(50)) {
            bar.set_position(batch.completed() as u64);
        }
        bar.set_position(batch.completed() as u64);
        bar.finish_with_message("done");

        let sums = batch.get().expect("hashing does not fail");
        sums.into_iter().fold(0u64, |acc, sum| acc ^ sum)
    });
    println!("combined checksum of 2000 blocks: {combined:016x}");
}
