//! `host tenant ...`: the tenants of `host serve`, managed against the store directly.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use bytesize::ByteSize;

use crate::store::SqliteStore;
use crate::tenant::{self, Quotas};

/// `host tenant add`'s quotas; unset ones take [`Quotas::default`]'s.
#[derive(Debug, clap::Args)]
pub struct QuotaArgs {
    /// Most steps running at once, all the tenant's runs together [default: 4].
    #[arg(long, value_name = "N", value_parser = crate::cli::at_least_one)]
    pub max_concurrent: Option<usize>,
    /// Most unfinished runs; more are refused with 429 [default: 8].
    #[arg(long, value_name = "N", value_parser = crate::cli::at_least_one)]
    pub max_queued_runs: Option<usize>,
    /// The most memory a step may ask for, e.g. `64MiB` [default: 256 MiB].
    #[arg(long, value_name = "SIZE")]
    pub max_memory: Option<ByteSize>,
    /// The most fuel a step may ask for [default: 10000000000].
    #[arg(long, value_name = "N")]
    pub max_fuel: Option<u64>,
    /// The longest timeout a step may ask for, e.g. `30s` [default: 1m].
    #[arg(long, value_name = "DURATION")]
    pub max_timeout: Option<humantime::Duration>,
    /// Bytes of components and recorded outputs the tenant may keep [default: 1 GiB].
    #[arg(long, value_name = "SIZE")]
    pub storage: Option<ByteSize>,
    /// A host directory under which the tenant's jobs may grant directories (repeatable).
    #[arg(long, value_name = "HOST_PATH")]
    pub allow_dir: Vec<PathBuf>,
}

impl QuotaArgs {
    fn quotas(self) -> anyhow::Result<Quotas> {
        let d = Quotas::default();
        let allow_dirs = self
            .allow_dir
            .iter()
            .map(|dir| {
                let canonical = std::fs::canonicalize(dir)
                    .with_context(|| format!("cannot allow directory `{}`", dir.display()))?;
                anyhow::ensure!(
                    canonical.is_dir(),
                    "cannot allow directory `{}`: it is not a directory",
                    dir.display()
                );
                Ok(canonical)
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Quotas {
            max_concurrent: self.max_concurrent.unwrap_or(d.max_concurrent),
            max_queued_runs: self.max_queued_runs.unwrap_or(d.max_queued_runs),
            max_memory: self.max_memory.unwrap_or(d.max_memory),
            max_fuel: self.max_fuel.unwrap_or(d.max_fuel),
            max_timeout: self.max_timeout.map_or(d.max_timeout, Into::into),
            storage: self.storage.unwrap_or(d.storage),
            allow_dirs,
        })
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum TenantCommand {
    /// Add a tenant and print its API token (shown once: the store keeps only its hash).
    Add {
        /// The tenant's name (ASCII letters, digits and `_`).
        name: String,
        #[command(flatten)]
        quotas: QuotaArgs,
    },
    /// List the tenants and their quotas.
    List,
    /// Give a tenant a new API token; the old one stops working at once.
    Rotate { name: String },
    /// Remove a tenant and its uploaded components; its recorded runs stay.
    Remove { name: String },
}

pub fn run(command: TenantCommand, store_dir: &Path) -> anyhow::Result<ExitCode> {
    let store = SqliteStore::open(store_dir)?;
    match command {
        TenantCommand::Add { name, quotas } => {
            crate::name::check(&name).with_context(|| format!("invalid tenant name `{name}`"))?;
            let quotas = quotas.quotas()?;
            let (token, hash) = tenant::new_token(&name).context("cannot draw a random token")?;
            store.add_tenant(&name, &hash, &quotas)?;
            eprintln!("added tenant `{name}`; its API token (shown once):");
            super::print_stdout(&format!("{token}\n"))?;
        }
        TenantCommand::List => {
            let mut out = String::new();
            for tenant in store.tenants()? {
                let q = &tenant.quotas;
                let dirs: Vec<String> = q
                    .allow_dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect();
                out.push_str(&format!(
                    "{}\tmax-concurrent {}\tmax-queued-runs {}\tmax-memory {}\tmax-fuel {}\t\
                     max-timeout {}\tstorage {}\tallow-dir {}\n",
                    tenant.name,
                    q.max_concurrent,
                    q.max_queued_runs,
                    q.max_memory,
                    q.max_fuel,
                    humantime::format_duration(q.max_timeout),
                    q.storage,
                    if dirs.is_empty() {
                        "-".to_string()
                    } else {
                        dirs.join(",")
                    },
                ));
            }
            super::print_stdout(&out)?;
        }
        TenantCommand::Rotate { name } => {
            let (token, hash) = tenant::new_token(&name).context("cannot draw a random token")?;
            store.set_token_hash(&name, &hash)?;
            eprintln!(
                "tenant `{name}` has a new API token (shown once); the old one no longer works:"
            );
            super::print_stdout(&format!("{token}\n"))?;
        }
        TenantCommand::Remove { name } => {
            store.remove_tenant(&name)?;
            eprintln!("removed tenant `{name}`");
        }
    }
    Ok(ExitCode::SUCCESS)
}
