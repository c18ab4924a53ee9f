//! Write Shoal ops in Rust.
//!
//! An op is a plain function over serde types; this crate hides the WIT bindings, the CBOR
//! encoding and the `describe` export:
//!
//! ```ignore
//! use shoal_sdk::{Context, DynamicOutput, Inputs, Op, OpError};
//!
//! fn load_pieces(ctx: &Context, _: &Inputs) -> Result<(), OpError> {
//!     let data: Vec<i64> = (0..100).collect();
//!     for (idx, piece) in data.chunks(2).enumerate() {
//!         ctx.yield_output(DynamicOutput::new(piece, idx.to_string()))?;
//!     }
//!     Ok(())
//! }
//!
//! fn compute_piece(_: &Context, inputs: &Inputs) -> Result<Vec<i64>, OpError> {
//!     let piece: Vec<i64> = inputs.get("piece")?;
//!     Ok(piece.iter().map(|x| x * 2).collect())
//! }
//!
//! fn ops() -> Vec<Op> {
//!     vec![
//!         Op::dynamic("load_pieces", load_pieces),
//!         Op::new("compute_piece", compute_piece).input("piece"),
//!     ]
//! }
//!
//! shoal_sdk::export!(ops);
//! ```

mod decode;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The raw bindings generated from `wit/op.wit`; ops rarely need them.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "op-component",
        pub_export_macro: true,
        export_macro_name: "export_component",
        default_bindings_module: "shoal_sdk::bindings",
    });
}

pub use bindings::shoal::op::types::OpError;
use bindings::shoal::op::types::{self as wit, NamedValue};
/// Any CBOR value, for ops that pass values through without knowing their type.
pub use ciborium::Value;

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
}

/// Where the running step sits in the run (Dagster's `OpExecutionContext`).
pub struct Context(wit::Context);

impl Context {
    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.0.run_id
    }

    /// The step key, e.g. `compute_piece[3]`.
    pub fn step_key(&self) -> &str {
        &self.0.step_key
    }

    /// The mapping key of this clone (the innermost one when nested); `None` when not mapped.
    pub fn mapping_key(&self) -> Option<&str> {
        self.0.mapping_keys.last().map(String::as_str)
    }

    /// All mapping keys of this clone, outermost first.
    pub fn mapping_keys(&self) -> &[String] {
        &self.0.mapping_keys
    }

    /// 1 on the first attempt.
    pub fn attempt(&self) -> u32 {
        self.0.attempt
    }

    /// The op's name in the job (its step key without mapping keys), which its config and
    /// inputs are wired under.
    fn op(&self) -> &str {
        let key = &self.0.step_key;
        key.split_once('[').map_or(key.as_str(), |(op, _)| op)
    }

    /// The op's config table decoded as `T`; an op without config sees an empty table. The
    /// error names the op and the field.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, OpError> {
        decode::decode(&self.0.config).map_err(|err| {
            OpError::bad_input(format!(
                "op `{}`: {}",
                self.op(),
                err.describe("config", "field")
            ))
        })
    }

    /// Hands one dynamic output to the host now (Dagster's `yield DynamicOutput(...)`); steps
    /// mapped over it may start before this op returns. An error means the host rejected it
    /// (bad or duplicate key, ...): return it, the step fails either way.
    pub fn yield_output(&self, output: DynamicOutput) -> Result<(), OpError> {
        bindings::shoal::op::emit::yield_output(&output.0).map_err(OpError::Failed)
    }
}

/// The step's inputs, by name.
pub struct Inputs {
    /// The op's name in the job, for errors.
    op: String,
    values: Vec<NamedValue>,
}

impl Inputs {
    /// Decodes input `name` as a `T`. A collected input is a list of the clones' values. The
    /// error names the op, the input and where in it decoding failed.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T, OpError> {
        let op = &self.op;
        let input = self
            .values
            .iter()
            .find(|input| input.name == name)
            .ok_or_else(|| OpError::bad_input(format!("op `{op}`: missing input `{name}`")))?;
        decode::decode(&input.value).map_err(|err| {
            OpError::bad_input(format!(
                "op `{op}`: {}",
                err.describe(&format!("input `{name}`"), "at")
            ))
        })
    }
}

/// One element of a dynamic output: a value and its unique mapping key.
pub struct DynamicOutput(wit::DynamicValue);

impl DynamicOutput {
    /// A value for the default output `result`, keyed `mapping_key` (`^[A-Za-z0-9_]+$`).
    pub fn new<T: Serialize + ?Sized>(value: &T, mapping_key: impl Into<String>) -> Self {
        DynamicOutput(wit::DynamicValue {
            output: DEFAULT_OUTPUT.to_string(),
            mapping_key: mapping_key.into(),
            value: to_cbor(value),
        })
    }

    /// Puts the value on the dynamic output `name` instead of `result`.
    pub fn output_name(mut self, name: impl Into<String>) -> Self {
        self.0.output = name.into();
        self
    }
}

/// What an op with several outputs returns.
pub struct Outputs(wit::Outputs);

impl Default for Outputs {
    fn default() -> Self {
        Outputs(wit::Outputs {
            values: Vec::new(),
            dynamic: Vec::new(),
        })
    }
}

impl Outputs {
    /// No outputs yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the non-dynamic output `name`.
    pub fn value<T: Serialize + ?Sized>(mut self, name: &str, value: &T) -> Self {
        self.0.values.push(NamedValue {
            name: name.to_string(),
            value: to_cbor(value),
        });
        self
    }

