//! `par_batch!`: what a user writes in each form, what runs where, and what
//! comes back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;

use poolscope::{par_batch, pool_scope, Pool, Scope, TaskErrorKind, TupleBatch};

fn sum(xs: &[u64]) -> u64 {
    xs.iter().sum()
}

fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[test]
fn a_comprehension_borrows_data_without_move_and_keeps_submission_order() {
    let data: Vec<u64> = (1..=100).collect();
    let prefix_sums =
        pool_scope!(|pool| par_batch!(pool, sum(&data[..i]) for i in 0..=100).get()).unwrap();
    assert_eq!(prefix_sums.len(), 101);
    assert_eq!(prefix_sums[0], 0);
    assert_eq!(prefix_sums[10], 55);
    assert_eq!(prefix_sums[100], 5050);
    // Still ours.
    assert_eq!(data.len(), 100);
}

#[test]
fn a_tuple_pattern_is_a_starmap() {
    let pairs = vec![(1, 2), (3, 4), (5, 6)];
    let sums = pool_scope!(|pool| par_batch!(pool, add(a, b) for (a, b) in pairs.clone()).get());
    assert_eq!(sums.unwrap(), [3, 7, 11]);
    let products = pool_scope!(|pool| {
        par_batch!(pool, u64::wrapping_mul(*a, *b) for (a, b) in &pairs).get()
    });
    assert_eq!(products.unwrap(), [2, 12, 30]);
}

#[test]
fn a_method_call_on_a_vec_borrows_it_and_a_binding_receiver_is_moved() {
    let data = vec![10, 20, 30];
    let words = vec!["a".to_string(), "bb".into(), "ccc".into()];
    pool_scope!(|pool| {
        let got = par_batch!(pool, data.get(i) for i in 0..4).get().unwrap();
        assert_eq!(got, [Some(&10), Some(&20), Some(&30), None]);
        // Each `word` is an owned String, moved into its task.
        let lens = par_batch!(pool, word.len() for word in words.clone())
            .get()
            .unwrap();
        assert_eq!(lens, [1, 2, 3]);
        let upper = par_batch!(pool, word.to_uppercase() for word in &words)
            .get()
            .unwrap();
        assert_eq!(upper, ["A", "BB", "CCC"]);
    });
    assert_eq!(data, [10, 20, 30]);
}

#[test]
fn a_local_closure_works_as_the_callee() {
    let offset = 100;
    let shift = |x: u64| x + offset;
    // A closure that owns its data is borrowed, not moved or copied.
    let table = String::from("poolscope");
    let lookup = move |i: usize| table.len() + i;
    let (shifted, looked_up) = pool_scope!(|pool| {
        // A closure made inside the scope is not a place: taken by value.
        let tripled = par_batch!(pool, (|x: u64| x * 3)(x) for x in 0..3)
            .get()
            .unwrap();
        assert_eq!(tripled, [0, 3, 6]);
        (
            par_batch!(pool, shift(x) for x in 0..3).get().unwrap(),
            par_batch!(pool, lookup(i) for i in 0..3).get().unwrap(),
        )
    });
    assert_eq!(shifted, [100, 101, 102]);
    assert_eq!(looked_up, [9, 10, 11]);
    // `lookup` was only borrowed: still callable here.
    assert_eq!(lookup(0), 9);
}

#[test]
fn receivers_and_arguments_are_evaluated_on_the_submitting_thread_in_order_before_submission() {
    let log = Mutex::new(Vec::<String>::new());
    let threads = Mutex::new(Vec::new());
    let note = |what: String| {
        threads.lock().unwrap().push(thread::current().id());
        log.lock().unwrap().push(what);
    };
    let arg = |text: &str, i: u32| {
        note(format!("{text}{i}"));
        i
    };
    struct Recorder<'a>(&'a Mutex<Vec<String>>);
    impl Recorder<'_> {
        fn run(&self, a: u32, b: u32) -> u32 {
            self.0.lock().unwrap().push(format!("task{a}"));
            a + b
        }
    }
    let recorder = |i: u32| {
        note(format!("recv{i}"));
        Recorder(&log)
    };
    let results = pool_scope!(|pool| {
        par_batch!(pool, recorder(i).run(arg("a", i), arg("b", i)) for i in 0..3).get()
    });
    assert_eq!(results.unwrap(), [0, 2, 4]);
    let log = log.into_inner().unwrap();
    assert_eq!(
        log[..9],
        ["recv0", "a0", "b0", "recv1", "a1", "b1", "recv2", "a2", "b2"],
        "receiver then arguments, item by item, before any task ran: {log:?}"
    );
    let mut tasks = log[9..].to_vec();
    tasks.sort();
    assert_eq!(tasks, ["task0", "task1", "task2"]);
    let me = thread::current().id();
    assert!(threads.into_inner().unwrap().iter().all(|&id| id == me));
}

