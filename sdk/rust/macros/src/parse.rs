//! Reading `#[op(...)]` and the function it marks into an [`OpSpec`], with errors on the
//! offending tokens.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{
    Attribute, Expr, FnArg, GenericArgument, Ident, ItemFn, Lit, LitStr, Meta, Pat, PathArguments,
    ReturnType, Type, Visibility,
};

/// The longest op, input or output name the host accepts, in bytes.
const MAX_NAME_LEN: usize = 128;

/// The arguments of `#[op(...)]`.
#[derive(Default)]
pub(crate) struct Args {
    /// `dynamic`: one dynamic output, `result`.
    pub(crate) dynamic: Option<Span>,
    /// `optional`: the single output `result` may be left out.
    pub(crate) optional: Option<Span>,
    /// `name = "..."`.
    pub(crate) name: Option<LitStr>,
    /// `description = "..."`.
    pub(crate) description: Option<LitStr>,
    /// `out = "..."`, `dynamic_out = "..."` and their `optional_` forms, in order.
    pub(crate) outs: Vec<(LitStr, Out)>,
    /// `no_schemas`.
    pub(crate) no_schemas: bool,
}

/// What a declared output is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Out {
    pub(crate) dynamic: bool,
    pub(crate) required: bool,
}

const KNOWN_ARGS: &str = "`dynamic`, `optional`, `out = \"...\"`, `dynamic_out = \"...\"`, \
                          `optional_out = \"...\"`, `optional_dynamic_out = \"...\"`, \
                          `name = \"...\"`, `description = \"...\"` and `no_schemas`";

/// The output argument `path` names, if it is one.
fn out_kind(path: &syn::Path) -> Option<Out> {
    let (dynamic, required) = match path.get_ident()?.to_string().as_str() {
        "out" => (false, true),
        "dynamic_out" => (true, true),
        "optional_out" => (false, false),
        "optional_dynamic_out" => (true, false),
        _ => return None,
    };
    Some(Out { dynamic, required })
}

/// Parses the tokens inside `#[op(...)]`.
pub(crate) fn parse_args(tokens: TokenStream) -> syn::Result<Args> {
    let mut args = Args::default();
    let parser = syn::meta::parser(|meta| {
        let path = &meta.path;
        if path.is_ident("dynamic") {
            if args.dynamic.is_some() {
                return Err(meta.error("`dynamic` is given twice"));
            }
            if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                return Err(meta.error("`dynamic` takes no value: write `#[op(dynamic)]`"));
            }
            args.dynamic = Some(path.span());
        } else if path.is_ident("optional") {
            if args.optional.is_some() {
                return Err(meta.error("`optional` is given twice"));
            }
            if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                return Err(meta.error("`optional` takes no value: write `#[op(optional)]`"));
            }
            args.optional = Some(path.span());
        } else if path.is_ident("no_schemas") {
            if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                return Err(meta.error("`no_schemas` takes no value"));
            }
            args.no_schemas = true;
        } else if path.is_ident("name") {
            if args.name.is_some() {
                return Err(meta.error("`name` is given twice"));
            }
            let name: LitStr = meta.value()?.parse()?;
            check_name(&name.value(), "op", name.span())?;
            args.name = Some(name);
        } else if path.is_ident("description") {
            if args.description.is_some() {
                return Err(meta.error("`description` is given twice"));
            }
            args.description = Some(meta.value()?.parse()?);
        } else if let Some(kind) = out_kind(path) {
            let name: LitStr = meta.value()?.parse()?;
            check_name(&name.value(), "output", name.span())?;
            if args.outs.iter().any(|(out, _)| out.value() == name.value()) {
                return Err(syn::Error::new(
                    name.span(),
                    format!("output `{}` is declared twice", name.value()),
                ));
            }
            args.outs.push((name, kind));
        } else {
            let shown = path
                .get_ident()
                .map_or_else(|| "this".to_string(), |ident| format!("`{ident}`"));
            return Err(meta.error(format!(
                "unknown argument {shown} of #[op]; it takes {KNOWN_ARGS}"
            )));
        }
        Ok(())
    });
    parser.parse2(tokens)?;
    if let (Some(dynamic), false) = (args.dynamic, args.outs.is_empty()) {
        return Err(syn::Error::new(
            dynamic,
            "`dynamic` declares the single dynamic output `result`; with `out`/`dynamic_out` \
             declare every output there instead",
        ));
    }
    if let (Some(optional), false) = (args.optional, args.outs.is_empty()) {
        return Err(syn::Error::new(
            optional,
            "`optional` makes the single output `result` optional; with `out`/`dynamic_out` \
             declare optional outputs as `optional_out`/`optional_dynamic_out` instead",
        ));
    }
    Ok(args)
}

