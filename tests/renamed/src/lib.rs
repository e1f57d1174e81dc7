//! A crate that depends on poolscope under another name, `renamed_pool`:
//! there is no `::poolscope` here, so this only compiles because every
//! macro honours `crate = renamed_pool`.

#![deny(missing_docs)]

use renamed_pool::{par_batch, pool_scope, pool_task, Scope};

/// A blocking task with a name, through the renamed crate.
#[pool_task(crate = renamed_pool, name = "double", blocking)]
pub fn double(x: u64) -> u64 {
    x * 2
}

/// A task that panics for big numbers.
#[pool_task(crate = renamed_pool, name = "small")]
pub fn must_be_small(x: u64) -> u64 {
    assert!(x < 100, "{x} is too big");
    x
}

/// A task that takes the scope.
#[pool_task(crate = renamed_pool)]
pub fn fib<'s>(pool: &'s Scope<'s, '_>, n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    par_batch!(crate = renamed_pool, pool, fib(pool, k) for k in [n - 1, n - 2])
        .get()
        .unwrap()
        .iter()
        .sum()
}

/// Doubles every number on a pool of two threads.
pub fn double_all(numbers: &[u64]) -> Vec<u64> {
    pool_scope!(
        crate = renamed_pool,
        threads = 2,
        max_blocking_threads = 4,
        |pool| {
            par_batch!(pool, crate = renamed_pool, double(*x) for x in numbers)
                .get()
                .unwrap()
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use renamed_pool::Pool;

    #[test]
    fn every_macro_works_through_the_renamed_crate() {
        assert_eq!(double_all(&[1, 2, 3]), [2, 4, 6]);
        let pool = Pool::new(1).unwrap();
        let (fib15, block, name) = pool_scope!(crate = renamed_pool, on = pool, |s| {
            let evens = par_batch!(s, crate = renamed_pool, double(x) for x in 0..6 if x % 2 == 0);
            assert_eq!(evens.get().unwrap(), [0, 4, 8]);
            let failed = par_batch!(s, crate = renamed_pool, must_be_small(x) for x in [1, 200])
                .get()
                .unwrap_err();
            let name = failed.task_name().map(str::to_string);
            let block = par_batch!(s, crate = renamed_pool, {
                double(1);
                fib(s, 5);
            })
            .get()
            .unwrap();
            (fib(s, 15), block, name)
        });
        assert_eq!(fib15, 610);
        assert_eq!(block, (2, 5));
        assert_eq!(name.as_deref(), Some("small"));
        let listed = pool_scope!(crate = renamed_pool, |s| {
            par_batch!(s, crate = renamed_pool, [double(1), double(2)])
                .get()
                .unwrap()
        });
        assert_eq!(listed, [2, 4]);
    }
}
