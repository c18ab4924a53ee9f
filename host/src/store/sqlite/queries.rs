//! The SQLite store's reads.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use super::event_row;
use crate::digest::Digest;
use crate::events::{Event, EventKind};
use crate::job::tags::Tags;
use crate::snapshot::RunSnapshot;
use crate::store::{OutputRecord, Owner, RunRecord, RunStatus, StoreError};

/// A connection (or a transaction on one) to the store at `path`, which its errors name.
#[derive(Clone, Copy)]
pub struct Db<'c> {
    pub conn: &'c Connection,
    pub path: &'c Path,
}

/// Every run with its lease, if any; the callers add the store's scope (see the module doc of
/// [`crate::store`]).
const SELECT_RUNS: &str = "SELECT r.id, r.job_name, r.job_path, r.config_path, r.status,
        r.started, r.finished, r.parent, l.pid, l.host, l.heartbeat, r.tenant, r.tags
    FROM runs r LEFT JOIN leases l ON l.run_id = r.id";

/// Names the store at `path` in a SQLite error; it borrows only the path, so that it can be
/// used while a transaction borrows the connection.
pub fn sqlite_error(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + Copy + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown run status `{0}`")]
struct UnknownStatus(String);

impl Db<'_> {
    fn sqlite(&self, source: rusqlite::Error) -> StoreError {
        sqlite_error(self.path)(source)
    }

    /// The run `id`, if the store has it.
    pub fn run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        let now = crate::events::unix_now();
        self.conn
            .query_row(&format!("{SELECT_RUNS} WHERE r.id = ?1"), [id], |row| {
                run_record(row, now)
            })
            .optional()
            .map_err(|e| self.sqlite(e))
    }

    /// The runs of `tenant` (every run's for `None`) whose id starts with `prefix`, newest
    /// first, at most `limit`.
    pub fn runs(
        &self,
        tenant: Option<&str>,
        prefix: &str,
        limit: Option<usize>,
    ) -> Result<Vec<RunRecord>, StoreError> {
        // The ids that start with `prefix` are a range of the primary key; the largest code
        // point bounds it.
        let mut statement = self
            .conn
            .prepare(&format!(
                "{SELECT_RUNS} WHERE (?1 IS NULL OR r.tenant = ?1)
                   AND r.id >= ?2 AND r.id < ?2 || char(1114111)
                 ORDER BY r.started DESC, r.id DESC LIMIT ?3"
            ))
            .map_err(|e| self.sqlite(e))?;
        let now = crate::events::unix_now();
        let limit = limit.map_or(-1, sql_limit);
        let rows = statement
            .query_map(params![tenant, prefix, limit], |row| run_record(row, now))
            .map_err(|e| self.sqlite(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sqlite(e))
    }

    /// What run `id` executes, if recorded.
    pub fn snapshot(&self, id: &str) -> Result<Option<RunSnapshot>, StoreError> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT snapshot FROM snapshots WHERE run_id = ?1",
                [id],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.sqlite(e))?;
        text.map(|text| {
            serde_json::from_str(&text).map_err(|err| StoreError::BadSnapshot {
                run: id.to_string(),
                problem: err.to_string(),
            })
        })
        .transpose()
    }

    /// The bytes of the component with `digest`, checked against it.
    pub fn component(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        let bytes: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT bytes FROM components WHERE digest = ?1",
                [digest.to_string()],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.sqlite(e))?;
        match bytes {
            Some(bytes) if Digest::of(&bytes) != *digest => Err(StoreError::Corrupt {
                hash: digest.to_string(),
                problem: "does not match its content",
            }),
            bytes => Ok(bytes),
        }
    }

    /// The events of run `id` that `filter` selects, with their sequence numbers and the
    /// values of `STEP_OUTPUT` events.
    pub fn events(
        &self,
        id: &str,
        filter: &EventFilter<'_>,
    ) -> Result<Vec<(i64, Event<'static>)>, StoreError> {
        let kinds = (!filter.kinds.is_empty()).then(|| name_list(filter.kinds));
        let sql = format!(
            "SELECT e.seq, e.format, e.json, e.timestamp, e.step_key, {STORED_VALUE}
             FROM events e {by_step} {BLOB_JOIN}
             WHERE e.run_id = ?1 AND e.seq > ?3 AND {step}
               AND (?5 IS NULL OR instr(?5, ',' || e.event || ',') > 0)
             ORDER BY e.seq LIMIT ?4",
            by_step = if filter.step.is_some() && !filter.in_sequence {
                STEP_INDEX
            } else {
                ""
            },
            // `+` keeps SQLite from reading the step's rows through the step index.
            step = step_range(
                if filter.in_sequence {
                    "+e.step_key"
                } else {
                    "e.step_key"
                },
                filter.step.is_some()
            ),
        );
        let mut statement = self.conn.prepare(&sql).map_err(|e| self.sqlite(e))?;
        let limit = filter.limit.map_or(-1, sql_limit);
        let rows = statement
            .query_map(
                params![id, filter.step, filter.after, limit, kinds],
                |row| {
                    Ok(StoredEvent {
                        seq: row.get(0)?,
                        format: row.get(1)?,
                        json: row.get(2)?,
                        timestamp: row.get(3)?,
                        step_key: row.get(4)?,
                        value: StoredValue::of(row, 5)?,
                    })
                },
            )
            .map_err(|e| self.sqlite(e))?;
        let mut events = Vec::new();
        for row in rows {
            let stored = row.map_err(|e| self.sqlite(e))?;
            let seq = stored.seq;
            events.push((seq, stored.read(id)?));
        }
        Ok(events)
    }

    /// The outputs of run `id`, of `step` and its clones when given.
    pub fn outputs(&self, id: &str, step: Option<&str>) -> Result<Vec<OutputRecord>, StoreError> {
        let sql = format!(
            "SELECT e.seq, e.step_key, e.output, e.mapping_key, {STORED_VALUE}
             FROM events e {by_step} {BLOB_JOIN}
             WHERE e.run_id = ?1 AND e.event = 'STEP_OUTPUT' AND {step}
             ORDER BY e.seq",
            by_step = if step.is_some() { STEP_INDEX } else { "" },
            step = step_range("e.step_key", step.is_some()),
        );
        let mut statement = self.conn.prepare(&sql).map_err(|e| self.sqlite(e))?;
        let rows = statement
            .query_map(params![id, step], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    StoredValue::of(row, 4)?,
                ))
            })
            .map_err(|e| self.sqlite(e))?;
        let mut outputs = Vec::new();
        for row in rows {
            let (seq, step_key, output, mapping_key, value) = row.map_err(|e| self.sqlite(e))?;
            let bad = |problem: &str| StoreError::BadEvent {
                run: id.to_string(),
                seq,
                problem: problem.to_string(),
            };
            outputs.push(OutputRecord {
                step_key,
                output: output.ok_or_else(|| bad("is an output without a name"))?,
                mapping_key,
                value: value.read()?.ok_or_else(|| bad(NO_VALUE))?,
            });
        }
        Ok(outputs)
    }

    /// Step keys with a committed `STEP_SUCCESS` in run `id`.
    pub fn succeeded_steps(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let mut statement = self
            .conn
            .prepare("SELECT step_key FROM events WHERE run_id = ?1 AND event = 'STEP_SUCCESS' ORDER BY seq")
            .map_err(|e| self.sqlite(e))?;
        let rows = statement
            .query_map([id], |row| row.get(0))
            .map_err(|e| self.sqlite(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sqlite(e))
    }

    /// The next event sequence number of run `id`.
    pub fn next_seq(&self, id: &str) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT COALESCE(MAX(seq) + 1, 0) FROM events WHERE run_id = ?1",
                [id],
                |row| row.get(0),
            )
            .map_err(|e| self.sqlite(e))
    }
}

