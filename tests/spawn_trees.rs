//! Spawn trees (DESIGN point 4): tasks that submit their children into the
//! scope and return without waiting, as with `rayon::scope` and
//! `std::thread::scope`. After the body returns, the scope keeps admitting
//! what its own running tasks submit, and ends when its last task finished;
//! nothing is refused or lost. rayon-core's scope tests, translated.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use poolscope::{Pool, Scope};

mod common;

use common::{panic_message, watchdog};

fn divide_and_conquer<'s>(s: &'s Scope<'s, '_>, counter: &'s AtomicUsize, size: usize) {
    if size > 1 {
        let _ = s.apply_async(move || divide_and_conquer(s, counter, size / 2));
        let _ = s.apply_async(move || divide_and_conquer(s, counter, size / 2));
    } else {
        // Count the leaves.
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_divide_and_conquer_spawn_tree_counts_every_leaf_every_time() {
    watchdog(|| {
        for threads in [1, 2, 3] {
            let pool = Pool::new(threads).unwrap();
            for round in 0..if cfg!(miri) { 2 } else { 300 } {
                let counter = AtomicUsize::new(0);
                pool.scope(|s| {
                    let _ = s.apply_async(|| divide_and_conquer(s, &counter, 64));
                });
                assert_eq!(
                    counter.load(Ordering::SeqCst),
                    64,
                    "round {round} on {threads} threads lost leaves"
                );
            }
        }
    });
}

struct Tree {
    value: u32,
    children: Vec<Tree>,
}

impl Tree {
    fn values(&self, out: &mut Vec<u32>) {
        out.push(self.value);
        for child in &self.children {
            child.values(out);
        }
    }

    /// Adds one to every value: each node updates itself and spawns its
    /// children's updates, then returns.
    fn update<'s>(&'s mut self, s: &'s Scope<'s, '_>) {
        self.value += 1;
        for child in &mut self.children {
            let _ = s.apply_async(move || child.update(s));
        }
    }
}

fn random_tree(depth: u32, seed: &mut u64) -> Tree {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    let children = if depth == 0 { 0 } else { (*seed % 4) as usize };
    Tree {
        value: (*seed % 1000) as u32,
        children: (0..children)
            .map(|_| random_tree(depth - 1, seed))
            .collect(),
    }
}

#[test]
fn updating_a_random_tree_through_spawns_updates_every_node() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let mut seed = 0x2545_F491_4F6C_DD1D;
        for _ in 0..if cfg!(miri) { 3 } else { 100 } {
            let mut tree = random_tree(6, &mut seed);
            let mut before = Vec::new();
            tree.values(&mut before);
            pool.scope(|s| {
                let root = &mut tree;
                let _ = s.apply_async(move || root.update(s));
            });
            let mut after = Vec::new();
            tree.values(&mut after);
            let expected: Vec<u32> = before.iter().map(|v| v + 1).collect();
            assert_eq!(after, expected);
        }
    });
}

#[test]
fn a_panic_three_spawns_deep_reaches_the_scope() {
    let message = watchdog(|| {
        let pool = Pool::new(2).unwrap();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                let _ = s.apply_async(move || {
                    let _ = s.apply_async(move || {
                        let _ = s.apply_async(|| panic!("Hello, world!"));
                    });
                });
            })
        }));
        panic_message(&*outcome.expect_err("the nested panic comes out of the scope"))
    });
    assert!(message.contains("Hello, world!"), "{message}");
    assert!(message.contains("never reported"), "{message}");
}

#[test]
fn a_panicking_spawn_does_not_stop_its_sibling() {
    for sibling_first in [false, true] {
        let ran = AtomicUsize::new(0);
        let pool = Pool::new(2).unwrap();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                let sibling = || {
                    ran.fetch_add(1, Ordering::SeqCst);
                };
                if sibling_first {
                    let _ = s.apply_async(sibling);
                }
                let _ = s.apply_async(|| panic!("job A"));
                if !sibling_first {
                    let _ = s.apply_async(sibling);
                }
            })
        }));
        assert!(outcome.is_err(), "the panic is re-raised");
        assert_eq!(ran.load(Ordering::SeqCst), 1, "the sibling ran");
    }
}

#[test]
fn on_one_worker_the_bodys_spawns_start_in_order_and_every_nested_spawn_runs() {
    let order = watchdog(|| {
        let pool = Pool::new(1).unwrap();
        let order = Mutex::new(Vec::new());
        pool.scope(|s| {
            let order = &order;
            for i in 0..10 {
                let _ = s.apply_async(move || {
                    order.lock().unwrap().push(i * 10);
                    for j in 1..10 {
                        let _ = s.apply_async(move || order.lock().unwrap().push(i * 10 + j));
                    }
                });
            }
        });
        order.into_inner().unwrap()
    });
    let outer: Vec<u32> = order.iter().copied().filter(|v| v % 10 == 0).collect();
    assert_eq!(outer, (0..10).map(|i| i * 10).collect::<Vec<_>>());
    let mut all = order.clone();
    all.sort_unstable();
    assert_eq!(all, (0..100).collect::<Vec<u32>>());
}

#[test]
fn spawns_from_many_tasks_after_the_body_returned_are_all_run() {
    watchdog(|| {
        let pool = Pool::new(2).unwrap();
        for _ in 0..if cfg!(miri) { 5 } else { 200 } {
            let done = AtomicUsize::new(0);
            pool.scope(|s| {
                let done = &done;
                for _ in 0..4 {
                    let _ = s.apply_async(move || {
                        // Let the body return first, then spawn.
                        std::thread::yield_now();
                        for _ in 0..8 {
                            let _ =
                                s.map_async(move |_: u8| done.fetch_add(1, Ordering::SeqCst), 0..2);
                        }
                    });
                }
            });
            assert_eq!(done.load(Ordering::SeqCst), 4 * 8 * 2);
        }
    });
}
