//! `par_batch!`: parse the scope, the options and the body; validate;
//! expand to code that evaluates every call's receiver and arguments on the
//! submitting thread, then submits one batch.

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::parse::discouraged::Speculative;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    braced, bracketed, token, AngleBracketedGenericArguments, Expr, ExprCall, ExprMethodCall,
    Ident, Pat, Token, UnOp,
};

use crate::options::{self, Errors, RawOption};

const VALID: &[&str] = &[
    "name",
    "blocking",
    "chunk",
    "fail_fast",
    "in_flight",
    "on_complete",
    "timeout",
    "deadline",
    "crate",
];

/// The most calls a block may hold (the tuples `TupleBatch::get` returns).
const MAX_BLOCK: usize = 12;

struct ParBatch {
    pool: Expr,
    options: Vec<RawOption>,
    body: Body,
}

enum Body {
    Comprehension {
        call: Box<Call>,
        pat: Box<Pat>,
        iter: Box<Expr>,
        /// `if COND`: only the items for which it holds are submitted.
        filter: Option<Box<Expr>>,
    },
    List {
        bracket: token::Bracket,
        calls: Vec<Call>,
    },
    Block {
        brace: token::Brace,
        calls: Vec<Call>,
    },
}

/// One call of the body, as written.
struct Call {
    span: Span,
    /// The call as written, for error spans.
    tokens: TokenStream,
    kind: CallKind,
}

enum CallKind {
    Function {
        callee: Expr,
        args: Vec<Expr>,
    },
    Method {
        receiver: Expr,
        method: Ident,
        turbofish: Option<AngleBracketedGenericArguments>,
        args: Vec<Expr>,
    },
}

impl Call {
    fn from_expr(expr: Expr) -> syn::Result<Call> {
        let span = expr.span();
        let tokens = expr.to_token_stream();
        match expr {
            Expr::Call(ExprCall { func, args, .. }) => Ok(Call {
                span,
                tokens,
                kind: CallKind::Function {
                    callee: *func,
                    args: args.into_iter().collect(),
                },
            }),
            Expr::MethodCall(ExprMethodCall {
                receiver,
                method,
                turbofish,
                args,
                ..
            }) => Ok(Call {
                span,
                tokens,
                kind: CallKind::Method {
                    receiver: *receiver,
                    method,
                    turbofish,
                    args: args.into_iter().collect(),
                },
            }),
            other => Err(syn::Error::new_spanned(
                &other,
                "par_batch! runs calls: expected `function(args)` or `value.method(args)`; to run another expression, call a closure: `(|| ...)()`",
            )),
        }
    }

    fn args(&self) -> &[Expr] {
        match &self.kind {
            CallKind::Function { args, .. } | CallKind::Method { args, .. } => args,
        }
    }
}

