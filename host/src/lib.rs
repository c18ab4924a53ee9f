//! Shoal's host: loads op components, builds an execution plan from a job file and runs it
//! with Dagster's dynamic `map` / `collect` semantics, every step in its own Wasm instance.

pub mod app;
#[cfg(target_os = "linux")]
pub mod beneath;
pub mod build;
pub mod cancel;
pub mod cli;
pub mod digest;
pub mod events;
pub mod exec;
pub mod graph;
pub mod job;
pub mod keyed;
pub mod limits;
pub mod memory_usage;
pub mod name;
pub mod nats;
pub mod op_info;
pub mod outputs;
pub mod packed;
pub mod plan;
pub mod policy;
pub mod report;
pub mod retry;
pub mod runtime;
pub mod scaffold;
pub mod schema;
pub mod selection;
pub mod serve;
pub mod snapshot;
pub mod step_error;
pub mod step_key;
pub mod store;
pub mod tenant;
pub mod user_event;
pub mod value;