    /// Appends one element to a dynamic output (the returned-list form of dynamic outputs).
    pub fn dynamic(mut self, output: DynamicOutput) -> Self {
        self.0.dynamic.push(output.0);
        self
    }
}

impl From<Vec<DynamicOutput>> for Outputs {
    fn from(outputs: Vec<DynamicOutput>) -> Self {
        outputs.into_iter().fold(Outputs::new(), Outputs::dynamic)
    }
}

type RunFn = Box<dyn Fn(&Context, &Inputs) -> Result<Outputs, OpError>>;

/// One op: its description and the function that runs it.
pub struct Op {
    info: wit::OpInfo,
    run: RunFn,
}

impl Op {
    fn with_run(name: &str, run: RunFn) -> Self {
        Op {
            info: wit::OpInfo {
                name: name.to_string(),
                description: String::new(),
                inputs: Vec::new(),
                outputs: Vec::new(),
            },
            run,
        }
    }

    /// An op with one output, `result`, holding what `f` returns.
    pub fn new<T: Serialize + 'static>(
        name: &str,
        f: fn(&Context, &Inputs) -> Result<T, OpError>,
    ) -> Self {
        let run = move |ctx: &Context, inputs: &Inputs| {
            f(ctx, inputs).map(|value| Outputs::new().value(DEFAULT_OUTPUT, &value))
        };
        Op::with_run(name, Box::new(run)).output(DEFAULT_OUTPUT)
    }

    /// An op with one dynamic output, `result`, that `f` fills with
    /// [`Context::yield_output`].
    pub fn dynamic(name: &str, f: fn(&Context, &Inputs) -> Result<(), OpError>) -> Self {
        let run = move |ctx: &Context, inputs: &Inputs| f(ctx, inputs).map(|()| Outputs::new());
        Op::with_run(name, Box::new(run)).dynamic_output(DEFAULT_OUTPUT)
    }

    /// An op whose outputs are declared with [`Op::output`] and [`Op::dynamic_output`] and
    /// returned by `f` as [`Outputs`] (dynamic ones may also be yielded while it runs).
    pub fn with_outputs(name: &str, f: fn(&Context, &Inputs) -> Result<Outputs, OpError>) -> Self {
        Op::with_run(name, Box::new(f))
    }

    /// Sets the description `host inspect` shows.
    pub fn describe(mut self, description: &str) -> Self {
        self.info.description = description.to_string();
        self
    }

    /// Declares an input the job must wire.
    pub fn input(mut self, name: &str) -> Self {
        self.info.inputs.push(name.to_string());
        self
    }

    /// Declares a non-dynamic output.
    pub fn output(self, name: &str) -> Self {
        self.declare_output(name, false)
    }

    /// Declares a dynamic output.
    pub fn dynamic_output(self, name: &str) -> Self {
        self.declare_output(name, true)
    }

    fn declare_output(mut self, name: &str, dynamic: bool) -> Self {
        self.info.outputs.push(wit::OutputInfo {
            name: name.to_string(),
            dynamic,
            description: String::new(),
        });
        self
    }
}

/// Implements `describe` for [`export!`].
#[doc(hidden)]
pub fn __describe(ops: Vec<Op>) -> Vec<wit::OpInfo> {
    ops.into_iter().map(|op| op.info).collect()
}

/// Implements `run` for [`export!`].
#[doc(hidden)]
pub fn __run(
    ops: Vec<Op>,
    name: String,
    ctx: wit::Context,
    inputs: Vec<NamedValue>,
) -> Result<wit::Outputs, OpError> {
    let op = ops
        .iter()
        .find(|op| op.info.name == name)
        .ok_or_else(|| OpError::failed(format!("this component has no op `{name}`")))?;
    let ctx = Context(ctx);
    let inputs = Inputs {
        op: ctx.op().to_string(),
        values: inputs,
    };
    (op.run)(&ctx, &inputs).map(|outputs| outputs.0)
}

/// Exports the ops that `$ops()` returns as this component's `shoal:op/op` interface.
#[macro_export]
macro_rules! export {
    ($ops:path) => {
        struct __ShoalComponent;

        impl $crate::bindings::exports::shoal::op::op::Guest for __ShoalComponent {
            fn describe() -> ::std::vec::Vec<$crate::bindings::shoal::op::types::OpInfo> {
                $crate::__describe($ops())
            }

            fn run(
                name: ::std::string::String,
                ctx: $crate::bindings::shoal::op::types::Context,
                inputs: ::std::vec::Vec<$crate::bindings::shoal::op::types::NamedValue>,
            ) -> ::std::result::Result<
                $crate::bindings::shoal::op::types::Outputs,
                $crate::bindings::shoal::op::types::OpError,
            > {
                $crate::__run($ops(), name, ctx, inputs)
            }
        }

        $crate::bindings::export_component!(__ShoalComponent with_types_in $crate::bindings);
    };
}

/// Writes a log message at `level` for the running step.
pub fn log(level: bindings::shoal::op::log::Level, message: &str) {
    bindings::shoal::op::log::log(level, message);
}

/// Logs at info level, `format!`-style (Dagster's `context.log.info`).
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => {
        $crate::log($crate::bindings::shoal::op::log::Level::Info, &format!($($arg)*))
    };
}

/// Logs at warn level, `format!`-style.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => {
        $crate::log($crate::bindings::shoal::op::log::Level::Warn, &format!($($arg)*))
    };
}
