//! Values given to op inputs (Dagster's `input_values`): in the job file
//! (`inputs.x = { value = ... }`), in run config (`[ops.NAME.inputs] x = ...`) or at launch
//! (`--input op.x=JSON`), each over the one before. A value may go to an input nothing is wired
//! to, or replace the wiring from an op the selection leaves out; never the wiring from an op
//! that runs. Every value is checked against the schema the op declares for the input before
//! anything runs.

use std::collections::HashSet;
use std::str::FromStr;

use indexmap::IndexMap;

use crate::job::{InputSpec, Job, RunConfig};
use crate::plan::{InputSource, Plan, PlanError};
use crate::value;

/// Input values by op, then by input.
pub type InputValues = IndexMap<String, IndexMap<String, toml::Value>>;

/// Where a value given to an input comes from, as errors name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    RunConfig,
    Launch,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Origin::RunConfig => "the run config",
            Origin::Launch => "`--input`",
        })
    }
}

/// Why a value given to an input cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("{origin} gives a value to input `{input}` of op `{op}`, which the job does not have")]
    UnknownOp {
        op: String,
        input: String,
        origin: Origin,
    },
    #[error(
        "{origin} gives a value to input `{input}` of op `{op}`, but the selection leaves `{op}` out"
    )]
    NotSelected {
        op: String,
        input: String,
        origin: Origin,
    },
    #[error(
        "{origin} gives a value to input `{input}` of op `{op}`, which reads from op \
         `{upstream}`: a value can replace that only when the selection leaves `{upstream}` out"
    )]
    Wired {
        op: String,
        input: String,
        upstream: String,
        origin: Origin,
    },
    #[error(
        "{origin} gives a value to input `{input}` of op `{op}`, which does not take it (it \
         takes {expected})"
    )]
    UnknownInput {
        op: String,
        input: String,
        expected: String,
        origin: Origin,
    },
    #[error(
        "op `{op}`: input `{input}` is given {value}, which does not have the shape the op \
         declares: {problems}"
    )]
    Mismatch {
        op: String,
        input: String,
        /// The value as JSON, cut short.
        value: String,
        problems: String,
    },
}

/// The values given in run config and at launch, the latter winning, each with its origin.
#[derive(Debug, Clone, Default)]
pub struct Given(IndexMap<(String, String), (toml::Value, Origin)>);

impl Given {
    /// `run_config`'s values with `launch`'s over them.
    pub fn layered(run_config: &InputValues, launch: &InputValues) -> Given {
        let mut given = Given::default();
        for (values, origin) in [(run_config, Origin::RunConfig), (launch, Origin::Launch)] {
            for (op, inputs) in values {
                for (input, value) in inputs {
                    let key = (op.clone(), input.clone());
                    given.0.insert(key, (value.clone(), origin));
                }
            }
        }
        given
    }

    /// Wires each given value into `job` as a literal, over what the job file says; `selected`
    /// are the ops that run.
    pub fn apply(&self, job: &mut Job, selected: &HashSet<String>) -> Result<(), InputError> {
        for ((op, input), (value, origin)) in &self.0 {
            let (op, input, origin) = (op.clone(), input.clone(), *origin);
            let Some(spec) = job.ops.get(&op) else {
                return Err(InputError::UnknownOp { op, input, origin });
            };
            if !selected.contains(&op) {
                return Err(InputError::NotSelected { op, input, origin });
            }
            if let Some(source) = spec.inputs.get(&input).and_then(InputSpec::reference)
                && selected.contains(&source.op)
            {
                let upstream = source.op.clone();
                return Err(InputError::Wired {
                    op,
                    input,
                    upstream,
                    origin,
                });
            }
            let spec = job.ops.get_mut(&op).expect("found above");
            spec.inputs.insert(input, InputSpec::Value(value.clone()));
        }
        Ok(())
    }

    /// `error` said of a given value when it is about one: an input the op does not take.
    pub fn explain(&self, error: &PlanError) -> Option<InputError> {
        let PlanError::UnknownInput {
            op,
            input,
            expected,
        } = error
        else {
            return None;
        };
        let (_, origin) = self.0.get(&(op.clone(), input.clone()))?;
        Some(InputError::UnknownInput {
            op: op.clone(),
            input: input.clone(),
            expected: expected.clone(),
            origin: *origin,
        })
    }
}

