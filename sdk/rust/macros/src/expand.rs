//! The code `#[op]` generates: the function unchanged (less its parameters' doc comments), a
//! hidden function building the [`Op`](../shoal_sdk/struct.Op.html), and a module of the
//! function's name whose `op()` returns it.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ItemFn;
use syn::spanned::Spanned;

use crate::parse::{OpSpec, Out, Outputs, Param, Value, analyze, option_inner, parse_args};

/// Expands `#[op(attr)] item`. On an error the function is kept as it was, beside the error,
/// so that its own uses do not fail too.
pub(crate) fn op(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut function: ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(err) => {
            let err = syn::Error::new(err.span(), format!("#[op] goes on a function: {err}"))
                .into_compile_error();
            return quote!(#err #item);
        }
    };
    match parse_args(attr).and_then(|args| analyze(args, &mut function)) {
        Ok(spec) => expand(&spec, &function),
        Err(err) => {
            let err = err.into_compile_error();
            quote!(#err #item)
        }
    }
}

/// The expansion of a valid op.
pub(crate) fn expand(spec: &OpSpec, function: &ItemFn) -> TokenStream {
    let fn_ident = &spec.fn_ident;
    let vis = &spec.vis;
    let builder = format_ident!("__shoal_op_{}", fn_ident);
    let name = &spec.name;
    let description = &spec.description;
    let module_doc =
        format!("The Shoal op `{name}`, made by `#[op]` from the function of the same name.");

    let mut decode = Vec::new();
    let mut call_args = Vec::new();
    let mut declare = Vec::new();
    for (index, param) in spec.params.iter().enumerate() {
        match param {
            Param::Context => call_args.push(quote!(__shoal_ctx)),
            Param::Config(ty) => {
                let arg = format_ident!("__shoal_arg_{}", index);
                decode.push(quote_spanned! {ty.span()=>
                    let #arg: #ty = ::shoal_sdk::Context::op_config(__shoal_ctx)?;
                });
                call_args.push(quote!(#arg));
                let schema = schema(ty, spec.no_schemas);
                declare.push(quote!(.maybe_config_schema(#schema)));
            }
            Param::Input {
                name,
                description,
                ty,
            } => {
                let arg = format_ident!("__shoal_arg_{}", index);
                decode.push(quote_spanned! {ty.span()=>
                    let #arg: #ty = ::shoal_sdk::Inputs::get(__shoal_inputs, #name)?;
                });
                call_args.push(quote!(#arg));
                let schema = schema(ty, spec.no_schemas);
                declare.push(quote! {
                    .input(::shoal_sdk::Input::new(#name).describe(#description).maybe_schema(#schema))
                });
            }
        }
    }

    let bare_call = quote!(#fn_ident(#(#call_args),*));
    // The conversion of `E` carries `E`'s span, so that a missing `Into<OpError>` is reported
    // there, once (a `map_err` would report it at the call too).
    let call = match spec.ret.result {
        None => bare_call.clone(),
        Some(span) => {
            let into = quote_spanned!(span=> ::shoal_sdk::__private::into_op_error(__shoal_err));
            quote! {
                match #bare_call {
                    ::core::result::Result::Ok(__shoal_ok) => __shoal_ok,
                    ::core::result::Result::Err(__shoal_err) => {
                        return ::core::result::Result::Err(#into);
                    }
                }
            }
        }
    };
    let value_span = match &spec.ret.value {
        Value::Other(ty) => ty.span(),
        _ => Span::call_site(),
    };
    let finish = match (&spec.outputs, &spec.ret.value) {
        (_, Value::Outputs) => match spec.ret.result {
            None => quote!(::core::result::Result::Ok(#bare_call)),
            Some(span) => {
                let into =
                    quote_spanned!(span=> ::shoal_sdk::__private::into_op_error(__shoal_err));
                quote! {
                    match #bare_call {
                        ::core::result::Result::Ok(__shoal_ok) => ::core::result::Result::Ok(__shoal_ok),
                        ::core::result::Result::Err(__shoal_err) => ::core::result::Result::Err(#into),
                    }
                }
            }
        },
        (Outputs::Single(Out { dynamic: false, .. }), Value::Unit) => quote! {
            #call;
            ::core::result::Result::Ok(::shoal_sdk::Outputs::new().value(::shoal_sdk::DEFAULT_OUTPUT, &()))
        },
        (
            Outputs::Single(Out {
                dynamic: false,
                required: false,
            }),
            Value::Other(_),
        ) => quote_spanned! {value_span=>
            let __shoal_value = #call;
            ::core::result::Result::Ok(::shoal_sdk::Outputs::new().maybe_value(::shoal_sdk::DEFAULT_OUTPUT, __shoal_value))
        },
        (Outputs::Single(Out { dynamic: false, .. }), Value::Other(_)) => {
            quote_spanned! {value_span=>
                let __shoal_value = #call;
                ::core::result::Result::Ok(::shoal_sdk::Outputs::new().value(::shoal_sdk::DEFAULT_OUTPUT, &__shoal_value))
            }
        }
        (_, Value::Unit) => quote! {
            #call;
            ::core::result::Result::Ok(::shoal_sdk::Outputs::new())
        },
        (_, Value::Other(_)) => quote_spanned! {value_span=>
            ::core::result::Result::Ok(::shoal_sdk::__private::dynamic_outputs(#call))
        },
    };

    match &spec.outputs {
        Outputs::Single(out) => {
            // An optional output's schema is of the value it holds when present.
            let value_ty = match &spec.ret.value {
                Value::Other(ty) if !out.required => option_inner(ty),
                Value::Other(ty) => Some(&**ty),
                _ => None,
            };
            let schema = match (&spec.ret.value, value_ty, out.dynamic) {
                (Value::Unit, _, false) => schema(&syn::parse_quote!(()), spec.no_schemas),
                (_, Some(ty), false) if !contains_impl(ty) => schema(ty, spec.no_schemas),
                _ => quote!(::core::option::Option::None),
            };
            let output =
                quote!(::shoal_sdk::Output::new(::shoal_sdk::DEFAULT_OUTPUT).maybe_schema(#schema));
            declare.push(declare_output(output, *out));
        }
        Outputs::Declared(outs) => {
            for (name, out) in outs {
                declare.push(declare_output(quote!(#name), *out));
            }
        }
    }

    quote! {
        #function

        #[doc = #module_doc]
        #vis mod #fn_ident {
            /// The op, to list in `shoal_sdk::export!` or to run in a test.
            pub fn op() -> ::shoal_sdk::Op {
                super::#builder()
            }
        }

        #[doc(hidden)]
        fn #builder() -> ::shoal_sdk::Op {
            fn __shoal_run(
                __shoal_ctx: &::shoal_sdk::Context,
                __shoal_inputs: &::shoal_sdk::Inputs,
            ) -> ::core::result::Result<::shoal_sdk::Outputs, ::shoal_sdk::OpError> {
                let _ = (__shoal_ctx, __shoal_inputs);
                #(#decode)*
                #finish
            }
            ::shoal_sdk::Op::with_outputs(#name, __shoal_run)
                .describe(#description)
                #(#declare)*
        }
    }
}

/// The builder call declaring `output` (an expression of `Into<Output>`) as `out` says.
fn declare_output(output: TokenStream, out: Out) -> TokenStream {
    let output = match out.required {
        true => output,
        false => quote!(::shoal_sdk::Output::from(#output).optional()),
    };
    match out.dynamic {
        true => quote!(.dynamic_output(#output)),
        false => quote!(.output(#output)),
    }
}

/// The expression of `ty`'s JSON Schema: `Some(text)` when it implements `JsonSchema`, `None`
/// otherwise (autoref specialization: the type is concrete here).
fn schema(ty: &syn::Type, no_schemas: bool) -> TokenStream {
    if no_schemas {
        return quote!(::core::option::Option::None);
    }
    quote! {{
        #[allow(unused_imports)]
        use ::shoal_sdk::__private::{NoJsonSchema as _, ViaJsonSchema as _};
        (&::shoal_sdk::__private::SchemaProbe::<#ty>::new()).json_schema()
    }}
}

/// Whether `ty` holds an `impl Trait`, which cannot be named in an expression.
fn contains_impl(ty: &syn::Type) -> bool {
    quote!(#ty)
        .to_string()
        .split_whitespace()
        .any(|word| word == "impl")
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use quote::quote;
    use syn::Item;

    /// The items of an expansion: kind and name.
    fn items(tokens: TokenStream) -> Vec<(String, String)> {
        let file: syn::File = syn::parse2(tokens).expect("the expansion parses as items");
        file.items
            .iter()
            .map(|item| match item {
                Item::Fn(f) => ("fn".to_string(), f.sig.ident.to_string()),
                Item::Mod(m) => ("mod".to_string(), m.ident.to_string()),
                Item::Macro(m) => ("macro".to_string(), quote!(#m).to_string()),
                other => ("other".to_string(), quote!(#other).to_string()),
            })
            .collect()
    }

    #[test]
    fn the_function_stays_beside_its_module_and_builder() {
        let out = super::op(
            quote!(),
            quote! {
                /// Doubles.
                pub fn double(ctx: &Context, #[doc = " A piece."] piece: Vec<i64>) -> Vec<i64> {
                    piece
                }
            },
        );
        let found = items(out.clone());
        let expected = [
            ("fn", "double"),
            ("mod", "double"),
            ("fn", "__shoal_op_double"),
        ];
        let found: Vec<(&str, &str)> = found
            .iter()
            .map(|(k, n)| (k.as_str(), n.as_str()))
            .collect();
        assert_eq!(found, expected);
        let file: syn::File = syn::parse2(out).unwrap();
        let Item::Fn(function) = &file.items[0] else {
            unreachable!()
        };
        let syn::FnArg::Typed(piece) = &function.sig.inputs[1] else {
            unreachable!()
        };
        assert!(
            piece.attrs.is_empty(),
            "the parameter's doc comment is read and removed"
        );
        let Item::Mod(module) = &file.items[1] else {
            unreachable!()
        };
        assert!(
            matches!(module.vis, syn::Visibility::Public(_)),
            "the fn's visibility"
        );
        let all = &file.items;
        let builder = quote!(#(#all)*).to_string();
        assert!(builder.contains("\"A piece.\""), "{builder}");
        assert!(builder.contains("\"Doubles.\""), "{builder}");
    }

    #[test]
    fn an_error_keeps_the_function_as_it_was() {
        let out = super::op(
            quote!(bogus),
            quote!(
                fn f(x: i64) -> i64 {
                    x
                }
            ),
        );
        let found = items(out);
        assert_eq!(found.len(), 2);
        assert!(
            found[0]
                .1
                .contains("compile_error ! { \"unknown argument `bogus`"),
            "{found:?}"
        );
        assert_eq!(found[1], ("fn".to_string(), "f".to_string()));
    }
}
