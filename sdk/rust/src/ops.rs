//! Ops: what they declare (`describe`), and running one (`run`). [`Op`] is also the builder
//! API for ops that `#[op]` cannot express.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::shoal::op::types::{self as wit, NamedValue};
use crate::{Context, DEFAULT_OUTPUT, JsonSchema, OpError, decode, schema_of, to_cbor};

/// The step's inputs, by name, for ops built with [`Op`].
pub struct Inputs {
    /// The op's name in the job, for errors.
    pub(crate) op: String,
    pub(crate) values: Vec<NamedValue>,
}

impl Inputs {
    /// Decodes input `name` as a `T`. A collected input is a list of the clones' values. The
    /// error names the op, the input and where in it decoding failed, e.g. ``op `add`: input
    /// `b`: invalid type: string, expected integer``.
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

/// One element of a dynamic output: a value and its unique mapping key (Dagster's
/// `DynamicOutput`).
pub struct DynamicOutput(pub(crate) wit::DynamicValue);

impl DynamicOutput {
    /// A value for the default output `result`, keyed `mapping_key` (`^[A-Za-z0-9_]+$`, at most
    /// 128 bytes, unique within the output).
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
pub struct Outputs(pub(crate) wit::Outputs);

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

    /// Sets the non-dynamic output `name` when `value` is `Some`; leaves it out (an optional
    /// output) when `None`.
    pub fn maybe_value<T: Serialize>(self, name: &str, value: Option<T>) -> Self {
        match value {
            Some(value) => self.value(name, &value),
            None => self,
        }
    }

    /// Appends one element to a dynamic output (the returned-list form of dynamic outputs).
    pub fn dynamic(mut self, output: DynamicOutput) -> Self {
        self.0.dynamic.push(output.0);
        self
    }
}

impl From<Vec<DynamicOutput>> for Outputs {
    fn from(outputs: Vec<DynamicOutput>) -> Self {
        dynamic_outputs(outputs)
    }
}

/// An input an op declares: a name, a description and, optionally, its JSON Schema.
#[derive(Clone, Debug)]
pub struct Input(wit::InputInfo);

impl Input {
    /// The input `name`, without description or schema.
    pub fn new(name: impl Into<String>) -> Self {
        Input(wit::InputInfo {
            name: name.into(),
            description: String::new(),
            schema: None,
        })
    }

    /// What the input holds, for humans.
    pub fn describe(mut self, description: impl Into<String>) -> Self {
        self.0.description = description.into();
        self
    }

    /// The JSON Schema (draft 2020-12, as JSON text) of the input's value.
    pub fn schema(self, schema: impl Into<String>) -> Self {
        self.maybe_schema(Some(schema.into()))
    }

    /// `T`'s JSON Schema as the input's.
    pub fn schema_of<T: JsonSchema + ?Sized>(self) -> Self {
        self.schema(schema_of::<T>())
    }

    /// Sets or clears the input's schema.
    pub fn maybe_schema(mut self, schema: Option<String>) -> Self {
        self.0.schema = schema;
        self
    }
}

impl From<&str> for Input {
    fn from(name: &str) -> Self {
        Input::new(name)
    }
}

impl From<String> for Input {
    fn from(name: String) -> Self {
        Input::new(name)
    }
}

/// An output an op declares: a name, a description, whether it is required and, optionally,
/// the JSON Schema of its value (of each element, for a dynamic output). Whether it is dynamic is up to
/// [`Op::output`] or [`Op::dynamic_output`].
#[derive(Clone, Debug)]
pub struct Output(wit::OutputInfo);

impl Output {
    /// The output `name`, without description or schema.
    pub fn new(name: impl Into<String>) -> Self {
        Output(wit::OutputInfo {
            name: name.into(),
            dynamic: false,
            description: String::new(),
            schema: None,
            required: true,
        })
    }

    /// Lets the op leave the output out (Dagster's `is_required=False`): the steps that read
    /// it are then skipped, not failed.
    pub fn optional(mut self) -> Self {
        self.0.required = false;
        self
    }

    /// What the output holds, for humans.
    pub fn describe(mut self, description: impl Into<String>) -> Self {
        self.0.description = description.into();
        self
    }

