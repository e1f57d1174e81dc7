//! `pool_scope!`: parse the options and the closure, validate, expand.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, ExprClosure, Pat, Stmt, Token};

use crate::options::{self, Errors, RawOption};

const VALID: &[&str] = &["threads", "name", "max_blocking_threads", "on", "crate"];

struct PoolScope {
    options: Vec<RawOption>,
    body: Expr,
}

impl Parse for PoolScope {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut options = Vec::new();
        while RawOption::peek(input) {
            let option: RawOption = input.parse()?;
            if input.is_empty() {
                return Err(syn::Error::new_spanned(
                    option.tokens(),
                    "pool_scope! needs a closure after its options, as in `pool_scope!(threads = 4, |pool| ...)`",
                ));
            }
            input.parse::<Token![,]>()?;
            options.push(option);
        }
        if input.is_empty() {
            // Nothing was written: the macro call is all there is to show.
            return Err(syn::Error::new(
                Span::call_site(),
                "pool_scope! needs a closure taking the scope, as in `pool_scope!(|pool| { ... })`",
            ));
        }
        let body: Expr = input.parse()?;
        if input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
        }
        if !input.is_empty() {
            return Err(input.error(
                "unexpected tokens after the closure; pool_scope!'s options come before it, as in `pool_scope!(threads = 4, |pool| ...)`",
            ));
        }
        Ok(PoolScope { options, body })
    }
}

fn is_zero_literal(expr: &Expr) -> bool {
    matches!(expr, Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(n), .. }) if n.base10_digits() == "0")
}

fn check_closure(body: &Expr, errors: &mut Errors) {
    match body {
        Expr::Closure(ExprClosure {
            asyncness, inputs, ..
        }) => {
            if let Some(asyncness) = asyncness {
                errors.spanned(
                    asyncness,
                    "pool_scope! takes a plain closure, not an `async` one: the scope's tasks run on threads",
                );
            }
            if inputs.len() != 1 {
                errors.spanned(
                    body,
                    format!(
                        "pool_scope!'s closure takes exactly one argument, the scope (`|pool| ...`); this one takes {}",
                        inputs.len()
                    ),
                );
            }
        }
        other => errors.spanned(
            other,
            "pool_scope! expects a closure taking the scope, as in `pool_scope!(|pool| { ... })`; wrap the code in `|pool| { ... }`",
        ),
    }
}

/// Methods of `Scope` whose value is a handle that borrows the scope.
const HANDLE_METHODS: &[&str] = &[
    "apply_async",
    "map_async",
    "starmap_async",
    "imap",
    "imap_unordered",
];

