//! Bad job files and bad components: a clear message naming the culprit, exit code 2, and
//! nothing run.

use crate::support::{Ran, TempJob, TopLevel, component, host, with_sections};

fn run_job(body: &str) -> Ran {
    let ran = TempJob::new(body).run(&["--json"]).expect_code(2);
    // No event: the one line is the error, as JSON.
    let lines: Vec<serde_json::Value> = ran
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect();
    assert!(
        lines.len() == 1 && lines[0]["error"].is_string(),
        "nothing may run: {}",
        ran.stdout
    );
    ran
}

fn assert_error(ran: &Ran, message: &str) {
    assert!(
        ran.stderr.contains(message),
        "expected {message:?} in:\n{}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
}

#[test]
fn malformed_toml_names_line_and_column() {
    let ran = run_job("[ops.fan_out\ncomponent = 'testkit'\n");
    assert_error(&ran, "invalid job file");
    assert_error(&ran, "line 6, column 13");
}

#[test]
fn unknown_fields_name_line_and_column() {
    let ran = run_job("[ops.fan_out]\ncomponent = 'testkit'\nretries = 2\n");
    assert_error(&ran, "line 8, column 1");
    assert_error(&ran, "unknown field `retries`");
}

#[test]
fn a_missing_job_file_is_reported() {
    let ran = host(["run", "/nonexistent/job.toml"]).expect_code(2);
    assert_error(&ran, "cannot read `/nonexistent/job.toml`");
}

#[test]
fn graph_errors_name_the_op_and_the_reference() {
    let cases = [
        (
            "[ops.nope]\ncomponent = 'testkit'\n",
            "op `nope`: component `testkit` has no op `nope`",
        ),
        (
            "[ops.sum]\ncomponent = 'other'\n",
            "op `sum` uses unknown component `other`",
        ),
        (
            "[ops.sum]\ncomponent = 'testkit'\n",
            "op `sum`: input `values` is not wired",
        ),
        (
            "[ops.sum]\ncomponent = 'testkit'\ninputs.values = { from = 'ghost' }\n",
            "op `sum`: input `values` reads from unknown op `ghost`",
        ),
        (
            "[ops.fan_out]\ncomponent = 'testkit'\n[ops.sum]\ncomponent = 'testkit'\ninputs.values = { from = 'fan_out' }\n",
            "op `sum`: input `values` takes dynamic output `fan_out.result` directly; use `map` or `collect`",
        ),
        (
            "[ops.flaky]\ncomponent = 'testkit'\n[ops.identity]\ncomponent = 'testkit'\ninputs.value = { map = 'flaky' }\n",
            "op `identity`: input `value` maps over `flaky.result`, which is not a dynamic output",
        ),
        (
            "[ops.flaky]\ncomponent = 'testkit'\n[ops.sum]\ncomponent = 'testkit'\ninputs.values = { collect = 'flaky' }\n",
            "op `sum`: input `values` collects `flaky.result`, which is neither a dynamic output nor the output of a mapped op",
        ),
        (
            "[ops.identity]\ncomponent = 'testkit'\ninputs.value = { from = 'identity_2' }\n\
             [ops.identity_2]\ncomponent = 'testkit'\nop = 'identity'\ninputs.value = { from = 'identity' }\n",
            "the job has a cycle: `identity",
        ),
        (
            "[ops.identity]\ncomponent = 'testkit'\ninputs.value = { value = 1 }\ninputs.extra = { value = 2 }\n",
            "op `identity` wires input `extra`, which it does not take (it takes `value`)",
        ),
    ];
    for (body, message) in cases {
        assert_error(&run_job(body), message);
    }
}

#[test]
fn a_missing_component_file_is_reported() {
    let ran = run_job("[components.gone]\npath = 'gone.wasm'\n[ops.x]\ncomponent = 'gone'\n");
    assert_error(&ran, "component `gone` is not built: there is no");
    assert_error(&ran, "gone.wasm");
    assert_error(&ran, "`build = \"...\"`, for `host build`");
}

fn inspect_bytes(bytes: &[u8]) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.wasm");
    std::fs::write(&path, bytes).unwrap();
    host(["inspect".as_ref(), path.as_os_str()]).expect_code(2)
}

#[test]
fn a_core_module_is_not_a_component() {
    let ran = inspect_bytes(b"\0asm\x01\0\0\0");
    assert_error(
        &ran,
        "is a core WebAssembly module, not a component; build it for wasm32-wasip2",
    );
}

