//! Reads for the web view: a run's step lifecycle as a stream to fold, and its steps one op at
//! a time in key order, so that a page of a million-clone run reads only what it shows.

use rusqlite::params;

use rusqlite::OptionalExtension;

use super::SqliteStore;
use super::queries::{
    BLOB_JOIN, STEP_INDEX, STORED_VALUE, StoredValue, name_list, sql_limit, sqlite_error,
};
use crate::store::StoreError;

/// The events that change a step's state.
const LIFECYCLE: &str = "('STEP_START', 'STEP_RESTARTED', 'STEP_SUCCESS', 'STEP_FAILURE',
    'STEP_UP_FOR_RETRY', 'STEP_SKIPPED')";

/// A step-lifecycle event, without its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepEvent {
    pub seq: i64,
    pub step_key: String,
    /// The event's name, e.g. `STEP_SUCCESS`.
    pub event: String,
}

/// A step-lifecycle event with its `--json` form, for the details a table shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRow {
    pub step_key: String,
    pub event: String,
    pub json: String,
}

/// The step keys of op `op`: `op` itself and its clones `op[...]`, those whose first mapping
/// key starts with `prefix` when one is given, after `after` in key order.
#[derive(Debug, Clone, Copy)]
pub struct OpSteps<'a> {
    pub op: &'a str,
    pub prefix: Option<&'a str>,
    pub after: Option<&'a str>,
}

impl SqliteStore {
    /// Run `id`'s step-lifecycle events after sequence number `after`, at most `limit`.
    pub fn step_events(
        &self,
        id: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<StepEvent>, StoreError> {
        let sql = format!(
            "SELECT seq, step_key, event FROM events
             WHERE run_id = ?1 AND seq > ?2 AND step_key IS NOT NULL AND event IN {LIFECYCLE}
             ORDER BY seq LIMIT ?3"
        );
        self.rows_of(id, &sql, params![id, after, sql_limit(limit)], |row| {
            Ok(StepEvent {
                seq: row.get(0)?,
                step_key: row.get(1)?,
                event: row.get(2)?,
            })
        })
    }

    /// The sequence number of run `id`'s last event; -1 when it has none.
    pub fn last_seq(&self, id: &str) -> Result<i64, StoreError> {
        self.read(id, |db| db.next_seq(id).map(|next| next - 1))
    }

    /// The lifecycle events of `steps` in run `id`, by step key then sequence number, at most
    /// `limit`: a page of steps is read a chunk of rows at a time.
    pub fn step_rows(
        &self,
        id: &str,
        steps: &OpSteps<'_>,
        limit: usize,
    ) -> Result<Vec<StepRow>, StoreError> {
        let (plain, low, high) = bounds(steps);
        let sql = format!(
            "SELECT step_key, event, json FROM events
             WHERE run_id = ?1
               AND (step_key = ?2 OR (step_key >= ?3 AND step_key < ?4))
               AND (?5 IS NULL OR step_key > ?5)
               AND event IN {LIFECYCLE}
             ORDER BY step_key, seq LIMIT ?6"
        );
        let params = params![id, plain, low, high, steps.after, sql_limit(limit)];
        self.rows_of(id, &sql, params, step_row)
    }

    /// The keys of run `id`'s steps among `steps` (any op's when `steps.op` is empty) whose
    /// latest lifecycle event is one of `events` (where each stands now), in key order, at
    /// most `limit`. One pass over the run's events in sequence: through the step index
    /// (which `+step_key` keeps SQLite from choosing) each row would cost a random read.
    pub fn steps_now(
        &self,
        id: &str,
        steps: &OpSteps<'_>,
        events: &[&str],
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let (plain, low, high) = bounds(steps);
        let any_op = steps.op.is_empty();
        // SQLite gives a bare column beside MAX() the value of the row with the maximum.
        let sql = format!(
            "WITH latest AS MATERIALIZED (
                 SELECT +step_key AS step_key, event, MAX(seq) FROM events
                 WHERE run_id = ?1 AND event IN {LIFECYCLE} AND +step_key IS NOT NULL
                   AND (?3 OR +step_key = ?4 OR (+step_key >= ?5 AND +step_key < ?6))
                   AND (?7 IS NULL OR +step_key > ?7)
                 GROUP BY +step_key)
             SELECT step_key FROM latest WHERE instr(?2, ',' || event || ',') > 0
             ORDER BY step_key LIMIT ?8"
        );
        let events = name_list(events);
        let params = params![
            id,
            events,
            any_op,
            plain,
            low,
            high,
            steps.after,
            sql_limit(limit)
        ];
        self.rows_of(id, &sql, params, |row| row.get(0))
    }

    /// The lifecycle events of step `key` alone (not its clones) in run `id`, in order.
    pub fn step_rows_of(&self, id: &str, key: &str) -> Result<Vec<StepRow>, StoreError> {
        let sql = format!(
            "SELECT step_key, event, json FROM events {STEP_INDEX}
             WHERE run_id = ?1 AND step_key = ?2 AND event IN {LIFECYCLE}
             ORDER BY seq"
        );
        self.rows_of(id, &sql, params![id, key], step_row)
    }

    /// The value step `step` of run `id` recorded for `output` (its only or first output when
    /// `None`) under `mapping_key`, if it did.
    pub fn output_value(
        &self,
        id: &str,
        step: &str,
        output: Option<&str>,
        mapping_key: Option<&str>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(id, |db| {
            let sqlite = sqlite_error(db.path);
            let found: Option<StoredValue> = db
                .conn
                .query_row(
                    &format!(
                        "SELECT {STORED_VALUE} FROM events e {STEP_INDEX} {BLOB_JOIN}
                         WHERE e.run_id = ?1 AND e.step_key = ?2 AND e.event = 'STEP_OUTPUT'
                           AND (?3 IS NULL OR e.output = ?3) AND e.mapping_key IS ?4
                         ORDER BY e.seq LIMIT 1"
                    ),
                    params![id, step, output, mapping_key],
                    |row| StoredValue::of(row, 0),
                )
                .optional()
                .map_err(sqlite)?;
            Ok(found.map(StoredValue::read).transpose()?.flatten())
        })
    }
}

impl SqliteStore {
    /// The rows `sql` selects with `params` about run `id`, once the run is known to be in
    /// scope, each read by `row`.
    fn rows_of<T>(
        &self,
        id: &str,
        sql: &str,
        params: impl rusqlite::Params,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        self.read(id, |db| {
            let sqlite = sqlite_error(db.path);
            let mut statement = db.conn.prepare_cached(sql).map_err(sqlite)?;
            let rows = statement.query_map(params, row).map_err(sqlite)?;
            rows.collect::<Result<_, _>>().map_err(sqlite)
        })
    }
}

fn step_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StepRow> {
    Ok(StepRow {
        step_key: row.get(0)?,
        event: row.get(1)?,
        json: row.get(2)?,
    })
}

/// The keys of `steps`: the op's own key (unless a prefix is given), and the range of its
/// clones' keys. Clones of `op` sort between `op[` and `op\` ('\' follows '['); the largest
/// code point bounds the keys that start with a prefix.
fn bounds<'a>(steps: &OpSteps<'a>) -> (Option<&'a str>, String, String) {
    let low = format!("{}[{}", steps.op, steps.prefix.unwrap_or(""));
    let high = match steps.prefix {
        Some(prefix) => format!("{}[{prefix}\u{10FFFF}", steps.op),
        None => format!("{}\\", steps.op),
    };
    let plain = steps.prefix.is_none().then_some(steps.op);
    (plain, low, high)
}
