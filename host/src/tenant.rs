//! Tenants of `host serve`: who may call the API (a name and the hash of an API token) and what
//! each may consume (its [`Quotas`]). Tenants are managed with `host tenant` against the store.
//!
//! A token is `shoal.NAME.SECRET` with 256 random bits of secret. The store keeps only its
//! BLAKE3 hash; checking a token looks the tenant up by the name in it and compares the hashes
//! in constant time (`blake3::Hash` equality), so that timing reveals nothing of the secret.

use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use crate::limits::Limits;

/// What a tenant may consume. Every ceiling has a default safe for untrusted code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quotas {
    /// Most steps of this tenant running at once, all its runs together.
    pub max_concurrent: usize,
    /// Most runs of this tenant not finished at once; more are refused with `429`.
    pub max_queued_runs: usize,
    /// The most linear memory an op of this tenant may ask for.
    pub max_memory: ByteSize,
    /// The most fuel an op attempt of this tenant may ask for.
    pub max_fuel: u64,
    /// The longest timeout an op attempt of this tenant may ask for.
    #[serde(with = "humantime_serde")]
    pub max_timeout: Duration,
    /// Bytes of components and recorded output values this tenant may keep.
    pub storage: ByteSize,
    /// Host directories (canonical) under which this tenant's jobs may grant directories.
    pub allow_dirs: Vec<PathBuf>,
}

impl Default for Quotas {
    /// Four steps at once, eight unfinished runs, the default limits of a step as ceilings,
    /// 1 GiB of storage, no directory.
    fn default() -> Self {
        Quotas {
            max_concurrent: 4,
            max_queued_runs: 8,
            max_memory: ByteSize(Limits::DEFAULT.memory),
            max_fuel: Limits::DEFAULT.fuel,
            max_timeout: Limits::DEFAULT.timeout,
            storage: ByteSize::gib(1),
            allow_dirs: Vec::new(),
        }
    }
}

/// A tenant as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub name: String,
    pub quotas: Quotas,
    /// When it was added (Unix seconds).
    pub created: f64,
}

/// The prefix of every API token, so that a leaked one is recognisable (secret scanners).
const TOKEN_PREFIX: &str = "shoal.";

/// A fresh API token of tenant `name`: what the tenant is given once, and its hash, which is
/// all the store keeps.
pub fn new_token(name: &str) -> Result<(String, String), getrandom::Error> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)?;
    let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let token = format!("{TOKEN_PREFIX}{name}.{secret}");
    let hash = token_hash(&token).to_hex().to_string();
    Ok((token, hash))
}

/// The tenant name a token claims to be of, if it has a token's shape.
pub fn token_tenant(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (name, secret) = rest.rsplit_once('.')?;
    (!name.is_empty() && secret.len() == 64).then_some(name)
}

/// Whether `token` hashes to `stored` (hex), compared in constant time. A malformed stored
/// hash matches nothing.
pub fn token_matches(token: &str, stored: &str) -> bool {
    let presented = token_hash(token);
    match blake3::Hash::from_hex(stored) {
        // `blake3::Hash`'s `==` is constant-time.
        Ok(stored) => presented == stored,
        Err(_) => false,
    }
}

fn token_hash(token: &str) -> blake3::Hash {
    blake3::hash(token.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_tenant_and_matches_only_its_hash() {
        let (token, hash) = new_token("team_a").unwrap();
        assert_eq!(token_tenant(&token), Some("team_a"));
        assert!(token_matches(&token, &hash));
        let (other, other_hash) = new_token("team_a").unwrap();
        assert_ne!(token, other, "tokens are random");
        assert!(!token_matches(&token, &other_hash));
        assert!(!token_matches(&other, &hash));
        assert!(!token_matches(&token, "not hex"));
        assert!(
            !hash.contains(&token[6..]),
            "the hash does not hold the secret"
        );
    }

    #[test]
    fn malformed_tokens_name_no_tenant() {
        for bad in [
            "",
            "shoal.",
            "shoal.a",
            "shoal.a.short",
            "bearer a.b",
            "shoal..x",
        ] {
            assert_eq!(token_tenant(bad), None, "{bad}");
        }
    }
}