impl Parse for ParBatch {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            // Nothing was written: the macro call is all there is to show.
            return Err(syn::Error::new(
                Span::call_site(),
                "par_batch! needs a scope and a body, as in `par_batch!(pool, f(x) for x in xs)`",
            ));
        }
        let mut options = Vec::new();
        // `crate = path` may also come first, before the scope.
        if input.peek(Token![crate]) && input.peek2(Token![=]) {
            options.push(input.parse::<RawOption>()?);
            input.parse::<Token![,]>()?;
        }
        let pool: Expr = input.parse()?;
        if input.is_empty() {
            return Err(syn::Error::new_spanned(
                &pool,
                "par_batch! needs a body after the scope, as in `par_batch!(pool, f(x) for x in xs)`",
            ));
        }
        input.parse::<Token![,]>()?;
        while RawOption::peek(input) {
            let option: RawOption = input.parse()?;
            if input.is_empty() {
                return Err(syn::Error::new_spanned(
                    option.tokens(),
                    "par_batch! needs a body after its options: `f(x) for x in xs`, `[f(a), f(b)]` or `{ f(a); g(b); }`",
                ));
            }
            input.parse::<Token![,]>()?;
            options.push(option);
        }
        let body = if input.peek(token::Bracket) {
            let content;
            let bracket = bracketed!(content in input);
            let exprs = Punctuated::<Expr, Token![,]>::parse_terminated(&content)?;
            let calls = exprs
                .into_iter()
                .map(Call::from_expr)
                .collect::<syn::Result<_>>()?;
            Body::List { bracket, calls }
        } else if input.peek(token::Brace) {
            let content;
            let brace = braced!(content in input);
            let mut calls = Vec::new();
            while !content.is_empty() {
                let expr: Expr = content.parse()?;
                calls.push(Call::from_expr(expr)?);
                if content.is_empty() {
                    break;
                }
                content.parse::<Token![;]>()?;
            }
            Body::Block { brace, calls }
        } else {
            let expr: Expr = input.parse()?;
            let call = Call::from_expr(expr)?;
            if !input.peek(Token![for]) {
                const MESSAGE: &str = "expected `for PATTERN in ITERATOR` after the call, as in `par_batch!(pool, f(x) for x in xs)`; for a fixed set of calls write a list `[f(a), f(b)]` or a block `{ f(a); g(b); }`";
                return Err(if input.is_empty() {
                    syn::Error::new_spanned(&call.tokens, MESSAGE)
                } else {
                    input.error(MESSAGE)
                });
            }
            input.parse::<Token![for]>()?;
            let pat = Pat::parse_multi_with_leading_vert(input)?;
            if !input.peek(Token![in]) {
                let message = format!(
                    "expected `in` after `for {}`, as in `f(x) for x in xs`",
                    pat.to_token_stream()
                );
                return Err(if input.is_empty() {
                    syn::Error::new_spanned(&pat, message)
                } else {
                    input.error(message)
                });
            }
            input.parse::<Token![in]>()?;
            let (iter, filter) = parse_iter_and_filter(input)?;
            Body::Comprehension {
                call: Box::new(call),
                pat: Box::new(pat),
                iter: Box::new(iter),
                filter: filter.map(Box::new),
            }
        };
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
            if !input.is_empty() {
                return Err(input.error("unexpected tokens after the body of par_batch!"));
            }
        }
        Ok(ParBatch {
            pool,
            options,
            body,
        })
    }
}

/// `ITER` or `ITER if COND`. An iterator such as `0..` would take a
/// following `if COND` for its end (and fail for want of a block), so when
/// the plain parse fails the tokens are split at each top-level `if` in
/// turn, and the first split whose two sides are expressions wins.
fn parse_iter_and_filter(input: ParseStream<'_>) -> syn::Result<(Expr, Option<Expr>)> {
    let fork = input.fork();
    let plain = fork.parse::<Expr>();
    let first_error = match plain {
        Ok(iter) if fork.is_empty() || fork.peek(Token![if]) || fork.peek(Token![,]) => {
            input.advance_to(&fork);
            if !input.peek(Token![if]) {
                return Ok((iter, None));
            }
            let if_token: Token![if] = input.parse()?;
            if input.is_empty() || input.peek(Token![,]) {
                return Err(syn::Error::new_spanned(
                    if_token,
                    "expected a condition after `if`, as in `f(x) for x in xs if x > 0`",
                ));
            }
            let filter: Expr = input.parse()?;
            return Ok((iter, Some(filter)));
        }
        Ok(_) => fork.error("unexpected tokens after the body of par_batch!"),
        Err(error) => error,
    };
    let tokens: Vec<TokenTree> = input.fork().parse::<TokenStream>()?.into_iter().collect();
    let mut end = tokens.len();
    if matches!(tokens.last(), Some(TokenTree::Punct(comma)) if comma.as_char() == ',') {
        end -= 1;
    }
    for (at, token) in tokens[..end].iter().enumerate() {
        if !matches!(token, TokenTree::Ident(ident) if ident == "if") || at == 0 {
            continue;
        }
        let before: TokenStream = tokens[..at].iter().cloned().collect();
        let after: TokenStream = tokens[at + 1..end].iter().cloned().collect();
        if let (Ok(iter), Ok(filter)) = (syn::parse2::<Expr>(before), syn::parse2::<Expr>(after)) {
            // Consume what was split.
            input.parse::<TokenStream>()?;
            return Ok((iter, Some(filter)));
        }
    }
    Err(first_error)
}

