//! Tenants and the components they uploaded, in the SQLite store: `host tenant` writes them,
//! `host serve` reads them.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::queries::{Db, sqlite_error};
use crate::digest::Digest;
use crate::store::StoreError;
use crate::tenant::{Quotas, Tenant};

/// A component a tenant uploaded, under the name its jobs use.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ComponentEntry {
    pub name: String,
    pub digest: Digest,
    pub size: u64,
    /// What the component's `describe` returned, as the API shows it.
    pub ops: serde_json::Value,
    pub uploaded: f64,
}

impl SqliteStore {
    /// Adds tenant `name` with the hash of its token.
    pub fn add_tenant(
        &self,
        name: &str,
        token_hash: &str,
        quotas: &Quotas,
    ) -> Result<Tenant, StoreError> {
        let sqlite = sqlite_error(&self.path);
        let tenant = Tenant {
            name: name.to_string(),
            quotas: quotas.clone(),
            created: crate::events::unix_now(),
        };
        let quotas = serde_json::to_string(quotas).expect("quotas serialize");
        self.transaction(|db| {
            if db
                .conn
                .query_row("SELECT 1 FROM tenants WHERE name = ?1", [name], |_| Ok(()))
                .optional()
                .map_err(sqlite)?
                .is_some()
            {
                return Err(StoreError::TenantExists(name.to_string()));
            }
            db.conn
                .execute(
                    "INSERT INTO tenants (name, token_hash, quotas, created) VALUES (?1, ?2, ?3, ?4)",
                    params![name, token_hash, quotas, tenant.created],
                )
                .map_err(sqlite)?;
            Ok(())
        })?;
        Ok(tenant)
    }