/// Checks `name` against the host's rule for names, `^[A-Za-z0-9_]+$`, at most 128 bytes.
pub(crate) fn check_name(name: &str, what: &str, span: Span) -> syn::Result<()> {
    let reason = if name.is_empty() {
        "it is empty".to_string()
    } else if name.len() > MAX_NAME_LEN {
        format!(
            "it is {} bytes long; the limit is {MAX_NAME_LEN}",
            name.len()
        )
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        format!("it contains {c:?}; only ASCII letters, digits and `_` are allowed")
    } else {
        return Ok(());
    };
    Err(syn::Error::new(
        span,
        format!("invalid {what} name `{name}`: {reason}"),
    ))
}

/// An op read from its function.
pub(crate) struct OpSpec {
    pub(crate) fn_ident: Ident,
    pub(crate) vis: Visibility,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) params: Vec<Param>,
    pub(crate) ret: Return,
    pub(crate) outputs: Outputs,
    pub(crate) no_schemas: bool,
}

/// What one parameter of the function receives.
pub(crate) enum Param {
    /// The `&Context`.
    Context,
    /// The config table, decoded into the type.
    Config(Type),
    /// An input, decoded into the type.
    Input {
        name: String,
        description: String,
        ty: Type,
    },
}

/// What the function returns.
pub(crate) struct Return {
    /// `Result<T, E>`: the span of `E` (of the return type when it names none), for errors
    /// about it.
    pub(crate) result: Option<Span>,
    /// The value (the `T` of a `Result`).
    pub(crate) value: Value,
}

/// The value a function returns.
pub(crate) enum Value {
    /// `()` or nothing.
    Unit,
    /// `Outputs`.
    Outputs,
    /// Anything else: a `Serialize` value, or the dynamic outputs of a dynamic op.
    Other(Box<Type>),
}

/// The outputs an op declares.
pub(crate) enum Outputs {
    /// `result`, dynamic or not, required or not.
    Single(Out),
    /// `out = ...`, `dynamic_out = ...` and their optional forms: names and kinds.
    Declared(Vec<(String, Out)>),
}

