//! Host bindings generated from the op interface, and their conversions to host types.
//!
//! The host runs components built against the current interface (`wit/op.wit`,
//! `shoal:op@0.2.0`) and against 0.1.0 (`wit/0.1.0/op.wit`, no schemas). Both versions have the
//! same calls and values; the rest of the host sees only the current version's types, and a
//! 0.1.0 component's are converted at this boundary.

use wasmtime::component::{HasSelf, InstancePre, Linker};
use wasmtime::{AsContextMut, Engine};

use super::state::StepState;
use crate::op_info::{InputInfo, OpInfo, OutputInfo};

/// Generates one version's bindings with the host's async imports and exports.
macro_rules! op_bindings {
    ($path:literal) => {
        wasmtime::component::bindgen!({
            path: $path,
            world: "op-component",
            // Both can stop the guest: past its log budget, or when it keeps yielding after a
            // rejected value.
            imports: {
                // Async: a guest waits in `log` while the log queue is full, and a producer
                // waits in `yield-output` while the run has too much queued work.
                "shoal:op/log.log": async | trappable,
                "shoal:op/emit.yield-output": async | trappable,
            },
            exports: { default: async },
        });
    };
}

/// `shoal:op@0.2.0`, the current interface.
pub mod current {
    op_bindings!("../wit");
}

/// `shoal:op@0.1.0`: ops without schemas, inputs as bare names.
pub mod legacy {
    op_bindings!("../wit/0.1.0/op.wit");
}

pub use current::shoal::op::types::{Context, DynamicValue, NamedValue, OpError, Outputs};

/// The export every version names its ops under, for error messages.
const OP_EXPORT: &str = "shoal:op/op";
/// The versions of the op interface this host runs, newest first.
pub const VERSIONS: [&str; 2] = ["0.2.0", "0.1.0"];

/// A component linked and checked against one version of the op interface.
pub enum OpPre {
    Current(current::OpComponentPre<StepState>),
    Legacy(legacy::OpComponentPre<StepState>),
}

/// One instance of a component, ready for `describe` or `run`.
pub enum OpInstance {
    Current(current::OpComponent),
    Legacy(legacy::OpComponent),
}

/// Adds the imports of every version the host runs (`log`, `emit`) to `linker`.
pub fn add_to_linker(linker: &mut Linker<StepState>) -> wasmtime::Result<()> {
    current::OpComponent::add_to_linker::<_, HasSelf<_>>(linker, |state| state)?;
    legacy::OpComponent::add_to_linker::<_, HasSelf<_>>(linker, |state| state)
}

impl legacy::shoal::op::types::Host for StepState {}

impl legacy::shoal::op::log::Host for StepState {
    async fn log(
        &mut self,
        level: legacy::shoal::op::log::Level,
        message: String,
    ) -> wasmtime::Result<()> {
        current::shoal::op::log::Host::log(self, level.into(), message).await
    }
}

impl legacy::shoal::op::emit::Host for StepState {
    async fn yield_output(
        &mut self,
        value: legacy::shoal::op::types::DynamicValue,
    ) -> wasmtime::Result<Result<(), String>> {
        current::shoal::op::emit::Host::yield_output(self, value.into()).await
    }
}

impl OpPre {
    /// Picks the newest version of the op interface the component exports. The error names
    /// what it exports instead, and the versions this host runs.
    pub fn new(engine: &Engine, pre: InstancePre<StepState>) -> Result<Self, String> {
        let current = match current::OpComponentPre::new(pre.clone()) {
            Ok(current) => return Ok(OpPre::Current(current)),
            Err(err) => err,
        };
        let legacy = match legacy::OpComponentPre::new(pre.clone()) {
            Ok(legacy) => return Ok(OpPre::Legacy(legacy)),
            Err(err) => err,
        };
        let runs = VERSIONS
            .iter()
            .map(|version| format!("`{OP_EXPORT}@{version}`"))
            .collect::<Vec<_>>()
            .join(" or ");
        let exported: Vec<String> = pre
            .component()
            .component_type()
            .exports(engine)
            .map(|(name, _)| name.to_string())
            .filter(|name| name.starts_with(OP_EXPORT))
            .collect();
        let known = |version: &str| exported.contains(&format!("{OP_EXPORT}@{version}"));
        Err(if exported.is_empty() {
            format!("{current:#}; this host runs components that export {runs}")
        } else if known(VERSIONS[0]) {
            // Exported under a version the host runs, with types that differ from it (an SDK's
            // copy of the WIT that drifted): what differs is the news.
            format!(
                "its `{OP_EXPORT}@{}` does not match `wit/op.wit`: {current:#}",
                VERSIONS[0]
            )
        } else if known(VERSIONS[1]) {
            format!(
                "its `{OP_EXPORT}@{}` does not match `wit/0.1.0/op.wit`: {legacy:#}",
                VERSIONS[1]
            )
        } else {
            format!(
                "it exports `{}`, but this host runs components that export {runs}: rebuild it \
                 against one of those (the current one is `wit/op.wit`)",
                exported.join("`, `")
            )
        })
    }

