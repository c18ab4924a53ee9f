//! Testing ops natively, under plain `cargo test` (Dagster's `build_op_context`). Native builds
//! only: on any target but `wasm32` the WIT imports are not called; what an op yields and logs
//! is kept for the test, and yields are checked as the host checks them.
//!
//! Run an op as the host would, from its declaration:
//!
//! ```
//! use shoal_sdk::testing::build_op_context;
//! use shoal_sdk::{Context, DynamicOutput, OpError, op};
//!
//! /// Doubles every element of one piece.
//! #[op]
//! fn compute_piece(ctx: &Context, piece: Vec<i64>) -> Vec<i64> {
//!     ctx.log().info(format!("piece {}", ctx.mapping_key().unwrap_or("-")));
//!     piece.iter().map(|x| x * 2).collect()
//! }
//!
//! /// Yields `0..n` keyed by value.
//! #[op(dynamic)]
//! fn count_to(ctx: &Context, n: u32) -> Result<(), OpError> {
//!     for i in 0..n {
//!         ctx.yield_output(DynamicOutput::new(&i, i.to_string()))?;
//!     }
//!     Ok(())
//! }
//!
//! # fn main() {
//! let run = build_op_context()
//!     .mapping_key("3")
//!     .input("piece", &vec![1, 2])
//!     .run(compute_piece::op());
//! assert_eq!(run.output::<Vec<i64>>("result"), [2, 4]);
//! assert_eq!(run.logs()[0].message, "piece 3");
//!
//! let run = build_op_context().input("n", &3).run(count_to::op());
//! let keys: Vec<String> = run.dynamic::<u32>("result").into_iter().map(|(k, _)| k).collect();
//! assert_eq!(keys, ["0", "1", "2"]);
//!
//! // Or call the function itself with a context built for it:
//! let ctx = build_op_context().build();
//! count_to(&ctx, 2).unwrap();
//! assert_eq!(ctx.yielded::<u32>("result"), [("0".to_string(), 0), ("1".to_string(), 1)]);
//! # }
//! ```

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::shoal::op::types::{self as wit, DynamicValue, NamedValue};
use crate::capture::{Shared, check_dynamic, decode_dynamic};
use crate::{Context, Inputs, Level, MetadataValue, Op, OpError, UserEvent, to_cbor};

/// A context to run an op with, or to call an op's function with (Dagster's
/// `build_op_context`). Defaults: run id `test_run`, not mapped, attempt 1, an empty config, no
/// inputs.
pub fn build_op_context() -> OpContextBuilder {
    OpContextBuilder {
        run_id: "test_run".to_string(),
        op_name: None,
        step_key: None,
        mapping_keys: Vec::new(),
        attempt: 1,
        config: to_cbor(&std::collections::BTreeMap::<String, ()>::new()),
        tags: std::collections::BTreeMap::new(),
        inputs: Vec::new(),
    }
}

/// Builds a test [`Context`]; see [`build_op_context`].
#[derive(Clone, Debug)]
pub struct OpContextBuilder {
    run_id: String,
    op_name: Option<String>,
    step_key: Option<String>,
    mapping_keys: Vec<String>,
    attempt: u32,
    config: Vec<u8>,
    tags: std::collections::BTreeMap<String, String>,
    inputs: Vec<NamedValue>,
}

impl OpContextBuilder {
    /// The run id ([`Context::run_id`]).
    pub fn run_id(mut self, run_id: impl Into<String>) -> Self {
        self.run_id = run_id.into();
        self
    }

    /// The op's name in the job, which errors name; by default the name of the op run, or `op`
    /// for [`build`](Self::build).
    pub fn op_name(mut self, name: impl Into<String>) -> Self {
        self.op_name = Some(name.into());
        self
    }

    /// The step key; by default the op's name followed by each mapping key in brackets, as the
    /// host makes it.
    pub fn step_key(mut self, step_key: impl Into<String>) -> Self {
        self.step_key = Some(step_key.into());
        self
    }

    /// Adds a mapping key, inside those given before: `.mapping_key("3")` makes a clone keyed
    /// `3`, a second call a clone of a nested map.
    pub fn mapping_key(mut self, key: impl Into<String>) -> Self {
        self.mapping_keys.push(key.into());
        self
    }

    /// All mapping keys, outermost first (replacing any given before).
    pub fn mapping_keys<K: Into<String>>(mut self, keys: impl IntoIterator<Item = K>) -> Self {
        self.mapping_keys = keys.into_iter().map(Into::into).collect();
        self
    }

    /// The attempt number, 1 for the first ([`Context::attempt`]).
    pub fn attempt(mut self, attempt: u32) -> Self {
        assert!(attempt >= 1, "attempts count from 1");
        self.attempt = attempt;
        self
    }

    /// The retry number, 0 for the first attempt ([`Context::retry_number`]).
    pub fn retry_number(self, retry_number: u32) -> Self {
        self.attempt(retry_number + 1)
    }

