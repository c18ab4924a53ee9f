//! Host bindings generated from the op interface, and their conversions to host types.
//!
//! The host runs components built against the current interface (`wit/op.wit`,
//! `shoal:op@0.3.0`), against 0.2.0 (`wit/0.2.0/op.wit`: every output required, no tags, no
//! events) and against 0.1.0 (`wit/0.1.0/op.wit`: no schemas either). The older versions have a
//! subset of the current calls and values; the rest of the host sees only the current
//! version's types, and an older component's are converted at this boundary.

use wasmtime::component::{HasSelf, InstancePre, Linker};
use wasmtime::{AsContextMut, Engine};

use super::state::StepState;
use crate::op_info::{InputInfo, OpInfo, OutputInfo};

/// Generates one version's bindings with the host's async imports and exports; `$extra` adds
/// the import settings of calls only some versions have.
macro_rules! op_bindings {
    ($path:literal $(, $($extra:tt)+)?) => {
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
                $($($extra)+)?
            },
            exports: { default: async },
        });
    };
}

/// `shoal:op@0.3.0`, the current interface.
pub mod current {
    op_bindings!(
        "../wit",
        // Async: an event waits for room in the log queue as a log line does.
        "shoal:op/events.log-event": async,
    );
}

/// `shoal:op@0.2.0`: every output required, no tags, no events.
pub mod v0_2 {
    op_bindings!("../wit/0.2.0/op.wit");
}

/// `shoal:op@0.1.0`: ops without schemas, inputs as bare names.
pub mod v0_1 {
    op_bindings!("../wit/0.1.0/op.wit");
}

pub use current::shoal::op::events::{MetadataEntry, MetadataValue, UserEvent};
pub use current::shoal::op::types::{Context, DynamicValue, NamedValue, OpError, Outputs, Tag};

/// The export every version names its ops under, for error messages.
const OP_EXPORT: &str = "shoal:op/op";
/// The versions of the op interface this host runs, newest first, with the WIT file of each.
pub const VERSIONS: [(&str, &str); 3] = [
    ("0.3.0", "wit/op.wit"),
    ("0.2.0", "wit/0.2.0/op.wit"),
    ("0.1.0", "wit/0.1.0/op.wit"),
];

/// A component linked and checked against one version of the op interface.
pub enum OpPre {
    Current(current::OpComponentPre<StepState>),
    V0_2(v0_2::OpComponentPre<StepState>),
    V0_1(v0_1::OpComponentPre<StepState>),
}

/// One instance of a component, ready for `describe` or `run`.
pub enum OpInstance {
    Current(current::OpComponent),
    V0_2(v0_2::OpComponent),
    V0_1(v0_1::OpComponent),
}

/// Adds the imports of every version the host runs (`log`, `emit`, `events`) to `linker`.
pub fn add_to_linker(linker: &mut Linker<StepState>) -> wasmtime::Result<()> {
    current::OpComponent::add_to_linker::<_, HasSelf<_>>(linker, |state| state)?;
    v0_2::OpComponent::add_to_linker::<_, HasSelf<_>>(linker, |state| state)?;
    v0_1::OpComponent::add_to_linker::<_, HasSelf<_>>(linker, |state| state)
}