    pub async fn instantiate(
        &self,
        store: impl AsContextMut<Data = StepState>,
    ) -> wasmtime::Result<OpInstance> {
        Ok(match self {
            OpPre::Current(pre) => OpInstance::Current(pre.instantiate_async(store).await?),
            OpPre::Legacy(pre) => OpInstance::Legacy(pre.instantiate_async(store).await?),
        })
    }
}

impl OpInstance {
    /// Calls `describe`, in host types.
    pub async fn describe(
        &self,
        store: impl AsContextMut<Data = StepState>,
    ) -> wasmtime::Result<Vec<OpInfo>> {
        Ok(match self {
            OpInstance::Current(op) => {
                let ops = op.shoal_op_op().call_describe(store).await?;
                ops.into_iter().map(OpInfo::from).collect()
            }
            OpInstance::Legacy(op) => {
                let ops = op.shoal_op_op().call_describe(store).await?;
                ops.into_iter().map(OpInfo::from).collect()
            }
        })
    }

    /// Calls `run` for op `name`.
    pub async fn run(
        &self,
        store: impl AsContextMut<Data = StepState>,
        name: &str,
        ctx: &Context,
        inputs: &[NamedValue],
    ) -> wasmtime::Result<Result<Outputs, OpError>> {
        match self {
            OpInstance::Current(op) => op.shoal_op_op().call_run(store, name, ctx, inputs).await,
            OpInstance::Legacy(op) => {
                use legacy::shoal::op::types as old;
                let ctx = old::Context {
                    run_id: ctx.run_id.clone(),
                    step_key: ctx.step_key.clone(),
                    mapping_keys: ctx.mapping_keys.clone(),
                    attempt: ctx.attempt,
                    config: ctx.config.clone(),
                };
                let inputs: Vec<old::NamedValue> = inputs
                    .iter()
                    .map(|input| old::NamedValue {
                        name: input.name.clone(),
                        value: input.value.clone(),
                    })
                    .collect();
                let returned = op
                    .shoal_op_op()
                    .call_run(store, name, &ctx, &inputs)
                    .await?;
                Ok(returned.map(Outputs::from).map_err(OpError::from))
            }
        }
    }
}

impl From<current::shoal::op::types::OpInfo> for OpInfo {
    fn from(op: current::shoal::op::types::OpInfo) -> Self {
        OpInfo {
            name: op.name,
            description: op.description,
            inputs: op
                .inputs
                .into_iter()
                .map(|input| InputInfo {
                    name: input.name,
                    description: input.description,
                    schema: input.schema,
                })
                .collect(),
            outputs: op
                .outputs
                .into_iter()
                .map(|o| OutputInfo {
                    name: o.name,
                    dynamic: o.dynamic,
                    description: o.description,
                    schema: o.schema,
                    required: true,
                })
                .collect(),
            config_schema: op.config_schema,
        }
    }
}

impl From<legacy::shoal::op::types::OpInfo> for OpInfo {
    fn from(op: legacy::shoal::op::types::OpInfo) -> Self {
        OpInfo {
            name: op.name,
            description: op.description,
            inputs: op.inputs.into_iter().map(InputInfo::named).collect(),
            outputs: op
                .outputs
                .into_iter()
                .map(|o| OutputInfo {
                    name: o.name,
                    dynamic: o.dynamic,
                    description: o.description,
                    schema: None,
                    required: true,
                })
                .collect(),
            config_schema: None,
        }
    }
}

impl From<legacy::shoal::op::types::DynamicValue> for DynamicValue {
    fn from(value: legacy::shoal::op::types::DynamicValue) -> Self {
        DynamicValue {
            output: value.output,
            mapping_key: value.mapping_key,
            value: value.value,
        }
    }
}

impl From<legacy::shoal::op::types::Outputs> for Outputs {
    fn from(outputs: legacy::shoal::op::types::Outputs) -> Self {
        Outputs {
            values: outputs
                .values
                .into_iter()
                .map(|value| NamedValue {
                    name: value.name,
                    value: value.value,
                })
                .collect(),
            dynamic: outputs
                .dynamic
                .into_iter()
                .map(DynamicValue::from)
                .collect(),
        }
    }
}

impl From<legacy::shoal::op::types::OpError> for OpError {
    fn from(err: legacy::shoal::op::types::OpError) -> Self {
        use legacy::shoal::op::types::OpError as Old;
        match err {
            Old::Failed(message) => OpError::Failed(message),
            Old::RetryRequested(message) => OpError::RetryRequested(message),
            Old::BadInput(message) => OpError::BadInput(message),
        }
    }
}

impl From<legacy::shoal::op::log::Level> for current::shoal::op::log::Level {
    fn from(level: legacy::shoal::op::log::Level) -> Self {
        use current::shoal::op::log::Level;
        use legacy::shoal::op::log::Level as Old;
        match level {
            Old::Trace => Level::Trace,
            Old::Debug => Level::Debug,
            Old::Info => Level::Info,
            Old::Warn => Level::Warn,
            Old::Error => Level::Error,
        }
    }
}