#[test]
fn a_list_runs_one_task_per_call_in_order() {
    let data: Vec<u64> = (1..=10).collect();
    let double = |x: u64| x * 2;
    let results = pool_scope!(|pool| {
        par_batch!(
            pool,
            [
                sum(&data),
                add(1, 2),
                double(21),
                data.iter().copied().max().unwrap_or(0)
            ]
        )
        .get()
    });
    assert_eq!(results.unwrap(), [55, 3, 42, 10]);
}

#[test]
fn a_block_of_unlike_calls_gives_a_tuple_in_statement_order() {
    let words = ["fork", "join"];
    let data = [1u64, 2, 3];
    let (total, joined, first_upper, count) = pool_scope!(|pool| {
        let block: TupleBatch<'_, (u64, String, String, usize)> = par_batch!(pool, {
            sum(&data);
            words.join("-");
            str::to_uppercase(words[0]);
            words.len();
        });
        assert_eq!(block.len(), 4);
        block.get()
    })
    .unwrap();
    assert_eq!(total, 6);
    assert_eq!(joined, "fork-join");
    assert_eq!(first_upper, "FORK");
    assert_eq!(count, 2);
}

#[test]
fn a_failing_call_of_a_block_is_reported_with_its_statement_index() {
    fn boom(message: &str) -> u8 {
        panic!("{message}")
    }
    let error = pool_scope!(|pool| par_batch!(pool, {
        add(1, 1);
        boom("second fails");
    })
    .get())
    .unwrap_err();
    assert_eq!(error.index(), 1);
    assert_eq!(error.panic_message(), Some("second fails"));
}

fn fib<'s>(pool: &'s Scope<'s, '_>, n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    par_batch!(pool, fib(pool, k) for k in [n - 1, n - 2])
        .get()
        .unwrap()
        .iter()
        .sum()
}

#[test]
fn a_task_may_take_the_scope_and_submit_nested_batches() {
    let pool = Pool::new(1).unwrap();
    assert_eq!(pool_scope!(on = pool, |s| fib(s, 15)), 610);
    assert_eq!(pool_scope!(|s| fib(s, 20)), 6765);
}

#[test]
fn options_name_chunk_and_blocking_reach_the_batch() {
    pool_scope!(|pool| {
        let batch = par_batch!(pool, name = "prefix", chunk = 4, add(i, 1) for i in 0..32);
        assert_eq!(batch.name(), Some("prefix"));
        assert_eq!(batch.get().unwrap()[31], 32);
        let label = String::from("computed");
        let blocking = par_batch!(pool, blocking, name = label, add(i, i) for i in 0..4);
        assert_eq!(blocking.name(), Some("computed"));
        assert_eq!(blocking.get().unwrap(), [0, 2, 4, 6]);
    });
}

#[test]
fn a_named_batch_names_its_failures() {
    fn check(x: u32) -> u32 {
        assert!(x != 2, "two is not allowed");
        x
    }
    let error =
        pool_scope!(|pool| par_batch!(pool, name = "checker", check(x) for x in 0..4).get())
            .unwrap_err();
    assert_eq!(error.index(), 2);
    assert_eq!(error.task_name(), Some("checker"));
    assert!(error.to_string().contains("`checker`"), "{error}");
}

