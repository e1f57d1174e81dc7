//! The macros of poolscope: `#[pool_task]`, `par_batch!` and
//! `pool_scope!`. Use them through the `poolscope` crate, which re-exports
//! them next to the runtime they expand to.

#![deny(missing_docs, missing_debug_implementations)]

use proc_macro::TokenStream;

mod batch;
mod options;
mod scope;
mod task;

/// Marks a function as a pool task.
#[proc_macro_attribute]
pub fn pool_task(args: TokenStream, item: TokenStream) -> TokenStream {
    task::expand(args.into(), item.into()).into()
}

/// Submits a batch of calls to a scope.
#[proc_macro]
pub fn par_batch(input: TokenStream) -> TokenStream {
    batch::expand(input.into()).into()
}

/// Opens a scope on a pool for the closure's body.
#[proc_macro]
pub fn pool_scope(input: TokenStream) -> TokenStream {
    scope::expand(input.into()).into()
}
