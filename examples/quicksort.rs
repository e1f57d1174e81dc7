//! Recursive divide-and-conquer with poolscope: a parallel quicksort, first
//! with `fork_join` (as one writes `rayon::join`), then with `par_batch!`'s
//! block form, each half borrowing a `&mut` half of the same slice.
//!
//! Run it with `cargo run --release --example quicksort [LENGTH]`.

use std::time::Instant;

use poolscope::{fork_join, par_batch, pool_scope, Scope};

/// Below this length a half is sorted in place, sequentially.
const CUTOFF: usize = 4096;

/// Moves the middle element to its sorted place; returns its index.
fn partition(values: &mut [u64]) -> usize {
    let last = values.len() - 1;
    values.swap(values.len() / 2, last);
    let pivot = values[last];
    let mut store = 0;
    for i in 0..last {
        if values[i] < pivot {
            values.swap(i, store);
            store += 1;
        }
    }
    values.swap(store, last);
    store
}

/// `fork_join`: both halves may run at once, on whichever workers are free;
/// the call returns when both are sorted.
fn quicksort(values: &mut [u64]) {
    if values.len() <= CUTOFF {
        values.sort_unstable();
        return;
    }
    let mid = partition(values);
    let (left, right) = values.split_at_mut(mid);
    fork_join(|| quicksort(left), || quicksort(&mut right[1..]));
}

/// The same with `par_batch!`: a block of two calls is a batch of two tasks
/// on the scope, waited for at once. The scope is passed down as
/// `&'s Scope<'s, '_>` and the slice as `&'s mut`, so its halves live as
/// long as the tasks.
fn quicksort_batch<'s>(pool: &'s Scope<'s, '_>, values: &'s mut [u64]) {
    if values.len() <= CUTOFF {
        values.sort_unstable();
        return;
    }
    let mid = partition(values);
    let (left, right) = values.split_at_mut(mid);
    let right = &mut right[1..];
    par_batch!(pool, {
        quicksort_batch(pool, left);
        quicksort_batch(pool, right);
    })
    .wait();
}

fn random(len: usize) -> Vec<u64> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        })
        .collect()
}

fn main() {
    let len = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(2_000_000);
    let original = random(len);

    let mut values = original.clone();
    let start = Instant::now();
    quicksort(&mut values);
    println!("fork_join: sorted {len} numbers in {:?}", start.elapsed());
    assert!(values.windows(2).all(|pair| pair[0] <= pair[1]));

    let mut values = original.clone();
    let start = Instant::now();
    pool_scope!(|pool| quicksort_batch(pool, &mut values));
    println!("par_batch!: sorted {len} numbers in {:?}", start.elapsed());
    assert!(values.windows(2).all(|pair| pair[0] <= pair[1]));

    let mut values = original;
    let start = Instant::now();
    quicksort_sequential(&mut values);
    println!("the same quicksort on one thread: {:?}", start.elapsed());
}

fn quicksort_sequential(values: &mut [u64]) {
    if values.len() <= CUTOFF {
        values.sort_unstable();
        return;
    }
    let mid = partition(values);
    let (left, right) = values.split_at_mut(mid);
    quicksort_sequential(left);
    quicksort_sequential(&mut right[1..]);
}