#[test]
fn on_complete_runs_once_per_task_with_its_outcome() {
    let finished = AtomicUsize::new(0);
    let total = AtomicUsize::new(0);
    let results = pool_scope!(|pool| {
        par_batch!(
            pool,
            on_complete = |_index, outcome| {
                finished.fetch_add(1, Ordering::Relaxed);
                total.fetch_add(*outcome.unwrap() as usize, Ordering::Relaxed);
            },
            add(i, 0) for i in 0..10
        )
        .get()
    });
    assert_eq!(results.unwrap().len(), 10);
    assert_eq!(finished.load(Ordering::Relaxed), 10);
    assert_eq!(total.load(Ordering::Relaxed), 45);
}

#[test]
fn fail_fast_cancels_the_rest_after_the_first_panic() {
    fn fails_first(i: u32) -> u32 {
        assert!(i != 0, "task 0 fails");
        i
    }
    let pool = Pool::new(1).unwrap();
    pool_scope!(on = pool, |s| {
        let batch = par_batch!(s, fail_fast, chunk = 1, fails_first(i) for i in 0..50);
        let failures = {
            batch.wait();
            batch.failures()
        };
        assert!(failures[0].is_panic());
        assert!(
            failures.iter().skip(1).any(|f| f.is_cancelled()),
            "later tasks were cancelled: {failures:?}"
        );
    });
}

#[test]
fn fail_fast_also_stops_at_the_first_err_of_calls_returning_a_result() {
    fn parse(text: &str) -> Result<u32, std::num::ParseIntError> {
        text.parse()
    }
    let texts: Vec<String> = (0..50)
        .map(|i| {
            if i == 3 {
                "x".to_string()
            } else {
                i.to_string()
            }
        })
        .collect();
    let ran = AtomicUsize::new(0);
    let counted = |text: &str| {
        ran.fetch_add(1, Ordering::Relaxed);
        parse(text)
    };
    // One thread and chunks of one: tasks run in order, so exactly tasks
    // 0..=3 run and the `Err` of task 3 cancels the other 46.
    let pool = Pool::new(1).unwrap();
    let outcomes: Vec<_> = pool_scope!(on = pool, |s| {
        let batch = par_batch!(s, fail_fast, chunk = 1, counted(t) for t in &texts);
        batch.results().collect()
    });
    assert_eq!(ran.load(Ordering::Relaxed), 4);
    assert_eq!(*outcomes[2].as_ref().unwrap(), Ok(2));
    assert!(
        outcomes[3].as_ref().unwrap().is_err(),
        "the Err stays the task's result"
    );
    assert!(outcomes[4..]
        .iter()
        .all(|o| o.as_ref().is_err_and(|e| e.is_cancelled())));

    // A list of calls is checked the same way; without fail_fast an Err
    // cancels nothing.
    let pool = Pool::new(1).unwrap();
    let (stopped, kept) = pool_scope!(on = pool, |s| {
        let stopped = par_batch!(
            s,
            fail_fast,
            chunk = 1,
            [parse("1"), parse("?"), parse("3")]
        );
        let kept = par_batch!(s, chunk = 1, [parse("1"), parse("?"), parse("3")]);
        stopped.wait();
        let kinds: Vec<TaskErrorKind> = stopped
            .failures()
            .iter()
            .map(|f| f.kind().clone())
            .collect();
        (kinds, kept.get().unwrap())
    });
    assert_eq!(
        stopped,
        [TaskErrorKind::Failed, TaskErrorKind::Cancelled],
        "the Err failed the batch and the call after it was cancelled"
    );
    assert_eq!(kept[2], Ok(3));

    // A method call on the item itself, too.
    let pool = Pool::new(1).unwrap();
    let cancelled = pool_scope!(on = pool, |s| {
        let batch = par_batch!(s, fail_fast, chunk = 1, t.parse::<u8>() for t in &texts);
        batch.wait();
        batch.failures().iter().filter(|f| f.is_cancelled()).count()
    });
    assert_eq!(cancelled, 46);
}

#[test]
fn in_flight_streams_results_in_order_from_an_endless_iterator() {
    let data: Vec<u64> = (0..1000).collect();
    let pulled = AtomicUsize::new(0);
    let first: Vec<u64> = pool_scope!(|pool| {
        let pull = |i: usize| {
            pulled.fetch_add(1, Ordering::Relaxed);
            i
        };
        par_batch!(pool, in_flight = 4, sum(&data[..pull(i)]) for i in 0..)
            .take(5)
            .map(Result::unwrap)
            .collect()
    });
    assert_eq!(first, [0, 0, 1, 3, 6]);
    // Only a bounded look-ahead of the endless input was evaluated.
    assert!(pulled.load(Ordering::Relaxed) < 20, "{pulled:?}");
}

