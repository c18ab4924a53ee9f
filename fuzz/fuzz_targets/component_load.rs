//! Component loading: arbitrary bytes given as a component must be rejected with an error (or
//! loaded), never crash the host.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use host::runtime::{EngineSize, Runtime};
use libfuzzer_sys::fuzz_target;

fn setup() -> &'static (tokio::runtime::Runtime, Runtime) {
    static SETUP: OnceLock<(tokio::runtime::Runtime, Runtime)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let runtime = Runtime::new(EngineSize::for_run(1, None, &[]), None).expect("engine");
        (tokio, runtime)
    })
}

fuzz_target!(|data: &[u8]| {
    let (tokio, runtime) = setup();
    if let Err(err) = tokio.block_on(runtime.load_bytes(Path::new("fuzz.wasm"), data)) {
        let _ = err.to_string();
    }
});
