//! Values from components written without the SDK: every well-formed CBOR value is routed, and
//! rendered as JSON without losing it (README, "Values as JSON").

use host::store::RunStore;
use serde_json::json;

use crate::support::{TempJob, host_command, of_kind};

/// A job yielding raw CBOR `values` (mapping key, hex) from `raw_emit`, each passed through
/// `identity` when `through_identity`.
fn raw_job(values: &[(&str, &str)], through_identity: bool) -> TempJob {
    let values: Vec<String> = values
        .iter()
        .map(|(key, hex)| format!("['{key}', '{hex}']"))
        .collect();
    let mut body = format!(
        "[ops.raw_emit]\ncomponent = 'testkit'\nconfig = {{ values = [{}] }}\n",
        values.join(", ")
    );
    if through_identity {
        body.push_str(
            "[ops.identity]\ncomponent = 'testkit'\ninputs.value = { map = 'raw_emit' }\n",
        );
    }
    TempJob::new(&body)
}

#[test]
fn well_formed_values_the_sdk_never_writes_are_routed_and_rendered() {
    let job = raw_job(
        &[
            ("simple_16", "f0"),
            ("simple_255", "f8ff"),
            ("undefined", "f7"),
            ("half_nan", "f97e00"),
            ("minus_infinity", "f9fc00"),
            ("bignum", "c249010000000000000000"),
            ("negative_bignum", "c349010000000000000000"),
            ("small_bignum", "c24107"),
            ("int_and_text_keys", "a20163696e74613163747874"),
            ("repeated_keys", "a2616101616102"),
            ("indefinite", "9f0102ff"),
            ("not_utf8", "62ff61"),
        ],
        false,
    );
    let ran = job.run(&[]).expect_code(0);
    assert_eq!(
        ran.json(),
        json!({"raw_emit": {
            "simple_16": "simple(16)",
            "simple_255": "simple(255)",
            "undefined": null,
            "half_nan": "NaN",
            "minus_infinity": "-Infinity",
            "bignum": "18446744073709551616",
            "negative_bignum": "-18446744073709551617",
            "small_bignum": 7,
            "int_and_text_keys": {"1": "int", "\"1\"": "txt"},
            "repeated_keys": [["a", 1], ["a", 2]],
            "indefinite": [1, 2],
            "not_utf8": "\u{fffd}a",
        }})
    );
}

#[test]
fn malformed_values_are_still_refused() {
    // A reserved additional-information value, and a two-byte simple value below 32.
    for hex in ["1c", "f810"] {
        let job = raw_job(&[("k", hex)], false);
        let events = job.run(&["--json"]).expect_code(1).events();
        let failure = of_kind(&events, "STEP_FAILURE");
        assert_eq!(
            failure[0]["error_kind"], "invalid_cbor",
            "{hex}: {failure:?}"
        );
    }
}

#[test]
fn null_nan_and_infinite_outputs_are_kept_in_final_outputs_and_the_store() {
    let job = raw_job(
        &[("a", "f6"), ("b", "01"), ("c", "f97e00"), ("d", "f97c00")],
        true,
    );
    let store = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        crate::support::Ran::from(
            host_command()
                .env("SHOAL_STORE", store.path())
                .args(args)
                .output()
                .unwrap(),
        )
    };
    let job_path = job.path();
    let ran = run(&["run", job_path.to_str().unwrap()]).expect_code(0);
    let expected = json!({"a": null, "b": 1, "c": "NaN", "d": "Infinity"});
    assert_eq!(ran.json(), json!({ "identity": expected }));
    let id = host::store::SqliteStore::open(store.path())
        .unwrap()
        .runs()
        .unwrap()[0]
        .id
        .clone();
    let stored = run(&["output", &id, "identity"]).expect_code(0);
    assert_eq!(stored.json(), expected);
}
