//! The execution plan: the job's ops as a checked graph, before anything runs.
//!
//! Building a plan resolves every input to an op and output, checks it against what the
//! components describe, rejects cycles, and computes each op's *scope*: the dynamic outputs it
//! is mapped over, outermost first. An op with an empty scope runs once; an op mapped over one
//! dynamic output runs once per mapping key (`op[k]`); `collect` closes the innermost map.

use std::collections::HashMap;
use std::path::PathBuf;

use indexmap::IndexMap;
use petgraph::algo::toposort;
use petgraph::graph::DiGraph;

use crate::digest::Digest;
use crate::job::{CollectSpec, DirGrant, InputSpec, LoadedJob, OutputRef, Unmatched};
use crate::limits::{LimitError, Limits};
use crate::name::{self, NameError};
use crate::op_info::{OpInfo, join};
use crate::retry::RetryPolicy;
use crate::step_key::StepKey;
use crate::value;
pub use pools::Pools;

/// Why a job's graph is not valid. Every message names the op and the bad reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("invalid op name `{op}`: {reason}")]
    InvalidName { op: String, reason: NameError },
    #[error("component `{component}` was not loaded")]
    NotLoaded { component: String },
    #[error("op `{op}` uses unknown component `{component}`")]
    UnknownComponent { op: String, component: String },
    #[error("op `{op}`: component `{component}` has no op `{name}` (it has {available})")]
    UnknownOp {
        op: String,
        component: String,
        name: String,
        available: String,
    },
    #[error(
        "op `{op}`: input `{input}` is not wired: wire it (`inputs.{input} = {{ from = \"OP\" }}`) \
         or give it a value (`inputs.{input} = {{ value = ... }}`, `[ops.{op}.inputs]` in run \
         config, or `--input {op}.{input}=JSON`)"
    )]
    UnwiredInput { op: String, input: String },
    #[error("op `{op}` wires input `{input}`, which it does not take (it takes {expected})")]
    UnknownInput {
        op: String,
        input: String,
        expected: String,
    },
    #[error("op `{op}`: input `{input}` reads from unknown op `{source_op}`")]
    UnknownSource {
        op: String,
        input: String,
        source_op: String,
    },
    #[error(
        "op `{op}`: input `{input}` reads output `{output}` of `{source_op}`, which has {available}"
    )]
    UnknownOutput {
        op: String,
        input: String,
        source_op: String,
        output: String,
        available: String,
    },
    #[error(
        "op `{op}`: input `{input}` must name one of the outputs of `{source_op}` ({available}) with `output = \"...\"`"
    )]
    AmbiguousOutput {
        op: String,
        input: String,
        source_op: String,
        available: String,
    },
    #[error(
        "op `{op}`: input `{input}` takes dynamic output `{source_op}.{output}` directly; use `map` or `collect`"
    )]
    DynamicWithoutMap {
        op: String,
        input: String,
        source_op: String,
        output: String,
    },
    #[error(
        "op `{op}`: input `{input}` maps over `{source_op}.{output}`, which is not a dynamic output"
    )]
    MapOfNonDynamic {
        op: String,
        input: String,
        source_op: String,
        output: String,
    },
    #[error(
        "op `{op}`: input `{input}` collects `{source_op}.{output}`, which is neither a dynamic output nor the output of a mapped op"
    )]
    CollectOfUnmapped {
        op: String,
        input: String,
        source_op: String,
        output: String,
    },
    #[error(
        "op `{op}` is downstream of two unrelated dynamic outputs, `{first}` and `{second}`; collect one of them first"
    )]
    TwoDynamicSources {
        op: String,
        first: String,
        second: String,
    },
    #[error(
        "op `{op}` cannot both collect over dynamic output `{dynamic}` (input `{collecting}`) and be downstream of it (input `{mapped}`)"
    )]
    CollectWhileMapped {
        op: String,
        dynamic: String,
        collecting: String,
        mapped: String,
    },
    #[error("op `{op}`: its config does not have the shape the op declares: {problems}")]
    Config { op: String, problems: String },
    #[error("the job has a cycle: {}", cycle.iter().map(|op| format!("`{op}`")).collect::<Vec<_>>().join(" -> "))]
    Cycle {
        /// The ops around the cycle, the first again at the end.
        cycle: Vec<String>,
    },
    #[error("op `{op}`: {source}")]
    Limit { op: String, source: LimitError },
    #[error(
        "op `{op}`: input `{input}` zips `{source_op}.{output}`, but the op maps over nothing to zip it with; give one input `map` without `zip`"
    )]
    ZipWithoutMap {
        op: String,
        input: String,
        source_op: String,
        output: String,
    },
    #[error(
        "op `{op}`: input `{input}` zips `{source_op}.{output}` with `{mapped}`, which are not yielded at the same level of mapping (their producers must be cloned alike)"
    )]
    ZipScope {
        op: String,
        input: String,
        source_op: String,
        output: String,
        mapped: String,
    },
    #[error(
        "op `{op}`: input `{input}` takes the failures of `{source_op}`, which needs another input collecting `{source_op}` with `min_success`"
    )]
    FailuresWithoutPartialCollect {
        op: String,
        input: String,
        source_op: String,
    },
    #[error(
        "op `{op}`: input `{input}` sets `min_success` on dynamic output `{source_op}.{output}`, whose values cannot fail; collect a mapped op's clones"
    )]
    MinSuccessOfValues {
        op: String,
        input: String,
        source_op: String,
        output: String,
    },
}

