//! Compile-fail cases for what the runtime's types must refuse: tasks that
//! borrow shorter-lived data, handles or the scope escaping the scope,
//! non-`Send` captures, inputs and results, non-`Sync` batch closures,
//! aliasing mutable borrows, and a pool dropped under a running scope.
//!
//! Each case's expected compiler output is checked in next to it; refresh
//! it with `TRYBUILD=overwrite cargo test --test soundness`, then review.

#[test]
fn what_would_be_unsound_does_not_compile() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/soundness_*.rs");
}
