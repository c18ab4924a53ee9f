//! The concurrency pools of a plan: each `[[execution.tag_concurrency_limits]]` entry and each
//! op's `max_concurrent` becomes one or more pools of places, and a step runs only with a place
//! in every pool its op belongs to. Resolved once from the ops' tags, which are fixed per op,
//! so the scheduler only counts.

use std::collections::BTreeMap;

use super::Node;
use crate::job::concurrency::{TagConcurrencyLimit, TagMatch};

/// The pools of a plan, and which of them each op's steps take a place in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pools {
    /// How many steps at once each pool allows.
    pub sizes: Vec<usize>,
    /// Per op (as in [`super::Plan::nodes`]): the pools its steps take a place in, ascending,
    /// so that steps taking several always take them in the same order.
    pub of_node: Vec<Vec<usize>>,
}

/// The pools of `nodes` under `limits`: one per op with a `max_concurrent`, one per limit on a
/// tag key or value, and one per value of the key for a limit `per_unique_value`.
pub fn resolve(nodes: &[Node], limits: &[TagConcurrencyLimit]) -> Pools {
    let mut pools = Pools {
        sizes: Vec::new(),
        of_node: vec![Vec::new(); nodes.len()],
    };
    for (i, node) in nodes.iter().enumerate() {
        if let Some(cap) = node.max_concurrent {
            pools.of_node[i].push(pools.sizes.len());
            pools.sizes.push(cap);
        }
    }
    for limit in limits {
        // Pool by the value it counts: "" for the one pool of a limit that is not per value.
        let mut by_value: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, node) in nodes.iter().enumerate() {
            let Some((_, value)) = node.tags.iter().find(|(key, _)| *key == limit.key) else {
                continue;
            };
            let group = match &limit.matching {
                TagMatch::AnyValue => "",
                TagMatch::Value(wanted) if wanted == value => "",
                TagMatch::Value(_) => continue,
                TagMatch::PerUniqueValue => value.as_str(),
            };
            let pool = *by_value.entry(group).or_insert_with(|| {
                pools.sizes.push(limit.limit.get());
                pools.sizes.len() - 1
            });
            pools.of_node[i].push(pool);
        }
    }
    pools
}

#[cfg(test)]
mod tests {
    use crate::plan::testing::plan;

    fn pools_of(ops: &str) -> (Vec<usize>, Vec<Vec<usize>>) {
        let plan = plan(ops).unwrap();
        (plan.pools.sizes, plan.pools.of_node)
    }

    const THREE_OPS: &str = "[ops.one]\ncomponent = 'c'\ntags = { db = 'pg' }\n\
        [ops.emit]\ncomponent = 'c'\ntags = { db = 'mysql' }\nmax_concurrent = 3\n\
        [ops.two]\ncomponent = 'c'\n";

    #[test]
    fn a_limit_on_a_key_pools_every_value_together() {
        let text =
            format!("{THREE_OPS}[[execution.tag_concurrency_limits]]\nkey = 'db'\nlimit = 2\n");
        assert_eq!(
            pools_of(&text),
            (vec![3, 2], vec![vec![1], vec![0, 1], vec![]])
        );
    }

    #[test]
    fn a_limit_on_a_value_pools_only_that_value() {
        let text = format!(
            "{THREE_OPS}[[execution.tag_concurrency_limits]]\nkey = 'db'\nvalue = 'pg'\nlimit = 1\n"
        );
        assert_eq!(
            pools_of(&text),
            (vec![3, 1], vec![vec![1], vec![0], vec![]])
        );
    }

    #[test]
    fn a_limit_per_unique_value_pools_each_value_apart() {
        let text = format!(
            "{THREE_OPS}[[execution.tag_concurrency_limits]]\nkey = 'db'\nlimit = 1\n\
             per_unique_value = true\n"
        );
        assert_eq!(
            pools_of(&text),
            (vec![3, 1, 1], vec![vec![1], vec![0, 2], vec![]])
        );
    }

    #[test]
    fn run_tags_count_for_every_op() {
        let mut job: crate::job::Job = toml::from_str(&format!(
            "[components.c]\npath = 'c.wasm'\n{THREE_OPS}\
             [[execution.tag_concurrency_limits]]\nkey = 'db'\nvalue = 'x'\nlimit = 1\n"
        ))
        .unwrap();
        job.run_tags = [("db".to_string(), "x".to_string())].into_iter().collect();
        let loaded = crate::job::LoadedJob {
            name: "t".into(),
            job,
        };
        let plan = crate::plan::build(&loaded, &crate::plan::testing::catalog()).unwrap();
        assert_eq!(plan.pools.of_node, vec![vec![1], vec![0, 1], vec![1]]);
        assert_eq!(
            plan.nodes[2].tags,
            vec![("db".to_string(), "x".to_string())]
        );
    }
}