impl PlanError {
    /// The op the error is about and, when it is about one of its inputs, that input: where
    /// to point in the job file.
    pub fn place(&self) -> Option<(&str, Option<&str>)> {
        use PlanError::*;
        match self {
            UnwiredInput { op, input }
            | UnknownInput { op, input, .. }
            | UnknownSource { op, input, .. }
            | UnknownOutput { op, input, .. }
            | AmbiguousOutput { op, input, .. }
            | DynamicWithoutMap { op, input, .. }
            | MapOfNonDynamic { op, input, .. }
            | CollectOfUnmapped { op, input, .. }
            | ZipWithoutMap { op, input, .. }
            | ZipScope { op, input, .. }
            | FailuresWithoutPartialCollect { op, input, .. }
            | MinSuccessOfValues { op, input, .. }
            | CollectWhileMapped {
                op,
                collecting: input,
                ..
            } => Some((op, Some(input))),
            InvalidName { op, .. }
            | UnknownComponent { op, .. }
            | UnknownOp { op, .. }
            | TwoDynamicSources { op, .. }
            | Config { op, .. }
            | Limit { op, .. } => Some((op, None)),
            Cycle { cycle } => cycle.first().map(|op| (op.as_str(), None)),
            NotLoaded { .. } => None,
        }
    }
}

/// An output of an op of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source {
    /// Index of the op in [`Plan::nodes`].
    pub node: usize,
    pub output: String,
}

/// Where one input of a step gets its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    /// The value of a non-dynamic output; of the clone with the same keys when it is mapped.
    From(Source),
    /// The value of a dynamic output whose key clones this op.
    Map(Source),
    /// The value with the clone's mapping key of a second dynamic output, yielded at the same
    /// level as the one the op maps over.
    Zip(Source, Unmatched),
    /// The list of a dynamic output's values, or of a mapped op's clones' values (see the
    /// input's [`CollectSpec`]).
    Collect(Source),
    /// The clones of a mapped op that a partial-success collect of it went without, as a map
    /// from mapping key to error.
    Failures(Source),
    /// A literal, as CBOR.
    Value(Vec<u8>),
}

impl InputSource {
    /// The op output the input reads, unless it is a literal.
    pub fn source(&self) -> Option<&Source> {
        match self {
            InputSource::From(s)
            | InputSource::Map(s)
            | InputSource::Zip(s, _)
            | InputSource::Collect(s)
            | InputSource::Failures(s) => Some(s),
            InputSource::Value(_) => None,
        }
    }
}

/// A wired input.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub name: String,
    pub source: InputSource,
    /// How a collect input gathers; the default for every other input.
    pub collect: CollectSpec,
}

/// One op of the plan.
#[derive(Debug, Clone)]
pub struct Node {
    /// The op's name in the job (unique), e.g. `echo_2`.
    pub name: String,
    /// Index into [`Plan::components`].
    pub component: usize,
    /// What the component says about the op.
    pub op: OpInfo,
    /// The op's config table as CBOR.
    pub config: Vec<u8>,
    pub inputs: Vec<Input>,
    /// Dynamic outputs this op is mapped over, outermost first.
    pub scope: Vec<Source>,
    /// Directories granted to the op.
    pub dirs: Vec<DirGrant>,
    /// Host environment variables the op may read.
    pub env: Vec<String>,
    /// What one attempt may consume.
    pub limits: Limits,
    /// How failed attempts are retried.
    pub retry: RetryPolicy,
    /// The step's tags (job's, then op's, then run's), sorted by key.
    pub tags: Vec<(String, String)>,
    /// Most steps of this op running at once.
    pub max_concurrent: Option<usize>,
    /// Ops to reconsider when a step of this op finishes: those reading its outputs, and those
    /// collecting clones that this op's dynamic outputs created.
    pub dependents: Vec<usize>,
}

