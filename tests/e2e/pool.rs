//! Components of more than the usual four core instances (a Python component has 14): the
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

/// A pool sized for one instance of the component at a time (as if its shape had been
/// under-counted): the producer and its clones must take turns, and none may fail for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_finds_the_pool_full_waits_for_room() {
    use host::exec::{self, Prior, RunOptions};
    use host::runtime::footprint::Footprint;
    use host::runtime::{ComponentFile, EngineSize, Runtime, WasmRunner};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let file = ComponentFile::read(&multi_module_testkit(dir.path(), 10)).unwrap();
    let size = EngineSize::for_run(2, None, std::slice::from_ref(&file));
    let needs = size.footprint;
    // `--max-concurrent 2` makes 5 slots: a fifth of the need per slot is one instance in all,
    // while the scheduler runs two steps at once.
    let fifth = |n: u32| n.div_ceil(5);
    let tight = Footprint {
        core_instances: fifth(needs.core_instances),
        memories: fifth(needs.memories),
        tables: fifth(needs.tables),
        ..needs
    };
    let tight = EngineSize {
        footprint: tight,
        ..size
    };
    let runtime = Arc::new(Runtime::new(tight, None).unwrap());
    let component = runtime.load_bytes(&file.path, &file.bytes).await.unwrap();
    let job_path = dir.path().join("job.toml");
    std::fs::write(
        &job_path,
        format!(
            "[components.big]\npath = {:?}\n\
             [ops.fan_out]\ncomponent = 'big'\nconfig = {{ n = 20 }}\n\
             [ops.identity]\ncomponent = 'big'\ninputs.value = {{ map = 'fan_out' }}\n\
             [ops.sum]\ncomponent = 'big'\ninputs.values = {{ collect = 'identity' }}\n",
            file.path.display().to_string()
        ),
    )
    .unwrap();
    let job = host::job::LoadedJob::load(&job_path).unwrap();
    let described = indexmap::IndexMap::from([(
        "big".to_string(),
        host::plan::Described {
            digest: component.digest,
            ops: component.ops.clone(),
        },
    )]);
    let plan = Arc::new(host::plan::build(&job, &described).unwrap());
    let runner = Arc::new(WasmRunner::new(runtime));
    let options = RunOptions {
        run_id: "pool".into(),
        max_concurrent: 2,
        emit_window: exec::DEFAULT_EMIT_WINDOW,
        prior: Prior::default(),
        cancel: Default::default(),
        share: None,
    };
    let run = exec::execute(plan.clone(), runner, options, &mut host::events::NoEvents).await;
    let failures: Vec<String> = run
        .steps
        .iter()
        .filter_map(|s| match &s.status {
            exec::Status::Failed(err) => Some(format!("{}: {err}", s.name)),
            _ => None,
        })
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(
        run.output_for_node(plan.node("sum").unwrap(), "result"),
        190
    );
}
