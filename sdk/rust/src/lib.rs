//! Write Shoal ops in Rust.
//!
//! An op is a plain function over serde types, marked [`#[op]`](macro@op); [`export!`] makes the
//! crate a component that holds them. The WIT bindings, the CBOR encoding, the inputs' and the
//! config's decoding (with errors naming the op, the input and where in the value it failed),
//! `describe` and the JSON Schemas of shoal:op 0.3.0 are generated:
//!
//! ```
//! use serde::Deserialize;
//! use shoal_sdk::{Context, DynamicOutput, OpError, op};
//!
//! #[derive(Deserialize, schemars::JsonSchema)]
//! struct LoadConfig {
//!     #[serde(default = "two")]
//!     chunk_size: usize,
//! }
//!
//! fn two() -> usize {
//!     2
//! }
//!
//! /// Yields `0..100` in chunks of `chunk_size`, keyed by chunk index.
//! #[op(dynamic)]
//! fn load_pieces(ctx: &Context, config: LoadConfig) -> Result<(), OpError> {
//!     let data: Vec<i64> = (0..100).collect();
//!     for (idx, piece) in data.chunks(config.chunk_size).enumerate() {
//!         ctx.yield_output(DynamicOutput::new(piece, idx.to_string()))?;
//!     }
//!     Ok(())
//! }
//!
//! /// Doubles every element of one piece.
//! #[op]
//! fn compute_piece(piece: Vec<i64>) -> Vec<i64> {
//!     piece.iter().map(|x| x * 2).collect()
//! }
//!
//! shoal_sdk::export!(load_pieces, compute_piece);
//! # fn main() {
//! #     let run = shoal_sdk::testing::build_op_context()
//! #         .input("piece", &vec![1, 2])
//! #         .run(compute_piece::op());
//! #     assert_eq!(run.output::<Vec<i64>>("result"), [2, 4]);
//! # }
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` as a `cdylib`. Test it natively
//! with plain `cargo test` through [`testing`] (Dagster's `build_op_context`).
//!
//! # What `#[op]` makes of a function
//!
//! - The op's **name** is the function's; its **description** is the doc comment (lines trimmed
//!   and joined by spaces, paragraphs by a blank line), or `#[op(description = "...")]`.
//! - Every **parameter is an input** of the same name, decoded from CBOR into its type (a
//!   collected input is a `Vec<T>`). Two are not: a parameter of type `&Context` receives the
//!   [`Context`], and a parameter named `config` receives the op's config table decoded into its
//!   type. Inputs are decoded in parameter order, and a value of the wrong shape fails the step
//!   with `bad_input`, e.g. ``op `add`: input `b`: invalid type: string, expected integer``.
//! - The **return value**:
//!   - any `T: Serialize` is the op's single output `result`;
//!   - `Result<T, E>` (any type whose last path segment is `Result`) fails the step with `E`,
//!     which must be `Into<OpError>` (`OpError` itself, `String`, `&str`, `std::io::Error`,
//!     `Box<dyn Error>`: all but `OpError` become [`OpError::Failed`]);
//!   - with `#[op(dynamic)]` the op has one dynamic output `result`: return `()` (or
//!     `Result<(), E>`) and yield through [`Context::yield_output`], or return any
//!     `IntoIterator<Item = DynamicOutput>` such as `Vec<DynamicOutput>` (or a `Result` of one);
//!   - with `#[op(out = "sum", dynamic_out = "pieces", ...)]` the op declares those outputs and
//!     returns [`Outputs`] (or `()` when they are all dynamic and yielded);
//!     `optional_out = "..."` and `optional_dynamic_out = "..."` declare outputs the op may
//!     leave out (Dagster's `is_required=False`): the steps that read one it left out are
//!     skipped;
//!   - with `#[op(optional)]` the single output `result` is optional: return `Option<T>`
//!     (`None` leaves it out); `#[op(dynamic, optional)]` makes the dynamic `result` optional.
//! - The [`Context`] also gives the step's **tags** ([`Context::get_tag`]), and records
//!   **metadata** on outputs ([`Context::add_output_metadata`]) and **user events**
//!   ([`Context::log_event`] with an [`AssetMaterialization`], [`AssetObservation`] or
//!   [`ExpectationResult`]).
//! - **JSON Schemas** (draft 2020-12): of the config from the `config` parameter's type, of each
//!   input from its type, and of `result` from the returned type, for every type that implements
//!   [`JsonSchema`]; a type that does not (such as [`Value`]) declares no schema.
//!   `#[op(no_schemas)]` declares none at all.
//! - The function stays an ordinary Rust function (tests call it directly), and a module of the
//!   same name holds `pub fn op() -> Op`, which [`export!`] lists.
//!
//! The [`Op`] builder remains for ops that the attribute cannot express.

extern crate self as shoal_sdk;

#[cfg(not(target_arch = "wasm32"))]
mod capture;
mod context;
mod decode;
mod events;
mod ops;
mod schema;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The raw bindings generated from the SDK's copy of `wit/op.wit` (`shoal:op@0.3.0`); ops
/// rarely need them.
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "op-component",
        pub_export_macro: true,
        export_macro_name: "export_component",
        default_bindings_module: "shoal_sdk::bindings",
        additional_derives: [PartialEq],
    });
}

