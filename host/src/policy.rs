//! What a tenant's job may ask for on a shared server: its limits capped by the tenant's
//! ceilings, its directories under the tenant's roots (checked while parsing, see
//! [`crate::job::LoadedJob::parse_confined`]), its environment variables from the server's
//! allow-list, its concurrency within the tenant's share.

use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;

use crate::job::LoadedJob;
use crate::limits::{Limits, LimitsSpec};
use crate::runtime::DEFAULT_WASM_STACK;
use crate::tenant::Quotas;

/// The rules of one tenant's runs.
#[derive(Debug, Clone)]
pub struct Policy {
    pub quotas: Quotas,
    /// Environment variables the server lets ops read.
    pub allow_env: Vec<String>,
}

/// A job asking for more than its tenant may have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{scope} asks for {limit} = `{asked}`, above this tenant's ceiling `{ceiling}`")]
    AboveCeiling {
        /// `the job's [limits]` or `op `name``.
        scope: String,
        limit: &'static str,
        asked: String,
        ceiling: String,
    },
    #[error(
        "op `{op}` reads environment variable `{var}`, which this server does not pass to ops \
         (`host serve --allow-env {var}`)"
    )]
    EnvNotAllowed { op: String, var: String },
}

impl Policy {
    /// The directories a job may grant under.
    pub fn roots(&self) -> &[PathBuf] {
        &self.quotas.allow_dirs
    }

    /// Checks `job` against the ceilings and the environment allow-list, then lowers the
    /// defaults it did not set to the ceilings, so that a job that asks for nothing runs.
    pub fn apply(&self, job: &mut LoadedJob) -> Result<(), PolicyError> {
        for (name, op) in &job.job.ops {
            if let Some(var) = op.env.iter().find(|var| !self.allow_env.contains(var)) {
                return Err(PolicyError::EnvNotAllowed {
                    op: name.clone(),
                    var: var.clone(),
                });
            }
            self.check_limits(&format!("op `{name}`"), &op.limits)?;
        }
        self.check_limits("the job's [limits]", &job.job.limits)?;
        // The wasm stack is a setting of the shared engine: a larger one would rebuild it, for
        // every tenant.
        if let Some(stack) = job
            .job
            .execution
            .wasm_stack
            .filter(|s| s.as_u64() > DEFAULT_WASM_STACK)
        {
            return Err(PolicyError::AboveCeiling {
                scope: "the job's [execution]".to_string(),
                limit: "wasm_stack",
                asked: stack.to_string(),
                ceiling: ByteSize(DEFAULT_WASM_STACK).to_string(),
            });
        }
        let q = &self.quotas;
        let limits = &mut job.job.limits;
        limits.memory = Some(limits.memory.unwrap_or(q.max_memory).min(q.max_memory));
        limits.fuel = Some(limits.fuel.unwrap_or(q.max_fuel).min(q.max_fuel));
        limits.timeout = Some(limits.timeout.unwrap_or(q.max_timeout).min(q.max_timeout));
        let execution = &mut job.job.execution;
        execution.max_concurrent = Some(
            execution
                .max_concurrent
                .unwrap_or(q.max_concurrent)
                .min(q.max_concurrent),
        );
        Ok(())
    }

    fn check_limits(&self, scope: &str, limits: &LimitsSpec) -> Result<(), PolicyError> {
        let q = &self.quotas;
        let above = |limit, asked: String, ceiling: String| PolicyError::AboveCeiling {
            scope: scope.to_string(),
            limit,
            asked,
            ceiling,
        };
        // The limits a tenant has no ceiling of its own for may not exceed the defaults: each
        // bounds what one step makes the server hold or write.
        let d = Limits::DEFAULT;
        let sizes = [
            ("max_output_size", limits.max_output_size, d.max_output_size),
            (
                "max_step_output_size",
                limits.max_step_output_size,
                d.max_step_output_size,
            ),
            ("max_log_size", limits.max_log_size, d.max_log_size),
        ];
        for (limit, asked, ceiling) in sizes {
            if let Some(asked) = asked.filter(|a| a.as_u64() > ceiling) {
                return Err(above(
                    limit,
                    asked.to_string(),
                    ByteSize(ceiling).to_string(),
                ));
            }
        }
        if let Some(fanout) = limits.max_fanout.filter(|f| *f > d.max_fanout) {
            return Err(above(
                "max_fanout",
                fanout.to_string(),
                d.max_fanout.to_string(),
            ));
        }
        if let Some(memory) = limits.memory.filter(|m| *m > q.max_memory) {
            return Err(above(
                "memory",
                memory.to_string(),
                q.max_memory.to_string(),
            ));
        }
        if let Some(fuel) = limits.fuel.filter(|f| *f > q.max_fuel) {
            return Err(above("fuel", fuel.to_string(), q.max_fuel.to_string()));
        }
        if let Some(timeout) = limits.timeout.filter(|t| *t > q.max_timeout) {
            return Err(above("timeout", duration(timeout), duration(q.max_timeout)));
        }
        Ok(())
    }
}

fn duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(text: &str) -> LoadedJob {
        LoadedJob::parse(text, std::path::Path::new("/srv/job.toml")).unwrap()
    }

    fn policy() -> Policy {
        Policy {
            quotas: Quotas {
                max_memory: ByteSize::mib(64),
                max_concurrent: 2,
                ..Quotas::default()
            },
            allow_env: vec!["REGION".into()],
        }
    }

    const HEAD: &str = "[components.c]\n[ops.a]\ncomponent = 'c'\n";

    #[test]
    fn defaults_are_lowered_to_the_ceilings() {
        let mut loaded = job(HEAD);
        policy().apply(&mut loaded).unwrap();
        assert_eq!(loaded.job.limits.memory, Some(ByteSize::mib(64)));
        assert_eq!(loaded.job.execution.max_concurrent, Some(2));
    }

    #[test]
    fn asking_above_a_ceiling_is_refused_naming_it() {
        let mut loaded = job(&format!("{HEAD}limits.memory = '1GiB'\n"));
        let err = policy().apply(&mut loaded).unwrap_err().to_string();
        assert!(err.contains("op `a` asks for memory = `1.0 GiB`"), "{err}");
        assert!(err.contains("ceiling `64.0 MiB`"), "{err}");
        let mut loaded = job(&format!("{HEAD}[limits]\ntimeout = '1h'\n"));
        let err = policy().apply(&mut loaded).unwrap_err().to_string();
        assert!(
            err.contains("the job's [limits] asks for timeout = `1h`"),
            "{err}"
        );
    }

    #[test]
    fn only_allowed_environment_variables_are_read() {
        let mut loaded = job(&format!("{HEAD}env = ['REGION']\n"));
        policy().apply(&mut loaded).unwrap();
        let mut loaded = job(&format!("{HEAD}env = ['HOME']\n"));
        let err = policy().apply(&mut loaded).unwrap_err();
        assert_eq!(
            err,
            PolicyError::EnvNotAllowed {
                op: "a".into(),
                var: "HOME".into()
            }
        );
    }
}
