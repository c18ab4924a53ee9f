//! CBOR from guests: the checks a yielded value goes through, and its rendering as JSON, must
//! never panic, overflow the stack or allocate without bound.
#![no_main]

use host::limits::Limits;
use host::op_info::{OpInfo, OutputInfo};
use host::outputs::{DynamicValue, OutputGuard};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let op = OpInfo {
        name: "op".into(),
        description: String::new(),
        inputs: vec![],
        outputs: vec![OutputInfo { name: "result".into(), dynamic: true, description: String::new() }],
    };
    let mut guard = OutputGuard::new(&op, &Limits::DEFAULT);
    let value = DynamicValue { output: "result".into(), key: "k".into(), value: data.to_vec() };
    let accepted = guard.accept_dynamic(value).is_ok();
    assert_eq!(accepted, host::value::decode(data).is_ok());
    if let Ok(value) = host::value::decode(data) {
        let _ = host::value::to_json(data);
        // What the host accepted it can encode again, and that decodes.
        let again = host::value::encode(&value);
        host::value::decode(&again).expect("re-encoded value decodes");
        // `collect` wraps accepted values in a list without decoding them; the consuming guest
        // must read back exactly those values. (The list nests one level deeper than the host
        // accepts from guests, so read it as a guest does, with ciborium's own depth limit.)
        let list = host::value::array([data].into_iter());
        let read: ciborium::Value = ciborium::from_reader(list.as_slice()).expect("a list of valid values decodes");
        assert_eq!(read.as_array().map(Vec::len), Some(1));
    }
});