#[test]
fn an_empty_comprehension_is_ready_at_once() {
    let empty: Vec<u64> = Vec::new();
    pool_scope!(|pool| {
        let batch = par_batch!(pool, add(x, 1) for x in empty.iter().copied());
        assert!(batch.is_ready());
        assert!(batch.get().unwrap().is_empty());
    });
}

#[test]
#[should_panic(expected = "closed")]
fn submitting_to_a_closed_scope_panics_saying_it_is_closed() {
    pool_scope!(|pool| {
        pool.close();
        let _ = par_batch!(pool, add(1, x) for x in 0..2);
    });
}

#[test]
fn a_filter_submits_only_the_items_for_which_it_holds_and_indices_count_submitted_tasks() {
    fn must_not_be_seven(x: u32) -> u32 {
        assert!(x != 7, "seven got through");
        x
    }
    let checked = Mutex::new(Vec::new());
    let threads = Mutex::new(Vec::new());
    let keep = |x: u32| {
        checked.lock().unwrap().push(x);
        threads.lock().unwrap().push(thread::current().id());
        x % 3 == 0
    };
    let (kept, failed) = pool_scope!(|pool| {
        let kept = par_batch!(pool, must_not_be_seven(x) for x in 0..10 if keep(x));
        assert_eq!(kept.len(), 4, "only 0, 3, 6 and 9 were submitted");
        // 7 fails, and its index counts the tasks submitted before it.
        let failed = par_batch!(pool, must_not_be_seven(x) for x in 0..10 if x % 2 == 1)
            .get()
            .unwrap_err();
        (kept.get().unwrap(), failed)
    });
    assert_eq!(kept, [0, 3, 6, 9]);
    assert_eq!(failed.index(), 3, "1, 3 and 5 came before 7: {failed}");
    assert_eq!(failed.panic_message(), Some("seven got through"));
    // The condition ran once per item, in order, on the submitting thread.
    assert_eq!(checked.into_inner().unwrap(), (0..10).collect::<Vec<_>>());
    let me = thread::current().id();
    assert!(threads.into_inner().unwrap().iter().all(|&id| id == me));
}

#[test]
fn a_filter_is_evaluated_before_the_items_arguments() {
    let log = Mutex::new(Vec::<String>::new());
    let note = |what: String| log.lock().unwrap().push(what);
    let arg = |i: u32| {
        note(format!("arg{i}"));
        i
    };
    let keep = |i: u32| {
        note(format!("if{i}"));
        i != 1
    };
    let results =
        pool_scope!(|pool| par_batch!(pool, add(arg(i).into(), 1) for i in 0..3 if keep(i)).get());
    assert_eq!(results.unwrap(), [1, 3]);
    assert_eq!(
        log.into_inner().unwrap(),
        ["if0", "arg0", "if1", "if2", "arg2"],
        "a filtered-out item's arguments are never evaluated"
    );
}

#[test]
fn a_filter_works_with_patterns_methods_and_in_flight_over_an_endless_iterator() {
    let pairs = [(1, 2), (3, 4), (5, 6)];
    let words = vec!["a".to_string(), "bb".into(), "ccc".into()];
    let evens: Vec<u64> = pool_scope!(|pool| {
        let sums = par_batch!(pool, add(a, b) for (a, b) in pairs.iter().copied() if a > 1);
        assert_eq!(sums.get().unwrap(), [7, 11]);
        let lens = par_batch!(pool, word.len() for word in &words if word.len() != 2);
        assert_eq!(lens.get().unwrap(), [1, 3]);
        // `0..` with a filter and a bounded stream: the endless input is
        // filtered as the stream pulls it; indices count what was pulled.
        par_batch!(pool, in_flight = 3, add(x, 0) for x in 0.. if x % 2 == 0)
            .take(4)
            .map(Result::unwrap)
            .collect()
    });
    assert_eq!(evens, [0, 2, 4, 6]);
}