    /// The op's config table: anything that serializes to a map (a struct, a `BTreeMap`, a
    /// `serde_json::Value` object, ...).
    pub fn config<T: Serialize + ?Sized>(mut self, config: &T) -> Self {
        self.config = to_cbor(config);
        self
    }

    /// The op's config table as raw CBOR, to test how an op takes a malformed one.
    pub fn config_cbor(mut self, config: Vec<u8>) -> Self {
        self.config = config;
        self
    }

    /// Adds tag `key` with `value` (replacing an earlier value of the same key).
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Wires input `name` to `value` (a collected input is a list).
    pub fn input<T: Serialize + ?Sized>(self, name: impl Into<String>, value: &T) -> Self {
        self.input_cbor(name, to_cbor(value))
    }

    /// Wires input `name` to raw CBOR bytes.
    pub fn input_cbor(mut self, name: impl Into<String>, value: Vec<u8>) -> Self {
        let name = name.into();
        assert!(
            !self.inputs.iter().any(|input| input.name == name),
            "build_op_context: input `{name}` is given twice"
        );
        self.inputs.push(NamedValue { name, value });
        self
    }

    fn raw_context(&self, op_name: &str) -> wit::Context {
        let step_key = self.step_key.clone().unwrap_or_else(|| {
            let keys: String = self.mapping_keys.iter().map(|k| format!("[{k}]")).collect();
            format!("{op_name}{keys}")
        });
        wit::Context {
            run_id: self.run_id.clone(),
            step_key,
            mapping_keys: self.mapping_keys.clone(),
            attempt: self.attempt,
            config: self.config.clone(),
            tags: self
                .tags
                .iter()
                .map(|(key, value)| wit::Tag {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
        }
    }

    /// The context itself, to call an op's function directly: `compute_piece(&ctx, ...)`.
    /// What the function yields and logs through it can be read back with
    /// [`Context::yielded`] and [`Context::logs`]; it accepts yields on any output, checking
    /// their keys. It becomes the thread's context for [`info!`](crate::info) and the other
    /// log macros. Inputs given to the builder are not used.
    pub fn build(&self) -> Context {
        let op_name = self.op_name.as_deref().unwrap_or("op");
        let capture = Shared::default();
        capture.make_current();
        Context::captured(self.raw_context(op_name), capture)
    }

    /// Runs `op` as the host would run one attempt of it, and returns what it produced.
    ///
    /// Panics, as the host refuses such a job, if the inputs given are not exactly the ones the
    /// op declares. A panic inside the op is caught and becomes [`RunError::Panic`].
    pub fn run(self, op: Op) -> OpRun {
        let info = &op.info;
        for declared in &info.inputs {
            assert!(
                self.inputs.iter().any(|input| input.name == declared.name),
                "build_op_context: op `{}` declares input `{}`, which the test does not give \
                 (`.input(\"{}\", &value)`)",
                info.name,
                declared.name,
                declared.name
            );
        }
        for given in &self.inputs {
            assert!(
                info.inputs
                    .iter()
                    .any(|declared| declared.name == given.name),
                "build_op_context: op `{}` has no input `{}`",
                info.name,
                given.name
            );
        }
        let op_name = self.op_name.clone().unwrap_or_else(|| info.name.clone());
        let capture = Shared::default();
        capture.lock().outputs = Some(
            info.outputs
                .iter()
                .map(|output| (output.name.clone(), output.dynamic))
                .collect(),
        );
        capture.make_current();
        let ctx = Context::captured(self.raw_context(&op_name), capture.clone());
        let inputs = Inputs {
            op: op_name,
            values: self.inputs,
        };
        let returned = catch_unwind(AssertUnwindSafe(|| (op.run)(&ctx, &inputs)));
        let mut captured = capture.lock();
        let mut run = OpRun {
            result: Ok(()),
            values: Vec::new(),
            dynamic: std::mem::take(&mut captured.yielded),
            logs: std::mem::take(&mut captured.logs),
            events: std::mem::take(&mut captured.events),
            metadata: std::mem::take(&mut captured.metadata),
        };
        let returned = match returned {
            Ok(returned) => returned,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_string());
                run.result = Err(RunError::Panic(message));
                return run;
            }
        };
        if let Some(rejection) = captured.rejection.take() {
            run.result = Err(RunError::Rejected(rejection));
            return run;
        }
        match returned {
            Err(err) => run.result = Err(RunError::Op(err)),
            Ok(outputs) => {
                captured.yielded = std::mem::take(&mut run.dynamic);
                run.result = check_outputs(&mut captured, &info.outputs, outputs.0, &mut run)
                    .map_err(RunError::Rejected);
                run.dynamic = std::mem::take(&mut captured.yielded);
            }
        }
        run
    }
}