#[test]
fn random_bytes_are_not_wasm() {
    assert_error(
        &inspect_bytes(&[0x13, 0x37, 0xca, 0xfe, 0, 1, 2, 3]),
        "is not a WebAssembly file",
    );
    // A component header followed by garbage fails to compile, cleanly.
    assert_error(
        &inspect_bytes(b"\0asm\x0d\0\x01\0\xff\xff\xff"),
        "cannot compile component",
    );
}

#[test]
fn a_component_without_the_op_export_is_rejected() {
    let path = component("not-an-op");
    let ran = host(["inspect".as_ref(), path.as_os_str()]).expect_code(2);
    assert_error(&ran, "does not implement the shoal:op interface");
    assert_error(
        &ran,
        "this host runs components that export `shoal:op/op@0.3.0` or `shoal:op/op@0.2.0` or \
         `shoal:op/op@0.1.0`",
    );
}

#[test]
fn an_op_may_not_collect_a_dynamic_output_it_is_mapped_over() {
    let mapping = format!(
        "[components.mapping]\npath = {:?}\n[ops.dynamic_values]\ncomponent = 'mapping'\n\
         [ops.echo]\ncomponent = 'mapping'\ninputs.value = {{ map = 'dynamic_values' }}\n",
        component("mapping").display().to_string()
    );
    // Dagster's own case, and the same through a step mapped over the output.
    for collected in ["dynamic_values", "echo"] {
        let job = TempJob::new(&format!(
            "{mapping}[ops.add]\ncomponent = 'mapping'\n\
             inputs.a = {{ map = 'dynamic_values' }}\ninputs.b = {{ collect = '{collected}' }}\n"
        ));
        let message = "op `add` cannot both collect over dynamic output `dynamic_values.result` \
                       (input `b`) and be downstream of it (input `a`)";
        let validated = host(["validate".as_ref(), job.path().as_os_str()]).expect_code(2);
        assert_error(&validated, message);
        let ran = job.run(&["--json"]).expect_code(2);
        let error: serde_json::Value = serde_json::from_str(ran.stdout.trim()).expect("JSON");
        assert_eq!(
            error["causes"][0], message,
            "nothing may run: {}",
            ran.stdout
        );
        assert_error(&ran, message);
    }
}

#[test]
fn a_panic_in_describe_shows_the_guest_message() {
    let path = component("describe_panics");
    let ran = host(["inspect".as_ref(), path.as_os_str()]).expect_code(2);
    // The guest's own panic message is quoted; the host does not panic.
    for expected in ["failed to describe its ops", "the op list is not ready yet"] {
        assert!(ran.stderr.contains(expected), "{}", ran.stderr);
    }
    assert!(!ran.stderr.contains("thread 'main'"), "{}", ran.stderr);
}

#[test]
fn an_op_declaring_an_input_twice_is_refused() {
    let path = component("duplicate_inputs");
    let ran = host(["inspect".as_ref(), path.as_os_str()]).expect_code(2);
    assert_error(&ran, "op `echo` declares input `x` twice");
}

#[test]
fn a_missing_import_is_named_with_a_hint() {
    let testkit = std::fs::read(component("testkit")).unwrap();
    let counts = TopLevel::of(&testkit);
    for (import, hint) in [
        ("wasi:http/types@0.2.0", "ops have no network access"),
        ("shoal:op/log@0.4.0", "this host implements shoal:op@0.3.0"),
        ("example:thing/api", "ops may import WASI 0.2"),
    ] {
        let mut sections = wasm_encoder::Component::new();
        // An instance exporting one function `f: func()`: an empty one would match anything.
        let mut instance = wasm_encoder::InstanceType::new();
        instance
            .ty()
            .function()
            .params(Vec::<(&str, wasm_encoder::ComponentValType)>::new())
            .result(None);
        instance.export("f", wasm_encoder::ComponentTypeRef::Func(0));
        let mut types = wasm_encoder::ComponentTypeSection::new();
        types.instance(&instance);
        let mut imports = wasm_encoder::ComponentImportSection::new();
        // The type just added comes after the component's own types.
        imports.import(
            import,
            wasm_encoder::ComponentTypeRef::Instance(counts.types),
        );
        sections.section(&types).section(&imports);
        let ran = inspect_bytes(&with_sections(&testkit, &sections));
        assert_error(
            &ran,
            &format!("imports `{import}`, which the host does not provide to ops"),
        );
        assert_error(&ran, hint);
    }
}
