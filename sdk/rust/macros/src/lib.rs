//! The `#[op]` attribute of [`shoal-sdk`](https://crates.io/crates/shoal-sdk): a Rust function
//! becomes a Shoal op. Use it through `shoal_sdk::op`, whose documentation describes it; this
//! crate is an implementation detail of the SDK.

use proc_macro::TokenStream;

mod expand;
mod parse;

/// Makes a function an op; see the `shoal_sdk` crate documentation.
///
/// Arguments, all optional, comma-separated:
///
/// - `dynamic`: the op has one dynamic output, `result`;
/// - `optional`: the op may leave `result` out; it returns `Option<T>` (with `dynamic`: it may
///   yield nothing, and what maps it is skipped);
/// - `out = "name"`, `dynamic_out = "name"`, `optional_out = "name"`,
///   `optional_dynamic_out = "name"` (each repeatable): the op declares these outputs and
///   returns `Outputs` (or `()` when they are all dynamic);
/// - `name = "..."`: the op's name, instead of the function's;
/// - `description = "..."`: the op's description, instead of the doc comment;
/// - `no_schemas`: declare no JSON Schema for the config, inputs or outputs.
#[proc_macro_attribute]
pub fn op(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::op(attr.into(), item.into()).into()
}
