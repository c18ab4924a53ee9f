//! The SQLite store's writer: a thread that appends a run's events in batched transactions,
//! projecting each event onto its rows (the event with its output value, a large value as a
//! blob, the run's final status).

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread::JoinHandle;

use rusqlite::{Connection, TransactionBehavior, params};

use super::event_row;
use super::schema::INLINE_VALUE_LIMIT;
use crate::events::{Event, EventKind, EventSink, SinkError};
use crate::store::lease;
use crate::store::{RecordingSink, RunStatus, StoreError};

/// Most events written in one transaction.
const BATCH: usize = 4096;

/// Most events waiting for the writer. When SQLite falls behind, the run waits for it rather
/// than queueing without bound: a 1M-step run queued 700 MiB of events before this bound.
const QUEUE: usize = 4 * BATCH;

/// Most bytes of events and values waiting for the writer: ten thousand 16 KiB values would
/// otherwise queue 160 MiB (each is a copy).
const QUEUE_BYTES: usize = 64 << 20;

/// What the writer thread stores for one event.
struct Pending {
    timestamp: f64,
    step_key: Option<String>,
    event: &'static str,
    json: String,
    /// For `STEP_OUTPUT`: output name, mapping key, value.
    output: Option<(String, Option<String>, Vec<u8>)>,
    /// For `RUN_SUCCESS` / `RUN_FAILURE` / `RUN_CANCELED`: the run's final status.
    finished: Option<RunStatus>,
}

impl Pending {
    fn of(event: &Event<'_>) -> Pending {
        let output = match &event.kind {
            EventKind::StepOutput {
                output,
                mapping_key,
                value,
                ..
            } => Some((
                output.to_string(),
                mapping_key.as_deref().map(str::to_string),
                value.to_vec(),
            )),
            _ => None,
        };
        let finished = match &event.kind {
            EventKind::RunSuccess { .. } => Some(RunStatus::Success),
            EventKind::RunFailure { .. } => Some(RunStatus::Failure),
            EventKind::RunCanceled { .. } => Some(RunStatus::Canceled),
            EventKind::RunStart { .. }
            | EventKind::StepStart { .. }
            | EventKind::StepOutput { .. }
            | EventKind::StepSuccess { .. }
            | EventKind::StepFailure { .. }
            | EventKind::StepUpForRetry { .. }
            | EventKind::StepRestarted { .. }
            | EventKind::StepSkipped { .. }
            | EventKind::Logs { .. }
            | EventKind::AssetMaterialization(_)
            | EventKind::AssetObservation(_)
            | EventKind::StepExpectationResult(_) => None,
        };
        Pending {
            timestamp: event.timestamp,
            step_key: event.step_key.as_deref().map(str::to_string),
            event: event.kind.name(),
            json: event_row::payload(event),
            output,
            finished,
        }
    }

    /// The bytes it holds, as counted against [`QUEUE_BYTES`].
    fn size(&self) -> usize {
        let output = self.output.as_ref().map_or(0, |(name, key, value)| {
            name.len() + key.as_ref().map_or(0, String::len) + value.len()
        });
        self.json.len() + self.step_key.as_ref().map_or(0, String::len) + output
    }
}

/// The bytes queued for the writer, bounded: a sender waits while the queue holds
/// [`QUEUE_BYTES`] or more (but never for an empty queue, so one event larger than that goes
/// through alone).
#[derive(Default)]
struct Budget {
    state: Mutex<BudgetState>,
    freed: Condvar,
}

#[derive(Default)]
struct BudgetState {
    queued: usize,
    /// The writer has stopped: nothing will be freed, and senders must not wait.
    closed: bool,
}