/// Checks every literal input of `plan` (from the job file, run config or launch) against the
/// schema its op declares for the input, if any.
pub fn check_values(plan: &Plan) -> Result<(), InputError> {
    for node in &plan.nodes {
        for input in &node.inputs {
            let InputSource::Value(bytes) = &input.source else {
                continue;
            };
            let declared = node.op.inputs.iter().find(|i| i.name == input.name);
            let Some(schema) = declared.and_then(|i| i.schema.as_deref()) else {
                continue;
            };
            let mismatch = |problems: Vec<String>| InputError::Mismatch {
                op: node.name.clone(),
                input: input.name.clone(),
                value: value::preview(bytes),
                problems: problems.join("; "),
            };
            // Compiled when the component was loaded, so this fails only if the op changed since.
            let schema = crate::schema::compile(schema).map_err(|reason| mismatch(vec![reason]))?;
            crate::schema::check(&schema, &value::to_json(bytes)).map_err(mismatch)?;
        }
    }
    Ok(())
}

/// One `--input OP.INPUT=VALUE`: VALUE is JSON, or else a string.
#[derive(Debug, Clone, PartialEq)]
pub struct InputArg {
    pub op: String,
    pub input: String,
    pub value: toml::Value,
}

impl FromStr for InputArg {
    type Err = String;

    fn from_str(text: &str) -> Result<InputArg, String> {
        let shape = || format!("`{text}` is not OP.INPUT=VALUE (e.g. `add.a=5`)");
        let (target, raw) = text.split_once('=').ok_or_else(shape)?;
        let (op, input) = target.split_once('.').ok_or_else(shape)?;
        if op.is_empty() || input.is_empty() {
            return Err(shape());
        }
        let value = match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(json) => from_json(&json)?,
            // Text that is meant as JSON but is not: a typo, not a string.
            Err(err) if raw.trim_start().starts_with(['[', '{', '"']) => {
                return Err(format!("`{raw}` is not valid JSON ({err})"));
            }
            Err(_) => toml::Value::String(raw.to_string()),
        };
        Ok(InputArg {
            op: op.to_string(),
            input: input.to_string(),
            value,
        })
    }
}

/// The values `run`'s `[ops.NAME.inputs]` tables give.
pub fn of_run_config(run: &RunConfig) -> InputValues {
    run.ops
        .iter()
        .filter(|(_, op)| !op.inputs.is_empty())
        .map(|(name, op)| (name.clone(), op.inputs.clone().into_iter().collect()))
        .collect()
}

/// `args` by op and input; a later one for the same input wins.
pub fn by_input(args: &[InputArg]) -> InputValues {
    let mut values = InputValues::new();
    for arg in args {
        values
            .entry(arg.op.clone())
            .or_default()
            .insert(arg.input.clone(), arg.value.clone());
    }
    values
}

