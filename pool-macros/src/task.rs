//! `#[pool_task]`: parse the options and the function, validate, expand.

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    parse_quote, parse_quote_spanned, FnArg, GenericArgument, Ident, ItemFn, LitStr, PathArguments,
    ReturnType, Stmt, Token, Type,
};

use crate::options::{self, Errors, RawOption};

const VALID: &[&str] = &["name", "blocking", "crate"];

/// What the attribute's arguments say.
struct TaskOptions {
    name: Option<LitStr>,
    blocking: bool,
    krate: TokenStream,
}

fn parse_options(args: TokenStream, errors: &mut Errors) -> TaskOptions {
    let mut result = TaskOptions {
        name: None,
        blocking: false,
        krate: options::krate(None),
    };
    let raw = match Punctuated::<RawOption, Token![,]>::parse_terminated.parse2(args) {
        Ok(raw) => raw,
        Err(error) => {
            errors.push(error);
            return result;
        }
    };
    let raw = options::check_keys(raw.into_iter().collect(), VALID, "#[pool_task]", errors);
    for option in &raw {
        match option.key.to_string().as_str() {
            "name" => result.name = options::string_literal(option, errors),
            "blocking" => result.blocking = options::bool_literal(option, errors).unwrap_or(false),
            "crate" => result.krate = options::krate(options::crate_path(option, errors)),
            _ => unreachable!("check_keys keeps valid keys only"),
        }
    }
    result
}

/// Refuses what a task cannot be; every problem is reported.
fn validate(function: &ItemFn, errors: &mut Errors) {
    let sig = &function.sig;
    if let Some(asyncness) = &sig.asyncness {
        errors.spanned(
            asyncness,
            "#[pool_task] cannot be an `async fn`: pool tasks run on worker threads, not on an executor; write a plain `fn`",
        );
    }
    if let Some(constness) = &sig.constness {
        errors.spanned(
            constness,
            "#[pool_task] cannot be a `const fn`: the guard it puts at the top of the body (the task's name for panic reports, the hand-off of a blocking task) runs at run time; drop `const`",
        );
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.spanned(
            unsafety,
            "#[pool_task] cannot be an `unsafe fn`: par_batch! would call it without an `unsafe` block; keep the unsafe part inside a safe task",
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.spanned(variadic, "#[pool_task] cannot be variadic");
    }
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.spanned(
                receiver,
                "#[pool_task] cannot take `self`: a task is a free function; pass the value as an ordinary argument, or call the method from par_batch! as `value.method(args)`",
            ),
            FnArg::Typed(arg) => check_no_impl_trait(&arg.ty, errors),
        }
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        check_no_impl_trait(ty, errors);
    }
}

/// `impl Trait` has no name a task's function type could use.
fn check_no_impl_trait(ty: &Type, errors: &mut Errors) {
    match ty {
        Type::ImplTrait(_) => errors.spanned(
            ty,
            "#[pool_task] cannot take or return `impl Trait`: its check that arguments and result are `Send` needs types it can name; take a type parameter instead (`fn f<I: Iterator + Send>(items: I)`), or return a concrete type or a `Box<dyn ... + Send>`",
        ),
        Type::Reference(reference) => check_no_impl_trait(&reference.elem, errors),
        Type::Ptr(pointer) => check_no_impl_trait(&pointer.elem, errors),
        Type::Slice(slice) => check_no_impl_trait(&slice.elem, errors),
        Type::Array(array) => check_no_impl_trait(&array.elem, errors),
        Type::Paren(paren) => check_no_impl_trait(&paren.elem, errors),
        Type::Group(group) => check_no_impl_trait(&group.elem, errors),
        Type::Tuple(tuple) => tuple
            .elems
            .iter()
            .for_each(|elem| check_no_impl_trait(elem, errors)),
        Type::Path(path) => {
            for segment in &path.path.segments {
                if let PathArguments::AngleBracketed(args) = &segment.arguments {
                    for arg in &args.args {
                        if let GenericArgument::Type(ty) = arg {
                            check_no_impl_trait(ty, errors);
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// Entry point: on any error, the function is emitted unchanged next to the
/// errors, so that its callers still type-check.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let function: ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(error) => {
            let error = syn::Error::new(
                error.span(),
                format!("#[pool_task] goes on a function: {error}"),
            );
            let error = error.to_compile_error();
            return quote!(#item #error);
        }
    };
    let mut errors = Errors::default();
    let options = parse_options(args, &mut errors);
    validate(&function, &mut errors);
    match errors.finish() {
        Ok(()) => generate(function, &options),
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#function #error)
        }
    }
}

fn generate(mut function: ItemFn, options: &TaskOptions) -> TokenStream {
    let krate = &options.krate;
    let private = quote!(#krate::__private);
    let name = &function.sig.ident;
    let task_name = match &options.name {
        Some(text) => text.clone(),
        None => LitStr::new(&name.to_string(), name.span()),
    };
    let blocking = options.blocking;

    // The checks sit in the body, where the function's generics, their
    // bounds and `Self` are in scope; a trait-qualified path, spanned at
    // the user's type, reports a type that is not `Send` there, in the
    // words of `TaskArgument` / `TaskResult`.
    let mut prelude: Vec<Stmt> = Vec::new();
    for input in &function.sig.inputs {
        if let FnArg::Typed(arg) = input {
            let ty = &arg.ty;
            prelude
                .push(parse_quote_spanned!(ty.span()=> <#ty as #private::TaskArgument>::check();));
        }
    }
    if let ReturnType::Type(_, ty) = &function.sig.output {
        prelude.push(parse_quote_spanned!(ty.span()=> <#ty as #private::TaskResult>::check();));
    }
    let guard = Ident::new("__poolscope_task_guard", Span::mixed_site());
    prelude.push(parse_quote! {
        let #guard = #private::enter_task(#task_name, #blocking);
    });
    // The original statements follow in the same block, so the guard is
    // dropped last, after the body's locals and its tail's temporaries, and
    // a panic from any of them is reported with the task's name.
    let body = &mut function.block.stmts;
    prelude.append(body);
    *body = prelude;
    function.into_token_stream()
}