pub use bindings::shoal::op::log::Level;
pub use bindings::shoal::op::types::OpError;
/// Any CBOR value, for ops that pass values through without knowing their type.
pub use ciborium::Value;
pub use context::{Context, Log};
pub use events::{
    AssetMaterialization, AssetObservation, ExpectationResult, MetadataValue, UserEvent,
};
pub use ops::{DynamicOutput, Input, Inputs, Op, Output, Outputs};
pub use schema::schema_of;
/// Derive it (with `schemars` as a dependency) for a config, input or output type to declare its
/// JSON Schema.
pub use schemars::{self, JsonSchema};
pub use shoal_sdk_macros::op;

/// The output name an op with a single output uses, as in Dagster.
pub const DEFAULT_OUTPUT: &str = "result";

/// Encodes `value` as CBOR.
pub fn to_cbor<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).expect("serializing into a Vec cannot fail for io");
    bytes
}

/// Decodes CBOR `bytes` as a `T`; `what` names the value in the error, which also says where in
/// the value decoding failed.
pub fn from_cbor<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, OpError> {
    decode::decode(bytes).map_err(|err| OpError::bad_input(err.describe(what, "at")))
}

impl OpError {
    /// The op failed; retrying will not help.
    pub fn failed(message: impl std::fmt::Display) -> Self {
        OpError::Failed(message.to_string())
    }

    /// A transient failure: ask the host to run the step again.
    pub fn retry(message: impl std::fmt::Display) -> Self {
        OpError::RetryRequested(message.to_string())
    }

    /// An input or the config did not have the expected shape.
    pub fn bad_input(message: impl std::fmt::Display) -> Self {
        OpError::BadInput(message.to_string())
    }

    /// The message, whatever the kind.
    pub fn message(&self) -> &str {
        match self {
            OpError::Failed(message)
            | OpError::RetryRequested(message)
            | OpError::BadInput(message) => message,
        }
    }
}

/// A message as an op's error: [`OpError::Failed`].
impl From<String> for OpError {
    fn from(message: String) -> Self {
        OpError::Failed(message)
    }
}

/// A message as an op's error: [`OpError::Failed`].
impl From<&str> for OpError {
    fn from(message: &str) -> Self {
        OpError::Failed(message.to_string())
    }
}

/// An I/O error (a file the op reads, ...) as an op's error: [`OpError::Failed`] with its text.
impl From<std::io::Error> for OpError {
    fn from(err: std::io::Error) -> Self {
        OpError::failed(err)
    }
}

/// Any error as an op's error: [`OpError::Failed`] with its text.
impl From<Box<dyn std::error::Error>> for OpError {
    fn from(err: Box<dyn std::error::Error>) -> Self {
        OpError::failed(err)
    }
}

/// Any error as an op's error: [`OpError::Failed`] with its text.
impl From<Box<dyn std::error::Error + Send + Sync>> for OpError {
    fn from(err: Box<dyn std::error::Error + Send + Sync>) -> Self {
        OpError::failed(err)
    }
}

/// Writes a log message at `level` for the running step. In a native test build the message is
/// captured by the newest [`testing`] context of the thread (printed to stderr if there is
/// none).
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    bindings::shoal::op::log::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    capture::log_current(level, message);
}

/// Exports ops as this component's `shoal:op/op` interface. Use it once per crate.
///
/// - `export!(load_pieces, compute_piece)`: the ops made by [`#[op]`](macro@op), by the names of
///   their functions (paths such as `ops::load_pieces` work too);
/// - `export!(fn ops)`: the ops that a function `fn ops() -> Vec<Op>` returns, for ops built
///   with [`Op`] (it may list `load_pieces::op()` beside them).
#[macro_export]
macro_rules! export {
    (fn $ops:path) => {
        $crate::__export_component!($ops);
    };
    ($($($op:ident)::+),+ $(,)?) => {
        fn __shoal_ops() -> ::std::vec::Vec<$crate::Op> {
            ::std::vec![$($($op)::+::op()),+]
        }
        $crate::__export_component!(__shoal_ops);
    };
}

/// Implements [`export!`]: the `Guest` implementation over the ops `$ops()` returns.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_component {
    ($ops:path) => {
        struct __ShoalComponent;

        impl $crate::bindings::exports::shoal::op::op::Guest for __ShoalComponent {
            fn describe() -> ::std::vec::Vec<$crate::bindings::shoal::op::types::OpInfo> {
                $crate::__private::describe($ops())
            }

            fn run(
                name: ::std::string::String,
                ctx: $crate::bindings::shoal::op::types::Context,
                inputs: ::std::vec::Vec<$crate::bindings::shoal::op::types::NamedValue>,
            ) -> ::std::result::Result<
                $crate::bindings::shoal::op::types::Outputs,
                $crate::bindings::shoal::op::types::OpError,
            > {
                $crate::__private::run($ops(), name, ctx, inputs)
            }
        }

        $crate::bindings::export_component!(__ShoalComponent with_types_in $crate::bindings);
    };
}

/// Logs at info level, `format!`-style (Dagster's `context.log.info`).
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => {
        $crate::log($crate::Level::Info, &::std::format!($($arg)*))
    };
}

/// Logs at warn level, `format!`-style.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => {
        $crate::log($crate::Level::Warn, &::std::format!($($arg)*))
    };
}

/// Logs at debug level, `format!`-style.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => {
        $crate::log($crate::Level::Debug, &::std::format!($($arg)*))
    };
}

/// Logs at error level, `format!`-style.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => {
        $crate::log($crate::Level::Error, &::std::format!($($arg)*))
    };
}

/// What the code that [`#[op]`](macro@op) and [`export!`] generate calls; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::ops::{describe, dynamic_outputs, into_op_error, run};
    pub use crate::schema::{NoJsonSchema, SchemaProbe, ViaJsonSchema};
}