/// Reads the op that `args` and `item` describe, and strips the attributes the op reads from
/// the function's parameters (their doc comments).
pub(crate) fn analyze(args: Args, item: &mut ItemFn) -> syn::Result<OpSpec> {
    let sig = &item.sig;
    if let Some(asyncness) = &sig.asyncness {
        return Err(syn::Error::new_spanned(
            asyncness,
            "an op cannot be async: the host calls it synchronously",
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        return Err(syn::Error::new_spanned(unsafety, "an op cannot be unsafe"));
    }
    if let Some(abi) = &sig.abi {
        return Err(syn::Error::new_spanned(
            abi,
            "an op is a plain Rust function: no `extern`",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            "an op cannot be generic: the type of every input, of its config and of its result \
             must be known, to decode them and to declare their schemas",
        ));
    }
    let fn_ident = sig.ident.clone();
    let name = match &args.name {
        Some(name) => name.value(),
        None => {
            let name = fn_ident.to_string();
            let name = name.strip_prefix("r#").unwrap_or(&name).to_string();
            check_name(&name, "op", fn_ident.span())?;
            name
        }
    };
    let description = match &args.description {
        Some(description) => description.value(),
        None => doc_text(&item.attrs),
    };

    let mut params = Vec::new();
    for arg in item.sig.inputs.iter_mut() {
        let arg = match arg {
            FnArg::Receiver(receiver) => {
                return Err(syn::Error::new_spanned(
                    receiver,
                    "an op is a free function: it cannot take `self`",
                ));
            }
            FnArg::Typed(arg) => arg,
        };
        let param = param(&arg.pat, &arg.ty, &arg.attrs)?;
        if matches!(param, Param::Context) && params.iter().any(|p| matches!(p, Param::Context)) {
            return Err(syn::Error::new_spanned(
                &arg.ty,
                "an op takes the context once",
            ));
        }
        arg.attrs.retain(|attr| !attr.path().is_ident("doc"));
        params.push(param);
    }

    let ret = classify_return(&item.sig.output);
    let outputs = if args.outs.is_empty() {
        Outputs::Single(Out {
            dynamic: args.dynamic.is_some(),
            required: args.optional.is_none(),
        })
    } else {
        Outputs::Declared(
            args.outs
                .iter()
                .map(|(name, kind)| (name.value(), *kind))
                .collect(),
        )
    };
    check_return(&ret, &outputs, &item.sig.output, &item.sig.ident)?;
    Ok(OpSpec {
        fn_ident,
        vis: item.vis.clone(),
        name,
        description,
        params,
        ret,
        outputs,
        no_schemas: args.no_schemas,
    })
}

/// What parameter `pat: ty` receives.
fn param(pat: &Pat, ty: &Type, attrs: &[Attribute]) -> syn::Result<Param> {
    if let Type::Reference(reference) = strip(ty)
        && last_segment(&reference.elem).is_some_and(|s| s.ident == "Context")
    {
        if let Some(mutability) = &reference.mutability {
            return Err(syn::Error::new_spanned(
                mutability,
                "take the context as `&Context`",
            ));
        }
        return Ok(Param::Context);
    }
    let ident = match pat {
        Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => &pat.ident,
        _ => {
            return Err(syn::Error::new_spanned(
                pat,
                "an op's parameter is a plain name (`piece: Vec<i64>`): it names the input, or \
                 is `config`; destructure it in the body",
            ));
        }
    };
    match strip(ty) {
        Type::Reference(_) => {
            return Err(syn::Error::new_spanned(
                ty,
                "inputs and config are decoded into owned values: take `T`, not `&T` (only the \
                 context is taken by reference, as `&Context`)",
            ));
        }
        Type::ImplTrait(_) | Type::Infer(_) => {
            return Err(syn::Error::new_spanned(
                ty,
                "an op's input needs a concrete type, to decode it and declare its schema",
            ));
        }
        _ => {}
    }
    let name = ident.to_string();
    let name = name.strip_prefix("r#").unwrap_or(&name).to_string();
    if name == "config" {
        return Ok(Param::Config(ty.clone()));
    }
    check_name(&name, "input", ident.span())?;
    Ok(Param::Input {
        name,
        description: doc_text(attrs),
        ty: ty.clone(),
    })
}

/// The return type, classified.
pub(crate) fn classify_return(output: &ReturnType) -> Return {
    let ty = match output {
        ReturnType::Default => {
            return Return {
                result: None,
                value: Value::Unit,
            };
        }
        ReturnType::Type(_, ty) => ty,
    };
    let (result, value_ty) = match result_types(ty) {
        Some((ok, err)) => (Some(err.map_or_else(|| ty.span(), Spanned::span)), ok),
        None => (None, Some(&**ty)),
    };
    let value = match value_ty.map(strip) {
        None => Value::Unit,
        Some(Type::Tuple(tuple)) if tuple.elems.is_empty() => Value::Unit,
        Some(ty) if last_segment(ty).is_some_and(|s| s.ident == "Outputs") => Value::Outputs,
        Some(ty) => Value::Other(Box::new(ty.clone())),
    };
    Return { result, value }
}

/// For a `Result<T, E>` (any path whose last segment is `Result`), `Some((Some(T), Some(E)))`;
/// the types it lacks (`io::Result<T>`, a bare `Result`) are `None`; for any other type, `None`.
fn result_types(ty: &Type) -> Option<(Option<&Type>, Option<&Type>)> {
    let segment = last_segment(ty)?;
    if segment.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &segment.arguments else {
        return Some((None, None));
    };
    let mut types = args.args.iter().filter_map(|arg| match arg {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    });
    Some((types.next(), types.next()))
}

/// Errors point at the return type, or at the function's name when it has none.
fn check_return(
    ret: &Return,
    outputs: &Outputs,
    output: &ReturnType,
    ident: &Ident,
) -> syn::Result<()> {
    let at = match output {
        ReturnType::Default => ident.to_token_stream(),
        ReturnType::Type(_, ty) => ty.to_token_stream(),
    };
    match (outputs, &ret.value) {
        (Outputs::Single(_), Value::Outputs) => Err(syn::Error::new_spanned(
            &at,
            "an op returning `Outputs` declares them: #[op(out = \"...\", dynamic_out = \"...\")]",
        )),
        (Outputs::Single(Out { dynamic: false, .. }), Value::Other(ty))
            if mentions_dynamic_output(ty) =>
        {
            Err(syn::Error::new_spanned(
                &at,
                "an op returning `DynamicOutput`s is dynamic: #[op(dynamic)]",
            ))
        }
        (
            Outputs::Single(Out {
                dynamic: false,
                required: false,
            }),
            value,
        ) if !matches!(value, Value::Other(ty) if option_inner(ty).is_some()) => {
            Err(syn::Error::new_spanned(
                &at,
                "an `optional` op returns `Option<T>` (or a `Result` of one): `None` leaves \
                 `result` out",
            ))
        }
        (Outputs::Declared(_), Value::Other(_)) => Err(syn::Error::new_spanned(
            &at,
            "an op that declares `out`/`dynamic_out` returns `Outputs` (or `()` when all of \
             them are dynamic and yielded)",
        )),
        (Outputs::Declared(outs), Value::Unit) if outs.iter().any(|(_, out)| !out.dynamic) => {
            Err(syn::Error::new_spanned(
                &at,
                "an op with a non-dynamic `out` returns `Outputs` holding its value",
            ))
        }
        _ => Ok(()),
    }
}

/// The `T` of an `Option<T>` (any path whose last segment is `Option`).
pub(crate) fn option_inner(ty: &Type) -> Option<&Type> {
    let segment = last_segment(ty)?;
    if segment.ident != "Option" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    }
}

fn mentions_dynamic_output(ty: &Type) -> bool {
    quote::quote!(#ty)
        .to_string()
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|word| word == "DynamicOutput")
}

/// `ty` without parentheses and invisible groups.
pub(crate) fn strip(mut ty: &Type) -> &Type {
    loop {
        match ty {
            Type::Paren(inner) => ty = &inner.elem,
            Type::Group(inner) => ty = &inner.elem,
            _ => return ty,
        }
    }
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match strip(ty) {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        _ => None,
    }
}

/// The text of the doc comments among `attrs`: each line trimmed, the lines of a paragraph
/// joined by spaces, paragraphs by a blank line.
pub(crate) fn doc_text(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs {
        let Meta::NameValue(meta) = &attr.meta else {
            continue;
        };
        if !meta.path.is_ident("doc") {
            continue;
        }
        if let Expr::Lit(expr) = &meta.value
            && let Lit::Str(text) = &expr.lit
        {
            // `split`, not `lines`: an empty `///` line is a paragraph break.
            lines.extend(text.value().split('\n').map(|line| line.trim().to_string()));
        }
    }
    let mut paragraphs: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in lines {
        if line.is_empty() {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
        } else {
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(&line);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    paragraphs.join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn args(tokens: TokenStream) -> Args {
        parse_args(tokens).unwrap_or_else(|err| panic!("{err}"))
    }

    fn args_error(tokens: TokenStream) -> String {
        match parse_args(tokens) {
            Ok(_) => panic!("accepted"),
            Err(err) => err.to_string(),
        }
    }

    fn spec(attr: TokenStream, item: TokenStream) -> syn::Result<OpSpec> {
        let mut item: ItemFn = syn::parse2(item).unwrap();
        analyze(parse_args(attr)?, &mut item)
    }

    fn spec_error(attr: TokenStream, item: TokenStream) -> String {
        match spec(attr, item) {
            Ok(_) => panic!("accepted"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn arguments_are_read() {
        let parsed = args(quote!());
        assert!(parsed.dynamic.is_none() && parsed.outs.is_empty() && !parsed.no_schemas);
        let parsed = args(quote!(
            dynamic,
            no_schemas,
            name = "other",
            description = "text"
        ));
        assert!(parsed.dynamic.is_some() && parsed.no_schemas);
        assert_eq!(parsed.name.unwrap().value(), "other");
        assert_eq!(parsed.description.unwrap().value(), "text");
        let parsed = args(quote!(
            out = "sum",
            dynamic_out = "pieces",
            optional_out = "count",
            optional_dynamic_out = "extra"
        ));
        let outs: Vec<_> = parsed
            .outs
            .iter()
            .map(|(n, out)| (n.value(), out.dynamic, out.required))
            .collect();
        assert_eq!(
            outs,
            [
                ("sum".to_string(), false, true),
                ("pieces".to_string(), true, true),
                ("count".to_string(), false, false),
                ("extra".to_string(), true, false)
            ]
        );
        let parsed = args(quote!(dynamic, optional));
        assert!(parsed.dynamic.is_some() && parsed.optional.is_some());
    }

    #[test]
    fn an_optional_result_is_an_option() {
        assert!(
            spec(
                quote!(optional),
                quote!(
                    fn f(n: i64) -> Option<i64> {
                        None
                    }
                )
            )
            .is_ok()
        );
        assert!(
            spec(
                quote!(optional),
                quote!(
                    fn f(n: i64) -> Result<Option<i64>, String> {
                        Ok(None)
                    }
                )
            )
            .is_ok()
        );
        assert!(
            spec_error(
                quote!(optional),
                quote!(
                    fn f(n: i64) -> i64 {
                        n
                    }
                )
            )
            .starts_with("an `optional` op returns `Option<T>`")
        );
        assert!(args_error(quote!(optional, out = "a")).starts_with("`optional` makes"));
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(args_error(quote!(dynamc)).starts_with("unknown argument `dynamc` of #[op]"));
        assert_eq!(
            args_error(quote!(dynamic = true)),
            "`dynamic` takes no value: write `#[op(dynamic)]`"
        );
        assert_eq!(
            args_error(quote!(out = "a", out = "a")),
            "output `a` is declared twice"
        );
        assert_eq!(
            args_error(quote!(out = "a-b")),
            "invalid output name `a-b`: it contains '-'; only ASCII letters, digits and `_` are \
             allowed"
        );
        assert!(args_error(quote!(dynamic, out = "a")).starts_with("`dynamic` declares"));
        assert_eq!(
            args_error(quote!(name = "")),
            "invalid op name ``: it is empty"
        );
        assert!(args_error(quote!(out = 3)).contains("expected string literal"));
    }

    #[test]
    fn parameters_are_inputs_but_for_the_context_and_config() {
        let spec = spec(
            quote!(),
            quote! {
                /// Adds.
                ///
                /// Second paragraph,
                ///   on two lines.
                fn add(ctx: &shoal_sdk::Context, a: i64, config: Config, r#b: Vec<i64>) -> i64 {
                    0
                }
            },
        )
        .unwrap();
        assert_eq!(spec.name, "add");
        assert_eq!(spec.description, "Adds.\n\nSecond paragraph, on two lines.");
        let kinds: Vec<String> = spec
            .params
            .iter()
            .map(|p| match p {
                Param::Context => "ctx".to_string(),
                Param::Config(_) => "config".to_string(),
                Param::Input { name, .. } => format!("input {name}"),
            })
            .collect();
        assert_eq!(kinds, ["ctx", "input a", "config", "input b"]);
        assert!(matches!(spec.ret.value, Value::Other(_)) && spec.ret.result.is_none());
    }

    #[test]
    fn return_types_are_classified() {
        let classify = |ty: TokenStream| classify_return(&syn::parse2(ty).unwrap());
        let unit = |r: Return| matches!(r.value, Value::Unit);
        assert!(unit(classify(quote!())));
        assert!(unit(classify(quote!(-> ()))));
        assert!(unit(classify(quote!(-> Result<(), OpError>))));
        assert!(unit(classify(quote!(-> std::io::Result<()>))));
        assert!(classify(quote!(-> Result<(), E>)).result.is_some());
        assert!(matches!(
            classify(quote!(-> Result<shoal_sdk::Outputs, String>)).value,
            Value::Outputs
        ));
        assert!(matches!(
            classify(quote!(-> Vec<i64>)).value,
            Value::Other(_)
        ));
        assert!(classify(quote!(-> Vec<i64>)).result.is_none());
    }

    #[test]
    fn misuse_is_an_error_naming_the_problem() {
        let cases = [
            (
                quote!(),
                quote!(
                    fn f(&self) {}
                ),
                "cannot take `self`",
            ),
            (
                quote!(),
                quote!(
                    fn f<T>(x: T) {}
                ),
                "cannot be generic",
            ),
            (
                quote!(),
                quote!(
                    fn f(x: impl Sized) {}
                ),
                "needs a concrete type",
            ),
            (
                quote!(),
                quote!(
                    async fn f() {}
                ),
                "cannot be async",
            ),
            (
                quote!(),
                quote!(
                    fn f(x: &str) {}
                ),
                "take `T`, not `&T`",
            ),
            (
                quote!(),
                quote!(
                    fn f(ctx: &mut Context) {}
                ),
                "as `&Context`",
            ),
            (
                quote!(),
                quote!(
                    fn f(a: &Context, b: &Context) {}
                ),
                "context once",
            ),
            (
                quote!(),
                quote!(
                    fn f((a, b): (i64, i64)) {}
                ),
                "plain name",
            ),
            (
                quote!(),
                quote!(
                    fn f(_: i64) {}
                ),
                "plain name",
            ),
            (
                quote!(),
                quote!(
                    fn f() -> Outputs {}
                ),
                "declares them",
            ),
            (
                quote!(),
                quote!(
                    fn f() -> Vec<DynamicOutput> {}
                ),
                "#[op(dynamic)]",
            ),
            (
                quote!(out = "a"),
                quote!(
                    fn f() -> i64 {}
                ),
                "returns `Outputs`",
            ),
            (
                quote!(out = "a"),
                quote!(
                    fn f() {}
                ),
                "non-dynamic `out`",
            ),
            (
                quote!(),
                quote!(
                    fn f(é: i64) {}
                ),
                "invalid input name `é`",
            ),
        ];
        for (attr, item, message) in cases {
            let shown = item.to_string();
            let err = spec_error(attr, item);
            assert!(err.contains(message), "{shown}: {err:?} lacks {message:?}");
        }
    }

    /// The message of the error on `attr` and `item`, and the source text its span covers.
    fn error_at(attr: &str, item: &str) -> (String, String) {
        let attr: TokenStream = attr.parse().unwrap();
        let item: TokenStream = item.parse().unwrap();
        let err = match spec(attr, item) {
            Ok(_) => panic!("accepted"),
            Err(err) => err,
        };
        let text = err
            .span()
            .source_text()
            .expect("span-locations gives spans their text");
        (err.to_string(), text)
    }

    #[test]
    fn errors_point_at_the_offending_tokens() {
        let cases = [
            ("dynamic, bogus", "fn f() {}", "bogus"),
            ("out = \"a b\"", "fn f() -> Outputs {}", "\"a b\""),
            ("", "fn f(&self) {}", "&self"),
            ("", "fn f<T: Clone>(x: T) {}", "<T: Clone>"),
            ("", "fn f(a: i64, b: &str) {}", "&str"),
            ("", "fn f(a: i64, (b, c): (i64, i64)) {}", "(b, c)"),
            ("", "fn f(ctx: &mut Context) {}", "mut"),
            ("", "async fn f() {}", "async"),
            (
                "",
                "fn f() -> Result<Outputs, String> { todo!() }",
                "Result<Outputs, String>",
            ),
            ("out = \"a\"", "fn f() {}", "f"),
            ("", "fn f(a: &Context, b: &Context) {}", "&Context"),
        ];
        for (attr, item, at) in cases {
            let (message, text) = error_at(attr, item);
            assert_eq!(text, at, "{item}: {message}");
        }
    }

    #[test]
    fn accepted_shapes() {
        let ok = [
            (
                quote!(),
                quote!(
                    fn f(piece: Vec<i64>) -> Vec<i64> {
                        piece
                    }
                ),
            ),
            (
                quote!(dynamic),
                quote!(
                    fn f(ctx: &Context) -> Result<(), OpError> {}
                ),
            ),
            (
                quote!(dynamic),
                quote!(
                    fn f() -> Vec<DynamicOutput> {}
                ),
            ),
            (
                quote!(out = "a", dynamic_out = "b"),
                quote!(
                    fn f() -> Outputs {}
                ),
            ),
            (
                quote!(dynamic_out = "a", dynamic_out = "b"),
                quote!(
                    fn f(ctx: &Context) {}
                ),
            ),
            (
                quote!(),
                quote!(
                    fn f(_ctx: &'static Context) {}
                ),
            ),
            (
                quote!(),
                quote!(
                    pub(crate) fn f(mut x: String) -> String {
                        x
                    }
                ),
            ),
        ];
        for (attr, item) in ok {
            let shown = item.to_string();
            if let Err(err) = spec(attr, item) {
                panic!("{shown}: {err}");
            }
        }
    }
}