impl Node {
    /// How many mapping keys a step of this op carries.
    pub fn depth(&self) -> usize {
        self.scope.len()
    }
}

/// A component of the plan: where it was read from, and the digest of the bytes read, by which
/// a step names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub path: PathBuf,
    pub digest: Digest,
}

/// What a loaded component is: the digest of its bytes and the ops it describes.
#[derive(Debug, Clone)]
pub struct Described {
    pub digest: Digest,
    pub ops: Vec<OpInfo>,
}

/// A checked job, ready to execute.
#[derive(Debug, Clone)]
pub struct Plan {
    pub job_name: String,
    /// Components, in job order.
    pub components: Vec<Component>,
    /// Ops, in job order.
    pub nodes: Vec<Node>,
    /// The concurrency pools the ops' steps take places in.
    pub pools: Pools,
}

impl Plan {
    /// Index of the op called `name`.
    pub fn node(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|node| node.name == name)
    }

    /// Reads back a rendered step key such as `op[a][b]`; `None` unless it names an op of the
    /// plan with as many mapping keys as the op's depth.
    pub fn step_key(&self, text: &str) -> Option<StepKey> {
        let (name, keys) = crate::step_key::parse(text)?;
        let node = self.node(name)?;
        let keys: Vec<String> = keys.into_iter().map(str::to_string).collect();
        (keys.len() == self.nodes[node].depth()).then(|| StepKey::new(node, keys))
    }

    /// Ops no other op reads from: their outputs are the run's final outputs.
    pub fn leaves(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| {
            !self.nodes.iter().any(|node| {
                node.inputs
                    .iter()
                    .any(|input| input.source.source().is_some_and(|s| s.node == i))
            })
        })
    }
}

