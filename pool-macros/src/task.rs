//! `#[pool_task]`: parse the options and the function, validate, expand.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Attribute, FnArg, GenericArgument, GenericParam, ItemFn, LitStr, PathArguments, ReturnType,
    Token, Type,
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
    if let Some(unsafety) = &sig.unsafety {
        errors.spanned(
            unsafety,
            "#[pool_task] cannot be an `unsafe fn`: par_batch! would call it without an `unsafe` block; keep the unsafe part inside a safe task",
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.spanned(variadic, "#[pool_task] cannot be variadic");
    }
    for param in &sig.generics.params {
        match param {
            GenericParam::Lifetime(lifetime) => {
                if !lifetime.bounds.is_empty() {
                    errors.spanned(
                        lifetime,
                        "#[pool_task] does not support lifetime bounds such as `'a: 'b`; write the function without them",
                    );
                }
            }
            GenericParam::Type(_) | GenericParam::Const(_) => errors.spanned(
                param,
                "#[pool_task] cannot be generic over types or constants: a task is one value with one function type; write a non-generic task that calls the generic function, as in `#[pool_task] fn sum_u64(xs: &[u64]) -> u64 { sum(xs) }`",
            ),
        }
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        errors.spanned(
            where_clause,
            "#[pool_task] does not support `where` clauses; write the function without one",
        );
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
            "#[pool_task] cannot take or return `impl Trait`: a task's argument and result types must be nameable; use a concrete type or a `Box<dyn ...>`",
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

/// Attributes that describe the name (docs, deprecation) go on the value
/// users call; `cfg` goes everywhere; the rest stay on the function.
fn split_attrs(attrs: &[Attribute]) -> (Vec<&Attribute>, Vec<&Attribute>, Vec<&Attribute>) {
    let mut on_name = Vec::new();
    let mut cfgs = Vec::new();
    let mut on_function = Vec::new();
    for attr in attrs {
        let path = attr.path();
        if path.is_ident("cfg") {
            cfgs.push(attr);
        } else if path.is_ident("doc") || path.is_ident("deprecated") {
            on_name.push(attr);
        } else {
            on_function.push(attr);
        }
    }
    (on_name, cfgs, on_function)
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
        Ok(()) => generate(&function, &options),
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#function #error)
        }
    }
}

fn generate(function: &ItemFn, options: &TaskOptions) -> TokenStream {
    let krate = &options.krate;
    let private = quote!(#krate::__private);
    let sig = &function.sig;
    let vis = &function.vis;
    let name = &sig.ident;
    let (on_name, cfgs, on_function) = split_attrs(&function.attrs);

    let lifetimes: Vec<_> = sig
        .generics
        .lifetimes()
        .map(|param| &param.lifetime)
        .collect();
    let binder = if lifetimes.is_empty() {
        quote!()
    } else {
        quote!(for<#(#lifetimes),*>)
    };
    let arg_types: Vec<&Type> = sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(arg) => Some(&*arg.ty),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let output = &sig.output;
    let abi = &sig.abi;
    let fn_pointer = quote!(#binder #abi fn(#(#arg_types),*) #output);

    let task_name = match &options.name {
        Some(text) => text.clone(),
        None => LitStr::new(&name.to_string(), name.span()),
    };
    let blocking = options.blocking;

    let mixed = Span::mixed_site();
    let inner = format_ident!("__poolscope_task_{}", name, span = mixed);
    let inner_sig = {
        let mut inner_sig = sig.clone();
        inner_sig.ident = inner.clone();
        inner_sig
    };
    let block = &function.block;

    let send_checks = arg_types
        .iter()
        .map(|ty| quote_spanned!(ty.span()=> #private::require_send::<#ty>();))
        .chain(match output {
            ReturnType::Type(_, ty) => {
                Some(quote_spanned!(ty.span()=> #private::require_send::<#ty>();))
            }
            ReturnType::Default => None,
        });
    let generics_params = &sig.generics.params;
    let check_generics = if generics_params.is_empty() {
        quote!()
    } else {
        quote!(<#generics_params>)
    };

    let signature_text = signature_text(function);
    let debug_text = format!("#[pool_task] {signature_text}");
    let options = quote! {
        #private::TaskOptions {
            name: ::core::option::Option::Some(#task_name),
            blocking: #blocking,
        }
    };

    quote! {
        #(#cfgs)*
        #[allow(non_camel_case_types)]
        #[doc(hidden)]
        #[derive(::core::clone::Clone, ::core::marker::Copy)]
        #vis struct #name {}

        #(#cfgs)*
        #(#on_name)*
        #[allow(non_upper_case_globals)]
        #vis const #name: #name = #name {};

        #(#cfgs)*
        const _: () = {
            impl ::core::ops::Deref for #name {
                type Target = #private::TaskFn<#fn_pointer>;

                #[inline(always)]
                fn deref(&self) -> &Self::Target {
                    #(#on_function)*
                    #inner_sig #block

                    const TASK: #private::TaskFn<#fn_pointer> =
                        #private::TaskFn::__new(#inner, #options);
                    &TASK
                }
            }

            impl ::core::fmt::Debug for #name {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.write_str(#debug_text)
                }
            }

            impl #private::PoolTask for #name {
                const OPTIONS: #private::TaskOptions = #options;
            }

            #[allow(dead_code, clippy::extra_unused_lifetimes)]
            fn __poolscope_check_send #check_generics() {
                #(#send_checks)*
            }
        };
    }
}

/// `fn name(args) -> R`, for `Debug`.
fn signature_text(function: &ItemFn) -> String {
    let sig = &function.sig;
    let mut text = sig.to_token_stream().to_string();
    // Token printing puts spaces everywhere; tidy the common cases.
    for (from, to) in [
        (" (", "("),
        ("( ", "("),
        (" )", ")"),
        (" ,", ","),
        (" :", ":"),
        ("& ", "&"),
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
    ] {
        text = text.replace(from, to);
    }
    text
}
