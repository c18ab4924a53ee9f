//! CBOR from guests: the checks a yielded value goes through, and its rendering as JSON, must
//! never panic, overflow the stack or allocate without bound.
#![no_main]

use host::limits::Limits;
use host::op_info::OpInfo;
use host::outputs::{DynamicValue, OutputGuard};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let op = OpInfo::new("op", &[], &[("result", true)]);
    let mut guard = OutputGuard::new(&op, &Limits::DEFAULT);
    let value = DynamicValue {
        output: "result".into(),
        key: "k".into(),
        value: data.to_vec(),
        metadata: Default::default(),
    };
    let accepted = guard.accept_dynamic(value).is_ok();
    assert_eq!(accepted, host::value::check(data).is_ok());
    // Rendering must be total, whatever the bytes.
    let _ = host::value::to_json(data);
    if accepted {
        // `collect` wraps accepted values in a list without decoding them: the list must be
        // well-formed too, one level deeper than a guest may send.
        let list = host::value::array([data].into_iter());
        assert!(!host::value::to_json(&list).is_null());
    }
});