impl Budget {
    fn lock(&self) -> MutexGuard<'_, BudgetState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts `bytes` as queued, once there is room for them.
    fn take(&self, bytes: usize, limit: usize) {
        let mut state = self.lock();
        while !state.closed && state.queued > 0 && state.queued + bytes > limit {
            state = self
                .freed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.queued += bytes;
    }

    /// Counts `bytes` as written.
    fn give(&self, bytes: usize) {
        let mut state = self.lock();
        state.queued = state.queued.saturating_sub(bytes);
        self.freed.notify_all();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.freed.notify_all();
    }
}

/// Closes the budget when the writer stops, however it stops.
struct CloseOnDrop(Arc<Budget>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Why the writer stopped.
enum WriteFailure {
    Sqlite(rusqlite::Error),
    LeaseLost,
}

impl From<rusqlite::Error> for WriteFailure {
    fn from(err: rusqlite::Error) -> Self {
        WriteFailure::Sqlite(err)
    }
}

/// Streams a run's events into the store. Dropping it flushes and waits for the writer.
pub struct StoreSink {
    path: PathBuf,
    run_id: String,
    tx: Option<mpsc::SyncSender<Pending>>,
    queued: Arc<Budget>,
    writer: Option<JoinHandle<Result<(), WriteFailure>>>,
    /// Why the writer stopped, once an event found it stopped.
    stopped: Option<SinkError>,
}

impl StoreSink {
    /// Starts a writer appending the events of run `run_id` to `conn` from `seq` on.
    /// Starts the writer of run `run_id`, whose lease this process took with `token`.
    pub fn start(
        conn: Connection,
        path: PathBuf,
        run_id: &str,
        seq: i64,
        token: String,
    ) -> StoreSink {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let id = run_id.to_string();
        let queued = Arc::new(Budget::default());
        let writing = CloseOnDrop(queued.clone());
        let writer = std::thread::spawn(move || {
            let queue = Queue {
                rx: &rx,
                queued: &writing.0,
            };
            write_events(conn, &id, &token, seq, queue)
        });
        StoreSink {
            path,
            run_id: run_id.to_string(),
            tx: Some(tx),
            queued,
            writer: Some(writer),
            stopped: None,
        }
    }

    /// Flushes everything, waits for the writer and reports why it stopped early, if it did.
    fn close(&mut self) -> Result<(), SinkError> {
        drop(self.tx.take());
        let failure = match self.writer.take().map(JoinHandle::join) {
            Some(Ok(Ok(()))) | None => None,
            Some(Ok(Err(WriteFailure::Sqlite(source)))) => Some(StoreError::Sqlite {
                path: self.path.clone(),
                source,
            }),
            Some(Ok(Err(WriteFailure::LeaseLost))) => {
                Some(StoreError::LeaseLost(self.run_id.clone()))
            }
            Some(Err(_panic)) => Some(StoreError::WriterPanicked),
        };
        if let Some(failure) = failure {
            self.stopped = Some(SinkError::new(failure));
        }
        self.stopped.clone().map_or(Ok(()), Err)
    }
}

impl Drop for StoreSink {
    fn drop(&mut self) {
        let _ignored = self.close();
    }
}

impl EventSink for StoreSink {
    fn event(&mut self, event: &Event<'_>) -> Result<(), SinkError> {
        let sent = match &self.tx {
            Some(tx) => {
                let pending = Pending::of(event);
                self.queued.take(pending.size(), QUEUE_BYTES);
                tx.send(pending).is_ok()
            }
            None => false,
        };
        // A send fails once the writer has stopped: on an SQLite error or a lost lease.
        if sent { Ok(()) } else { self.close() }
    }
}

impl RecordingSink for StoreSink {
    fn finish(mut self: Box<Self>) -> Result<(), SinkError> {
        self.close()
    }
}

/// The writer's end of the queue.
struct Queue<'q> {
    rx: &'q mpsc::Receiver<Pending>,
    queued: &'q Budget,
}

/// Writes the events of run `run_id` in batches. Every transaction first refreshes this
/// process's lease on the run, until the run's final event releases it; with nothing to write,
/// a transaction every [`lease::HEARTBEAT_EVERY`] does only that.
fn write_events(
    mut conn: Connection,
    run_id: &str,
    token: &str,
    mut seq: i64,
    queue: Queue<'_>,
) -> Result<(), WriteFailure> {
    let rx = queue.rx;
    let mut leased = true;
    loop {
        let first = match rx.recv_timeout(lease::HEARTBEAT_EVERY) {
            Ok(first) => Some(first),
            Err(mpsc::RecvTimeoutError::Timeout) if leased => None,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        };
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if leased {
            let refreshed = tx
                .prepare_cached(
                    "UPDATE leases SET heartbeat = ?3 WHERE run_id = ?1 AND token = ?2",
                )?
                .execute(params![run_id, token, crate::events::unix_now()])?;
            if refreshed == 0 {
                return Err(WriteFailure::LeaseLost);
            }
        }
        if let Some(first) = first {
            let mut insert_event = tx.prepare_cached(
                "INSERT INTO events (run_id, seq, timestamp, step_key, event, json, format,
                                     output, mapping_key, value, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            let mut insert_blob =
                tx.prepare_cached("INSERT OR IGNORE INTO blobs (hash, bytes) VALUES (?1, ?2)")?;
            let mut finish =
                tx.prepare_cached("UPDATE runs SET status = ?2, finished = ?3 WHERE id = ?1")?;
            let mut release = tx.prepare_cached("DELETE FROM leases WHERE run_id = ?1")?;
            // Take what has queued up, so that a busy run commits in large batches.
            let batch = std::iter::once(first).chain(rx.try_iter().take(BATCH - 1));
            for pending in batch {
                let (output, mapping_key, value) = match &pending.output {
                    Some((output, mapping_key, value)) => {
                        (Some(output), mapping_key.as_ref(), Some(value))
                    }
                    None => (None, None, None),
                };
                let blob = value.filter(|value| value.len() > INLINE_VALUE_LIMIT);
                let hash = blob.map(|value| blake3::hash(value).to_hex());
                if let (Some(value), Some(hash)) = (blob, &hash) {
                    insert_blob.execute(params![hash.as_str(), value])?;
                }
                insert_event.execute(params![
                    run_id,
                    seq,
                    pending.timestamp,
                    pending.step_key,
                    pending.event,
                    pending.json,
                    event_row::FORMAT,
                    output,
                    mapping_key,
                    value.filter(|_| hash.is_none()),
                    hash.as_ref().map(|hash| hash.as_str()),
                ])?;
                if let Some(status) = pending.finished {
                    finish.execute(params![run_id, status.as_str(), pending.timestamp])?;
                    release.execute([run_id])?;
                    leased = false;
                }
                seq += 1;
                queue.queued.give(pending.size());
            }
        }
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::Budget;

    /// Takes `bytes` on another thread; says whether it got them within 100 ms.
    fn taken_soon(budget: &Arc<Budget>, bytes: usize, limit: usize) -> Arc<AtomicBool> {
        let done = Arc::new(AtomicBool::new(false));
        let (budget, flag) = (budget.clone(), done.clone());
        std::thread::spawn(move || {
            budget.take(bytes, limit);
            flag.store(true, Ordering::SeqCst);
        });
        std::thread::sleep(Duration::from_millis(100));
        done
    }

    #[test]
    fn a_sender_waits_for_room_and_the_writer_stopping_releases_it() {
        let budget = Arc::new(Budget::default());
        // One event larger than the whole budget goes through an empty queue.
        budget.take(150, 100);
        let second = taken_soon(&budget, 10, 100);
        assert!(
            !second.load(Ordering::SeqCst),
            "waits while the queue is full"
        );
        budget.give(150);
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            second.load(Ordering::SeqCst),
            "goes once the writer freed room"
        );

        budget.take(90, 100);
        let third = taken_soon(&budget, 20, 100);
        assert!(!third.load(Ordering::SeqCst));
        budget.close();
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            third.load(Ordering::SeqCst),
            "a stopped writer frees nothing: no waiting"
        );
    }
}