/// Builds and checks the plan of `job`; `described` holds every component of the job, by name.
pub fn build(job: &LoadedJob, described: &IndexMap<String, Described>) -> Result<Plan, PlanError> {
    let index: HashMap<&str, usize> = job
        .job
        .ops
        .keys()
        .enumerate()
        .map(|(i, name)| (name.as_str(), i))
        .collect();
    let components = job
        .job
        .components
        .iter()
        .map(|(name, spec)| match described.get(name) {
            Some(loaded) => Ok(Component {
                path: spec.origin(name),
                digest: loaded.digest,
            }),
            None => Err(PlanError::NotLoaded {
                component: name.clone(),
            }),
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut nodes = Vec::with_capacity(job.job.ops.len());
    for (name, spec) in &job.job.ops {
        name::check(name).map_err(|reason| PlanError::InvalidName {
            op: name.clone(),
            reason,
        })?;
        let component = job
            .job
            .components
            .get_index_of(&spec.component)
            .ok_or_else(|| PlanError::UnknownComponent {
                op: name.clone(),
                component: spec.component.clone(),
            })?;
        let op_name = spec.op.as_deref().unwrap_or(name);
        let described = described
            .get(&spec.component)
            .map(|loaded| loaded.ops.as_slice())
            .unwrap_or_default();
        let op = described
            .iter()
            .find(|op| op.name == op_name)
            .ok_or_else(|| PlanError::UnknownOp {
                op: name.clone(),
                component: spec.component.clone(),
                name: op_name.to_string(),
                available: join(described.iter().map(|op| op.name.as_str())),
            })?;
        let limits =
            Limits::layered(&job.job.limits, &spec.limits).map_err(|source| PlanError::Limit {
                op: name.clone(),
                source,
            })?;
        let config = value::encode(&value::from_toml(&toml::Value::Table(spec.config.clone())));
        check_config(name, op, &config)?;
        nodes.push(Node {
            name: name.clone(),
            component,
            op: op.clone(),
            config,
            inputs: Vec::new(),
            scope: Vec::new(),
            dirs: spec.dirs.clone(),
            env: spec.env.clone(),
            limits,
            retry: RetryPolicy::layered(&job.job.retry, &spec.retry),
            tags: job.job.step_tags(spec),
            max_concurrent: spec.max_concurrent.map(|cap| cap.get()),
            dependents: Vec::new(),
        });
    }

    for (i, spec) in job.job.ops.values().enumerate() {
        let inputs = resolve_inputs(&nodes[i], &spec.inputs, &nodes, &index)?;
        nodes[i].inputs = inputs;
    }

    for i in topological_order(&nodes)? {
        nodes[i].scope = scope_of(&nodes[i], &nodes)?;
    }
    link_dependents(&mut nodes);
    let limits = job.job.execution.tag_concurrency_limits.as_deref();
    let pools = pools::resolve(&nodes, limits.unwrap_or_default());

    Ok(Plan {
        job_name: job.name.clone(),
        components,
        nodes,
        pools,
    })
}

/// Checks op `name`'s config (as CBOR) against the schema its op declares, if any.
fn check_config(name: &str, op: &OpInfo, config: &[u8]) -> Result<(), PlanError> {
    let Some(schema) = &op.config_schema else {
        return Ok(());
    };
    let config_error = |problems: Vec<String>| PlanError::Config {
        op: name.to_string(),
        problems: problems.join("; "),
    };
    // Compiled when the component was loaded, so this fails only if the op changed since.
    let schema = crate::schema::compile(schema).map_err(|reason| config_error(vec![reason]))?;
    crate::schema::check(&schema, &value::to_json(config)).map_err(config_error)
}

fn resolve_inputs(
    node: &Node,
    specs: &IndexMap<String, InputSpec>,
    nodes: &[Node],
    index: &HashMap<&str, usize>,
) -> Result<Vec<Input>, PlanError> {
    if let Some(input) = specs.keys().find(|input| !node.op.has_input(input)) {
        return Err(PlanError::UnknownInput {
            op: node.name.clone(),
            input: input.clone(),
            expected: node.op.input_names(),
        });
    }
    node.op
        .inputs
        .iter()
        .map(|input| &input.name)
        .map(|input| {
            let spec = specs.get(input).ok_or_else(|| PlanError::UnwiredInput {
                op: node.name.clone(),
                input: input.clone(),
            })?;
            let resolve =
                |reference: &OutputRef| resolve_output(node, input, reference, nodes, index);
            let source = match spec {
                InputSpec::From(r) => {
                    let source = resolve(r)?;
                    if is_dynamic(nodes, &source) {
                        return Err(PlanError::DynamicWithoutMap {
                            op: node.name.clone(),
                            input: input.clone(),
                            source_op: r.op.clone(),
                            output: source.output,
                        });
                    }
                    InputSource::From(source)
                }
                InputSpec::Map(r) | InputSpec::Zip(r, _) => {
                    let source = resolve(r)?;
                    if !is_dynamic(nodes, &source) {
                        return Err(PlanError::MapOfNonDynamic {
                            op: node.name.clone(),
                            input: input.clone(),
                            source_op: r.op.clone(),
                            output: source.output,
                        });
                    }
                    match spec {
                        InputSpec::Zip(_, unmatched) => InputSource::Zip(source, *unmatched),
                        _ => InputSource::Map(source),
                    }
                }
                InputSpec::Collect(r, collect) => {
                    let source = resolve(r)?;
                    if collect.min_success.is_some() && is_dynamic(nodes, &source) {
                        return Err(PlanError::MinSuccessOfValues {
                            op: node.name.clone(),
                            input: input.clone(),
                            source_op: r.op.clone(),
                            output: source.output,
                        });
                    }
                    InputSource::Collect(source)
                }
                InputSpec::Failures(r) => {
                    let source = resolve(r)?;
                    let partial = specs.values().any(|other| {
                        matches!(other, InputSpec::Collect(c, spec) if c.op == r.op && spec.min_success.is_some())
                    });
                    if !partial {
                        return Err(PlanError::FailuresWithoutPartialCollect {
                            op: node.name.clone(),
                            input: input.clone(),
                            source_op: r.op.clone(),
                        });
                    }
                    InputSource::Failures(source)
                }
                InputSpec::Value(v) => InputSource::Value(value::encode(&value::from_toml(v))),
            };
            let collect = match spec {
                InputSpec::Collect(_, collect) => *collect,
                _ => CollectSpec::default(),
            };
            Ok(Input {
                name: input.clone(),
                source,
                collect,
            })
        })
        .collect()
}

fn resolve_output(
    node: &Node,
    input: &str,
    reference: &OutputRef,
    nodes: &[Node],
    index: &HashMap<&str, usize>,
) -> Result<Source, PlanError> {
    let &source = index
        .get(reference.op.as_str())
        .ok_or_else(|| PlanError::UnknownSource {
            op: node.name.clone(),
            input: input.to_string(),
            source_op: reference.op.clone(),
        })?;
    let op = &nodes[source].op;
    let output = match (&reference.output, op.outputs.as_slice()) {
        (Some(output), _) => output.clone(),
        (None, [only]) => only.name.clone(),
        (None, _) => {
            return Err(PlanError::AmbiguousOutput {
                op: node.name.clone(),
                input: input.to_string(),
                source_op: reference.op.clone(),
                available: op.output_names(),
            });
        }
    };
    if op.output(&output).is_none() {
        return Err(PlanError::UnknownOutput {
            op: node.name.clone(),
            input: input.to_string(),
            source_op: reference.op.clone(),
            output,
            available: format!("outputs {}", op.output_names()),
        });
    }
    Ok(Source {
        node: source,
        output,
    })
}

fn is_dynamic(nodes: &[Node], source: &Source) -> bool {
    nodes[source.node]
        .op
        .output(&source.output)
        .is_some_and(|o| o.dynamic)
}

fn upstream(node: &Node) -> impl Iterator<Item = usize> + '_ {
    node.inputs
        .iter()
        .filter_map(|input| input.source.source().map(|s| s.node))
}

fn topological_order(nodes: &[Node]) -> Result<Vec<usize>, PlanError> {
    let mut graph = DiGraph::<usize, ()>::with_capacity(nodes.len(), nodes.len());
    let ids: Vec<_> = (0..nodes.len()).map(|i| graph.add_node(i)).collect();
    for (i, node) in nodes.iter().enumerate() {
        for from in upstream(node) {
            graph.add_edge(ids[from], ids[i], ());
        }
    }
    toposort(&graph, None)
        .map(|order| order.into_iter().map(|id| graph[id]).collect())
        .map_err(|cycle| PlanError::Cycle {
            cycle: cycle_through(&graph, cycle.node_id())
                .into_iter()
                .map(|id| nodes[graph[id]].name.clone())
                .collect(),
        })
}

/// A shortest cycle through `start` (which toposort found on one): `start`, the ops after it,
/// and `start` again.
fn cycle_through(
    graph: &DiGraph<usize, ()>,
    start: petgraph::graph::NodeIndex,
) -> Vec<petgraph::graph::NodeIndex> {
    let mut came_from = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(at) = queue.pop_front() {
        for next in graph.neighbors(at) {
            if next == start {
                // Back from `at` to `start`, which has no predecessor recorded; then around.
                let mut path = vec![at];
                while let Some(&before) = came_from.get(path.last().expect("not empty")) {
                    path.push(before);
                }
                path.reverse();
                path.push(start);
                return path;
            }
            if let std::collections::hash_map::Entry::Vacant(entry) = came_from.entry(next) {
                entry.insert(at);
                queue.push_back(next);
            }
        }
    }
    vec![start, start]
}

/// The scope an op gets from its inputs: the deepest input scope, which every other input's
/// scope must be a prefix of (values from outer scopes are broadcast to every clone). An op may
/// not collect a dynamic output it is also mapped over: each of its clones would wait for the
/// list of all clones, its own included (Dagster refuses this too).
fn scope_of(node: &Node, nodes: &[Node]) -> Result<Vec<Source>, PlanError> {
    let scope = input_scope(node, nodes)?;
    check_zips(node, nodes, &scope)?;
    for input in &node.inputs {
        let (InputSource::Collect(s) | InputSource::Failures(s)) = &input.source else {
            continue;
        };
        let closed = if is_dynamic(nodes, s) {
            s
        } else {
            nodes[s.node].scope.last().expect("checked by input_scope")
        };
        if scope.contains(closed) {
            let mapped = node
                .inputs
                .iter()
                .find(|other| {
                    other.name != input.name && input_scope_of(other, nodes).contains(closed)
                })
                .map_or_else(String::new, |other| other.name.clone());
            return Err(PlanError::CollectWhileMapped {
                op: node.name.clone(),
                dynamic: format!("{}.{}", nodes[closed.node].name, closed.output),
                collecting: input.name.clone(),
                mapped,
            });
        }
    }
    Ok(scope)
}

/// A zipped input pairs values by key with the output the op maps over: that must be one of
/// the op's own `map` inputs, and the zipped output must be yielded by a step cloned alike (the
/// same outer keys), or a key would name different things on the two sides.
fn check_zips(node: &Node, nodes: &[Node], scope: &[Source]) -> Result<(), PlanError> {
    for input in &node.inputs {
        let InputSource::Zip(zipped, _) = &input.source else {
            continue;
        };
        let mapped = node.inputs.iter().find_map(|other| match &other.source {
            InputSource::Map(s) if scope.last() == Some(s) => Some(s),
            _ => None,
        });
        let Some(mapped) = mapped else {
            return Err(PlanError::ZipWithoutMap {
                op: node.name.clone(),
                input: input.name.clone(),
                source_op: nodes[zipped.node].name.clone(),
                output: zipped.output.clone(),
            });
        };
        if zipped == mapped || nodes[zipped.node].scope[..] != scope[..scope.len() - 1] {
            return Err(PlanError::ZipScope {
                op: node.name.clone(),
                input: input.name.clone(),
                source_op: nodes[zipped.node].name.clone(),
                output: zipped.output.clone(),
                mapped: format!("{}.{}", nodes[mapped.node].name, mapped.output),
            });
        }
    }
    Ok(())
}

/// The scope one input brings: its source's scope, one deeper for `map`, one shallower for a
/// collect of clones; empty for a literal, and for a zipped input (it follows the op's `map`,
/// checked by [`check_zips`]).
fn input_scope_of(input: &Input, nodes: &[Node]) -> Vec<Source> {
    match &input.source {
        InputSource::Value(_) | InputSource::Zip(..) => Vec::new(),
        InputSource::From(s) => nodes[s.node].scope.clone(),
        InputSource::Map(s) => {
            let mut scope = nodes[s.node].scope.clone();
            scope.push(s.clone());
            scope
        }
        InputSource::Collect(s) if is_dynamic(nodes, s) => nodes[s.node].scope.clone(),
        InputSource::Collect(s) | InputSource::Failures(s) => {
            let mut scope = nodes[s.node].scope.clone();
            scope.pop();
            scope
        }
    }
}

fn input_scope(node: &Node, nodes: &[Node]) -> Result<Vec<Source>, PlanError> {
    let mut scope: Vec<Source> = Vec::new();
    for input in &node.inputs {
        if let InputSource::Collect(s) | InputSource::Failures(s) = &input.source
            && !is_dynamic(nodes, s)
            && nodes[s.node].scope.is_empty()
        {
            return Err(PlanError::CollectOfUnmapped {
                op: node.name.clone(),
                input: input.name.clone(),
                source_op: nodes[s.node].name.clone(),
                output: s.output.clone(),
            });
        }
        let candidate = input_scope_of(input, nodes);
        let (short, long) = if candidate.len() > scope.len() {
            (&scope, &candidate)
        } else {
            (&candidate, &scope)
        };
        if long[..short.len()] != short[..] {
            let describe = |scope: &[Source]| {
                scope.last().map_or_else(String::new, |s| {
                    format!("{}.{}", nodes[s.node].name, s.output)
                })
            };
            return Err(PlanError::TwoDynamicSources {
                op: node.name.clone(),
                first: describe(&scope),
                second: describe(&candidate),
            });
        }
        if candidate.len() > scope.len() {
            scope = candidate;
        }
    }
    Ok(scope)
}

fn link_dependents(nodes: &mut [Node]) {
    let mut dependents = vec![Vec::new(); nodes.len()];
    for (i, node) in nodes.iter().enumerate() {
        for input in &node.inputs {
            match &input.source {
                InputSource::From(s) | InputSource::Map(s) | InputSource::Zip(s, _) => {
                    dependents[s.node].push(i)
                }
                InputSource::Collect(s) | InputSource::Failures(s) => {
                    dependents[s.node].push(i);
                    // Collecting clones also waits for the op that created them to finish, so
                    // that its list of mapping keys is complete.
                    if !is_dynamic(nodes, s) {
                        let creator = nodes[s.node].scope.last().expect("checked by scope_of");
                        dependents[creator.node].push(i);
                    }
                }
                InputSource::Value(_) => {}
            }
        }
    }
    for (node, mut list) in nodes.iter_mut().zip(dependents) {
        list.sort_unstable();
        list.dedup();
        node.dependents = list;
    }
}

mod pools;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
