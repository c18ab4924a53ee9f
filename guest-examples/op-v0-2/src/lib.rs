//! An op component written straight against `shoal:op@0.2.0` (`wit/0.2.0/op.wit`), as a third
//! party built before 0.3.0: the host must still describe and run it (every output required,
//! no tags, no events). Its ops declare schemas, yield, log and fail through the 0.2.0
//! imports, so every converted path is exercised.

wit_bindgen::generate!({ path: "../../wit/0.2.0/op.wit", world: "op-component" });

use exports::shoal::op::op::Guest;
use shoal::op::types::{
    Context, DynamicValue, InputInfo, NamedValue, OpError, OpInfo, OutputInfo, Outputs,
};
use shoal::op::{emit, log};

const INTEGER: &str = r#"{"type": "integer"}"#;

fn output(name: &str, dynamic: bool) -> OutputInfo {
    OutputInfo {
        name: name.to_string(),
        dynamic,
        description: String::new(),
        schema: Some(INTEGER.to_string()),
    }
}

fn cbor(value: i64) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(&value, &mut bytes).expect("writing to a Vec");
    bytes
}

struct V0_2;

impl Guest for V0_2 {
    fn describe() -> Vec<OpInfo> {
        vec![
            OpInfo {
                name: "count".to_string(),
                description: "yields 1..=3 keyed by the value".to_string(),
                inputs: Vec::new(),
                outputs: vec![output("result", true)],
                config_schema: None,
            },
            OpInfo {
                name: "triple".to_string(),
                description: "triples its input; fails on 3".to_string(),
                inputs: vec![InputInfo {
                    name: "value".to_string(),
                    description: "a number".to_string(),
                    schema: Some(INTEGER.to_string()),
                }],
                outputs: vec![output("result", false)],
                config_schema: None,
            },
        ]
    }

    fn run(name: String, ctx: Context, inputs: Vec<NamedValue>) -> Result<Outputs, OpError> {
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
        log::log(
            log::Level::Info,
            &format!("tripling {value} in {}", ctx.step_key),
        );
        if value == 3 {
            return Err(OpError::Failed("three is not for tripling".to_string()));
        }
        outputs.values.push(NamedValue {
            name: "result".to_string(),
            value: cbor(value * 3),
        });
        Ok(outputs)
    }
}

export!(V0_2);