/// A JSON value as the TOML value a job file would give; `null` and integers past 64 bits
/// have none.
pub fn from_json(json: &serde_json::Value) -> Result<toml::Value, String> {
    use serde_json::Value as Json;
    Ok(match json {
        Json::Null => {
            return Err(
                "`null` cannot be given: input values are TOML's, which has no null".into(),
            );
        }
        Json::Bool(b) => toml::Value::Boolean(*b),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => toml::Value::Integer(i),
            (None, Some(_)) if n.is_u64() => {
                return Err(format!(
                    "{n} is larger than an input value may be ({})",
                    i64::MAX
                ));
            }
            (None, Some(f)) => toml::Value::Float(f),
            (None, None) => return Err(format!("{n} is not a number an input value may be")),
        },
        Json::String(s) => toml::Value::String(s.clone()),
        Json::Array(items) => {
            toml::Value::Array(items.iter().map(from_json).collect::<Result<_, _>>()?)
        }
        Json::Object(fields) => toml::Value::Table(
            fields
                .iter()
                .map(|(k, v)| Ok((k.clone(), from_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(text: &str) -> Result<InputArg, String> {
        text.parse()
    }

    #[test]
    fn input_args_take_json_or_else_a_string() {
        let value = |text: &str| arg(text).unwrap().value;
        assert_eq!(value("add.a=5"), toml::Value::Integer(5));
        assert_eq!(value("add.a=-2.5"), toml::Value::Float(-2.5));
        assert_eq!(value("add.a=true"), toml::Value::Boolean(true));
        assert_eq!(value("add.a=\"5\""), toml::Value::String("5".into()));
        assert_eq!(value("add.a=hello"), toml::Value::String("hello".into()));
        assert_eq!(value("add.a=a=b"), toml::Value::String("a=b".into()));
        assert_eq!(value("add.a="), toml::Value::String(String::new()));
        let list: toml::Value = toml::from_str("v = [1, { b = 'x' }]").unwrap();
        assert_eq!(value("add.a=[1, {\"b\": \"x\"}]"), list["v"]);
        let parsed = arg("add.a.b=1").unwrap();
        assert_eq!((parsed.op.as_str(), parsed.input.as_str()), ("add", "a.b"));
    }

    #[test]
    fn malformed_input_args_are_errors_quoting_them() {
        for text in ["add", "add=5", ".a=5", "add.=5"] {
            assert_eq!(
                arg(text).unwrap_err(),
                format!("`{text}` is not OP.INPUT=VALUE (e.g. `add.a=5`)")
            );
        }
        let err = arg("add.a=[1, 2").unwrap_err();
        assert!(err.starts_with("`[1, 2` is not valid JSON ("), "{err}");
        assert!(
            arg("add.a=null")
                .unwrap_err()
                .contains("`null` cannot be given")
        );
        let err = arg("add.a=18446744073709551615").unwrap_err();
        assert!(err.contains("18446744073709551615 is larger"), "{err}");
    }

    #[test]
    fn launch_values_win_over_run_config_and_later_flags_over_earlier() {
        let launch = by_input(&[arg("add.a=1").unwrap(), arg("add.a=2").unwrap()]);
        let mut run_config = InputValues::new();
        run_config
            .entry("add".into())
            .or_default()
            .insert("a".into(), 9.into());
        run_config
            .entry("add".into())
            .or_default()
            .insert("b".into(), 8.into());
        let given = Given::layered(&run_config, &launch);
        let a = &given.0[&("add".to_string(), "a".to_string())];
        let b = &given.0[&("add".to_string(), "b".to_string())];
        assert_eq!(a, &(toml::Value::Integer(2), Origin::Launch));
        assert_eq!(b, &(toml::Value::Integer(8), Origin::RunConfig));
    }

    /// `emit` -> `add` (with `b` from `one`).
    fn job() -> Job {
        toml::from_str(
            "[components.c]\npath = 'c.wasm'\n[ops.emit]\ncomponent = 'c'\n\
             [ops.one]\ncomponent = 'c'\n\
             [ops.add]\ncomponent = 'c'\ninputs.a = { map = 'emit' }\ninputs.b = { from = 'one' }\n",
        )
        .unwrap()
    }

    fn given(op: &str, input: &str) -> Given {
        let launch = by_input(&[arg(&format!("{op}.{input}=5")).unwrap()]);
        Given::layered(&InputValues::new(), &launch)
    }

    #[test]
    fn a_value_replaces_only_wiring_from_an_op_that_does_not_run() {
        let selected: HashSet<String> = ["add", "one"].map(String::from).into();
        let mut job = job();
        given("add", "a").apply(&mut job, &selected).unwrap();
        assert_eq!(job.ops["add"].inputs["a"], InputSpec::Value(5.into()));
        let err = given("add", "b").apply(&mut job, &selected).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`--input` gives a value to input `b` of op `add`, which reads from op `one`: a \
             value can replace that only when the selection leaves `one` out"
        );
        let err = given("emit", "x").apply(&mut job, &selected).unwrap_err();
        assert!(matches!(err, InputError::NotSelected { .. }), "{err}");
        let err = given("nope", "x").apply(&mut job, &selected).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`--input` gives a value to input `x` of op `nope`, which the job does not have"
        );
    }

    #[test]
    fn an_unknown_input_is_explained_as_the_given_value() {
        let error = PlanError::UnknownInput {
            op: "add".into(),
            input: "z".into(),
            expected: "`a`, `b`".into(),
        };
        let err = given("add", "z").explain(&error).unwrap();
        assert_eq!(
            err.to_string(),
            "`--input` gives a value to input `z` of op `add`, which does not take it (it takes \
             `a`, `b`)"
        );
        assert_eq!(given("add", "a").explain(&error), None);
    }
}
