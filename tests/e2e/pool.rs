//! Components of more than the usual four core instances (componentize-py's have 14): the
//! instance pool is sized from the components a job loads, and a step never fails because
//! the pool is momentarily full.

use crate::support::{TempJob, TopLevel, component, of_kind, with_sections};

/// The testkit component with `extra` more core instances, each with its own memory.
fn multi_module_testkit(dir: &std::path::Path, extra: u32) -> std::path::PathBuf {
    use wasm_encoder::{InstanceSection, MemorySection, MemoryType, Module, ModuleSection};
    let testkit = std::fs::read(component("testkit")).unwrap();
    let module_index = TopLevel::of(&testkit).core_modules;
    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: 1,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let mut module = Module::new();
    module.section(&memories);
    let mut instances = InstanceSection::new();
    for _ in 0..extra {
        instances.instantiate(module_index, Vec::<(&str, wasm_encoder::ModuleArg)>::new());
    }
    let mut sections = wasm_encoder::Component::new();
    sections
        .section(&ModuleSection(&module))
        .section(&instances);
    let path = dir.join("multi_module.wasm");
    std::fs::write(&path, with_sections(&testkit, &sections)).unwrap();
    path
}

#[test]
fn a_multi_module_component_runs_at_max_concurrent_1_past_an_emit_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = multi_module_testkit(dir.path(), 10);
    // 1,500 values: more than one emit window (1,024), so the producer pauses, holding its
    // instance, while clones take the pool.
    let job = TempJob::new(&format!(
        "[components.big]\npath = {:?}\n\
         [ops.fan_out]\ncomponent = 'big'\nconfig = {{ n = 1500 }}\n\
         [ops.identity]\ncomponent = 'big'\ninputs.value = {{ map = 'fan_out' }}\n\
         [ops.sum]\ncomponent = 'big'\ninputs.values = {{ collect = 'identity' }}\n",
        path.display().to_string()
    ));
    for concurrency in ["1", "2"] {
        let ran = job.run(&["--json", "--max-concurrent", concurrency]);
        let ran = ran.expect_code(0);
        let events = ran.events();
        let sum = of_kind(&events, "STEP_OUTPUT")
            .into_iter()
            .find(|e| e["step_key"] == "sum")
            .expect("sum ran");
        assert_eq!(sum["value"], 1500 * 1499 / 2);
        assert!(of_kind(&events, "STEP_FAILURE").is_empty());
    }
}
