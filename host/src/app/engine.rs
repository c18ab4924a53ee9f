//! The engine every run of an [`super::App`] shares: one wasmtime engine, instance pool, epoch
//! ticker and compiled-component registry per process, rather than one per run.

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::runtime::{EngineSize, LoadError, Runtime};

/// Built for the first run; built again, for the union of what it had and what a run needs,
/// when a run needs more (runs already executing keep the engine they started on). The wasm
/// stack is one setting of the engine: a run asking for another one gets an engine of its own
/// size, so that no run gets a deeper stack than its job allows.
#[derive(Default)]
pub struct SharedEngine(Mutex<Option<Arc<Runtime>>>);

impl SharedEngine {
    /// An engine a run that needs `needs` fits in; `cache` is the compiled-component cache.
    pub fn for_run(
        &self,
        needs: EngineSize,
        cache: Option<&Path>,
    ) -> Result<Arc<Runtime>, LoadError> {
        let mut shared = self.0.lock().expect("no thread panics holding the engine");
        let size = match shared.as_ref() {
            Some(current) if current.size().wasm_stack == needs.wasm_stack => {
                if current.check_fits(&needs).is_ok() {
                    return Ok(current.clone());
                }
                current.size().union(&needs)
            }
            _ => needs,
        };
        let runtime = Arc::new(Runtime::new(size, cache)?);
        *shared = Some(runtime.clone());
        Ok(runtime)
    }
}