/// Checks what an op returned against its declared outputs, as the host does, moving the
/// values into `run` (the returned dynamic values after the yielded ones in `captured`).
fn check_outputs(
    captured: &mut crate::capture::Capture,
    declared: &[wit::OutputInfo],
    returned: wit::Outputs,
    run: &mut OpRun,
) -> Result<(), String> {
    for value in returned.values {
        let name = &value.name;
        match declared.iter().find(|output| output.name == *name) {
            None => {
                return Err(format!(
                    "op produced output `{name}`, which it does not declare"
                ));
            }
            Some(output) if output.dynamic => {
                return Err(format!(
                    "op returned a single value for dynamic output `{name}`; yield keyed values \
                     instead"
                ));
            }
            Some(_) if run.values.iter().any(|v| v.name == *name) => {
                return Err(format!("op returned output `{name}` twice"));
            }
            Some(_) => run.values.push(value),
        }
    }
    for value in returned.dynamic {
        check_dynamic(captured, &value)?;
        captured.yielded.push(value);
    }
    for output in declared
        .iter()
        .filter(|output| !output.dynamic && output.required)
    {
        if !run.values.iter().any(|v| v.name == output.name) {
            return Err(format!("op did not produce output `{}`", output.name));
        }
    }
    Ok(())
}

/// One log line of a test run.
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    pub level: Level,
    pub message: String,
}

/// Why a test run failed.
#[derive(Clone, Debug, PartialEq)]
pub enum RunError {
    /// The op returned an error.
    Op(OpError),
    /// The host would have failed the step: a rejected yield (bad or duplicate mapping key,
    /// undeclared or non-dynamic output), or returned outputs that do not match the
    /// declaration. The message is the host's.
    Rejected(String),
    /// The op panicked (a trap, in a component), with this message.
    Panic(String),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Op(OpError::Failed(m)) => write!(f, "op failed: {m}"),
            RunError::Op(OpError::RetryRequested(m)) => write!(f, "op requested a retry: {m}"),
            RunError::Op(OpError::BadInput(m)) => write!(f, "op rejected its input: {m}"),
            RunError::Rejected(m) => f.write_str(m),
            RunError::Panic(m) => write!(f, "op panicked: {m}"),
        }
    }
}

impl std::error::Error for RunError {}

/// What one test run of an op produced: its outputs or its error, its log, its user events and
/// its outputs' metadata.
#[derive(Debug)]
pub struct OpRun {
    result: Result<(), RunError>,
    values: Vec<NamedValue>,
    /// Yielded, then returned.
    dynamic: Vec<DynamicValue>,
    logs: Vec<LogLine>,
    events: Vec<UserEvent>,
    metadata: Vec<crate::capture::AddedMetadata>,
}

impl OpRun {
    /// True when the op succeeded and its outputs match its declaration.
    pub fn is_success(&self) -> bool {
        self.result.is_ok()
    }

    /// Why the run failed, if it did.
    pub fn error(&self) -> Option<&RunError> {
        self.result.as_ref().err()
    }

    /// The op's own error, if it returned one.
    pub fn op_error(&self) -> Option<&OpError> {
        match &self.result {
            Err(RunError::Op(err)) => Some(err),
            _ => None,
        }
    }

    fn expect_success(&self) {
        if let Err(err) = &self.result {
            panic!("the op did not succeed: {err}");
        }
    }

    /// The value of non-dynamic output `name` (`result` for a single output), decoded as a
    /// `T`. Panics if the run failed, if there is no such output or if it does not decode.
    pub fn output<T: DeserializeOwned>(&self, name: &str) -> T {
        self.expect_success();
        let value = self
            .values
            .iter()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("the op produced no output `{name}`"));
        crate::from_cbor(&value.value, &format!("output `{name}`"))
            .unwrap_or_else(|err| panic!("{}", err.message()))
    }

    /// The values of dynamic output `name` as `(mapping key, value)` pairs, the yielded ones
    /// then the returned ones, in order. Panics if the run failed or a value does not decode.
    pub fn dynamic<T: DeserializeOwned>(&self, name: &str) -> Vec<(String, T)> {
        self.expect_success();
        decode_dynamic(&self.dynamic, name)
    }

    /// The values of dynamic output `name` produced so far, whether the run succeeded or not
    /// (on a failure, what was yielded before it).
    pub fn yielded<T: DeserializeOwned>(&self, name: &str) -> Vec<(String, T)> {
        decode_dynamic(&self.dynamic, name)
    }

    /// Everything the op logged, in order, whether it succeeded or not.
    pub fn logs(&self) -> &[LogLine] {
        &self.logs
    }

    /// True when the op produced non-dynamic output `name` (an optional one may be left out).
    /// Panics if the run failed.
    pub fn has_output(&self, name: &str) -> bool {
        self.expect_success();
        self.values.iter().any(|v| v.name == name)
    }

    /// The user events the op logged, in order, whether it succeeded or not.
    pub fn events(&self) -> &[UserEvent] {
        &self.events
    }

    /// The metadata the op added to output `output` (to its value keyed `mapping_key`, for a
    /// dynamic output), by label.
    pub fn output_metadata(
        &self,
        output: &str,
        mapping_key: Option<&str>,
    ) -> std::collections::BTreeMap<String, MetadataValue> {
        crate::capture::metadata_of(&self.metadata, output, mapping_key)
    }
}