/// What an older version shares with the current one, converted to it: its imports delegate to
/// the current ones, its values become current values, and `run` takes current ones.
macro_rules! older_version {
    ($version:ident) => {
        impl $version::shoal::op::types::Host for StepState {}

        impl $version::shoal::op::log::Host for StepState {
            async fn log(
                &mut self,
                level: $version::shoal::op::log::Level,
                message: String,
            ) -> wasmtime::Result<()> {
                use current::shoal::op::log::Level;
                use $version::shoal::op::log::Level as Old;
                let level = match level {
                    Old::Trace => Level::Trace,
                    Old::Debug => Level::Debug,
                    Old::Info => Level::Info,
                    Old::Warn => Level::Warn,
                    Old::Error => Level::Error,
                };
                current::shoal::op::log::Host::log(self, level, message).await
            }
        }

        impl $version::shoal::op::emit::Host for StepState {
            async fn yield_output(
                &mut self,
                value: $version::shoal::op::types::DynamicValue,
            ) -> wasmtime::Result<Result<(), String>> {
                current::shoal::op::emit::Host::yield_output(self, value.into()).await
            }
        }

        impl From<$version::shoal::op::types::DynamicValue> for DynamicValue {
            fn from(value: $version::shoal::op::types::DynamicValue) -> Self {
                DynamicValue {
                    output: value.output,
                    mapping_key: value.mapping_key,
                    value: value.value,
                }
            }
        }

        impl From<$version::shoal::op::types::Outputs> for Outputs {
            fn from(outputs: $version::shoal::op::types::Outputs) -> Self {
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

        impl From<$version::shoal::op::types::OpError> for OpError {
            fn from(err: $version::shoal::op::types::OpError) -> Self {
                use $version::shoal::op::types::OpError as Old;
                match err {
                    Old::Failed(message) => OpError::Failed(message),
                    Old::RetryRequested(message) => OpError::RetryRequested(message),
                    Old::BadInput(message) => OpError::BadInput(message),
                }
            }
        }

        impl $version::OpComponent {
            /// Calls `run` with current values, converted both ways; the context loses its
            /// tags, which this version does not have.
            async fn run_converted(
                &self,
                store: impl AsContextMut<Data = StepState>,
                name: &str,
                ctx: &Context,
                inputs: &[NamedValue],
            ) -> wasmtime::Result<Result<Outputs, OpError>> {
                use $version::shoal::op::types as old;
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
                let returned = self
                    .shoal_op_op()
                    .call_run(store, name, &ctx, &inputs)
                    .await?;
                Ok(returned.map(Outputs::from).map_err(OpError::from))
            }
        }
    };
}

older_version!(v0_2);
older_version!(v0_1);

impl OpPre {
    /// Picks the newest version of the op interface the component exports. The error names
    /// what it exports instead, and the versions this host runs.
    pub fn new(engine: &Engine, pre: InstancePre<StepState>) -> Result<Self, String> {
        let current = match current::OpComponentPre::new(pre.clone()) {
            Ok(current) => return Ok(OpPre::Current(current)),
            Err(err) => err,
        };
        let v0_2 = match v0_2::OpComponentPre::new(pre.clone()) {
            Ok(v0_2) => return Ok(OpPre::V0_2(v0_2)),
            Err(err) => err,
        };
        let v0_1 = match v0_1::OpComponentPre::new(pre.clone()) {
            Ok(v0_1) => return Ok(OpPre::V0_1(v0_1)),
            Err(err) => err,
        };
        let mismatches = [current, v0_2, v0_1];
        let runs = VERSIONS
            .iter()
            .map(|(version, _)| format!("`{OP_EXPORT}@{version}`"))
            .collect::<Vec<_>>()
            .join(" or ");
        let exported: Vec<String> = pre
            .component()
            .component_type()
            .exports(engine)
            .map(|(name, _)| name.to_string())
            .filter(|name| name.starts_with(OP_EXPORT))
            .collect();
        if exported.is_empty() {
            return Err(format!(
                "{:#}; this host runs components that export {runs}",
                mismatches[0]
            ));
        }
        // Exported under a version the host runs, with types that differ from it (an SDK's
        // copy of the WIT that drifted): what differs is the news.
        let known = VERSIONS
            .iter()
            .zip(&mismatches)
            .find(|((version, _), _)| exported.contains(&format!("{OP_EXPORT}@{version}")));
        Err(match known {
            Some(((version, wit), err)) => {
                format!("its `{OP_EXPORT}@{version}` does not match `{wit}`: {err:#}")
            }
            None => format!(
                "it exports `{}`, but this host runs components that export {runs}: rebuild it \
                 against one of those (the current one is `wit/op.wit`)",
                exported.join("`, `")
            ),
        })
    }

    pub async fn instantiate(
        &self,
        store: impl AsContextMut<Data = StepState>,
    ) -> wasmtime::Result<OpInstance> {
        Ok(match self {
            OpPre::Current(pre) => OpInstance::Current(pre.instantiate_async(store).await?),
            OpPre::V0_2(pre) => OpInstance::V0_2(pre.instantiate_async(store).await?),
            OpPre::V0_1(pre) => OpInstance::V0_1(pre.instantiate_async(store).await?),
        })
    }
}

impl OpInstance {
    /// Calls `describe`, in host types.
    pub async fn describe(
        &self,
        store: impl AsContextMut<Data = StepState>,
    ) -> wasmtime::Result<Vec<OpInfo>> {
        fn host<T: Into<OpInfo>>(ops: Vec<T>) -> Vec<OpInfo> {
            ops.into_iter().map(Into::into).collect()
        }
        Ok(match self {
            OpInstance::Current(op) => host(op.shoal_op_op().call_describe(store).await?),
            OpInstance::V0_2(op) => host(op.shoal_op_op().call_describe(store).await?),
            OpInstance::V0_1(op) => host(op.shoal_op_op().call_describe(store).await?),
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
            OpInstance::V0_2(op) => op.run_converted(store, name, ctx, inputs).await,
            OpInstance::V0_1(op) => op.run_converted(store, name, ctx, inputs).await,
        }
    }
}

/// `OpInfo` of a version with schemas (0.2.0 on), which differ only in whether an output may
/// be left out.
macro_rules! op_info_with_schemas {
    ($version:ident, |$output:ident| $required:expr) => {
        impl From<$version::shoal::op::types::OpInfo> for OpInfo {
            fn from(op: $version::shoal::op::types::OpInfo) -> Self {
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
                        .map(|$output| OutputInfo {
                            required: $required,
                            name: $output.name,
                            dynamic: $output.dynamic,
                            description: $output.description,
                            schema: $output.schema,
                        })
                        .collect(),
                    config_schema: op.config_schema,
                }
            }
        }
    };
}

op_info_with_schemas!(current, |output| output.required);
op_info_with_schemas!(v0_2, |output| true);

impl From<v0_1::shoal::op::types::OpInfo> for OpInfo {
    fn from(op: v0_1::shoal::op::types::OpInfo) -> Self {
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
