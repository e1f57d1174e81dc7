//! Options written `key` or `key = value`, shared by the three macros.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, ExprLit, Ident, Lit, LitBool, LitStr, Path, Token};

/// One option as written: `blocking`, `chunk = 64`, `crate = my_pool`.
pub(crate) struct RawOption {
    pub(crate) key: Ident,
    pub(crate) value: Option<(Token![=], Expr)>,
}

impl RawOption {
    /// Whether the next tokens start an option (`ident ,`, `ident =`,
    /// `ident` at the end) rather than a body or a closure.
    pub(crate) fn peek(input: ParseStream<'_>) -> bool {
        if input.peek(Token![crate]) {
            return input.peek2(Token![=]);
        }
        if !input.peek(Ident) || input.peek(Token![move]) || input.peek(Token![async]) {
            return false;
        }
        let fork = input.fork();
        let _ = fork.call(Ident::parse_any);
        fork.is_empty() || fork.peek(Token![,]) || (fork.peek(Token![=]) && !fork.peek(Token![==]))
    }

    /// The whole option, for error spans.
    pub(crate) fn tokens(&self) -> TokenStream {
        let key = &self.key;
        match &self.value {
            Some((eq, value)) => quote!(#key #eq #value),
            None => key.to_token_stream(),
        }
    }
}

impl Parse for RawOption {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key = input.call(Ident::parse_any)?;
        let value = if input.peek(Token![=]) {
            let eq: Token![=] = input.parse()?;
            let value = if key == "crate" {
                // `crate = path` takes a path, which may start with `::`.
                let path: Path = input.call(Path::parse_mod_style).map_err(|_| {
                    syn::Error::new(
                        input.span(),
                        "option `crate` takes a path, as in `crate = my_poolscope`",
                    )
                })?;
                Expr::Path(syn::ExprPath {
                    attrs: Vec::new(),
                    qself: None,
                    path,
                })
            } else {
                input.parse()?
            };
            Some((eq, value))
        } else {
            None
        };
        Ok(RawOption { key, value })
    }
}

/// Collects independent errors, to report them together.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        match self.0 {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// Checks each option's key against `valid` and refuses duplicates; returns
/// the options that passed, in order.
pub(crate) fn check_keys(
    options: Vec<RawOption>,
    valid: &[&str],
    macro_name: &str,
    errors: &mut Errors,
) -> Vec<RawOption> {
    let mut seen: Vec<String> = Vec::new();
    let mut kept = Vec::new();
    for option in options {
        let key = option.key.to_string();
        if !valid.contains(&key.as_str()) {
            let list = valid
                .iter()
                .map(|key| format!("`{key}`"))
                .collect::<Vec<_>>()
                .join(", ");
            errors.spanned(
                &option.key,
                format!("unknown option `{key}` for {macro_name}; the valid options are {list}"),
            );
        } else if seen.contains(&key) {
            errors.spanned(option.tokens(), format!("duplicate option `{key}`"));
        } else {
            seen.push(key);
            kept.push(option);
        }
    }
    kept
}

/// The value of an option that must have one.
pub(crate) fn required_value<'a>(
    option: &'a RawOption,
    example: &str,
    errors: &mut Errors,
) -> Option<&'a Expr> {
    match &option.value {
        Some((_, value)) => Some(value),
        None => {
            errors.spanned(
                &option.key,
                format!("option `{}` needs a value, as in `{example}`", option.key),
            );
            None
        }
    }
}

/// `key` alone means `true`; otherwise the value must be a `true` or `false`
/// literal.
pub(crate) fn bool_literal(option: &RawOption, errors: &mut Errors) -> Option<bool> {
    match &option.value {
        None => Some(true),
        Some((
            _,
            Expr::Lit(ExprLit {
                lit: Lit::Bool(LitBool { value, .. }),
                ..
            }),
        )) => Some(*value),
        Some((_, value)) => {
            errors.spanned(
                value,
                format!(
                    "option `{key}` takes no value or `true` / `false`, as in `{key}` or `{key} = false`",
                    key = option.key
                ),
            );
            None
        }
    }
}

/// The value must be a string literal.
pub(crate) fn string_literal(option: &RawOption, errors: &mut Errors) -> Option<LitStr> {
    let example = format!("{} = \"...\"", option.key);
    match required_value(option, &example, errors)? {
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => Some(text.clone()),
        value => {
            errors.spanned(
                value,
                format!(
                    "option `{}` takes a string literal, as in `{example}`",
                    option.key
                ),
            );
            None
        }
    }
}

/// `crate = path`: where generated code finds poolscope.
pub(crate) fn crate_path(option: &RawOption, errors: &mut Errors) -> Option<Path> {
    match required_value(option, "crate = my_poolscope", errors)? {
        Expr::Path(path) => Some(path.path.clone()),
        value => {
            errors.spanned(
                value,
                "option `crate` takes a path, as in `crate = my_poolscope`",
            );
            None
        }
    }
}

/// The path generated code starts from: `::poolscope` unless overridden.
pub(crate) fn krate(custom: Option<Path>) -> TokenStream {
    match custom {
        Some(path) => path.to_token_stream(),
        None => {
            let name = Ident::new("poolscope", Span::call_site());
            quote!(::#name)
        }
    }
}

/// The `crate = path` option among not yet parsed macro input, if it is
/// there: for the error value of an input that does not parse.
pub(crate) fn krate_in(input: &TokenStream) -> TokenStream {
    let tokens: Vec<TokenTree> = input.clone().into_iter().collect();
    for (at, token) in tokens.iter().enumerate() {
        let is_crate = matches!(token, TokenTree::Ident(ident) if ident == "crate");
        let then_eq =
            matches!(tokens.get(at + 1), Some(TokenTree::Punct(eq)) if eq.as_char() == '=');
        let after_separator =
            at == 0 || matches!(&tokens[at - 1], TokenTree::Punct(comma) if comma.as_char() == ',');
        if !(is_crate && then_eq && after_separator) {
            continue;
        }
        let path: TokenStream = tokens[at + 2..]
            .iter()
            .take_while(|token| !matches!(token, TokenTree::Punct(comma) if comma.as_char() == ','))
            .cloned()
            .collect();
        if let Ok(path) = syn::parse2::<Path>(path) {
            return krate(Some(path));
        }
    }
    krate(None)
}

/// An expression that reports `error` and has any type, so that the code
/// around the macro call keeps type-checking; it does not diverge either,
/// so no "unreachable code" warning follows the error.
pub(crate) fn error_value(error: syn::Error, krate: &TokenStream) -> TokenStream {
    let error = error.to_compile_error();
    quote!({ #error #krate::__private::__error_value() })
}