    /// The JSON Schema (draft 2020-12, as JSON text) of the output's values.
    pub fn schema(self, schema: impl Into<String>) -> Self {
        self.maybe_schema(Some(schema.into()))
    }

    /// `T`'s JSON Schema as the output's.
    pub fn schema_of<T: JsonSchema + ?Sized>(self) -> Self {
        self.schema(schema_of::<T>())
    }

    /// Sets or clears the output's schema.
    pub fn maybe_schema(mut self, schema: Option<String>) -> Self {
        self.0.schema = schema;
        self
    }
}

impl From<&str> for Output {
    fn from(name: &str) -> Self {
        Output::new(name)
    }
}

impl From<String> for Output {
    fn from(name: String) -> Self {
        Output::new(name)
    }
}

type RunFn = Box<dyn Fn(&Context, &Inputs) -> Result<Outputs, OpError>>;

/// One op: what it declares and the function that runs it. [`#[op]`](macro@crate::op) makes
/// one; the builder methods make any other, including ones the host must reject (the same
/// input twice, say).
pub struct Op {
    pub(crate) info: wit::OpInfo,
    pub(crate) run: RunFn,
}

impl Op {
    fn with_run(name: &str, run: RunFn) -> Self {
        Op {
            info: wit::OpInfo {
                name: name.to_string(),
                description: String::new(),
                inputs: Vec::new(),
                outputs: Vec::new(),
                config_schema: None,
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

    /// Declares an input the job must wire: a name, or an [`Input`] with a description and a
    /// schema.
    pub fn input(mut self, input: impl Into<Input>) -> Self {
        self.info.inputs.push(input.into().0);
        self
    }

    /// Declares a non-dynamic output: a name, or an [`Output`] with a description and a
    /// schema.
    pub fn output(self, output: impl Into<Output>) -> Self {
        self.declare_output(output.into(), false)
    }

    /// Declares a dynamic output: a name, or an [`Output`] with a description and a schema.
    pub fn dynamic_output(self, output: impl Into<Output>) -> Self {
        self.declare_output(output.into(), true)
    }

    fn declare_output(mut self, Output(mut info): Output, dynamic: bool) -> Self {
        info.dynamic = dynamic;
        self.info.outputs.push(info);
        self
    }

    /// Declares the JSON Schema (draft 2020-12, as JSON text) of the op's config table; the
    /// host checks a job's config against it before the run starts.
    pub fn config_schema(self, schema: impl Into<String>) -> Self {
        self.maybe_config_schema(Some(schema.into()))
    }

    /// `T`'s JSON Schema as the config's.
    pub fn config_schema_of<T: JsonSchema + ?Sized>(self) -> Self {
        self.config_schema(schema_of::<T>())
    }

    /// Sets or clears the config's schema.
    pub fn maybe_config_schema(mut self, schema: Option<String>) -> Self {
        self.info.config_schema = schema;
        self
    }

    /// The op's name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// What the op declares, as `describe` hands it to the host.
    pub fn info(&self) -> &wit::OpInfo {
        &self.info
    }
}

/// Implements `describe` for [`export!`](crate::export).
pub fn describe(ops: Vec<Op>) -> Vec<wit::OpInfo> {
    ops.into_iter().map(|op| op.info).collect()
}

/// Implements `run` for [`export!`](crate::export).
pub fn run(
    ops: Vec<Op>,
    name: String,
    ctx: wit::Context,
    inputs: Vec<NamedValue>,
) -> Result<wit::Outputs, OpError> {
    let op = ops
        .iter()
        .find(|op| op.info.name == name)
        .ok_or_else(|| OpError::failed(format!("this component has no op `{name}`")))?;
    let ctx = Context::from_host(ctx);
    let inputs = Inputs {
        op: ctx.op_name().to_string(),
        values: inputs,
    };
    (op.run)(&ctx, &inputs).map(|outputs| outputs.0)
}

/// The returned dynamic outputs of an `#[op(dynamic)]` function.
pub fn dynamic_outputs(outputs: impl IntoIterator<Item = DynamicOutput>) -> Outputs {
    outputs.into_iter().fold(Outputs::new(), Outputs::dynamic)
}

/// The error of an `#[op]` function returning `Result<_, E>`.
pub fn into_op_error<E: Into<OpError>>(err: E) -> OpError {
    err.into()
}