    /// Every tenant, by name.
    pub fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.db(|db| {
            let sqlite = sqlite_error(db.path);
            let mut statement = db
                .conn
                .prepare("SELECT name, quotas, created FROM tenants ORDER BY name")
                .map_err(sqlite)?;
            let rows = statement
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get(2)?,
                    ))
                })
                .map_err(sqlite)?;
            rows.map(|row| {
                let (name, quotas, created) = row.map_err(sqlite)?;
                tenant(name, &quotas, created)
            })
            .collect()
        })
    }

    /// Tenant `name` and the hash of its token, if it exists.
    pub fn tenant_with_hash(&self, name: &str) -> Result<Option<(Tenant, String)>, StoreError> {
        self.db(|db| {
            let sqlite = sqlite_error(db.path);
            let row = db
                .conn
                .query_row(
                    "SELECT quotas, created, token_hash FROM tenants WHERE name = ?1",
                    [name],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, f64>(1)?,
                            row.get::<_, String>(2)?,
                        ))
                    },
                )
                .optional()
                .map_err(sqlite)?;
            row.map(|(quotas, created, hash)| {
                Ok((tenant(name.to_string(), &quotas, created)?, hash))
            })
            .transpose()
        })
    }

    /// Replaces tenant `name`'s token hash: the old token stops working at once.
    pub fn set_token_hash(&self, name: &str, token_hash: &str) -> Result<(), StoreError> {
        let sqlite = sqlite_error(&self.path);
        self.transaction(|db| {
            let changed = db
                .conn
                .execute(
                    "UPDATE tenants SET token_hash = ?2 WHERE name = ?1",
                    params![name, token_hash],
                )
                .map_err(sqlite)?;
            if changed == 0 {
                return Err(StoreError::NoSuchTenant(name.to_string()));
            }
            Ok(())
        })
    }

    /// Removes tenant `name` and its component names; refused while a server executes one of
    /// its runs. Its recorded runs stay for the administrator (`host runs`), attributed to
    /// `NAME/removed-SECONDS`, which no tenant can be named: a tenant added later under the
    /// same name does not get them.
    pub fn remove_tenant(&self, name: &str) -> Result<(), StoreError> {
        let sqlite = sqlite_error(&self.path);
        self.transaction(|db| {
            if db
                .runs(Some(name), "", None)?
                .iter()
                .any(|run| run.status == crate::store::RunStatus::Running)
            {
                return Err(StoreError::TenantBusy(name.to_string()));
            }
            let tombstone = format!("{name}/removed-{}", crate::events::unix_now() as u64);
            db.conn
                .execute(
                    "UPDATE runs SET tenant = ?2 WHERE tenant = ?1",
                    [name, tombstone.as_str()],
                )
                .map_err(sqlite)?;
            db.conn
                .execute("DELETE FROM tenant_components WHERE tenant = ?1", [name])
                .map_err(sqlite)?;
            let removed = db
                .conn
                .execute("DELETE FROM tenants WHERE name = ?1", [name])
                .map_err(sqlite)?;
            if removed == 0 {
                return Err(StoreError::NoSuchTenant(name.to_string()));
            }
            forget_unused_components(db)
        })
    }

    /// Keeps `bytes` as component `name` of `tenant`, replacing an earlier upload of that name.
    pub fn put_component(
        &self,
        tenant: &str,
        name: &str,
        bytes: &[u8],
        ops: &serde_json::Value,
    ) -> Result<ComponentEntry, StoreError> {
        let sqlite = sqlite_error(&self.path);
        let entry = ComponentEntry {
            name: name.to_string(),
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
            ops: ops.clone(),
            uploaded: crate::events::unix_now(),
        };
        self.transaction(|db| {
            let digest = entry.digest.to_string();
            db.conn
                .execute(
                    "INSERT OR IGNORE INTO components (digest, bytes) VALUES (?1, ?2)",
                    params![digest, bytes],
                )
                .map_err(sqlite)?;
            db.conn
                .execute(
                    "INSERT OR REPLACE INTO tenant_components
                         (tenant, name, digest, size, ops, uploaded)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        tenant,
                        name,
                        digest,
                        i64::try_from(entry.size).unwrap_or(i64::MAX),
                        entry.ops.to_string(),
                        entry.uploaded
                    ],
                )
                .map_err(sqlite)?;
            // The version this one replaced, unless something still uses it.
            forget_unused_components(db)
        })?;
        Ok(entry)
    }

    /// The components `tenant` uploaded, by name.
    pub fn tenant_components(&self, tenant: &str) -> Result<Vec<ComponentEntry>, StoreError> {
        self.component_entries(tenant, None)
    }

    /// Component `name` of `tenant`, if it uploaded one.
    pub fn tenant_component(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<ComponentEntry>, StoreError> {
        Ok(self.component_entries(tenant, Some(name))?.pop())
    }

    fn component_entries(
        &self,
        tenant: &str,
        name: Option<&str>,
    ) -> Result<Vec<ComponentEntry>, StoreError> {
        self.db(|db| {
            let sqlite = sqlite_error(db.path);
            let mut statement = db
                .conn
                .prepare(
                    "SELECT name, digest, size, ops, uploaded FROM tenant_components
                     WHERE tenant = ?1 AND (?2 IS NULL OR name = ?2) ORDER BY name",
                )
                .map_err(sqlite)?;
            let rows = statement
                .query_map(params![tenant, name], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, f64>(4)?,
                    ))
                })
                .map_err(sqlite)?;
            rows.map(|row| {
                let (name, digest, size, ops, uploaded) = row.map_err(sqlite)?;
                let corrupt = |problem| StoreError::Corrupt {
                    hash: digest.clone(),
                    problem,
                };
                Ok(ComponentEntry {
                    digest: digest.parse().map_err(|_| corrupt("is not a digest"))?,
                    ops: serde_json::from_str(&ops)
                        .map_err(|_| corrupt("has a description that is not JSON"))?,
                    name,
                    size: size.max(0) as u64,
                    uploaded,
                })
            })
            .collect()
        })
    }

    /// Forgets component `name` of `tenant`, and its bytes unless a run recorded them or
    /// another name uses them; false when there was none.
    pub fn delete_component(&self, tenant: &str, name: &str) -> Result<bool, StoreError> {
        let sqlite = sqlite_error(&self.path);
        self.transaction(|db| {
            let removed = db
                .conn
                .execute(
                    "DELETE FROM tenant_components WHERE tenant = ?1 AND name = ?2",
                    [tenant, name],
                )
                .map_err(sqlite)?;
            forget_unused_components(db)?;
            Ok(removed > 0)
        })
    }

    /// Bytes `tenant` keeps: the components it uploaded or its runs recorded, and the output
    /// values its runs recorded (a large value in `blobs` counted once).
    pub fn storage_used(&self, tenant: &str) -> Result<u64, StoreError> {
        self.db(|db| {
            db.conn
                .query_row(
                    "SELECT (SELECT COALESCE(SUM(LENGTH(c.bytes)), 0) FROM components c
                             WHERE c.digest IN (
                                 SELECT digest FROM tenant_components WHERE tenant = ?1
                                 UNION
                                 SELECT j.value FROM snapshots s JOIN runs r ON r.id = s.run_id,
                                        json_each(s.snapshot, '$.components') j
                                 WHERE r.tenant = ?1))
                          + (SELECT COALESCE(SUM(LENGTH(b.bytes)), 0) FROM blobs b
                             WHERE b.hash IN (SELECT e.hash FROM events e
                                              JOIN runs r ON r.id = e.run_id
                                              WHERE r.tenant = ?1 AND e.hash IS NOT NULL))
                          + (SELECT COALESCE(SUM(LENGTH(e.value)), 0) FROM events e
                             JOIN runs r ON r.id = e.run_id
                             WHERE r.tenant = ?1 AND e.value IS NOT NULL)",
                    [tenant],
                    |row| row.get::<_, i64>(0),
                )
                .map(|used| used.max(0) as u64)
                .map_err(sqlite_error(db.path))
        })
    }
}

/// Deletes the component bytes that no tenant's name and no run's snapshot refers to: what an
/// upload replaced or a deletion left. A component of the local user's runs is in their
/// snapshots, so it stays.
pub(super) fn forget_unused_components(db: Db<'_>) -> Result<(), StoreError> {
    db.conn
        .execute(
            "DELETE FROM components WHERE digest NOT IN (SELECT digest FROM tenant_components)
               AND digest NOT IN (SELECT j.value FROM snapshots s,
                                  json_each(s.snapshot, '$.components') j)",
            [],
        )
        .map(|_| ())
        .map_err(sqlite_error(db.path))
}

fn tenant(name: String, quotas: &str, created: f64) -> Result<Tenant, StoreError> {
    let quotas = serde_json::from_str(quotas).map_err(|err| StoreError::BadTenant {
        name: name.clone(),
        problem: err.to_string(),
    })?;
    Ok(Tenant {
        name,
        quotas,
        created,
    })
}
