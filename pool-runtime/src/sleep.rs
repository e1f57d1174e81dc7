//! How CPU workers sleep and wake.
//!
//! A worker sleeps in one of two ways. An *idle* worker, with nothing to
//! run anywhere, puts itself on the idle list; whoever queues work takes one
//! sleeper off the list and wakes it. A *waiting* worker, inside a wait for
//! some work that other threads are running, sets its bit in that work's
//! lineage node ([`Node::sleeping`](crate::job::Node)); the work's
//! completion wakes it, and so does new work queued below that node (which
//! it may run). Either way the sleeper waits until its *wake token* is
//! set.
//!
//! ## Memory ordering
//!
//! Every hand-shake here is a store-buffering pair: the sleeper publishes
//! itself (on the idle list and in `idle`, or in a node's `sleeping` bits
//! and in `waiting`) with `SeqCst`, fences, then looks once more for what
//! would wake it; the waker publishes its work or its completion, fences
//! (`SeqCst`), then reads the sleeper counts and bits. Of the two, at least
//! one sees the other. The wake token is a flag under its own mutex, so a
//! wake and a sleeper's check of the token are ordered by that lock.
//!
//! Queuing a `fork_join` half reads the counts without the fence, as
//! rayon-core does for its own pushes: a sleeper that misses such a half
//! costs parallelism, never progress, since the half's caller runs it itself
//! if nobody takes it.

use crate::primitive::{
    lock, wait, wait_timeout, AtomicU64, AtomicUsize, Condvar, Instant, Mutex, Ordering,
};

/// One CPU worker's parking spot: a token behind a mutex and a condition
/// variable. (Not `thread::park`: an `unpark` that lands while the worker
/// waits for some lock is harmless with std, but loom cannot model it.)
pub(crate) struct Parker {
    token: Mutex<bool>,
    woken: Condvar,
}

impl Parker {
    pub(crate) fn new() -> Parker {
        Parker {
            token: Mutex::new(false),
            woken: Condvar::new(),
        }
    }

    /// Forgets wakes meant for earlier sleeps; called before the sleeper
    /// publishes itself, so no wake meant for this sleep is lost.
    pub(crate) fn reset(&self) {
        *lock(&self.token) = false;
    }

    /// Parks until woken.
    pub(crate) fn park(&self) {
        let mut token = lock(&self.token);
        while !*token {
            token = wait(&self.woken, token);
        }
        *token = false;
    }

    /// Parks until woken or `deadline`.
    pub(crate) fn park_until(&self, deadline: Instant) {
        let mut token = lock(&self.token);
        while !*token {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            token = wait_timeout(&self.woken, token, deadline - now);
        }
        *token = false;
    }

    pub(crate) fn wake(&self) {
        let mut token = lock(&self.token);
        *token = true;
        self.woken.notify_one();
    }
}

/// The idle workers and the waiting ones.
pub(crate) struct Sleep {
    /// Indices of idle workers asleep; `idle` mirrors its length.
    idle_list: Mutex<Vec<usize>>,
    /// How many idle workers are asleep (read without the lock).
    pub(crate) idle: AtomicUsize,
    /// Workers looking for work right now without sleeping: a queued job
    /// is left to them instead of waking a sleeper.
    pub(crate) spinning: AtomicUsize,
    /// How many workers sleep inside a wait (their bits are set in some
    /// node): while there are none, queuing work skips looking for them.
    pub(crate) waiting: AtomicUsize,
    /// The union of the bits of the nodes workers sleep on, so that queuing
    /// work walks up its chain of parents only when its bloom says one of
    /// them may be such a node. Recomputed from `waited_bits` under its lock
    /// when a waiter arrives or leaves.
    pub(crate) waited_mask: AtomicU64,
    waited_bits: Mutex<[u32; 64]>,
}

impl Sleep {
    pub(crate) fn new() -> Sleep {
        Sleep {
            idle_list: Mutex::new(Vec::new()),
            idle: AtomicUsize::new(0),
            spinning: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            waited_mask: AtomicU64::new(0),
            waited_bits: Mutex::new([0; 64]),
        }
    }

    /// A waiter is about to sleep on a node with bit `bit`: counted, and in
    /// the mask before the waiter's last look (the caller fences).
    pub(crate) fn enter_waiting(&self, bit: u64) {
        let index = bit.trailing_zeros() as usize;
        let mut bits = lock(&self.waited_bits);
        bits[index] += 1;
        self.waited_mask.fetch_or(bit, Ordering::SeqCst);
        self.waiting.fetch_add(1, Ordering::SeqCst);
    }

    /// The waiter woke.
    pub(crate) fn leave_waiting(&self, bit: u64) {
        let index = bit.trailing_zeros() as usize;
        let mut bits = lock(&self.waited_bits);
        bits[index] -= 1;
        if bits[index] == 0 {
            self.waited_mask.fetch_and(!bit, Ordering::SeqCst);
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }

    /// Puts worker `index` on the idle list; the caller then fences, looks
    /// for work once more, and either parks or calls [`Sleep::leave_idle`].
    pub(crate) fn enter_idle(&self, index: usize) {
        let mut list = lock(&self.idle_list);
        list.push(index);
        self.idle.fetch_add(1, Ordering::SeqCst);
    }

    /// Takes worker `index` off the idle list if it is still there (a waker
    /// that took it off already counted it out).
    pub(crate) fn leave_idle(&self, index: usize) {
        let mut list = lock(&self.idle_list);
        if let Some(position) = list.iter().position(|&i| i == index) {
            list.swap_remove(position);
            self.idle.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Takes up to `n` idle sleepers off the list and calls `wake` on each
    /// (under the list's lock, which orders it before their next sleep).
    pub(crate) fn wake_idle(&self, n: usize, wake: impl Fn(usize)) {
        if n == 0 || self.idle.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut list = lock(&self.idle_list);
        for _ in 0..n {
            let Some(index) = list.pop() else {
                break;
            };
            self.idle.fetch_sub(1, Ordering::SeqCst);
            wake(index);
        }
    }

    /// Every idle sleeper, for shutting down.
    pub(crate) fn take_all_idle(&self) -> Vec<usize> {
        let mut list = lock(&self.idle_list);
        let woken: Vec<usize> = list.drain(..).collect();
        self.idle.fetch_sub(woken.len(), Ordering::SeqCst);
        woken
    }
}