/// The body's value, when it is written as a handle of the closure's own
/// scope (`par_batch!(pool, ...)`, `pool.map_async(...)`), which cannot
/// leave the scope: the compiler's own error for that is a bare "lifetime
/// may not live long enough", so it gets a clear one here instead. Found
/// by syntax only, so other ways of returning a handle still get the
/// compiler's error; nothing found here would compile.
fn escaping_handle(closure: &ExprClosure) -> Option<TokenStream> {
    let Some(Pat::Ident(param)) = closure.inputs.first() else {
        return None;
    };
    let param = &param.ident;
    let tail = match &*closure.body {
        Expr::Block(block) => match block.block.stmts.last()? {
            Stmt::Expr(expr, None) => expr.to_token_stream(),
            Stmt::Macro(mac) if mac.semi_token.is_none() => mac.mac.to_token_stream(),
            _ => return None,
        },
        other => other.to_token_stream(),
    };
    let tail: Expr = syn::parse2(tail).ok()?;
    let is_param = |expr: &Expr| matches!(expr, Expr::Path(path) if path.path.is_ident(param));
    match &tail {
        Expr::Macro(mac) if mac.mac.path.segments.last()?.ident == "par_batch" => {
            let args: Vec<TokenTree> = mac.mac.tokens.clone().into_iter().collect();
            // The scope is the first argument, after an optional `crate = path,`.
            let mut parts = args.split(|t| matches!(t, TokenTree::Punct(p) if p.as_char() == ','));
            let mut scope = parts.next()?;
            if matches!(scope.first(), Some(TokenTree::Ident(word)) if word == "crate") {
                scope = parts.next()?;
            }
            let scope: Expr = syn::parse2(scope.iter().cloned().collect()).ok()?;
            is_param(&scope).then(|| tail.to_token_stream())
        }
        Expr::MethodCall(call)
            if is_param(&call.receiver)
                && HANDLE_METHODS.contains(&call.method.to_string().as_str()) =>
        {
            Some(tail.to_token_stream())
        }
        _ => None,
    }
}

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let parsed: PoolScope = match syn::parse2(input.clone()) {
        Ok(parsed) => parsed,
        Err(error) => return options::error_value(error, &options::krate_in(&input)),
    };
    let mut errors = Errors::default();
    let raw = options::check_keys(parsed.options, VALID, "pool_scope!", &mut errors);
    check_closure(&parsed.body, &mut errors);

    let mut krate = options::krate(None);
    let mut builder_calls = Vec::new();
    let mut on = None;
    for option in &raw {
        let key = &option.key;
        match key.to_string().as_str() {
            "crate" => krate = options::krate(options::crate_path(option, &mut errors)),
            "threads" => {
                if let Some(value) = options::required_value(option, "threads = 4", &mut errors) {
                    if is_zero_literal(value) {
                        errors.spanned(
                            value,
                            "`threads = 0` is not a pool: a pool needs at least one thread",
                        );
                    }
                    builder_calls.push(quote_spanned!(value.span()=> .threads(#value)));
                }
            }
            "max_blocking_threads" => {
                if let Some(value) =
                    options::required_value(option, "max_blocking_threads = 16", &mut errors)
                {
                    if is_zero_literal(value) {
                        errors.spanned(
                            value,
                            "`max_blocking_threads = 0` would leave blocking tasks no thread to run on; pass 1 or more",
                        );
                    }
                    builder_calls
                        .push(quote_spanned!(value.span()=> .max_blocking_threads(#value)));
                }
            }
            "name" => {
                if let Some(value) = options::required_value(option, "name = \"io\"", &mut errors) {
                    builder_calls.push(quote_spanned!(value.span()=> .thread_name(#value)));
                }
            }
            "on" => {
                if let Some(value) = options::required_value(option, "on = my_pool", &mut errors) {
                    on = Some((key, value));
                }
            }
            _ => unreachable!("check_keys keeps valid keys only"),
        }
    }
    if let (Some((key, _)), false) = (&on, builder_calls.is_empty()) {
        errors.spanned(
            key,
            "`on = ...` runs the scope on an existing pool, and `threads`, `name` and `max_blocking_threads` build a new one; use one or the other",
        );
    }
    let private = quote!(#krate::__private);
    let body = &parsed.body;
    if let Expr::Closure(closure) = body {
        if let Some(handle) = escaping_handle(closure) {
            errors.spanned(
                handle,
                "a handle cannot leave the scope it was submitted to: the scope waits for its tasks when it ends, and the handle borrows it; take what you need inside, as in `pool_scope!(|pool| par_batch!(pool, ...).get())` or `.wait()`",
            );
            // The body still type-checks, its value dropped inside.
            let error = errors.finish().unwrap_err().to_compile_error();
            let inputs = &closure.inputs;
            let inner = &closure.body;
            return quote!({
                #error
                #private::scope(|#inputs| {
                    let _ = #inner;
                })
                ;
                #private::__error_value()
            });
        }
    }
    if let Err(error) = errors.finish() {
        let error = error.to_compile_error();
        // Still check the body, on the default pool, so that its own errors
        // show too and the code around keeps type-checking.
        return match body {
            Expr::Closure(closure) if closure.inputs.len() == 1 && closure.asyncness.is_none() => {
                quote!({ #error #private::scope(#body) })
            }
            _ => quote!({ #error #private::__error_value() }),
        };
    }

    match on {
        Some((_, pool)) => quote_spanned!(pool.span()=> #private::scope_on(&(#pool), #body)),
        None if builder_calls.is_empty() => quote!(#private::scope(#body)),
        None => quote!(#private::scope_on_new(#private::Pool::builder() #(#builder_calls)*, #body)),
    }
}
