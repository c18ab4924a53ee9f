//! An op component written straight against `shoal:op@0.1.0` (`wit/0.1.0/op.wit`), as a third
//! party built before 0.2.0: the host must still describe and run it. Its ops yield, log and
//! fail through the 0.1.0 imports, so every converted path is exercised.

wit_bindgen::generate!({ path: "../../wit/0.1.0/op.wit", world: "op-component" });

use exports::shoal::op::op::Guest;
use shoal::op::types::{Context, DynamicValue, NamedValue, OpError, OpInfo, OutputInfo, Outputs};
use shoal::op::{emit, log};

fn output(name: &str, dynamic: bool) -> OutputInfo {
    OutputInfo {
        name: name.to_string(),
        dynamic,
        description: String::new(),
    }
}

fn cbor(value: i64) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(&value, &mut bytes).expect("writing to a Vec");
    bytes
}

struct Legacy;

impl Guest for Legacy {
    fn describe() -> Vec<OpInfo> {
        vec![
            OpInfo {
                name: "count".to_string(),
                description: "yields 1..=3 keyed by the value".to_string(),
                inputs: Vec::new(),
                outputs: vec![output("result", true)],
            },
            OpInfo {
                name: "double".to_string(),
                description: "doubles its input; fails on 3".to_string(),
                inputs: vec!["value".to_string()],
                outputs: vec![output("result", false)],
            },
        ]
    }

    fn run(name: String, _ctx: Context, inputs: Vec<NamedValue>) -> Result<Outputs, OpError> {
        let mut outputs = Outputs {
            values: Vec::new(),
            dynamic: Vec::new(),
        };
        if name == "count" {
            for i in 1..=3 {
                let value = DynamicValue {
                    output: "result".to_string(),
                    mapping_key: i.to_string(),
                    value: cbor(i),
                };
                emit::yield_output(&value).map_err(OpError::Failed)?;
            }
            return Ok(outputs);
        }
        let input = inputs.first().ok_or(OpError::BadInput("no input".into()))?;
        let value: i64 = ciborium::from_reader(input.value.as_slice())
            .map_err(|err| OpError::BadInput(err.to_string()))?;
        log::log(log::Level::Info, &format!("doubling {value}"));
        if value == 3 {
            return Err(OpError::RetryRequested("three is unlucky".to_string()));
        }
        outputs.values.push(NamedValue {
            name: "result".to_string(),
            value: cbor(value * 2),
        });
        Ok(outputs)
    }
}

export!(Legacy);