/// The options, checked, as code and flags.
struct BatchOptions {
    krate: TokenStream,
    /// Builder method calls, `.name(...)`, in the order written.
    setters: Vec<TokenStream>,
    in_flight: Option<(Ident, Expr)>,
    on_complete: Option<(Ident, Expr)>,
    /// `fail_fast` was given: calls returning `Result` then also stop the
    /// batch at their first `Err`.
    fail_fast: bool,
}

fn check_options(raw: Vec<RawOption>, body: &Body, errors: &mut Errors) -> BatchOptions {
    let raw = options::check_keys(raw, VALID, "par_batch!", errors);
    let mut result = BatchOptions {
        krate: options::krate(None),
        setters: Vec::new(),
        in_flight: None,
        on_complete: None,
        fail_fast: false,
    };
    for option in &raw {
        let key = &option.key;
        match key.to_string().as_str() {
            "crate" => result.krate = options::krate(options::crate_path(option, errors)),
            "blocking" | "fail_fast" => {
                result.fail_fast |= key == "fail_fast";
                let value = match &option.value {
                    Some((_, value)) => value.to_token_stream(),
                    None => quote_spanned!(key.span()=> true),
                };
                result
                    .setters
                    .push(quote_spanned!(key.span()=> .#key(#value)));
            }
            "timeout" | "deadline" => {
                let example = if key == "timeout" {
                    "timeout = Duration::from_secs(2)"
                } else {
                    "deadline = Instant::now() + Duration::from_secs(2)"
                };
                if let Some(value) = options::required_value(option, example, errors) {
                    result
                        .setters
                        .push(quote_spanned!(value.span()=> .#key(#value)));
                }
            }
            "name" => {
                if let Some(value) = options::required_value(option, "name = \"resize\"", errors) {
                    result
                        .setters
                        .push(quote_spanned!(value.span()=> .name(#value)));
                }
            }
            "chunk" => {
                if let Some(value) = options::required_value(option, "chunk = 64", errors) {
                    if is_zero_literal(value) {
                        errors.spanned(
                            value,
                            "`chunk = 0` is not a chunk size; pass 1 or more, or leave `chunk` out for adaptive chunks",
                        );
                    }
                    result
                        .setters
                        .push(quote_spanned!(value.span()=> .chunk(#value)));
                }
            }
            "in_flight" => {
                if let Some(value) = options::required_value(option, "in_flight = 64", errors) {
                    if is_zero_literal(value) {
                        errors.spanned(
                            value,
                            "`in_flight = 0` would never start a task; pass 1 or more",
                        );
                    }
                    if !matches!(body, Body::Comprehension { .. }) {
                        errors.spanned(
                            key,
                            "`in_flight` streams a comprehension `f(x) for x in xs` lazily; a list or block of calls is submitted at once",
                        );
                    }
                    result.in_flight = Some((key.clone(), value.clone()));
                }
            }
            "on_complete" => {
                if let Some(value) =
                    options::required_value(option, "on_complete = |index, outcome| ...", errors)
                {
                    if matches!(body, Body::Block { .. }) {
                        errors.spanned(
                            key,
                            "`on_complete` needs calls of one result type; a block's calls return unlike types (use a list `[...]` or a comprehension)",
                        );
                    }
                    result.on_complete = Some((key.clone(), value.clone()));
                }
            }
            _ => unreachable!("check_keys keeps valid keys only"),
        }
    }
    result
}

fn is_zero_literal(expr: &Expr) -> bool {
    matches!(expr, Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(int), .. }) if int.base10_digits() == "0")
}

fn check_body(body: &Body, errors: &mut Errors) {
    match body {
        Body::List { bracket, calls } if calls.is_empty() => errors.push(syn::Error::new(
            bracket.span.join(),
            "par_batch! needs at least one call in `[...]`; for a batch over data that may be empty, write `f(x) for x in xs`",
        )),
        Body::Block { brace, calls } if calls.is_empty() => errors.push(syn::Error::new(
            brace.span.join(),
            "par_batch! needs at least one call in `{ ... }`",
        )),
        Body::Block { calls, .. } if calls.len() > MAX_BLOCK => errors.spanned(
            &calls[MAX_BLOCK].tokens,
            format!("a block of par_batch! holds at most {MAX_BLOCK} calls (its results come back as a tuple); split it or use a list of calls of one type"),
        ),
        _ => {}
    }
}

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let parsed: ParBatch = match syn::parse2(input.clone()) {
        Ok(parsed) => parsed,
        Err(error) => return options::error_value(error, &options::krate_in(&input)),
    };
    let mut errors = Errors::default();
    check_body(&parsed.body, &mut errors);
    let options = check_options(parsed.options, &parsed.body, &mut errors);
    if let Err(error) = errors.finish() {
        return options::error_value(error, &options.krate);
    }
    let private = {
        let krate = &options.krate;
        quote!(#krate::__private)
    };
    let generator = Generator {
        private,
        options: &options,
    };
    generator.expand(&parsed.pool, &parsed.body)
}

fn mixed(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// A macro-internal name shown at `span` in diagnostics.
fn mixed_at(name: String, span: Span) -> Ident {
    Ident::new(&name, Span::mixed_site().located_at(span))
}

/// The spans of the first and the last token of `tokens`: an expression
/// whose first token has the one and whose last the other spans the same
/// source as `tokens` (a proc macro cannot join spans on stable).
fn first_and_last(tokens: &TokenStream) -> (Span, Span) {
    let mut tokens = tokens.clone().into_iter();
    let first = tokens
        .next()
        .map_or_else(Span::call_site, |token| token.span());
    let last = tokens.last().map_or(first, |token| token.span());
    (first, last)
}

/// `path` spanning `first..last` (its last token at `last`, the others at
/// `first`), so that a label on the path as a whole shows there.
fn path_at(path: TokenStream, (first, last): (Span, Span)) -> TokenStream {
    let mut tokens: Vec<TokenTree> = path.into_iter().collect();
    let count = tokens.len();
    for (at, token) in tokens.iter_mut().enumerate() {
        token.set_span(if at + 1 == count { last } else { first });
    }
    tokens.into_iter().collect()
}

/// `path(args)`, the call expression spanning `first..last`, so that an
/// error about the call as a whole (a bound the callee puts on what the
/// arguments infer) shows at the user's call, not at the macro.
fn call_at(path: TokenStream, args: TokenStream, (first, last): (Span, Span)) -> TokenStream {
    let path: TokenStream = path
        .into_iter()
        .map(|mut token| {
            token.set_span(first);
            token
        })
        .collect();
    let mut args = Group::new(Delimiter::Parenthesis, args);
    args.set_span(last);
    quote!(#path #args)
}

/// Whether `expr` names a place (a variable, a field, an element): such a
/// callee or receiver is borrowed (or copied), not moved.
fn is_place(expr: &Expr) -> bool {
    match expr {
        Expr::Path(_) => true,
        Expr::Field(field) => is_place(&field.base),
        Expr::Index(index) => is_place(&index.expr),
        Expr::Paren(paren) => is_place(&paren.expr),
        Expr::Group(group) => is_place(&group.expr),
        Expr::Unary(unary) => matches!(unary.op, UnOp::Deref(_)),
        _ => false,
    }
}

/// `(|x| x + 1)` without its parentheses, which are needed in a call but
/// not in a `let`.
fn without_parens(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(paren) => without_parens(&paren.expr),
        other => other,
    }
}

/// The variable a place starts from: `x` for `x.a[3].b`.
fn place_root(expr: &Expr) -> Option<&Ident> {
    match expr {
        Expr::Path(path) if path.qself.is_none() => path.path.get_ident(),
        Expr::Field(field) => place_root(&field.base),
        Expr::Index(index) => place_root(&index.expr),
        Expr::Paren(paren) => place_root(&paren.expr),
        Expr::Group(group) => place_root(&group.expr),
        Expr::Unary(unary) => place_root(&unary.expr),
        _ => None,
    }
}

/// The variables a `for` pattern binds.
fn bindings(pat: &Pat, out: &mut Vec<Ident>) {
    match pat {
        Pat::Ident(ident) => {
            out.push(ident.ident.clone());
            if let Some((_, sub)) = &ident.subpat {
                bindings(sub, out);
            }
        }
        Pat::Tuple(tuple) => tuple.elems.iter().for_each(|p| bindings(p, out)),
        Pat::TupleStruct(tuple) => tuple.elems.iter().for_each(|p| bindings(p, out)),
        Pat::Struct(strukt) => strukt.fields.iter().for_each(|f| bindings(&f.pat, out)),
        Pat::Slice(slice) => slice.elems.iter().for_each(|p| bindings(p, out)),
        Pat::Reference(reference) => bindings(&reference.pat, out),
        Pat::Or(or) => or.cases.iter().for_each(|p| bindings(p, out)),
        Pat::Paren(paren) => bindings(&paren.pat, out),
        Pat::Type(typed) => bindings(&typed.pat, out),
        _ => {}
    }
}

struct Generator<'a> {
    private: TokenStream,
    options: &'a BatchOptions,
}

/// One call's evaluated parts, as variables.
struct Evaluated {
    /// `let` statements that evaluate the parts, in order.
    lets: Vec<TokenStream>,
    /// The variables, in order: callee or receiver (if any), then arguments.
    vars: Vec<Ident>,
    /// The call, written over the variables, for a worker.
    call: TokenStream,
}

impl Generator<'_> {
    /// Takes `expr` by value, or a place by copy or borrow.
    fn take(&self, expr: &Expr, by_value: bool) -> TokenStream {
        let private = &self.private;
        if by_value || !is_place(expr) {
            let expr = without_parens(expr);
            quote_spanned!(expr.span()=> #expr)
        } else {
            quote_spanned!(expr.span()=> (&#private::Pick(&#expr)).__poolscope_pick())
        }
    }

    /// Borrows a callee that is a place (a function item, a variable
    /// holding a closure); takes any other callee by value. Never copies a
    /// place: whether a closure defined in the same function is `Copy` is
    /// not known yet when this code is checked.
    fn take_callee(&self, callee: &Expr) -> TokenStream {
        if is_place(callee) {
            quote_spanned!(callee.span()=> &#callee)
        } else {
            let callee = without_parens(callee);
            quote_spanned!(callee.span()=> #callee)
        }
    }

    /// `SentToWorker::sent(value)`: a value that is not `Send` is reported
    /// at the user's `expr`, once, as "required by" the user's `call`.
    fn sent(&self, expr: &Expr, value: TokenStream, call: &Call) -> TokenStream {
        let private = &self.private;
        let path = path_at(
            quote!(#private::SentToWorker::sent),
            first_and_last(&call.tokens),
        );
        quote_spanned!(expr.span()=> #path(#value))
    }

    /// Evaluates one call's parts into variables named after `prefix`.
    /// `shared_callee` names a callee evaluated once for every item (a
    /// `Shared`); otherwise the callee is one of the call's own parts.
    fn evaluate(
        &self,
        call: &Call,
        prefix: &str,
        bound: &[Ident],
        shared_callee: Option<&Ident>,
    ) -> Evaluated {
        let mut lets = Vec::new();
        let mut vars = Vec::new();
        let head = match &call.kind {
            CallKind::Function { callee, .. } => match shared_callee {
                Some(shared) => quote!((#shared.get())),
                None => {
                    let var = mixed_at(format!("{prefix}_callee"), callee.span());
                    let value = self.sent(callee, self.take_callee(callee), call);
                    lets.push(quote!(let #var = #value;));
                    vars.push(var.clone());
                    quote!((#var.into_inner()))
                }
            },
            CallKind::Method { receiver, .. } => {
                let var = mixed_at(format!("{prefix}_receiver"), receiver.span());
                let rooted_in_item =
                    place_root(receiver).is_some_and(|root| bound.iter().any(|b| b == root));
                let value = self.sent(receiver, self.take(receiver, rooted_in_item), call);
                lets.push(quote!(let #var = #value;));
                vars.push(var.clone());
                quote!(#var.into_inner())
            }
        };
        let mut arg_values = Vec::new();
        for (index, arg) in call.args().iter().enumerate() {
            let var = mixed_at(format!("{prefix}_arg{index}"), arg.span());
            let value = self.sent(arg, quote!(#arg), call);
            lets.push(quote_spanned!(arg.span()=> let #var = #value;));
            arg_values.push(quote!(#var.into_inner()));
            vars.push(var);
        }
        let span = call.span;
        let invocation = match &call.kind {
            CallKind::Function { .. } => quote_spanned!(span=> #head(#(#arg_values),*)),
            CallKind::Method {
                method, turbofish, ..
            } => quote_spanned!(span=> #head.#method #turbofish(#(#arg_values),*)),
        };
        Evaluated {
            lets,
            vars,
            call: invocation,
        }
    }

    /// `.name(..)`, `.chunk(..)` ... as the user wrote them.
    fn setters(&self) -> TokenStream {
        let setters = &self.options.setters;
        quote!(#(#setters)*)
    }

    /// The submission, a call of `SentBack`'s, spanning `at` (the user's
    /// call or list): a result type that is not `Send` is one error there.
    fn submit(
        &self,
        calls: &Ident,
        task: TokenStream,
        builder: &Ident,
        at: (Span, Span),
    ) -> TokenStream {
        let private = &self.private;
        if self.options.fail_fast {
            // Name the task (with its argument types fixed by the calls) so
            // that autoref on its result type can pick `Result::is_err` as
            // the failure check, or none for other types.
            let named = mixed("__poolscope_task");
            let check = mixed("__poolscope_failure_check");
            let submit = match &self.options.on_complete {
                Some((_, callback)) => call_at(
                    quote!(#private::SentBack::submit_checked_with_callback),
                    quote!(#builder, #calls, #named, #check, #callback),
                    at,
                ),
                None => call_at(
                    quote!(#private::SentBack::submit_checked),
                    quote!(#builder, #calls, #named, #check),
                    at,
                ),
            };
            return quote!({
                #[allow(unused_imports)]
                use #private::{ViaAnyResult as _, ViaResult as _};
                let #named = #private::typed_task(&#calls, #task);
                let #check = (&#private::failure_probe(&#calls, &#named)).__poolscope_failure_check();
                #submit
            });
        }
        match &self.options.on_complete {
            Some((_, callback)) => call_at(
                quote!(#private::SentBack::submit_with_callback),
                quote!(#builder, #calls, #task, #callback),
                at,
            ),
            None => call_at(
                quote!(#private::SentBack::submit),
                quote!(#builder, #calls, #task),
                at,
            ),
        }
    }

    fn expand(&self, pool: &Expr, body: &Body) -> TokenStream {
        let private = &self.private;
        let scope = mixed("__poolscope_scope");
        let builder = mixed("__poolscope_builder");
        let calls = mixed("__poolscope_calls");
        // A typed `let`, spanned at the user's scope expression: anything
        // else there is a "mismatched types" error on it.
        let scope_type = quote_spanned!(pool.span()=> &#private::Scope<'_, '_>);
        let prelude = quote! {
            #[allow(unused_imports)]
            use #private::{ViaBorrow as _, ViaCopy as _};
            let #scope: #scope_type = #pool;
        };
        let setters = self.setters();
        let new_builder = quote!(let #builder = #scope.batch() #setters;);
        match body {
            Body::Comprehension {
                call,
                pat,
                iter,
                filter,
            } => {
                let mut bound = Vec::new();
                bindings(pat, &mut bound);
                let (callee_lets, shared_callee) = match &call.kind {
                    CallKind::Function { callee, .. } => {
                        let var = mixed_at("__poolscope_callee".into(), callee.span());
                        let value = self.take_callee(callee);
                        let path = path_at(
                            quote!(#private::SharedWithWorkers::shared),
                            first_and_last(&call.tokens),
                        );
                        let shared = quote_spanned!(callee.span()=> #path(#value));
                        (quote!(let #var = #shared;), Some(var))
                    }
                    CallKind::Method { .. } => (quote!(), None),
                };
                let evaluated = self.evaluate(call, "__poolscope", &bound, shared_callee.as_ref());
                let Evaluated {
                    lets,
                    vars,
                    call: invocation,
                } = evaluated;
                let task = quote!(move |(#(#vars,)*)| #invocation);
                let items = mixed("__poolscope_items");
                let keep = mixed("__poolscope_keep");
                let head = quote! {
                    #prelude
                    #callee_lets
                    #new_builder
                    let #items = ::core::iter::IntoIterator::into_iter(#iter);
                };
                let at = first_and_last(&call.tokens);
                // `if COND`, on the submitting thread, before the item's
                // receiver and arguments are evaluated; typed so that a
                // condition that is not a `bool` is an error on it.
                let condition = filter.as_ref().map(|filter| {
                    let bool_type = quote_spanned!(filter.span()=> bool);
                    quote!(let #keep: #bool_type = #filter;)
                });
                if let Some((_, in_flight)) = &self.options.in_flight {
                    let in_flight = quote_spanned!(in_flight.span()=> .in_flight(#in_flight));
                    let pulled = match &condition {
                        Some(condition) => quote! {
                            ::core::iter::Iterator::filter_map(#items, |#pat| {
                                #condition
                                if #keep {
                                    #(#lets)*
                                    ::core::option::Option::Some((#(#vars,)*))
                                } else {
                                    ::core::option::Option::None
                                }
                            })
                        },
                        None => quote! {
                            ::core::iter::Iterator::map(#items, |#pat| { #(#lets)* (#(#vars,)*) })
                        },
                    };
                    let imap = match &self.options.on_complete {
                        Some((_, callback)) => call_at(
                            quote!(#private::SentBack::imap_with_callback),
                            quote!(#builder #in_flight, #task, #pulled, #callback),
                            at,
                        ),
                        None => call_at(
                            quote!(#private::SentBack::imap),
                            quote!(#builder #in_flight, #task, #pulled),
                            at,
                        ),
                    };
                    return quote!({ #head #imap });
                }
                let skip = condition.map(|condition| {
                    quote! {
                        #condition
                        if !#keep {
                            continue;
                        }
                    }
                });
                let submit = self.submit(&calls, task, &builder, at);
                quote!({
                    #head
                    let mut #calls = #private::Vec::with_capacity(::core::iter::Iterator::size_hint(&#items).0);
                    for #pat in #items {
                        #skip
                        #(#lets)*
                        #calls.push((#(#vars,)*));
                    }
                    #submit
                })
            }
            Body::List { calls: list, .. } | Body::Block { calls: list, .. } => {
                let block = matches!(body, Body::Block { .. });
                let call_enum = mixed("__PoolscopeCall");
                let mut generics = Vec::new();
                let mut variants = Vec::new();
                let mut arms = Vec::new();
                let mut pushes = Vec::new();
                let slots = format_ident!("Slots{}", list.len());
                for (index, call) in list.iter().enumerate() {
                    let prefix = format!("__poolscope_{index}");
                    let evaluated = self.evaluate(call, &prefix, &[], None);
                    let variant = format_ident!("Call{}", index, span = Span::mixed_site());
                    let params: Vec<Ident> = (0..evaluated.vars.len())
                        .map(|field| {
                            format_ident!("T{}_{}", index, field, span = Span::mixed_site())
                        })
                        .collect();
                    variants.push(quote!(#variant(#(#params),*)));
                    generics.extend(params);
                    let Evaluated {
                        lets,
                        vars,
                        call: invocation,
                    } = evaluated;
                    let result = if block {
                        // Each result is checked at its own call: the
                        // block's calls return unlike types.
                        let slot = format_ident!("V{}", index);
                        let sent = call_at(
                            quote!(#private::SentBack::sent_from),
                            quote!(|| #invocation),
                            first_and_last(&call.tokens),
                        );
                        quote!(#private::#slots::#slot(#sent))
                    } else {
                        invocation
                    };
                    arms.push(quote!(#call_enum::#variant(#(#vars),*) => #result));
                    pushes.push(quote! {
                        #(#lets)*
                        #calls.push(#call_enum::#variant(#(#vars),*));
                    });
                }
                let len = list.len();
                let call_var = mixed("__poolscope_call");
                let task = quote!(move |#call_var| match #call_var { #(#arms,)* });
                let span = match body {
                    Body::List { bracket, .. } => bracket.span.join(),
                    Body::Block { brace, .. } => brace.span.join(),
                    Body::Comprehension { .. } => unreachable!("matched above"),
                };
                let submission = if block {
                    quote_spanned!(span=> #private::submit_block(#builder, #calls, #task))
                } else {
                    self.submit(&calls, task, &builder, (span, span))
                };
                quote!({
                    #prelude
                    #[allow(non_camel_case_types)]
                    enum #call_enum<#(#generics),*> { #(#variants),* }
                    let mut #calls = #private::Vec::with_capacity(#len);
                    #(#pushes)*
                    #new_builder
                    #submission
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(text: &str) -> Expr {
        syn::parse_str(text).unwrap()
    }

    #[test]
    fn places_are_variables_fields_elements_and_derefs() {
        for place in ["data", "self.items", "rows[3].cells", "(*shared)", "a::B"] {
            assert!(is_place(&expr(place)), "{place}");
        }
        for value in ["make()", "|x| x", "data.iter()", "f().field", "1 + 2"] {
            assert!(!is_place(&expr(value)), "{value}");
        }
        assert_eq!(place_root(&expr("p.x[1].y")).unwrap(), "p");
    }

    #[test]
    fn a_for_pattern_binds_every_name_it_mentions() {
        let pat = syn::parse::Parser::parse_str(
            Pat::parse_multi_with_leading_vert,
            "(a, Point { x, y: ref b }, [c, ..])",
        )
        .unwrap();
        let mut names = Vec::new();
        bindings(&pat, &mut names);
        let names: Vec<String> = names.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["a", "x", "b", "c"]);
    }

    #[test]
    fn options_are_told_apart_from_a_body() {
        let parsed: ParBatch =
            syn::parse_str("pool, blocking, chunk = 4, f(x) for x in xs").unwrap();
        let keys: Vec<String> = parsed.options.iter().map(|o| o.key.to_string()).collect();
        assert_eq!(keys, ["blocking", "chunk"]);
        assert!(matches!(parsed.body, Body::Comprehension { .. }));
        let parsed: ParBatch =
            syn::parse_str("crate = my::pool, s, blocking(x) for x in xs").unwrap();
        assert_eq!(parsed.options.len(), 1);
        let parsed: ParBatch = syn::parse_str("s, { f(a); g(b) }").unwrap();
        assert!(matches!(parsed.body, Body::Block { ref calls, .. } if calls.len() == 2));
    }
}
