//! The running step's context: where it sits in the run, its config, its tags, its log, its
//! dynamic outputs, its outputs' metadata and its user events (Dagster's `OpExecutionContext`).

use std::collections::BTreeMap;
use std::fmt::Display;

use serde::de::DeserializeOwned;

use crate::bindings::shoal::op::types as wit;
use crate::events::{MetadataValue, UserEvent, entries};
use crate::{DynamicOutput, Level, OpError, decode};

/// Where the running step sits in the run, and what it can do besides returning (Dagster's
/// `OpExecutionContext`). An op receives it as a `&Context` parameter.
///
/// In a component every call reaches the host. In a native test build (any target but
/// `wasm32`) a context comes from [`testing::build_op_context`](crate::testing::build_op_context)
/// and keeps what the op yields and logs, for the test to read with [`Context::yielded`] and
/// [`Context::logs`].
pub struct Context {
    raw: wit::Context,
    #[cfg(not(target_arch = "wasm32"))]
    capture: crate::capture::Shared,
}

impl Context {
    /// The context of a step the host runs.
    pub(crate) fn from_host(raw: wit::Context) -> Self {
        Context {
            raw,
            #[cfg(not(target_arch = "wasm32"))]
            capture: crate::capture::Shared::default(),
        }
    }

    /// A context whose yields and logs go to `capture`.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn captured(raw: wit::Context, capture: crate::capture::Shared) -> Self {
        Context { raw, capture }
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.raw.run_id
    }

    /// The step key: `op` for a plain step, `op[key]` for a clone, `op[a][b]` when nested.
    pub fn step_key(&self) -> &str {
        &self.raw.step_key
    }

    /// The op's name in the job (the step key without mapping keys), which its config and
    /// inputs are wired under and which errors name.
    pub fn op_name(&self) -> &str {
        let key = &self.raw.step_key;
        key.split_once('[').map_or(key.as_str(), |(op, _)| op)
    }

    /// The mapping key of this clone (the innermost one when nested); `None` when the step is
    /// not mapped (Dagster's `get_mapping_key()`).
    pub fn mapping_key(&self) -> Option<&str> {
        self.raw.mapping_keys.last().map(String::as_str)
    }

    /// All mapping keys of this clone, outermost first; empty when the step is not mapped.
    pub fn mapping_keys(&self) -> &[String] {
        &self.raw.mapping_keys
    }

    /// 1 on the first attempt, 2 on the first retry, and so on.
    pub fn attempt(&self) -> u32 {
        self.raw.attempt
    }

    /// 0 on the first attempt, 1 on the first retry, and so on (Dagster's `retry_number`).
    pub fn retry_number(&self) -> u32 {
        self.raw.attempt.saturating_sub(1)
    }

    /// The step's tags, by key: the job's, overridden by the op's, overridden by the run's
    /// (Dagster's `context.run.tags`).
    pub fn tags(&self) -> BTreeMap<&str, &str> {
        self.raw
            .tags
            .iter()
            .map(|tag| (tag.key.as_str(), tag.value.as_str()))
            .collect()
    }

    /// The value of tag `key`, if the step has it (Dagster's `get_tag`).
    pub fn get_tag(&self, key: &str) -> Option<&str> {
        self.raw
            .tags
            .iter()
            .find(|tag| tag.key == key)
            .map(|tag| tag.value.as_str())
    }

    /// True when the step has tag `key` (Dagster's `has_tag`).
    pub fn has_tag(&self, key: &str) -> bool {
        self.get_tag(key).is_some()
    }

    /// Records a user event now (Dagster's `context.log_event`): an
    /// [`AssetMaterialization`](crate::AssetMaterialization), an
    /// [`AssetObservation`](crate::AssetObservation) or an
    /// [`ExpectationResult`](crate::ExpectationResult). An error means the host refused it (an
    /// empty asset key, invalid JSON metadata, past the step's log limit); the op may go on.
    pub fn log_event(&self, event: impl Into<UserEvent>) -> Result<(), OpError> {
        let event = event.into();
        #[cfg(target_arch = "wasm32")]
        return crate::bindings::shoal::op::events::log_event(&event).map_err(OpError::Failed);
        #[cfg(not(target_arch = "wasm32"))]
        return self.capture.log_event(event).map_err(OpError::Failed);
    }

    /// Attaches metadata to output `output` (Dagster's `add_output_metadata`): for a dynamic
    /// output, to its value keyed `mapping_key`, before it is yielded; for a non-dynamic one
    /// (`mapping_key` `None`), before the op returns. A label given again replaces its value.
    /// An error means the host refused it (an undeclared output, a key already yielded, an
    /// empty label, invalid JSON); the op may go on.
    ///
    /// ```
    /// # let ctx = shoal_sdk::testing::build_op_context().build();
    /// use shoal_sdk::MetadataValue;
    /// ctx.add_output_metadata("result", None, [("rows", MetadataValue::from(3)), ("source", MetadataValue::url("https://x"))])?;
    /// # assert_eq!(ctx.output_metadata("result", None)["rows"], MetadataValue::Int(3));
    /// # Ok::<(), shoal_sdk::OpError>(())
    /// ```
    pub fn add_output_metadata<L: Into<String>, V: Into<MetadataValue>>(
        &self,
        output: &str,
        mapping_key: Option<&str>,
        metadata: impl IntoIterator<Item = (L, V)>,
    ) -> Result<(), OpError> {
        let metadata = entries(metadata);
        #[cfg(target_arch = "wasm32")]
        return crate::bindings::shoal::op::events::add_output_metadata(
            output,
            mapping_key,
            &metadata,
        )
        .map_err(OpError::Failed);
        #[cfg(not(target_arch = "wasm32"))]
        return self
            .capture
            .add_output_metadata(output, mapping_key, metadata)
            .map_err(OpError::Failed);
    }

    /// The events the op logged through this context so far, in order. Native test builds
    /// only.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn events(&self) -> Vec<UserEvent> {
        self.capture.lock().events.clone()
    }

    /// The metadata added so far to output `output` (to its value keyed `mapping_key`, for a
    /// dynamic output), by label. Native test builds only.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn output_metadata(
        &self,
        output: &str,
        mapping_key: Option<&str>,
    ) -> BTreeMap<String, MetadataValue> {
        crate::capture::metadata_of(&self.capture.lock().metadata, output, mapping_key)
    }

    /// The step's log (Dagster's `context.log`): `ctx.log().info("...")`.
    pub fn log(&self) -> Log<'_> {
        Log { ctx: self }
    }

    /// The op's config table decoded as `T` (Dagster's `op_config`); an op without config sees
    /// an empty table, so a `T` whose fields all have defaults decodes from it. The error names
    /// the op and the field, e.g. ``op `fan_out`: config field `n`: invalid type: string,
    /// expected integer``.
    ///
    /// An op made with [`#[op]`](macro@crate::op) usually takes its config as a parameter named
    /// `config` instead.
    pub fn op_config<T: DeserializeOwned>(&self) -> Result<T, OpError> {
        decode::decode(&self.raw.config).map_err(|err| {
            OpError::bad_input(format!(
                "op `{}`: {}",
                self.op_name(),
                err.describe("config", "field")
            ))
        })
    }

    /// The same as [`Context::op_config`].
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, OpError> {
        self.op_config()
    }

    /// Hands one dynamic output to the host now (Dagster's `yield DynamicOutput(...)`); steps
    /// mapped over it may start before this op returns. An error means the host rejected it
    /// (an undeclared or non-dynamic output, a bad or duplicate key): return it, the step fails
    /// either way.
    pub fn yield_output(&self, output: DynamicOutput) -> Result<(), OpError> {
        #[cfg(target_arch = "wasm32")]
        return crate::bindings::shoal::op::emit::yield_output(&output.0).map_err(OpError::Failed);
        #[cfg(not(target_arch = "wasm32"))]
        return self.capture.yield_output(output.0).map_err(OpError::Failed);
    }

    /// What the op yielded on dynamic output `output` through this context so far, as
    /// `(mapping key, value)` pairs in order. Native test builds only. Panics if a value does
    /// not decode as a `T`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn yielded<T: DeserializeOwned>(&self, output: &str) -> Vec<(String, T)> {
        let yielded = self.capture.lock().yielded.clone();
        crate::capture::decode_dynamic(&yielded, output)
    }

    /// What the op logged through this context so far (and, while it is the thread's newest
    /// testing context, through [`info!`](crate::info) and the other log macros), in order.
    /// Native test builds only.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn logs(&self) -> Vec<crate::testing::LogLine> {
        self.capture.lock().logs.clone()
    }
}

/// The step's log, from [`Context::log`]. Every message is attributed by the host to the step.
#[derive(Clone, Copy)]
pub struct Log<'a> {
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    ctx: &'a Context,
}

impl Log<'_> {
    /// Logs `message` at `level`.
    pub fn log(&self, level: Level, message: impl Display) {
        let message = message.to_string();
        #[cfg(target_arch = "wasm32")]
        crate::bindings::shoal::op::log::log(level, &message);
        #[cfg(not(target_arch = "wasm32"))]
        self.ctx.capture.log(level, message);
    }

    /// Very detailed tracing.
    pub fn trace(&self, message: impl Display) {
        self.log(Level::Trace, message);
    }

    /// Debugging detail.
    pub fn debug(&self, message: impl Display) {
        self.log(Level::Debug, message);
    }

    /// Normal progress.
    pub fn info(&self, message: impl Display) {
        self.log(Level::Info, message);
    }

    /// Something unexpected that did not stop the op.
    pub fn warn(&self, message: impl Display) {
        self.log(Level::Warn, message);
    }

    /// A failure worth attention.
    pub fn error(&self, message: impl Display) {
        self.log(Level::Error, message);
    }
}
