//! The macros of poolscope; use them through the `poolscope` crate.