/// Makes SQLite read a step's rows through the step index: by default it prefers the run's
/// primary key, whose order saves a sort, and reads every row of the run to find a few.
pub const STEP_INDEX: &str = "INDEXED BY events_by_step";

/// The condition on step key `column` that selects step `?2` and its clones `?2[...]` (or
/// nothing, with `?2` NULL, when not `by_step`): the range `?2` .. `?2\` that the step index
/// serves ('\' follows '['), less the other ops whose names extend `?2`, which sort before
/// `?2[`.
fn step_range(column: &str, by_step: bool) -> String {
    if by_step {
        format!(
            "{column} >= ?2 AND {column} < ?2 || '\\'
             AND ({column} = ?2 OR {column} >= ?2 || '[')"
        )
    } else {
        "?2 IS NULL".to_string()
    }
}

/// `names` as `,A,B,`, which `instr(?, ',' || name || ',')` searches: a list as one
/// parameter.
pub fn name_list(names: &[&str]) -> String {
    format!(",{},", names.join(","))
}

/// `n` as a LIMIT.
pub fn sql_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Which events of a run to read.
#[derive(Debug, Clone, Copy)]
pub struct EventFilter<'a> {
    /// Only this step's and its clones'.
    pub step: Option<&'a str>,
    /// Only events with these names (`STEP_FAILURE`, ...); every event when empty.
    pub kinds: &'a [&'a str],
    /// Only events after this sequence number.
    pub after: i64,
    /// At most this many.
    pub limit: Option<usize>,
    /// Read the run's events in sequence, testing each against `step`, rather than through the
    /// step index. The index gives an op's rows in key order, which every page sorts again:
    /// for an op of many clones, paging in sequence costs one pass over the run instead.
    pub in_sequence: bool,
}

