//! Compile errors of the macros, checked against `tests/ui/macro_*.stderr`
//! (regenerate with `TRYBUILD=overwrite`, then review each one).

#[test]
fn macro_misuse_is_a_compile_error_at_the_offending_tokens() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/macro_*.rs");
}