impl Default for EventFilter<'_> {
    fn default() -> Self {
        EventFilter {
            step: None,
            kinds: &[],
            after: -1,
            limit: None,
            in_sequence: false,
        }
    }
}

/// A row of [`SELECT_RUNS`]; a `RUNNING` run whose owner is dead at `now` is `INTERRUPTED`.
fn run_record(row: &rusqlite::Row<'_>, now: f64) -> rusqlite::Result<RunRecord> {
    let stored: String = row.get(4)?;
    let status = RunStatus::stored(&stored).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            4,
            rusqlite::types::Type::Text,
            Box::new(UnknownStatus(stored.clone())),
        )
    })?;
    let owner = match (row.get(8)?, row.get(9)?, row.get(10)?) {
        (Some(pid), Some(host), Some(heartbeat)) => Some(Owner {
            pid,
            host,
            heartbeat,
        }),
        _ => None,
    };
    let alive = owner.as_ref().is_some_and(|o| o.is_alive(now));
    Ok(RunRecord {
        id: row.get(0)?,
        job_name: row.get(1)?,
        job_path: PathBuf::from(row.get::<_, String>(2)?),
        config_path: row.get::<_, Option<String>>(3)?.map(PathBuf::from),
        status: match status {
            RunStatus::Running if !alive => RunStatus::Interrupted,
            status => status,
        },
        started: row.get(5)?,
        finished: row.get(6)?,
        parent: row.get(7)?,
        owner,
        tenant: row.get(11)?,
        tags: match row.get::<_, Option<String>>(12)? {
            Some(json) => serde_json::from_str(&json).map_err(|err| {
                rusqlite::Error::FromSqlConversionFailure(
                    12,
                    rusqlite::types::Type::Text,
                    Box::new(err),
                )
            })?,
            None => Tags::default(),
        },
    })
}

/// An event row with the value of its output, if it has one.
struct StoredEvent {
    seq: i64,
    format: i64,
    json: String,
    timestamp: f64,
    step_key: Option<String>,
    value: StoredValue,
}

impl StoredEvent {
    /// The event as emitted in run `run`.
    fn read(self, run: &str) -> Result<Event<'static>, StoreError> {
        let bad = |problem: String| StoreError::BadEvent {
            run: run.to_string(),
            seq: self.seq,
            problem,
        };
        let row = event_row::Row {
            run_id: run,
            format: self.format,
            json: &self.json,
            timestamp: self.timestamp,
            step_key: self.step_key,
        };
        let mut event = row.event().map_err(|err| bad(err.to_string()))?;
        if let EventKind::StepOutput { value, .. } = &mut event.kind {
            *value = self
                .value
                .read()?
                .ok_or_else(|| bad(NO_VALUE.into()))?
                .into();
        }
        Ok(event)
    }
}

/// The columns of an event row `e` that [`StoredValue::of`] reads, in its order, with the join
/// they need.
pub(super) const STORED_VALUE: &str = "e.value, e.hash, b.bytes";
pub(super) const BLOB_JOIN: &str = "LEFT JOIN blobs b ON b.hash = e.hash";

/// An output value as a row holds it: in the row (`value`), or by `hash` in `blobs` with the
/// blob's `bytes` joined ([`STORED_VALUE`]).
pub(super) struct StoredValue {
    value: Option<Vec<u8>>,
    hash: Option<String>,
    bytes: Option<Vec<u8>>,
}

impl StoredValue {
    /// The value in columns `first` (`value`), `first + 1` (`hash`) and `first + 2` (the
    /// blob's `bytes`) of `row`.
    pub(super) fn of(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<StoredValue> {
        Ok(StoredValue {
            value: row.get(first)?,
            hash: row.get(first + 1)?,
            bytes: row.get(first + 2)?,
        })
    }

    /// The bytes, a blob's checked against its hash; `None` for a row without a value.
    pub(super) fn read(self) -> Result<Option<Vec<u8>>, StoreError> {
        match (self.value, self.hash) {
            (Some(value), _) => Ok(Some(value)),
            (None, Some(hash)) => checked_blob(hash, self.bytes).map(Some),
            (None, None) => Ok(None),
        }
    }
}

/// Why a `STEP_OUTPUT` row without a value cannot be read.
const NO_VALUE: &str = "is an output without a value";

/// The bytes of blob `hash`, checked against it.
fn checked_blob(hash: String, bytes: Option<Vec<u8>>) -> Result<Vec<u8>, StoreError> {
    let value = bytes.ok_or_else(|| StoreError::Corrupt {
        hash: hash.clone(),
        problem: "is missing",
    })?;
    if blake3::hash(&value).to_hex().as_str() != hash {
        return Err(StoreError::Corrupt {
            hash,
            problem: "does not match its content",
        });
    }
    Ok(value)
}
